// The OAuth client entry point `portcullis/client`: DPoP keys and proofs (RFC 9449), token
// revocation (RFC 7009) and token refresh (RFC 6749 §6), for browsers, workers and
// Node.js 20.19 or later. DPoP keys, signatures and hashes come from WebCrypto
// (`crypto.subtle`), so they need a secure context (https, or http on localhost) in browsers.
//
// Arguments of the wrong type throw `TypeError` (the async functions reject with it).

import type { JsonObject } from './json.js';

export type { JsonObject, JsonValue } from './json.js';

// ---------------------------------------------------------------------------------------
// Errors

/** Stable code of an {@link OAuthRequestError}. */
export type OAuthRequestErrorCode =
  /**
   * The server returned an OAuth error response (RFC 6749 §5.2, RFC 7009 §2.2.1), such as
   * `invalid_grant`, which `error` contains.
   */
  | 'error_response'
  /** The response is not what the protocol requires: another status without an OAuth error, a token response without `access_token`, JSON that does not parse. */
  | 'response_invalid'
  /** `fetch` rejected: the network failed, or the server responded with a redirect, which is never followed. */
  | 'request_failed';

/** A request to the token or revocation endpoint failed. */
export declare class OAuthRequestError extends Error {
  /** Created by the library. */
  constructor(
    code: OAuthRequestErrorCode,
    message: string,
    details?: {
      status?: number;
      error?: string;
      errorDescription?: string | undefined;
      errorUri?: string | undefined;
      cause?: unknown;
    },
  );
  readonly name: 'OAuthRequestError';
  readonly code: OAuthRequestErrorCode;
  /** The HTTP status; `undefined` for `request_failed`. */
  readonly status: number | undefined;
  /** The server's `error`, e.g. `invalid_grant`; only for `error_response`. */
  readonly error?: string;
  /** The server's `error_description`, when it sent one. */
  readonly errorDescription?: string | undefined;
  /** The server's `error_uri`, when it sent one. */
  readonly errorUri?: string | undefined;
}

// ---------------------------------------------------------------------------------------
// DPoP (RFC 9449)

/** Proof algorithms: ES256 (ECDSA P-256 with SHA-256) or EdDSA with Ed25519. */
export type DpopAlgorithm = 'ES256' | 'EdDSA';

/** Options of {@link createDpopKey}. */
export interface DpopKeyOptions {
  /**
   * Default `ES256`. `EdDSA` needs Ed25519 in WebCrypto: Node.js 20 and Chromium 137 or
   * later have it.
   */
  alg?: DpopAlgorithm;
}

/** The public key as a JWK, with exactly the members RFC 7638 hashes for the thumbprint. */
export type DpopPublicJwk =
  | { readonly crv: 'P-256'; readonly kty: 'EC'; readonly x: string; readonly y: string }
  | { readonly crv: 'Ed25519'; readonly kty: 'OKP'; readonly x: string };

/**
 * A DPoP key pair. The object holds only `CryptoKey`s and strings, so it survives
 * `structuredClone` and can be stored in IndexedDB; the private key stays non-extractable.
 */
export interface DpopKey {
  readonly alg: DpopAlgorithm;
  /** Non-extractable: its bytes cannot be exported, only used to sign. */
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** The public key as sent in the proofs' `jwk` header member. */
  readonly publicJwk: DpopPublicJwk;
  /**
   * RFC 7638 SHA-256 thumbprint of `publicJwk`, unpadded base64url: the `cnf.jkt` of tokens
   * bound to this key, and the `dpop_jkt` authorization request parameter (RFC 9449 §10).
   */
  readonly jkt: string;
}

/**
 * Creates a DPoP key pair with `crypto.subtle.generateKey`, the private key
 * non-extractable, together with its public JWK and thumbprint.
 *
 * @throws {TypeError} when `alg` is neither `ES256` nor `EdDSA`.
 * @throws {DOMException} `NotSupportedError` from WebCrypto where the platform lacks the
 *   algorithm.
 */
export function createDpopKey(options?: DpopKeyOptions): Promise<DpopKey>;

/** Parameters of {@link createDpopProof}. */
export interface DpopProofParameters {
  key: DpopKey;
  /** The request's HTTP method as sent, e.g. `POST`; the proof's `htm`. */
  method: string;
  /**
   * The absolute http(s) URL of the request. The proof's `htu` is this URL, as the WHATWG URL
   * parser writes it, without query and fragment. Relative URLs and user names are rejected.
   */
  url: string | URL;
  /** The access token sent with the request; the proof then carries its hash as `ath`. */
  accessToken?: string;
  /** The latest `DPoP-Nonce` the server sent. */
  nonce?: string;
  /** `iat` in seconds since the Unix epoch, rounded down; default the current time. */
  now?: number;
}

/**
 * Creates a DPoP proof for one request: a compact JWS with the header `typ: dpop+jwt`,
 * `alg` and `jwk` (only the public members), and the claims `jti` (128 random bits from
 * `crypto.getRandomValues`), `htm`, `htu`, `iat`, and `ath` and `nonce` when given. ES256
 * signatures are the 64 bytes R || S that JWS requires.
 *
 * Send each proof once, in the `DPoP` request header; a server rejects a repeated `jti`.
 *
 * @throws {TypeError} for a key not from {@link createDpopKey}, a method that is not an
 *   HTTP token, or a URL that is not absolute http(s).
 */
export function createDpopProof(parameters: DpopProofParameters): Promise<string>;

// ---------------------------------------------------------------------------------------
// Revocation (RFC 7009) and refresh (RFC 6749 §6)

/**
 * An endpoint URL: `https://`, or `http://` on `localhost`, `127.0.0.1` or `[::1]` only,
 * without a fragment.
 */
export type EndpointUrl = string | URL;

/** The `fetch` used for requests; default the global `fetch`. */
export type FetchFunction = (url: string, init: RequestInit) => Promise<Response>;

/** Parameters of {@link revokeToken}. */
export interface RevocationParameters {
  revocationEndpoint: EndpointUrl;
  /** The refresh or access token to revoke. */
  token: string;
  /** `refresh_token` or `access_token`, a hint where the server looks first. */
  tokenTypeHint?: 'refresh_token' | 'access_token' | (string & {});
  clientId: string;
  /**
   * With a secret the client authenticates with HTTP Basic (`client_secret_basic`);
   * without one it sends `client_id` in the body, as a public client.
   */
  clientSecret?: string;
  fetch?: FetchFunction;
}

/**
 * Revokes a token: a form POST to the revocation endpoint. Resolves when the server
 * returns 200, which RFC 7009 §2.2 requires both when the token was revoked and when it was
 * already invalid or unknown, so success does not prove the token existed.
 *
 * @throws {OAuthRequestError} `error_response` with the server's `error` (e.g.
 *   `invalid_client`, `unsupported_token_type`), `response_invalid` for any other status,
 *   or `request_failed`.
 */
export function revokeToken(parameters: RevocationParameters): Promise<void>;

/** Parameters of {@link refreshIfNeeded}. */
export interface RefreshParameters {
  tokenEndpoint: EndpointUrl;
  clientId: string;
  /** For confidential clients: HTTP Basic, as in {@link RevocationParameters.clientSecret}. */
  clientSecret?: string;
  /** The newest refresh token. After a rotation, the previous one usually fails with `invalid_grant`. */
  refreshToken: string;
  /** The current access token. Its `exp` decides whether to refresh, unless `expiresAt` is given. */
  accessToken: string;
  /**
   * When the access token expires, in seconds since the Unix epoch, for tokens that are not
   * JWTs: {@link RefreshedTokens.expiresAt}, or the time of the token response plus its
   * `expires_in`. `null` or absent: read `exp` from the access token.
   */
  expiresAt?: number | null;
  /** Seconds the access token must stay valid; a token valid for longer is returned as is. */
  minValidity: number;
  /**
   * The DPoP key the tokens are bound to, and the latest `DPoP-Nonce` of the server. Each
   * request carries a new proof; when the server returns `use_dpop_nonce` with a new nonce,
   * the request is sent once more with it.
   */
  dpop?: { key: DpopKey; nonce?: string };
  fetch?: FetchFunction;
  /** Seconds since the Unix epoch; default the current time. */
  now?: number;
}

/** The tokens passed in, returned when the access token is valid for more than `minValidity`. */
export interface FreshTokens {
  readonly refreshed: false;
  readonly accessToken: string;
  readonly refreshToken: string;
  /** The `expiresAt` passed in, or the access token's `exp`; `null` for a JWT without `exp`. */
  readonly expiresAt: number | null;
}

/** The result of a successful refresh request (RFC 6749 §5.1). */
export interface RefreshedTokens {
  readonly refreshed: true;
  readonly accessToken: string;
  /** `Bearer`, or `DPoP` for a DPoP-bound access token. */
  readonly tokenType: string;
  /** The new refresh token when the server rotated it, otherwise the one passed in. */
  readonly refreshToken: string;
  /** Time of the request plus `expires_in`, in seconds since the Unix epoch; `null` without `expires_in`. */
  readonly expiresAt: number | null;
  readonly scope?: string;
  readonly idToken?: string;
  /** The server's latest `DPoP-Nonce`, or the nonce used; pass it as `dpop.nonce` next time. */
  readonly dpopNonce?: string;
  /** The whole token response, for members not listed here. */
  readonly response: JsonObject;
}

/**
 * Returns the tokens passed in when the access token stays valid for more than
 * `minValidity` seconds: `expiresAt`, or else its `exp`, read WITHOUT verification by
 * `inspectToken` from `portcullis` and compared as `isExpired` does. A JWT without `exp`
 * counts as valid. Otherwise sends one refresh request (`grant_type=refresh_token`) to the
 * token endpoint.
 *
 * Calls with the same endpoint, client and refresh token share one request while it is in
 * flight: ten concurrent callers send one request and receive the same result or error.
 * Later calls send a new request, so store the returned refresh token and pass it next
 * time. The request is not retried, except once for a DPoP nonce.
 *
 * @throws {OAuthRequestError} `error_response` with the server's `error` (e.g.
 *   `invalid_grant` for an expired, revoked or already used refresh token),
 *   `response_invalid` or `request_failed`.
 * @throws {TokenError} from `inspectToken` when the access token is not a JWT and no
 *   `expiresAt` is given.
 */
export function refreshIfNeeded(parameters: RefreshParameters): Promise<FreshTokens | RefreshedTokens>;
