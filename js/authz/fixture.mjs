/**
 * Token fixture for tests in other languages: starts the authorization server (and a
 * second issuer sharing its keys), logs in through real PKCE flows, and prints one JSON
 * line with the servers' addresses and the tokens. It keeps the servers running until
 * stdin closes or SIGTERM arrives, so a test can fetch the JWKS from them.
 *
 * Besides the JWT access tokens it prints a DPoP-bound one (`tokens.dpop`, bound to the
 * private ES256 key in `dpopJwk`, so a test can sign proofs with it) and an opaque one for
 * the introspection endpoint (`tokens.opaque`), with `introspectionEndpoint`,
 * `revocationEndpoint` and the credentials of the confidential client in `apiClient`.
 *
 * Commands on stdin, one per line; the fixture prints one JSON line on stdout for each:
 * - `rotate`: restarts the first server on the same port and issuer with a new key
 *   generation published before the old one, so the new keys sign and the old ones still
 *   verify. Prints `{"event":"rotated","jwks":…,"tokens":{"valid":…,"es256":…}}` with
 *   tokens signed by the new keys.
 * - `retire`: restarts the first server with only the newest generation. Prints
 *   `{"event":"retired","jwks":…}`.
 * - `opaque`: logs in again and prints `{"event":"opaque","token":…}`, a new opaque access
 *   token.
 * - `revoke <token>`: revokes an access token at the revocation endpoint (RFC 7009) as the
 *   client it was issued to. Prints `{"event":"revoked"}`.
 * Restarting drops the server's sessions, grants and opaque tokens; JWTs issued before stay
 * valid for as long as their keys are published.
 *
 * Usage: node js/authz/fixture.mjs
 */

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';

import { SignJWT, exportJWK, generateKeyPair } from 'jose';

import { generateSigningKeys, startAuthorizationServer } from './server.mjs';
import { login } from './login.mjs';

export const API = 'https://api.portcullis.test';
export const ES256_API = 'https://es.portcullis.test';
export const OTHER_API = 'https://other.portcullis.test';
export const OPAQUE_API = 'https://opaque.portcullis.test';

/**
 * Returns a fetch that adds a DPoP proof (RFC 9449 §4) signed with `privateKey` to POST
 * requests to `tokenEndpoint`, so the server binds the access token to the key.
 */
function dpopFetch(privateKey, publicJwk, tokenEndpoint) {
  return async (url, init = {}) => {
    if (init.method !== 'POST' || String(url) !== tokenEndpoint) {
      return fetch(url, init);
    }
    const proof = await new SignJWT({ htm: 'POST', htu: tokenEndpoint, jti: randomUUID() })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: publicJwk })
      .setIssuedAt()
      .sign(privateKey);
    return fetch(url, { ...init, headers: { ...init.headers, dpop: proof } });
  };
}

function pkcePair() {
  const codeVerifier = randomBytes(32).toString('base64url');
  const codeChallenge = createHash('sha256').update(codeVerifier).digest('base64url');
  return { codeVerifier, codeChallenge };
}

async function tokenFor(server, resource, scope = 'openid api:read', fetchOption = undefined) {
  const response = await login({
    fetch: fetchOption,
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
    { url: OPAQUE_API, accessTokenFormat: 'opaque' },
  ];
  const quiet = { error: () => {} };
  // A fixed secret, so the credentials stay valid across restarts.
  const apiClientSecret = randomBytes(32).toString('base64url');
  let primary = await startAuthorizationServer({ keys, resources, apiClientSecret, logger: quiet });
  const second = await startAuthorizationServer({ keys, resources, apiClientSecret, logger: quiet });
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
    primary = await startAuthorizationServer({ port, keys: publishedKeys, resources, apiClientSecret, logger: quiet });
  };
  const dpopKey = await generateKeyPair('ES256', { extractable: true });
  const dpopJwk = await exportJWK(dpopKey.privateKey);
  const { d: _private, ...dpopPublicJwk } = dpopJwk;
  const dpopToken = () => tokenFor(primary, API, 'openid api:read', dpopFetch(dpopKey.privateKey, dpopPublicJwk, primary.tokenEndpoint));
  const revoke = async (token) => {
    const response = await fetch(primary.revocationEndpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token, token_type_hint: 'access_token', client_id: 'portcullis-demo' }),
    });
    if (response.status !== 200) {
      throw new Error(`revocation returned status ${response.status}: ${await response.text()}`);
    }
    return { event: 'revoked' };
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
    async opaque() {
      return { event: 'opaque', token: await tokenFor(primary, OPAQUE_API) };
    },
    revoke,
  };

  const output = {
    issuer: primary.issuer,
    port: primary.port,
    jwksUri: primary.jwksUri,
    jwks: await fetchJwks(),
    secondIssuer: second.issuer,
    audience: API,
    opaqueAudience: OPAQUE_API,
    introspectionEndpoint: primary.introspectionEndpoint,
    revocationEndpoint: primary.revocationEndpoint,
    apiClient: primary.apiClient,
    dpopJwk,
    tokens: {
      valid: await tokenFor(primary, API),
      validWrite: await tokenFor(primary, API, 'openid api:read api:write'),
      es256: await tokenFor(primary, ES256_API),
      wrongAudience: await tokenFor(primary, OTHER_API),
      wrongIssuer: await tokenFor(second, API),
      dpop: await dpopToken(),
      opaque: await tokenFor(primary, OPAQUE_API),
    },
  };
  process.stdout.write(`${JSON.stringify(output)}\n`);

  // Commands run one at a time, in order.
  let queue = Promise.resolve();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const [name, argument] = line.trim().split(/\s+/, 2);
    queue = queue.then(async () => {
      const command = commands[name];
      const answer = command === undefined
        ? { event: 'error', message: `unknown command ${JSON.stringify(name)}, expected one of: ${Object.keys(commands).join(', ')}` }
        : await command(argument).catch((error) => ({ event: 'error', message: String(error?.message ?? error) }));
      process.stdout.write(`${JSON.stringify(answer)}\n`);
    });
  });
  lines.on('close', () => queue.then(stop));
}

main().catch((error) => {
  process.stderr.write(`fixture failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
