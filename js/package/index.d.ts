// The small entry point `portcullis`: PKCE, state and nonce values, authorization requests
// and responses, and token inspection. It links no signature code; `portcullis/verify`
// verifies tokens.
//
// Arguments of the wrong type throw `TypeError`, numbers out of range `RangeError`.

import type { JoseHeader, JwtClaims } from './json.js';

export { AuthorizationResponseError, TokenError } from './errors.js';
export type { AuthorizationResponseErrorCode, ErrorCode, TokenErrorStatus } from './errors.js';
export type { JoseHeader, JsonObject, JsonValue, JwtClaims } from './json.js';

// ---------------------------------------------------------------------------------------
// PKCE (RFC 7636), S256 only. `plain` is never produced or accepted.

/** Options of {@link createPkce}. */
export interface PkceOptions {
  /** Length of the code verifier in characters, 43 to 128. Default 43 (258 random bits). */
  verifierLength?: number;
}

/** A code verifier and its challenge. */
export interface Pkce {
  /** The secret verifier: send it only to the token endpoint. */
  readonly codeVerifier: string;
  /** `BASE64URL(SHA256(codeVerifier))`, sent in the authorization request. */
  readonly codeChallenge: string;
  readonly codeChallengeMethod: 'S256';
}

/**
 * Creates a code verifier from `crypto.getRandomValues`, one uniformly random character of
 * `A-Z a-z 0-9 - _` per byte, and its S256 challenge.
 *
 * @throws {TokenError} `pkce_invalid` when `verifierLength` is outside 43 to 128.
 * @throws {RangeError} when `verifierLength` is negative, not finite or not an integer.
 * @throws {TypeError} when `verifierLength` is not a number.
 */
export function createPkce(options?: PkceOptions): Pkce;

/**
 * Computes the S256 challenge of a verifier (RFC 7636 §4.2).
 *
 * @throws {TokenError} `pkce_invalid` unless the verifier has 43 to 128 characters from
 *   `A-Z a-z 0-9 - . _ ~`.
 */
export function pkceChallenge(verifier: string): string;

/**
 * Checks in constant time that `challenge` is exactly the unpadded base64url S256 challenge
 * of `verifier`. Returns false for a malformed verifier and for padded, standard-base64 or
 * hex forms of the right digest.
 */
export function verifyPkce(verifier: string, challenge: string): boolean;

// ---------------------------------------------------------------------------------------
// State and nonce values.

/** Returns 32 bytes from `crypto.getRandomValues` as 43 characters of base64url. */
export function randomState(): string;

/** Returns 32 bytes from `crypto.getRandomValues` as 43 characters of base64url. */
export function randomNonce(): string;

// ---------------------------------------------------------------------------------------
// Authorization requests and responses (RFC 6749 §4.1, RFC 8707, RFC 9207).

/** Parameters of {@link buildAuthorizationUrl}. */
export interface AuthorizationUrlOptions {
  /**
   * `https://` URL; `http://` only on `localhost`, `127.0.0.1` or `[::1]`. Its query is
   * kept; it must not have a fragment.
   */
  authorizationEndpoint: string | URL;
  clientId: string;
  /** Absolute URI without a fragment; custom schemes of native apps are allowed. */
  redirectUri: string | URL;
  /** Space-delimited scopes, or one scope per array entry. Empty: no `scope` parameter. */
  scope: string | readonly string[];
  /** Typically {@link randomState}; check it with {@link parseAuthorizationResponse}. */
  state: string;
  /** The S256 challenge from {@link createPkce}: 43 characters of unpadded base64url. */
  codeChallenge: string;
  /** RFC 8707 resource indicators: absolute URIs without a fragment. */
  resource?: string | readonly string[];
  /**
   * Further parameters such as `prompt` or `nonce`. They cannot repeat a parameter set from
   * the options above, `response_type`, `code_challenge_method` or `code_verifier`, nor a
   * parameter already in the endpoint's query.
   */
  extraParams?: Readonly<Record<string, string>>;
}

/**
 * Builds the authorization request URL. It always sends `response_type=code` and
 * `code_challenge_method=S256`, whatever the server's metadata lists.
 *
 * @throws {TypeError} naming the parameter that cannot be sent.
 */
export function buildAuthorizationUrl(options: AuthorizationUrlOptions): string;

/** What {@link parseAuthorizationResponse} expects. */
export interface AuthorizationResponseOptions {
  /** The `state` sent in the request. */
  expectedState: string;
  /**
   * The authorization server's issuer identifier. When set, the response must carry an
   * equal `iss` (RFC 9207); set it for every server whose metadata has
   * `authorization_response_iss_parameter_supported: true`. When unset, `iss` is ignored.
   */
  expectedIssuer?: string;
}

/** A successful authorization response. */
export interface AuthorizationResponse {
  /** The authorization code; redeem it with the code verifier. */
  readonly code: string;
}

/**
 * Reads the authorization response from the query of the redirect URL, checking `iss`,
 * then `state` (constant time), then `error`, then `code`. A fragment is ignored;
 * `response_mode=fragment` and JARM responses are not read.
 *
 * @param url the whole redirect URL, or its query starting with `?`.
 * @throws {AuthorizationResponseError} for a malformed response, a `state` or `iss`
 *   mismatch, or an error response from the server.
 */
export function parseAuthorizationResponse(
  url: string | URL,
  options: AuthorizationResponseOptions,
): AuthorizationResponse;

// ---------------------------------------------------------------------------------------
// Inspection. NEVER authorize anything with these results: anyone can write a token that
// decodes. Use them to show a token to a person or to time a refresh; verify tokens with
// `verifyToken` from `portcullis/verify`, or on the server.

/** A token decoded WITHOUT verification. */
export interface InspectedToken {
  /** The JOSE header; no member is checked. */
  readonly header: JoseHeader;
  /**
   * The claims as `JSON.parse` reads them: integers beyond 2^53 lose precision, exactly as
   * in `JSON.parse`. The dates below are exact.
   */
  readonly claims: JwtClaims;
  /**
   * `iat` in seconds since the Unix epoch as the verifier reads it: fractions rounded up.
   * `null` without `iat`.
   */
  readonly issuedAt: number | null;
  /** `exp` as the verifier reads it: fractions rounded down. `null` without `exp`. */
  readonly expiresAt: number | null;
  /** `nbf` as the verifier reads it: fractions rounded up. `null` without `nbf`. */
  readonly notBefore: number | null;
  /** Scopes from `scope` (space-delimited) and `scp`, without duplicates. */
  readonly scopes: readonly string[];
}

/**
 * Decodes a token WITHOUT verifying it. Never authorize anything with the result.
 *
 * It checks only what decoding needs:
 * - at most 16384 bytes, and three segments of canonical base64url;
 * - header and claims are JSON objects without duplicate members;
 * - the registered claims have the verifier's types: `exp`, `nbf`, `iat` numbers up to
 *   year 9999; `iss`, `sub`, `jti`, `client_id`, `azp`, `scope` strings; `aud` and `scp`
 *   strings or arrays of strings.
 *
 * It does NOT check the signature, the algorithm, the issuer, the audience or any time.
 *
 * @throws {TokenError} `token_too_large`, `token_malformed`, `invalid_base64`,
 *   `header_malformed` or `claims_malformed`.
 */
export function inspectToken(token: string): InspectedToken;

/**
 * Returns the seconds from `now` until `exp`, negative once it has passed, or `null` when
 * the token has no `exp`. Decodes WITHOUT verifying; use it only to time a refresh.
 *
 * @param now seconds since the Unix epoch; default the current time.
 * @throws {TokenError} as {@link inspectToken}.
 */
export function expiresIn(token: string, now?: number): number | null;

/** Options of {@link isExpired}; all in seconds. */
export interface ExpiryOptions {
  /** How long the token must stay valid from now; default 0. */
  minValidity?: number;
  /** How far the local clock may lag the issuer's; default 0. */
  clockSkew?: number;
  /** Seconds since the Unix epoch; default the current time. */
  now?: number;
}

/**
 * Returns whether `exp` is at or before `now + clockSkew + minValidity`, so a client
 * refreshes early rather than late; false when the token has no `exp`. Decodes WITHOUT
 * verifying; never authorize anything with the result.
 *
 * @throws {TokenError} as {@link inspectToken}.
 * @throws {RangeError} when an option is negative or not finite.
 */
export function isExpired(token: string, options?: ExpiryOptions): boolean;
