// JSON shapes shared by the portcullis entry points.

/** A JSON value as `JSON.parse` returns it. */
export type JsonValue = string | number | boolean | null | readonly JsonValue[] | JsonObject;

/** A JSON object as `JSON.parse` returns it. */
export interface JsonObject {
  readonly [member: string]: JsonValue | undefined;
}

/**
 * A JOSE header (RFC 7515 §4). The inspector does not check any member, so even `alg`
 * may be absent or not a string there.
 */
export interface JoseHeader extends JsonObject {
  readonly alg?: JsonValue;
  readonly kid?: JsonValue;
  readonly typ?: JsonValue;
  readonly cty?: JsonValue;
}

/**
 * A JWT claims set (RFC 7519 §4). The registered claims below have the types the verifier
 * requires: a token whose registered claim has another type is rejected with
 * `claims_malformed` by `inspectToken` and `verifyToken` alike.
 */
export interface JwtClaims extends JsonObject {
  readonly iss?: string;
  readonly sub?: string;
  /** One audience, or several; a string is never split on spaces. */
  readonly aud?: string | readonly string[];
  /** NumericDate: seconds since the Unix epoch, possibly fractional. */
  readonly exp?: number;
  readonly nbf?: number;
  readonly iat?: number;
  readonly jti?: string;
  /** RFC 9068 §2.2. */
  readonly client_id?: string;
  /** OpenID Connect authorized party. */
  readonly azp?: string;
  /** Space-delimited scopes (RFC 8693 §4.2). */
  readonly scope?: string;
  /** Scopes as issued by some providers: a string or an array of strings. */
  readonly scp?: string | readonly string[];
}
