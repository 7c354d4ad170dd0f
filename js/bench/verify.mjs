// Times token verification in Node.js: portcullis's bench module in V8, `jose` and
// `@tsndr/cloudflare-worker-jwt` (both on WebCrypto), on the tokens and keys that
// tests/bench/verify.rs wrote to FIXTURES. Run by .ci/bench.sh.
//
// Usage: node js/bench/verify.mjs FIXTURES BENCH_WASM OUT
//
// Each case first runs for 300 ms as a warm-up. A sample is then the mean time per
// verification over a batch of at least 2 ms, and each case reports the minimum, median and
// maximum of 31 samples in microseconds, as the Rust side does. Keys are imported once per
// case and not timed with verification:
// - portcullis: `bench_prepare` parses the JWKS and prepares the key (timed separately);
//   `bench_verify` runs `verify_token` in full (signature, `exp`, `iss`, `aud`).
// - jose: `importJWK` once; `jwtVerify` with issuer, audience, algorithm and the clock.
// - @tsndr/cloudflare-worker-jwt: the key is imported once as a CryptoKey with the WebCrypto
//   parameters that the library uses; `verify` checks the signature, `exp` and `nbf`, but
//   not `iss` or `aud`. It has no PS256 or EdDSA.

import { readFileSync, writeFileSync } from 'node:fs';
import { webcrypto } from 'node:crypto';

import * as jose from 'jose';
import tsndr from '@tsndr/cloudflare-worker-jwt';

const [fixturesPath, wasmPath, outPath] = process.argv.slice(2);
if (!fixturesPath || !wasmPath || !outPath) {
  console.error('usage: node js/bench/verify.mjs FIXTURES BENCH_WASM OUT');
  process.exit(2);
}

const SAMPLES = 31;
const MIN_BATCH_NS = 2_000_000n;
// V8 first runs WebAssembly with its baseline compiler and moves hot functions to the
// optimizing one in the background; JavaScript tiers up the same way. Each case runs this
// long before the first sample, so the samples measure optimized code.
const WARM_UP_NS = 300_000_000n;

const fixtures = JSON.parse(readFileSync(fixturesPath, 'utf8'));

function summary(samples) {
  samples.sort((a, b) => a - b);
  const round = (value) => Math.round(value * 100) / 100;
  return {
    min_us: round(samples[0]),
    median_us: round(samples[Math.floor(samples.length / 2)]),
    max_us: round(samples[samples.length - 1]),
    samples: samples.length,
  };
}

// Runs `run(iterations)` (sync or async) in batches of at least 2 ms.
async function sample(run) {
  const warmUpStarted = process.hrtime.bigint();
  while (process.hrtime.bigint() - warmUpStarted < WARM_UP_NS) {
    await run(1);
  }
  let iterations = 1;
  for (;;) {
    const started = process.hrtime.bigint();
    await run(iterations);
    if (process.hrtime.bigint() - started >= MIN_BATCH_NS) break;
    iterations *= 2;
  }
  const samples = [];
  for (let index = 0; index < SAMPLES; index += 1) {
    const started = process.hrtime.bigint();
    await run(iterations);
    samples.push(Number(process.hrtime.bigint() - started) / 1000 / iterations);
  }
  return summary(samples);
}

// portcullis in V8: the same module that tests/bench/verify.rs loads into wasmtime.
const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), {});
const wasm = instance.exports;

function write(text) {
  const bytes = new TextEncoder().encode(text);
  const pointer = wasm.bench_alloc(bytes.length);
  new Uint8Array(wasm.memory.buffer, pointer, bytes.length).set(bytes);
  return [pointer, bytes.length];
}

async function v8Times(fixture) {
  const jwks = write(JSON.stringify(fixture.jwks));
  const policy = write(JSON.stringify(fixture.policy));
  const token = write(fixture.token);
  const prepare = await sample((iterations) => {
    for (let index = 0; index < iterations; index += 1) {
      if (wasm.bench_prepare(jwks[0], jwks[1], policy[0], policy[1]) !== 0) throw new Error(`${fixture.name}: bench_prepare failed`);
    }
  });
  const verify = await sample((iterations) => {
    const passed = wasm.bench_verify(token[0], token[1], BigInt(fixtures.now), iterations);
    if (passed !== iterations) throw new Error(`${fixture.name}: ${iterations - passed} verifications failed in V8`);
  });
  return { verify, prepare };
}

async function joseTimes(fixture) {
  const key = await jose.importJWK(fixture.jwks.keys[0], fixture.alg);
  const options = {
    issuer: fixtures.issuer,
    audience: fixtures.audience,
    algorithms: [fixture.alg],
    currentDate: new Date(fixtures.now * 1000),
  };
  return sample(async (iterations) => {
    for (let index = 0; index < iterations; index += 1) {
      await jose.jwtVerify(fixture.token, key, options);
    }
  });
}

// WebCrypto parameters of @tsndr/cloudflare-worker-jwt 3.2.3 (its `algorithms` table).
const TSNDR_PARAMETERS = {
  RS256: { name: 'RSASSA-PKCS1-v1_5', hash: { name: 'SHA-256' } },
  ES256: { name: 'ECDSA', namedCurve: 'P-256', hash: { name: 'SHA-256' } },
  ES384: { name: 'ECDSA', namedCurve: 'P-384', hash: { name: 'SHA-384' } },
  ES512: { name: 'ECDSA', namedCurve: 'P-521', hash: { name: 'SHA-512' } },
  HS256: { name: 'HMAC', hash: { name: 'SHA-256' } },
};

async function tsndrTimes(fixture) {
  const parameters = TSNDR_PARAMETERS[fixture.alg];
  if (!parameters) return null;
  const { alg, kid, ...jwk } = fixture.jwks.keys[0];
  const key = await webcrypto.subtle.importKey('jwk', jwk, parameters, false, ['verify']);
  return sample(async (iterations) => {
    for (let index = 0; index < iterations; index += 1) {
      await tsndr.verify(fixture.token, key, { algorithm: fixture.alg, throwError: true });
    }
  });
}

const results = [];
for (const fixture of fixtures.cases) {
  const { verify, prepare } = await v8Times(fixture);
  console.error(`v8       ${fixture.name.padEnd(11)} ${JSON.stringify(verify)}`);
  const joseResult = await joseTimes(fixture);
  console.error(`jose     ${fixture.name.padEnd(11)} ${JSON.stringify(joseResult)}`);
  const tsndrResult = await tsndrTimes(fixture);
  console.error(`tsndr    ${fixture.name.padEnd(11)} ${JSON.stringify(tsndrResult)}`);
  results.push({ name: fixture.name, alg: fixture.alg, v8: verify, v8_prepare: prepare, jose: joseResult, tsndr: tsndrResult });
}

const packageVersion = (name) => JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version;
writeFileSync(
  outPath,
  `${JSON.stringify(
    {
      node: process.version,
      v8: process.versions.v8,
      jose: packageVersion('jose'),
      tsndr: packageVersion('@tsndr/cloudflare-worker-jwt'),
      samples: SAMPLES,
      results,
    },
    null,
    2,
  )}\n`,
);
