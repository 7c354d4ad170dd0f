// Cross-checks of the built npm package (pkg/, Node.js build) against independent
// implementations: oauth4webapi for PKCE challenges, jose for token decoding and
// verification, and the test authorization server (authz/) for real authorization requests
// and tokens. Build the package first with `make pkg`; every test fails when pkg/ is missing.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import * as jose from 'jose';
import * as oauth from 'oauth4webapi';

import { authorize, exchangeAuthorizationCode, login } from '../authz/login.mjs';
import { generateSigningKeys, startAuthorizationServer } from '../authz/server.mjs';

const PKG_DIR = fileURLToPath(new URL('../../pkg/', import.meta.url));
const MISSING = !existsSync(join(PKG_DIR, 'dist/node/index.js')) || !existsSync(join(PKG_DIR, 'dist/node/verify.js'));

const API = 'https://api.portcullis.test';
const ES_API = 'https://es.portcullis.test';
const CLIENT_ID = 'portcullis-demo';
const REDIRECT_URI = 'http://127.0.0.1/callback';
const UNRESERVED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';

if (MISSING) {
  test('pkg/ is built', () => {
    assert.fail(`pkg/ has no Node.js build in ${PKG_DIR}: run \`make pkg\` (js/package/build.sh) before \`npm test\``);
  });
} else {
  const light = await import(join(PKG_DIR, 'dist/node/index.js'));
  const { verifyToken } = await import(join(PKG_DIR, 'dist/node/verify.js'));
  defineCrossChecks(light, verifyToken);
}

/** Returns a verifier of `length` characters from the whole unreserved set, `.` and `~` included. */
function randomVerifier(length) {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (byte) => UNRESERVED[byte % UNRESERVED.length]).join('');
}

async function startServer(t, keys) {
  const server = await startAuthorizationServer({
    keys,
    resources: [{ url: API, alg: 'RS256' }, { url: ES_API, alg: 'ES256' }],
    logger: { error: () => {} },
  });
  t.after(() => server.close());
  return server;
}

async function loginAlice(server, light, resource) {
  const pkce = light.createPkce();
  return login({
    issuer: server.issuer,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    scope: 'openid api:read api:write',
    resource,
    codeVerifier: pkce.codeVerifier,
    codeChallenge: pkce.codeChallenge,
    username: 'alice',
    password: 'wonderland',
  });
}

/** Replaces the claims of a signed token, keeping its header and signature. */
function withClaims(token, change) {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  return [header, Buffer.from(JSON.stringify(change(claims))).toString('base64url'), signature].join('.');
}

/** Replaces the header of a signed token, keeping its claims and signature. */
function withHeader(token, change) {
  const [header, payload, signature] = token.split('.');
  const decoded = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  return [Buffer.from(JSON.stringify(change(decoded))).toString('base64url'), payload, signature].join('.');
}

function flipSignatureBit(token) {
  const [header, payload, signature] = token.split('.');
  const bytes = Buffer.from(signature, 'base64url');
  bytes[bytes.length >> 1] ^= 0x01;
  return [header, payload, bytes.toString('base64url')].join('.');
}

function defineCrossChecks(light, verifyToken) {
  test('pkce challenge equals oauth4webapi for 1000 verifiers', async () => {
    for (let round = 0; round < 1000; round += 1) {
      const verifier = randomVerifier(43 + (round % 86));
      const expected = await oauth.calculatePKCECodeChallenge(verifier);
      assert.equal(light.pkceChallenge(verifier), expected, verifier);
      assert.equal(light.verifyPkce(verifier, expected), true, verifier);
    }
  });

  test('generated verifiers pass oauth4webapi', async () => {
    for (let round = 0; round < 100; round += 1) {
      const pkce = light.createPkce({ verifierLength: 43 + (round % 86) });
      assert.equal(await oauth.calculatePKCECodeChallenge(pkce.codeVerifier), pkce.codeChallenge);
    }
  });

  test('authorization request accepted by the server', async (t) => {
    const server = await startServer(t);
    const pkce = light.createPkce();
    const state = light.randomState();
    const ourUrl = light.buildAuthorizationUrl({
      authorizationEndpoint: server.authorizationEndpoint,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT_URI,
      scope: 'api:read',
      state,
      codeChallenge: pkce.codeChallenge,
      resource: API,
    });

    // The scripted browser of authz/login.mjs runs the flow; its own authorization request
    // is replaced by ours, and the redirect to the callback is recorded.
    let replaced = false;
    let callbackUrl;
    const fetchThroughOurRequest = async (input, init) => {
      let url = new URL(String(input));
      if (!replaced && `${url.origin}${url.pathname}` === server.authorizationEndpoint) {
        replaced = true;
        url = new URL(ourUrl);
      }
      const response = await fetch(url, init);
      const location = response.headers.get('location');
      if (location?.startsWith(REDIRECT_URI)) {
        callbackUrl = location;
      }
      return response;
    };
    const { code, metadata } = await authorize({
      issuer: server.issuer,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT_URI,
      scope: 'api:read',
      resource: API,
      codeChallenge: pkce.codeChallenge,
      state,
      username: 'alice',
      password: 'wonderland',
      fetch: fetchThroughOurRequest,
    });
    assert.ok(replaced, 'the authorization request was not replaced');
    assert.ok(callbackUrl, 'no redirect to the callback was seen');
    assert.ok(new URL(callbackUrl).searchParams.has('iss'), 'the server sends RFC 9207 iss');

    const response = light.parseAuthorizationResponse(callbackUrl, { expectedState: state, expectedIssuer: server.issuer });
    assert.equal(response.code, code);
    assert.throws(
      () => light.parseAuthorizationResponse(callbackUrl, { expectedState: light.randomState(), expectedIssuer: server.issuer }),
      (error) => error.code === 'state_mismatch',
    );
    assert.throws(
      () => light.parseAuthorizationResponse(callbackUrl, { expectedState: state, expectedIssuer: 'https://other.example.com' }),
      (error) => error.code === 'issuer_mismatch',
    );

    const tokens = await exchangeAuthorizationCode({
      metadata,
      code: response.code,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT_URI,
      codeVerifier: pkce.codeVerifier,
      resource: API,
    });
    assert.equal(typeof tokens.access_token, 'string');
    assert.equal(light.inspectToken(tokens.access_token).claims.aud, API);
  });

  test('authorization error response from the server', async (t) => {
    const server = await startServer(t);
    const state = light.randomState();
    const url = light.buildAuthorizationUrl({
      authorizationEndpoint: server.authorizationEndpoint,
      clientId: CLIENT_ID,
      redirectUri: REDIRECT_URI,
      scope: 'api:read',
      state,
      codeChallenge: light.createPkce().codeChallenge,
      extraParams: { prompt: 'none' },
    });
    // prompt=none without a session makes the server answer with an error redirect.
    const response = await fetch(url, { redirect: 'manual' });
    const location = response.headers.get('location');
    assert.ok(location?.startsWith(REDIRECT_URI), `no error redirect: ${response.status} ${location}`);
    assert.throws(
      () => light.parseAuthorizationResponse(location, { expectedState: state, expectedIssuer: server.issuer }),
      (error) => {
        assert.ok(error instanceof light.AuthorizationResponseError);
        assert.equal(error.code, 'error_response');
        assert.equal(error.error, 'login_required');
        return true;
      },
    );
  });

  test('inspect equals jose decodeJwt on server tokens', async (t) => {
    const server = await startServer(t);
    for (const resource of [API, ES_API]) {
      const tokens = await loginAlice(server, light, resource);
      assert.equal(typeof tokens.id_token, 'string', 'the openid scope yields an ID token');
      for (const token of [tokens.access_token, tokens.id_token]) {
        const inspected = light.inspectToken(token);
        const claims = jose.decodeJwt(token);
        assert.deepEqual(inspected.claims, claims);
        assert.deepEqual(inspected.header, jose.decodeProtectedHeader(token));
        assert.equal(inspected.expiresAt, claims.exp);
        assert.equal(inspected.issuedAt, claims.iat);
        assert.equal(inspected.notBefore, claims.nbf ?? null);
        assert.deepEqual(inspected.scopes, claims.scope ? claims.scope.split(' ') : []);
        assert.equal(light.expiresIn(token, claims.iat), claims.exp - claims.iat);
      }
    }
  });

  test('inspect equals jose decodeJwt on utf-8 claims', async () => {
    const { privateKey } = await jose.generateKeyPair('ES256');
    const claims = { sub: 'José', name: 'Zoë 名前 🚀', roles: ['Ärzte', 'ß'], nested: { emoji: '👩‍💻' }, exp: 1700003600.5 };
    const token = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'ключ' }).sign(privateKey);
    const inspected = light.inspectToken(token);
    assert.deepEqual(inspected.claims, jose.decodeJwt(token));
    assert.deepEqual(inspected.header, jose.decodeProtectedHeader(token));
    assert.equal(inspected.expiresAt, 1700003600);
  });

  test('inspect never shows a date jose rounds', async () => {
    const { privateKey, publicKey } = await jose.generateKeyPair('ES256');
    // Signed over the exact text, so the claims keep 2^53 + 1.
    const payload = new TextEncoder().encode('{"iss":"https://issuer.example","exp":9007199254740993}');
    const token = await new jose.CompactSign(payload).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    assert.equal(jose.decodeJwt(token).exp, 9007199254740992);
    assert.throws(() => light.inspectToken(token), (error) => error.code === 'claims_malformed');
    const jwks = { keys: [{ ...(await jose.exportJWK(publicKey)), alg: 'ES256' }] };
    assert.throws(() => verifyToken(token, jwks, { algorithms: ['ES256'] }), (error) => error.code === 'claims_malformed');
  });

  test('verify agrees with jose on server tokens and variants', async (t) => {
    const server = await startServer(t);
    const jwks = await (await fetch(server.jwksUri)).json();
    const localJwks = jose.createLocalJWKSet(jwks);
    const policy = { issuer: server.issuer, audiences: [API], algorithms: ['RS256', 'ES256'], token_type: 'at+jwt' };

    // Returns whether each side accepted, and portcullis's error code.
    async function both(token, { now, audience = API, issuer = server.issuer } = {}) {
      let ours;
      try {
        verifyToken(token, jwks, { ...policy, audiences: [audience], issuer }, now);
        ours = { accepted: true };
      } catch (error) {
        assert.equal(error.name, 'TokenError', String(error));
        ours = { accepted: false, code: error.code };
      }
      let theirs;
      try {
        await jose.jwtVerify(token, localJwks, {
          issuer,
          audience,
          algorithms: ['RS256', 'ES256'],
          typ: 'at+jwt',
          clockTolerance: 60,
          currentDate: now === undefined ? undefined : new Date(now * 1000),
          requiredClaims: ['exp'],
          // jose checks that iat is not in the future only with a maximum age; portcullis
          // always does.
          maxTokenAge: 86400,
        });
        theirs = true;
      } catch {
        theirs = false;
      }
      return { ours, theirs };
    }

    for (const resource of [API, ES_API]) {
      const { access_token: token } = await loginAlice(server, light, resource);
      const { exp, iat } = jose.decodeJwt(token);
      const audience = resource;
      // Each case: name, token, options, and portcullis's code (null: accepted by both).
      const cases = [
        ['real token', token, {}, null],
        ['59 s after exp', token, { now: exp + 59 }, null],
        ['60 s after exp', token, { now: exp + 60 }, 'token_expired'],
        ['issued 61 s in the future', token, { now: iat - 61 }, 'token_not_yet_valid'],
        ['wrong audience', token, { audience: 'https://other.portcullis.test' }, 'audience_invalid'],
        ['wrong issuer', token, { issuer: 'https://other-issuer.example' }, 'issuer_invalid'],
        ['flipped signature bit', flipSignatureBit(token), {}, 'signature_invalid'],
        ['edited claim', withClaims(token, (claims) => ({ ...claims, scope: `${claims.scope} admin` })), {}, 'signature_invalid'],
        ['extended exp', withClaims(token, (claims) => ({ ...claims, exp: claims.exp + 3600 })), {}, 'signature_invalid'],
        ['alg none', `${withHeader(token, (header) => ({ ...header, alg: 'none' })).split('.').slice(0, 2).join('.')}.`, {}, 'algorithm_not_allowed'],
        ['alg HS256', withHeader(token, (header) => ({ ...header, alg: 'HS256' })), {}, 'algorithm_not_allowed'],
        ['unknown kid', withHeader(token, (header) => ({ ...header, kid: 'unknown' })), {}, 'key_not_found'],
        ['typ JWT', withHeader(token, (header) => ({ ...header, typ: 'JWT' })), {}, 'signature_invalid'],
      ];
      for (const [name, variant, options, code] of cases) {
        const result = await both(variant, { audience, ...options });
        const label = `${resource} ${name}`;
        assert.deepEqual(result.ours, code === null ? { accepted: true } : { accepted: false, code }, label);
        assert.equal(result.theirs, code === null, `${label}: jose ${result.theirs ? 'accepted' : 'rejected'}`);
      }
    }
  });

  test('verify result matches jose payload', async (t) => {
    const server = await startServer(t);
    const jwks = await (await fetch(server.jwksUri)).json();
    const { access_token: token } = await loginAlice(server, light, ES_API);
    const verified = verifyToken(token, JSON.stringify(jwks), JSON.stringify({ issuer: server.issuer, algorithms: ['ES256'], profile: 'rfc9068' }));
    const { payload, protectedHeader } = await jose.jwtVerify(token, jose.createLocalJWKSet(jwks), { issuer: server.issuer });
    assert.deepEqual(verified.claims, payload);
    assert.deepEqual(verified.header, protectedHeader);
    assert.equal(verified.algorithm, 'ES256');
    assert.equal(verified.keyId, protectedHeader.kid);
    assert.deepEqual(verified.scopes, payload.scope.split(' '));
  });

  test('verify with two issuers sharing keys', async (t) => {
    const keys = await generateSigningKeys();
    const first = await startServer(t, keys);
    const second = await startServer(t, keys);
    const jwks = await (await fetch(first.jwksUri)).json();
    const { access_token: token } = await loginAlice(second, light, API);
    assert.throws(
      () => verifyToken(token, jwks, { issuer: first.issuer, audiences: [API], algorithms: ['RS256'] }),
      (error) => error.code === 'issuer_invalid' && error.status === 401,
    );
    await assert.rejects(jose.jwtVerify(token, jose.createLocalJWKSet(jwks), { issuer: first.issuer }));
  });
}
