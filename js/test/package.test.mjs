// Tests of the built npm package in pkg/ (Node.js build): package layout, PKCE, state,
// authorization requests and responses, inspection and error classes. Build it first with
// `make pkg` (js/package/build.sh); every test fails when pkg/ is missing.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { test } from 'node:test';

const PKG_DIR = fileURLToPath(new URL('../../pkg/', import.meta.url));
const MISSING = !existsSync(join(PKG_DIR, 'dist/node/index.js')) || !existsSync(join(PKG_DIR, 'dist/node/verify.js'));

const RFC7636_VERIFIER = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
const RFC7636_CHALLENGE = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

// A page that loads both entry points of the `web` build as plain ES modules and writes what
// it saw into the document.
const BROWSER_PAGE = `<!doctype html><html><body>pending<script type="module">
const results = {};
try {
  const light = await import('/dist/web/index.js');
  const verify = await import('/dist/web/verify.js');
  results.challenge = light.pkceChallenge('${RFC7636_VERIFIER}');
  results.verifierLength = light.createPkce({ verifierLength: 128 }).codeVerifier.length;
  results.state = light.randomState().length;
  try {
    verify.verifyToken('a.b.c', '{"keys":[]}', '{"algorithms":["RS256"]}');
  } catch (error) {
    results.sameClass = error instanceof light.TokenError;
    results.code = error.code;
  }
} catch (error) {
  results.error = String(error);
}
document.body.textContent = JSON.stringify(results);
</script></body></html>`;

if (MISSING) {
  test('pkg/ is built', () => {
    assert.fail(`pkg/ has no Node.js build in ${PKG_DIR}: run \`make pkg\` (js/package/build.sh) before \`npm test\``);
  });
} else {
  const light = await import(join(PKG_DIR, 'dist/node/index.js'));
  const verify = await import(join(PKG_DIR, 'dist/node/verify.js'));
  definePackageTests(light, verify);
}

function assertTokenError(light, action, code, status) {
  assert.throws(action, (error) => {
    assert.ok(error instanceof light.TokenError, `expected a TokenError, got ${error}`);
    assert.equal(error.name, 'TokenError');
    assert.equal(error.code, code);
    assert.equal(error.status, status);
    assert.ok(error.message.length > 0);
    return true;
  });
}

function encodeSegment(value) {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

function unsignedToken(header, claims) {
  return `${encodeSegment(header)}.${encodeSegment(claims)}.AA`;
}

/** Names a declaration file exports: functions and re-exported classes, not types. */
function declaredValueExports(file) {
  const text = readFileSync(join(PKG_DIR, file), 'utf8');
  const names = [...text.matchAll(/^export function (\w+)/gm)].map((match) => match[1]);
  for (const [, list] of text.matchAll(/^export \{([^}]*)\} from/gm)) {
    names.push(...list.split(',').map((name) => name.trim()).filter(Boolean));
  }
  return names.sort();
}

function definePackageTests(light, verify) {
  test('package.json exports types first for every entry point', () => {
    const manifest = JSON.parse(readFileSync(join(PKG_DIR, 'package.json'), 'utf8'));
    assert.equal(manifest.name, 'portcullis');
    assert.equal(manifest.type, 'module');
    assert.equal(manifest.sideEffects, false);
    for (const [subpath, conditions] of Object.entries(manifest.exports)) {
      if (typeof conditions === 'string') {
        continue;
      }
      assert.equal(Object.keys(conditions)[0], 'types', subpath);
      assert.equal(Object.keys(conditions).at(-1), 'default', subpath);
      for (const target of Object.values(conditions)) {
        assert.ok(existsSync(join(PKG_DIR, target)), `${subpath}: ${target} is missing`);
      }
    }
    for (const subpath of ['.', './verify']) {
      assert.deepEqual(Object.keys(manifest.exports[subpath]), ['types', 'web', 'node', 'default']);
    }
  });

  test('package resolves by name under each condition', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-resolve-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(PKG_DIR, join(dir, 'node_modules', 'portcullis'), 'dir');
    const resolve = (specifier, conditions = []) =>
      execFileSync(
        process.execPath,
        [...conditions.map((name) => `--conditions=${name}`), '--input-type=module', '-e', `console.log(import.meta.resolve(${JSON.stringify(specifier)}))`],
        { cwd: dir, encoding: 'utf8' },
      ).trim();
    assert.match(resolve('portcullis'), /\/dist\/node\/index\.js$/);
    assert.match(resolve('portcullis/verify'), /\/dist\/node\/verify\.js$/);
    assert.match(resolve('portcullis', ['web']), /\/dist\/web\/index\.js$/);
    assert.match(resolve('portcullis/web'), /\/dist\/web\/index\.js$/);
    assert.match(resolve('portcullis/web/verify'), /\/dist\/web\/verify\.js$/);
    // Importing by name runs the Node.js loader and exposes the API.
    const exported = execFileSync(
      process.execPath,
      ['--input-type=module', '-e', "const p = await import('portcullis'); console.log(p.pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'))"],
      { cwd: dir, encoding: 'utf8' },
    ).trim();
    assert.equal(exported, RFC7636_CHALLENGE);
  });

  test('entry points export what the declarations declare', () => {
    assert.deepEqual(Object.keys(light).sort(), declaredValueExports('index.d.ts'));
    assert.deepEqual(Object.keys(verify).sort(), declaredValueExports('verify.d.ts'));
    // The bundler and web builds use the same wrapper files as the Node.js build.
    for (const target of ['bundler', 'web']) {
      for (const file of ['index.js', 'verify.js']) {
        assert.equal(
          readFileSync(join(PKG_DIR, 'dist', target, file), 'utf8'),
          readFileSync(join(PKG_DIR, 'dist/node', file), 'utf8'),
          `${target}/${file}`,
        );
      }
    }
  });

  test('both entry points throw one TokenError class', () => {
    assert.equal(light.TokenError, verify.TokenError);
    assert.throws(() => light.pkceChallenge('short'), verify.TokenError);
    assert.throws(() => verify.verifyToken('a.b.c', '{"keys":[]}', '{"algorithms":["RS256"]}'), light.TokenError);
  });

  test('web build runs in headless Chromium', async (t) => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run .ci/install.sh chromium, or set CHROMIUM`);
    const contentTypes = { '.js': 'text/javascript', '.wasm': 'application/wasm' };
    const server = createServer(async (request, response) => {
      if (request.url === '/page.html') {
        response.writeHead(200, { 'content-type': 'text/html' });
        response.end(BROWSER_PAGE);
        return;
      }
      const path = normalize(join(PKG_DIR, decodeURIComponent(new URL(request.url, 'http://x').pathname)));
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
    t.after(() => server.close());

    const profile = mkdtempSync(join(tmpdir(), 'portcullis-chromium-'));
    t.after(() => rmSync(profile, { recursive: true, force: true }));
    const { stdout } = await promisify(execFile)(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--no-first-run',
        `--user-data-dir=${profile}`,
        '--virtual-time-budget=10000',
        '--dump-dom',
        `http://127.0.0.1:${server.address().port}/page.html`,
      ],
      { timeout: 60_000 },
    );
    const text = /<body>(.*)<\/body>/s.exec(stdout)?.[1] ?? stdout;
    assert.deepEqual(JSON.parse(text), {
      challenge: RFC7636_CHALLENGE,
      verifierLength: 128,
      state: 43,
      sameClass: true,
      code: 'jwks_invalid',
    });
  });

  test('bundler build runs with wasm module imports', () => {
    // Node.js's --experimental-wasm-modules implements the WebAssembly ES module integration
    // that the bundler build expects from webpack or a Vite plugin.
    const script = `
      const light = await import(${JSON.stringify(join(PKG_DIR, 'dist/bundler/index.js'))});
      const verify = await import(${JSON.stringify(join(PKG_DIR, 'dist/bundler/verify.js'))});
      const results = {
        challenge: light.pkceChallenge('${RFC7636_VERIFIER}'),
        verifierLength: light.createPkce({ verifierLength: 128 }).codeVerifier.length,
        state: light.randomState().length,
      };
      try {
        verify.verifyToken('a.b.c', '{"keys":[]}', '{"algorithms":["RS256"]}');
      } catch (error) {
        results.sameClass = error instanceof light.TokenError;
        results.code = error.code;
      }
      console.log(JSON.stringify(results));`;
    const output = execFileSync(process.execPath, ['--experimental-wasm-modules', '--no-warnings', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.deepEqual(JSON.parse(output), {
      challenge: RFC7636_CHALLENGE,
      verifierLength: 128,
      state: 43,
      sameClass: true,
      code: 'jwks_invalid',
    });
  });

  test('pkce rfc7636 appendix b', () => {
    assert.equal(light.pkceChallenge(RFC7636_VERIFIER), RFC7636_CHALLENGE);
    assert.equal(light.verifyPkce(RFC7636_VERIFIER, RFC7636_CHALLENGE), true);
  });

  test('pkce verifier length bounds', () => {
    assertTokenError(light, () => light.pkceChallenge('a'.repeat(42)), 'pkce_invalid', 500);
    assert.equal(light.pkceChallenge('a'.repeat(43)).length, 43);
    assert.equal(light.pkceChallenge('a'.repeat(128)).length, 43);
    assertTokenError(light, () => light.pkceChallenge('a'.repeat(129)), 'pkce_invalid', 500);
    assert.equal(light.verifyPkce('a'.repeat(42), light.pkceChallenge('a'.repeat(43))), false);
  });

  test('pkce verifier charset', () => {
    for (const character of ['+', '/', '=', ' ', '%', 'é']) {
      const verifier = 'a'.repeat(42) + character;
      assertTokenError(light, () => light.pkceChallenge(verifier), 'pkce_invalid', 500);
      assert.equal(light.verifyPkce(verifier, RFC7636_CHALLENGE), false, JSON.stringify(character));
    }
    assert.equal(light.pkceChallenge(`${'a'.repeat(39)}-._~`).length, 43);
  });

  test('pkce generator stays in 43..128', () => {
    for (let length = 43; length <= 128; length += 1) {
      const pkce = light.createPkce({ verifierLength: length });
      assert.equal(pkce.codeVerifier.length, length);
      assert.match(pkce.codeVerifier, /^[A-Za-z0-9_-]+$/);
      assert.equal(pkce.codeChallengeMethod, 'S256');
      assert.equal(light.pkceChallenge(pkce.codeVerifier), pkce.codeChallenge);
    }
    assert.equal(light.createPkce().codeVerifier.length, 43);
    // 32 random bytes as base64url is 43 characters; 100 and 128 bytes would be 134 and 171.
    for (const length of [0, 32, 42, 129, 134, 171]) {
      assertTokenError(light, () => light.createPkce({ verifierLength: length }), 'pkce_invalid', 500);
    }
    assert.throws(() => light.createPkce({ verifierLength: -1 }), RangeError);
    assert.throws(() => light.createPkce({ verifierLength: 43.5 }), RangeError);
    assert.throws(() => light.createPkce({ verifierLength: '43' }), TypeError);
  });

  test('pkce generator uses the whole alphabet', () => {
    const seen = new Set();
    for (let round = 0; round < 50; round += 1) {
      for (const character of light.createPkce({ verifierLength: 128 }).codeVerifier) {
        seen.add(character);
      }
    }
    // 6400 uniform draws from 64 characters miss one with probability below 1e-40.
    assert.equal(seen.size, 64);
  });

  test('pkce wrong encodings never verify', () => {
    const hex = '13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3';
    for (const challenge of [
      `${RFC7636_CHALLENGE}=`,
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM=',
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM',
      hex,
      Buffer.from(hex).toString('base64url'),
      '38v3YOi6zQgk1xkqk6Y5dvSDoBHqZrTh3mmWHxxWvyk',
      RFC7636_VERIFIER,
      '',
    ]) {
      assert.equal(light.verifyPkce(RFC7636_VERIFIER, challenge), false, challenge);
    }
  });

  test('pkce plain is never produced', () => {
    const pkce = light.createPkce();
    assert.equal(pkce.codeChallengeMethod, 'S256');
    assert.notEqual(pkce.codeChallenge, pkce.codeVerifier);
    const url = new URL(
      light.buildAuthorizationUrl({
        authorizationEndpoint: 'https://idp.example.com/authorize',
        clientId: 'demo',
        redirectUri: 'https://app.example.com/callback',
        scope: 'openid',
        state: light.randomState(),
        codeChallenge: pkce.codeChallenge,
      }),
    );
    assert.deepEqual(url.searchParams.getAll('code_challenge_method'), ['S256']);
    assert.deepEqual(url.searchParams.getAll('response_type'), ['code']);
    for (const extraParams of [{ code_challenge_method: 'plain' }, { response_type: 'token' }, { code_verifier: pkce.codeVerifier }]) {
      assert.throws(
        () =>
          light.buildAuthorizationUrl({
            authorizationEndpoint: 'https://idp.example.com/authorize',
            clientId: 'demo',
            redirectUri: 'https://app.example.com/callback',
            scope: 'openid',
            state: 'state',
            codeChallenge: pkce.codeChallenge,
            extraParams,
          }),
        TypeError,
      );
    }
  });

  test('random state and nonce', () => {
    const values = new Set();
    for (let round = 0; round < 100; round += 1) {
      for (const value of [light.randomState(), light.randomNonce()]) {
        assert.match(value, /^[A-Za-z0-9_-]{43}$/);
        assert.equal(Buffer.from(value, 'base64url').length, 32);
        values.add(value);
      }
    }
    assert.equal(values.size, 200);
  });

  test('authorization url accepts URL objects and keeps the endpoint query', () => {
    const url = light.buildAuthorizationUrl({
      authorizationEndpoint: new URL('https://idp.example.com/authorize?tenant=a'),
      clientId: 'demo app',
      redirectUri: new URL('https://app.example.com/callback'),
      scope: ['openid', 'api:read'],
      state: 'st ate',
      codeChallenge: RFC7636_CHALLENGE,
      resource: ['https://api.example.com', 'https://other.example.com'],
      extraParams: { prompt: 'login' },
    });
    const params = new URL(url).searchParams;
    assert.equal(params.get('tenant'), 'a');
    assert.equal(params.get('client_id'), 'demo app');
    assert.equal(params.get('redirect_uri'), 'https://app.example.com/callback');
    assert.equal(params.get('scope'), 'openid api:read');
    assert.equal(params.get('state'), 'st ate');
    assert.deepEqual(params.getAll('resource'), ['https://api.example.com', 'https://other.example.com']);
    assert.equal(params.get('prompt'), 'login');
  });

  test('authorization response checks', () => {
    const options = { expectedState: 'xyz', expectedIssuer: 'https://idp.example.com' };
    const base = 'https://app.example.com/cb?';
    const iss = 'iss=https%3A%2F%2Fidp.example.com';
    assert.deepEqual(light.parseAuthorizationResponse(`${base}code=c1&state=xyz&${iss}`, options), { code: 'c1' });
    assert.deepEqual(light.parseAuthorizationResponse(new URL(`${base}code=c2&state=xyz&${iss}`), options), { code: 'c2' });

    const expectFailure = (url, code, details = {}) =>
      assert.throws(
        () => light.parseAuthorizationResponse(url, options),
        (error) => {
          assert.ok(error instanceof light.AuthorizationResponseError);
          assert.equal(error.code, code);
          for (const [name, value] of Object.entries(details)) {
            assert.equal(error[name], value, name);
          }
          return true;
        },
      );
    expectFailure(`${base}code=c&state=other&${iss}`, 'state_mismatch');
    expectFailure(`${base}code=c&${iss}`, 'state_mismatch');
    expectFailure(`${base}code=c&state=xyz&iss=https%3A%2F%2Fevil.example.com`, 'issuer_mismatch');
    expectFailure(`${base}code=c&state=xyz`, 'issuer_mismatch');
    expectFailure(`${base}error=access_denied&error_description=no+thanks&state=xyz&${iss}`, 'error_response', {
      error: 'access_denied',
      errorDescription: 'no thanks',
      errorUri: undefined,
    });
    // A forged error response without the right state is a mismatch, not a server error.
    expectFailure(`${base}error=access_denied&state=forged&${iss}`, 'state_mismatch');
    expectFailure(`${base}code=a&code=b&state=xyz&${iss}`, 'response_malformed');
  });

  test('inspect utf-8 claims', () => {
    const claims = { sub: 'José', name: '名前 🚀', groups: ['Ä', 'ß'] };
    const token = unsignedToken({ alg: 'RS256', kid: 'ключ' }, claims);
    const inspected = light.inspectToken(token);
    assert.deepEqual(inspected.claims, claims);
    assert.deepEqual(inspected.header, { alg: 'RS256', kid: 'ключ' });
  });

  test('inspect dates follow numeric date rules', () => {
    const inspected = light.inspectToken(unsignedToken({ alg: 'ES256' }, '{"exp":1700003600.75,"nbf":1700000000.1,"iat":1699999999.5}'));
    assert.equal(inspected.expiresAt, 1700003600);
    assert.equal(inspected.notBefore, 1700000001);
    assert.equal(inspected.issuedAt, 1700000000);
    assert.equal(inspected.claims.exp, 1700003600.75);
    assert.deepEqual(inspected.scopes, []);
  });

  test('inspect never shows a rounded exp', () => {
    // JSON.parse reads 2^53 + 1 as 2^53; the verifier rejects it as out of range, and so does
    // the inspector instead of showing a date the verifier would not use.
    const token = unsignedToken({ alg: 'ES256' }, '{"exp":9007199254740993}');
    assertTokenError(light, () => light.inspectToken(token), 'claims_malformed', 401);
    assertTokenError(light, () => light.expiresIn(token), 'claims_malformed', 401);
    assertTokenError(light, () => light.isExpired(token), 'claims_malformed', 401);
  });

  test('expires in and is expired', () => {
    const token = unsignedToken({ alg: 'ES256' }, { exp: 1700000600 });
    assert.equal(light.expiresIn(token, 1700000000), 600);
    assert.equal(light.expiresIn(token, 1700000700), -100);
    assert.equal(light.isExpired(token, { now: 1700000599 }), false);
    assert.equal(light.isExpired(token, { now: 1700000600 }), true);
    assert.equal(light.isExpired(token, { now: 1700000500, minValidity: 60, clockSkew: 40 }), true);
    assert.equal(light.isExpired(token, { now: 1700000500, minValidity: 60, clockSkew: 39 }), false);
    const now = Math.floor(Date.now() / 1000);
    const current = unsignedToken({ alg: 'ES256' }, { exp: now + 3600 });
    assert.ok(Math.abs(light.expiresIn(current) - 3600) <= 2);
    assert.equal(light.isExpired(current), false);
    assert.equal(light.expiresIn(unsignedToken({ alg: 'ES256' }, {})), null);
    assert.equal(light.isExpired(unsignedToken({ alg: 'ES256' }, {})), false);
  });

  test('inspect rejects what cannot be decoded', () => {
    assertTokenError(light, () => light.inspectToken('not a token'), 'token_malformed', 401);
    assertTokenError(light, () => light.inspectToken('e30=.e30.AA'), 'invalid_base64', 401);
    assertTokenError(light, () => light.inspectToken(unsignedToken({ alg: 'ES256' }, '{"exp":"1700000000"}')), 'claims_malformed', 401);
    assertTokenError(light, () => light.inspectToken('a'.repeat(16385)), 'token_too_large', 401);
    assert.throws(() => light.inspectToken(42), TypeError);
  });
}
