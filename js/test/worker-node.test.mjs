// The edge worker in Node.js through its node:http adapter, with the same scenarios as in
// workerd. Node.js has no Cache API, so the worker gets an in-memory one, shared by the
// worker objects that stand for successive isolates. Build the package first with `make pkg`.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

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

/** Runs node.mjs as an operator would and returns its exit status and error output. */
function runNodeMjs(environment) {
  const script = fileURLToPath(new URL('../worker/node.mjs', import.meta.url));
  const env = { ...process.env, PORT: '0', ...environment };
  if (environment.PORTCULLIS_POLICY === undefined) delete env.PORTCULLIS_POLICY;
  // A policy that passed the check would start a server; the timeout then stops it and
  // the status assertion fails.
  return spawnSync(process.execPath, [script], { env, encoding: 'utf8', timeout: 20_000 });
}

test('node.mjs stops on an invalid policy', () => {
  const policy = { providers: { idp: { algorithms: ['none'], local_jwks: { inline: { keys: [] } } } } };
  const result = runNodeMjs({ PORTCULLIS_POLICY: JSON.stringify(policy) });
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stderr, /portcullis: invalid policy: /);
  assert.match(result.stderr, /providers\.idp\.algorithms\[0\]/);
});

test('node.mjs stops without a policy', () => {
  const result = runNodeMjs({ PORTCULLIS_POLICY: undefined });
  assert.equal(result.status, 1, result.stderr);
  assert.match(result.stderr, /PORTCULLIS_POLICY environment variable is missing/);
});
