// Error classes thrown by every entry point of the portcullis package. The build points the
// generated glue of both WebAssembly modules at this one file, so `instanceof` holds for
// errors from either entry point.

/**
 * A token, key set, policy or PKCE value was rejected. `code` is the stable code shared with
 * the Rust API and the Envoy filter. `status` is the HTTP status RFC 6750 assigns to it
 * (400, 401 or 403), 401 for a missing token, and 500 for the codes that describe no request
 * (`config_invalid`, `pkce_invalid`).
 */
export class TokenError extends Error {
  constructor(code, status, message) {
    super(message);
    this.name = 'TokenError';
    this.code = code;
    this.status = status;
  }
}

/**
 * An authorization response was rejected: malformed, a `state` or `iss` mismatch, or an
 * error response from the authorization server. For `error_response`, `error`,
 * `errorDescription` and `errorUri` carry the server's parameters.
 */
export class AuthorizationResponseError extends Error {
  constructor(code, message, error, errorDescription, errorUri) {
    super(message);
    this.name = 'AuthorizationResponseError';
    this.code = code;
    if (error !== undefined) {
      this.error = error;
      this.errorDescription = errorDescription;
      this.errorUri = errorUri;
    }
  }
}
