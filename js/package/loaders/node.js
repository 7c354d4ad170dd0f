// Loader of the @ENTRY@ module for Node.js: reads the .wasm of the `web` build from disk and
// instantiates it synchronously.

import { readFileSync } from 'node:fs';

import * as glue from '../web/@ENTRY@/portcullis_@ENTRY@.js';

glue.initSync({ module: readFileSync(new URL('../web/@ENTRY@/portcullis_@ENTRY@_bg.wasm', import.meta.url)) });

export const bindings = glue;
