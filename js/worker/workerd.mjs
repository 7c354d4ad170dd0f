// Runs a worker module in workerd through miniflare, on 127.0.0.1 only, for tests, the demo
// and the benchmark. esbuild bundles the module under the export conditions wrangler uses
// (`workerd`, `worker`, `browser`), so `portcullis/gate` resolves to the package's workerd
// build as it does in a deployment. `.wasm` imports stay separate CompiledWasm modules.

import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKER_DIR = dirname(fileURLToPath(import.meta.url));
const PKG_DIR = resolve(WORKER_DIR, '../../pkg');

/** The workerd compatibility date; at most the date of the workerd build miniflare ships. */
export const COMPATIBILITY_DATE = '2026-04-01';

/**
 * Links js/worker/node_modules/portcullis to the built package in pkg/, as `npm install` does
 * for the `file:` dependency in js/worker/package.json, so that Node.js and esbuild resolve
 * `portcullis/gate`. Throws when pkg/ has no gate build.
 */
export function linkPackage() {
  if (!existsSync(join(PKG_DIR, 'dist/workerd/gate.js')) || !existsSync(join(PKG_DIR, 'dist/node/gate.js'))) {
    throw new Error(`pkg/ has no portcullis/gate build in ${PKG_DIR}: run \`make pkg\` (js/package/build.sh) first`);
  }
  const modules = join(WORKER_DIR, 'node_modules');
  const link = join(modules, 'portcullis');
  mkdirSync(modules, { recursive: true });
  let present = false;
  try {
    present = lstatSync(link).isSymbolicLink() || lstatSync(link).isDirectory();
  } catch {
    present = false;
  }
  if (!present) {
    symlinkSync(PKG_DIR, link, 'dir');
  }
}

/**
 * Bundles `entry` (default: js/worker/worker.mjs) into a fresh directory with its .wasm
 * modules beside it. Returns the script path and a function that removes the directory.
 */
export async function bundleWorker(entry = join(WORKER_DIR, 'worker.mjs')) {
  linkPackage();
  const { build } = await import('esbuild');
  const outdir = mkdtempSync(join(tmpdir(), 'portcullis-worker-'));
  const wasmFiles = new Map();
  const wasmModules = {
    name: 'wasm-modules',
    setup(builder) {
      builder.onResolve({ filter: /\.wasm$/ }, (args) => {
        const source = resolve(args.resolveDir, args.path);
        wasmFiles.set(basename(source), source);
        return { path: `./${basename(source)}`, external: true };
      });
    },
  };
  const scriptPath = join(outdir, 'worker.js');
  await build({
    entryPoints: [entry],
    outfile: scriptPath,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2022',
    conditions: ['workerd', 'worker', 'browser'],
    mainFields: ['browser', 'module', 'main'],
    plugins: [wasmModules],
    logLevel: 'silent',
  });
  for (const [name, source] of wasmFiles) {
    copyFileSync(source, join(outdir, name));
  }
  return { scriptPath, remove: () => rmSync(outdir, { recursive: true, force: true }) };
}

/**
 * Starts `scriptPath` in workerd with these bindings and returns its URL. Nothing is
 * fetched from the network: `cf: false` keeps miniflare from downloading request.cf data.
 *
 * @param {object} options
 * @param {string} options.scriptPath a bundle from {@link bundleWorker}
 * @param {Record<string, string | object>} options.bindings
 * @param {Record<string, (request: Request) => Response | Promise<Response>>} [options.serviceBindings]
 */
export async function startWorkerd({ scriptPath, bindings, serviceBindings = {} }) {
  const { Miniflare, Log, LogLevel } = await import('miniflare');
  const options = (isolate) => ({
    host: '127.0.0.1',
    port: 0,
    modules: true,
    scriptPath,
    // Module names are paths relative to this directory, which must contain every module.
    modulesRoot: dirname(scriptPath),
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
    compatibilityDate: COMPATIBILITY_DATE,
    // A changed binding makes miniflare load the worker into a new isolate on restart.
    bindings: isolate === 0 ? bindings : { ...bindings, TEST_ISOLATE: String(isolate) },
    serviceBindings,
    cf: false,
    log: new Log(LogLevel.WARN),
  });
  const miniflare = new Miniflare(options(0));
  const runtime = { miniflare, close: () => miniflare.dispose() };
  const setUrl = (url) => {
    runtime.url = url.href.replace(/\/$/, '');
    runtime.port = Number(url.port);
  };
  setUrl(await miniflare.ready);
  let isolate = 0;
  /** Loads the worker into a new isolate; the Cache API keeps its contents. */
  runtime.restart = async () => {
    isolate += 1;
    await miniflare.setOptions(options(isolate));
    setUrl(await miniflare.ready);
  };
  return runtime;
}

/** Bundles and starts the worker in workerd; `close` stops workerd and removes the bundle. */
export async function startWorkerInWorkerd({ entry, bindings, serviceBindings }) {
  const bundle = await bundleWorker(entry);
  try {
    const runtime = await startWorkerd({ scriptPath: bundle.scriptPath, bindings, serviceBindings });
    const close = runtime.close;
    runtime.close = async () => {
      await close();
      bundle.remove();
    };
    return runtime;
  } catch (error) {
    bundle.remove();
    throw error;
  }
}
