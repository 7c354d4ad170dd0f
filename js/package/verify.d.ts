// The verifying entry point `portcullis/verify`: the verifier of the Envoy filter, with the
// same policy schema, compiled for the browser and edge workers.

import type { JsonObject, JsonValue, JwtClaims } from './json.js';

export { TokenError } from './errors.js';
export type { ErrorCode, TokenErrorStatus } from './errors.js';
export type { JsonObject, JsonValue, JwtClaims } from './json.js';

/** Signature algorithms a policy may allow. `none` does not exist here. */
export type Algorithm =
  | 'HS256'
  | 'HS384'
  | 'HS512'
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'ES256K'
  | 'EdDSA'
  | 'Ed25519';

/** One JSON Web Key (RFC 7517 §4). Private members make the key unusable. */
export interface Jwk {
  readonly kty: string;
  readonly kid?: string;
  readonly use?: string;
  readonly key_ops?: readonly string[];
  readonly alg?: string;
  readonly [member: string]: JsonValue | undefined;
}

/**
 * A JSON Web Key Set (RFC 7517 §5), as an object or as its JSON text. Entries that cannot
 * be used are skipped; `kty: "oct"` secrets are always skipped here, because a secret in a
 * browser lets every visitor forge tokens.
 */
export type JsonWebKeySet = { readonly keys: readonly Jwk[] } | string;

/** A duration: seconds, or a string such as `"600s"`, `"500ms"`, `"10m"`, `"1h"`. */
export type Duration = number | string;

/** A claim name, a dot-separated path, or path segments for names that contain dots. */
export type ClaimPath = string | readonly string[];

/** All-of and any-of requirements on scopes or roles. */
export interface SetRequirement {
  all_of?: readonly string[];
  any_of?: readonly string[];
}

/**
 * A provider policy: the JSON document the Envoy filter reads for one provider, with the
 * same field names, defaults and checks. Fields that only concern request handling
 * (`local_jwks`, `remote_jwks`, `from_headers`, `from_params`, `from_cookies`, `forward`,
 * `forward_payload_header`, `claim_to_headers`) are accepted and checked but do not
 * change {@link verifyToken}.
 */
export interface Policy {
  /** Accepted `iss` values; one `{tenant}` placeholder allowed per value. Unset: not checked. */
  issuer?: string | readonly string[];
  tenants?: readonly string[];
  tenant_claim?: string;
  /** Accepted audiences; any match passes. Unset: not checked. */
  audiences?: readonly string[];
  /** Allowed `alg` values; required. */
  algorithms: readonly Algorithm[];
  /** Allowance for `exp`, `nbf`, `iat`; default 60, at most 600. */
  clock_skew_seconds?: number;
  /** Reject tokens without `exp`; default true. */
  require_expiration?: boolean;
  max_lifetime?: Duration;
  /** Oldest accepted `iat`; makes `iat` required. */
  max_token_age?: Duration;
  /** Required JOSE `typ`, compared as a media type, e.g. `at+jwt`. */
  token_type?: string;
  token_type_claim?: { claim: ClaimPath; value: string };
  /** `rfc9068`: `typ` `at+jwt` and the claims RFC 9068 §2.2 requires. */
  profile?: 'rfc9068';
  subjects?: readonly ({ exact: string } | { prefix: string } | { suffix: string } | { contains: string })[];
  client_ids?: readonly string[];
  required_claims?: readonly { claim: ClaimPath; equals?: JsonValue; one_of?: readonly JsonValue[] }[];
  scopes?: SetRequirement;
  roles?: SetRequirement & { claim?: ClaimPath; preset?: string };
  /** Maximum token length in bytes; default 16384, at most 65536. */
  max_token_bytes?: number;
  local_jwks?: { inline_string?: string; inline?: JsonObject };
  remote_jwks?: JsonObject;
  from_headers?: readonly { name: string; value_prefix?: string }[];
  from_params?: readonly string[];
  from_cookies?: readonly string[];
  forward?: boolean;
  forward_payload_header?: string;
  claim_to_headers?: readonly { header_name: string; claim_name: ClaimPath }[];
}

/** The JOSE header of a verified token. */
export interface VerifiedHeader extends JsonObject {
  readonly alg: Algorithm;
  readonly kid?: string;
  readonly typ?: string;
  readonly cty?: string;
}

/** A token that passed every check of the policy. */
export interface VerifiedToken {
  readonly header: VerifiedHeader;
  /** The verified claims, as `JSON.parse` reads them. */
  readonly claims: JwtClaims;
  /** Scopes from `scope` and `scp`, without duplicates. */
  readonly scopes: readonly string[];
  /** The algorithm that verified the signature. */
  readonly algorithm: Algorithm;
  /** The `kid` of the key that verified the signature, or `null` if it had none. */
  readonly keyId: string | null;
}

/**
 * Verifies a token's signature with a key from `jwks` and every check of `policy` at
 * `now`, in the core's fixed order: size, structure, algorithm allowlist, key, signature,
 * `typ`, claim types, `exp`/`nbf`/`iat`, `iss`, `aud`, required claims, scopes, roles. The
 * first failure is thrown. Keys named by the token (`jwk`, `jku`, `x5u`, `x5c`) are never
 * used.
 *
 * Both documents are parsed on every call.
 *
 * @param jwks the key set, as an object or JSON text.
 * @param policy the policy, as an object or JSON text.
 * @param now seconds since the Unix epoch; default the current time.
 * @throws {TokenError} with the first failing check's code: `config_invalid` for the
 *   policy, `jwks_invalid` for the key set, or the token's failure.
 */
export function verifyToken(
  token: string,
  jwks: JsonWebKeySet,
  policy: Policy | string,
  now?: number,
): VerifiedToken;

/** The request a DPoP proof must match. */
export interface DpopProofRequest {
  /** The request's HTTP method, compared case-sensitively with `htm`. */
  method: string;
  /**
   * The request URL as the client addressed it. It and `htu` are compared after
   * normalisation: scheme and host in lower case, no default port, an empty path as `/`,
   * percent-encodings in upper case, unreserved characters decoded, query and fragment
   * dropped.
   */
  url: string | URL;
  /** The access token sent with the proof; the proof's `ath` must be its SHA-256 hash. */
  accessToken?: string;
  /** Nonces the server currently accepts. When any is given, the proof's `nonce` must be one. */
  nonces?: string | readonly string[];
}

/** Options of {@link verifyDpopProof}. */
export interface DpopProofOptions {
  /** Accepted proof algorithms, asymmetric only; default ES256, RS256, PS256 and EdDSA. */
  algorithms?: readonly Algorithm[];
  /** How far `iat` may lie before or after `now`, in seconds; default 300. */
  maxAge?: number;
  /** Whether the proof must carry a nonce from `nonces`; default false. */
  requireNonce?: boolean;
  /** Seconds since the Unix epoch; default the current time. */
  now?: number;
}

/** A DPoP proof that passed every check of {@link verifyDpopProof}. */
export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof key; compare it with the token's `cnf.jkt`. */
  readonly jkt: string;
  /** The proof's `jti`; record it to reject replays. */
  readonly jti: string;
  /** The proof's `iat`. */
  readonly iat: number;
}

/**
 * Verifies a DPoP proof (RFC 9449 §4.3) for one request with the core's checks, in this
 * order: size (at most 8192 bytes), compact JWS syntax, `typ` `dpop+jwt`, an allowed
 * asymmetric `alg`, and a public `jwk` header key that fits `alg`. Then the signature with
 * that key, `jti` (1 to 256 bytes), `htm`, `htu`, and `iat` within `maxAge` of `now`. Last,
 * `ath` when `accessToken` is given, and the nonce when required or when `nonces` is not
 * empty. The header key is used only to check this proof.
 *
 * It does NOT reject replays: keep each returned `jti` for the `maxAge` window and reject
 * repeats. It does NOT check that an access token is bound to the key: compare the result's
 * `jkt` with the verified token's `cnf.jkt`.
 *
 * @throws {TokenError} `dpop_proof_invalid` naming the failed check, or
 *   `dpop_nonce_required` when the nonce is missing or not accepted.
 * @throws {TypeError} for arguments of the wrong type and for unknown or symmetric
 *   algorithms.
 */
export function verifyDpopProof(
  proof: string,
  request: DpopProofRequest,
  options?: DpopProofOptions,
): VerifiedDpopProof;
