// Measures the files of the built package and writes them as JSON for the benchmarks page.
// Usage: node sizes.mjs PKG_DIR OUTPUT_JSON LIGHT_BUDGET_BYTES
// Exits with status 1 when the light entry point's browser download, gzipped, exceeds the
// budget.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';

const [pkgDir, outputPath, budgetText] = process.argv.slice(2);
const budget = Number(budgetText);

/** Raw and gzipped (level 9, Node.js zlib) size of the files, in bytes. */
function measure(...files) {
  let raw = 0;
  let gzip = 0;
  for (const file of files) {
    const bytes = readFileSync(join(pkgDir, file));
    raw += bytes.length;
    gzip += gzipSync(bytes, { level: 9 }).length;
  }
  return { raw, gzip, files };
}

function version(command, args) {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
}

const entries = {};
for (const [entry, name] of [['portcullis', 'light'], ['portcullis/verify', 'verify'], ['portcullis/gate', 'gate']]) {
  const wrapper = name === 'light' ? 'index.js' : `${name}.js`;
  const wasm = measure(`dist/web/${name}/portcullis_${name}_bg.wasm`);
  const webGlue = measure(`dist/web/${name}/portcullis_${name}.js`);
  const bundlerGlue = measure(`dist/bundler/${name}/portcullis_${name}_bg.js`);
  const webEntry = measure(`dist/web/${wrapper}`, `dist/web/${name}-loader.js`, 'dist/errors.js');
  entries[entry] = {
    wasm,
    glue: { web: webGlue, bundler: bundlerGlue },
    // What a browser downloads for the `web` build: module, glue, entry, loader, errors.
    webDownload: {
      raw: wasm.raw + webGlue.raw + webEntry.raw,
      gzip: wasm.gzip + webGlue.gzip + webEntry.gzip,
    },
  };
}

// `portcullis/client` has no module of its own: its entry file imports the small entry point,
// so it downloads the light module and adds client.js.
const clientFile = measure('dist/web/client.js');
entries['portcullis/client'] = {
  ...entries.portcullis,
  entryFile: clientFile,
  webDownload: {
    raw: entries.portcullis.webDownload.raw + clientFile.raw,
    gzip: entries.portcullis.webDownload.gzip + clientFile.gzip,
  },
};

const report = {
  description: 'Sizes of the npm package portcullis in bytes; gzip is level 9 of Node.js zlib, per file.',
  toolchain: {
    rustc: version('rustc', ['--version']),
    wasmBindgen: version('wasm-bindgen', ['--version']),
    wasmOpt: version(join(dirname(pkgDir), 'js/node_modules/.bin/wasm-opt'), ['--version']),
    node: process.version,
  },
  budget: { entry: 'portcullis', measure: 'webDownload.gzip', bytes: budget },
  entries,
};
mkdirSync(dirname(outputPath), { recursive: true });
writeFileSync(outputPath, `${JSON.stringify(report, null, 2)}\n`);

for (const [entry, sizes] of Object.entries(entries)) {
  console.error(
    `sizes: ${entry}: wasm ${sizes.wasm.raw} B (${sizes.wasm.gzip} B gzip), web glue ${sizes.glue.web.raw} B ` +
      `(${sizes.glue.web.gzip} B gzip), web download ${sizes.webDownload.gzip} B gzip`,
  );
}
const light = entries.portcullis.webDownload.gzip;
if (light > budget) {
  console.error(`sizes: error: the portcullis entry point is ${light} B gzipped, more than the budget of ${budget} B`);
  process.exit(1);
}
