// The authorization code flow with PKCE (RFC 6749 §4.1, RFC 7636) for a public client in the
// browser, with the helpers of `portcullis`. The React and Angular examples hold identical
// copies of this file; their components only render its results.

import { buildAuthorizationUrl, createPkce, parseAuthorizationResponse, randomState } from 'portcullis';

/** `/config.json`, served next to the app so one build works against any servers. */
export interface AppConfig {
  /** Issuer identifier of the authorization server; discovery is read from it. */
  issuer: string;
  clientId: string;
  /** Space-delimited scopes to request. */
  scope: string;
  /** RFC 8707 resource indicator of the API: the `aud` of the access token. */
  resource: string;
  /** URL the app calls with the access token. */
  apiUrl: string;
}

/** The members of the authorization server's metadata (RFC 8414) that the app uses. */
interface ServerMetadata {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
}

/** The values a tab keeps between the authorization request and the redirect back. */
interface PendingSignIn {
  state: string;
  codeVerifier: string;
  redirectUri: string;
}

/** The members of a token response (RFC 6749 §5.1, §5.2) that the app reads. */
interface TokenResponse {
  access_token?: unknown;
  token_type?: unknown;
  error?: unknown;
  error_description?: unknown;
}

/** The API's status, its `WWW-Authenticate` challenge, and its JSON body. */
export interface ApiResult {
  status: number;
  challenge: string | null;
  body: unknown;
}

const PENDING_SIGN_IN_KEY = 'portcullis-example:pending-sign-in';
export const CALLBACK_PATH = '/callback';

export async function loadConfig(): Promise<AppConfig> {
  const response = await fetch('/config.json', { cache: 'no-store' });
  if (!response.ok) {
    throw new Error(`GET /config.json returned HTTP ${response.status}`);
  }
  return (await response.json()) as AppConfig;
}

async function discover(issuer: string): Promise<ServerMetadata> {
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const response = await fetch(url, { headers: { accept: 'application/json' } });
  if (!response.ok) {
    throw new Error(`discovery at ${url} returned HTTP ${response.status}`);
  }
  const metadata = (await response.json()) as ServerMetadata;
  // RFC 8414 §3.3: metadata naming another issuer must not be used.
  if (metadata.issuer !== issuer) {
    throw new Error(`discovery at ${url} names issuer ${metadata.issuer}, expected ${issuer}`);
  }
  return metadata;
}

/**
 * Sends the browser to the authorization endpoint. The code verifier and `state` stay in
 * sessionStorage, which only this tab and origin can read.
 */
export async function startSignIn(config: AppConfig): Promise<void> {
  const metadata = await discover(config.issuer);
  const { codeVerifier, codeChallenge } = createPkce();
  const state = randomState();
  const redirectUri = new URL(CALLBACK_PATH, window.location.origin).href;

  const pending: PendingSignIn = { state, codeVerifier, redirectUri };
  sessionStorage.setItem(PENDING_SIGN_IN_KEY, JSON.stringify(pending));

  window.location.assign(
    buildAuthorizationUrl({
      authorizationEndpoint: metadata.authorization_endpoint,
      clientId: config.clientId,
      redirectUri,
      scope: config.scope,
      state,
      codeChallenge,
      resource: config.resource,
    }),
  );
}

export function isCallback(): boolean {
  return window.location.pathname === CALLBACK_PATH;
}

/**
 * Reads the authorization response in the current URL and redeems the code with the
 * verifier. Returns the access token.
 *
 * @throws {AuthorizationResponseError} for a `state` or `iss` mismatch, or an error
 *   response from the server. No token request is sent then.
 * @throws {Error} when no sign-in was started in this tab, or the token request fails.
 */
export async function completeSignIn(config: AppConfig): Promise<string> {
  const stored = sessionStorage.getItem(PENDING_SIGN_IN_KEY);
  // A code can be redeemed once, and the verifier must not outlive it.
  sessionStorage.removeItem(PENDING_SIGN_IN_KEY);
  if (stored === null) {
    throw new Error('no sign-in was started in this tab; sign in again');
  }
  const pending = JSON.parse(stored) as PendingSignIn;

  // The server sends `iss` (RFC 9207), so the response must name the expected issuer.
  const { code } = parseAuthorizationResponse(window.location.href, {
    expectedState: pending.state,
    expectedIssuer: config.issuer,
  });

  const metadata = await discover(config.issuer);
  const response = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: { accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: pending.redirectUri,
      client_id: config.clientId,
      code_verifier: pending.codeVerifier,
      resource: config.resource,
    }),
  });
  const body = (await response.json()) as TokenResponse;
  if (!response.ok) {
    throw new Error(`token request returned HTTP ${response.status}: ${String(body.error)} ${String(body.error_description ?? '')}`);
  }
  if (typeof body.access_token !== 'string' || String(body.token_type).toLowerCase() !== 'bearer') {
    throw new Error(`token response has no bearer access_token (token_type ${String(body.token_type)})`);
  }
  return body.access_token;
}

/** Calls the API with the token in the `Authorization` header (RFC 6750 §2.1). */
export async function callApi(config: AppConfig, accessToken: string): Promise<ApiResult> {
  const response = await fetch(config.apiUrl, {
    headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
  });
  return {
    status: response.status,
    challenge: response.headers.get('www-authenticate'),
    body: await response.json(),
  };
}

/**
 * Returns the token with one signature character changed, so the app can show how the API
 * rejects a forged token. It changes the second-to-last character: the last one also holds
 * padding bits, and changing those makes non-canonical base64url, not a wrong signature.
 */
export function forgeSignature(accessToken: string): string {
  const replacement = accessToken.at(-2) === 'A' ? 'B' : 'A';
  return `${accessToken.slice(0, -2)}${replacement}${accessToken.slice(-1)}`;
}
