//! Remote key sets in Envoy: fetches through a cluster, and sharing between workers.
//!
//! Envoy runs one VM per worker thread. Fetched sets are published in shared data so one
//! fetch serves every worker: `<prefix>jwks` holds the fetch time and the JWKS body,
//! `<prefix>version` the fetch time alone (cheap to poll), and `<prefix>lease` who may
//! fetch next, taken with compare-and-swap so only one worker fetches at a time.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::abi::{self, BufferType, MapType};
use crate::config::RemoteTiming;
use crate::gate::KeyLookup;
use crate::jwks::{KeySet, KeySetOptions, MAX_JWKS_BYTES};
use crate::keycache::{KeyCache, Served};
use crate::policy::RemoteJwks;

/// Where a fetch goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchTarget {
    /// Envoy cluster.
    pub cluster: String,
    /// `:authority`.
    pub authority: String,
    /// `:path` with query.
    pub path: String,
    /// `:scheme`.
    pub scheme: String,
}

impl FetchTarget {
    /// Splits `scheme://authority/path` and pairs it with a cluster.
    pub fn parse(uri: &str, cluster: &str) -> Option<Self> {
        let (scheme, rest) = uri.split_once("://")?;
        let (authority, path) = match rest.find('/') {
            Some(index) => rest.split_at(index),
            None => (rest, "/"),
        };
        if authority.is_empty() || cluster.is_empty() {
            return None;
        }
        Some(Self { cluster: cluster.to_string(), authority: authority.to_string(), path: path.to_string(), scheme: scheme.to_string() })
    }
}

/// The remote keys of one provider in one VM.
pub struct RemoteKeys {
    /// Provider name, for logs and metrics.
    pub name: String,
    cache: KeyCache,
    target: FetchTarget,
    shared_prefix: String,
    seen_version: u64,
    /// Token of the fetch in flight from this VM.
    pub in_flight: Option<u32>,
}

/// A fetch result, for logs and metrics.
pub enum FetchResult {
    /// Keys stored.
    Stored {
        /// Usable keys.
        keys: usize,
        /// Entries skipped, with reasons.
        skipped: Vec<String>,
    },
    /// The fetch failed; last good keys, if any, keep serving.
    Failed(String),
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

impl RemoteKeys {
    /// Creates the state for a provider; `None` when the configuration lacks a cluster.
    pub fn new(root_id: &str, name: &str, remote: &RemoteJwks) -> Result<Self, String> {
        let uri = remote
            .http_uri
            .as_ref()
            .ok_or_else(|| String::from("`remote_jwks.http_uri` is required in Envoy (discovery needs `http_uri` too)"))?;
        let cluster = uri
            .cluster
            .as_deref()
            .ok_or_else(|| String::from("`remote_jwks.http_uri.cluster` is required in Envoy: name the cluster that reaches the key server"))?;
        let target = FetchTarget::parse(&uri.uri, cluster)
            .ok_or_else(|| alloc::format!("`remote_jwks.http_uri.uri` {:?} is not an absolute URL", uri.uri))?;
        Ok(Self {
            name: name.to_string(),
            cache: KeyCache::new(RemoteTiming::of(remote)),
            target,
            shared_prefix: alloc::format!("portcullis/{root_id}/{name}/"),
            seen_version: 0,
            in_flight: None,
        })
    }

    /// The cache timing.
    pub fn timing(&self) -> &RemoteTiming {
        self.cache.timing()
    }

    /// Returns what a request can verify with at `now_ms`.
    pub fn lookup(&self, now_ms: u64) -> KeyLookup<'_> {
        match self.cache.served(now_ms) {
            Served::Fresh(_) | Served::Stale(_) => match self.cache.current() {
                Some(set) => KeyLookup::Ready(set),
                None => KeyLookup::Pending,
            },
            Served::Nothing { reason: None } => KeyLookup::Pending,
            // Before any success, a failure fails requests at once instead of pausing them
            // until a later retry: the endpoint is down and waiting would only add latency.
            Served::Nothing { reason: Some(reason) } => KeyLookup::Unavailable(reason),
        }
    }

    /// Whether stale keys are being served.
    pub fn is_stale(&self, now_ms: u64) -> bool {
        matches!(self.cache.served(now_ms), Served::Stale(_))
    }

    /// Asks for a refetch for an unknown `kid`.
    pub fn request_kid_refetch(&mut self, now_ms: u64) -> bool {
        self.cache.request_kid_refetch(now_ms)
    }

    /// Adopts a newer set another worker published. Returns true when keys changed.
    pub fn sync_shared(&mut self, now_ms: u64) -> bool {
        let version = match abi::shared_data(&alloc::format!("{}version", self.shared_prefix)) {
            Ok(Some((bytes, _))) => read_u64(&bytes).unwrap_or(0),
            _ => return false,
        };
        if version <= self.seen_version {
            return false;
        }
        let Ok(Some((bytes, _))) = abi::shared_data(&alloc::format!("{}jwks", self.shared_prefix)) else { return false };
        let (Some(fetched_at), Some(body)) = (read_u64(&bytes), bytes.get(8..)) else { return false };
        self.seen_version = version.max(fetched_at);
        match KeySet::from_json(body, KeySetOptions::default()) {
            // Keys fetched long ago by another worker still age from their fetch time.
            Ok(set) => self.cache.adopt(Arc::new(set), fetched_at.min(now_ms)),
            Err(_) => false,
        }
    }

    /// Whether this VM should start a fetch now.
    pub fn wants_fetch(&self, now_ms: u64) -> bool {
        self.in_flight.is_none() && self.cache.should_fetch(now_ms)
    }

    /// Takes the fetch lease in shared data. Returns false when another worker holds it.
    /// Hosts without shared data let every worker fetch.
    fn take_lease(&self, now_ms: u64, vm_id: u32) -> bool {
        let key = alloc::format!("{}lease", self.shared_prefix);
        let (value, cas) = match abi::shared_data(&key) {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                // Create the key first: CAS 0 writes unconditionally, so creation itself
                // cannot be exclusive, but every later take compares versions.
                if abi::set_shared_data(&key, &[0; 12], 0).is_err() {
                    return true;
                }
                match abi::shared_data(&key) {
                    Ok(Some(entry)) => entry,
                    _ => return true,
                }
            }
            Err(_) => return true,
        };
        if read_u64(&value).is_some_and(|until| until > now_ms) {
            return false;
        }
        let until = now_ms.saturating_add(self.timing().timeout_ms.saturating_mul(2));
        let mut lease = Vec::with_capacity(12);
        lease.extend_from_slice(&until.to_le_bytes());
        lease.extend_from_slice(&vm_id.to_le_bytes());
        abi::set_shared_data(&key, &lease, cas).is_ok()
    }

    fn release_lease(&self) {
        let key = alloc::format!("{}lease", self.shared_prefix);
        if let Ok(Some((_, cas))) = abi::shared_data(&key) {
            let _ = abi::set_shared_data(&key, &[0; 12], cas);
        }
    }

    /// Starts a fetch if this VM wins the lease. Returns the call token.
    ///
    /// # Errors
    ///
    /// The host's refusal of the call, as a message.
    pub fn start_fetch(&mut self, now_ms: u64, vm_id: u32) -> Result<Option<u32>, String> {
        if !self.take_lease(now_ms, vm_id) {
            return Ok(None);
        }
        let target = &self.target;
        let headers = [
            (":method", "GET"),
            (":path", target.path.as_str()),
            (":authority", target.authority.as_str()),
            (":scheme", target.scheme.as_str()),
            ("accept", "application/jwk-set+json, application/json"),
            ("user-agent", "portcullis"),
        ];
        let timeout = u32::try_from(self.timing().timeout_ms).unwrap_or(u32::MAX);
        self.cache.fetch_started(now_ms);
        match abi::http_call(&target.cluster, &headers, timeout) {
            Ok(token) => {
                self.in_flight = Some(token);
                Ok(Some(token))
            }
            Err(error) => {
                self.release_lease();
                let reason = alloc::format!("the host refused the call to cluster {:?}: {}", target.cluster, error.name());
                self.cache.fetch_failed(reason.clone(), now_ms, jitter(now_ms));
                Err(reason)
            }
        }
    }

    /// Handles the answer to this VM's fetch.
    pub fn finish_fetch(&mut self, header_count: usize, body_size: usize, now_ms: u64) -> FetchResult {
        self.in_flight = None;
        self.release_lease();
        let result = read_response(header_count, body_size).and_then(|body| {
            let set = KeySet::from_json(&body, KeySetOptions::default()).map_err(|error| error.to_string())?;
            Ok((set, body))
        });
        match result {
            Ok((set, body)) => {
                let keys = set.keys().len();
                let skipped = set.skipped().iter().map(ToString::to_string).collect();
                self.cache.fetch_succeeded(Arc::new(set), now_ms);
                self.publish(&body, now_ms);
                FetchResult::Stored { keys, skipped }
            }
            Err(reason) => {
                self.cache.fetch_failed(reason.clone(), now_ms, jitter(now_ms));
                FetchResult::Failed(reason)
            }
        }
    }

    fn publish(&mut self, body: &[u8], now_ms: u64) {
        let mut value = Vec::with_capacity(8 + body.len());
        value.extend_from_slice(&now_ms.to_le_bytes());
        value.extend_from_slice(body);
        let published = abi::set_shared_data(&alloc::format!("{}jwks", self.shared_prefix), &value, 0).is_ok()
            && abi::set_shared_data(&alloc::format!("{}version", self.shared_prefix), &now_ms.to_le_bytes(), 0).is_ok();
        if published {
            self.seen_version = now_ms;
        }
    }
}

/// A spread in `0.0..1.0` for retry delays, from the clock's low bits: workers that failed
/// together retry at different times.
fn jitter(now_ms: u64) -> f32 {
    let nanos = abi::now_nanos().unwrap_or(now_ms);
    (nanos % 1000) as f32 / 1000.0
}

fn read_response(header_count: usize, body_size: usize) -> Result<Vec<u8>, String> {
    if header_count == 0 {
        return Err(String::from("the key server could not be reached or timed out"));
    }
    let headers = abi::header_pairs(MapType::HttpCallResponseHeaders)
        .map_err(|error| alloc::format!("the host could not return the response headers: {}", error.name()))?;
    let status = headers.iter().find(|(name, _)| name == ":status").map(|(_, value)| value.as_str());
    if status != Some("200") {
        return Err(alloc::format!("the key server answered status {}", status.unwrap_or("(none)")));
    }
    if body_size > MAX_JWKS_BYTES {
        return Err(alloc::format!("the key set is {body_size} bytes, more than the maximum of {MAX_JWKS_BYTES}"));
    }
    abi::buffer(BufferType::HttpCallResponseBody, body_size)
        .map_err(|error| alloc::format!("the host could not return the response body: {}", error.name()))
}
