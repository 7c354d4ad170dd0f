// Measures requests per second through the edge worker in workerd with warm key caches, for
// RS256 and ES256 access tokens from the test authorization server, against the same job
// written with jose (bench-jose.mjs). Both forward to the same origin worker through a
// service binding, and one autocannon load generator drives both, one run at a time.
//
// portcullis runs twice: with its verified-token cache on (the default, which skips the
// signature check for a token seen before) and off (every request verifies the signature,
// as jose does). The load repeats one token per run, so the cache-on run measures cache hits.
//
// The gates take turns for `--rounds` rounds, and each result is the best round, which is
// the one least disturbed by other processes on a shared machine.
//
// Usage: node js/worker/bench.mjs [--duration SECONDS] [--warmup SECONDS] [--connections N]
//                                 [--rounds N] [--output FILE]
// Writes docs/bench/worker.json by default. Build the package first with `make pkg`.

import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import autocannon from 'autocannon';
import { Log, LogLevel, Miniflare } from 'miniflare';

import { API, ES256_API, startIdentity, startKeyServer } from './harness.mjs';
import { bundleWorker, COMPATIBILITY_DATE } from './workerd.mjs';

const WORKER_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(WORKER_DIR, '../..');

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    connections: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '2' },
    output: { type: 'string', default: join(ROOT, 'docs/bench/worker.json') },
  },
});
const DURATION_S = Number(args.duration);
const WARMUP_S = Number(args.warmup);
const CONNECTIONS = Number(args.connections);
const ROUNDS = Number(args.rounds);

/** The origin both workers forward to. It returns 200 with the subject it received. */
const ORIGIN_SCRIPT = `export default {
  fetch(request) {
    return new Response(JSON.stringify({ sub: request.headers.get('x-jwt-sub') }), { headers: { 'content-type': 'application/json' } });
  },
};`;

/** Builds the portcullis policy with the checks that bench-jose.mjs makes. */
function policy(issuer, jwksUri, tokenCache) {
  return {
    providers: {
      idp: {
        issuer,
        audiences: [API, ES256_API],
        algorithms: ['RS256', 'ES256'],
        profile: 'rfc9068',
        clock_skew_seconds: 0,
        scopes: { all_of: ['api:read'] },
        remote_jwks: { http_uri: { uri: jwksUri, timeout: '2s' }, cache_duration: '300s' },
        claim_to_headers: [
          { header_name: 'x-jwt-sub', claim_name: 'sub' },
          { header_name: 'x-jwt-scope', claim_name: 'scope' },
          { header_name: 'x-jwt-client', claim_name: 'client_id' },
        ],
      },
    },
    jwt_cache_config: { jwt_cache_size: tokenCache ? 1000 : 0 },
  };
}

/** Starts one worker in workerd with the origin worker behind its ORIGIN binding. */
async function startGate(scriptPath, bindings) {
  const miniflare = new Miniflare({
    host: '127.0.0.1',
    port: 0,
    cf: false,
    log: new Log(LogLevel.WARN),
    workers: [
      {
        name: 'gate',
        modules: true,
        scriptPath,
        modulesRoot: dirname(scriptPath),
        modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }],
        compatibilityDate: COMPATIBILITY_DATE,
        bindings,
        serviceBindings: { ORIGIN: 'origin' },
      },
      { name: 'origin', modules: true, script: ORIGIN_SCRIPT, compatibilityDate: COMPATIBILITY_DATE },
    ],
  });
  const url = (await miniflare.ready).href.replace(/\/$/, '');
  return { url, close: () => miniflare.dispose() };
}

/** Checks that a gate forwards `token` with its subject and rejects a tampered copy. */
async function checkGate(url, token) {
  const response = await fetch(`${url}/orders`, { headers: { authorization: `Bearer ${token}`, 'x-jwt-sub': 'spoofed' } });
  const body = await response.json();
  if (response.status !== 200 || body.sub !== 'alice') {
    throw new Error(`${url} returned status ${response.status} ${JSON.stringify(body)}, expected 200 with sub alice`);
  }
  const [header, payload, signature] = token.split('.');
  const flipped = `${signature.slice(0, -2)}${signature.at(-2) === 'A' ? 'B' : 'A'}${signature.at(-1)}`;
  const tampered = await fetch(`${url}/orders`, { headers: { authorization: `Bearer ${header}.${payload}.${flipped}` } });
  await tampered.arrayBuffer();
  if (tampered.status !== 401) {
    throw new Error(`${url} returned status ${tampered.status} for a tampered token, expected 401`);
  }
}

function load(url, token, seconds) {
  return new Promise((resolvePromise, reject) => {
    autocannon(
      {
        url: `${url}/orders`,
        connections: CONNECTIONS,
        duration: seconds,
        headers: { authorization: `Bearer ${token}` },
      },
      (error, result) => (error ? reject(error) : resolvePromise(result)),
    );
  });
}

async function measure(url, token) {
  await load(url, token, WARMUP_S);
  const result = await load(url, token, DURATION_S);
  // A rejected token would make the run measure replies instead of verifications. A few
  // connection errors under load are tolerated and recorded.
  const failed = result.errors + result.timeouts;
  if (result.non2xx > 0 || failed > result.requests.total / 100) {
    throw new Error(`${url}: ${result.non2xx} non-2xx responses, ${result.errors} errors, ${result.timeouts} timeouts in ${result.requests.total} requests`);
  }
  return {
    requestsPerSecond: Math.round(result.requests.average),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    requests: result.requests.total,
    errors: failed,
  };
}

function machine() {
  const version = (command, commandArgs) => {
    try {
      return execFileSync(command, commandArgs, { encoding: 'utf8' }).trim();
    } catch {
      return null;
    }
  };
  const packageVersion = (name) => JSON.parse(readFileSync(join(WORKER_DIR, '../node_modules', name, 'package.json'), 'utf8')).version;
  return {
    nproc: Number(version('nproc', [])),
    cpu: cpus()[0]?.model ?? null,
    node: process.version,
    workerd: version(join(WORKER_DIR, '../node_modules/.bin/workerd'), ['--version']),
    miniflare: packageVersion('miniflare'),
    jose: packageVersion('jose'),
    autocannon: packageVersion('autocannon'),
  };
}

async function main() {
  // Other processes on a shared machine lower the numbers; the load averages record how busy
  // it was around the run.
  const loadBefore = loadavg().map((value) => Number(value.toFixed(2)));
  const cleanup = [];
  try {
    const identity = await startIdentity();
    cleanup.push(() => identity.close());
    const keyServer = await startKeyServer();
    cleanup.push(() => keyServer.close());
    const jwksUri = keyServer.serve('/jwks', identity.jwks);
    const tokens = { RS256: identity.tokens.rs256, ES256: identity.tokens.es256 };

    const portcullisBundle = await bundleWorker();
    cleanup.push(() => portcullisBundle.remove());
    const joseBundle = await bundleWorker(join(WORKER_DIR, 'bench-jose.mjs'));
    cleanup.push(() => joseBundle.remove());

    const gates = {
      'portcullis, token cache off': () => startGate(portcullisBundle.scriptPath, { PORTCULLIS_POLICY: JSON.stringify(policy(identity.issuer, jwksUri, false)) }),
      'portcullis, token cache on': () => startGate(portcullisBundle.scriptPath, { PORTCULLIS_POLICY: JSON.stringify(policy(identity.issuer, jwksUri, true)) }),
      jose: () => startGate(joseBundle.scriptPath, { JOSE_ISSUER: identity.issuer, JOSE_AUDIENCES: `${API},${ES256_API}`, JOSE_JWKS_URI: jwksUri }),
    };
    const rounds = Object.fromEntries(Object.keys(gates).map((name) => [name, Object.fromEntries(Object.keys(tokens).map((alg) => [alg, []]))]));
    for (let round = 1; round <= ROUNDS; round += 1) {
      for (const [name, start] of Object.entries(gates)) {
        const gate = await start();
        try {
          for (const [alg, token] of Object.entries(tokens)) {
            await checkGate(gate.url, token);
            const result = await measure(gate.url, token);
            rounds[name][alg].push(result);
            console.error(`bench: round ${round}, ${name}, ${alg}: ${result.requestsPerSecond} requests/s`);
          }
        } finally {
          await gate.close();
        }
      }
    }
    const results = {};
    for (const [name, byAlg] of Object.entries(rounds)) {
      results[name] = {};
      for (const [alg, list] of Object.entries(byAlg)) {
        const best = list.reduce((top, next) => (next.requestsPerSecond > top.requestsPerSecond ? next : top));
        results[name][alg] = { ...best, roundsRequestsPerSecond: list.map((entry) => entry.requestsPerSecond) };
      }
    }

    const ratio = (name, alg) => Number((results[name][alg].requestsPerSecond / results.jose[alg].requestsPerSecond).toFixed(2));
    const report = {
      description:
        'Requests per second through the edge worker in workerd (miniflare) with warm key caches, against the same job written with jose (WebCrypto); ratio = portcullis / jose, of the best rounds. Each run repeats one token, so "token cache on" measures verified-token cache hits.',
      date: new Date().toISOString(),
      command: `node js/worker/bench.mjs --duration ${DURATION_S} --warmup ${WARMUP_S} --connections ${CONNECTIONS} --rounds ${ROUNDS}`,
      machine: { ...machine(), loadAverage1m5m15m: { before: loadBefore, after: loadavg().map((value) => Number(value.toFixed(2))) } },
      load: { generator: 'autocannon (in the benchmark process)', connections: CONNECTIONS, durationSeconds: DURATION_S, warmupSeconds: WARMUP_S, rounds: ROUNDS, result: 'best round' },
      results,
      ratioToJose: Object.fromEntries(
        Object.keys(tokens).map((alg) => [alg, { tokenCacheOff: ratio('portcullis, token cache off', alg), tokenCacheOn: ratio('portcullis, token cache on', alg) }]),
      ),
    };
    mkdirSync(dirname(args.output), { recursive: true });
    writeFileSync(args.output, `${JSON.stringify(report, null, 2)}\n`);
    console.log(JSON.stringify({ results: report.results, ratioToJose: report.ratioToJose }, null, 2));
  } finally {
    for (const step of cleanup.reverse()) {
      await step();
    }
  }
}

main().catch((error) => {
  console.error(`bench failed: ${error.stack ?? error}`);
  process.exit(1);
});
