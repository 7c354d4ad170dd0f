// Compile-only tests of the declarations of `portcullis/client` (js/package/client.d.ts).

import { createDpopKey, createDpopProof, OAuthRequestError, refreshIfNeeded, revokeToken } from 'portcullis/client';
import type {
  DpopAlgorithm,
  DpopKey,
  DpopPublicJwk,
  FreshTokens,
  OAuthRequestErrorCode,
  RefreshedTokens,
  RefreshParameters,
} from 'portcullis/client';
import { TokenError } from 'portcullis';

async function dpop(): Promise<void> {
  const key: DpopKey = await createDpopKey();
  await createDpopKey({ alg: 'EdDSA' });
  // @ts-expect-error only ES256 and EdDSA keys
  await createDpopKey({ alg: 'RS256' });
  const alg: DpopAlgorithm = key.alg;
  const privateKey: CryptoKey = key.privateKey;
  const jkt: string = key.jkt;
  const jwk: DpopPublicJwk = key.publicJwk;
  if (jwk.kty === 'EC') {
    const y: string = jwk.y;
    console.log(y);
  } else {
    // @ts-expect-error an OKP key has no y
    console.log(jwk.y);
  }
  // @ts-expect-error the key is read-only
  key.jkt = 'other';

  const proof: string = await createDpopProof({ key, method: 'POST', url: new URL('https://idp.example.com/token') });
  await createDpopProof({ key, method: 'GET', url: 'https://api.example.com/orders', accessToken: 'token', nonce: 'n', now: 1_700_000_000 });
  // @ts-expect-error method is required
  await createDpopProof({ key, url: 'https://api.example.com/orders' });
  // @ts-expect-error the key must come from createDpopKey, not a raw CryptoKey
  await createDpopProof({ key: privateKey, method: 'GET', url: 'https://api.example.com/orders' });
  console.log(alg, jkt, proof);
}

async function refresh(key: DpopKey): Promise<void> {
  const parameters: RefreshParameters = {
    tokenEndpoint: 'https://idp.example.com/token',
    clientId: 'demo',
    refreshToken: 'refresh',
    accessToken: 'access',
    minValidity: 30,
    dpop: { key },
  };
  const result: FreshTokens | RefreshedTokens = await refreshIfNeeded(parameters);
  const accessToken: string = result.accessToken;
  const refreshToken: string = result.refreshToken;
  if (result.refreshed) {
    const expiresAt: number | null = result.expiresAt;
    const nonce: string | undefined = result.dpopNonce;
    const tokenType: string = result.tokenType;
    // Chaining: the result feeds the next call.
    await refreshIfNeeded({ ...parameters, ...result, dpop: nonce === undefined ? { key } : { key, nonce } });
    console.log(expiresAt, tokenType);
  } else {
    // @ts-expect-error only a refresh returns a token type
    console.log(result.tokenType);
  }
  // @ts-expect-error minValidity is required
  await refreshIfNeeded({ tokenEndpoint: 'https://idp.example.com/token', clientId: 'demo', refreshToken: 'r', accessToken: 'a' });
  // @ts-expect-error minValidity is a number of seconds
  await refreshIfNeeded({ ...parameters, minValidity: '30s' });
  await refreshIfNeeded({ ...parameters, expiresAt: null, fetch: (url, init) => fetch(url, init) });
  console.log(accessToken, refreshToken);
}

async function revoke(): Promise<void> {
  const done: void = await revokeToken({ revocationEndpoint: 'https://idp.example.com/revoke', token: 't', tokenTypeHint: 'refresh_token', clientId: 'api', clientSecret: 's' });
  await revokeToken({ revocationEndpoint: new URL('https://idp.example.com/revoke'), token: 't', tokenTypeHint: 'urn:example:custom', clientId: 'demo' });
  // @ts-expect-error token is required
  await revokeToken({ revocationEndpoint: 'https://idp.example.com/revoke', clientId: 'demo' });
  console.log(done);
}

try {
  await revoke();
} catch (error) {
  if (error instanceof OAuthRequestError) {
    const code: OAuthRequestErrorCode = error.code;
    const status: number | undefined = error.status;
    const serverError: string | undefined = error.error;
    if (error.code === 'error_response' && error.error === 'invalid_grant') {
      console.log(status, serverError, error.errorDescription, error.errorUri);
    }
    // @ts-expect-error not an error code
    if (error.code === 'invalid_grant') {
      console.log(code);
    }
  } else if (error instanceof TokenError) {
    console.log(error.code);
  }
}

console.log(dpop, refresh);
