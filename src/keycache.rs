//! When to fetch a remote key set, and which keys to serve meanwhile: the rotation-safe
//! cache policy shared by the Envoy filter and the edge worker.
//!
//! The cache does no I/O and reads no clock; adapters report fetch results and pass the
//! time in milliseconds. Its rules:
//!
//! - a fetched set is fresh for the cache duration and is refreshed in the background
//!   during the last tenth of it (at least 5 s before expiry);
//! - an unknown `kid` triggers one refetch, at most once per cooldown;
//! - when refreshes fail, the last good set keeps serving for the stale-if-error window
//!   after it expired; after that, and before any success, requests fail closed;
//! - a set that outlived that window without a failed refresh (an idle edge worker, which
//!   refreshes only when requests arrive) is fetched again, and requests wait for it;
//! - failed fetches are retried with exponential backoff (1 s doubling to 5 min) plus up
//!   to 20 % jitter supplied by the caller.
//!
//! Adapters that run several copies of the cache (one per Envoy worker) share fetched sets
//! with [`KeyCache::adopt`] and failures with [`KeyCache::adopt_failure`], so one fetch and
//! one backoff schedule serve them all. [`discovery`] finds a key set's URL through OpenID
//! Connect discovery.
//!
//! The rules are not specific to key sets: [`DocumentCache`] applies them to any fetched
//! document, and revocation lists use it too. [`KeyCache`] is the cache of one provider's
//! keys.

pub mod discovery;

use alloc::string::String;
use alloc::sync::Arc;

use crate::config::RemoteTiming;
use crate::jwks::KeySet;

/// First retry delay after a failed fetch.
pub const MIN_BACKOFF_MS: u64 = 1_000;

/// Longest retry delay.
pub const MAX_BACKOFF_MS: u64 = 300_000;

/// Least time before expiry at which a background refresh starts.
pub const MIN_REFRESH_AHEAD_MS: u64 = 5_000;

/// Returns the delay before the next attempt after `failures` consecutive failures: 1 s
/// doubling to 5 min, plus up to 20 % of it from `jitter` in `0.0..=1.0`.
pub fn backoff_delay_ms(failures: u32, jitter: f32) -> u64 {
    let exponent = failures.saturating_sub(1).min(20);
    let base = MIN_BACKOFF_MS.saturating_mul(1u64 << exponent).min(MAX_BACKOFF_MS);
    let jitter = f64::from(jitter.clamp(0.0, 1.0)) * 0.2;
    let extra = (base as f64 * jitter) as u64;
    base.saturating_add(extra)
}

/// The failure count, next retry time and last error of a remote source that backs off
/// after failures: the part of its state that [`DocumentCache`] and
/// [`crate::introspection::EndpointHealth`] share. Each of them decides which failures
/// reported by other workers to adopt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Backoff {
    failures: u32,
    retry_at_ms: u64,
    last_error: Option<String>,
}

impl Backoff {
    /// Records a failure at `now_ms` and schedules the next attempt after
    /// [`backoff_delay_ms`]; `jitter` in `0.0..=1.0` adds up to 20 % to the delay.
    pub(crate) fn record_failure(&mut self, reason: String, now_ms: u64, jitter: f32) {
        self.failures = self.failures.saturating_add(1);
        self.retry_at_ms = now_ms.saturating_add(backoff_delay_ms(self.failures, jitter));
        self.last_error = Some(reason);
    }

    /// Clears the failures after a success.
    pub(crate) fn clear(&mut self) {
        self.failures = 0;
        self.retry_at_ms = 0;
        self.last_error = None;
    }

    /// Returns whether this state's retry time and failure count are both at least the
    /// given ones, so adopting them would change neither.
    pub(crate) fn covers(&self, retry_at_ms: u64, failures: u32) -> bool {
        self.retry_at_ms >= retry_at_ms && self.failures >= failures
    }

    /// Adopts a failure recorded elsewhere: the later retry time and the larger failure
    /// count win, and `reason`, when given, replaces the last error.
    pub(crate) fn adopt(&mut self, reason: Option<String>, retry_at_ms: u64, failures: u32) {
        if let Some(reason) = reason {
            self.last_error = Some(reason);
        }
        self.retry_at_ms = self.retry_at_ms.max(retry_at_ms);
        self.failures = self.failures.max(failures);
    }

    /// Returns whether a failure was recorded since the last success.
    pub(crate) fn failing(&self) -> bool {
        self.failures > 0
    }

    /// Returns whether no attempt may start at `now_ms`.
    pub(crate) fn backing_off(&self, now_ms: u64) -> bool {
        now_ms < self.retry_at_ms
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn retry_at_ms(&self) -> u64 {
        self.retry_at_ms
    }

    pub(crate) fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }
}

/// What the cache can serve now.
#[derive(Clone, Debug)]
pub enum Served<T = KeySet> {
    /// A document within its cache duration.
    Fresh(Arc<T>),
    /// A document past its cache duration, inside the stale-if-error window.
    Stale(Arc<T>),
    /// Nothing yet, or nothing any more; `reason` says why, for logs and replies.
    Nothing {
        /// The last fetch error, if any.
        reason: Option<String>,
    },
}

/// The cache of one provider's keys.
pub type KeyCache = DocumentCache<KeySet>;

/// The state behind a warning given once each time a key cache starts serving stale keys.
#[derive(Debug, Default)]
pub struct StaleNotice {
    /// Whether the warning was given since the keys last were fresh.
    reported: bool,
}

impl StaleNotice {
    /// Returns a warning the first time `cache` serves stale keys after fresh ones, and
    /// `None` until the keys were fresh again.
    pub fn check(&mut self, cache: &KeyCache, now_ms: u64) -> Option<String> {
        if !matches!(cache.served(now_ms), Served::Stale(_)) {
            self.reported = false;
            return None;
        }
        if self.reported {
            return None;
        }
        self.reported = true;
        let age_s = now_ms.saturating_sub(cache.fetched_at_ms()) / 1000;
        let grace_s = cache.timing().stale_if_error_ms / 1000;
        Some(alloc::format!(
            "serving keys fetched {age_s} s ago, past their cache duration, for up to {grace_s} s after expiry while refreshes fail: {}",
            cache.last_error().unwrap_or("no refresh has succeeded yet")
        ))
    }
}

/// The cache of one fetched document (a key set, a revocation list) with the fetch,
/// refresh, backoff and stale-if-error rules of this module.
#[derive(Clone, Debug)]
pub struct DocumentCache<T> {
    timing: RemoteTiming,
    set: Option<Arc<T>>,
    /// Identifier of the content of `set`, e.g. a digest of the JWKS document.
    version: u64,
    fetched_at_ms: u64,
    in_flight_since_ms: Option<u64>,
    backoff: Backoff,
    last_kid_refetch_ms: Option<u64>,
    refetch_requested: bool,
}

impl<T> DocumentCache<T> {
    /// Creates an empty cache.
    pub fn new(timing: RemoteTiming) -> Self {
        Self {
            timing,
            set: None,
            version: 0,
            fetched_at_ms: 0,
            in_flight_since_ms: None,
            backoff: Backoff::default(),
            last_kid_refetch_ms: None,
            refetch_requested: false,
        }
    }

    /// The timing settings.
    pub fn timing(&self) -> &RemoteTiming {
        &self.timing
    }

    /// Returns what can be served at `now_ms`.
    ///
    /// Past the stale-if-error window, the reason is the last failure. A document that
    /// expired with no failure since it was fetched gives `Nothing` without a reason, so
    /// requests wait for the fetch [`Self::should_fetch`] now asks for.
    pub fn served(&self, now_ms: u64) -> Served<T> {
        match &self.set {
            Some(set) => {
                let expires = self.expires_at_ms();
                if now_ms < expires {
                    Served::Fresh(Arc::clone(set))
                } else if now_ms < expires.saturating_add(self.timing.stale_if_error_ms) {
                    Served::Stale(Arc::clone(set))
                } else {
                    // Without a failure since the last success, nothing has tried to refresh
                    // the document yet (an edge worker that was idle): requests wait for the
                    // fetch that is now due, as before the first fetch.
                    let reason = self.backoff.last_error().map(|error| {
                        let age_s = now_ms.saturating_sub(self.fetched_at_ms) / 1000;
                        alloc::format!("the copy fetched {age_s} s ago expired and could not be refreshed: {error}")
                    });
                    Served::Nothing { reason }
                }
            }
            None => Served::Nothing { reason: self.backoff.last_error().map(String::from) },
        }
    }

    /// The last fetched set, fresh or not.
    pub fn current(&self) -> Option<&T> {
        self.set.as_deref()
    }

    /// The version the adapter gave the current set; 0 before the first set.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the current set was fetched; 0 before the first set.
    pub fn fetched_at_ms(&self) -> u64 {
        self.fetched_at_ms
    }

    /// When the current set stops being fresh.
    pub fn expires_at_ms(&self) -> u64 {
        self.fetched_at_ms.saturating_add(self.timing.cache_duration_ms)
    }

    /// Whether a fetch should start at `now_ms`.
    ///
    /// True when no fetch is in flight (or the one in flight outlived its timeout), the
    /// backoff has passed, and there are no keys, the refresh window has begun, or a
    /// refetch for an unknown `kid` was granted.
    pub fn should_fetch(&self, now_ms: u64) -> bool {
        if let Some(since) = self.in_flight_since_ms {
            if now_ms < since.saturating_add(self.timing.timeout_ms.saturating_mul(2)) {
                return false;
            }
        }
        if self.backoff.backing_off(now_ms) {
            return false;
        }
        if self.set.is_none() || self.refetch_requested {
            return true;
        }
        let ahead = (self.timing.cache_duration_ms / 10).max(MIN_REFRESH_AHEAD_MS);
        now_ms >= self.expires_at_ms().saturating_sub(ahead)
    }

    /// Whether a fetch is in flight.
    pub fn fetching(&self) -> bool {
        self.in_flight_since_ms.is_some()
    }

    /// Records that a fetch started.
    pub fn fetch_started(&mut self, now_ms: u64) {
        self.in_flight_since_ms = Some(now_ms);
        self.refetch_requested = false;
    }

    /// Records a fetched set; `version` identifies its content (see [`KeyCache::version`]).
    pub fn fetch_succeeded(&mut self, set: Arc<T>, version: u64, now_ms: u64) {
        self.in_flight_since_ms = None;
        self.store(set, version, now_ms);
    }

    /// Adopts a set fetched elsewhere (another worker) at `fetched_at_ms`, unless ours was
    /// fetched later. Returns whether it was adopted.
    ///
    /// A set fetched at the same millisecond as ours is adopted: the caller only offers
    /// sets published after the one it holds. A set fetched after the last refetch
    /// request for an unknown `kid` satisfies that request, so the request is dropped.
    pub fn adopt(&mut self, set: Arc<T>, version: u64, fetched_at_ms: u64) -> bool {
        if self.set.is_some() && fetched_at_ms < self.fetched_at_ms {
            return false;
        }
        if self.last_kid_refetch_ms.is_some_and(|requested| fetched_at_ms >= requested) {
            self.refetch_requested = false;
        }
        self.store(set, version, fetched_at_ms);
        true
    }

    fn store(&mut self, set: Arc<T>, version: u64, fetched_at_ms: u64) {
        self.set = Some(set);
        self.version = version;
        self.fetched_at_ms = fetched_at_ms;
        self.backoff.clear();
    }

    /// Records a failed fetch and schedules the retry. `jitter` in `0.0..=1.0` spreads
    /// retries of many workers; it adds up to 20 % to the delay.
    pub fn fetch_failed(&mut self, reason: String, now_ms: u64, jitter: f32) {
        self.in_flight_since_ms = None;
        self.backoff.record_failure(reason, now_ms, jitter);
    }

    /// Adopts a failure another worker recorded at `failed_at_ms`, with its retry time and
    /// failure count, unless our set was fetched after it. Returns whether it was adopted.
    ///
    /// Afterwards this cache behaves as if it had failed itself. With no set it reports
    /// the reason instead of waiting, and it does not fetch before `retry_at_ms`.
    pub fn adopt_failure(&mut self, reason: String, failed_at_ms: u64, retry_at_ms: u64, failures: u32) -> bool {
        if self.set.is_some() && failed_at_ms <= self.fetched_at_ms {
            return false;
        }
        if self.backoff.last_error() == Some(reason.as_str()) && self.backoff.covers(retry_at_ms, failures) {
            return false;
        }
        self.backoff.adopt(Some(reason), retry_at_ms, failures);
        true
    }

    /// The number of failures since the last success.
    pub fn failures(&self) -> u32 {
        self.backoff.failures()
    }

    /// When the next fetch may start after failures; 0 when not backing off.
    pub fn retry_at_ms(&self) -> u64 {
        self.backoff.retry_at_ms()
    }

    /// The last fetch error.
    pub fn last_error(&self) -> Option<&str> {
        self.backoff.last_error()
    }

    /// Asks for a refetch because a token named an unknown `kid`. Granted at most once per
    /// cooldown, and never while backing off from failures; returns whether it was granted.
    pub fn request_kid_refetch(&mut self, now_ms: u64) -> bool {
        if let Some(last) = self.last_kid_refetch_ms {
            if now_ms < last.saturating_add(self.timing.refetch_cooldown_ms) {
                return false;
            }
        }
        if self.backoff.backing_off(now_ms) {
            return false;
        }
        self.last_kid_refetch_ms = Some(now_ms);
        self.refetch_requested = true;
        true
    }

    /// Records a refetch for an unknown `kid` granted elsewhere (another worker) at
    /// `granted_at_ms`, so this cache's cooldown runs from the same time.
    pub fn note_kid_refetch(&mut self, granted_at_ms: u64) {
        if self.last_kid_refetch_ms.is_none_or(|last| last < granted_at_ms) {
            self.last_kid_refetch_ms = Some(granted_at_ms);
        }
    }

    /// When the last refetch for an unknown `kid` was granted, here or elsewhere.
    pub fn last_kid_refetch_ms(&self) -> Option<u64> {
        self.last_kid_refetch_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::KeySetOptions;

    fn timing() -> RemoteTiming {
        RemoteTiming {
            timeout_ms: 1_000,
            cache_duration_ms: 600_000,
            refetch_cooldown_ms: 30_000,
            stale_if_error_ms: 3_600_000,
            pending_timeout_ms: 1_000,
        }
    }

    fn set() -> Arc<KeySet> {
        let document = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
        Arc::new(KeySet::from_json(document, KeySetOptions::default()).unwrap())
    }

    #[test]
    fn empty_cache_fetches_once() {
        let mut cache = KeyCache::new(timing());
        assert!(cache.should_fetch(0));
        cache.fetch_started(0);
        assert!(!cache.should_fetch(10));
        assert!(matches!(cache.served(10), Served::Nothing { reason: None }));
    }

    #[test]
    fn stale_notice_once_per_episode() {
        let mut cache = KeyCache::new(timing());
        let mut notice = StaleNotice::default();
        cache.fetch_started(0);
        cache.fetch_succeeded(set(), 1, 0);
        assert_eq!(notice.check(&cache, 1_000), None, "fresh keys give no warning");

        cache.fetch_started(600_000);
        cache.fetch_failed(String::from("status 503"), 600_000, 0.0);
        let warning = notice.check(&cache, 660_000).expect("stale keys give a warning");
        assert!(warning.contains("fetched 660 s ago"), "{warning}");
        assert!(warning.contains("up to 3600 s"), "{warning}");
        assert!(warning.ends_with("status 503"), "{warning}");
        assert_eq!(notice.check(&cache, 661_000), None, "the warning is given once");

        cache.fetch_started(700_000);
        cache.fetch_succeeded(set(), 2, 700_000);
        assert_eq!(notice.check(&cache, 700_001), None);
        cache.fetch_started(1_300_000);
        cache.fetch_failed(String::from("timed out"), 1_300_000, 0.0);
        let again = notice.check(&cache, 1_300_001).expect("a second stale episode warns again");
        assert!(again.ends_with("timed out"), "{again}");
    }

    #[test]
    fn refresh_window_and_stale_serving() {
        let mut cache = KeyCache::new(timing());
        cache.fetch_started(0);
        cache.fetch_succeeded(set(), 1, 0);
        assert!(!cache.should_fetch(500_000));
        assert!(cache.should_fetch(540_000));
        assert!(matches!(cache.served(599_999), Served::Fresh(_)));
        cache.fetch_started(600_000);
        cache.fetch_failed(String::from("status 503"), 600_000, 0.0);
        assert!(matches!(cache.served(600_001), Served::Stale(_)));
        assert!(matches!(cache.served(4_200_000), Served::Nothing { .. }));
    }

    #[test]
    fn expired_without_failure_waits_for_fetch() {
        let mut cache = KeyCache::new(timing());
        cache.fetch_succeeded(set(), 1, 0);
        // Idle past cache duration + stale-if-error, with no refresh attempted.
        let idle = 600_000 + 3_600_000 + 1;
        assert!(matches!(cache.served(idle), Served::Nothing { reason: None }), "waits instead of failing");
        assert!(cache.should_fetch(idle));
        cache.fetch_started(idle);
        cache.fetch_failed(String::from("status 503"), idle + 10, 0.0);
        match cache.served(idle + 20) {
            Served::Nothing { reason: Some(reason) } => {
                assert_eq!(reason, "the copy fetched 4200 s ago expired and could not be refreshed: status 503");
            }
            other => panic!("expected the failure, got {other:?}"),
        }
        cache.fetch_succeeded(set(), 2, idle + 1_100);
        assert!(matches!(cache.served(idle + 1_100), Served::Fresh(_)));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut cache = KeyCache::new(timing());
        let mut now = 0;
        let mut delays = alloc::vec::Vec::new();
        for _ in 0..12 {
            cache.fetch_started(now);
            cache.fetch_failed(String::from("refused"), now, 0.0);
            delays.push(cache.retry_at_ms() - now);
            now = cache.retry_at_ms();
        }
        assert_eq!(&delays[..4], &[1_000, 2_000, 4_000, 8_000]);
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF_MS);
    }

    #[test]
    fn failure_adopted_from_other_worker() {
        let mut cache = KeyCache::new(timing());
        assert!(cache.adopt_failure(String::from("status 503"), 100, 1_100, 1));
        assert!(matches!(cache.served(200), Served::Nothing { reason: Some(_) }), "reports the failure instead of waiting");
        assert!(!cache.should_fetch(1_000), "keeps the shared backoff");
        assert!(cache.should_fetch(1_100));
        assert!(!cache.adopt_failure(String::from("status 503"), 100, 1_100, 1), "the same failure twice changes nothing");
    }

    #[test]
    fn failure_older_than_keys_ignored() {
        let mut cache = KeyCache::new(timing());
        cache.fetch_succeeded(set(), 1, 500);
        assert!(!cache.adopt_failure(String::from("refused"), 400, 1_400, 1));
        assert!(cache.adopt_failure(String::from("refused"), 600, 1_600, 1));
        assert!(matches!(cache.served(700), Served::Fresh(_)), "fresh keys keep serving");
    }

    #[test]
    fn adopt_same_millisecond_and_clears_refetch() {
        let mut cache = KeyCache::new(timing());
        cache.fetch_succeeded(set(), 1, 1_000);
        assert!(cache.request_kid_refetch(1_000));
        assert!(cache.adopt(set(), 2, 1_000), "a later publication from the same millisecond");
        assert_eq!(cache.version(), 2);
        assert!(!cache.should_fetch(1_000), "the adopted set answers the refetch");
        assert!(!cache.adopt(set(), 3, 900), "an older set is not adopted");
    }

    #[test]
    fn cooldown_shared_through_note() {
        let mut cache = KeyCache::new(timing());
        cache.fetch_succeeded(set(), 1, 0);
        cache.note_kid_refetch(100_000);
        assert!(!cache.request_kid_refetch(110_000));
        assert!(cache.request_kid_refetch(130_000));
        cache.note_kid_refetch(120_000);
        assert_eq!(cache.last_kid_refetch_ms(), Some(130_000), "an older grant never moves the cooldown back");
    }

    #[test]
    fn kid_refetch_limited_by_cooldown() {
        let mut cache = KeyCache::new(timing());
        cache.fetch_started(0);
        cache.fetch_succeeded(set(), 1, 0);
        assert!(cache.request_kid_refetch(100_000));
        assert!(cache.should_fetch(100_000));
        cache.fetch_started(100_000);
        assert!(!cache.request_kid_refetch(110_000));
        assert!(cache.request_kid_refetch(130_000));
    }
}
