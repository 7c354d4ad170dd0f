//! Token introspection ([RFC 7662](https://www.rfc-editor.org/rfc/rfc7662)): the request a
//! gate sends, the strict reading of the answer, the checks of an answer against a
//! provider's policy, a bounded cache of answers and the endpoint's failure state.
//!
//! This module does no I/O and reads no clock. Adapters send the request that
//! [`IntrospectionSettings::request`] describes, hand the body of a 200 response to
//! [`parse_response`], and keep the answer in an [`IntrospectionCache`]. [`next_step`]
//! tells them, per token, whether to use a cached answer, call the endpoint, or fail.
//!
//! Failures follow the rules of remote key sets ([`crate::keycache`]): a failed call is
//! retried after a backoff of 1 s doubling to 5 min. During the backoff an answer past its
//! `cache_duration` keeps serving, for at most `stale_if_error` (default 0, because a stale
//! answer hides a revocation); after it, the endpoint is asked again. Without a usable
//! answer the request fails closed with `introspection_unavailable`.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use base64ct::{Base64, Encoding};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::claims::{self, Claims};
use crate::error::VerifyError;
use crate::json;
use crate::keycache::Backoff;
use crate::policy::Policy;

/// Largest introspection response read, in bytes. Answers are a few hundred bytes; claims
/// such as `authorization_details` can make them a few KiB.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Default longest reuse of an answer, in milliseconds.
pub const DEFAULT_CACHE_DURATION_MS: u64 = 60_000;

/// Default time an answer keeps serving past `cache_duration` while the endpoint fails, in
/// milliseconds: none, because a stale answer can hide a revocation.
pub const DEFAULT_STALE_IF_ERROR_MS: u64 = 0;

/// Default number of cached answers per cache.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// Default bound of the estimated memory of all cached answers, in bytes.
pub const DEFAULT_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Estimated bytes of a cache entry besides its answer.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// Estimated memory per byte of answer JSON once parsed (as in the verified-token cache).
const BYTES_PER_ANSWER_BYTE: usize = 3;

/// The SHA-256 digest of a token, the cache key.
pub type TokenDigest = [u8; 32];

/// The way tokens are checked: only introspected, or verified as JWTs first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntrospectionMode {
    /// Tokens are opaque: the answer is the only check, and its members are the claims.
    Only,
    /// Tokens are JWTs: verified locally first, then introspected to learn whether they
    /// were revoked.
    AfterJwt,
}

/// A provider's introspection settings, checked.
#[derive(Clone)]
pub struct IntrospectionSettings {
    /// The endpoint URL.
    pub uri: String,
    /// Envoy cluster that reaches the endpoint.
    pub cluster: Option<String>,
    /// Call timeout in milliseconds.
    pub timeout_ms: u64,
    /// Client identifier for HTTP Basic authentication.
    pub client_id: String,
    client_secret: Zeroizing<String>,
    /// Only, or after JWT checks.
    pub mode: IntrospectionMode,
    /// Longest reuse of an answer, in milliseconds.
    pub cache_duration_ms: u64,
    /// Time a response keeps serving past `cache_duration_ms` while the endpoint fails, in
    /// milliseconds.
    pub stale_if_error_ms: u64,
}

impl core::fmt::Debug for IntrospectionSettings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IntrospectionSettings")
            .field("uri", &self.uri)
            .field("cluster", &self.cluster)
            .field("timeout_ms", &self.timeout_ms)
            .field("client_id", &self.client_id)
            .field("mode", &self.mode)
            .field("cache_duration_ms", &self.cache_duration_ms)
            .field("stale_if_error_ms", &self.stale_if_error_ms)
            .finish_non_exhaustive()
    }
}

/// An HTTP request to send: `POST` with a form body.
#[derive(Clone, PartialEq, Eq)]
pub struct IntrospectionRequest {
    /// The endpoint URL.
    pub url: String,
    /// Headers, lower case, `authorization` among them.
    pub headers: Vec<(String, String)>,
    /// The `application/x-www-form-urlencoded` body; it contains the token.
    pub body: String,
}

impl core::fmt::Debug for IntrospectionRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("IntrospectionRequest").field("url", &self.url).finish_non_exhaustive()
    }
}

/// Encodes `text` as `application/x-www-form-urlencoded` (the WHATWG URL standard's
/// byte serializer): unreserved bytes as they are, space as `+`, everything else as `%XX`.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'*' | b'-' | b'.' | b'_') {
            out.push(char::from(byte));
        } else if byte == b' ' {
            out.push('+');
        } else {
            out.push_str(&alloc::format!("%{byte:02X}"));
        }
    }
    out
}

impl IntrospectionSettings {
    /// Creates settings; the durations are in milliseconds.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        uri: String,
        cluster: Option<String>,
        timeout_ms: u64,
        client_id: String,
        client_secret: String,
        mode: IntrospectionMode,
        cache_duration_ms: u64,
        stale_if_error_ms: u64,
    ) -> Self {
        Self {
            uri,
            cluster,
            timeout_ms,
            client_id,
            client_secret: Zeroizing::new(client_secret),
            mode,
            cache_duration_ms,
            stale_if_error_ms,
        }
    }

    /// Builds the request that introspects `token`
    /// ([RFC 7662 §2.1](https://www.rfc-editor.org/rfc/rfc7662#section-2.1)).
    ///
    /// The client authenticates with HTTP Basic, its identifier and secret each
    /// form-encoded first ([RFC 6749 §2.3.1](https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1)).
    ///
    /// # Security
    ///
    /// The request carries the token and the client secret; never log it.
    pub fn request(&self, token: &str) -> IntrospectionRequest {
        let credentials = alloc::format!("{}:{}", form_encode(&self.client_id), form_encode(&self.client_secret));
        let authorization = alloc::format!("Basic {}", Base64::encode_string(credentials.as_bytes()));
        IntrospectionRequest {
            url: self.uri.clone(),
            headers: alloc::vec![
                (String::from("content-type"), String::from("application/x-www-form-urlencoded")),
                (String::from("accept"), String::from("application/json")),
                (String::from("authorization"), authorization),
            ],
            body: alloc::format!("token={}&token_type_hint=access_token", form_encode(token)),
        }
    }
}

/// The endpoint's answer for one token.
#[derive(Clone, Debug, PartialEq)]
pub struct IntrospectionAnswer {
    active: bool,
    claims: Claims,
    size: usize,
}

impl IntrospectionAnswer {
    /// Returns whether the endpoint reports the token as active.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// Returns the response's members other than `active`, typed as JWT claims. RFC 7662
    /// §2.2 gives `exp`, `iat`, `nbf`, `sub`, `aud`, `iss`, `jti`, `scope` and `client_id`
    /// the meaning they have in a JWT.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }

    /// Size of the answer's JSON, in bytes.
    pub fn size(&self) -> usize {
        self.size
    }
}

/// Reads the body of an introspection response
/// ([RFC 7662 §2.2](https://www.rfc-editor.org/rfc/rfc7662#section-2.2)).
///
/// The body must be one JSON object without duplicate members, of at most
/// [`MAX_RESPONSE_BYTES`], with a boolean `active`. The other members of an active answer
/// must have the types JWT claims have (`exp` a NumericDate, `scope` a string, `aud` a
/// string or an array of strings, ...). Members of an inactive answer are ignored.
///
/// # Errors
///
/// A message naming what is wrong; the caller treats it as a failed call.
pub fn parse_response(body: &[u8]) -> Result<IntrospectionAnswer, String> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(alloc::format!("the introspection response is {} bytes, more than the maximum of {MAX_RESPONSE_BYTES}", body.len()));
    }
    let mut members = json::parse_object(body).map_err(|reason| alloc::format!("the introspection response is invalid: {reason}"))?;
    let active = match members.remove("active") {
        Some(Value::Bool(active)) => active,
        Some(other) => {
            return Err(alloc::format!("the introspection response's `active` must be a boolean, found {}", json::kind(&other)));
        }
        None => return Err(String::from("the introspection response has no `active` member")),
    };
    if !active {
        members.clear();
    }
    let claims = Claims::from_map(members).map_err(|error| alloc::format!("the introspection response is invalid: {error}"))?;
    Ok(IntrospectionAnswer { active, claims, size: body.len() })
}

/// Checks an answer against a provider's policy at `now` (seconds).
///
/// With [`IntrospectionMode::Only`] the answer's members take the place of the token's
/// claims: the time checks, `iss`, `aud`, required claims, client, scopes and roles run on
/// them as on a JWT's, so a member the policy requires must be present. With
/// [`IntrospectionMode::AfterJwt`] the JWT's claims were checked already; the answer must
/// be active and, when it has an `exp`, unexpired.
///
/// # Errors
///
/// [`VerifyError::Inactive`] for `active: false`, else the first failing policy check.
pub fn check_answer(answer: &IntrospectionAnswer, policy: &Policy, mode: IntrospectionMode, now: u64) -> Result<(), VerifyError> {
    if !answer.active {
        return Err(VerifyError::Inactive);
    }
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let claims = &answer.claims;
    match mode {
        IntrospectionMode::Only => {
            claims::check_time(claims, policy, now)?;
            claims::check_issuer(claims, policy)?;
            claims::check_audience(claims, policy)?;
            claims::check_identity(claims, policy)?;
            claims::check_authorization(claims, policy)?;
        }
        IntrospectionMode::AfterJwt => {
            let leeway = i64::try_from(policy.leeway).unwrap_or(i64::MAX);
            if let Some(exp) = claims.exp.filter(|exp| now >= exp.saturating_add(leeway)) {
                return Err(VerifyError::Expired { exp, now });
            }
        }
    }
    Ok(())
}

/// Returns until when an answer fetched at `fetched_at_ms` may be reused: for
/// `cache_duration`, and never past the token's `exp`.
pub fn fresh_until_ms(answer: &IntrospectionAnswer, fetched_at_ms: u64, settings: &IntrospectionSettings) -> u64 {
    let limit = fetched_at_ms.saturating_add(settings.cache_duration_ms);
    match answer.claims.exp.and_then(|exp| u64::try_from(exp).ok()) {
        Some(exp) if answer.active => limit.min(exp.saturating_mul(1000)),
        _ => limit,
    }
}

/// A cache entry for one token.
#[derive(Clone, Debug)]
pub enum Cached {
    /// An answer within its `cache_duration`.
    Fresh(Arc<IntrospectionAnswer>),
    /// An answer past its `cache_duration`, inside `stale_if_error`.
    Stale(Arc<IntrospectionAnswer>),
    /// Nothing usable.
    Missing,
}

#[derive(Debug)]
struct Entry {
    answer: Arc<IntrospectionAnswer>,
    fresh_until_ms: u64,
    usable_until_ms: u64,
    cost: usize,
    stamp: u64,
}

/// A cache key: the provider and a keyed hash of the token's digest, of the type of the
/// verified-token cache's keys (`gate::cache`), so that the B-tree code of the recency
/// index is compiled once for both caches.
pub type Key = (usize, (u64, u64));

/// Introspection answers by provider and token digest, bounded in number and estimated
/// memory; the least recently used answer is evicted first. The token itself is never
/// stored.
///
/// Entries are found by SipHash-2-4 (128-bit output) of the digest under the cache's hash
/// key, which [`IntrospectionCache::with_hash_key`] sets. With a random key, a client cannot
/// aim its tokens at one bucket of the Envoy adapter's map of calls in flight, which uses
/// the same keys. A second token with a cached token's key would still need that token's
/// digest.
#[derive(Debug)]
pub struct IntrospectionCache {
    max_entries: usize,
    max_bytes: usize,
    hash_key: [u8; 16],
    /// Entries by key, in a B-tree for the reason that the verified-token cache gives.
    entries: BTreeMap<Key, Entry>,
    /// (stamp, key) pairs, least recently used first.
    recency: BTreeSet<(u64, Key)>,
    bytes: usize,
    next_stamp: u64,
}

impl Default for IntrospectionCache {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES)
    }
}

impl IntrospectionCache {
    /// Creates an empty cache with these bounds.
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self { max_entries, max_bytes, hash_key: [0; 16], entries: BTreeMap::new(), recency: BTreeSet::new(), bytes: 0, next_stamp: 0 }
    }

    /// Returns this cache with `hash_key`, which should be random and secret, as the key of
    /// the hash that finds entries.
    #[must_use]
    pub fn with_hash_key(self, hash_key: [u8; 16]) -> Self {
        Self { hash_key, ..self }
    }

    /// Returns the key of the entry for `provider` and `digest`.
    pub fn key(&self, provider: usize, digest: &TokenDigest) -> Key {
        (provider, crate::siphash::hash128(&self.hash_key, digest))
    }

    /// Returns the answer for `provider` and `digest` at `now_ms`. Entries past their
    /// usable time are removed.
    pub fn get(&mut self, provider: usize, digest: &TokenDigest, now_ms: u64) -> Cached {
        let key = self.key(provider, digest);
        let (fresh, usable) = match self.entries.get(&key) {
            None => return Cached::Missing,
            Some(entry) => (now_ms < entry.fresh_until_ms, now_ms < entry.usable_until_ms),
        };
        if !usable {
            self.remove(&key);
            return Cached::Missing;
        }
        self.next_stamp = self.next_stamp.wrapping_add(1);
        let stamp = self.next_stamp;
        let Some(entry) = self.entries.get_mut(&key) else { return Cached::Missing };
        self.recency.remove(&(entry.stamp, key));
        entry.stamp = stamp;
        self.recency.insert((stamp, key));
        let answer = Arc::clone(&entry.answer);
        if fresh { Cached::Fresh(answer) } else { Cached::Stale(answer) }
    }

    /// Stores an answer fetched at `fetched_at_ms` for `settings`'s provider. An answer
    /// whose entry would take more than an eighth of the byte bound is not stored.
    pub fn insert(&mut self, provider: usize, digest: TokenDigest, answer: Arc<IntrospectionAnswer>, fetched_at_ms: u64, settings: &IntrospectionSettings) {
        let fresh_until_ms = fresh_until_ms(&answer, fetched_at_ms, settings);
        let mut usable_until_ms = fresh_until_ms.saturating_add(settings.stale_if_error_ms);
        if let Some(exp) = answer.claims.exp.and_then(|exp| u64::try_from(exp).ok()).filter(|_| answer.active) {
            usable_until_ms = usable_until_ms.min(exp.saturating_mul(1000));
        }
        self.insert_until(provider, digest, answer, fresh_until_ms, usable_until_ms);
    }

    /// Stores an answer with explicit times, e.g. one another process published.
    pub fn insert_until(&mut self, provider: usize, digest: TokenDigest, answer: Arc<IntrospectionAnswer>, fresh_until_ms: u64, usable_until_ms: u64) {
        if self.max_entries == 0 {
            return;
        }
        let cost = ENTRY_OVERHEAD_BYTES.saturating_add(answer.size.saturating_mul(BYTES_PER_ANSWER_BYTE));
        if cost > self.max_bytes / 8 {
            return;
        }
        let key = self.key(provider, &digest);
        self.remove(&key);
        while self.entries.len() >= self.max_entries || self.bytes.saturating_add(cost) > self.max_bytes {
            let Some((_, oldest)) = self.recency.pop_first() else { break };
            self.remove(&oldest);
        }
        self.next_stamp = self.next_stamp.wrapping_add(1);
        let stamp = self.next_stamp;
        self.recency.insert((stamp, key));
        self.bytes = self.bytes.saturating_add(cost);
        self.entries.insert(key, Entry { answer, fresh_until_ms, usable_until_ms, cost, stamp });
    }

    /// Drops every entry whose usable time ended at or before `now_ms`.
    pub fn purge(&mut self, now_ms: u64) {
        let expired: Vec<Key> = self.entries.iter().filter(|(_, entry)| entry.usable_until_ms <= now_ms).map(|(key, _)| *key).collect();
        for key in expired {
            self.remove(&key);
        }
    }

    /// Number of cached answers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.recency.remove(&(entry.stamp, *key));
            self.bytes = self.bytes.saturating_sub(entry.cost);
        }
    }
}

/// The failure state of one introspection endpoint.
///
/// Copies of the state in several processes (Envoy workers) share failures with
/// [`EndpointHealth::adopt_failure`] and recoveries with [`EndpointHealth::adopt_success`].
/// Both carry the time of the call they report, and a state never gives way to one older
/// than what it knows, so a failure that a later success ended is not adopted again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointHealth {
    backoff: Backoff,
    /// When the last failure known here happened; 0 before any.
    failed_at_ms: u64,
    /// When the last success known here happened; 0 before any.
    succeeded_at_ms: u64,
}

impl EndpointHealth {
    /// Records a failed call at `now_ms` and schedules the next attempt; `jitter` in
    /// `0.0..=1.0` adds up to 20 % to the backoff.
    pub fn record_failure(&mut self, reason: String, now_ms: u64, jitter: f32) {
        self.backoff.record_failure(reason, now_ms, jitter);
        self.failed_at_ms = self.failed_at_ms.max(now_ms);
    }

    /// Adopts a failure another process recorded at `failed_at_ms`, with its retry time
    /// and failure count, unless this state has recorded a success at or after it, or
    /// the same failure. Returns whether anything changed.
    pub fn adopt_failure(&mut self, reason: &str, failed_at_ms: u64, retry_at_ms: u64, failures: u32) -> bool {
        if failed_at_ms <= self.succeeded_at_ms {
            return false;
        }
        if failed_at_ms <= self.failed_at_ms && self.backoff.covers(retry_at_ms, failures) {
            return false;
        }
        // An older failure updates the count and retry time but keeps the newer reason.
        let newer = failed_at_ms >= self.failed_at_ms || self.backoff.last_error().is_none();
        self.backoff.adopt(newer.then(|| String::from(reason)), retry_at_ms, failures);
        self.failed_at_ms = self.failed_at_ms.max(failed_at_ms);
        true
    }

    /// Records a successful call at `now_ms`: the endpoint works again.
    pub fn record_success(&mut self, now_ms: u64) {
        self.backoff.clear();
        self.succeeded_at_ms = self.succeeded_at_ms.max(now_ms);
    }

    /// Adopts a success another process recorded at `succeeded_at_ms`, unless this state
    /// has recorded a later failure or the same success. Returns whether anything changed.
    pub fn adopt_success(&mut self, succeeded_at_ms: u64) -> bool {
        if succeeded_at_ms < self.failed_at_ms || succeeded_at_ms <= self.succeeded_at_ms {
            return false;
        }
        let changed = self.failing();
        self.record_success(succeeded_at_ms);
        changed
    }

    /// Returns whether the last call failed.
    pub fn failing(&self) -> bool {
        self.backoff.failing()
    }

    /// Returns whether no call may start before `retry_at_ms`.
    pub fn backing_off(&self, now_ms: u64) -> bool {
        self.backoff.backing_off(now_ms)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// When the next call may start; 0 when not backing off.
    pub fn retry_at_ms(&self) -> u64 {
        self.backoff.retry_at_ms()
    }

    /// The last failure.
    pub fn last_error(&self) -> Option<&str> {
        self.backoff.last_error()
    }
}

/// The next step for one token.
#[derive(Clone, Debug)]
pub enum NextStep {
    /// Use this answer.
    Use(Arc<IntrospectionAnswer>),
    /// Call the endpoint (or wait for the call in flight) and decide again with its answer.
    Call,
    /// Fail the request: the endpoint is failing and no answer is usable.
    Fail(String),
}

/// Decides, from what the cache holds and the endpoint's state at `now_ms`, whether an
/// answer can be used, the endpoint must be called, or the request must fail.
///
/// A fresh answer is used. While the endpoint backs off from a failed call, a stale answer
/// is used, and without a usable answer the request fails at once instead of waiting.
/// Otherwise the endpoint is called: once the backoff is over, a stale answer serves only
/// if that call fails too, so a working endpoint is always asked again.
pub fn next_step(cached: Cached, health: &EndpointHealth, now_ms: u64) -> NextStep {
    match cached {
        Cached::Fresh(answer) => NextStep::Use(answer),
        Cached::Stale(answer) if health.backing_off(now_ms) => NextStep::Use(answer),
        Cached::Missing if health.backing_off(now_ms) => {
            NextStep::Fail(health.last_error().map_or_else(|| String::from("the introspection endpoint is failing"), ToString::to_string))
        }
        Cached::Stale(_) | Cached::Missing => NextStep::Call,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IntrospectionSettings {
        IntrospectionSettings::new(
            String::from("https://as.example.com/introspect"),
            None,
            1_000,
            String::from("api client"),
            String::from("s3cr:t"),
            IntrospectionMode::Only,
            60_000,
            30_000,
        )
    }

    #[test]
    fn request_encodes_token_and_credentials() {
        let request = settings().request("a+b/c=");
        assert_eq!(request.body, "token=a%2Bb%2Fc%3D&token_type_hint=access_token");
        let authorization = &request.headers.iter().find(|(name, _)| name == "authorization").unwrap().1;
        let decoded = Base64::decode_vec(authorization.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(decoded, b"api+client:s3cr%3At");
        assert!(!alloc::format!("{request:?}").contains("a+b"), "Debug never shows the token");
        assert!(!alloc::format!("{:?}", settings()).contains("s3cr"), "Debug never shows the secret");
    }

    #[test]
    fn response_needs_boolean_active() {
        for body in [r#"{}"#, r#"{"active":"true"}"#, r#"{"active":1}"#, r#"[]"#, r#"{"active":true,"active":false}"#, "not json"] {
            assert!(parse_response(body.as_bytes()).is_err(), "{body}");
        }
        assert!(!parse_response(br#"{"active":false,"exp":"garbage"}"#).unwrap().is_active());
    }

    #[test]
    fn response_members_typed() {
        for body in [r#"{"active":true,"exp":"1"}"#, r#"{"active":true,"scope":["a"]}"#, r#"{"active":true,"aud":7}"#, r#"{"active":true,"client_id":1}"#] {
            assert!(parse_response(body.as_bytes()).is_err(), "{body}");
        }
        let answer = parse_response(br#"{"active":true,"exp":2000,"scope":"a b","aud":"api","client_id":"c"}"#).unwrap();
        assert_eq!(answer.claims().scopes, ["a", "b"]);
        assert!(!answer.claims().all.contains_key("active"));
    }

    #[test]
    fn inactive_answer_fails_check() {
        let policy = Policy::with_algorithms(Vec::new());
        let answer = parse_response(br#"{"active":false}"#).unwrap();
        assert_eq!(check_answer(&answer, &policy, IntrospectionMode::Only, 1_000), Err(VerifyError::Inactive));
        assert_eq!(check_answer(&answer, &policy, IntrospectionMode::AfterJwt, 1_000), Err(VerifyError::Inactive));
    }

    #[test]
    fn active_answer_checked_with_policy() {
        let mut policy = Policy::with_algorithms(Vec::new());
        policy.audiences = alloc::vec![String::from("api")];
        let good = parse_response(br#"{"active":true,"exp":2000,"aud":"api"}"#).unwrap();
        assert!(check_answer(&good, &policy, IntrospectionMode::Only, 1_000).is_ok());
        let other = parse_response(br#"{"active":true,"exp":2000,"aud":"other"}"#).unwrap();
        assert!(matches!(check_answer(&other, &policy, IntrospectionMode::Only, 1_000), Err(VerifyError::Audience { .. })));
        let expired = parse_response(br#"{"active":true,"exp":900,"aud":"api"}"#).unwrap();
        assert!(matches!(check_answer(&expired, &policy, IntrospectionMode::Only, 1_000), Err(VerifyError::Expired { .. })));
        assert!(matches!(check_answer(&expired, &policy, IntrospectionMode::AfterJwt, 1_000), Err(VerifyError::Expired { .. })));
        let no_exp = parse_response(br#"{"active":true,"aud":"api"}"#).unwrap();
        assert!(matches!(check_answer(&no_exp, &policy, IntrospectionMode::Only, 1_000), Err(VerifyError::MissingClaim { .. })));
        assert!(check_answer(&no_exp, &policy, IntrospectionMode::AfterJwt, 1_000).is_ok());
    }

    #[test]
    fn answer_reused_until_exp_or_duration() {
        let answer = parse_response(br#"{"active":true,"exp":100}"#).unwrap();
        assert_eq!(fresh_until_ms(&answer, 10_000, &settings()), 70_000);
        assert_eq!(fresh_until_ms(&answer, 50_000, &settings()), 100_000);
        let inactive = parse_response(br#"{"active":false}"#).unwrap();
        assert_eq!(fresh_until_ms(&inactive, 50_000, &settings()), 110_000);
    }

    #[test]
    fn cache_fresh_then_stale_then_gone() {
        let mut cache = IntrospectionCache::default();
        let answer = Arc::new(parse_response(br#"{"active":true,"exp":1000}"#).unwrap());
        cache.insert(0, [1; 32], answer, 0, &settings());
        assert!(matches!(cache.get(0, &[1; 32], 59_999), Cached::Fresh(_)));
        assert!(matches!(cache.get(0, &[1; 32], 60_000), Cached::Stale(_)));
        assert!(matches!(cache.get(1, &[1; 32], 1_000), Cached::Missing), "another provider");
        assert!(matches!(cache.get(0, &[1; 32], 90_000), Cached::Missing));
        assert!(cache.is_empty());
    }

    #[test]
    fn cache_bounded_least_recent_first() {
        let mut cache = IntrospectionCache::new(2, DEFAULT_MAX_BYTES);
        let answer = Arc::new(parse_response(br#"{"active":false}"#).unwrap());
        cache.insert(0, [1; 32], Arc::clone(&answer), 0, &settings());
        cache.insert(0, [2; 32], Arc::clone(&answer), 0, &settings());
        assert!(matches!(cache.get(0, &[1; 32], 1), Cached::Fresh(_)));
        cache.insert(0, [3; 32], answer, 0, &settings());
        assert_eq!(cache.len(), 2);
        assert!(matches!(cache.get(0, &[2; 32], 1), Cached::Missing));
    }

    #[test]
    fn next_step_rules() {
        let answer = Arc::new(parse_response(br#"{"active":true}"#).unwrap());
        let mut health = EndpointHealth::default();
        assert!(matches!(next_step(Cached::Fresh(Arc::clone(&answer)), &health, 0), NextStep::Use(_)));
        assert!(matches!(next_step(Cached::Stale(Arc::clone(&answer)), &health, 0), NextStep::Call), "a healthy endpoint is asked again");
        assert!(matches!(next_step(Cached::Missing, &health, 0), NextStep::Call));
        health.record_failure(String::from("status 503"), 0, 0.0);
        assert!(matches!(next_step(Cached::Stale(Arc::clone(&answer)), &health, 10), NextStep::Use(_)), "stale serves while failing");
        assert!(matches!(next_step(Cached::Missing, &health, 10), NextStep::Fail(reason) if reason == "status 503"));
        assert!(matches!(next_step(Cached::Missing, &health, 1_000), NextStep::Call), "after the backoff");
        assert!(
            matches!(next_step(Cached::Stale(Arc::clone(&answer)), &health, 1_000), NextStep::Call),
            "after the backoff the endpoint is asked again before a stale answer serves"
        );
        health.record_success(1_000);
        assert!(!health.failing());
    }

    #[test]
    fn health_ignores_failure_older_than_success() {
        let mut health = EndpointHealth::default();
        assert!(health.adopt_failure("status 503", 100, 1_100, 1));
        assert!(health.failing());
        assert!(!health.adopt_failure("status 503", 100, 1_100, 1), "the same failure twice changes nothing");
        health.record_success(2_000);
        assert!(!health.adopt_failure("status 503", 100, 1_100, 1), "a failure before the success stays over");
        assert!(!health.failing());
        assert!(health.adopt_failure("timed out", 2_500, 3_500, 1), "a later failure counts");
        assert_eq!(health.last_error(), Some("timed out"));
    }

    #[test]
    fn health_adopts_recovery_of_other_process() {
        let mut health = EndpointHealth::default();
        health.record_failure(String::from("status 503"), 100, 0.0);
        assert!(!health.adopt_success(50), "a success before the failure changes nothing");
        assert!(health.failing());
        assert!(health.adopt_success(200));
        assert!(!health.failing());
        assert!(!health.backing_off(150));
        assert!(!health.adopt_failure("status 503", 100, 1_100, 1), "the failure it ended is not adopted again");
        assert!(!health.adopt_success(200), "the same success twice changes nothing");
    }
}
