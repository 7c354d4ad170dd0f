// The edge worker in Node.js through its node:http adapter, with the same scenarios as in
// workerd. Node.js has no Cache API, so the worker gets an in-memory one, shared by the
// worker objects that stand for successive isolates. Build the package first with `make pkg`.

import { defineWorkerTests, MemoryCacheStorage } from '../worker/harness.mjs';
import { serve } from '../worker/node.mjs';
import { linkPackage } from '../worker/workerd.mjs';

linkPackage();
const { createWorker } = await import('../worker/worker.mjs');
const quiet = { debug() {}, info() {}, warn() {}, error() {}, log() {} };

async function start({ policy, originUrl }) {
  const caches = new MemoryCacheStorage();
  const env = { PORTCULLIS_POLICY: JSON.stringify(policy), ORIGIN_URL: originUrl };
  const listen = () => serve({ worker: createWorker({ console: quiet, caches }), env, log: quiet });
  let server = await listen();
  const handle = {
    url: server.url,
    close: () => server.close(),
    /** Replaces the worker with a new one, as a new isolate would start, sharing the cache. */
    async restart() {
      await server.close();
      server = await listen();
      handle.url = server.url;
    },
  };
  return handle;
}

defineWorkerTests('node', start);
