// End-to-end tests of the React and Angular examples: Debian's Chromium, driven by
// playwright-core, signs in through the test authorization server's login and consent pages,
// reads the token inspector, and calls the example API. Each app's production build is served
// from its dist/ by e2e/static-server.mjs. Build the apps first (test.sh does).

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';

import { startAuthorizationServer } from '../authz/server.mjs';
import { startApiServer } from './api/server.mjs';
import { startStaticServer } from './e2e/static-server.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// Without the background-networking and component-update flags, Chromium tries to reach
// Google's hosts, which the test machines' network rejects.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
const SCREENSHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url));
const RESOURCE = 'https://api.portcullis.test';
const ACCESS_TOKEN_TTL_SECONDS = 3600;
const TEST_TIMEOUT_MS = 60_000;

const APPS = [
  { name: 'react', dist: fileURLToPath(new URL('./react/dist/', import.meta.url)) },
  { name: 'angular', dist: fileURLToPath(new URL('./angular/dist/', import.meta.url)) },
];

let authorizationServer;
let api;
let browser;
let signingKeyIds;
const appServers = new Map();

before(async () => {
  for (const app of APPS) {
    if (!existsSync(`${app.dist}index.html`)) {
      throw new Error(`${app.dist}index.html is missing: build the apps first with js/examples/test.sh`);
    }
  }

  // The app servers start first: their ports make up the redirect URIs and CORS origins.
  for (const app of APPS) {
    appServers.set(app.name, await startStaticServer(app.dist));
  }
  const origins = [...appServers.values()].map((server) => server.origin);

  authorizationServer = await startAuthorizationServer({
    redirectUris: origins.map((origin) => `${origin}/callback`),
    logger: { error: console.error },
  });
  api = await startApiServer({
    issuer: authorizationServer.issuer,
    allowedOrigins: origins,
    logger: { info: () => {}, error: console.error },
  });

  for (const server of appServers.values()) {
    server.setConfig({
      issuer: authorizationServer.issuer,
      clientId: 'portcullis-demo',
      scope: 'openid api:read',
      resource: RESOURCE,
      apiUrl: api.profileUrl,
    });
  }

  const jwks = await (await fetch(authorizationServer.jwksUri)).json();
  signingKeyIds = jwks.keys.map((key) => key.kid);

  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  await mkdir(SCREENSHOTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await api?.close();
  await authorizationServer?.close();
  for (const server of appServers.values()) {
    await server.close();
  }
});

/**
 * Opens the app in a new browser context (no cookies at the authorization server), so
 * every test goes through the login and consent pages.
 */
async function openApp(appName) {
  const origin = appServers.get(appName).origin;
  const context = await browser.newContext({ viewport: { width: 1000, height: 1200 } });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(`${origin}/`);
  return { context, page, origin, pageErrors };
}

async function fillLoginAndConsent(page) {
  await page.waitForURL(`${authorizationServer.issuer}/interaction/**`);
  await page.fill('#login-form input[name="username"]', 'alice');
  await page.fill('#login-form input[name="password"]', 'wonderland');
  await page.click('#login-form button[type="submit"]');
  await page.click('#consent-form button[type="submit"]');
}

/** Signs in as alice and waits until the app shows the token inspector. */
async function signIn(appName) {
  const session = await openApp(appName);
  await session.page.click('#sign-in');
  await fillLoginAndConsent(session.page);
  await session.page.waitForSelector('#subject');
  return session;
}

async function readSecondsLeft(page) {
  const value = await page.getAttribute('#expires-in', 'data-seconds');
  assert.match(value, /^-?\d+$/, `#expires-in has data-seconds ${JSON.stringify(value)}`);
  return Number(value);
}

async function readApiResult(page) {
  await page.waitForSelector('#api-result');
  return {
    status: Number(await page.textContent('#api-status')),
    challenge: (await page.$('#api-challenge')) === null ? null : await page.textContent('#api-challenge'),
    body: JSON.parse(await page.textContent('#api-body')),
  };
}

for (const { name } of APPS) {
  describe(`${name} example`, () => {
    test('sign-in shows alice and a running countdown', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { context, page, origin, pageErrors } = await signIn(name);
      try {
        assert.equal(page.url(), `${origin}/`, 'the app removes the code from the address bar');
        assert.equal(await page.textContent('#subject'), 'alice');
        assert.match(await page.textContent('#scopes'), /api:read/);
        assert.equal(JSON.parse(await page.textContent('#token-header')).typ, 'at+jwt');
        assert.equal(JSON.parse(await page.textContent('#token-claims')).aud, RESOURCE);

        const first = await readSecondsLeft(page);
        assert.ok(first > 0, `countdown starts at ${first} s`);
        assert.ok(first <= ACCESS_TOKEN_TTL_SECONDS, `countdown starts at ${first} s`);
        await page.waitForFunction(
          (start) => Number(document.querySelector('#expires-in')?.getAttribute('data-seconds')) < start,
          first,
        );
        const second = await readSecondsLeft(page);
        assert.ok(second > 0, `countdown went from ${first} s to ${second} s`);
        assert.ok(second < first, `countdown went from ${first} s to ${second} s`);

        const requests = appServers.get(name).requests;
        assert.ok(
          requests.some((path) => path.endsWith('.wasm')),
          `the app loads its .wasm from its own origin; requests: ${requests.join(' ')}`,
        );
        assert.deepEqual(pageErrors, []);
      } finally {
        await context.close();
      }
    });

    test('API call shows the verified answer', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { context, page } = await signIn(name);
      try {
        await page.click('#call-api');
        const result = await readApiResult(page);
        assert.equal(result.status, 200);
        assert.equal(result.challenge, null);
        assert.equal(result.body.subject, 'alice');
        assert.equal(result.body.clientId, 'portcullis-demo');
        assert.deepEqual(result.body.scopes, ['api:read']);
        assert.equal(result.body.algorithm, 'RS256');
        assert.ok(signingKeyIds.includes(result.body.keyId), `key ${result.body.keyId} is in the JWKS`);

        const path = `${SCREENSHOTS}${name}.png`;
        await page.screenshot({ path, fullPage: true });
        const png = await readFile(path);
        assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
      } finally {
        await context.close();
      }
    });

    test('API rejects a forged signature', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { context, page } = await signIn(name);
      try {
        await page.click('#call-api-forged');
        const result = await readApiResult(page);
        assert.equal(result.status, 401);
        assert.match(result.challenge, /^Bearer realm="portcullis-example", error="invalid_token", error_description="/);
        assert.equal(result.body.code, 'signature_invalid');
      } finally {
        await context.close();
      }
    });

    test('forged state is rejected before the token request', { timeout: TEST_TIMEOUT_MS }, async () => {
      const { context, page, origin } = await openApp(name);
      const tokenRequests = [];
      context.on('request', (request) => {
        if (request.url() === authorizationServer.tokenEndpoint) {
          tokenRequests.push(request.method());
        }
      });
      try {
        await page.click('#sign-in');
        await page.waitForURL(`${authorizationServer.issuer}/interaction/**`);
        // An attacker's link back to the app: a code of the attacker's session, with a state
        // this tab never sent.
        const forged = new URL('/callback', origin);
        forged.search = new URLSearchParams({
          code: 'attacker-code',
          state: 'attacker-state',
          iss: authorizationServer.issuer,
        }).toString();
        await page.goto(forged.href);

        await page.waitForSelector('#error');
        assert.match(await page.textContent('#error'), /state_mismatch/);
        assert.equal(await page.$('#subject'), null);
        assert.deepEqual(tokenRequests, []);
      } finally {
        await context.close();
      }
    });
  });
}
