/**
 * Token fixture for tests in other languages: starts the authorization server (and a
 * second issuer sharing its keys), logs in through real PKCE flows, and prints one JSON
 * line with the servers' addresses and the tokens. It keeps the servers running until
 * stdin closes or SIGTERM arrives, so a test can fetch the JWKS from them.
 *
 * Commands on stdin, one per line; the fixture prints one JSON line on stdout for each:
 * - `rotate`: restarts the first server on the same port and issuer with a new key
 *   generation published before the old one, so the new keys sign and the old ones still
 *   verify. Prints `{"event":"rotated","jwks":…,"tokens":{"valid":…,"es256":…}}` with
 *   tokens signed by the new keys.
 * - `retire`: restarts the first server with only the newest generation. Prints
 *   `{"event":"retired","jwks":…}`.
 * Restarting drops the server's sessions and grants; tokens issued before stay valid for
 * as long as their keys are published.
 *
 * Usage: node js/authz/fixture.mjs
 */

import { createHash, randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';

import { generateSigningKeys, startAuthorizationServer } from './server.mjs';
import { login } from './login.mjs';

export const API = 'https://api.portcullis.test';
export const ES256_API = 'https://es.portcullis.test';
export const OTHER_API = 'https://other.portcullis.test';

function pkcePair() {
  const codeVerifier = randomBytes(32).toString('base64url');
  const codeChallenge = createHash('sha256').update(codeVerifier).digest('base64url');
  return { codeVerifier, codeChallenge };
}

async function tokenFor(server, resource, scope = 'openid api:read') {
  const response = await login({
    issuer: server.issuer,
    clientId: 'portcullis-demo',
    redirectUri: 'http://127.0.0.1/callback',
    scope,
    resource,
    ...pkcePair(),
    username: 'alice',
    password: 'wonderland',
    state: randomBytes(16).toString('base64url'),
  });
  return response.access_token;
}

async function main() {
  let generation = 1;
  let keys = await generateSigningKeys({ suffix: generation });
  const resources = [
    { url: API, alg: 'RS256' },
    { url: ES256_API, alg: 'ES256' },
    { url: OTHER_API, alg: 'RS256' },
  ];
  const quiet = { error: () => {} };
  let primary = await startAuthorizationServer({ keys, resources, logger: quiet });
  const second = await startAuthorizationServer({ keys, resources, logger: quiet });
  const stop = async () => {
    await primary.close();
    await second.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);

  const fetchJwks = async () => (await fetch(primary.jwksUri)).json();
  // After a restart, fetch may still pick a pooled connection to the old server and fail
  // with "fetch failed". A second attempt opens a new connection.
  const retried = async (step) => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await step();
      } catch (error) {
        if (attempt === 3) throw error;
      }
    }
  };
  const restartPrimary = async (publishedKeys) => {
    const { port } = primary;
    await primary.close();
    // Let fetch's connection pool see the closed keep-alive connections before the next
    // request, or it may send that request over a dead one.
    await new Promise((resolve) => { setTimeout(resolve, 100); });
    primary = await startAuthorizationServer({ port, keys: publishedKeys, resources, logger: quiet });
  };
  const commands = {
    async rotate() {
      generation += 1;
      keys = [...(await generateSigningKeys({ suffix: generation })), ...keys];
      await restartPrimary(keys);
      return {
        event: 'rotated',
        jwks: await retried(fetchJwks),
        tokens: {
          valid: await retried(() => tokenFor(primary, API)),
          es256: await retried(() => tokenFor(primary, ES256_API)),
        },
      };
    },
    async retire() {
      keys = keys.slice(0, 2);
      await restartPrimary(keys);
      return { event: 'retired', jwks: await retried(fetchJwks) };
    },
  };

  const output = {
    issuer: primary.issuer,
    port: primary.port,
    jwksUri: primary.jwksUri,
    jwks: await fetchJwks(),
    secondIssuer: second.issuer,
    audience: API,
    tokens: {
      valid: await tokenFor(primary, API),
      validWrite: await tokenFor(primary, API, 'openid api:read api:write'),
      es256: await tokenFor(primary, ES256_API),
      wrongAudience: await tokenFor(primary, OTHER_API),
      wrongIssuer: await tokenFor(second, API),
    },
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);

  // Commands run one at a time, in order.
  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const name = line.trim();
    queue = queue.then(async () => {
      const command = commands[name];
      const answer = command === undefined
        ? { event: 'error', message: `unknown command ${JSON.stringify(name)}, expected one of: ${Object.keys(commands).join(', ')}` }
        : await command().catch((error) => ({ event: 'error', message: String(error?.message ?? error) }));
      process.stdout.write(`${JSON.stringify(answer)}\n`);
    });
  });
  lines.on('close', () => queue.then(stop));
}

main().catch((error) => {
  process.stderr.write(`fixture failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
