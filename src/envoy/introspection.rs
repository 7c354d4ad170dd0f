//! Token introspection in Envoy: calls through a cluster, responses cached per worker and
//! shared with the other workers through shared data.
//!
//! Each worker keeps its own [`IntrospectionCache`] and calls the endpoint at most once at
//! a time per token. A parsed response is also published in shared data, so every worker
//! can use the response to a call that another worker made. Envoy's shared data cannot
//! delete keys, so responses are stored in a fixed set of slots: under
//! `portcullis/<provider>/<digest>/introspection/`
//!
//! - `slot/<n>` for `n` in `0..256`, chosen by the first byte of the token digest: up to
//!   [`SLOT_ENTRIES`] responses, each the token digest (32 bytes), the fresh-until and
//!   usable-until times (u64 milliseconds), the body length (u32) and the body. Expired
//!   entries are dropped on every write, and the oldest entry makes room for a new one;
//! - `health`: the time of the last call that changed the endpoint's state (u64), the next
//!   retry time (u64), the failure count (u32) and the reason. A failed call writes it, so
//!   every worker backs off together. A successful call that follows a failure writes it
//!   with count 0, so every worker stops backing off. A worker adopts the record only when
//!   it is newer than the last failure and success the worker has seen ([`EndpointHealth`]).
//!
//! Responses larger than [`MAX_SHARED_ANSWER_BYTES`] stay in the worker that fetched them.
//! A lost compare-and-swap race only means another worker calls again.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::abi::{self, LogLevel, CAS_MISMATCH};
use super::keys::{digest_u64, jitter, read_response, read_u32, read_u64, FetchTarget};
use super::metrics::{self, Counters};
use crate::config::Provider;
use crate::gate::IntrospectionLookup;
use crate::idmap::IdMap;
use crate::introspection::{
    self, next_step, Cached, EndpointHealth, IntrospectionAnswer, IntrospectionCache, IntrospectionSettings, NextStep, TokenDigest,
    MAX_RESPONSE_BYTES,
};
use crate::keycache::MAX_BACKOFF_MS;

/// Maximum number of responses stored per shared slot.
pub const SLOT_ENTRIES: usize = 8;

/// Largest response body published in shared data, in bytes; 256 slots × 8 entries × 4 KiB
/// bound the shared data of one provider at 8 MiB.
pub const MAX_SHARED_ANSWER_BYTES: usize = 4 * 1024;

/// Attempts at a compare-and-swap write before giving up.
const CAS_ATTEMPTS: usize = 4;

/// Bytes before the body of a shared entry.
const ENTRY_HEADER_BYTES: usize = 32 + 8 + 8 + 4;

/// Bytes before the reason of the shared `health` record.
const HEALTH_HEADER_BYTES: usize = 8 + 8 + 4;

/// Longest backoff a shared record may announce, past the time of its call: the longest
/// delay with its 20 % jitter. A record that claims more is not trusted.
const MAX_SHARED_BACKOFF_MS: u64 = MAX_BACKOFF_MS + MAX_BACKOFF_MS / 5;

/// The introspection state of one provider in one VM.
pub struct Introspector {
    /// Provider name, for logs and metrics.
    pub name: String,
    index: usize,
    settings: IntrospectionSettings,
    target: FetchTarget,
    cache: IntrospectionCache,
    health: EndpointHealth,
    /// Calls in flight: the cache key of the token, to the call token and the start time.
    in_flight: IdMap<introspection::Key, (u32, u64)>,
    shared_prefix: String,
    /// Counters this state increments itself, for calls the host rejects: the root never
    /// sees those calls finish.
    counters: Counters,
}

/// The shared `health` record read back.
struct SharedHealth<'a> {
    at_ms: u64,
    retry_at_ms: u64,
    failures: u32,
    reason: &'a [u8],
}

impl<'a> SharedHealth<'a> {
    fn read(value: &'a [u8]) -> Option<Self> {
        Some(Self {
            at_ms: read_u64(value, 0)?,
            retry_at_ms: read_u64(value, 8)?,
            failures: read_u32(value, 16)?,
            reason: value.get(HEALTH_HEADER_BYTES..)?,
        })
    }

    fn encode(at_ms: u64, retry_at_ms: u64, failures: u32, reason: &str) -> Vec<u8> {
        let mut value = Vec::with_capacity(HEALTH_HEADER_BYTES + reason.len());
        value.extend_from_slice(&at_ms.to_le_bytes());
        value.extend_from_slice(&retry_at_ms.to_le_bytes());
        value.extend_from_slice(&failures.to_le_bytes());
        value.extend_from_slice(reason.as_bytes());
        value
    }
}

/// A shared entry read back: the digest, fresh-until, usable-until and body.
struct SharedEntry<'a> {
    digest: &'a [u8],
    fresh_until_ms: u64,
    usable_until_ms: u64,
    body: &'a [u8],
}

fn shared_entries(value: &[u8]) -> Vec<SharedEntry<'_>> {
    let mut entries = Vec::new();
    let mut at = 0;
    while let (Some(digest), Some(fresh), Some(usable), Some(length)) =
        (value.get(at..at + 32), read_u64(value, at + 32), read_u64(value, at + 40), read_u32(value, at + 48))
    {
        let start = at + ENTRY_HEADER_BYTES;
        let Some(body) = usize::try_from(length).ok().and_then(|length| value.get(start..start.checked_add(length)?)) else { break };
        entries.push(SharedEntry { digest, fresh_until_ms: fresh, usable_until_ms: usable, body });
        at = start + body.len();
    }
    entries
}

fn encode_entry(out: &mut Vec<u8>, digest: &[u8], fresh_until_ms: u64, usable_until_ms: u64, body: &[u8]) {
    out.extend_from_slice(digest);
    out.extend_from_slice(&fresh_until_ms.to_le_bytes());
    out.extend_from_slice(&usable_until_ms.to_le_bytes());
    out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(body);
}

/// A finished call, for logs and metrics.
pub enum CallResult {
    /// The endpoint returned a valid response, and `active` is its verdict.
    Answered {
        /// Whether the token is active.
        active: bool,
    },
    /// The call failed, so requests fail closed unless a stale response may serve.
    Failed(String),
}

/// Returns a random key for the cache's keyed hash. Without a random source the clock is
/// used instead. A client that guessed it could crowd the map of calls in flight, but
/// reaching a cached response still takes the token.
fn random_key() -> [u8; 16] {
    let mut key = [0u8; 16];
    if getrandom::getrandom(&mut key).is_err() {
        let now = abi::now_nanos().unwrap_or(0).to_le_bytes();
        for (byte, clock) in key.iter_mut().zip(now) {
            *byte = clock;
        }
    }
    key
}

impl Introspector {
    /// Creates the state for provider `index`.
    ///
    /// # Errors
    ///
    /// A message naming the field when `cluster` is missing or the URL cannot be called.
    pub fn new(provider: &Provider, index: usize, settings: &IntrospectionSettings) -> Result<Self, String> {
        let cluster = settings.cluster.as_deref().ok_or_else(|| {
            String::from("`introspection.http_uri.cluster` is required in Envoy: name the cluster that reaches the endpoint")
        })?;
        let target = FetchTarget::parse(&settings.uri, cluster)
            .ok_or_else(|| alloc::format!("`introspection.http_uri.uri` {:?} is not an absolute http or https URL", settings.uri))?;
        let source_id = digest_u64(alloc::format!("introspection\n{}\n{cluster}\n{}", settings.uri, settings.client_id).as_bytes());
        Ok(Self {
            name: provider.name.clone(),
            index,
            settings: settings.clone(),
            target,
            cache: IntrospectionCache::default().with_hash_key(random_key()),
            health: EndpointHealth::default(),
            in_flight: IdMap::default(),
            shared_prefix: alloc::format!("portcullis/{}/{source_id:016x}/introspection/", provider.name),
            counters: Counters::default(),
        })
    }

    /// Returns how long a request may wait for a response, in milliseconds: twice the
    /// call timeout, by when the call has timed out for sure.
    pub fn pending_timeout_ms(&self) -> u64 {
        self.settings.timeout_ms.saturating_mul(2)
    }

    fn key(&self, name: &str) -> String {
        alloc::format!("{}{name}", self.shared_prefix)
    }

    fn slot_key(&self, digest: &TokenDigest) -> String {
        self.key(&alloc::format!("slot/{}", digest[0]))
    }

    /// Returns the response for `token` at `now_ms`, or starts a call and returns
    /// [`IntrospectionLookup::Pending`]. A started call's token is pushed to `started`.
    pub fn lookup(&mut self, token: &str, now_ms: u64, started: &mut Vec<(u32, TokenDigest)>) -> IntrospectionLookup {
        let digest = crate::gate::TokenCache::digest(token);
        let mut cached = self.cache.get(self.index, &digest, now_ms);
        if !matches!(cached, Cached::Fresh(_)) {
            if self.adopt_shared_answer(&digest, now_ms) {
                cached = self.cache.get(self.index, &digest, now_ms);
            }
            // A fresh response is used whatever the endpoint's state.
            self.adopt_shared_health();
        }
        match next_step(cached, &self.health, now_ms) {
            NextStep::Use(answer) => IntrospectionLookup::Answer(answer),
            NextStep::Fail(reason) => IntrospectionLookup::Unavailable(reason),
            NextStep::Call => {
                // A call that outlived twice its timeout is given up and made again.
                let running = self.in_flight.get(&self.cache.key(self.index, &digest)).is_some_and(|(_, since)| now_ms < since.saturating_add(self.pending_timeout_ms()));
                if running {
                    return IntrospectionLookup::Pending;
                }
                match self.call(token, &digest, now_ms) {
                    Ok(call) => {
                        started.push((call, digest));
                        IntrospectionLookup::Pending
                    }
                    Err(reason) => IntrospectionLookup::Unavailable(reason),
                }
            }
        }
    }

    fn call(&mut self, token: &str, digest: &TokenDigest, now_ms: u64) -> Result<u32, String> {
        let request = self.settings.request(token);
        let mut headers: Vec<(&str, &str)> = alloc::vec![
            (":method", "POST"),
            (":path", self.target.path.as_str()),
            (":authority", self.target.authority.as_str()),
            (":scheme", self.target.scheme.as_str()),
            ("user-agent", "portcullis"),
        ];
        headers.extend(request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())));
        let timeout = u32::try_from(self.settings.timeout_ms).unwrap_or(u32::MAX);
        match abi::http_call(&self.target.cluster, &headers, request.body.as_bytes(), timeout) {
            Ok(call) => {
                self.in_flight.insert(self.cache.key(self.index, digest), (call, now_ms));
                Ok(call)
            }
            Err(error) => {
                let reason = alloc::format!("the host refused the call to cluster {:?}: {}", self.target.cluster, error.name());
                // The root logs and counts only calls that finish, and this one never started.
                self.counters.increment(&metrics::provider(&self.name, "introspection_failed"));
                if LogLevel::Warn >= abi::log_level() {
                    let _ = abi::log(LogLevel::Warn, &alloc::format!("portcullis: provider {}: introspection failed: {reason}", self.name));
                }
                self.fail(reason.clone(), now_ms);
                Err(reason)
            }
        }
    }

    /// Returns whether `call` is this provider's call in flight for `digest`.
    pub fn owns_call(&self, call: u32, digest: &TokenDigest) -> bool {
        self.in_flight.get(&self.cache.key(self.index, digest)).is_some_and(|(in_flight, _)| *in_flight == call)
    }

    /// Handles the response to the call for `digest`.
    pub fn finish_call(&mut self, digest: &TokenDigest, header_count: usize, body_size: usize, now_ms: u64) -> CallResult {
        self.in_flight.remove(&self.cache.key(self.index, digest));
        let result = read_response("introspection endpoint", header_count, body_size, MAX_RESPONSE_BYTES)
            .and_then(|body| introspection::parse_response(&body).map(|answer| (answer, body)));
        match result {
            Ok((answer, body)) => {
                let active = answer.is_active();
                let answer = Arc::new(answer);
                self.health.record_success(now_ms);
                self.publish_recovery(now_ms);
                self.cache.insert(self.index, *digest, Arc::clone(&answer), now_ms, &self.settings);
                self.publish(digest, &answer, &body, now_ms);
                CallResult::Answered { active }
            }
            Err(reason) => {
                self.fail(reason.clone(), now_ms);
                CallResult::Failed(reason)
            }
        }
    }

    /// Drops cached responses no longer usable at `now_ms`.
    pub fn purge(&mut self, now_ms: u64) {
        self.cache.purge(now_ms);
    }

    fn fail(&mut self, reason: String, now_ms: u64) {
        self.health.record_failure(reason.clone(), now_ms, jitter());
        let value = SharedHealth::encode(now_ms, self.health.retry_at_ms(), self.health.failures(), &reason);
        let _ = abi::set_shared_data(&self.key("health"), &value, 0);
    }

    /// Publishes that the endpoint returned a response at `now_ms`, when the shared
    /// record still contains an earlier failure. The compare-and-swap keeps a failure that
    /// another worker recorded meanwhile.
    fn publish_recovery(&self, now_ms: u64) {
        let key = self.key("health");
        let Ok(Some((bytes, cas))) = abi::shared_data(&key) else { return };
        let Some(record) = SharedHealth::read(&bytes) else { return };
        if record.failures == 0 || record.at_ms > now_ms {
            return;
        }
        let _ = abi::set_shared_data(&key, &SharedHealth::encode(now_ms, 0, 0, ""), cas);
    }

    /// Adopts the failure or recovery another worker published, when it is newer than
    /// what this worker has recorded.
    fn adopt_shared_health(&mut self) {
        let Ok(Some((bytes, _))) = abi::shared_data(&self.key("health")) else { return };
        let Some(record) = SharedHealth::read(&bytes) else { return };
        if record.failures == 0 {
            self.health.adopt_success(record.at_ms);
            return;
        }
        let retry_at_ms = record.retry_at_ms.min(record.at_ms.saturating_add(MAX_SHARED_BACKOFF_MS));
        let reason = String::from_utf8_lossy(record.reason);
        self.health.adopt_failure(&reason, record.at_ms, retry_at_ms, record.failures);
    }

    /// Copies a response another worker published into this worker's cache. Returns whether
    /// one was found.
    fn adopt_shared_answer(&mut self, digest: &TokenDigest, now_ms: u64) -> bool {
        let Ok(Some((value, _))) = abi::shared_data(&self.slot_key(digest)) else { return false };
        let Some(entry) = shared_entries(&value).into_iter().find(|entry| entry.digest == digest && now_ms < entry.usable_until_ms) else {
            return false;
        };
        match introspection::parse_response(entry.body) {
            Ok(answer) => {
                self.cache.insert_until(self.index, *digest, Arc::new(answer), entry.fresh_until_ms, entry.usable_until_ms);
                true
            }
            Err(_) => false,
        }
    }

    /// Publishes a response in its slot with compare-and-swap, dropping expired entries and,
    /// when the slot is full, the one that expires first.
    fn publish(&self, digest: &TokenDigest, answer: &IntrospectionAnswer, body: &[u8], now_ms: u64) {
        if body.len() > MAX_SHARED_ANSWER_BYTES {
            return;
        }
        let fresh_until_ms = introspection::fresh_until_ms(answer, now_ms, &self.settings);
        let usable_until_ms = fresh_until_ms.saturating_add(self.settings.stale_if_error_ms);
        let key = self.slot_key(digest);
        for _ in 0..CAS_ATTEMPTS {
            let (stored, cas) = match abi::shared_data(&key) {
                Ok(Some((value, cas))) => (value, cas),
                Ok(None) => (Vec::new(), 0),
                Err(_) => return,
            };
            let mut other_entries: Vec<SharedEntry<'_>> = shared_entries(&stored)
                .into_iter()
                .filter(|entry| entry.digest != digest && now_ms < entry.usable_until_ms)
                .collect();
            // Room for the new entry: drop the entries that expire first. A slot contains at
            // most SLOT_ENTRIES entries, so a scan costs less code than a sort.
            while other_entries.len() >= SLOT_ENTRIES {
                let Some(first) = other_entries.iter().enumerate().min_by_key(|(_, entry)| entry.usable_until_ms).map(|(at, _)| at) else { break };
                other_entries.swap_remove(first);
            }
            let mut value = Vec::new();
            for entry in &other_entries {
                encode_entry(&mut value, entry.digest, entry.fresh_until_ms, entry.usable_until_ms, entry.body);
            }
            encode_entry(&mut value, digest, fresh_until_ms, usable_until_ms, body);
            match abi::set_shared_data(&key, &value, cas) {
                Err(error) if error == CAS_MISMATCH => continue,
                _ => return,
            }
        }
    }
}
