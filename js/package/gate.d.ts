// The edge-worker entry point `portcullis/gate`: the request gate of the Envoy filter, with
// the same configuration JSON, for Cloudflare Workers, workerd, Node.js and other runtimes
// with `fetch`. The gate decides; the caller does the HTTP requests and keeps the time.

import type { ErrorCode, TokenErrorStatus } from './errors.js';
import type { Algorithm, Duration, Policy } from './verify.js';

export { TokenError } from './errors.js';
export type { ErrorCode, TokenErrorStatus } from './errors.js';
export type { Algorithm, Duration, Policy } from './verify.js';

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

/** Algorithms a DPoP proof may use: the asymmetric ones (`ES256K` only in builds with it). */
export type DpopProofAlgorithm = Exclude<Algorithm, 'HS256' | 'HS384' | 'HS512'>;

/** DPoP-bound access tokens (RFC 9449), sent as `Authorization: DPoP` with a `DPoP` proof header. */
export interface DpopConfig {
  /**
   * `allowed` (default): DPoP with a proof, or bearer tokens that are not bound to a key.
   * `required`: only DPoP, and a bearer token fails with `dpop_proof_invalid`.
   */
  mode?: 'allowed' | 'required';
  /** At least one; default `ES256`, `RS256`, `PS256`, `EdDSA`. Challenges list them in `algs`. */
  algorithms?: readonly DpopProofAlgorithm[];
  /** How far a proof's `iat` may lie from now, either way; default 300 s, 1 s to 3600 s. */
  max_age?: Duration;
  nonce?: {
    /** Require a server-issued nonce in every proof (RFC 9449 §8); default false. */
    enabled?: boolean;
    /**
     * How long one nonce is issued; it is accepted for one to two lifetimes. Default 300 s,
     * 1 s to 3600 s.
     */
    lifetime?: Duration;
    /**
     * HMAC-SHA256 key of the nonces: unpadded base64url of at least 32 bytes. Default: random
     * per `Gate` instance, so set it when several isolates serve one API.
     */
    secret?: string;
  };
  /**
   * The scheme and authority clients use, e.g. `https://api.example.com`, for the `htu`
   * check when TLS ends before the gate; default the request URL's.
   */
  origin?: string;
}

/** Token introspection (RFC 7662): a `POST` with the token and HTTP Basic client credentials. */
export interface IntrospectionConfig {
  /** An absolute `http://` or `https://` URL; the timeout defaults to 5 s. */
  http_uri: HttpUri;
  /** Not empty. */
  client_id: string;
  /**
   * Not empty. Sent in the `authorization` header of every introspection fetch; the gate
   * never logs it.
   */
  client_secret: string;
  /**
   * `only` (default): tokens are opaque and the answer is the only check, so the provider
   * has no `local_jwks` or `remote_jwks`. `after_jwt`: JWTs that pass the local checks are
   * then introspected.
   */
  mode?: 'only' | 'after_jwt';
  /**
   * Longest reuse of an answer, at least 1 s; default 60 s. An active answer is never
   * reused past its `exp`.
   */
  cache_duration?: Duration;
  /**
   * How long past `cache_duration` an answer may serve during the endpoint's retry backoff;
   * default 0, because a stale answer can hide a revocation.
   */
  stale_if_error?: Duration;
}

/** A document `{"revoked": [jti, ...]}` fetched with `GET` and refreshed like a key set. */
export interface RevocationListConfig {
  /** An absolute `http://` or `https://` URL; the timeout defaults to 5 s. */
  http_uri: HttpUri;
  /** How long a fetched list is used, at least 1 s; default 60 s. */
  cache_duration?: Duration;
  /** How long the last list serves past `cache_duration` while fetches fail; default 1 h. */
  stale_if_error?: Duration;
  /** How long a request may wait for the first list; default the fetch timeout. */
  pending_timeout?: Duration;
}

/** The fields every provider may set. */
interface ProviderConfigBase extends Omit<Policy, 'local_jwks' | 'remote_jwks'> {
  dpop?: DpopConfig;
  /** With a list, a token without `jti` fails with `claim_missing`. */
  revocation_list?: RevocationListConfig;
}

/** A provider that verifies JWTs with its keys, and may introspect them afterwards. */
export interface JwtProviderConfig extends ProviderConfigBase {
  /** Set exactly one of `local_jwks` and `remote_jwks`. */
  local_jwks?: Policy['local_jwks'];
  remote_jwks?: RemoteJwks;
  introspection?: IntrospectionConfig & { mode: 'after_jwt' };
}

/**
 * A provider for opaque tokens: the introspection answer takes the place of claims. It has
 * no keys, and none of the checks that only a JWT can pass (`typ`, the token-type claim,
 * the RFC 9068 profile).
 */
export interface IntrospectionOnlyProviderConfig extends Omit<ProviderConfigBase, 'algorithms'> {
  /** Nothing is verified with them; leave them out or write `[]`. */
  algorithms?: readonly Algorithm[];
  local_jwks?: never;
  remote_jwks?: never;
  token_type?: never;
  token_type_claim?: never;
  profile?: never;
  introspection: IntrospectionConfig & { mode?: 'only' };
}

/** One provider: a verification policy plus where its keys and tokens come from. */
export type ProviderConfig = JwtProviderConfig | IntrospectionOnlyProviderConfig;

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

/** The members every provider reports. */
interface ProviderInfoBase {
  readonly name: string;
  /**
   * How long a request may wait for this provider: the longest of the key set's and the
   * revocation list's `pending_timeout` and twice the introspection timeout; 0 when the
   * provider fetches nothing.
   */
  readonly pendingTimeoutMs: number;
  /** The configured revocation list URL, or `null` without a list. */
  readonly revocationListUrl: string | null;
  /** The configured introspection endpoint, or `null` when the provider does not introspect. */
  readonly introspectionUrl: string | null;
  /** The DPoP mode, or `null` when the provider accepts no DPoP-bound tokens. */
  readonly dpop: 'allowed' | 'required' | null;
}

/**
 * A provider as the gate reports it, with durations in milliseconds. `keys` is `local` for
 * `local_jwks`, `remote` for `remote_jwks`, and `none` for a provider that only introspects.
 */
export type ProviderInfo =
  | (ProviderInfoBase & { readonly keys: 'local' | 'none' })
  | (ProviderInfoBase & {
      readonly keys: 'remote';
      /** The configured URL: the key set's, or the discovery document's. */
      readonly url: string;
      readonly kind: KeySetFetchKind;
      readonly timeoutMs: number;
      readonly cacheDurationMs: number;
      readonly refetchCooldownMs: number;
      readonly staleIfErrorMs: number;
    });

/** The first document of a key-set fetch: a discovery document, or a JSON Web Key Set. */
export type KeySetFetchKind = 'discovery' | 'jwks';

/** The document a fetch requests: a key-set document, a revocation list, or an introspection answer. */
export type FetchKind = KeySetFetchKind | 'revocation_list' | 'introspection';

/** The members every fetch has. */
interface FetchDueBase {
  /**
   * Names the fetch in `fetchSucceeded` and `fetchFailed`: the provider's name for a key
   * set, `<provider>#revocation_list` for a list, and `<provider>#introspection#<hex
   * SHA-256 of the token>` for an introspection call.
   */
  readonly id: string;
  readonly provider: string;
  readonly url: string;
  /**
   * Request headers with lower-case names: `accept`, and for introspection also
   * `content-type` and `authorization`.
   */
  readonly headers: readonly (readonly [string, string])[];
  /** Abort the request after this many milliseconds and report a failure. */
  readonly timeoutMs: number;
  /** Largest body to read; report a larger one as a failure without passing it on. */
  readonly maxBytes: number;
}

/** A `GET` of a key set, a discovery document or a revocation list. */
export interface DocumentFetch extends FetchDueBase {
  readonly kind: KeySetFetchKind | 'revocation_list';
  readonly method: 'GET';
  readonly body: null;
}

/**
 * A `POST` to an introspection endpoint. Its `body` contains the token and its
 * `authorization` header the client secret, so never log or cache the request.
 */
export interface IntrospectionFetch extends FetchDueBase {
  readonly kind: 'introspection';
  readonly method: 'POST';
  /** `token=<token>&token_type_hint=access_token`, form-encoded. */
  readonly body: string;
}

/** A fetch to perform, an `IntrospectionFetch` when `kind` is `introspection`. */
export type FetchDue = DocumentFetch | IntrospectionFetch;

/** The result of a reported response body. */
export type FetchOutcome =
  /** A key set was stored: its usable keys, and why the others were skipped. */
  | { readonly outcome: 'stored'; readonly keys: number; readonly skipped: readonly string[] }
  /** A revocation list was stored, with this many revoked `jti` values. */
  | { readonly outcome: 'stored'; readonly entries: number }
  /** An introspection answer was stored; `active: false` fails its token with `token_inactive`. */
  | { readonly outcome: 'stored'; readonly active: boolean }
  /** A discovery document named the key set; perform `fetch` now as part of the same fetch. */
  | { readonly outcome: 'next'; readonly fetch: FetchDue }
  /** The body was unusable; the gate recorded a failed fetch. */
  | { readonly outcome: 'failed'; readonly reason: string }
  /** No fetch with this `id` was in flight. */
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
  /**
   * Set these on the origin's response (lower-case names): a fresh `dpop-nonce` when a
   * provider with DPoP nonces verified a proof; otherwise empty.
   */
  readonly responseHeaders: readonly (readonly [string, string])[];
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
  /**
   * `www-authenticate` once per challenge (`Bearer`, `DPoP`, or both for a provider with
   * DPoP `allowed`), `dpop-nonce` when the provider issues nonces, and with a body
   * `content-type`.
   */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string;
  /** The failure, for logs; never contains the token. */
  readonly message: string;
  /** The provider whose failure is reported, if any. */
  readonly provider: string | null;
}

/**
 * Keys, revocation lists or introspection answers of these providers are being fetched:
 * wait for them and decide again.
 */
export interface PendingDecision {
  readonly action: 'pending';
  readonly providers: readonly string[];
}

export type Decision = AllowDecision | DenyDecision | PendingDecision;

/**
 * The request gate: rules, token extraction, verification, DPoP proofs, introspection,
 * revocation lists, claim headers and RFC 6750 replies of the Envoy filter. It keeps one
 * rotation-safe key cache per remote provider, the revocation lists, the introspection
 * answers (under the SHA-256 digest of each token) and a DPoP replay cache. It does no I/O
 * and reads no clock: every time is an argument in milliseconds since the Unix epoch.
 *
 * A worker calls `fetchesDue` per request, performs each fetch and reports it by `id` with
 * `fetchSucceeded` or `fetchFailed`, then calls `decide`. On `pending` it calls
 * `fetchesDue` again (a decision can queue an introspection call or a key refetch), waits
 * for the fetches and decides again, with `finalAttempt` once the providers'
 * `pendingTimeoutMs` has passed.
 *
 * The replay cache and, without `dpop.nonce.secret`, the nonce secret belong to this
 * instance: a proof replayed to another isolate is not detected, and another isolate does
 * not accept this one's nonces.
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
   * Returns the fetches to start now and records them as started.
   *
   * A key set is listed when the provider has no keys, or when its refresh window began:
   * the last tenth of the cache duration, at least 5 s. It is also listed when a token with
   * an unknown `kid` was granted a refetch (once per cooldown). A revocation list is
   * listed on the same timing, without refetches. An introspection call is listed once a
   * decision needed an answer for its token. Nothing is listed while its fetch is in flight
   * or a retry backoff (1 s doubling to 5 min, plus up to 20 % jitter) lasts. Report each
   * result exactly once, because a fetch never reported is given up only after twice its
   * timeout.
   */
  fetchesDue(nowMs: number): FetchDue[];

  /**
   * Reports the body of a 200 response to the fetch `id` (`FetchDue.id`; for a key set, the
   * provider's name).
   * @throws {RangeError} for an identifier that names no key set, list or introspection
   *   endpoint of this gate.
   */
  fetchSucceeded(id: string, body: string | Uint8Array | ArrayBuffer, nowMs: number): FetchOutcome;

  /**
   * Reports that the fetch `id` failed (network error, status, size or timeout) and
   * schedules its retry; returns false when it was not in flight. The last good key set or
   * list keeps serving for `stale_if_error` after its cache duration. An introspection
   * answer past its cache duration serves during the retry backoff, within
   * `stale_if_error`; after the backoff the endpoint is asked again. During the backoff,
   * tokens without a usable answer fail at once with `introspection_unavailable`.
   * @throws {RangeError} for an identifier that names no key set, list or introspection
   *   endpoint of this gate.
   */
  fetchFailed(id: string, reason: string, nowMs: number): boolean;

  /**
   * Adopts a key set (`id` the provider's name) or a revocation list (`id`
   * `<provider>#revocation_list`) fetched at `fetchedAtMs` elsewhere, such as another
   * isolate's copy in the Cache API, when it is newer than the current one. Its age counts
   * from `fetchedAtMs`.
   * @throws {RangeError} for an identifier that names no key set or list of this gate,
   *   and for introspection identifiers, because answers cannot be adopted.
   * @throws {TokenError} `jwks_invalid` when the body is not a valid key set, and
   *   `revocation_list_unavailable` when it is not a valid revocation list.
   */
  adoptKeys(id: string, body: string | Uint8Array | ArrayBuffer, fetchedAtMs: number): boolean;

  /**
   * The state of a remote provider's keys, for logs and health checks.
   * @throws {RangeError} for an unknown provider or one without `remote_jwks`.
   */
  keyStatus(provider: string, nowMs: number): KeyStatus;

  /**
   * Decides a request at `nowMs`. With `finalAttempt`, whatever is still missing fails the
   * request (`jwks_unavailable`, `revocation_list_unavailable` or
   * `introspection_unavailable`) and the result is never `pending`. The DPoP proofs of an
   * allowed request are recorded in the replay cache, so deciding the same request again
   * finds them replayed.
   * @throws {TypeError} for a request of the wrong shape or a relative URL.
   */
  decide(request: GateRequest, nowMs: number, finalAttempt?: boolean): Decision;

  /** Verified-token cache hits and misses since the last call, and its size. */
  takeCacheStats(): { readonly hits: number; readonly misses: number; readonly entries: number };

  /** Frees the WebAssembly memory of this gate; it cannot be used afterwards. */
  free(): void;
}
