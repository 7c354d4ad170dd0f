// Test harness of the edge worker. It has a real authorization server (oidc-provider), a key
// server the tests can take down, slow down, rotate and count, and an origin that echoes what
// it received. Its scenario suite runs against the worker in workerd and in Node.js
// (js/test/worker-workerd.test.mjs, js/test/worker-node.test.mjs). Everything listens on
// 127.0.0.1. DPoP keys, proofs and revocation requests come from the npm package's client
// entry point (`portcullis/client` in pkg/), as an application would make them.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';

import { generateSigningKeys, startAuthorizationServer } from '../authz/server.mjs';
import { login } from '../authz/login.mjs';

const { createDpopKey, createDpopProof, revokeToken } = await import(new URL('../../pkg/dist/node/client.js', import.meta.url).href);

export const API = 'https://api.portcullis.test';
export const ES256_API = 'https://es.portcullis.test';
export const OTHER_API = 'https://other.portcullis.test';
export const SHORT_LIVED_API = 'https://short.portcullis.test';
export const OPAQUE_API = 'https://opaque.portcullis.test';
const SHORT_TTL_SECONDS = 2;

/** Claim headers the policies write; a client's own copies must never reach the origin. */
const CLAIM_HEADERS = ['x-jwt-sub', 'x-jwt-scope', 'x-jwt-client'];

/**
 * An in-memory stand-in for the Cache API (`caches.open(name)`, `match`, `put`) for runtimes
 * without one. It ignores `cache-control`, so entries never expire.
 */
export class MemoryCacheStorage {
  #caches = new Map();

  async open(name) {
    if (!this.#caches.has(name)) {
      const entries = new Map();
      this.#caches.set(name, {
        async match(url) {
          const entry = entries.get(String(url));
          return entry === undefined ? undefined : new Response(entry.body, { headers: entry.headers });
        },
        async put(url, response) {
          entries.set(String(url), { body: await response.arrayBuffer(), headers: [...response.headers] });
        },
      });
    }
    return this.#caches.get(name);
  }
}

/** Starts an HTTP server on 127.0.0.1 with `handler`; `close` drops open connections. */
export async function listen(handler) {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Starts an origin that returns 200 with the method, path, headers and body it received. */
export async function startOrigin() {
  return listen(async (request, response) => {
    let body = '';
    for await (const chunk of request) {
      body += chunk;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ method: request.method, path: request.url, headers: request.headers, body }));
  });
}

/**
 * Starts a key server that serves JSON documents by path and counts requests per path.
 * `control.mode` is `up`, `down` (status 503) or `slow` (responds after `control.delayMs`).
 */
export async function startKeyServer() {
  const documents = new Map();
  const counts = new Map();
  const control = { mode: 'up', delayMs: 0 };
  const server = await listen(async (request, response) => {
    const path = request.url;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    if (control.mode === 'down') {
      response.writeHead(503, { 'content-type': 'text/plain' });
      response.end('down for maintenance\n');
      return;
    }
    if (control.mode === 'slow') {
      await sleep(control.delayMs);
    }
    const document = documents.get(path);
    if (document === undefined) {
      response.writeHead(404, { 'content-type': 'text/plain' });
      response.end('not found\n');
      return;
    }
    if (response.destroyed) {
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(document));
  });
  return {
    ...server,
    control,
    /** Serves `document` at `path`. */
    serve(path, document) {
      documents.set(path, document);
      return `${server.url}${path}`;
    },
    /** Requests received at `path`. */
    count: (path) => counts.get(path) ?? 0,
  };
}

function pkcePair() {
  const codeVerifier = randomBytes(32).toString('base64url');
  const codeChallenge = createHash('sha256').update(codeVerifier).digest('base64url');
  return { codeVerifier, codeChallenge };
}

/**
 * Logs in as alice through the authorization code flow and returns the access token. With
 * `dpopKey`, the token request carries a DPoP proof, so the token is bound to that key.
 */
async function tokenFor(server, resource, scope = 'openid api:read', dpopKey = undefined) {
  const dpopFetch = async (url, init = {}) => {
    if (dpopKey === undefined || init.method !== 'POST' || String(url) !== server.tokenEndpoint) {
      return fetch(url, init);
    }
    const proof = await createDpopProof({ key: dpopKey, method: 'POST', url: server.tokenEndpoint });
    return fetch(url, { ...init, headers: { ...init.headers, dpop: proof } });
  };
  const response = await login({
    fetch: dpopFetch,
    issuer: server.issuer,
    discoveryUrl: server.discoveryUrl,
    clientId: 'portcullis-demo',
    redirectUri: 'http://127.0.0.1/callback',
    scope,
    resource,
    ...pkcePair(),
    username: 'alice',
    password: 'wonderland',
    state: randomBytes(16).toString('base64url'),
  });
  return response.access_token;
}

/** Public members of private JWKs. */
function publicJwks(keys) {
  const members = { RSA: ['kty', 'n', 'e'], EC: ['kty', 'crv', 'x', 'y'] };
  return {
    keys: keys.map((key) => {
      const jwk = { kid: key.kid, alg: key.alg, use: 'sig' };
      for (const name of members[key.kty]) {
        jwk[name] = key[name];
      }
      return jwk;
    }),
  };
}

/** Changes the claims so the signature no longer covers them. */
export function tamper(token) {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  claims.scope = `${claims.scope} api:admin`;
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

/** Replaces the header's `kid`. */
function withKid(token, kid) {
  const [header, ...rest] = token.split('.');
  const parsed = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  return [Buffer.from(JSON.stringify({ ...parsed, kid })).toString('base64url'), ...rest].join('.');
}

/**
 * Starts two authorization servers with one issuer: the first signs with the first key
 * generation, the second with a newer one (for rotation tests). Returns tokens from both.
 */
export async function startIdentity() {
  const resources = [
    { url: API, alg: 'RS256' },
    { url: ES256_API, alg: 'ES256' },
    { url: OTHER_API, alg: 'RS256' },
    { url: SHORT_LIVED_API, alg: 'ES256', accessTokenTTL: SHORT_TTL_SECONDS },
    { url: OPAQUE_API, accessTokenFormat: 'opaque' },
  ];
  const quiet = { error: () => {} };
  const oldKeys = await generateSigningKeys({ suffix: 'old' });
  const newKeys = await generateSigningKeys({ suffix: 'new' });
  const current = await startAuthorizationServer({ keys: oldKeys, resources, logger: quiet });
  const rotated = await startAuthorizationServer({ issuer: current.issuer, keys: newKeys, resources, logger: quiet });
  try {
    const shortLived = await tokenFor(current, SHORT_LIVED_API);
    const shortLivedExpiresAt = Date.now() + SHORT_TTL_SECONDS * 1000;
    const tokens = {
      rs256: await tokenFor(current, API),
      es256: await tokenFor(current, ES256_API),
      writer: await tokenFor(current, API, 'openid api:read api:write'),
      wrongAudience: await tokenFor(current, OTHER_API),
      shortLived,
      shortLivedExpiresAt,
      rotated: await tokenFor(rotated, API),
    };
    tokens.unknownKid = withKid(tokens.rs256, 'rs-never-published');
    const dpopKey = await createDpopKey();
    tokens.dpop = await tokenFor(current, API, 'openid api:read', dpopKey);
    return {
      issuer: current.issuer,
      tokens,
      dpopKey,
      introspectionEndpoint: current.introspectionEndpoint,
      apiClient: current.apiClient,
      /** Logs in for a new opaque access token, which the introspection endpoint knows. */
      opaqueToken: () => tokenFor(current, OPAQUE_API),
      /** Revokes an access token as the client it was issued to (RFC 7009). */
      revoke: (token) => revokeToken({ revocationEndpoint: current.revocationEndpoint, token, tokenTypeHint: 'access_token', clientId: 'portcullis-demo' }),
      jwks: publicJwks(oldKeys),
      rotatedJwks: publicJwks([...newKeys, ...oldKeys]),
      close: async () => {
        await current.close();
        await rotated.close();
      },
    };
  } catch (error) {
    await current.close();
    await rotated.close();
    throw error;
  }
}

/** Builds a provider of the test policies that reads keys from `remote`. */
function provider(issuer, remote, extra = {}) {
  return {
    issuer,
    audiences: [API, ES256_API, SHORT_LIVED_API],
    algorithms: ['RS256', 'ES256'],
    profile: 'rfc9068',
    // The servers and the worker share this machine's clock.
    clock_skew_seconds: 0,
    scopes: { all_of: ['api:read'] },
    remote_jwks: remote,
    claim_to_headers: [
      { header_name: 'x-jwt-sub', claim_name: 'sub' },
      { header_name: 'x-jwt-scope', claim_name: 'scope' },
      { header_name: 'x-jwt-client', claim_name: 'client_id' },
    ],
    ...extra,
  };
}

/**
 * The main policy: `/public` needs no token, `/admin` needs scope `api:write`, everything else
 * a token of `idp`. Each provider fetches keys from its own path, so fetches can be counted
 * per provider.
 */
export function mainPolicy(issuer, keyServer, jwks) {
  const jwksUrl = keyServer.serve('/jwks', jwks);
  const writerUrl = keyServer.serve('/jwks-writer', jwks);
  return {
    providers: {
      idp: provider(issuer, { http_uri: { uri: jwksUrl, timeout: '2s' }, cache_duration: '300s', refetch_cooldown: '30s' }),
      writer: provider(issuer, { http_uri: { uri: writerUrl, timeout: '2s' }, cache_duration: '300s' }, {
        scopes: { all_of: ['api:read', 'api:write'] },
      }),
    },
    rules: [
      { match: { prefix: '/public' } },
      { match: { prefix: '/admin' }, requires: { provider_name: 'writer' } },
      { match: { prefix: '/' }, requires: { provider_name: 'idp' } },
    ],
  };
}

/** Sends a request with a spoofed claim header and reads the outcome. */
export async function probe(baseUrl, path, token, extraHeaders = {}) {
  const headers = { 'x-jwt-sub': 'spoofed-by-client', 'x-jwt-scope': 'api:admin', ...extraHeaders };
  if (token !== undefined) {
    headers.authorization = `Bearer ${token}`;
  }
  const started = performance.now();
  const response = await fetch(`${baseUrl}${path}`, { headers });
  const text = await response.text();
  const result = {
    status: response.status,
    challenge: response.headers.get('www-authenticate'),
    text,
    elapsedMs: performance.now() - started,
  };
  if (response.status === 200) {
    result.origin = JSON.parse(text);
  } else {
    // Plain-text replies are `<code>: <message>`.
    result.code = text.split(':')[0].trim();
  }
  return result;
}

/** Sends `method path` with `Authorization: DPoP <token>` and, when given, a `DPoP` proof. */
export async function dpopProbe(baseUrl, path, token, proof, method = 'GET') {
  const headers = { authorization: `DPoP ${token}` };
  if (proof !== undefined) {
    headers.dpop = proof;
  }
  const response = await fetch(`${baseUrl}${path}`, { method, headers });
  const text = await response.text();
  return {
    status: response.status,
    challenge: response.headers.get('www-authenticate'),
    nonce: response.headers.get('dpop-nonce'),
    text,
    code: response.status === 200 ? undefined : text.split(':')[0].trim(),
    origin: response.status === 200 ? JSON.parse(text) : undefined,
  };
}

/** Asserts a 401 `dpop_proof_invalid` reply with a DPoP challenge whose message matches. */
function assertProofRejected(result, message, name) {
  assert.equal(result.status, 401, `${name}: ${result.text}`);
  assert.equal(result.code, 'dpop_proof_invalid', `${name}: ${result.text}`);
  assert.match(result.text, message, name);
  assert.match(result.challenge, /^DPoP realm="[^"]*", algs="ES256 RS256 PS256 EdDSA", error="invalid_dpop_proof"/, `${name}: ${result.challenge}`);
}

/** Asserts an RFC 6750 rejection. */
function assertRejected(result, status, code, error) {
  assert.equal(result.status, status, result.text);
  assert.equal(result.code, code, result.text);
  assert.ok(result.challenge?.startsWith('Bearer '), `challenge: ${result.challenge}`);
  if (error === null) {
    assert.ok(!result.challenge.includes('error='), result.challenge);
  } else {
    assert.ok(result.challenge.includes(`error="${error}"`), result.challenge);
  }
}

/** Asserts a forwarded request carrying the verified claims and no client-set copies. */
function assertForwarded(result) {
  assert.equal(result.status, 200, result.text);
  const { headers } = result.origin;
  assert.equal(headers['x-jwt-sub'], 'alice');
  assert.equal(headers['x-jwt-client'], 'portcullis-demo');
  assert.ok(headers['x-jwt-scope'].split(' ').includes('api:read'), headers['x-jwt-scope']);
  assert.ok(!headers['x-jwt-scope'].includes('api:admin'), 'the spoofed scope reached the origin');
  assert.equal(headers.authorization, undefined, 'the credential reached the origin');
}

/** Polls `probe` until `accept(result)` or `timeoutMs`; returns the last result. */
async function eventually(send, accept, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let result = await send();
  while (!accept(result) && Date.now() < deadline) {
    await sleep(200);
    result = await send();
  }
  return result;
}

/**
 * Defines the scenario tests for one runtime. `start({ policy, originUrl })` starts the worker
 * and returns `{ url, close, restart }`; `restart()` loads the worker into a new isolate that
 * shares the Cache API, and may change `url`.
 */
export function defineWorkerTests(runtime, start) {
  let identity;
  let origin;
  let keyServer;
  const running = [];

  const startWorker = async (policy) => {
    const worker = await start({ policy, originUrl: origin.url });
    running.push(worker);
    return worker;
  };

  before(async () => {
    identity = await startIdentity();
    origin = await startOrigin();
    keyServer = await startKeyServer();
  });

  after(async () => {
    for (const worker of running) {
      await worker.close();
    }
    await keyServer?.close();
    await origin?.close();
    await identity?.close();
  });

  test(`${runtime}: concurrent first requests share one key fetch`, async () => {
    const worker = await startWorker(mainPolicy(identity.issuer, keyServer, identity.jwks));
    const results = await Promise.all(Array.from({ length: 8 }, () => probe(worker.url, '/orders', identity.tokens.rs256)));
    for (const result of results) {
      assertForwarded(result);
    }
    // Every remote provider fetches its keys on the first request, each exactly once.
    assert.equal(keyServer.count('/jwks'), 1);
    assert.equal(keyServer.count('/jwks-writer'), 1);
  });

  test(`${runtime}: RS256 and ES256 tokens accepted with claim headers`, async () => {
    const worker = await startWorker(mainPolicy(identity.issuer, keyServer, identity.jwks));
    for (const token of [identity.tokens.rs256, identity.tokens.es256]) {
      assertForwarded(await probe(worker.url, '/orders?page=2', token));
    }
    const admin = await probe(worker.url, '/admin/users', identity.tokens.writer);
    assertForwarded(admin);
    assert.equal(admin.origin.path, '/admin/users');
  });

  test(`${runtime}: rejections per reason`, async () => {
    const worker = await startWorker(mainPolicy(identity.issuer, keyServer, identity.jwks));
    const { tokens } = identity;
    const waitMs = tokens.shortLivedExpiresAt + 1000 - Date.now();
    if (waitMs > 0) {
      await sleep(waitMs);
    }
    assertRejected(await probe(worker.url, '/orders', tokens.shortLived), 401, 'token_expired', 'invalid_token');
    assertRejected(await probe(worker.url, '/orders', tokens.wrongAudience), 401, 'audience_invalid', 'invalid_token');
    assertRejected(await probe(worker.url, '/orders', tamper(tokens.rs256)), 401, 'signature_invalid', 'invalid_token');
    assertRejected(await probe(worker.url, '/orders', undefined), 401, 'token_missing', null);
    const scope = await probe(worker.url, '/admin/users', tokens.rs256);
    assertRejected(scope, 403, 'insufficient_scope', 'insufficient_scope');
    assert.ok(scope.challenge.includes('scope="api:write"'), scope.challenge);
  });

  test(`${runtime}: request body forwarded to the origin`, async () => {
    const worker = await startWorker(mainPolicy(identity.issuer, keyServer, identity.jwks));
    const response = await fetch(`${worker.url}/orders?draft=1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${identity.tokens.rs256}`, 'content-type': 'application/json' },
      body: JSON.stringify({ item: 'book', quantity: 2 }),
    });
    const echoed = await response.json();
    assert.equal(response.status, 200);
    assert.equal(echoed.method, 'POST');
    assert.equal(echoed.path, '/orders?draft=1');
    assert.deepEqual(JSON.parse(echoed.body), { item: 'book', quantity: 2 });
    assert.equal(echoed.headers['x-jwt-sub'], 'alice');
  });

  test(`${runtime}: spoofed claim headers never reach the origin`, async () => {
    const worker = await startWorker(mainPolicy(identity.issuer, keyServer, identity.jwks));
    const open = await probe(worker.url, '/public/status', undefined);
    assert.equal(open.status, 200, open.text);
    for (const name of CLAIM_HEADERS) {
      assert.equal(open.origin.headers[name], undefined, `${name} reached the origin`);
    }
    const mixedCase = await probe(worker.url, '/orders', identity.tokens.rs256, { 'X-JWT-Sub': 'mallory' });
    assertForwarded(mixedCase);
  });

  test(`${runtime}: keys rotated on the server are fetched once for the new kid`, async () => {
    const rotation = await startKeyServer();
    running.push(rotation);
    const policy = mainPolicy(identity.issuer, rotation, identity.jwks);
    const worker = await startWorker(policy);
    assertForwarded(await probe(worker.url, '/orders', identity.tokens.rs256));
    assert.equal(rotation.count('/jwks'), 1);

    rotation.serve('/jwks', identity.rotatedJwks);
    assertForwarded(await probe(worker.url, '/orders', identity.tokens.rotated));
    assert.equal(rotation.count('/jwks'), 2, 'the unknown kid did not cause exactly one refetch');
    assertForwarded(await probe(worker.url, '/orders', identity.tokens.rs256));

    // Within the cooldown another unknown kid is rejected without a fetch.
    assertRejected(await probe(worker.url, '/orders', identity.tokens.unknownKid), 401, 'key_not_found', 'invalid_token');
    assert.equal(rotation.count('/jwks'), 2);
  });

  test(`${runtime}: stale keys serve while the key server is down, then fail closed`, async () => {
    const flaky = await startKeyServer();
    running.push(flaky);
    const jwksUrl = flaky.serve('/jwks', identity.jwks);
    const policy = {
      providers: {
        idp: provider(identity.issuer, {
          http_uri: { uri: jwksUrl, timeout: '500ms' },
          cache_duration: '1s',
          stale_if_error: '3s',
        }),
      },
    };
    const worker = await startWorker(policy);
    assertForwarded(await probe(worker.url, '/orders', identity.tokens.rs256));
    const fetchedAt = Date.now();

    flaky.control.mode = 'down';
    await sleep(fetchedAt + 1500 - Date.now());
    const stale = await probe(worker.url, '/orders', identity.tokens.rs256);
    assertForwarded(stale);
    assert.ok(flaky.count('/jwks') >= 2, 'no refresh was attempted after the cache duration');

    await sleep(fetchedAt + 4500 - Date.now());
    const closed = await probe(worker.url, '/orders', identity.tokens.rs256);
    assertRejected(closed, 401, 'jwks_unavailable', 'invalid_token');
    assert.match(closed.text, /status 503/);

    flaky.control.mode = 'up';
    const recovered = await eventually(() => probe(worker.url, '/orders', identity.tokens.rs256), (result) => result.status === 200, 10_000);
    assertForwarded(recovered);
  });

  test(`${runtime}: slow key server times out and fails closed`, async () => {
    const slow = await startKeyServer();
    running.push(slow);
    slow.control.mode = 'slow';
    slow.control.delayMs = 3000;
    const jwksUrl = slow.serve('/jwks', identity.jwks);
    const policy = {
      providers: {
        idp: provider(identity.issuer, { http_uri: { uri: jwksUrl, timeout: '300ms' }, pending_timeout: '2s' }),
      },
    };
    const worker = await startWorker(policy);
    const result = await probe(worker.url, '/orders', identity.tokens.rs256);
    assertRejected(result, 401, 'jwks_unavailable', 'invalid_token');
    assert.match(result.text, /timed out after 300 ms/);
    assert.ok(result.elapsedMs < 1500, `the request took ${Math.round(result.elapsedMs)} ms`);

    slow.control.mode = 'up';
    const recovered = await eventually(() => probe(worker.url, '/orders', identity.tokens.rs256), (next) => next.status === 200, 5_000);
    assertForwarded(recovered);
  });

  test(`${runtime}: discovery finds the key set and checks the issuer`, async () => {
    const discovery = await startKeyServer();
    running.push(discovery);
    const jwksUrl = discovery.serve('/keys', identity.jwks);
    const goodUrl = discovery.serve('/good/.well-known/openid-configuration', { issuer: identity.issuer, jwks_uri: jwksUrl });
    const evilUrl = discovery.serve('/evil/.well-known/openid-configuration', { issuer: 'http://127.0.0.1:1', jwks_uri: jwksUrl });
    const policyFor = (uri) => ({
      providers: { idp: provider(identity.issuer, { discovery_uri: { uri, timeout: '1s' } }) },
    });

    const good = await startWorker(policyFor(goodUrl));
    assertForwarded(await probe(good.url, '/orders', identity.tokens.es256));
    assert.equal(discovery.count('/good/.well-known/openid-configuration'), 1);
    assert.equal(discovery.count('/keys'), 1);

    const evil = await startWorker(policyFor(evilUrl));
    const rejected = await probe(evil.url, '/orders', identity.tokens.es256);
    assertRejected(rejected, 401, 'jwks_unavailable', 'invalid_token');
    assert.match(rejected.text, /discovery document names issuer/);
    assert.equal(discovery.count('/keys'), 1, 'keys were fetched from a discovery document with the wrong issuer');
  });

  test(`${runtime}: a new isolate starts with keys from the Cache API`, async () => {
    const persisted = await startKeyServer();
    running.push(persisted);
    const worker = await startWorker(mainPolicy(identity.issuer, persisted, identity.jwks));
    assertForwarded(await probe(worker.url, '/orders', identity.tokens.rs256));
    assert.equal(persisted.count('/jwks'), 1);
    // The copy is written after the response; give it a moment.
    await sleep(200);

    persisted.control.mode = 'down';
    await worker.restart();
    assertForwarded(await probe(worker.url, '/orders', identity.tokens.rs256));
    assert.equal(persisted.count('/jwks'), 1, 'the new isolate fetched keys instead of adopting the cached copy');
  });

  test(`${runtime}: DPoP-bound token works with its proof and no other`, async () => {
    const policy = mainPolicy(identity.issuer, keyServer, identity.jwks);
    policy.providers.idp.dpop = { mode: 'allowed' };
    const worker = await startWorker(policy);
    const { dpopKey, tokens } = identity;
    const token = tokens.dpop;
    const url = `${worker.url}/orders`;
    const proof = await createDpopProof({ key: dpopKey, method: 'GET', url, accessToken: token });
    const allowed = await dpopProbe(worker.url, '/orders', token, proof);
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(allowed.origin.headers['x-jwt-sub'], 'alice');
    assert.equal(allowed.origin.headers.authorization, undefined, 'the credential reached the origin');
    assert.equal(allowed.origin.headers.dpop, undefined, 'the proof reached the origin');

    assertProofRejected(await dpopProbe(worker.url, '/orders', token, proof), /used before/, 'replayed proof');
    const missing = await dpopProbe(worker.url, '/orders', token, undefined);
    assertProofRejected(missing, /no `DPoP` header/, 'no proof');
    assert.match(missing.challenge, /, Bearer realm=/, 'Bearer is offered as well');
    const otherUrl = await createDpopProof({ key: dpopKey, method: 'GET', url: `${worker.url}/admin`, accessToken: token });
    assertProofRejected(await dpopProbe(worker.url, '/orders', token, otherUrl), /`htu`/, 'proof for another URL');
    assertProofRejected(await dpopProbe(worker.url, '/orders', token, await createDpopProof({ key: dpopKey, method: 'GET', url, accessToken: token }), 'DELETE'), /`htm`/, 'proof for another method');
    const otherKey = await createDpopKey();
    assertProofRejected(
      await dpopProbe(worker.url, '/orders', token, await createDpopProof({ key: otherKey, method: 'GET', url, accessToken: token })),
      /not the key the access token is bound to/,
      'proof with another key',
    );
    const old = await createDpopProof({ key: dpopKey, method: 'GET', url, accessToken: token, now: Date.now() / 1000 - 600 });
    assertProofRejected(await dpopProbe(worker.url, '/orders', token, old), /`iat`/, 'old proof');
    const otherToken = await createDpopProof({ key: dpopKey, method: 'GET', url, accessToken: tokens.rs256 });
    assertProofRejected(await dpopProbe(worker.url, '/orders', token, otherToken), /`ath`/, 'proof for another token');

    const asBearer = await probe(worker.url, '/orders', token);
    assert.equal(asBearer.status, 401);
    assert.equal(asBearer.code, 'dpop_proof_invalid');
    assert.match(asBearer.challenge, /^Bearer realm="[^"]*", error="invalid_token"/);
    // Tokens that are not bound still work as bearer tokens.
    assertForwarded(await probe(worker.url, '/orders', tokens.rs256));
  });

  test(`${runtime}: DPoP nonce is required, issued and accepted`, async () => {
    const policy = mainPolicy(identity.issuer, keyServer, identity.jwks);
    policy.providers.idp.dpop = { mode: 'required', nonce: { enabled: true } };
    const worker = await startWorker(policy);
    const { dpopKey } = identity;
    const token = identity.tokens.dpop;
    const url = `${worker.url}/orders`;
    const first = await dpopProbe(worker.url, '/orders', token, await createDpopProof({ key: dpopKey, method: 'GET', url, accessToken: token }));
    assert.equal(first.status, 401, first.text);
    assert.equal(first.code, 'dpop_nonce_required');
    assert.match(first.challenge, /^DPoP realm="[^"]*", algs="[^"]+", error="use_dpop_nonce"/);
    assert.ok(first.nonce, 'the reply carries a DPoP-Nonce header');
    const proof = await createDpopProof({ key: dpopKey, method: 'GET', url, accessToken: token, nonce: first.nonce });
    const allowed = await dpopProbe(worker.url, '/orders', token, proof);
    assert.equal(allowed.status, 200, allowed.text);
    assert.equal(allowed.nonce, first.nonce, 'the response carries the current nonce');
    const bearer = await probe(worker.url, '/orders', identity.tokens.rs256);
    assert.equal(bearer.status, 401);
    assert.match(bearer.text, /requires DPoP/);
  });

  test(`${runtime}: a revoked opaque token is rejected within one introspection cache duration`, async () => {
    const policy = {
      providers: {
        idp: {
          issuer: identity.issuer,
          audiences: [OPAQUE_API],
          algorithms: [],
          scopes: { all_of: ['api:read'] },
          introspection: {
            http_uri: { uri: identity.introspectionEndpoint, timeout: '2s' },
            client_id: identity.apiClient.clientId,
            client_secret: identity.apiClient.clientSecret,
            cache_duration: '2s',
          },
          claim_to_headers: [
            { header_name: 'x-jwt-sub', claim_name: 'sub' },
            { header_name: 'x-jwt-scope', claim_name: 'scope' },
            { header_name: 'x-jwt-client', claim_name: 'client_id' },
          ],
        },
      },
    };
    const worker = await startWorker(policy);
    const token = await identity.opaqueToken();
    assertForwarded(await probe(worker.url, '/orders', token));
    await identity.revoke(token);
    const revokedAt = Date.now();
    // Within the cache duration the cached answer still serves.
    assertForwarded(await probe(worker.url, '/orders', token));
    await sleep(revokedAt + 2100 - Date.now());
    assertRejected(await probe(worker.url, '/orders', token), 401, 'token_inactive', 'invalid_token');
    assertRejected(await probe(worker.url, '/orders', 'never-issued'), 401, 'token_inactive', 'invalid_token');
  });

  test(`${runtime}: revocation list rejects a listed jti`, async () => {
    const lists = await startKeyServer();
    running.push(lists);
    const [, payload] = identity.tokens.writer.split('.');
    const { jti } = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    const listUrl = lists.serve('/revoked.json', { revoked: [jti] });
    const policy = mainPolicy(identity.issuer, keyServer, identity.jwks);
    policy.providers.idp.revocation_list = { http_uri: { uri: listUrl, timeout: '1s' }, cache_duration: '60s' };
    const worker = await startWorker(policy);
    assertRejected(await probe(worker.url, '/orders', identity.tokens.writer), 401, 'token_revoked', 'invalid_token');
    assertForwarded(await probe(worker.url, '/orders', identity.tokens.rs256));
    assert.equal(lists.count('/revoked.json'), 1, 'one fetch serves both requests');
  });

  test(`${runtime}: an invalid policy fails closed`, async () => {
    const worker = await startWorker({ providers: {} });
    const result = await probe(worker.url, '/public', undefined);
    assert.equal(result.status, 500);
    assert.equal(result.origin, undefined);
    assert.match(result.text, /portcullis_not_configured/);
  });
}
