// Compile-only tests of the declarations of `portcullis` (js/package/index.d.ts):
// `tsc --noEmit -p test/types` must succeed, and every @ts-expect-error must be needed.

import {
  AuthorizationResponseError,
  buildAuthorizationUrl,
  createPkce,
  expiresIn,
  inspectToken,
  isExpired,
  parseAuthorizationResponse,
  pkceChallenge,
  randomNonce,
  randomState,
  TokenError,
  verifyPkce,
} from 'portcullis';
import type { ErrorCode, InspectedToken, JwtClaims, Pkce, TokenErrorStatus } from 'portcullis';

const pkce: Pkce = createPkce();
createPkce({ verifierLength: 64 });
const method: 'S256' = pkce.codeChallengeMethod;
// @ts-expect-error plain is never produced
const plain: 'plain' = pkce.codeChallengeMethod;
// @ts-expect-error the option is a number of characters
createPkce({ verifierLength: '64' });
// @ts-expect-error unknown option
createPkce({ method: 'plain' });

const challenge: string = pkceChallenge(pkce.codeVerifier);
const matches: boolean = verifyPkce(pkce.codeVerifier, challenge);
const state: string = randomState();
const nonce: string = randomNonce();

const url: string = buildAuthorizationUrl({
  authorizationEndpoint: new URL('https://idp.example.com/authorize'),
  clientId: 'demo',
  redirectUri: 'https://app.example.com/callback',
  scope: ['openid', 'api:read'],
  state,
  codeChallenge: pkce.codeChallenge,
  resource: 'https://api.example.com',
  extraParams: { nonce, prompt: 'login' },
});
// @ts-expect-error codeChallenge is required
buildAuthorizationUrl({ authorizationEndpoint: url, clientId: 'demo', redirectUri: url, scope: '', state });
buildAuthorizationUrl({
  authorizationEndpoint: url,
  clientId: 'demo',
  redirectUri: url,
  scope: 'openid',
  state,
  codeChallenge: challenge,
  // @ts-expect-error extra parameter values are strings
  extraParams: { max_age: 300 },
});

const { code } = parseAuthorizationResponse(new URL(url), { expectedState: state, expectedIssuer: 'https://idp.example.com' });
const codeText: string = code;
// @ts-expect-error expectedState is required
parseAuthorizationResponse(url, { expectedIssuer: 'https://idp.example.com' });

const inspected: InspectedToken = inspectToken('a.b.c');
const expiresAt: number | null = inspected.expiresAt;
const claims: JwtClaims = inspected.claims;
const issuer: string | undefined = claims.iss;
const audience: string | readonly string[] | undefined = claims.aud;
// @ts-expect-error exp is a number when present
const expText: string | undefined = claims.exp;
// @ts-expect-error results are read-only
inspected.expiresAt = 0;
const scopes: readonly string[] = inspected.scopes;
const remaining: number | null = expiresIn('a.b.c', 1_700_000_000);
const expired: boolean = isExpired('a.b.c', { minValidity: 30, clockSkew: 5 });
isExpired('a.b.c');
// @ts-expect-error options are numbers of seconds
isExpired('a.b.c', { minValidity: '30s' });

try {
  pkceChallenge('short');
} catch (error) {
  if (error instanceof TokenError) {
    const errorCode: ErrorCode = error.code;
    const status: TokenErrorStatus = error.status;
    if (error.code === 'pkce_invalid') {
      console.log(status);
    }
    // @ts-expect-error not an error code
    if (error.code === 'pkce_wrong') {
      console.log(errorCode);
    }
  } else if (error instanceof AuthorizationResponseError) {
    const kind: 'response_malformed' | 'state_mismatch' | 'issuer_mismatch' | 'error_response' = error.code;
    const serverError: string | undefined = error.error;
    console.log(kind, serverError, error.errorDescription, error.errorUri);
  }
}

console.log(method, plain, matches, codeText, expiresAt, issuer, audience, expText, scopes, remaining, expired);
