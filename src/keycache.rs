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
//! - failed fetches are retried with exponential backoff (1 s doubling to 5 min) plus up
//!   to 20 % jitter supplied by the caller.

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

/// What the cache can serve now.
#[derive(Clone, Debug)]
pub enum Served {
    /// A set within its cache duration.
    Fresh(Arc<KeySet>),
    /// A set past its cache duration, inside the stale-if-error window.
    Stale(Arc<KeySet>),
    /// Nothing yet, or nothing any more; `reason` says why, for logs and replies.
    Nothing {
        /// The last fetch error, if any.
        reason: Option<String>,
    },
}

/// The cache of one provider's keys.
#[derive(Clone, Debug)]
pub struct KeyCache {
    timing: RemoteTiming,
    set: Option<Arc<KeySet>>,
    fetched_at_ms: u64,
    in_flight_since_ms: Option<u64>,
    failures: u32,
    last_error: Option<String>,
    retry_at_ms: u64,
    last_kid_refetch_ms: Option<u64>,
    refetch_requested: bool,
}

impl KeyCache {
    /// Creates an empty cache.
    pub fn new(timing: RemoteTiming) -> Self {
        Self {
            timing,
            set: None,
            fetched_at_ms: 0,
            in_flight_since_ms: None,
            failures: 0,
            last_error: None,
            retry_at_ms: 0,
            last_kid_refetch_ms: None,
            refetch_requested: false,
        }
    }

    /// The timing settings.
    pub fn timing(&self) -> &RemoteTiming {
        &self.timing
    }

    /// Returns what can be served at `now_ms`.
    pub fn served(&self, now_ms: u64) -> Served {
        match &self.set {
            Some(set) => {
                let expires = self.expires_at_ms();
                if now_ms < expires {
                    Served::Fresh(Arc::clone(set))
                } else if now_ms < expires.saturating_add(self.timing.stale_if_error_ms) {
                    Served::Stale(Arc::clone(set))
                } else {
                    Served::Nothing { reason: Some(self.last_error.clone().unwrap_or_else(|| String::from("the key set expired and could not be refreshed"))) }
                }
            }
            None => Served::Nothing { reason: self.last_error.clone() },
        }
    }

    /// The last fetched set, fresh or not.
    pub fn current(&self) -> Option<&KeySet> {
        self.set.as_deref()
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
        if now_ms < self.retry_at_ms {
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

    /// Records a fetched set.
    pub fn fetch_succeeded(&mut self, set: Arc<KeySet>, now_ms: u64) {
        self.set = Some(set);
        self.fetched_at_ms = now_ms;
        self.in_flight_since_ms = None;
        self.failures = 0;
        self.last_error = None;
        self.retry_at_ms = 0;
    }

    /// Adopts a set fetched elsewhere (another worker), if it is newer than ours.
    pub fn adopt(&mut self, set: Arc<KeySet>, fetched_at_ms: u64) -> bool {
        if self.set.is_some() && fetched_at_ms <= self.fetched_at_ms {
            return false;
        }
        self.set = Some(set);
        self.fetched_at_ms = fetched_at_ms;
        self.failures = 0;
        self.last_error = None;
        self.retry_at_ms = 0;
        true
    }

    /// Records a failed fetch and schedules the retry. `jitter` in `0.0..=1.0` spreads
    /// retries of many workers; it adds up to 20 % to the delay.
    pub fn fetch_failed(&mut self, reason: String, now_ms: u64, jitter: f32) {
        self.in_flight_since_ms = None;
        self.failures = self.failures.saturating_add(1);
        self.last_error = Some(reason);
        let exponent = self.failures.saturating_sub(1).min(20);
        let base = MIN_BACKOFF_MS.saturating_mul(1u64 << exponent).min(MAX_BACKOFF_MS);
        let jitter = f64::from(jitter.clamp(0.0, 1.0)) * 0.2;
        let extra = (base as f64 * jitter) as u64;
        self.retry_at_ms = now_ms.saturating_add(base).saturating_add(extra);
    }

    /// The number of failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The last fetch error.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Asks for a refetch because a token named an unknown `kid`. Granted at most once per
    /// cooldown, and never while backing off from failures; returns whether it was granted.
    pub fn request_kid_refetch(&mut self, now_ms: u64) -> bool {
        if let Some(last) = self.last_kid_refetch_ms {
            if now_ms < last.saturating_add(self.timing.refetch_cooldown_ms) {
                return false;
            }
        }
        if now_ms < self.retry_at_ms {
            return false;
        }
        self.last_kid_refetch_ms = Some(now_ms);
        self.refetch_requested = true;
        true
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
    fn refresh_window_and_stale_serving() {
        let mut cache = KeyCache::new(timing());
        cache.fetch_started(0);
        cache.fetch_succeeded(set(), 0);
        assert!(!cache.should_fetch(500_000));
        assert!(cache.should_fetch(540_000));
        assert!(matches!(cache.served(599_999), Served::Fresh(_)));
        cache.fetch_started(600_000);
        cache.fetch_failed(String::from("status 503"), 600_000, 0.0);
        assert!(matches!(cache.served(600_001), Served::Stale(_)));
        assert!(matches!(cache.served(4_200_000), Served::Nothing { .. }));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut cache = KeyCache::new(timing());
        let mut now = 0;
        let mut delays = alloc::vec::Vec::new();
        for _ in 0..12 {
            cache.fetch_started(now);
            cache.fetch_failed(String::from("refused"), now, 0.0);
            delays.push(cache.retry_at_ms - now);
            now = cache.retry_at_ms;
        }
        assert_eq!(&delays[..4], &[1_000, 2_000, 4_000, 8_000]);
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF_MS);
    }

    #[test]
    fn kid_refetch_limited_by_cooldown() {
        let mut cache = KeyCache::new(timing());
        cache.fetch_started(0);
        cache.fetch_succeeded(set(), 0);
        assert!(cache.request_kid_refetch(100_000));
        assert!(cache.should_fetch(100_000));
        cache.fetch_started(100_000);
        assert!(!cache.request_kid_refetch(110_000));
        assert!(cache.request_kid_refetch(130_000));
    }
}
