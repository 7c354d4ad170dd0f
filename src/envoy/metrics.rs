//! Counter names and their ids in the host.
//!
//! Every name starts with `portcullis.`; Envoy files stats defined by Wasm modules under
//! its `wasmcustom` namespace. Provider names are part of the metric names, since the
//! proxy-wasm ABI has no tags. Names are defined on first use. Because the codes are a
//! fixed list, a configuration with P providers defines at most about 40 × (P + 1)
//! counters.

use crate::idmap::IdMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use super::abi::{self, MetricType};
use crate::error::ErrorCode;

/// Requests let through, whatever the reason.
pub const ALLOWED: &str = "portcullis.allowed";
/// Requests denied with a local reply.
pub const DENIED: &str = "portcullis.denied";
/// CORS preflights let through without a token (`bypass_cors_preflight`).
pub const CORS_PREFLIGHT_BYPASSED: &str = "portcullis.cors_preflight_bypassed";
/// Tokens found in the verified-token cache.
pub const JWT_CACHE_HIT: &str = "portcullis.jwt_cache_hit";
/// Tokens looked up in the cache and not found, so verified in full.
pub const JWT_CACHE_MISS: &str = "portcullis.jwt_cache_miss";

/// `portcullis.denied.<code>`: denials by error code.
pub fn denied_code(code: ErrorCode) -> String {
    alloc::format!("portcullis.denied.{}", code.as_str())
}

/// `portcullis.provider.<name>.<event>`, e.g. `allowed`, `jwks_fetch_success`.
pub fn provider(name: &str, event: &str) -> String {
    alloc::format!("portcullis.provider.{name}.{event}")
}

/// `portcullis.provider.<name>.denied.<code>`.
pub fn provider_denied_code(name: &str, code: ErrorCode) -> String {
    alloc::format!("portcullis.provider.{name}.denied.{}", code.as_str())
}

/// Counter ids by name, defined in the host on first use.
#[derive(Default)]
pub struct Counters {
    ids: IdMap<String, Option<u32>>,
}

impl Counters {
    /// Adds `count` to a counter. A host without metrics is ignored.
    pub fn add(&mut self, name: &str, count: u64) {
        if count == 0 {
            return;
        }
        let id = match self.ids.get(name) {
            Some(id) => *id,
            None => {
                let id = abi::define_metric(MetricType::Counter, name).ok();
                self.ids.insert(name.to_string(), id);
                id
            }
        };
        if let Some(id) = id {
            let _ = abi::increment_metric(id, i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Adds one to a counter.
    pub fn increment(&mut self, name: &str) {
        self.add(name, 1);
    }
}

/// One counter whose host id is looked up on first use and kept, for the counters that
/// change on most requests: [`Counters`] finds an id by comparing names.
pub struct Counter {
    name: String,
    /// `None` before first use; then the id, or `None` when the host has no metrics.
    id: Option<Option<u32>>,
}

impl Counter {
    /// Creates a counter that is defined in the host when first added to.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), id: None }
    }

    /// Adds `count`, as [`Counters::add`] does.
    pub fn add(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        let name = &self.name;
        let id = *self.id.get_or_insert_with(|| abi::define_metric(MetricType::Counter, name).ok());
        if let Some(id) = id {
            let _ = abi::increment_metric(id, i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// Adds one.
    pub fn increment(&mut self) {
        self.add(1);
    }
}

/// The counters a decision changes: the totals and each provider's `allowed`.
pub struct DecisionCounters {
    /// [`ALLOWED`].
    pub allowed: Counter,
    /// [`DENIED`].
    pub denied: Counter,
    /// [`CORS_PREFLIGHT_BYPASSED`].
    pub cors_preflight_bypassed: Counter,
    /// [`JWT_CACHE_HIT`].
    pub jwt_cache_hit: Counter,
    /// [`JWT_CACHE_MISS`].
    pub jwt_cache_miss: Counter,
    /// `portcullis.provider.<name>.allowed`, by provider index.
    pub provider_allowed: Vec<Counter>,
}

impl Default for DecisionCounters {
    fn default() -> Self {
        Self {
            allowed: Counter::new(ALLOWED),
            denied: Counter::new(DENIED),
            cors_preflight_bypassed: Counter::new(CORS_PREFLIGHT_BYPASSED),
            jwt_cache_hit: Counter::new(JWT_CACHE_HIT),
            jwt_cache_miss: Counter::new(JWT_CACHE_MISS),
            provider_allowed: Vec::new(),
        }
    }
}
