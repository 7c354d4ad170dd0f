// Tests of the example API (api/server.mjs) over HTTP, with tokens from the test
// authorization server: verified answers, RFC 6750 replies and CORS. No browser.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import { generateSigningKeys, startAuthorizationServer } from '../authz/server.mjs';
import { login } from '../authz/login.mjs';
import { startApiServer } from './api/server.mjs';

const APP_ORIGIN = 'http://127.0.0.1:5173';
const OTHER_ORIGIN = 'http://127.0.0.1:5174';
const REDIRECT_URI = `${APP_ORIGIN}/callback`;
const API = 'https://api.portcullis.test';
const OTHER_API = 'https://other.portcullis.test';

const QUIET_AUTHORIZATION_SERVER = { error: () => {} };
const QUIET_API = { info: () => {}, error: console.error };

let authorizationServer;
let api;
const tokens = {};

async function tokenFor({ resource, scope, server = authorizationServer }) {
  const codeVerifier = randomBytes(32).toString('base64url');
  const response = await login({
    issuer: server.issuer,
    clientId: 'portcullis-demo',
    redirectUri: REDIRECT_URI,
    scope,
    resource,
    codeVerifier,
    codeChallenge: createHash('sha256').update(codeVerifier).digest('base64url'),
    username: 'alice',
    password: 'wonderland',
  });
  return response.access_token;
}

function getProfile(headers = {}) {
  return fetch(api.profileUrl, { headers: { origin: APP_ORIGIN, ...headers } });
}

/** Returns the token with one character of its signature changed. */
function forgeSignature(token) {
  const last = token.at(-2) === 'A' ? 'B' : 'A';
  return `${token.slice(0, -2)}${last}${token.at(-1)}`;
}

before(async () => {
  authorizationServer = await startAuthorizationServer({
    redirectUris: [REDIRECT_URI],
    resources: [{ url: API }, { url: OTHER_API }],
    logger: QUIET_AUTHORIZATION_SERVER,
  });
  api = await startApiServer({
    issuer: authorizationServer.issuer,
    allowedOrigins: [APP_ORIGIN],
    logger: QUIET_API,
  });
  tokens.valid = await tokenFor({ resource: API, scope: 'openid api:read' });
  tokens.writeOnly = await tokenFor({ resource: API, scope: 'openid api:write' });
  tokens.otherAudience = await tokenFor({ resource: OTHER_API, scope: 'openid api:read' });
});

after(async () => {
  await api?.close();
  await authorizationServer?.close();
});

test('valid token returns the verified subject', async () => {
  const response = await getProfile({ authorization: `Bearer ${tokens.valid}` });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('access-control-allow-origin'), APP_ORIGIN);
  const body = await response.json();
  assert.equal(body.subject, 'alice');
  assert.equal(body.clientId, 'portcullis-demo');
  assert.deepEqual(body.scopes, ['api:read']);
  assert.equal(body.algorithm, 'RS256');
  assert.match(body.keyId, /^rs-/);
});

test('missing token gets a challenge without error', async () => {
  const response = await getProfile();
  assert.equal(response.status, 401);
  assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="portcullis-example"');
  assert.equal((await response.json()).code, 'token_missing');
});

test('other scheme counts as a missing token', async () => {
  const response = await getProfile({ authorization: 'Basic YWxpY2U6d29uZGVybGFuZA==' });
  assert.equal(response.status, 401);
  assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="portcullis-example"');
});

test('malformed bearer header is invalid_request', async () => {
  const response = await getProfile({ authorization: 'Bearer two tokens' });
  assert.equal(response.status, 400);
  assert.match(response.headers.get('www-authenticate'), /^Bearer realm="portcullis-example", error="invalid_request", error_description="[^"]+"$/);
  assert.equal((await response.json()).code, 'authorization_malformed');
});

test('forged signature is invalid_token', async () => {
  const response = await getProfile({ authorization: `Bearer ${forgeSignature(tokens.valid)}` });
  assert.equal(response.status, 401);
  assert.match(response.headers.get('www-authenticate'), /error="invalid_token"/);
  assert.equal((await response.json()).code, 'signature_invalid');
});

test('token for another API is invalid_token', async () => {
  const response = await getProfile({ authorization: `Bearer ${tokens.otherAudience}` });
  assert.equal(response.status, 401);
  assert.match(response.headers.get('www-authenticate'), /error="invalid_token"/);
  assert.equal((await response.json()).code, 'audience_invalid');
});

test('token without api:read is insufficient_scope', async () => {
  const response = await getProfile({ authorization: `Bearer ${tokens.writeOnly}` });
  assert.equal(response.status, 403);
  const challenge = response.headers.get('www-authenticate');
  assert.match(challenge, /error="insufficient_scope"/);
  assert.match(challenge, /scope="api:read"$/);
  assert.equal((await response.json()).code, 'insufficient_scope');
});

test('challenge header is exposed to the app', async () => {
  const response = await getProfile();
  assert.equal(response.headers.get('access-control-expose-headers'), 'WWW-Authenticate');
});

test('preflight from the app origin is allowed', async () => {
  const response = await fetch(api.profileUrl, {
    method: 'OPTIONS',
    headers: {
      origin: APP_ORIGIN,
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'authorization',
    },
  });
  assert.equal(response.status, 204);
  assert.equal(response.headers.get('access-control-allow-origin'), APP_ORIGIN);
  assert.equal(response.headers.get('access-control-allow-headers'), 'Authorization');
  assert.equal(response.headers.get('access-control-allow-methods'), 'GET');
});

test('preflight from another origin is rejected', async () => {
  const response = await fetch(api.profileUrl, {
    method: 'OPTIONS',
    headers: { origin: OTHER_ORIGIN, 'access-control-request-method': 'GET' },
  });
  assert.equal(response.status, 403);
  assert.equal(response.headers.get('access-control-allow-origin'), null);
});

test('request from another origin gets no CORS headers', async () => {
  const response = await getProfile({ origin: OTHER_ORIGIN, authorization: `Bearer ${tokens.valid}` });
  assert.equal(response.headers.get('access-control-allow-origin'), null);
});

test('unknown path is 404', async () => {
  const response = await fetch(`${api.url}/api/other`);
  assert.equal(response.status, 404);
});

/**
 * Starts an authorization server and an API that fetches its key set, then restarts the
 * server on the same port and issuer with a new key generation in front of the old one, and
 * calls the API with a token signed by a new key, which the API has not fetched yet.
 */
async function callApiAfterKeyRotation(jwksRefetchIntervalMs) {
  const oldKeys = await generateSigningKeys({ suffix: 1 });
  const newKeys = await generateSigningKeys({ suffix: 2 });
  const options = { redirectUris: [REDIRECT_URI], logger: QUIET_AUTHORIZATION_SERVER };
  const running = [];

  try {
    const oldServer = await startAuthorizationServer({ ...options, keys: oldKeys });
    running.push(oldServer);
    const rotatingApi = await startApiServer({
      issuer: oldServer.issuer,
      allowedOrigins: [APP_ORIGIN],
      jwksRefetchIntervalMs,
      logger: QUIET_API,
    });
    running.push(rotatingApi);

    await oldServer.close();
    // Let fetch's connection pool see that the old server closed its keep-alive connections.
    await new Promise((resolve) => { setTimeout(resolve, 100); });
    const newServer = await startAuthorizationServer({
      ...options,
      port: oldServer.port,
      issuer: oldServer.issuer,
      keys: [...newKeys, ...oldKeys],
    });
    running.push(newServer);

    const token = await tokenFor({ resource: API, scope: 'openid api:read', server: newServer });
    const response = await fetch(rotatingApi.profileUrl, { headers: { authorization: `Bearer ${token}` } });
    return { response, newKeyId: newKeys[0].kid };
  } finally {
    for (const server of running) {
      await server.close();
    }
  }
}

test('unknown kid refetches the key set', async () => {
  const { response, newKeyId } = await callApiAfterKeyRotation(0);
  assert.equal(response.status, 200);
  assert.equal((await response.json()).keyId, newKeyId);
});

test('unknown kid within the refetch interval is invalid_token', async () => {
  const { response } = await callApiAfterKeyRotation(60_000);
  assert.equal(response.status, 401);
  assert.match(response.headers.get('www-authenticate'), /error="invalid_token"/);
  assert.equal((await response.json()).code, 'key_not_found');
});
