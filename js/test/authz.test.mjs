// Tests of the test authorization server (authz/server.mjs) and the scripted login
// (authz/login.mjs). Every test starts its own servers on 127.0.0.1 and closes them.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import * as jose from 'jose';
import * as oauth from 'oauth4webapi';

import { authorize, exchangeAuthorizationCode, login, LoginError } from '../authz/login.mjs';
import { generateSigningKeys, startAuthorizationServer } from '../authz/server.mjs';

const API = 'https://api.portcullis.test';
const CLIENT_ID = 'portcullis-demo';
const REDIRECT_URI = 'http://127.0.0.1/callback';
const SERVER_SCRIPT = fileURLToPath(new URL('../authz/server.mjs', import.meta.url));

// RFC 7636 Appendix B: the example code_verifier and its S256 code_challenge.
const RFC7636_APPENDIX_B = {
  codeVerifier: 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk',
  codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
};

async function startServer(t, options) {
  const server = await startAuthorizationServer(options);
  t.after(() => server.close());
  return server;
}

async function pkcePair() {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier);
  return { codeVerifier, codeChallenge };
}

async function loginAlice(server, overrides = {}) {
  return login({
    issuer: server.issuer,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    scope: 'api:read api:write',
    resource: API,
    username: 'alice',
    password: 'wonderland',
    ...(await pkcePair()),
    ...overrides,
  });
}

async function postForm(url, fields, headers = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(fields),
  });
  return { status: response.status, body: await response.json() };
}

function basicAuthorization({ clientId, clientSecret }) {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`;
}

// Sends an authorization request as given and returns the query of the redirect to the client.
async function authorizationRedirect(server, params) {
  const url = new URL(server.authorizationEndpoint);
  for (const [name, value] of Object.entries(params)) {
    url.searchParams.set(name, value);
  }
  const response = await fetch(url, { redirect: 'manual' });
  await response.body?.cancel();

  assert.equal(response.status, 303, `authorization endpoint status for ${url.search}`);
  const location = new URL(response.headers.get('location'));
  assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
  return location.searchParams;
}

test('login returns RFC 9068 JWT access token', async (t) => {
  const server = await startServer(t);

  const tokens = await loginAlice(server);

  assert.equal(tokens.token_type, 'Bearer');
  assert.equal(typeof tokens.access_token, 'string');
  assert.equal(tokens.expires_in, 3600);

  const header = jose.decodeProtectedHeader(tokens.access_token);
  assert.equal(header.typ, 'at+jwt');
  assert.equal(header.alg, 'RS256');
  const jwks = await (await fetch(server.jwksUri)).json();
  assert.ok(
    jwks.keys.some((key) => key.kid === header.kid),
    `kid ${header.kid} is not in the JWKS`,
  );
  assert.ok(jwks.keys.every((key) => key.d === undefined), 'the JWKS must not publish private keys');

  const { payload, protectedHeader } = await jose.jwtVerify(
    tokens.access_token,
    jose.createRemoteJWKSet(new URL(server.jwksUri)),
    { issuer: server.issuer, audience: API, typ: 'at+jwt' },
  );
  assert.equal(protectedHeader.kid, header.kid);
  assert.equal(payload.iss, server.issuer);
  assert.equal(payload.aud, API);
  assert.equal(payload.client_id, CLIENT_ID);
  assert.equal(payload.sub, 'alice');
  assert.deepEqual(payload.scope.split(' ').sort(), ['api:read', 'api:write']);
  assert.equal(typeof payload.jti, 'string');
  assert.ok(payload.jti.length > 0);
  assert.ok(Number.isInteger(payload.iat));
  assert.equal(payload.exp - payload.iat, 3600);
});

test('ES256 resource issues ES256 token', async (t) => {
  const esApi = 'https://es.portcullis.test';
  const server = await startServer(t, {
    resources: [{ url: API }, { url: esApi, alg: 'ES256', scope: 'es:read' }],
  });

  const tokens = await loginAlice(server, { resource: esApi, scope: 'es:read' });

  const header = jose.decodeProtectedHeader(tokens.access_token);
  assert.equal(header.alg, 'ES256');
  assert.match(header.kid, /^es-\d{4}-\d{2}-\d{2}-1$/);

  const { payload } = await jose.jwtVerify(
    tokens.access_token,
    jose.createRemoteJWKSet(new URL(server.jwksUri)),
    { issuer: server.issuer, audience: esApi, typ: 'at+jwt', algorithms: ['ES256'] },
  );
  assert.equal(payload.scope, 'es:read');
});

test('short TTL resource sets exp - iat', async (t) => {
  const shortApi = 'https://short.portcullis.test';
  const server = await startServer(t, {
    resources: [{ url: shortApi, accessTokenTTL: 30 }],
  });

  const tokens = await loginAlice(server, { resource: shortApi });

  const claims = jose.decodeJwt(tokens.access_token);
  assert.equal(claims.exp - claims.iat, 30);
  assert.equal(tokens.expires_in, 30);
});

test('request without resource gets first resource', async (t) => {
  const server = await startServer(t);

  const tokens = await loginAlice(server, { resource: undefined });

  assert.equal(jose.decodeJwt(tokens.access_token).aud, API);
});

test('second issuer shares signing keys', async (t) => {
  const keys = await generateSigningKeys();
  const first = await startServer(t, { keys });
  const second = await startServer(t, { keys });
  assert.notEqual(first.issuer, second.issuer);

  const firstTokens = await loginAlice(first);
  const secondTokens = await loginAlice(second);

  const firstJwks = jose.createRemoteJWKSet(new URL(first.jwksUri));
  const fromFirst = await jose.jwtVerify(firstTokens.access_token, firstJwks, { issuer: first.issuer });
  const fromSecond = await jose.jwtVerify(secondTokens.access_token, firstJwks, { issuer: second.issuer });
  assert.equal(fromFirst.payload.iss, first.issuer);
  assert.equal(fromSecond.payload.iss, second.issuer);
  assert.equal(fromFirst.protectedHeader.kid, fromSecond.protectedHeader.kid);

  await assert.rejects(
    jose.jwtVerify(secondTokens.access_token, firstJwks, { issuer: first.issuer }),
    (error) => error.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && error.claim === 'iss',
  );
});

test('custom issuer appears in discovery and tokens', async (t) => {
  const issuer = 'https://issuer.portcullis.test';
  const server = await startServer(t, { issuer });
  assert.equal(server.issuer, issuer);

  const tokens = await loginAlice(server, { discoveryUrl: server.discoveryUrl });

  const { payload } = await jose.jwtVerify(
    tokens.access_token,
    jose.createRemoteJWKSet(new URL(server.jwksUri)),
    { issuer, audience: API },
  );
  assert.equal(payload.iss, issuer);
});

test('PKCE: authorization requests without valid S256 rejected', async (t) => {
  const server = await startServer(t);
  const { codeChallenge } = await pkcePair();
  const base = {
    response_type: 'code',
    client_id: CLIENT_ID,
    redirect_uri: REDIRECT_URI,
    scope: 'api:read',
    resource: API,
    state: 'pkce-state',
  };

  const cases = [
    { name: 'no PKCE parameters', params: {} },
    { name: 'method without code_challenge', params: { code_challenge_method: 'S256' } },
    { name: 'method plain', params: { code_challenge: codeChallenge, code_challenge_method: 'plain' } },
    { name: 'no code_challenge_method', params: { code_challenge: codeChallenge } },
    { name: 'lower-case s256', params: { code_challenge: codeChallenge, code_challenge_method: 's256' } },
  ];

  for (const { name, params } of cases) {
    const redirect = await authorizationRedirect(server, { ...base, ...params });
    assert.equal(redirect.get('error'), 'invalid_request', name);
    assert.equal(redirect.get('code'), null, name);
    assert.equal(redirect.get('state'), 'pkce-state', name);
    assert.equal(redirect.get('iss'), server.issuer, name);
  }

  // Control: the same request with a valid S256 challenge reaches the login page.
  const url = new URL(server.authorizationEndpoint);
  for (const [name, value] of Object.entries({ ...base, code_challenge: codeChallenge, code_challenge_method: 'S256' })) {
    url.searchParams.set(name, value);
  }
  const response = await fetch(url, { redirect: 'manual' });
  await response.body?.cancel();
  assert.equal(response.status, 303);
  assert.match(response.headers.get('location'), /^\/interaction\//);
});

test('PKCE: confidential client also requires it', async (t) => {
  const server = await startServer(t, {
    clients: [{
      client_id: 'confidential-web',
      client_secret: 'confidential-web-secret',
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['authorization_code'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
    }],
  });

  const redirect = await authorizationRedirect(server, {
    response_type: 'code',
    client_id: 'confidential-web',
    redirect_uri: REDIRECT_URI,
    scope: 'api:read',
  });
  assert.equal(redirect.get('error'), 'invalid_request');
});

test('PKCE: wrong code_verifier invalidates code', async (t) => {
  const server = await startServer(t);
  const { codeVerifier, codeChallenge } = await pkcePair();
  const { codeVerifier: wrongVerifier } = await pkcePair();
  const options = {
    issuer: server.issuer,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    scope: 'api:read',
    resource: API,
    username: 'alice',
    password: 'wonderland',
    codeChallenge,
  };

  const { code, metadata } = await authorize(options);
  const redeem = (verifier) => exchangeAuthorizationCode({
    metadata, code, clientId: CLIENT_ID, redirectUri: REDIRECT_URI, codeVerifier: verifier, resource: API,
  });

  await assert.rejects(redeem(wrongVerifier), (error) => {
    assert.ok(error instanceof LoginError);
    assert.equal(error.step, 'token');
    assert.equal(error.status, 400);
    assert.equal(error.error, 'invalid_grant');
    assert.ok(!error.message.includes(code), 'the error message must not contain the code');
    return true;
  });

  await assert.rejects(redeem(codeVerifier), (error) => {
    assert.equal(error.status, 400);
    assert.equal(error.error, 'invalid_grant');
    return true;
  });
});

test('PKCE: RFC 7636 Appendix B pair', async (t) => {
  const { codeVerifier, codeChallenge } = RFC7636_APPENDIX_B;
  assert.equal(createHash('sha256').update(codeVerifier).digest('base64url'), codeChallenge);
  assert.equal(await oauth.calculatePKCECodeChallenge(codeVerifier), codeChallenge);
  const server = await startServer(t);

  const tokens = await loginAlice(server, { codeVerifier, codeChallenge });

  const { payload } = await jose.jwtVerify(
    tokens.access_token,
    jose.createRemoteJWKSet(new URL(server.jwksUri)),
    { issuer: server.issuer, audience: API },
  );
  assert.equal(payload.sub, 'alice');
});

test('refresh token grant issues new access token', async (t) => {
  const server = await startServer(t);
  const tokens = await loginAlice(server);
  assert.equal(typeof tokens.refresh_token, 'string');

  const refreshed = await postForm(server.tokenEndpoint, {
    grant_type: 'refresh_token',
    refresh_token: tokens.refresh_token,
    client_id: CLIENT_ID,
    resource: API,
  });

  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body.error));
  assert.notEqual(refreshed.body.access_token, tokens.access_token);
  const { payload } = await jose.jwtVerify(
    refreshed.body.access_token,
    jose.createRemoteJWKSet(new URL(server.jwksUri)),
    { issuer: server.issuer, audience: API, typ: 'at+jwt' },
  );
  assert.equal(payload.sub, 'alice');
  assert.equal(payload.client_id, CLIENT_ID);

  // Public clients get a rotated refresh token, and the used one stops working.
  assert.equal(typeof refreshed.body.refresh_token, 'string');
  assert.notEqual(refreshed.body.refresh_token, tokens.refresh_token);
  const reused = await postForm(server.tokenEndpoint, {
    grant_type: 'refresh_token',
    refresh_token: tokens.refresh_token,
    client_id: CLIENT_ID,
  });
  assert.equal(reused.status, 400);
  assert.equal(reused.body.error, 'invalid_grant');
});

test('revoked refresh token no longer works', async (t) => {
  const server = await startServer(t);
  const tokens = await loginAlice(server);
  const apiAuthorization = { authorization: basicAuthorization(server.apiClient) };

  const before = await postForm(server.introspectionEndpoint, { token: tokens.refresh_token }, apiAuthorization);
  assert.equal(before.status, 200);
  assert.equal(before.body.active, true);
  assert.equal(before.body.client_id, CLIENT_ID);

  const revoked = await fetch(server.revocationEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      token: tokens.refresh_token,
      token_type_hint: 'refresh_token',
      client_id: CLIENT_ID,
    }),
  });
  await revoked.body?.cancel();
  assert.equal(revoked.status, 200);

  const after = await postForm(server.introspectionEndpoint, { token: tokens.refresh_token }, apiAuthorization);
  assert.equal(after.body.active, false);

  const refreshed = await postForm(server.tokenEndpoint, {
    grant_type: 'refresh_token',
    refresh_token: tokens.refresh_token,
    client_id: CLIENT_ID,
  });
  assert.equal(refreshed.status, 400);
  assert.equal(refreshed.body.error, 'invalid_grant');
});

test('login with wrong password fails at login step', async (t) => {
  const server = await startServer(t);
  const password = 'not-the-password';

  await assert.rejects(loginAlice(server, { password }), (error) => {
    assert.ok(error instanceof LoginError);
    assert.equal(error.step, 'login');
    assert.equal(error.status, 401);
    assert.match(error.message, /HTTP 401/);
    assert.ok(!error.message.includes(password), 'the error message must not contain the password');
    return true;
  });
});

test('unknown resource fails with invalid_target', async (t) => {
  const server = await startServer(t);

  await assert.rejects(loginAlice(server, { resource: 'https://unknown.portcullis.test' }), (error) => {
    assert.ok(error instanceof LoginError);
    assert.equal(error.step, 'callback');
    assert.equal(error.error, 'invalid_target');
    return true;
  });
});

test('login rejects discovery issuer mismatch', async (t) => {
  const server = await startServer(t);

  await assert.rejects(
    loginAlice(server, { issuer: 'https://other.portcullis.test', discoveryUrl: server.discoveryUrl }),
    (error) => {
      assert.ok(error instanceof LoginError);
      assert.equal(error.step, 'discovery');
      assert.match(error.message, /does not match the expected issuer/);
      return true;
    },
  );
});

// Wraps fetch so that the redirect to the client carries `param=value` in place of the server's
// value, as a mix-up or CSRF attacker would send it.
function fetchWithCallbackParam(param, value) {
  return async (url, init) => {
    const response = await fetch(url, init);
    const location = response.headers.get('location');
    if (location === null || !location.startsWith(REDIRECT_URI)) {
      return response;
    }
    const tampered = new URL(location);
    tampered.searchParams.set(param, value);
    const headers = new Headers(response.headers);
    headers.set('location', tampered.href);
    return new Response(null, { status: response.status, headers });
  };
}

test('login rejects callback with foreign iss', async (t) => {
  const server = await startServer(t);

  await assert.rejects(
    loginAlice(server, { fetch: fetchWithCallbackParam('iss', 'https://attacker.portcullis.test') }),
    (error) => {
      assert.ok(error instanceof LoginError);
      assert.equal(error.step, 'callback');
      assert.match(error.message, /iss "https:\/\/attacker\.portcullis\.test" does not match/);
      return true;
    },
  );
});

test('login rejects callback with foreign state', async (t) => {
  const server = await startServer(t);

  await assert.rejects(
    loginAlice(server, { state: 'expected-state', fetch: fetchWithCallbackParam('state', 'forged-state') }),
    (error) => {
      assert.ok(error instanceof LoginError);
      assert.equal(error.step, 'callback');
      assert.match(error.message, /state does not match/);
      return true;
    },
  );
});

test('discovery advertises S256, iss parameter and DPoP', async (t) => {
  const server = await startServer(t);

  const metadata = await (await fetch(server.discoveryUrl)).json();

  assert.equal(metadata.issuer, server.issuer);
  assert.equal(metadata.jwks_uri, server.jwksUri);
  assert.equal(metadata.token_endpoint, server.tokenEndpoint);
  assert.equal(metadata.authorization_endpoint, server.authorizationEndpoint);
  assert.equal(metadata.revocation_endpoint, server.revocationEndpoint);
  assert.equal(metadata.introspection_endpoint, server.introspectionEndpoint);
  assert.deepEqual(metadata.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(metadata.response_types_supported, ['code']);
  assert.equal(metadata.authorization_response_iss_parameter_supported, true);
  assert.ok(metadata.dpop_signing_alg_values_supported.includes('ES256'));
});

test('resource alg without matching key rejected at start', async () => {
  await assert.rejects(
    startAuthorizationServer({ resources: [{ url: API, alg: 'ES384' }] }),
    /no key in keys has "alg": "ES384"/,
  );
});

test('close stops accepting connections', async () => {
  const server = await startAuthorizationServer();
  const ready = await fetch(server.discoveryUrl);
  await ready.body?.cancel();
  assert.equal(ready.status, 200);

  await server.close();

  await assert.rejects(fetch(server.discoveryUrl), TypeError);
});

test('CLI prints JSON line and stops on SIGTERM', async (t) => {
  const child = spawn(process.execPath, [SERVER_SCRIPT, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGKILL');
    }
  });
  const stderr = [];
  child.stderr.on('data', (chunk) => stderr.push(chunk));

  const lines = createInterface({ input: child.stdout });
  const [firstLine] = await once(lines, 'line');
  const ready = JSON.parse(firstLine);

  assert.match(ready.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(ready.jwksUri, `${ready.issuer}/jwks`);
  const discovery = await (await fetch(`${ready.issuer}/.well-known/openid-configuration`)).json();
  assert.equal(discovery.issuer, ready.issuer);
  assert.deepEqual(discovery.code_challenge_methods_supported, ['S256']);

  const exited = once(child, 'exit');
  process.kill(child.pid, 'SIGTERM');
  const [exitCode] = await exited;
  assert.equal(exitCode, 0, Buffer.concat(stderr).toString());
});
