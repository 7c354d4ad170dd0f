// Loader of the @ENTRY@ module for Cloudflare Workers and workerd. These do not compile
// WebAssembly from bytes at run time, so the .wasm is imported as a compiled module (wrangler's
// default rule for `*.wasm`, miniflare's `CompiledWasm` module type). It is instantiated
// synchronously with the glue of the `web` build.

import wasmModule from '../web/@ENTRY@/portcullis_@ENTRY@_bg.wasm';
import * as glue from '../web/@ENTRY@/portcullis_@ENTRY@.js';

glue.initSync({ module: wasmModule });

export const bindings = glue;
