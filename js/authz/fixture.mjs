/**
 * Token fixture for tests in other languages: starts the authorization server (and a
 * second issuer sharing its keys), logs in through real PKCE flows, and prints one JSON
 * line with the servers' addresses and the tokens. It keeps the servers running until
 * stdin closes or SIGTERM arrives, so a test can fetch the JWKS from them.
 *
 * Usage: node js/authz/fixture.mjs
 */

import { createHash, randomBytes } from 'node:crypto';

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
  const keys = await generateSigningKeys();
  const resources = [
    { url: API, alg: 'RS256' },
    { url: ES256_API, alg: 'ES256' },
    { url: OTHER_API, alg: 'RS256' },
  ];
  const quiet = { error: () => {} };
  const primary = await startAuthorizationServer({ keys, resources, logger: quiet });
  const second = await startAuthorizationServer({ keys, resources, logger: quiet });
  const stop = async () => {
    await primary.close();
    await second.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();

  const jwks = await (await fetch(primary.jwksUri)).json();
  const output = {
    issuer: primary.issuer,
    port: primary.port,
    jwksUri: primary.jwksUri,
    jwks,
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
}

main().catch((error) => {
  process.stderr.write(`fixture failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
