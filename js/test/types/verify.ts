// Compile-only tests of the declarations of `portcullis/verify` (js/package/verify.d.ts).

import { TokenError, verifyDpopProof, verifyToken } from 'portcullis/verify';
import type { Algorithm, JsonWebKeySet, Policy, VerifiedDpopProof, VerifiedToken } from 'portcullis/verify';
import { TokenError as LightTokenError } from 'portcullis';

const jwks: JsonWebKeySet = { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1', alg: 'ES256', use: 'sig' }] };
const policy: Policy = {
  issuer: 'https://idp.example.com/',
  audiences: ['api://example-api'],
  algorithms: ['RS256', 'ES256'],
  clock_skew_seconds: 30,
  max_token_age: '1h',
  profile: 'rfc9068',
  scopes: { all_of: ['api:read'] },
  roles: { preset: 'keycloak_realm', any_of: ['admin'] },
  subjects: [{ prefix: 'user-' }],
  required_claims: [{ claim: ['resource_access', 'my.app', 'roles'], one_of: ['a', 'b'] }],
};

const verified: VerifiedToken = verifyToken('a.b.c', jwks, policy, 1_700_000_000);
verifyToken('a.b.c', '{"keys":[]}', '{"algorithms":["RS256"]}');
const algorithm: Algorithm = verified.algorithm;
const keyId: string | null = verified.keyId;
const subject: string | undefined = verified.claims.sub;
const alg: Algorithm = verified.header.alg;

// @ts-expect-error `none` is not an algorithm
const none: Policy = { algorithms: ['none'] };
// @ts-expect-error algorithms is required
const empty: Policy = { issuer: 'https://idp.example.com/' };
// @ts-expect-error policy fields use the Envoy names, not camelCase
const camel: Policy = { algorithms: ['RS256'], clockSkewSeconds: 30 };
// @ts-expect-error a key set has a keys array
verifyToken('a.b.c', { key: [] }, policy);

try {
  verifyToken('a.b.c', jwks, policy);
} catch (error) {
  if (error instanceof TokenError && error.code === 'token_expired') {
    const status: 400 | 401 | 403 | 500 = error.status;
    console.log(status);
  }
  // One class for both entry points.
  const same: typeof LightTokenError = TokenError;
  console.log(same);
}

console.log(algorithm, keyId, subject, alg, none, empty, camel);

// DPoP proofs.
const proof: VerifiedDpopProof = verifyDpopProof('a.b.c', { method: 'GET', url: new URL('https://api.example.com/x'), accessToken: 't', nonces: ['n'] });
verifyDpopProof('a.b.c', { method: 'GET', url: 'https://api.example.com/x' }, { algorithms: ['ES256', 'EdDSA'], maxAge: 60, requireNonce: true, now: 1_700_000_000 });
const proofKey: string = proof.jkt;
const proofIssuedAt: number = proof.iat;
// @ts-expect-error the request needs a method
verifyDpopProof('a.b.c', { url: 'https://api.example.com/x' });
// @ts-expect-error maxAge is a number of seconds
verifyDpopProof('a.b.c', { method: 'GET', url: 'https://api.example.com/x' }, { maxAge: '60s' });
console.log(proofKey, proofIssuedAt);
