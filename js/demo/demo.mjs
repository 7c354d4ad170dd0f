/**
 * The main job of portcullis, end to end on 127.0.0.1:
 *
 * 1. start the authorization server (oidc-provider) and a second issuer sharing its keys;
 * 2. make PKCE pairs with the portcullis npm package and log in through real
 *    authorization-code flows to get JWT access tokens;
 * 3. put the Envoy filter (in the proxy-wasm stand-in) in front of a real upstream, with
 *    the server's JWKS fetched through a cluster, and the edge worker (in workerd through
 *    miniflare) in front of the same upstream with the same configuration;
 * 4. send good and bad tokens through every gate and print a table.
 *
 * Exits 1 if any row differs from what is expected.
 *
 * Usage: node js/demo/demo.mjs --filter-wasm FILE --envoy-host FILE [--json]
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import { generateSigningKeys, startAuthorizationServer } from '../authz/server.mjs';
import { login } from '../authz/login.mjs';
import { loadPackage } from './package.mjs';
import { startWorkerInWorkerd } from '../worker/workerd.mjs';

const API = 'https://api.portcullis.test';
const SHORT_LIVED = 'https://short.portcullis.test';
const OTHER_API = 'https://other.portcullis.test';
const SHORT_TTL_SECONDS = 2;

const { values: args } = parseArgs({
  options: {
    'filter-wasm': { type: 'string' },
    'envoy-host': { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});

/** Starts an upstream that answers 200 with the request headers it received. */
async function startUpstream() {
  const server = createServer((request, response) => {
    const body = JSON.stringify({ path: request.url, headers: request.headers });
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(body);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: server.address().port,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(resolve);
    }),
  };
}

/** Starts the Envoy stand-in with the filter; resolves once it listens. */
async function startEnvoy({ wasm, hostBinary, config, clusters, upstreamPort, workdir }) {
  const configFile = join(workdir, 'filter.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const argv = ['--wasm', wasm, '--config', configFile, '--listen', '127.0.0.1:0', '--upstream', `127.0.0.1:${upstreamPort}`, '--workers', '2'];
  for (const [name, port] of Object.entries(clusters)) {
    argv.push('--cluster', `${name}=127.0.0.1:${port}`);
  }
  const child = spawn(hostBinary, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  child.stdout.setEncoding('utf8');
  const port = await new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`envoy-host did not start within 30 s:\n${stderr}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(buffer);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`envoy-host exited with status ${code}:\n${stderr}`));
    });
  });
  return {
    port,
    logs: () => stderr,
    close: async () => {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    },
  };
}

/** Changes one character in the claims segment so the signature no longer covers it. */
function tamper(token) {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  claims.scope = `${claims.scope} api:admin`;
  return [header, Buffer.from(JSON.stringify(claims)).toString('base64url'), signature].join('.');
}

/** Rewrites a token as an unsecured JWS (`alg: none`) with the same claims. */
function algNone(token) {
  const [, payload] = token.split('.');
  const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url');
  return `${header}.${payload}.`;
}

/** Sends one request through a gate and reads the outcome. */
async function probe(port, token) {
  const headers = { 'x-jwt-sub': 'spoofed-by-client' };
  if (token !== undefined) {
    headers.authorization = `Bearer ${token}`;
  }
  const response = await fetch(`http://127.0.0.1:${port}/orders`, { headers });
  const text = await response.text();
  const result = { status: response.status, reason: '', upstream: null };
  if (response.status === 200) {
    result.upstream = JSON.parse(text);
    result.reason = `sub=${result.upstream.headers['x-jwt-sub'] ?? '(none)'}`;
  } else {
    // The filter answers `<code>: <message>`; the challenge carries the RFC 6750 error.
    result.reason = text.split(':')[0].trim();
    result.challenge = response.headers.get('www-authenticate') ?? '';
  }
  return result;
}

async function obtainTokens(servers, pkg) {
  const pairs = [];
  const tokenFor = async (server, resource) => {
    const pkce = pkg.createPkce();
    pairs.push(pkce);
    const response = await login({
      issuer: server.issuer,
      clientId: 'portcullis-demo',
      redirectUri: 'http://127.0.0.1/callback',
      scope: 'openid api:read',
      resource,
      codeVerifier: pkce.codeVerifier,
      codeChallenge: pkce.codeChallenge,
      username: 'alice',
      password: 'wonderland',
      state: pkg.randomState(),
    });
    return response.access_token;
  };
  // The short-lived token first, so its expiry overlaps the other logins.
  const shortLived = await tokenFor(servers.main, SHORT_LIVED);
  const shortIssuedAt = Date.now();
  const valid = await tokenFor(servers.main, API);
  const wrongAudience = await tokenFor(servers.main, OTHER_API);
  const wrongIssuer = await tokenFor(servers.second, API);
  return { valid, shortLived, shortIssuedAt, wrongAudience, wrongIssuer, pairs };
}

function printTable(rows, gates) {
  const columns = ['case', 'expected', ...gates.flatMap((gate) => [`${gate} got`, `${gate} reason`]), 'ok'];
  const table = rows.map((row) => [
    row.name,
    `${row.expectedStatus} ${row.expectedReason}`,
    ...gates.flatMap((gate) => [String(row.results[gate].status), row.results[gate].reason]),
    row.ok ? 'yes' : 'NO',
  ]);
  const widths = columns.map((column, index) => Math.max(column.length, ...table.map((cells) => cells[index].length)));
  const line = (cells) => cells.map((cell, index) => cell.padEnd(widths[index])).join('  ').trimEnd();
  console.log(line(columns));
  console.log(widths.map((width) => '-'.repeat(width)).join('  '));
  for (const cells of table) {
    console.log(line(cells));
  }
}

async function main() {
  if (!args['filter-wasm'] || !args['envoy-host']) {
    console.error('usage: node js/demo/demo.mjs --filter-wasm FILE --envoy-host FILE [--json]');
    process.exit(2);
  }
  const pkg = await loadPackage();
  const cleanup = [];
  const workdir = await mkdtemp(join(tmpdir(), 'portcullis-demo-'));
  cleanup.push(() => rm(workdir, { recursive: true, force: true }));
  try {
    const keys = await generateSigningKeys();
    const resources = [
      { url: API, alg: 'RS256' },
      { url: SHORT_LIVED, alg: 'ES256', accessTokenTTL: SHORT_TTL_SECONDS },
      { url: OTHER_API, alg: 'RS256' },
    ];
    const main = await startAuthorizationServer({ keys, resources, logger: { error: () => {} } });
    cleanup.push(() => main.close());
    const second = await startAuthorizationServer({ keys, resources, logger: { error: () => {} } });
    cleanup.push(() => second.close());
    const upstream = await startUpstream();
    cleanup.push(() => upstream.close());

    const tokens = await obtainTokens({ main, second }, pkg);
    for (const pair of tokens.pairs) {
      if (!pkg.verifyPkce(pair.codeVerifier, pair.codeChallenge)) {
        throw new Error('a PKCE pair from the package does not verify');
      }
    }

    const config = {
      providers: {
        demo: {
          issuer: main.issuer,
          audiences: [API, SHORT_LIVED],
          algorithms: ['RS256', 'ES256'],
          profile: 'rfc9068',
          // Both servers share this machine's clock; no allowance is needed, and the
          // short-lived token expires two seconds after it was issued.
          clock_skew_seconds: 0,
          remote_jwks: {
            http_uri: { uri: main.jwksUri, cluster: 'authz', timeout: '2s' },
            cache_duration: '300s',
          },
          claim_to_headers: [
            { header_name: 'x-jwt-sub', claim_name: 'sub' },
            { header_name: 'x-jwt-scope', claim_name: 'scope' },
            { header_name: 'x-jwt-client', claim_name: 'client_id' },
          ],
        },
      },
    };
    const envoy = await startEnvoy({
      wasm: args['filter-wasm'],
      hostBinary: args['envoy-host'],
      config,
      clusters: { authz: main.port },
      upstreamPort: upstream.port,
      workdir,
    });
    cleanup.push(() => envoy.close());
    // The edge worker reads the same document; it fetches `uri` itself and ignores `cluster`.
    const worker = await startWorkerInWorkerd({
      bindings: {
        PORTCULLIS_POLICY: JSON.stringify(config),
        ORIGIN_URL: `http://127.0.0.1:${upstream.port}`,
        PORTCULLIS_LOG_LEVEL: 'error',
      },
    });
    cleanup.push(() => worker.close());
    const gates = { envoy: envoy.port, worker: worker.port };

    const waitMs = tokens.shortIssuedAt + (SHORT_TTL_SECONDS + 1) * 1000 - Date.now();
    if (waitMs > 0) {
      await sleep(waitMs);
    }

    const cases = [
      { name: 'valid token', token: tokens.valid, expectedStatus: 200, expectedReason: 'sub=alice' },
      { name: 'tampered signature', token: tamper(tokens.valid), expectedStatus: 401, expectedReason: 'signature_invalid' },
      { name: 'expired', token: tokens.shortLived, expectedStatus: 401, expectedReason: 'token_expired' },
      { name: 'wrong audience', token: tokens.wrongAudience, expectedStatus: 401, expectedReason: 'audience_invalid' },
      { name: 'wrong issuer', token: tokens.wrongIssuer, expectedStatus: 401, expectedReason: 'issuer_invalid' },
      { name: 'alg: none', token: algNone(tokens.valid), expectedStatus: 401, expectedReason: 'algorithm_not_allowed' },
      { name: 'missing token', token: undefined, expectedStatus: 401, expectedReason: 'token_missing' },
    ];
    const rows = [];
    for (const testCase of cases) {
      const results = {};
      let ok = true;
      for (const [gate, port] of Object.entries(gates)) {
        const result = await probe(port, testCase.token);
        results[gate] = result;
        ok &&= result.status === testCase.expectedStatus && result.reason === testCase.expectedReason;
        if (result.status === 200) {
          // The upstream sees the verified subject, never the spoofed header, and no token.
          ok &&= result.upstream.headers['x-jwt-client'] === 'portcullis-demo';
          ok &&= result.upstream.headers.authorization === undefined;
        } else if (testCase.expectedReason === 'token_missing') {
          ok &&= result.challenge.startsWith('Bearer ') && !result.challenge.includes('error=');
        } else {
          ok &&= result.challenge.includes('error="invalid_token"');
        }
      }
      rows.push({ ...testCase, results, ok });
    }
    if (args.json) {
      console.log(JSON.stringify(rows.map(({ token, ...row }) => row), null, 2));
    } else {
      printTable(rows, Object.keys(gates));
    }
    const failed = rows.filter((row) => !row.ok);
    if (failed.length > 0) {
      console.error(`\n${failed.length} row(s) differ from the expected outcome.`);
      console.error(envoy.logs().split('\n').slice(-40).join('\n'));
      process.exitCode = 1;
    } else {
      console.log(`\nAll ${rows.length} rows as expected.`);
    }
  } finally {
    for (const step of cleanup.reverse()) {
      await step();
    }
  }
}

main().catch((error) => {
  console.error(`demo failed: ${error.stack ?? error}`);
  process.exit(1);
});
