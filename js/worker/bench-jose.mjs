// The comparison worker of bench.mjs: the edge worker's job written with `jose` (WebCrypto).
// It makes the checks of the benchmark policy: issuer, audiences, RS256/ES256, RFC 9068 `typ`
// and required claims, no clock skew, and scope `api:read`. It writes the same claim headers
// after removing client copies, and replies per RFC 6750. It exists to be measured only.
//
// Bindings: JOSE_ISSUER, JOSE_AUDIENCES (comma-separated), JOSE_JWKS_URI, and ORIGIN (a
// service binding).

import { createRemoteJWKSet, jwtVerify } from 'jose';

const CLAIM_HEADERS = [
  ['x-jwt-sub', 'sub'],
  ['x-jwt-scope', 'scope'],
  ['x-jwt-client', 'client_id'],
];

/** Required claims of an RFC 9068 access token. */
const RFC9068_CLAIMS = ['iss', 'exp', 'aud', 'sub', 'client_id', 'iat', 'jti'];

let jwks;

function challenge(status, error, description) {
  const attributes = error === undefined ? '' : ` error="${error}", error_description="${description.replace(/["\\]/g, '')}"`;
  return new Response(`${error ?? 'token_missing'}: ${description}\n`, {
    status,
    headers: { 'www-authenticate': `Bearer${attributes}`, 'content-type': 'text/plain; charset=utf-8' },
  });
}

export default {
  async fetch(request, env) {
    jwks ??= createRemoteJWKSet(new URL(env.JOSE_JWKS_URI), { timeoutDuration: 2000, cooldownDuration: 30_000, cacheMaxAge: 300_000 });

    const authorization = request.headers.get('authorization') ?? '';
    const match = /^Bearer ([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization);
    if (match === null) {
      return challenge(401, undefined, 'the request has no bearer token');
    }

    let payload;
    try {
      ({ payload } = await jwtVerify(match[1], jwks, {
        issuer: env.JOSE_ISSUER,
        audience: env.JOSE_AUDIENCES.split(','),
        algorithms: ['RS256', 'ES256'],
        typ: 'at+jwt',
        clockTolerance: 0,
        requiredClaims: RFC9068_CLAIMS,
      }));
    } catch (error) {
      return challenge(401, 'invalid_token', error.code ?? error.message);
    }

    if (typeof payload.scope !== 'string' || !payload.scope.split(' ').includes('api:read')) {
      return challenge(403, 'insufficient_scope', 'token lacks the required scope `api:read`');
    }

    const headers = new Headers(request.headers);
    headers.delete('authorization');
    for (const [name] of CLAIM_HEADERS) {
      headers.delete(name);
    }
    for (const [name, claim] of CLAIM_HEADERS) {
      if (payload[claim] !== undefined) {
        headers.set(name, String(payload[claim]));
      }
    }
    return env.ORIGIN.fetch(new Request(request.url, { method: request.method, headers, body: request.body, redirect: 'manual' }));
  },
};
