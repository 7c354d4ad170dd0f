// Runs `portcullis/client` from the `web` build of pkg/ in headless Chromium, through
// playwright-core with /usr/bin/chromium or the CHROMIUM variable. WebCrypto keys must stay
// non-extractable, survive structuredClone and IndexedDB, and sign proofs that jose and the
// core accept. Then the page logs in with DPoP, refreshes and revokes against the test
// authorization server on another 127.0.0.1 origin. Build pkg/ first with `make pkg`.

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import * as jose from 'jose';
import { chromium } from 'playwright-core';

import { authorize } from '../authz/login.mjs';
import { startAuthorizationServer } from '../authz/server.mjs';

const PKG_DIR = fileURLToPath(new URL('../../pkg/', import.meta.url));
const MISSING = !existsSync(join(PKG_DIR, 'dist/web/client.js'));
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
const API = 'https://api.portcullis.test';
const CLIENT_ID = 'portcullis-demo';
const PROOF_URL = 'https://api.example.com/orders?page=2';

/** Serves pkg/ and an empty page on 127.0.0.1. */
async function startPageServer(t) {
  const contentTypes = { '.js': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
  const server = createServer(async (request, response) => {
    const { pathname } = new URL(request.url, 'http://127.0.0.1');
    if (pathname === '/page.html') {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<!doctype html><title>portcullis client</title>');
      return;
    }
    const path = normalize(join(PKG_DIR, decodeURIComponent(pathname)));
    try {
      if (!path.startsWith(PKG_DIR)) {
        throw new Error('outside pkg/');
      }
      const body = await readFile(path);
      response.writeHead(200, { 'content-type': contentTypes[extname(path)] ?? 'application/octet-stream' });
      response.end(body);
    } catch {
      response.writeHead(404);
      response.end();
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${server.address().port}`;
}

async function openPage(t, origin) {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run .ci/install.sh chromium, or set CHROMIUM`);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error));
  await page.goto(`${origin}/page.html`);
  t.after(() => assert.deepEqual(errors, [], 'uncaught errors in the page'));
  return page;
}

// Runs in the page: creates keys, checks them, and returns proofs signed by a copy that went
// through structuredClone and by one read back from IndexedDB.
async function keysInPage({ proofUrl }) {
  const client = await import('/dist/web/client.js');
  const readBack = (value) =>
    new Promise((resolve, reject) => {
      const open = indexedDB.open('portcullis-test', 1);
      open.onupgradeneeded = () => open.result.createObjectStore('keys');
      open.onerror = () => reject(open.error);
      open.onsuccess = () => {
        const store = open.result.transaction('keys', 'readwrite').objectStore('keys');
        store.put(value, 'dpop');
        const get = store.get('dpop');
        get.onsuccess = () => resolve(get.result);
        get.onerror = () => reject(get.error);
      };
    });

  const results = {};
  for (const alg of ['ES256', 'EdDSA']) {
    const key = await client.createDpopKey({ alg });
    let exportError = null;
    try {
      await crypto.subtle.exportKey('jwk', key.privateKey);
    } catch (error) {
      exportError = error.name;
    }
    const cloned = structuredClone(key);
    const stored = await readBack(key);
    results[alg] = {
      jkt: key.jkt,
      publicJwk: key.publicJwk,
      extractable: key.privateKey.extractable,
      usages: key.privateKey.usages,
      exportError,
      storedExtractable: stored.privateKey.extractable,
      proofs: [
        await client.createDpopProof({ key, method: 'POST', url: proofUrl, accessToken: 'access-token' }),
        await client.createDpopProof({ key: cloned, method: 'POST', url: proofUrl, accessToken: 'access-token' }),
        await client.createDpopProof({ key: stored, method: 'POST', url: proofUrl, accessToken: 'access-token' }),
      ],
    };
  }
  return results;
}

// Runs in the page: redeems a code with a DPoP proof, refreshes, revokes, and reports.
async function flowInPage({ tokenEndpoint, revocationEndpoint, clientId, code, codeVerifier, redirectUri, resource }) {
  const client = await import('/dist/web/client.js');
  const light = await import('/dist/web/index.js');
  const key = await client.createDpopKey();

  const body = new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: codeVerifier, redirect_uri: redirectUri, client_id: clientId, resource });
  const response = await fetch(tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: await client.createDpopProof({ key, method: 'POST', url: tokenEndpoint }) },
    body,
  });
  const tokens = await response.json();
  if (!response.ok) {
    return { tokenStatus: response.status, tokens };
  }

  const options = { tokenEndpoint, clientId, refreshToken: tokens.refresh_token, accessToken: tokens.access_token, minValidity: 7200, dpop: { key } };
  const results = await Promise.all(Array.from({ length: 10 }, () => client.refreshIfNeeded(options)));
  const refreshed = results[0];

  await client.revokeToken({ revocationEndpoint, token: refreshed.refreshToken, tokenTypeHint: 'refresh_token', clientId });
  let revokedError = null;
  try {
    await client.refreshIfNeeded({ ...options, refreshToken: refreshed.refreshToken, accessToken: refreshed.accessToken });
  } catch (error) {
    revokedError = { isOAuthRequestError: error instanceof client.OAuthRequestError, code: error.code, error: error.error };
  }

  return {
    tokenStatus: response.status,
    tokenType: tokens.token_type,
    jkt: key.jkt,
    boundTo: light.inspectToken(tokens.access_token).claims.cnf?.jkt,
    sharedResults: results.every((result) => result === refreshed),
    refreshedTokenType: refreshed.tokenType,
    refreshedBoundTo: light.inspectToken(refreshed.accessToken).claims.cnf?.jkt,
    revokedError,
  };
}

if (MISSING) {
  test('pkg/ is built with portcullis/client', () => {
    assert.fail(`pkg/ has no dist/web/client.js in ${PKG_DIR}: run \`make pkg\` (js/package/build.sh) before \`npm test\``);
  });
} else {
  const verify = await import(join(PKG_DIR, 'dist/node/verify.js'));

  test('browser keys are non-extractable and sign valid proofs', async (t) => {
    const origin = await startPageServer(t);
    const page = await openPage(t, origin);
    const results = await page.evaluate(keysInPage, { proofUrl: PROOF_URL });

    for (const alg of ['ES256', 'EdDSA']) {
      const result = results[alg];
      assert.equal(result.extractable, false, alg);
      assert.deepEqual(result.usages, ['sign'], alg);
      assert.equal(result.exportError, 'InvalidAccessError', alg);
      assert.equal(result.storedExtractable, false, alg);
      assert.equal(result.jkt, await jose.calculateJwkThumbprint(result.publicJwk, 'sha256'), alg);
      for (const proof of result.proofs) {
        const { protectedHeader } = await jose.jwtVerify(proof, jose.EmbeddedJWK, { typ: 'dpop+jwt', algorithms: [alg] });
        assert.deepEqual(protectedHeader.jwk, result.publicJwk, alg);
        const verified = verify.verifyDpopProof(proof, { method: 'POST', url: PROOF_URL, accessToken: 'access-token' });
        assert.equal(verified.jkt, result.jkt, alg);
      }
    }
  });

  test('browser runs login refresh and revoke with dpop', async (t) => {
    const origin = await startPageServer(t);
    const redirectUri = `${origin}/callback`;
    // The server allows cross-origin calls from the origins of the client's redirect URIs.
    const server = await startAuthorizationServer({ redirectUris: [redirectUri], logger: { error: () => {} } });
    t.after(() => server.close());
    const tokenPath = new URL(server.tokenEndpoint).pathname;
    const tokenRequests = { count: 0 };
    server.provider.use(async (ctx, next) => {
      if (ctx.method === 'POST' && ctx.path === tokenPath) {
        tokenRequests.count += 1;
      }
      await next();
    });

    const codeVerifier = randomBytes(32).toString('base64url');
    const { code } = await authorize({
      issuer: server.issuer,
      clientId: CLIENT_ID,
      redirectUri,
      scope: 'openid api:read',
      resource: API,
      codeChallenge: createHash('sha256').update(codeVerifier).digest('base64url'),
      username: 'alice',
      password: 'wonderland',
    });

    const page = await openPage(t, origin);
    const result = await page.evaluate(flowInPage, {
      tokenEndpoint: server.tokenEndpoint,
      revocationEndpoint: server.revocationEndpoint,
      clientId: CLIENT_ID,
      code,
      codeVerifier,
      redirectUri,
      resource: API,
    });

    assert.equal(result.tokenStatus, 200, JSON.stringify(result.tokens));
    assert.equal(result.tokenType, 'DPoP');
    assert.equal(result.boundTo, result.jkt);
    assert.equal(result.sharedResults, true);
    assert.equal(result.refreshedTokenType, 'DPoP');
    assert.equal(result.refreshedBoundTo, result.jkt);
    assert.deepEqual(result.revokedError, { isOAuthRequestError: true, code: 'error_response', error: 'invalid_grant' });
    // The code redemption, one refresh for ten callers, and the refresh after revocation.
    assert.equal(tokenRequests.count, 3);
  });
}
