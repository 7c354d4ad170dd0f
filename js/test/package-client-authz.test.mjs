// End-to-end tests of `portcullis/client` (pkg/, Node.js build) against the test
// authorization server of js/authz: oidc-provider on 127.0.0.1 with DPoP, refresh token
// rotation and revocation. They cover DPoP-bound tokens from our proofs, the DPoP nonce
// flow, refresh with rotation, revocation, one refresh request for concurrent callers, and
// typed errors. Build pkg/ first with `make pkg`.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { Provider } from 'oidc-provider';

import { buildProviderConfiguration, resolveSettings } from '../authz/configuration.mjs';
import { createInteractionHandler } from '../authz/interactions.mjs';
import { authorize, exchangeAuthorizationCode } from '../authz/login.mjs';
import { startAuthorizationServer } from '../authz/server.mjs';

const PKG_DIR = fileURLToPath(new URL('../../pkg/', import.meta.url));
const MISSING = !existsSync(join(PKG_DIR, 'dist/node/client.js'));

const API = 'https://api.portcullis.test';
const CLIENT_ID = 'portcullis-demo';
const REDIRECT_URI = 'http://127.0.0.1/callback';
// The test server's access tokens live 3600 s: a larger minValidity forces a refresh.
const FORCE_REFRESH = 7200;
const QUIET = { error: () => {} };

if (MISSING) {
  test('pkg/ is built with portcullis/client', () => {
    assert.fail(`pkg/ has no dist/node/client.js in ${PKG_DIR}: run \`make pkg\` (js/package/build.sh) before \`npm test\``);
  });
} else {
  const client = await import(join(PKG_DIR, 'dist/node/client.js'));
  const light = await import(join(PKG_DIR, 'dist/node/index.js'));
  const verify = await import(join(PKG_DIR, 'dist/node/verify.js'));
  defineTests(client, light, verify);
}

/** Counts POST requests that reach the token endpoint, inside oidc-provider. */
function countTokenRequests(provider, tokenEndpoint) {
  const path = new URL(tokenEndpoint).pathname;
  const counter = { count: 0 };
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && ctx.path === path) {
      counter.count += 1;
    }
    await next();
  });
  return counter;
}

async function startServer(t) {
  const server = await startAuthorizationServer({ logger: QUIET });
  t.after(() => server.close());
  return { ...server, tokenRequests: countTokenRequests(server.provider, server.tokenEndpoint) };
}

/**
 * Starts oidc-provider with the test server's configuration, except that DPoP proofs must
 * carry a server nonce (RFC 9449 §8). `startAuthorizationServer` has no option for that.
 */
async function startNonceServer(t) {
  const settings = await resolveSettings({ logger: QUIET });
  const configuration = buildProviderConfiguration(settings);
  configuration.features.dPoP = { enabled: true, nonceSecret: randomBytes(32), requireNonce: () => true };

  let handle = (request, response) => {
    response.writeHead(503);
    response.end();
  };
  const server = createServer((request, response) => handle(request, response));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });

  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, configuration);
  const interactions = createInteractionHandler(provider, settings.accounts, QUIET);
  const protocol = provider.callback();
  handle = (request, response) => {
    interactions(request, response).then((handled) => {
      if (!handled) {
        protocol(request, response);
      }
    });
  };
  const tokenEndpoint = `${issuer}${provider.pathFor('token')}`;
  return { issuer, tokenEndpoint, provider, tokenRequests: countTokenRequests(provider, tokenEndpoint) };
}

/**
 * A `fetch` that adds a DPoP proof from `client` to each request and, like a client should,
 * sends the request once more with the server's nonce after `use_dpop_nonce`. `log` records
 * each response status with the nonce its proof carried.
 */
function dpopFetch(client, key, { log = [], proofUrl, proofMethod } = {}) {
  let nonce;
  return async (url, init) => {
    for (let attempt = 1; ; attempt += 1) {
      const proof = await client.createDpopProof({ key, method: proofMethod ?? init.method, url: proofUrl ?? String(url), nonce });
      const response = await fetch(url, { ...init, headers: { ...init.headers, dpop: proof } });
      log.push({ status: response.status, nonce });
      const serverNonce = response.headers.get('dpop-nonce') ?? undefined;
      const retry = attempt === 1 && response.status === 400 && serverNonce !== undefined && (await response.clone().json()).error === 'use_dpop_nonce';
      if (!retry) {
        return response;
      }
      nonce = serverNonce;
    }
  };
}

/** Logs alice in through the authorization code flow; `fetch` sends the token request. */
async function logIn(server, fetch) {
  const codeVerifier = randomBytes(32).toString('base64url');
  const codeChallenge = createHash('sha256').update(codeVerifier).digest('base64url');
  const { code, metadata } = await authorize({
    issuer: server.issuer,
    clientId: CLIENT_ID,
    redirectUri: REDIRECT_URI,
    scope: 'openid api:read',
    resource: API,
    codeChallenge,
    username: 'alice',
    password: 'wonderland',
  });
  return exchangeAuthorizationCode({ metadata, code, clientId: CLIENT_ID, redirectUri: REDIRECT_URI, codeVerifier, resource: API, fetch });
}

function defineTests(client, light, verify) {
  const invalidGrant = (error) => {
    assert.ok(error instanceof client.OAuthRequestError, `expected an OAuthRequestError, got ${error}`);
    assert.equal(error.code, 'error_response');
    assert.equal(error.error, 'invalid_grant');
    assert.equal(error.status, 400);
    return true;
  };
  const refreshOptions = (server, tokens, extra = {}) => ({
    tokenEndpoint: server.tokenEndpoint,
    clientId: CLIENT_ID,
    refreshToken: tokens.refresh_token ?? tokens.refreshToken,
    accessToken: tokens.access_token ?? tokens.accessToken,
    minValidity: FORCE_REFRESH,
    ...extra,
  });

  test('token request with our proof yields a dpop-bound token', async (t) => {
    const server = await startServer(t);
    const key = await client.createDpopKey();
    const tokens = await logIn(server, dpopFetch(client, key));
    assert.equal(tokens.token_type, 'DPoP');

    const jwks = await (await fetch(server.jwksUri)).json();
    const verified = verify.verifyToken(tokens.access_token, jwks, { issuer: server.issuer, audiences: [API], algorithms: ['RS256'] });
    assert.deepEqual(verified.claims.cnf, { jkt: key.jkt });

    // What a resource server checks next: a proof for its request, bound to the token.
    const url = `${API}/orders?page=1`;
    const proof = await client.createDpopProof({ key, method: 'GET', url, accessToken: tokens.access_token });
    assert.equal(verify.verifyDpopProof(proof, { method: 'GET', url, accessToken: tokens.access_token }).jkt, verified.claims.cnf.jkt);
  });

  test('token request with a proof for another request is rejected', async (t) => {
    const server = await startServer(t);
    const key = await client.createDpopKey();
    for (const proofTarget of [{ proofUrl: `${server.issuer}/other` }, { proofMethod: 'GET' }]) {
      await assert.rejects(logIn(server, dpopFetch(client, key, proofTarget)), { name: 'LoginError', error: 'invalid_dpop_proof' });
    }
  });

  test('server nonce request is answered with a retry', async (t) => {
    const server = await startNonceServer(t);
    const key = await client.createDpopKey({ alg: 'EdDSA' });
    const log = [];
    const tokens = await logIn(server, dpopFetch(client, key, { log }));
    assert.deepEqual(log.map(({ status, nonce }) => [status, typeof nonce]), [[400, 'undefined'], [200, 'string']]);
    assert.equal(light.inspectToken(tokens.access_token).claims.cnf.jkt, key.jkt);

    // refreshIfNeeded without a nonce: the server returns use_dpop_nonce, the retry carries it.
    server.tokenRequests.count = 0;
    const proofs = [];
    const recordingFetch = (url, init) => {
      proofs.push(JSON.parse(Buffer.from(init.headers.dpop.split('.')[1], 'base64url')));
      return fetch(url, init);
    };
    const refreshed = await client.refreshIfNeeded(refreshOptions(server, tokens, { dpop: { key }, fetch: recordingFetch }));
    assert.equal(server.tokenRequests.count, 2);
    assert.equal(proofs.length, 2);
    assert.equal(proofs[0].nonce, undefined);
    assert.equal(typeof proofs[1].nonce, 'string');
    assert.notEqual(proofs[0].jti, proofs[1].jti);
    assert.equal(refreshed.refreshed, true);
    assert.equal(typeof refreshed.dpopNonce, 'string');
    assert.equal(light.inspectToken(refreshed.accessToken).claims.cnf.jkt, key.jkt);

    // With the returned nonce the first request succeeds.
    server.tokenRequests.count = 0;
    const again = await client.refreshIfNeeded(refreshOptions(server, refreshed, { dpop: { key, nonce: refreshed.dpopNonce } }));
    assert.equal(server.tokenRequests.count, 1);
    assert.equal(again.refreshed, true);
  });

  test('refresh rotates a bearer refresh token', async (t) => {
    const server = await startServer(t);
    const tokens = await logIn(server);
    server.tokenRequests.count = 0;
    const before = Math.floor(Date.now() / 1000);

    const refreshed = await client.refreshIfNeeded(refreshOptions(server, tokens));
    assert.equal(server.tokenRequests.count, 1);
    assert.equal(refreshed.refreshed, true);
    assert.equal(refreshed.tokenType, 'Bearer');
    assert.notEqual(refreshed.accessToken, tokens.access_token);
    assert.notEqual(refreshed.refreshToken, tokens.refresh_token);
    assert.ok(refreshed.expiresAt >= before + 3600, String(refreshed.expiresAt));
    assert.ok(refreshed.expiresAt <= Math.floor(Date.now() / 1000) + 3600, String(refreshed.expiresAt));

    // The rotated-out refresh token no longer works.
    await assert.rejects(client.refreshIfNeeded(refreshOptions(server, tokens)), invalidGrant);
  });

  test('refresh with the dpop key keeps the binding', async (t) => {
    const server = await startServer(t);
    const key = await client.createDpopKey();
    const tokens = await logIn(server, dpopFetch(client, key));
    server.tokenRequests.count = 0;

    const refreshed = await client.refreshIfNeeded(refreshOptions(server, tokens, { dpop: { key } }));
    assert.equal(server.tokenRequests.count, 1);
    assert.equal(refreshed.tokenType, 'DPoP');
    assert.notEqual(refreshed.accessToken, tokens.access_token);
    assert.equal(light.inspectToken(refreshed.accessToken).claims.cnf.jkt, key.jkt);
    // oidc-provider 9's default `rotateRefreshToken` does not rotate sender-constrained
    // refresh tokens of public clients: the response repeats the one passed in.
    assert.equal(refreshed.refreshToken, tokens.refresh_token);
  });

  test('dpop-bound refresh token needs its key', async (t) => {
    const server = await startServer(t);
    const key = await client.createDpopKey();
    const tokens = await logIn(server, dpopFetch(client, key));
    const otherKey = await client.createDpopKey();
    await assert.rejects(client.refreshIfNeeded(refreshOptions(server, tokens)), invalidGrant);
    await assert.rejects(client.refreshIfNeeded(refreshOptions(server, tokens, { dpop: { key: otherKey } })), invalidGrant);
    // The rejected attempts did not use the refresh token up.
    assert.equal((await client.refreshIfNeeded(refreshOptions(server, tokens, { dpop: { key } }))).refreshed, true);
  });

  test('refreshIfNeeded sends no request while the token is fresh', async (t) => {
    const server = await startServer(t);
    const tokens = await logIn(server);
    server.tokenRequests.count = 0;
    const result = await client.refreshIfNeeded(refreshOptions(server, tokens, { minValidity: 60 }));
    assert.deepEqual(result, {
      refreshed: false,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      expiresAt: light.inspectToken(tokens.access_token).expiresAt,
    });
    // The decision follows the token's exp: just inside and just outside minValidity.
    const { expiresAt } = light.inspectToken(tokens.access_token);
    const fresh = await client.refreshIfNeeded(refreshOptions(server, tokens, { minValidity: 99, now: expiresAt - 100 }));
    assert.equal(fresh.refreshed, false);
    assert.equal(server.tokenRequests.count, 0);
    const stale = await client.refreshIfNeeded(refreshOptions(server, tokens, { minValidity: 100, now: expiresAt - 100 }));
    assert.equal(stale.refreshed, true);
    assert.equal(server.tokenRequests.count, 1);
  });

  test('ten concurrent callers share one refresh request', async (t) => {
    const server = await startServer(t);
    const key = await client.createDpopKey();
    const tokens = await logIn(server, dpopFetch(client, key));
    server.tokenRequests.count = 0;

    const results = await Promise.all(Array.from({ length: 10 }, () => client.refreshIfNeeded(refreshOptions(server, tokens, { dpop: { key } }))));
    assert.equal(server.tokenRequests.count, 1);
    for (const result of results) {
      assert.equal(result, results[0]);
    }
    assert.equal(results[0].refreshed, true);

    // Once settled, a call sends a new request; the shared refresh token works.
    const next = await client.refreshIfNeeded(refreshOptions(server, results[0], { dpop: { key } }));
    assert.equal(server.tokenRequests.count, 2);
    assert.equal(next.refreshed, true);
  });

  test('concurrent callers with different refresh tokens do not share', async (t) => {
    const server = await startServer(t);
    const first = await logIn(server);
    const second = await logIn(server);
    server.tokenRequests.count = 0;
    const calls = [];
    for (let index = 0; index < 5; index += 1) {
      calls.push(client.refreshIfNeeded(refreshOptions(server, first)), client.refreshIfNeeded(refreshOptions(server, second)));
    }
    const results = await Promise.all(calls);
    assert.equal(server.tokenRequests.count, 2);
    assert.equal(new Set(results).size, 2);
    assert.equal(new Set(results.map((result) => result.refreshToken)).size, 2);
  });

  test('concurrent callers share one error', async (t) => {
    const server = await startServer(t);
    const tokens = await logIn(server);
    server.tokenRequests.count = 0;
    const options = refreshOptions(server, tokens, { refreshToken: 'not-a-refresh-token' });
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => client.refreshIfNeeded(options)));
    assert.equal(server.tokenRequests.count, 1);
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected');
      assert.ok(invalidGrant(outcome.reason));
    }
    await assert.rejects(client.refreshIfNeeded(options), invalidGrant);
    assert.equal(server.tokenRequests.count, 2);
  });

  test('revoked refresh token fails with invalid_grant', async (t) => {
    const server = await startServer(t);
    const tokens = await logIn(server);
    const refreshed = await client.refreshIfNeeded(refreshOptions(server, tokens));
    assert.equal(refreshed.tokenType, 'Bearer');

    await client.revokeToken({ revocationEndpoint: server.revocationEndpoint, token: refreshed.refreshToken, tokenTypeHint: 'refresh_token', clientId: CLIENT_ID });
    await assert.rejects(client.refreshIfNeeded(refreshOptions(server, refreshed)), invalidGrant);
    // RFC 7009 §2.2: revoking a token that is already invalid, or unknown, succeeds too.
    await client.revokeToken({ revocationEndpoint: server.revocationEndpoint, token: refreshed.refreshToken, clientId: CLIENT_ID });
    await client.revokeToken({ revocationEndpoint: server.revocationEndpoint, token: 'unknown-token', clientId: CLIENT_ID });
  });

  test('revocation errors are typed', async (t) => {
    const server = await startServer(t);
    const tokens = await logIn(server);
    const revoke = (options) => client.revokeToken({ revocationEndpoint: server.revocationEndpoint, token: tokens.refresh_token, ...options });
    const rejected = (status, error) => (reason) => {
      assert.ok(reason instanceof client.OAuthRequestError);
      assert.equal(reason.code, 'error_response');
      assert.equal(reason.status, status);
      assert.equal(reason.error, error);
      assert.equal(typeof reason.errorDescription, 'string');
      return true;
    };
    const { clientId, clientSecret } = server.apiClient;
    await assert.rejects(revoke({ clientId, clientSecret: `${clientSecret}x` }), rejected(401, 'invalid_client'));
    // With the right secret the client authenticates, but the token belongs to another client.
    await assert.rejects(revoke({ clientId, clientSecret }), rejected(400, 'invalid_request'));
    // oidc-provider does not revoke JWT access tokens.
    await assert.rejects(revoke({ clientId: CLIENT_ID, token: tokens.access_token, tokenTypeHint: 'access_token' }), rejected(400, 'unsupported_token_type'));
    // None of the above revoked the refresh token.
    assert.equal((await client.refreshIfNeeded(refreshOptions(server, tokens))).refreshed, true);
  });
}
