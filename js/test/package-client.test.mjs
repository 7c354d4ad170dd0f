// Tests of `portcullis/client` in the built package (pkg/, Node.js build) without an
// authorization server. They cover the package layout, and DPoP keys and proofs checked
// against jose and the core's `verifyDpopProof`. They also cover the requests and errors of
// `revokeToken` and `refreshIfNeeded` against stub servers on 127.0.0.1.
// Build pkg/ first with `make pkg`.

import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify as verifySignature } from 'node:crypto';
import { once } from 'node:events';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import * as jose from 'jose';

const PKG_DIR = fileURLToPath(new URL('../../pkg/', import.meta.url));
const MISSING = !existsSync(join(PKG_DIR, 'dist/node/client.js'));

const NOW = 1_700_000_000;
const URL_WITH_QUERY = 'https://api.example.com/orders?page=2#top';
const URL_WITHOUT_QUERY = 'https://api.example.com/orders';
const ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl';

if (MISSING) {
  test('pkg/ is built with portcullis/client', () => {
    assert.fail(`pkg/ has no dist/node/client.js in ${PKG_DIR}: run \`make pkg\` (js/package/build.sh) before \`npm test\``);
  });
} else {
  const client = await import(join(PKG_DIR, 'dist/node/client.js'));
  const light = await import(join(PKG_DIR, 'dist/node/index.js'));
  const verify = await import(join(PKG_DIR, 'dist/node/verify.js'));
  defineLayoutTests(client);
  defineDpopTests(client, verify);
  defineRequestTests(client, light);
}

function decodeSegment(segment) {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

function decodeProof(proof) {
  const [header, claims, signature] = proof.split('.');
  return { header: decodeSegment(header), claims: decodeSegment(claims), signature: Buffer.from(signature, 'base64url') };
}

function sha256(text) {
  return createHash('sha256').update(text).digest('base64url');
}

/** Names a declaration file exports as values: functions and classes. */
function declaredValueExports(file) {
  const text = readFileSync(join(PKG_DIR, file), 'utf8');
  return [...text.matchAll(/^export (?:declare class|function) (\w+)/gm)].map((match) => match[1]).sort();
}

function defineLayoutTests(client) {
  test('client entry exports what client.d.ts declares', () => {
    assert.deepEqual(Object.keys(client).sort(), declaredValueExports('client.d.ts'));
    for (const target of ['bundler', 'web']) {
      assert.equal(
        readFileSync(join(PKG_DIR, 'dist', target, 'client.js'), 'utf8'),
        readFileSync(join(PKG_DIR, 'dist/node/client.js'), 'utf8'),
        `${target}/client.js`,
      );
    }
  });

  test('client entry resolves by name under each condition', (t) => {
    const manifest = JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8'));
    assert.deepEqual(Object.keys(manifest.exports['./client']), ['types', 'web', 'node', 'default']);
    assert.ok(manifest.files.includes('client.d.ts'));

    const dir = mkdtempSync(join(tmpdir(), 'portcullis-client-resolve-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(PKG_DIR, join(dir, 'node_modules', 'portcullis'), 'dir');
    const resolve = (specifier, conditions = []) =>
      execFileSync(
        process.execPath,
        [...conditions.map((name) => `--conditions=${name}`), '--input-type=module', '-e', `console.log(import.meta.resolve(${JSON.stringify(specifier)}))`],
        { cwd: dir, encoding: 'utf8' },
      ).trim();
    assert.match(resolve('portcullis/client'), /\/dist\/node\/client\.js$/);
    assert.match(resolve('portcullis/client', ['web']), /\/dist\/web\/client\.js$/);
    assert.match(resolve('portcullis/web/client'), /\/dist\/web\/client\.js$/);
  });

  test('bundler drops the light module when refresh is unused', async (t) => {
    const { build } = await import('esbuild');
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-client-bundle-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(PKG_DIR, join(dir, 'node_modules', 'portcullis'), 'dir');
    const bundle = async (contents) => {
      const result = await build({
        stdin: { contents, resolveDir: dir, loader: 'js' },
        absWorkingDir: dir,
        bundle: true,
        write: false,
        format: 'esm',
        conditions: ['web'],
        logLevel: 'silent',
      });
      return result.outputFiles[0].text;
    };
    const dpopOnly = await bundle("import { createDpopKey } from 'portcullis/client'; console.log(createDpopKey);");
    assert.doesNotMatch(dpopOnly, /portcullis_light/);
    const withRefresh = await bundle("import { refreshIfNeeded } from 'portcullis/client'; console.log(refreshIfNeeded);");
    assert.match(withRefresh, /portcullis_light_bg\.wasm/);
  });

  test('bundler build of the client shares the light module', () => {
    // --experimental-wasm-modules provides the WebAssembly ES module support of a bundler.
    const script = `
      const client = await import(${JSON.stringify(join(PKG_DIR, 'dist/bundler/client.js'))});
      const light = await import(${JSON.stringify(join(PKG_DIR, 'dist/bundler/index.js'))});
      const key = await client.createDpopKey();
      let code;
      await client.refreshIfNeeded({ tokenEndpoint: 'https://idp.example.com/token', clientId: 'demo', refreshToken: 'r', accessToken: 'opaque', minValidity: 0 })
        .catch((error) => { code = error instanceof light.TokenError ? error.code : String(error); });
      console.log(JSON.stringify({ jkt: key.jkt.length, code }));`;
    const output = execFileSync(process.execPath, ['--experimental-wasm-modules', '--no-warnings', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.deepEqual(JSON.parse(output), { jkt: 43, code: 'token_malformed' });
  });
}

function defineDpopTests(client, verify) {
  for (const [alg, algorithm, members] of [
    ['ES256', { name: 'ECDSA', namedCurve: 'P-256' }, ['crv', 'kty', 'x', 'y']],
    ['EdDSA', { name: 'Ed25519' }, ['crv', 'kty', 'x']],
  ]) {
    test(`createDpopKey ${alg} private key is non-extractable`, async () => {
      const key = await client.createDpopKey({ alg });
      assert.equal(key.alg, alg);
      assert.equal(key.privateKey.type, 'private');
      assert.equal(key.privateKey.extractable, false);
      assert.deepEqual(key.privateKey.usages, ['sign']);
      assert.deepEqual(key.privateKey.algorithm, algorithm);
      assert.equal(key.publicKey.type, 'public');
      // Browsers name the error InvalidAccessError; Node.js 20 names it InvalidAccessException.
      await assert.rejects(crypto.subtle.exportKey('jwk', key.privateKey), { name: /^InvalidAccess(Error|Exception)$/ });
      await assert.rejects(crypto.subtle.exportKey('pkcs8', key.privateKey), { name: /^InvalidAccess(Error|Exception)$/ });
      assert.deepEqual(Object.keys(key.publicJwk), members);
      assert.ok(Object.isFrozen(key));
      assert.ok(Object.isFrozen(key.publicJwk));
    });

    test(`createDpopKey ${alg} jkt matches jose and the core`, async () => {
      const key = await client.createDpopKey({ alg });
      assert.equal(key.jkt, await jose.calculateJwkThumbprint(key.publicJwk, 'sha256'));
      const proof = await client.createDpopProof({ key, method: 'GET', url: URL_WITHOUT_QUERY });
      assert.equal(verify.verifyDpopProof(proof, { method: 'GET', url: URL_WITHOUT_QUERY }).jkt, key.jkt);
    });

    test(`createDpopProof ${alg} header and claims`, async () => {
      const key = await client.createDpopKey({ alg });
      const proof = await client.createDpopProof({ key, method: 'POST', url: URL_WITH_QUERY, accessToken: ACCESS_TOKEN, nonce: 'n-1', now: NOW + 0.9 });
      const { header, claims } = decodeProof(proof);
      assert.deepEqual(header, { typ: 'dpop+jwt', alg, jwk: key.publicJwk });
      assert.equal(header.jwk.d, undefined);
      assert.deepEqual(Object.keys(claims), ['jti', 'htm', 'htu', 'iat', 'ath', 'nonce']);
      assert.equal(Buffer.from(claims.jti, 'base64url').length, 16);
      assert.equal(claims.htm, 'POST');
      assert.equal(claims.htu, URL_WITHOUT_QUERY);
      assert.equal(claims.iat, NOW);
      assert.equal(claims.ath, sha256(ACCESS_TOKEN));
      assert.equal(claims.nonce, 'n-1');

      const bare = decodeProof(await client.createDpopProof({ key, method: 'GET', url: URL_WITHOUT_QUERY }));
      assert.deepEqual(Object.keys(bare.claims), ['jti', 'htm', 'htu', 'iat']);
      assert.ok(Math.abs(bare.claims.iat - Date.now() / 1000) < 5);
    });

    test(`createDpopProof ${alg} verifies with jose EmbeddedJWK`, async () => {
      const key = await client.createDpopKey({ alg });
      const proof = await client.createDpopProof({ key, method: 'POST', url: URL_WITH_QUERY, accessToken: ACCESS_TOKEN });
      const { payload, protectedHeader } = await jose.jwtVerify(proof, jose.EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [alg] });
      assert.equal(payload.htu, URL_WITHOUT_QUERY);
      assert.equal(protectedHeader.alg, alg);

      // The same check fails once one claim changes.
      const [headerSegment, , signature] = proof.split('.');
      const edited = Buffer.from(JSON.stringify({ ...payload, htm: 'GET' })).toString('base64url');
      await assert.rejects(jose.jwtVerify(`${headerSegment}.${edited}.${signature}`, jose.EmbeddedJWK, { typ: 'dpop+jwt' }), {
        code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
      });
    });

    test(`createDpopProof ${alg} passes the core's proof checks`, async () => {
      const key = await client.createDpopKey({ alg });
      const proof = await client.createDpopProof({ key, method: 'POST', url: URL_WITH_QUERY, accessToken: ACCESS_TOKEN, nonce: 'n-1', now: NOW });
      const request = { method: 'POST', url: URL_WITH_QUERY, accessToken: ACCESS_TOKEN, nonces: ['n-2', 'n-1'] };
      const verified = verify.verifyDpopProof(proof, request, { now: NOW, requireNonce: true, algorithms: [alg] });
      assert.deepEqual(verified, { jkt: key.jkt, jti: decodeProof(proof).claims.jti, iat: NOW });

      const rejects = (changes, options, code) =>
        assert.throws(() => verify.verifyDpopProof(proof, { ...request, ...changes }, { now: NOW, ...options }), { name: 'TokenError', code });
      rejects({ method: 'GET' }, {}, 'dpop_proof_invalid');
      rejects({ url: 'https://api.example.com/other' }, {}, 'dpop_proof_invalid');
      rejects({ url: 'https://evil.example.com/orders' }, {}, 'dpop_proof_invalid');
      rejects({ accessToken: `${ACCESS_TOKEN}x` }, {}, 'dpop_proof_invalid');
      rejects({ nonces: ['n-2'] }, {}, 'dpop_nonce_required');
      rejects({}, { now: NOW + 301 }, 'dpop_proof_invalid');
      rejects({}, { now: NOW - 301 }, 'dpop_proof_invalid');
      rejects({}, { algorithms: [alg === 'ES256' ? 'EdDSA' : 'ES256'] }, 'dpop_proof_invalid');
    });
  }

  test('createDpopProof ES256 signature is raw R||S', async () => {
    const key = await client.createDpopKey();
    const proof = await client.createDpopProof({ key, method: 'GET', url: URL_WITHOUT_QUERY });
    const { signature } = decodeProof(proof);
    assert.equal(signature.length, 64);
    const publicKey = createPublicKey({ key: key.publicJwk, format: 'jwk' });
    const input = proof.slice(0, proof.lastIndexOf('.'));
    assert.equal(verifySignature('sha256', Buffer.from(input), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature), true);
    // A DER-encoded ECDSA signature is 70 to 72 bytes and starts with 0x30.
    assert.equal(verifySignature('sha256', Buffer.from(input), { key: publicKey, dsaEncoding: 'der' }, signature), false);
  });

  test('createDpopProof jti is unique', async () => {
    const key = await client.createDpopKey();
    const ids = new Set();
    for (let round = 0; round < 200; round += 1) {
      ids.add(decodeProof(await client.createDpopProof({ key, method: 'GET', url: URL_WITHOUT_QUERY })).claims.jti);
    }
    assert.equal(ids.size, 200);
  });

  test('createDpopProof htu agrees with core normalisation', async () => {
    const key = await client.createDpopKey();
    const cases = [
      ['HTTPS://API.Example.com:443/a/%7euser?q=1#f', 'https://api.example.com/a/%7euser', 'https://api.example.com/a/~user'],
      ['https://api.example.com', 'https://api.example.com/', 'https://api.example.com/'],
      ['http://127.0.0.1:8080/token', 'http://127.0.0.1:8080/token', 'http://127.0.0.1:8080/token'],
      [new URL('https://api.example.com:8443/x?y'), 'https://api.example.com:8443/x', 'https://api.example.com:8443/x'],
    ];
    for (const [url, htu, requestUrl] of cases) {
      const proof = await client.createDpopProof({ key, method: 'GET', url });
      assert.equal(decodeProof(proof).claims.htu, htu, String(url));
      assert.equal(verify.verifyDpopProof(proof, { method: 'GET', url: requestUrl }).jkt, key.jkt, String(url));
    }
  });

  test('createDpopKey and createDpopProof reject bad arguments', async () => {
    await assert.rejects(client.createDpopKey({ alg: 'RS256' }), TypeError);
    await assert.rejects(client.createDpopKey({ alg: 'ES384' }), TypeError);
    const key = await client.createDpopKey();
    const base = { key, method: 'GET', url: URL_WITHOUT_QUERY };
    for (const changes of [
      { url: '/orders' },
      { url: 'ftp://api.example.com/orders' },
      { url: 'https://user:secret@api.example.com/orders' },
      { method: '' },
      { method: 'PO ST' },
      { method: undefined },
      { accessToken: '' },
      { nonce: 42 },
      { now: -1 },
      { key: undefined },
      { key: { ...key, alg: 'RS256' } },
      { key: { ...key, privateKey: key.publicKey } },
    ]) {
      await assert.rejects(client.createDpopProof({ ...base, ...changes }), TypeError, JSON.stringify(Object.keys(changes)));
    }
    await assert.rejects(client.createDpopProof(), TypeError);
  });

  test('createDpopProof sends only the public jwk members', async () => {
    const key = await client.createDpopKey();
    // A key object rebuilt by hand with a private member: only the public ones are sent.
    const forged = { ...key, publicJwk: { ...key.publicJwk, d: 'private-scalar', kid: 'k1' } };
    const { header } = decodeProof(await client.createDpopProof({ key: forged, method: 'GET', url: URL_WITHOUT_QUERY }));
    assert.deepEqual(header.jwk, key.publicJwk);
  });
}

/**
 * Starts a stub endpoint on 127.0.0.1. `respond(request, body)` returns
 * `{ status, headers?, body? }`; every request is recorded with its headers and form body.
 */
async function startStub(t, respond) {
  const requests = [];
  const server = createServer(async (request, response) => {
    let text = '';
    for await (const chunk of request) {
      text += chunk;
    }
    const entry = { method: request.method, url: request.url, headers: request.headers, form: Object.fromEntries(new URLSearchParams(text)) };
    requests.push(entry);
    const { status, headers = {}, body = '' } = await respond(entry);
    response.writeHead(status, headers);
    response.end(typeof body === 'string' ? body : JSON.stringify(body));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return { url: `http://127.0.0.1:${server.address().port}/token`, requests };
}

const JSON_HEADERS = { 'content-type': 'application/json' };

function defineRequestTests(client, light) {
  const assertRequestError = (code, fields = {}) => (error) => {
    assert.ok(error instanceof client.OAuthRequestError, `expected an OAuthRequestError, got ${error}`);
    assert.equal(error.name, 'OAuthRequestError');
    assert.equal(error.code, code);
    for (const [name, value] of Object.entries(fields)) {
      assert.equal(error[name], value, name);
    }
    assert.ok(error.message.length > 0);
    return true;
  };

  test('refreshIfNeeded sends a public client refresh request', async (t) => {
    const stub = await startStub(t, () => ({
      status: 200,
      headers: JSON_HEADERS,
      body: { access_token: 'new-access', token_type: 'Bearer', refresh_token: 'new-refresh', expires_in: 600, scope: 'api:read', id_token: 'id' },
    }));
    const result = await client.refreshIfNeeded({
      tokenEndpoint: stub.url,
      clientId: 'demo',
      refreshToken: 'old-refresh',
      accessToken: 'opaque',
      expiresAt: NOW + 10,
      minValidity: 30,
      now: NOW,
    });
    assert.deepEqual(stub.requests.map((request) => request.form), [{ grant_type: 'refresh_token', refresh_token: 'old-refresh', client_id: 'demo' }]);
    assert.equal(stub.requests[0].method, 'POST');
    assert.equal(stub.requests[0].headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(stub.requests[0].headers.authorization, undefined);
    assert.equal(stub.requests[0].headers.dpop, undefined);
    assert.equal(result.refreshed, true);
    assert.equal(result.accessToken, 'new-access');
    assert.equal(result.tokenType, 'Bearer');
    assert.equal(result.refreshToken, 'new-refresh');
    assert.equal(result.expiresAt, NOW + 600);
    assert.equal(result.scope, 'api:read');
    assert.equal(result.idToken, 'id');
    assert.equal(result.dpopNonce, undefined);
    assert.equal(result.response.expires_in, 600);
  });

  test('refreshIfNeeded keeps a refresh token that was not rotated', async (t) => {
    const stub = await startStub(t, () => ({ status: 200, headers: JSON_HEADERS, body: { access_token: 'a', token_type: 'Bearer' } }));
    const result = await client.refreshIfNeeded({ tokenEndpoint: stub.url, clientId: 'demo', refreshToken: 'kept', accessToken: 'opaque', expiresAt: 0, minValidity: 0 });
    assert.equal(result.refreshToken, 'kept');
    assert.equal(result.expiresAt, null);
  });

  test('client secret goes in form-encoded HTTP Basic', async (t) => {
    const stub = await startStub(t, () => ({ status: 200 }));
    await client.revokeToken({ revocationEndpoint: stub.url, token: 't', tokenTypeHint: 'refresh_token', clientId: 'a b:c', clientSecret: 'p+w/d%é' });
    const [request] = stub.requests;
    assert.deepEqual(request.form, { token: 't', token_type_hint: 'refresh_token' });
    // RFC 6749 §2.3.1: each part form-urlencoded before the Basic encoding.
    const expected = Buffer.from('a+b%3Ac:p%2Bw%2Fd%25%C3%A9').toString('base64');
    assert.equal(request.headers.authorization, `Basic ${expected}`);
  });

  test('refreshIfNeeded sends no request for a fresh opaque token', async (t) => {
    const stub = await startStub(t, () => ({ status: 500 }));
    const result = await client.refreshIfNeeded({ tokenEndpoint: stub.url, clientId: 'demo', refreshToken: 'r', accessToken: 'opaque', expiresAt: NOW + 31, minValidity: 30, now: NOW });
    assert.deepEqual(result, { refreshed: false, accessToken: 'opaque', refreshToken: 'r', expiresAt: NOW + 31 });
    assert.equal(stub.requests.length, 0);
  });

  test('refreshIfNeeded decides as isExpired does', async () => {
    let requests = 0;
    const fetch = () => {
      requests += 1;
      return Promise.resolve(new Response(JSON.stringify({ access_token: 'a', token_type: 'Bearer' }), { status: 200 }));
    };
    const header = Buffer.from('{"alg":"none"}').toString('base64url');
    let cases = 0;
    for (const exp of [NOW + 30, NOW + 30.9, NOW + 29.5, NOW + 31]) {
      const token = `${header}.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.AA`;
      for (const minValidity of [0, 29.9, 30, 30.5]) {
        for (const now of [NOW, NOW + 0.7, NOW + 1]) {
          const expected = light.isExpired(token, { minValidity, now });
          const before = requests;
          const result = await client.refreshIfNeeded({ tokenEndpoint: 'https://idp.example.com/token', clientId: 'demo', refreshToken: 'r', accessToken: token, minValidity, now, fetch });
          assert.equal(result.refreshed, expected, JSON.stringify({ exp, minValidity, now }));
          assert.equal(requests - before, expected ? 1 : 0);
          if (!expected) {
            assert.equal(result.expiresAt, light.inspectToken(token).expiresAt);
          }
          cases += expected ? 1 : 0;
        }
      }
    }
    // Both outcomes occur in the table.
    assert.ok(cases > 0, String(cases));
    assert.ok(cases < 48, String(cases));

    const noExp = `${header}.${Buffer.from('{"sub":"alice"}').toString('base64url')}.AA`;
    const result = await client.refreshIfNeeded({ tokenEndpoint: 'https://idp.example.com/token', clientId: 'demo', refreshToken: 'r', accessToken: noExp, minValidity: 1e9, fetch });
    assert.deepEqual(result, { refreshed: false, accessToken: noExp, refreshToken: 'r', expiresAt: null });
  });

  test('refreshIfNeeded reads exp only from JWTs', async () => {
    const options = { tokenEndpoint: 'https://idp.example.com/token', clientId: 'demo', refreshToken: 'r', accessToken: 'opaque', minValidity: 30 };
    await assert.rejects(client.refreshIfNeeded(options), (error) => error instanceof light.TokenError && error.code === 'token_malformed');
    await assert.rejects(client.refreshIfNeeded({ ...options, expiresAt: null }), (error) => error instanceof light.TokenError);
  });

  test('error response becomes error_response', async (t) => {
    const stub = await startStub(t, () => ({
      status: 400,
      headers: JSON_HEADERS,
      body: { error: 'invalid_grant', error_description: 'grant request is invalid', error_uri: 'https://idp.example.com/errors' },
    }));
    await assert.rejects(
      client.refreshIfNeeded({ tokenEndpoint: stub.url, clientId: 'demo', refreshToken: 'r', accessToken: 'opaque', expiresAt: 0, minValidity: 0 }),
      assertRequestError('error_response', { status: 400, error: 'invalid_grant', errorDescription: 'grant request is invalid', errorUri: 'https://idp.example.com/errors' }),
    );
    await assert.rejects(
      client.revokeToken({ revocationEndpoint: stub.url, token: 't', clientId: 'demo' }),
      assertRequestError('error_response', { status: 400, error: 'invalid_grant' }),
    );
  });

  test('malformed responses become response_invalid', async (t) => {
    const responses = [
      { status: 500, headers: { 'content-type': 'text/plain' }, body: 'internal error' },
      { status: 401, headers: JSON_HEADERS, body: { message: 'no error member' } },
      { status: 200, headers: JSON_HEADERS, body: 'not json' },
      { status: 200, headers: JSON_HEADERS, body: [] },
      { status: 200, headers: JSON_HEADERS, body: { token_type: 'Bearer' } },
      { status: 200, headers: JSON_HEADERS, body: { access_token: '', token_type: 'Bearer' } },
      { status: 200, headers: JSON_HEADERS, body: { access_token: 'a' } },
      { status: 200, headers: JSON_HEADERS, body: { access_token: 'a', token_type: 'Bearer', expires_in: '3600' } },
      { status: 200, headers: JSON_HEADERS, body: { access_token: 'a', token_type: 'Bearer', refresh_token: 7 } },
      { status: 201, headers: JSON_HEADERS, body: { access_token: 'a', token_type: 'Bearer' } },
    ];
    let next = 0;
    const stub = await startStub(t, () => responses[next++]);
    for (const response of responses) {
      await assert.rejects(
        client.refreshIfNeeded({ tokenEndpoint: stub.url, clientId: 'demo', refreshToken: 'r', accessToken: 'opaque', expiresAt: 0, minValidity: 0 }),
        assertRequestError('response_invalid', { status: response.status }),
        JSON.stringify(response.body),
      );
    }
    assert.equal(stub.requests.length, responses.length);
  });

  test('revokeToken accepts only 200', async (t) => {
    const statuses = [200, 204, 503];
    let next = 0;
    const stub = await startStub(t, () => ({ status: statuses[next++] }));
    await client.revokeToken({ revocationEndpoint: stub.url, token: 't', clientId: 'demo' });
    assert.deepEqual(stub.requests[0].form, { token: 't', client_id: 'demo' });
    await assert.rejects(client.revokeToken({ revocationEndpoint: stub.url, token: 't', clientId: 'demo' }), assertRequestError('response_invalid', { status: 204 }));
    await assert.rejects(client.revokeToken({ revocationEndpoint: stub.url, token: 't', clientId: 'demo' }), assertRequestError('response_invalid', { status: 503 }));
  });

  test('redirects and network failures become request_failed', async (t) => {
    const stub = await startStub(t, () => ({ status: 307, headers: { location: 'http://127.0.0.1:9/elsewhere' } }));
    await assert.rejects(
      client.refreshIfNeeded({ tokenEndpoint: stub.url, clientId: 'demo', refreshToken: 'r', accessToken: 'opaque', expiresAt: 0, minValidity: 0 }),
      assertRequestError('request_failed', { status: undefined }),
    );
    assert.equal(stub.requests.length, 1);

    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const { port } = closed.address();
    closed.close();
    await once(closed, 'close');
    await assert.rejects(
      client.revokeToken({ revocationEndpoint: `http://127.0.0.1:${port}/revoke`, token: 't', clientId: 'demo' }),
      (error) => assertRequestError('request_failed')(error) && error.cause !== undefined,
    );
  });

  test('injected fetch is used and called without this', async () => {
    const calls = [];
    const fetch = function (url, init) {
      calls.push({ url, method: init.method, redirect: init.redirect, self: this });
      return Promise.resolve(new Response(JSON.stringify({ access_token: 'a', token_type: 'Bearer' }), { status: 200 }));
    };
    await client.refreshIfNeeded({ tokenEndpoint: 'https://idp.example.com/token', clientId: 'demo', refreshToken: 'r', accessToken: 'opaque', expiresAt: 0, minValidity: 0, fetch });
    assert.deepEqual(calls, [{ url: 'https://idp.example.com/token', method: 'POST', redirect: 'error', self: undefined }]);
  });

  test('refreshIfNeeded and revokeToken reject bad arguments', async () => {
    const refresh = { tokenEndpoint: 'https://idp.example.com/token', clientId: 'demo', refreshToken: 'r', accessToken: 'opaque', expiresAt: 0, minValidity: 0 };
    for (const changes of [
      { tokenEndpoint: 'http://idp.example.com/token' },
      { tokenEndpoint: 'https://idp.example.com/token#fragment' },
      { tokenEndpoint: '/token' },
      { clientId: '' },
      { refreshToken: undefined },
      { accessToken: undefined },
      { minValidity: undefined },
      { minValidity: -1 },
      { minValidity: '30' },
      { expiresAt: Number.NaN },
      { now: Number.POSITIVE_INFINITY },
      { dpop: {} },
      { dpop: { key: { alg: 'ES256' } } },
      { fetch: 'fetch' },
    ]) {
      await assert.rejects(client.refreshIfNeeded({ ...refresh, ...changes }), TypeError, JSON.stringify(changes));
    }
    await assert.rejects(client.refreshIfNeeded(), TypeError);

    const revoke = { revocationEndpoint: 'https://idp.example.com/revoke', token: 't', clientId: 'demo' };
    for (const changes of [{ revocationEndpoint: 'ftp://idp.example.com/revoke' }, { token: '' }, { clientId: undefined }, { tokenTypeHint: 1 }, { clientSecret: '' }]) {
      await assert.rejects(client.revokeToken({ ...revoke, ...changes }), TypeError, JSON.stringify(changes));
    }
    // Loopback hosts may use plain http.
    for (const host of ['localhost', '127.0.0.1', '[::1]']) {
      const fetch = () => Promise.resolve(new Response(null, { status: 200 }));
      await client.revokeToken({ ...revoke, revocationEndpoint: `http://${host}:8080/revoke`, fetch });
    }
  });
}
