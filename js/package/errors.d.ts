// Error classes of the portcullis package. Both entry points throw the same classes.

/**
 * Stable code of a {@link TokenError}: the string form of the Rust `ErrorCode`, shared with
 * the Envoy filter's logs and metrics. A test compares this union with `ErrorCode::ALL`.
 */
export type ErrorCode =
  /** No bearer token in the request (HTTP 401 without an `error` attribute). */
  | 'token_missing'
  /** The `Authorization` header is not a well-formed single bearer credential. */
  | 'authorization_malformed'
  /** The request carries the token in more than one place. */
  | 'token_multiple'
  /** The token is longer than the configured maximum. */
  | 'token_too_large'
  /** The token is not three dot-separated segments. */
  | 'token_malformed'
  /** A segment is not canonical unpadded base64url. */
  | 'invalid_base64'
  /** The JOSE header is not a valid JSON object of the expected shape. */
  | 'header_malformed'
  /** The claims are not a valid JSON object, or a registered claim has the wrong type. */
  | 'claims_malformed'
  /** The header lists critical extensions that are not implemented. */
  | 'unsupported_critical'
  /** The header's `alg` is not in the policy's allowlist. */
  | 'algorithm_not_allowed'
  /** No key in the key set matches the token's `kid`. */
  | 'key_not_found'
  /** Keys match the `kid`, but none may verify this algorithm. */
  | 'key_unusable'
  /** The signature has the wrong length for the algorithm. */
  | 'signature_length_invalid'
  /** The signature does not verify. */
  | 'signature_invalid'
  /** The header's `typ`, or the policy's token-type claim, is not the expected one. */
  | 'token_type_invalid'
  /** `exp` has passed. */
  | 'token_expired'
  /** `nbf` or `iat` lies in the future. */
  | 'token_not_yet_valid'
  /** `iat` is older than the policy's maximum token age. */
  | 'token_too_old'
  /** The token's lifetime exceeds the policy's maximum. */
  | 'lifetime_too_long'
  /** A claim required by the policy is absent. */
  | 'claim_missing'
  /** `iss` is not an accepted issuer. */
  | 'issuer_invalid'
  /** `aud` contains none of the accepted audiences. */
  | 'audience_invalid'
  /** `sub` does not match the policy's subject matchers. */
  | 'subject_invalid'
  /** `client_id` (or `azp`) is not an accepted client. */
  | 'client_not_allowed'
  /** A claim has a value other than the one the policy requires. */
  | 'claim_value_invalid'
  /** A scope required by the policy is missing. */
  | 'insufficient_scope'
  /** A role required by the policy is missing. */
  | 'insufficient_role'
  /** No key set is available for the provider. */
  | 'jwks_unavailable'
  /** A JWKS document could not be used. */
  | 'jwks_invalid'
  /** A DPoP proof is missing or invalid (RFC 9449). */
  | 'dpop_proof_invalid'
  /** The server requires a DPoP nonce (RFC 9449 §8). */
  | 'dpop_nonce_required'
  /** The introspection endpoint answered `active: false` (RFC 7662 §2.2). */
  | 'token_inactive'
  /** The token's `jti` is on the provider's revocation list. */
  | 'token_revoked'
  /** No introspection answer is available: the endpoint failed or timed out. */
  | 'introspection_unavailable'
  /** No revocation list is available for the provider. */
  | 'revocation_list_unavailable'
  /** A policy or filter configuration is invalid. */
  | 'config_invalid'
  /** A PKCE verifier or challenge is malformed (RFC 7636 §4.1). */
  | 'pkce_invalid';

/**
 * HTTP status for a request that failed with the code: 400, 401 or 403 as RFC 6750 §3.1
 * assigns them, 401 for `token_missing`, and 500 for `config_invalid` and `pkce_invalid`,
 * which describe no request.
 */
export type TokenErrorStatus = 400 | 401 | 403 | 500;

/** A token, key set, policy or PKCE value was rejected. */
export declare class TokenError extends Error {
  /** Created by the library; the arguments mirror the Rust error. */
  constructor(code: ErrorCode, status: TokenErrorStatus, message: string);
  readonly name: 'TokenError';
  /** Stable code, e.g. `token_expired`. */
  readonly code: ErrorCode;
  /** HTTP status for a request that failed with this code. */
  readonly status: TokenErrorStatus;
}

/** Stable code of an {@link AuthorizationResponseError}. */
export type AuthorizationResponseErrorCode =
  /** The response cannot be read: a broken escape, a repeated parameter, or no `code`. */
  | 'response_malformed'
  /** `state` is missing or not the value sent in the request. */
  | 'state_mismatch'
  /** `iss` is missing or not the expected issuer (RFC 9207). */
  | 'issuer_mismatch'
  /** The authorization server returned an error response (RFC 6749 §4.1.2.1). */
  | 'error_response';

/**
 * An authorization response was rejected. For `error_response`, `error`,
 * `errorDescription` and `errorUri` carry the server's parameters; a forged error response
 * with a wrong `state` or `iss` is reported as a mismatch instead.
 */
export declare class AuthorizationResponseError extends Error {
  /** Created by the library. */
  constructor(
    code: AuthorizationResponseErrorCode,
    message: string,
    error?: string,
    errorDescription?: string,
    errorUri?: string,
  );
  readonly name: 'AuthorizationResponseError';
  readonly code: AuthorizationResponseErrorCode;
  /** The server's `error`, e.g. `access_denied`; only for `error_response`. */
  readonly error?: string;
  /** The server's `error_description`, when it sent one. */
  readonly errorDescription?: string;
  /** The server's `error_uri`, when it sent one. */
  readonly errorUri?: string;
}
