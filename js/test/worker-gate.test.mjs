// Tests of the `portcullis/gate` entry point (the Gate class the edge worker drives) through
// the built package in pkg/: package layout, fetch scheduling, discovery, adoption of cached
// key sets, decisions, and the declarations. Build it first with `make pkg`.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';

const PKG_DIR = fileURLToPath(new URL('../../pkg/', import.meta.url));
const JS_DIR = fileURLToPath(new URL('..', import.meta.url));
const MISSING = !existsSync(join(PKG_DIR, 'dist/node/gate.js'));

const ISSUER = 'https://idp.example.com';
const JWKS_URL = 'https://idp.example.com/jwks';
const DISCOVERY_URL = 'https://idp.example.com/.well-known/openid-configuration';
const NOW = 1_800_000_000_000;

function config(remote, extra = {}) {
  return {
    providers: {
      idp: {
        issuer: ISSUER,
        audiences: ['api'],
        algorithms: ['ES256'],
        remote_jwks: remote,
        claim_to_headers: [{ header_name: 'x-jwt-sub', claim_name: 'sub' }],
        ...extra,
      },
    },
  };
}

const REMOTE = { http_uri: { uri: JWKS_URL, timeout: '1s' }, cache_duration: '60s', refetch_cooldown: '30s', stale_if_error: '120s' };

async function signingKey(kid) {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const sign = (claims = {}, header = {}) =>
    new SignJWT({ sub: 'alice', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid, ...header })
      .setIssuer(ISSUER)
      .setAudience('api')
      .setIssuedAt(NOW / 1000)
      .setExpirationTime(NOW / 1000 + 3600)
      .sign(privateKey);
  return { jwk, sign };
}

/** The key-set fetch `fetchesDue` lists for provider `idp`. */
function jwksFetch(url, timeoutMs) {
  return {
    id: 'idp',
    provider: 'idp',
    kind: 'jwks',
    url,
    method: 'GET',
    headers: [['accept', 'application/jwk-set+json, application/json']],
    body: null,
    timeoutMs,
    maxBytes: 262_144,
  };
}

function request(token, path = '/orders', extraHeaders = {}) {
  const headers = new Headers(extraHeaders);
  if (token !== undefined) {
    headers.set('authorization', `Bearer ${token}`);
  }
  return { method: 'GET', url: `https://api.example.com${path}`, headers };
}

if (MISSING) {
  test('pkg/ has the gate entry point', () => {
    assert.fail(`pkg/ has no portcullis/gate build in ${PKG_DIR}: run \`make pkg\` (js/package/build.sh) before \`npm test\``);
  });
} else {
  const gateModule = await import(join(PKG_DIR, 'dist/node/gate.js'));
  const { TokenError } = await import(join(PKG_DIR, 'dist/node/verify.js'));
  defineGateTests(gateModule, TokenError);
}

function defineGateTests(gateModule, TokenError) {
  const { Gate } = gateModule;
  test('gate entry point in package.json', () => {
    const manifest = JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8'));
    const conditions = manifest.exports['./gate'];
    assert.deepEqual(Object.keys(conditions), ['types', 'workerd', 'web', 'node', 'default']);
    for (const target of Object.values(conditions)) {
      assert.ok(existsSync(join(PKG_DIR, target)), `${target} is missing`);
    }
    assert.ok(manifest.files.includes('gate.d.ts'));
  });

  test('gate resolves under node and workerd conditions', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-gate-resolve-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(PKG_DIR, join(dir, 'node_modules', 'portcullis'), 'dir');
    const resolve = (conditions) =>
      execFileSync(
        process.execPath,
        [...conditions.map((name) => `--conditions=${name}`), '--input-type=module', '-e', "console.log(import.meta.resolve('portcullis/gate'))"],
        { cwd: dir, encoding: 'utf8' },
      ).trim();
    assert.match(resolve([]), /\/dist\/node\/gate\.js$/);
    assert.match(resolve(['workerd']), /\/dist\/workerd\/gate\.js$/);
  });

  test('gate exports what gate.d.ts declares', () => {
    assert.deepEqual(Object.keys(gateModule).sort(), ['Gate', 'TokenError']);
    const declaration = readFileSync(join(PKG_DIR, 'gate.d.ts'), 'utf8');
    assert.match(declaration, /^export class Gate \{/m);
    assert.match(declaration, /^export \{ TokenError \} from '\.\/errors\.js';/m);
    assert.equal(gateModule.TokenError, TokenError, 'the gate throws another TokenError class');
  });

  test('gate declarations pass the type tests', () => {
    const result = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'worker/types'], {
      cwd: JS_DIR,
      encoding: 'utf8',
    });
    assert.equal(result.status, 0, `tsc failed:\n${result.stdout}${result.stderr}`);
  });

  test('gate rejects invalid configuration', () => {
    assert.throws(() => new Gate({ providers: {} }), (error) => error instanceof TokenError && error.code === 'config_invalid');
    assert.throws(() => new Gate('{'), (error) => error instanceof TokenError && error.code === 'config_invalid');
    const noIssuer = { discovery_uri: { uri: 'https://idp.example.com/metadata.json' } };
    assert.throws(
      () => new Gate({ providers: { idp: { algorithms: ['ES256'], remote_jwks: noIssuer } } }),
      (error) => error.code === 'config_invalid' && /set `issuer`/.test(error.message),
    );
  });

  test('gate lists providers with timing in milliseconds', () => {
    const gate = new Gate(config(REMOTE));
    assert.deepEqual(gate.providers, [
      {
        name: 'idp',
        keys: 'remote',
        url: JWKS_URL,
        kind: 'jwks',
        timeoutMs: 1000,
        cacheDurationMs: 60_000,
        refetchCooldownMs: 30_000,
        staleIfErrorMs: 120_000,
        pendingTimeoutMs: 1000,
        revocationListUrl: null,
        introspectionUrl: null,
        dpop: null,
      },
    ]);
  });

  test('fetchesDue lists one fetch until it is reported', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE));
    const due = gate.fetchesDue(NOW);
    assert.deepEqual(due, [jwksFetch(JWKS_URL, 1000)]);
    assert.deepEqual(gate.fetchesDue(NOW + 10), [], 'a second fetch started while one is in flight');
    assert.equal(gate.decide(request(await key.sign()), NOW + 10, false).action, 'pending');

    const outcome = gate.fetchSucceeded('idp', JSON.stringify({ keys: [key.jwk] }), NOW + 20);
    assert.deepEqual(outcome, { outcome: 'stored', keys: 1, skipped: [] });
    assert.deepEqual(gate.fetchSucceeded('idp', '{"keys":[]}', NOW + 30), { outcome: 'ignored' });
    assert.deepEqual(gate.fetchesDue(NOW + 30), []);
    const status = gate.keyStatus('idp', NOW + 30);
    assert.equal(status.state, 'fresh');
    assert.equal(status.fetchedAtMs, NOW + 20);
    assert.equal(status.expiresAtMs, NOW + 20 + 60_000);
    // The background refresh starts in the last tenth of the cache duration (6 s of 60 s),
    // and at least 5 s before expiry.
    assert.deepEqual(gate.fetchesDue(NOW + 20 + 53_999), []);
    assert.equal(gate.fetchesDue(NOW + 20 + 54_000).length, 1);
  });

  test('failed fetch backs off and fails requests closed', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE));
    gate.fetchesDue(NOW);
    assert.equal(gate.fetchFailed('idp', 'the key server responded with status 503', NOW + 5), true);
    assert.equal(gate.fetchFailed('idp', 'again', NOW + 6), false);
    const status = gate.keyStatus('idp', NOW + 10);
    assert.equal(status.state, 'none');
    assert.equal(status.failures, 1);
    assert.equal(status.lastError, 'the key server responded with status 503');
    // The first retry waits 1 s plus up to 20 % jitter.
    assert.ok(status.retryAtMs >= NOW + 1005, `retryAtMs ${status.retryAtMs}`);
    assert.ok(status.retryAtMs <= NOW + 1205, `retryAtMs ${status.retryAtMs}`);
    assert.deepEqual(gate.fetchesDue(NOW + 500), []);

    const denied = gate.decide(request(await key.sign()), NOW + 500, false);
    assert.equal(denied.action, 'deny');
    assert.equal(denied.status, 401);
    assert.equal(denied.code, 'jwks_unavailable');
    assert.match(denied.message, /status 503/);
    assert.equal(gate.fetchesDue(status.retryAtMs).length, 1);
  });

  test('final attempt turns pending keys into a denial', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE));
    gate.fetchesDue(NOW);
    const denied = gate.decide(request(await key.sign()), NOW + 1000, true);
    assert.equal(denied.action, 'deny');
    assert.equal(denied.code, 'jwks_unavailable');
  });

  test('unknown kid refetches once per cooldown', async () => {
    const old = await signingKey('old');
    const rotated = await signingKey('new');
    const gate = new Gate(config(REMOTE));
    gate.fetchesDue(NOW);
    gate.fetchSucceeded('idp', JSON.stringify({ keys: [old.jwk] }), NOW);

    const token = await rotated.sign();
    assert.equal(gate.decide(request(token), NOW + 1000, false).action, 'pending');
    // A second request during the refetch waits for it too, without a second fetch.
    assert.equal(gate.decide(request(token), NOW + 1001, false).action, 'pending');
    assert.equal(gate.fetchesDue(NOW + 1002).length, 1);
    assert.equal(gate.decide(request(token), NOW + 1003, false).action, 'pending');
    gate.fetchSucceeded('idp', JSON.stringify({ keys: [rotated.jwk, old.jwk] }), NOW + 1100);
    assert.equal(gate.decide(request(token), NOW + 1101, false).action, 'allow');

    const stranger = await (await signingKey('stranger')).sign();
    const denied = gate.decide(request(stranger), NOW + 2000, false);
    assert.equal(denied.action, 'deny', 'a refetch was granted within the cooldown');
    assert.equal(denied.code, 'key_not_found');
    assert.equal(gate.decide(request(stranger), NOW + 1000 + 30_000, false).action, 'pending');
  });

  test('stale keys serve within the grace period with one warning', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE));
    gate.fetchesDue(NOW);
    gate.fetchSucceeded('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    const token = await key.sign();
    const expired = NOW + 61_000;
    assert.equal(gate.fetchesDue(expired).length, 1);
    gate.fetchFailed('idp', 'the key server timed out after 1000 ms', expired);

    const first = gate.decide(request(token), expired + 1, false);
    assert.equal(first.action, 'allow');
    assert.equal(first.warnings.length, 1);
    assert.match(first.warnings[0], /^provider idp: serving keys fetched 61 s ago/);
    assert.deepEqual(gate.decide(request(token), expired + 2, false).warnings, []);
    assert.equal(gate.keyStatus('idp', expired + 2).state, 'stale');

    const closed = gate.decide(request(token), NOW + 60_000 + 120_000, false);
    assert.equal(closed.action, 'deny');
    assert.equal(closed.code, 'jwks_unavailable');
  });

  test('discovery continues with the discovered key set', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config({ discovery_uri: { uri: DISCOVERY_URL, timeout: '2s' } }));
    const [due] = gate.fetchesDue(NOW);
    assert.equal(due.kind, 'discovery');
    assert.equal(due.url, DISCOVERY_URL);
    assert.equal(due.maxBytes, 65_536);
    const next = gate.fetchSucceeded('idp', JSON.stringify({ issuer: ISSUER, jwks_uri: 'https://keys.example.com/certs' }), NOW + 10);
    assert.deepEqual(next, { outcome: 'next', fetch: jwksFetch('https://keys.example.com/certs', 2000) });
    assert.deepEqual(gate.fetchesDue(NOW + 20), [], 'the key-set call belongs to the fetch in flight');
    assert.equal(gate.fetchSucceeded('idp', JSON.stringify({ keys: [key.jwk] }), NOW + 30).outcome, 'stored');
    assert.equal(gate.decide(request(await key.sign()), NOW + 40, false).action, 'allow');
  });

  test('discovery rejects a document for another issuer', () => {
    const gate = new Gate(config({ discovery_uri: { uri: DISCOVERY_URL } }));
    gate.fetchesDue(NOW);
    const outcome = gate.fetchSucceeded('idp', JSON.stringify({ issuer: 'https://evil.example.com', jwks_uri: 'https://evil.example.com/k' }), NOW);
    assert.equal(outcome.outcome, 'failed');
    assert.match(outcome.reason, /discovery document names issuer `https:\/\/evil\.example\.com`/);
    assert.equal(gate.keyStatus('idp', NOW).failures, 1);
  });

  test('invalid key set counts as a failed fetch', () => {
    const gate = new Gate(config(REMOTE));
    gate.fetchesDue(NOW);
    const outcome = gate.fetchSucceeded('idp', new TextEncoder().encode('<html>'), NOW);
    assert.equal(outcome.outcome, 'failed');
    assert.match(outcome.reason, /^the key set is invalid/);
  });

  test('adoptKeys takes only newer key sets', async () => {
    const old = await signingKey('old');
    const rotated = await signingKey('new');
    const gate = new Gate(config(REMOTE));
    assert.equal(gate.adoptKeys('idp', JSON.stringify({ keys: [old.jwk] }), NOW), true);
    assert.equal(gate.adoptKeys('idp', JSON.stringify({ keys: [rotated.jwk] }), NOW - 1), false);
    assert.equal(gate.decide(request(await old.sign()), NOW + 1, false).action, 'allow');
    assert.deepEqual(gate.fetchesDue(NOW + 1), [], 'a fresh adopted set was fetched again');
    // An adopted set ages from when it was fetched, not from when it was adopted.
    assert.equal(gate.keyStatus('idp', NOW + 60_000).state, 'stale');

    const buffer = new TextEncoder().encode(JSON.stringify({ keys: [rotated.jwk] })).buffer;
    assert.equal(gate.adoptKeys('idp', buffer, NOW + 5), true);
    assert.throws(() => gate.adoptKeys('idp', 'not json', NOW + 6), (error) => error instanceof TokenError && error.code === 'jwks_invalid');
    assert.throws(() => gate.adoptKeys('other', '{"keys":[]}', NOW), RangeError);
    assert.throws(() => gate.adoptKeys('idp', 42, NOW), TypeError);
  });

  test('decide removes spoofed claim headers and the credential', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE));
    gate.adoptKeys('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    const decision = gate.decide(request(await key.sign(), '/orders?page=2', { 'X-JWT-Sub': 'mallory' }), NOW + 1, false);
    assert.equal(decision.action, 'allow');
    assert.deepEqual(decision.removeHeaders, ['x-jwt-sub', 'authorization']);
    assert.deepEqual(decision.setHeaders, [['x-jwt-sub', 'alice']]);
    assert.equal(decision.url, 'https://api.example.com/orders?page=2');
    assert.deepEqual(decision.providers, ['idp']);
  });

  test('decide takes a query token out of the forwarded URL', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE, { from_params: ['access_token'] }));
    gate.adoptKeys('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    const token = await key.sign();
    const decision = gate.decide({ method: 'GET', url: `https://api.example.com/feed?access_token=${token}&page=2#top` }, NOW + 1, false);
    assert.equal(decision.action, 'allow');
    assert.equal(decision.url, 'https://api.example.com/feed?page=2');
  });

  test('decide reads headers as Headers, pairs or an object', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE));
    gate.adoptKeys('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    const authorization = `Bearer ${await key.sign()}`;
    for (const headers of [new Headers({ authorization }), [['Authorization', authorization]], { Authorization: authorization }]) {
      assert.equal(gate.decide({ method: 'GET', url: 'https://api.example.com/', headers }, NOW + 1, false).action, 'allow');
    }
    assert.throws(() => gate.decide({ method: 'GET', url: '/relative' }, NOW, false), TypeError);
    assert.throws(() => gate.decide({ method: 'GET', url: 'https://api.example.com/', headers: [['a']] }, NOW, false), TypeError);
  });

  test('decide replies per RFC 6750', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE, { scopes: { all_of: ['api:write'] } }));
    gate.adoptKeys('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    const missing = gate.decide(request(undefined), NOW + 1, false);
    assert.equal(missing.status, 401);
    assert.equal(missing.code, 'token_missing');
    assert.deepEqual(missing.headers[0], ['www-authenticate', 'Bearer realm="https://api.example.com/orders"']);
    const scope = gate.decide(request(await key.sign({ scope: 'api:read' })), NOW + 1, false);
    assert.equal(scope.status, 403);
    assert.equal(scope.code, 'insufficient_scope');
    assert.match(scope.headers[0][1], /error="insufficient_scope"/);
    assert.match(scope.headers[0][1], /scope="api:write"/);
    assert.equal(scope.provider, 'idp');
  });

  test('verified-token cache serves a repeated token', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE));
    gate.adoptKeys('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    const token = await key.sign();
    gate.decide(request(token), NOW + 1, false);
    gate.decide(request(token), NOW + 2, false);
    assert.deepEqual(gate.takeCacheStats(), { hits: 1, misses: 1, entries: 1 });
    const off = new Gate({ ...config(REMOTE), jwt_cache_config: { jwt_cache_size: 0 } });
    off.adoptKeys('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    off.decide(request(token), NOW + 1, false);
    assert.deepEqual(off.takeCacheStats(), { hits: 0, misses: 0, entries: 0 });
  });

  /** A DPoP key pair with its public JWK and RFC 7638 thumbprint. */
  async function dpopKey() {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    const jwk = await exportJWK(publicKey);
    return { privateKey, jwk, jkt: await calculateJwkThumbprint(jwk) };
  }

  /** Signs a proof for `method url` with `key`; `claims` replace or add members. */
  async function dpopProof(key, token, { method = 'GET', url = 'https://api.example.com/orders', iat = NOW / 1000, ...claims } = {}) {
    const ath = createHash('sha256').update(token).digest('base64url');
    return new SignJWT({ jti: randomUUID(), htm: method, htu: url, iat, ath, ...claims })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: key.jwk })
      .sign(key.privateKey);
  }

  function dpopRequest(token, proof) {
    const headers = new Headers({ authorization: `DPoP ${token}` });
    if (proof !== undefined) {
      headers.set('dpop', proof);
    }
    return { method: 'GET', url: 'https://api.example.com/orders', headers };
  }

  async function dpopGate(dpop) {
    const signer = await signingKey('k1');
    const gate = new Gate(config(REMOTE, { dpop }));
    gate.adoptKeys('idp', JSON.stringify({ keys: [signer.jwk] }), NOW);
    return { gate, signer };
  }

  test('gate DPoP: a bound token needs its own fresh proof', async () => {
    const { gate, signer } = await dpopGate({});
    const key = await dpopKey();
    const token = await signer.sign({ cnf: { jkt: key.jkt } });
    const proof = await dpopProof(key, token);
    const allowed = gate.decide(dpopRequest(token, proof), NOW, false);
    assert.equal(allowed.action, 'allow', allowed.message);
    assert.deepEqual(allowed.removeHeaders, ['x-jwt-sub', 'dpop', 'authorization']);
    assert.deepEqual(allowed.responseHeaders, []);
    assert.deepEqual(gate.providers.map((provider) => provider.dpop), ['allowed']);

    const cases = [
      ['replayed proof', proof, /used before/],
      ['no proof', undefined, /no `DPoP` header/],
      ['another URL', await dpopProof(key, token, { url: 'https://api.example.com/admin' }), /`htu`/],
      ['another method', await dpopProof(key, token, { method: 'DELETE' }), /`htm`/],
      ['another key', await dpopProof(await dpopKey(), token), /not the key the access token is bound to/],
      ['old iat', await dpopProof(key, token, { iat: NOW / 1000 - 301 }), /`iat`/],
      ['ath of another token', await dpopProof(key, await signer.sign()), /`ath`/],
    ];
    for (const [name, caseProof, message] of cases) {
      const denied = gate.decide(dpopRequest(token, caseProof), NOW, false);
      assert.equal(denied.action, 'deny', name);
      assert.equal(denied.code, 'dpop_proof_invalid', name);
      assert.match(denied.message, message, name);
      assert.match(denied.headers[0][1], /^DPoP realm="[^"]+", algs="ES256 RS256 PS256 EdDSA", error="invalid_dpop_proof"/, name);
      assert.match(denied.headers[1][1], /^Bearer realm=/, name);
    }

    const asBearer = gate.decide(request(token), NOW, false);
    assert.equal(asBearer.code, 'dpop_proof_invalid');
    assert.match(asBearer.headers[0][1], /^Bearer realm="[^"]+", error="invalid_token"/);
    assert.match(asBearer.headers[1][1], /^DPoP /);
  });

  test('gate DPoP: nonce required, issued, then accepted', async () => {
    const { gate, signer } = await dpopGate({ mode: 'required', nonce: { enabled: true, lifetime: '60s' } });
    const key = await dpopKey();
    const token = await signer.sign({ cnf: { jkt: key.jkt } });
    const first = gate.decide(dpopRequest(token, await dpopProof(key, token)), NOW, false);
    assert.equal(first.code, 'dpop_nonce_required');
    assert.equal(first.headers.length, 3, 'one DPoP challenge, a DPoP-Nonce and the content type');
    assert.match(first.headers[0][1], /error="use_dpop_nonce"/);
    const nonce = first.headers.find(([name]) => name === 'dpop-nonce')?.[1];
    assert.ok(nonce, JSON.stringify(first.headers));
    const allowed = gate.decide(dpopRequest(token, await dpopProof(key, token, { nonce })), NOW + 1000, false);
    assert.equal(allowed.action, 'allow', allowed.message);
    assert.deepEqual(allowed.responseHeaders, [['dpop-nonce', nonce]]);
    const stale = gate.decide(dpopRequest(token, await dpopProof(key, token, { nonce, iat: NOW / 1000 + 130 })), NOW + 130_000, false);
    assert.equal(stale.code, 'dpop_nonce_required');
    const bearer = gate.decide(request(await signer.sign()), NOW, false);
    assert.equal(bearer.code, 'dpop_proof_invalid');
    assert.match(bearer.message, /requires DPoP/);
  });

  const INTROSPECTION_URL = 'https://idp.example.com/introspect';
  const opaqueConfig = (extra = {}) => ({
    providers: {
      idp: {
        issuer: ISSUER,
        audiences: ['api'],
        algorithms: [],
        introspection: { http_uri: { uri: INTROSPECTION_URL, timeout: '1s' }, client_id: 'gate', client_secret: 's3cret', cache_duration: '30s' },
        claim_to_headers: [{ header_name: 'x-jwt-sub', claim_name: 'sub' }],
        ...extra,
      },
    },
  });

  test('gate introspection: one call, answer cached, inactive denied', () => {
    const gate = new Gate(opaqueConfig());
    assert.equal(gate.providers[0].keys, 'none');
    assert.equal(gate.providers[0].introspectionUrl, INTROSPECTION_URL);
    assert.deepEqual(gate.decide(request('opaque-1'), NOW, false), { action: 'pending', providers: ['idp'] });
    const [due, ...rest] = gate.fetchesDue(NOW);
    assert.deepEqual(rest, []);
    assert.equal(due.kind, 'introspection');
    assert.equal(due.method, 'POST');
    assert.equal(due.url, INTROSPECTION_URL);
    assert.equal(due.body, 'token=opaque-1&token_type_hint=access_token');
    assert.deepEqual(due.headers.find(([name]) => name === 'authorization'), ['authorization', `Basic ${btoa('gate:s3cret')}`]);
    assert.match(due.id, /^idp#introspection#[0-9a-f]{64}$/);
    assert.deepEqual(gate.fetchesDue(NOW + 1), [], 'the call is in flight');
    assert.equal(gate.decide(request('opaque-1'), NOW + 2, false).action, 'pending', 'a second request waits for the same call');

    const answer = { active: true, sub: 'alice', aud: 'api', iss: ISSUER, exp: NOW / 1000 + 3600 };
    assert.deepEqual(gate.fetchSucceeded(due.id, JSON.stringify(answer), NOW + 10), { outcome: 'stored', active: true });
    const allowed = gate.decide(request('opaque-1'), NOW + 20, false);
    assert.equal(allowed.action, 'allow');
    assert.deepEqual(allowed.setHeaders, [['x-jwt-sub', 'alice']]);
    assert.deepEqual(gate.fetchesDue(NOW + 20), [], 'the answer is cached');

    // After the cache duration the endpoint is asked again, and a revoked token fails.
    assert.equal(gate.decide(request('opaque-1'), NOW + 31_000, false).action, 'pending');
    const [again] = gate.fetchesDue(NOW + 31_000);
    assert.equal(again.id, due.id);
    assert.deepEqual(gate.fetchSucceeded(again.id, '{"active":false}', NOW + 31_010), { outcome: 'stored', active: false });
    const denied = gate.decide(request('opaque-1'), NOW + 31_020, false);
    assert.equal(denied.status, 401);
    assert.equal(denied.code, 'token_inactive');
  });

  test('gate introspection: failures fail closed and back off', () => {
    const gate = new Gate(opaqueConfig());
    gate.decide(request('opaque-2'), NOW, false);
    const [due] = gate.fetchesDue(NOW);
    assert.equal(gate.fetchFailed(due.id, 'the introspection endpoint responded with status 503', NOW + 5), true);
    const denied = gate.decide(request('opaque-2'), NOW + 10, false);
    assert.equal(denied.code, 'introspection_unavailable');
    assert.match(denied.message, /status 503/);
    assert.deepEqual(gate.fetchesDue(NOW + 10), [], 'no call during the backoff');
    const final = gate.decide(request('opaque-3'), NOW + 2000, true);
    assert.equal(final.code, 'introspection_unavailable');
    const malformed = new Gate(opaqueConfig());
    malformed.decide(request('opaque-4'), NOW, false);
    const [call] = malformed.fetchesDue(NOW);
    assert.equal(malformed.fetchSucceeded(call.id, '{"active":"yes"}', NOW).outcome, 'failed');
    assert.throws(() => malformed.fetchSucceeded('idp#introspection#zz', '{}', NOW), RangeError);
  });

  test('gate revocation list: fetched, adopted and checked', async () => {
    const key = await signingKey('k1');
    const listUrl = 'https://idp.example.com/revoked.json';
    const gate = new Gate(config(REMOTE, { revocation_list: { http_uri: { uri: listUrl, timeout: '1s' }, cache_duration: '60s' } }));
    gate.adoptKeys('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    assert.equal(gate.providers[0].revocationListUrl, listUrl);
    const [due] = gate.fetchesDue(NOW);
    assert.deepEqual(due, {
      id: 'idp#revocation_list',
      provider: 'idp',
      kind: 'revocation_list',
      url: listUrl,
      method: 'GET',
      headers: [['accept', 'application/json']],
      body: null,
      timeoutMs: 1000,
      maxBytes: 1_048_576,
    });
    const revoked = await key.sign({ jti: 'gone' });
    assert.equal(gate.decide(request(revoked), NOW + 1, false).action, 'pending');
    assert.deepEqual(gate.fetchSucceeded(due.id, '{"revoked":["gone"]}', NOW + 2), { outcome: 'stored', entries: 1 });
    const denied = gate.decide(request(revoked), NOW + 3, false);
    assert.equal(denied.code, 'token_revoked');
    assert.equal(gate.decide(request(await key.sign({ jti: 'kept' })), NOW + 3, false).action, 'allow');
    assert.equal(gate.decide(request(await key.sign()), NOW + 3, false).code, 'claim_missing');
    // A list another isolate fetched later replaces this one.
    assert.equal(gate.adoptKeys(due.id, '{"revoked":["kept"]}', NOW + 4), true);
    assert.equal(gate.decide(request(await key.sign({ jti: 'gone' })), NOW + 5, false).action, 'allow');
    assert.throws(
      () => gate.adoptKeys(due.id, '{"revoked":"x"}', NOW + 6),
      (error) =>
        error instanceof TokenError &&
        error.code === 'revocation_list_unavailable' &&
        error.message === "the revocation list's `revoked` must be an array, found a string",
    );
    assert.throws(() => gate.adoptKeys('idp', '{"revoked":[]}', NOW + 6), (error) => error.code === 'jwks_invalid');
  });

  test('gate revocation list: fetched again and waited for after an idle period', async () => {
    const key = await signingKey('k1');
    const listUrl = 'https://idp.example.com/revoked.json';
    const list = { http_uri: { uri: listUrl, timeout: '1s' }, cache_duration: '60s', stale_if_error: '30s' };
    const gate = new Gate(config({ ...REMOTE, stale_if_error: '1h' }, { revocation_list: list }));
    gate.adoptKeys('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    const [due] = gate.fetchesDue(NOW);
    gate.fetchSucceeded(due.id, '{"revoked":["gone"]}', NOW);
    const token = await key.sign({ jti: 'kept' });
    assert.equal(gate.decide(request(token), NOW + 1, false).action, 'allow');

    // No request for longer than cache_duration + stale_if_error: nothing refreshed the list.
    const idle = NOW + 60_000 + 30_000 + 1000;
    assert.deepEqual(gate.fetchesDue(idle).map((fetch) => fetch.id), ['idp', 'idp#revocation_list']);
    assert.deepEqual(gate.decide(request(token), idle + 1, false), { action: 'pending', providers: ['idp'] });
    gate.fetchSucceeded('idp', JSON.stringify({ keys: [key.jwk] }), idle + 5);
    assert.deepEqual(gate.fetchSucceeded(due.id, '{"revoked":["gone"]}', idle + 10), { outcome: 'stored', entries: 1 });
    assert.equal(gate.decide(request(token), idle + 11, false).action, 'allow');

    // When that fetch fails, requests fail at once with the reason.
    const later = idle + 10 + 91_000;
    gate.fetchesDue(later);
    gate.fetchFailed(due.id, 'the list server responded with status 503', later);
    const denied = gate.decide(request(token), later + 1, false);
    assert.equal(denied.code, 'revocation_list_unavailable');
    assert.equal(
      denied.message,
      'no revocation list is available: the copy fetched 91 s ago expired and could not be refreshed: the list server responded with status 503',
    );
  });

  test('gate key set: fetched again and waited for after an idle period', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE));
    gate.fetchesDue(NOW);
    gate.fetchSucceeded('idp', JSON.stringify({ keys: [key.jwk] }), NOW);
    const token = await key.sign();
    // Idle past cache_duration (60 s) + stale_if_error (120 s).
    const idle = NOW + 181_000;
    assert.equal(gate.fetchesDue(idle).length, 1);
    assert.deepEqual(gate.decide(request(token), idle + 1, false), { action: 'pending', providers: ['idp'] });
    gate.fetchSucceeded('idp', JSON.stringify({ keys: [key.jwk] }), idle + 10);
    assert.equal(gate.decide(request(token), idle + 11, false).action, 'allow');
  });

  test('wrangler.toml policy is a valid configuration', () => {
    const toml = readFileSync(join(JS_DIR, 'worker/wrangler.toml'), 'utf8');
    const match = /^PORTCULLIS_POLICY = '''\n([\s\S]*?)'''$/m.exec(toml);
    assert.ok(match, 'wrangler.toml has no PORTCULLIS_POLICY block');
    const gate = new Gate(match[1]);
    assert.deepEqual(gate.providers.map((provider) => [provider.name, provider.kind]), [['idp', 'discovery']]);
  });

  test('gate methods reject unknown and local providers', async () => {
    const local = { local_jwks: { inline: { keys: [(await signingKey('k1')).jwk] } } };
    const gate = new Gate({ providers: { idp: { issuer: ISSUER, algorithms: ['ES256'], ...local } } });
    assert.deepEqual(gate.providers, [{ name: 'idp', keys: 'local', pendingTimeoutMs: 0, revocationListUrl: null, introspectionUrl: null, dpop: null }]);
    assert.deepEqual(gate.fetchesDue(NOW), []);
    assert.throws(() => gate.fetchFailed('idp', 'x', NOW), RangeError);
    assert.throws(() => gate.keyStatus('nope', NOW), RangeError);
    assert.throws(() => gate.fetchesDue('now'), TypeError);
  });
}
