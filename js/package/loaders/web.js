// Loader of the @ENTRY@ module for plain ES modules in the browser and in workers: fetches
// and instantiates the .wasm next to this file before the entry point's exports can run.

import * as glue from './@ENTRY@/portcullis_@ENTRY@.js';

await glue.default({ module_or_path: new URL('./@ENTRY@/portcullis_@ENTRY@_bg.wasm', import.meta.url) });

export const bindings = glue;
