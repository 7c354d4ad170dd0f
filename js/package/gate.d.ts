// The edge-worker entry point `portcullis/gate`: the request gate of the Envoy filter, with
// the same configuration JSON, for Cloudflare Workers, workerd, Node.js and other runtimes
// with `fetch`. The gate decides; the caller does the HTTP requests and keeps the time.

import type { ErrorCode, TokenErrorStatus } from './errors.js';
import type { Policy } from './verify.js';

export { TokenError } from './errors.js';
export type { ErrorCode, TokenErrorStatus } from './errors.js';
export type { Policy } from './verify.js';

/** An HTTP URL with a fetch timeout (`cluster` is read by the Envoy filter only). */
export interface HttpUri {
  uri: string;
  cluster?: string;
  /** Default 5 s. */
  timeout?: number | string;
}

/** Keys fetched over HTTP; set exactly one of `http_uri` and `discovery_uri`. */
export interface RemoteJwks {
  http_uri?: HttpUri;
  /** OpenID Connect discovery document; its `issuer` must match the provider's `issuer`. */
  discovery_uri?: HttpUri;
  /** Default 600 s, at least 1 s. */
  cache_duration?: number | string;
  /** Minimum time between refetches for unknown `kid`s; default 30 s. */
  refetch_cooldown?: number | string;
  /** How long the last good set serves after its cache duration while refreshes fail; default 24 h. */
  stale_if_error?: number | string;
  /** How long a request may wait for the first key set; default the fetch timeout. */
  pending_timeout?: number | string;
}

/** One provider: a verification policy plus where its keys and tokens come from. */
export interface ProviderConfig extends Omit<Policy, 'remote_jwks'> {
  remote_jwks?: RemoteJwks;
}

/** A rule's requirement; set exactly one member. */
export interface Requirement {
  provider_name?: string;
  requires_any?: { requirements: readonly Requirement[] };
  requires_all?: { requirements: readonly Requirement[] };
  allow_missing?: Record<string, never>;
  allow_missing_or_failed?: Record<string, never>;
}

/** The configuration document the Envoy filter reads, with the same field names. */
export interface GateConfig {
  providers: Readonly<Record<string, ProviderConfig>>;
  /** First match wins. Unset: every request needs a token of one of the providers. */
  rules?: readonly {
    match: { prefix?: string; path?: string; methods?: readonly string[] };
    /** Unset: the request passes without a token. */
    requires?: Requirement;
  }[];
  bypass_cors_preflight?: boolean;
  failure?: { realm?: string; json_body?: boolean; strip_details?: boolean };
  /** Verified-token cache; `jwt_cache_size: 0` turns it off. Default 1000 tokens, 1 MiB. */
  jwt_cache_config?: { jwt_cache_size?: number; max_bytes?: number };
}

/** A provider as the gate reports it, with durations in milliseconds. */
export type ProviderInfo =
  | { readonly name: string; readonly keys: 'local' }
  | {
      readonly name: string;
      readonly keys: 'remote';
      /** The configured URL: the key set's, or the discovery document's. */
      readonly url: string;
      readonly kind: FetchKind;
      readonly timeoutMs: number;
      readonly cacheDurationMs: number;
      readonly refetchCooldownMs: number;
      readonly staleIfErrorMs: number;
      readonly pendingTimeoutMs: number;
    };

/** The document a fetch requests: a discovery document, or a JSON Web Key Set. */
export type FetchKind = 'discovery' | 'jwks';

/** A fetch to perform with `GET`. */
export interface FetchDue {
  readonly provider: string;
  readonly kind: FetchKind;
  readonly url: string;
  /** Abort the request after this many milliseconds and report a failure. */
  readonly timeoutMs: number;
  /** Largest body to read; report a larger one as a failure without passing it on. */
  readonly maxBytes: number;
}

/** The result of a reported response body. */
export type FetchOutcome =
  | { readonly outcome: 'stored'; readonly keys: number; readonly skipped: readonly string[] }
  /** A discovery document named the key set; perform `fetch` now as part of the same fetch. */
  | { readonly outcome: 'next'; readonly fetch: FetchDue }
  /** The body was unusable; the gate recorded a failed fetch. */
  | { readonly outcome: 'failed'; readonly reason: string }
  /** No fetch of this provider was in flight. */
  | { readonly outcome: 'ignored' };

/** The state of a provider's keys. Times are `null` before the first key set. */
export interface KeyStatus {
  readonly state: 'fresh' | 'stale' | 'none';
  readonly fetchedAtMs: number | null;
  readonly expiresAtMs: number | null;
  readonly fetching: boolean;
  /** Failed fetches since the last success. */
  readonly failures: number;
  /** No fetch starts before this time; 0 when not backing off. */
  readonly retryAtMs: number;
  readonly lastError: string | null;
}

/** The parts of a request the gate reads. */
export interface GateRequest {
  readonly method: string;
  /** The absolute request URL. */
  readonly url: string | URL;
  readonly headers?: Iterable<readonly [string, string]> | Readonly<Record<string, string>>;
}

/** Forward the request after these changes. */
export interface AllowDecision {
  readonly action: 'allow';
  /** Remove these headers first (lower case): claim headers a client may have sent, and the credential. */
  readonly removeHeaders: readonly string[];
  /** Then set these. */
  readonly setHeaders: readonly (readonly [string, string])[];
  /** The URL to forward, without a token the gate took from the query. */
  readonly url: string;
  /** Providers whose tokens verified. */
  readonly providers: readonly string[];
  /** A CORS preflight let through by `bypass_cors_preflight`. */
  readonly corsPreflight: boolean;
  /** Log lines: stale keys served while refreshes fail. */
  readonly warnings: readonly string[];
}

/** A rejection: reply to the request with this RFC 6750 response. */
export interface DenyDecision {
  readonly action: 'deny';
  readonly status: TokenErrorStatus;
  readonly code: ErrorCode;
  /** `www-authenticate` and, with a body, `content-type`. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
  /** The failure, for logs; never contains the token. */
  readonly message: string;
  /** The provider whose failure is reported, if any. */
  readonly provider: string | null;
}

/** Keys of these providers are being fetched: wait for them and decide again. */
export interface PendingDecision {
  readonly action: 'pending';
  readonly providers: readonly string[];
}

export type Decision = AllowDecision | DenyDecision | PendingDecision;

/**
 * The request gate: rules, token extraction, verification, claim headers and RFC 6750
 * replies of the Envoy filter, and one rotation-safe key cache per remote provider. It does
 * no I/O and reads no clock: every time is an argument in milliseconds since the Unix epoch.
 *
 * A worker calls `fetchesDue` per request, performs each fetch and reports it with
 * `fetchSucceeded` or `fetchFailed`, then calls `decide`. On `pending` it waits for the
 * fetches and decides again, with `finalAttempt` once the providers' `pendingTimeoutMs` has
 * passed.
 */
export class Gate {
  /**
   * @param config the configuration, as an object or JSON text.
   * @throws {TokenError} `config_invalid`, naming the first invalid field.
   */
  constructor(config: GateConfig | string);

  /** Providers in name order. */
  readonly providers: readonly ProviderInfo[];

  /**
   * Returns the fetches to start now and records them as started. A provider is listed when
   * it has no keys, when its refresh window began (the last tenth of the cache duration, at
   * least 5 s), or when a token with an unknown `kid` was granted a refetch (once per
   * cooldown). It is not listed while a fetch is in flight or a retry backoff (1 s doubling
   * to 5 min) lasts. Report each result exactly once, because a fetch never reported is
   * given up only after twice its timeout.
   */
  fetchesDue(nowMs: number): FetchDue[];

  /**
   * Reports the body of a 200 response to the provider's fetch in flight.
   * @throws {RangeError} for an unknown provider or one with local keys.
   */
  fetchSucceeded(provider: string, body: string | Uint8Array | ArrayBuffer, nowMs: number): FetchOutcome;

  /**
   * Reports that the provider's fetch in flight failed (network error, status, size or
   * timeout); returns false when none was in flight. The last good keys keep serving for
   * `stale_if_error` after their cache duration.
   * @throws {RangeError} for an unknown provider or one with local keys.
   */
  fetchFailed(provider: string, reason: string, nowMs: number): boolean;

  /**
   * Adopts a key set fetched at `fetchedAtMs` elsewhere, such as another isolate's copy in
   * the Cache API, when it is newer than the current one. Its age counts from `fetchedAtMs`.
   * @throws {RangeError} for an unknown provider or one with local keys.
   * @throws {TokenError} `jwks_invalid` when the body is not a key set.
   */
  adoptKeys(provider: string, body: string | Uint8Array | ArrayBuffer, fetchedAtMs: number): boolean;

  /**
   * The state of a remote provider's keys, for logs and health checks.
   * @throws {RangeError} for an unknown provider or one with local keys.
   */
  keyStatus(provider: string, nowMs: number): KeyStatus;

  /**
   * Decides a request at `nowMs`. With `finalAttempt`, keys still missing fail the request
   * (`jwks_unavailable`) and the result is never `pending`.
   * @throws {TypeError} for a request of the wrong shape or a relative URL.
   */
  decide(request: GateRequest, nowMs: number, finalAttempt?: boolean): Decision;

  /** Verified-token cache hits and misses since the last call, and its size. */
  takeCacheStats(): { readonly hits: number; readonly misses: number; readonly entries: number };

  /** Frees the WebAssembly memory of this gate; it cannot be used afterwards. */
  free(): void;
}
