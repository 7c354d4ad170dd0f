// Loader of the @ENTRY@ module for bundlers: webpack 5 with `asyncWebAssembly`, or Rollup and
// Vite with a wasm plugin. The bundler instantiates the .wasm through the ES module import.
// This module then connects it to wasm-bindgen's glue, as wasm-bindgen's own bundler entry
// file does.

import * as wasm from './@ENTRY@/portcullis_@ENTRY@_bg.wasm';
import * as glue from './@ENTRY@/portcullis_@ENTRY@_bg.js';

glue.__wbg_set_wasm(wasm);
wasm.__wbindgen_start();

export const bindings = glue;
