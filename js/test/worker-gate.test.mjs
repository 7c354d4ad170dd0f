// Tests of the `portcullis/gate` entry point (the Gate class the edge worker drives) through
// the built package in pkg/: package layout, fetch scheduling, discovery, adoption of cached
// key sets, decisions, and the declarations. Build it first with `make pkg`.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { SignJWT, exportJWK, generateKeyPair } from 'jose';

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
      },
    ]);
  });

  test('fetchesDue lists one fetch until it is reported', async () => {
    const key = await signingKey('k1');
    const gate = new Gate(config(REMOTE));
    const due = gate.fetchesDue(NOW);
    assert.deepEqual(due, [{ provider: 'idp', kind: 'jwks', url: JWKS_URL, timeoutMs: 1000, maxBytes: 262_144 }]);
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
    assert.deepEqual(next, {
      outcome: 'next',
      fetch: { provider: 'idp', kind: 'jwks', url: 'https://keys.example.com/certs', timeoutMs: 2000, maxBytes: 262_144 },
    });
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
    assert.deepEqual(gate.providers, [{ name: 'idp', keys: 'local' }]);
    assert.deepEqual(gate.fetchesDue(NOW), []);
    assert.throws(() => gate.fetchFailed('idp', 'x', NOW), RangeError);
    assert.throws(() => gate.keyStatus('nope', NOW), RangeError);
    assert.throws(() => gate.fetchesDue('now'), TypeError);
  });
}
