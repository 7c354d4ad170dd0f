//! Remote key sets in Envoy: fetches through a cluster, optionally after OpenID Connect
//! discovery, and sharing between workers.
//!
//! Envoy runs one VM per worker thread, and a paused request can only be resumed by its own
//! worker. Fetch results are therefore published in shared data, which every worker reads
//! on its ticks ([`SharedDocument`]). Per key source (the provider name and a digest of its
//! URL and cluster) the keys under `portcullis/<provider>/<digest>/` are:
//!
//! - `jwks`: fetch time (u64 milliseconds), content version (u64), then the JWKS body;
//! - `version`: a publication number (u64) that grows with every publication, cheap to
//!   poll;
//! - `lease`: until when (u64) which VM (u32) may fetch, taken with compare-and-swap so one
//!   worker fetches at a time;
//! - `failure`: time (u64), next retry time (u64), failure count (u32), then the reason,
//!   so every worker reports the same error and keeps the same backoff;
//! - `kid_refetch`: when (u64) the last refetch for an unknown `kid` was granted, taken
//!   with compare-and-swap so the cooldown holds for all workers together;
//! - `jwks_uri`: the key-set URL found by discovery.
//!
//! All integers are little-endian. A host without shared data makes every worker fetch
//! for itself.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use super::abi::{self, BufferType, MapType, CAS_MISMATCH};
use super::shared::SharedDocument;
use crate::config::{Provider, RemoteTiming};
use crate::gate::KeyLookup;
use crate::jwks::{KeySet, KeySetOptions, MAX_JWKS_BYTES};
use crate::keycache::discovery::{self, MAX_DISCOVERY_BYTES};
use crate::keycache::{KeyCache, Served, StaleNotice};
use crate::policy::{IssuerMatcher, RemoteJwks};

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
    /// Splits `scheme://authority/path` and pairs it with a cluster. A fragment is dropped.
    pub fn parse(uri: &str, cluster: &str) -> Option<Self> {
        let (scheme, rest) = uri.split_once("://")?;
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (authority, path) = match rest.find(['/', '?']) {
            Some(index) => rest.split_at(index),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') { alloc::format!("/{path}") } else { path.to_string() };
        if authority.is_empty() || cluster.is_empty() || !matches!(scheme, "http" | "https") {
            return None;
        }
        Some(Self { cluster: cluster.to_string(), authority: authority.to_string(), path, scheme: scheme.to_string() })
    }
}

/// Where the keys come from.
enum Source {
    /// A fixed key-set URL.
    Jwks(FetchTarget),
    /// A discovery document whose `jwks_uri` names the key set, fetched through the same
    /// cluster.
    Discovery {
        document: FetchTarget,
        uri: String,
        jwks: Option<FetchTarget>,
    },
}

/// The request a fetch in flight made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Discovery,
    Jwks,
}

/// The remote keys of one provider in one VM.
pub struct RemoteKeys {
    /// Provider name, for logs and metrics.
    pub name: String,
    cache: KeyCache,
    source: Source,
    issuers: Vec<IssuerMatcher>,
    shared: SharedDocument,
    in_flight: Option<(u32, Step)>,
    stale_notice: StaleNotice,
}

/// What a finished call led to, for logs and metrics.
pub enum FetchResult {
    /// Keys stored and published.
    Stored {
        /// Usable keys.
        keys: usize,
        /// Entries skipped, with reasons.
        skipped: Vec<String>,
    },
    /// Discovery found the key-set URL; the call for the keys has started with this token.
    Continued(u32),
    /// The fetch failed; last good keys, if any, keep serving.
    Failed(String),
}

pub(super) fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

pub(super) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

/// Returns the first eight bytes of a SHA-256 digest, as a number.
pub(super) fn digest_u64(bytes: &[u8]) -> u64 {
    let digest = Sha256::digest(bytes);
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(first)
}

/// Returns a number in `0.0..=1.0` from the host's randomness (WASI `random_get`), or from the
/// clock when that fails, to spread the retries of workers that failed together.
pub(super) fn jitter() -> f32 {
    let mut bytes = [0u8; 4];
    let value = if getrandom::getrandom(&mut bytes).is_ok() {
        u32::from_le_bytes(bytes)
    } else {
        u32::try_from(abi::now_nanos().unwrap_or(0) % 1_000_000).unwrap_or(0)
    };
    value as f32 / u32::MAX as f32
}

impl RemoteKeys {
    /// Creates the state for a remote provider of the checked gate.
    ///
    /// # Errors
    ///
    /// A message naming the field when the configuration lacks what Envoy needs: a
    /// cluster, an absolute URL, or an issuer to check discovery against.
    pub fn new(provider: &Provider, remote: &RemoteJwks, vm_id: u32) -> Result<Self, String> {
        let (field, uri) = match (&remote.http_uri, &remote.discovery_uri) {
            (Some(uri), _) => ("http_uri", uri),
            (None, Some(uri)) => ("discovery_uri", uri),
            (None, None) => return Err(String::from("set `remote_jwks.http_uri` or `remote_jwks.discovery_uri`")),
        };
        let cluster = uri.cluster.as_deref().ok_or_else(|| {
            alloc::format!("`remote_jwks.{field}.cluster` is required in Envoy: name the cluster that reaches the key server")
        })?;
        let target = FetchTarget::parse(&uri.uri, cluster)
            .ok_or_else(|| alloc::format!("`remote_jwks.{field}.uri` {:?} is not an absolute http or https URL", uri.uri))?;
        let issuers = provider.policy.issuers.clone();
        let source = if remote.http_uri.is_some() {
            Source::Jwks(target)
        } else {
            if issuers.is_empty() && discovery::issuer_of_discovery_uri(&uri.uri).is_none() {
                return Err(alloc::format!(
                    "`remote_jwks.discovery_uri.uri` {:?} does not end in {} and is not an RFC 8414 well-known URL; set `issuer` so the discovery document can be checked",
                    uri.uri,
                    discovery::OIDC_WELL_KNOWN
                ));
            }
            Source::Discovery { document: target, uri: uri.uri.clone(), jwks: None }
        };
        let source_id = digest_u64(alloc::format!("{}\n{}\n{cluster}", field, uri.uri).as_bytes());
        Ok(Self {
            name: provider.name.clone(),
            cache: KeyCache::new(RemoteTiming::of(remote)),
            source,
            issuers,
            shared: SharedDocument::new(alloc::format!("portcullis/{}/{source_id:016x}/", provider.name), "jwks", vm_id),
            in_flight: None,
            stale_notice: StaleNotice::default(),
        })
    }

    /// Returns the cache timing.
    pub fn timing(&self) -> &RemoteTiming {
        self.cache.timing()
    }

    fn key(&self, name: &str) -> String {
        self.shared.key(name)
    }

    /// Returns how long one worker may hold the fetch lease: long enough for every call of
    /// one fetch to time out.
    fn lease_ms(&self) -> u64 {
        let calls = match self.source {
            Source::Jwks(_) => 2,
            Source::Discovery { .. } => 3,
        };
        self.timing().timeout_ms.saturating_mul(calls)
    }

    /// Returns what a request can verify with at `now_ms`.
    pub fn lookup(&self, now_ms: u64) -> KeyLookup<'_> {
        KeyLookup::from_cache(&self.cache, now_ms)
    }

    /// Returns whether stale keys are being served.
    pub fn is_stale(&self, now_ms: u64) -> bool {
        matches!(self.cache.served(now_ms), Served::Stale(_))
    }

    /// Returns a warning the first time stale keys serve after fresh ones did.
    pub fn stale_notice(&mut self, now_ms: u64) -> Option<String> {
        self.stale_notice.check(&self.cache, now_ms)
    }

    /// Adopts a newer set or failure another worker published, and the time of the last
    /// refetch for an unknown `kid`. Returns true when what requests would get changed.
    pub fn sync_shared(&mut self, now_ms: u64) -> bool {
        let changed = self.shared.sync(&mut self.cache, now_ms, |content| {
            let (Some(content_version), Some(body)) = (read_u64(content, 0), content.get(8..)) else { return None };
            Some((content_version, KeySet::from_json(body, KeySetOptions::default()).ok()))
        });
        if let Ok(Some((bytes, _))) = abi::shared_data(&self.key("kid_refetch")) {
            if let Some(granted_at) = read_u64(&bytes, 0) {
                self.cache.note_kid_refetch(granted_at);
            }
        }
        changed
    }

    /// Decides whether a request whose token names a `kid` missing from the keys should
    /// wait for a refetch. Returns true when this call was granted the refetch (at most one
    /// per cooldown across all workers), or when a refetch granted to any worker is still
    /// under way.
    pub fn request_kid_refetch(&mut self, now_ms: u64) -> bool {
        let cooldown = self.timing().refetch_cooldown_ms;
        let key = self.key("kid_refetch");
        let entry = match abi::shared_data(&key) {
            Ok(Some(entry)) => Some(entry),
            Ok(None) => {
                // Create the key first so the grant below is a compare-and-swap.
                if abi::set_shared_data(&key, &0u64.to_le_bytes(), 0).is_err() {
                    None
                } else {
                    abi::shared_data(&key).ok().flatten()
                }
            }
            Err(_) => None,
        };
        let Some((value, cas)) = entry else {
            // No shared data: the cooldown is this worker's own.
            return self.cache.request_kid_refetch(now_ms);
        };
        let granted_at = read_u64(&value, 0).unwrap_or(0);
        self.cache.note_kid_refetch(granted_at);
        let cooling_down = granted_at > 0 && now_ms < granted_at.saturating_add(cooldown);
        if !cooling_down && now_ms >= self.cache.retry_at_ms() {
            match abi::set_shared_data(&key, &now_ms.to_le_bytes(), cas) {
                Ok(()) => return self.cache.request_kid_refetch(now_ms) || self.refetch_under_way(now_ms),
                Err(error) if error == CAS_MISMATCH => {
                    // Another worker was granted it just now.
                    if let Ok(Some((value, _))) = abi::shared_data(&key) {
                        self.cache.note_kid_refetch(read_u64(&value, 0).unwrap_or(0));
                    }
                }
                Err(_) => return self.cache.request_kid_refetch(now_ms),
            }
        }
        self.refetch_under_way(now_ms)
    }

    /// Whether a refetch for an unknown `kid` was granted after the current keys were
    /// fetched and may still be running.
    ///
    /// NOTE: keys fetched in the same millisecond as the grant count as its result, so a
    /// request arriving then fails at once instead of waiting.
    fn refetch_under_way(&self, now_ms: u64) -> bool {
        self.cache.last_kid_refetch_ms().is_some_and(|granted_at| {
            granted_at > self.cache.fetched_at_ms() && now_ms < granted_at.saturating_add(self.lease_ms())
        })
    }

    /// Whether this VM should start a fetch now.
    pub fn wants_fetch(&self, now_ms: u64) -> bool {
        self.in_flight.is_none() && self.cache.should_fetch(now_ms)
    }

    /// Returns the next call of a fetch: the key set when its URL is known, else the
    /// discovery document. A URL another worker discovered is taken from shared data.
    fn next_call(&mut self) -> (FetchTarget, Step) {
        let shared_uri = match &self.source {
            Source::Discovery { jwks: None, .. } => abi::shared_data(&self.key("jwks_uri"))
                .ok()
                .flatten()
                .and_then(|(bytes, _)| String::from_utf8(bytes).ok())
                .filter(|uri| !uri.is_empty()),
            _ => None,
        };
        match &mut self.source {
            Source::Jwks(target) => (target.clone(), Step::Jwks),
            Source::Discovery { document, jwks, .. } => {
                if jwks.is_none() {
                    *jwks = shared_uri.and_then(|uri| FetchTarget::parse(&uri, &document.cluster));
                }
                match jwks {
                    Some(target) => (target.clone(), Step::Jwks),
                    None => (document.clone(), Step::Discovery),
                }
            }
        }
    }

    /// Starts a fetch if this VM wins the lease. Returns the call token.
    ///
    /// # Errors
    ///
    /// The host's refusal of the call, as a message; the failure is recorded.
    pub fn start_fetch(&mut self, now_ms: u64) -> Result<Option<u32>, String> {
        if !self.shared.take_lease(now_ms, self.lease_ms()) {
            return Ok(None);
        }
        self.cache.fetch_started(now_ms);
        let (target, step) = self.next_call();
        self.call(&target, step, now_ms).map(Some)
    }

    fn call(&mut self, target: &FetchTarget, step: Step, now_ms: u64) -> Result<u32, String> {
        let accept = match step {
            Step::Jwks => "application/jwk-set+json, application/json",
            Step::Discovery => "application/json",
        };
        let headers = [
            (":method", "GET"),
            (":path", target.path.as_str()),
            (":authority", target.authority.as_str()),
            (":scheme", target.scheme.as_str()),
            ("accept", accept),
            ("user-agent", "portcullis"),
        ];
        let timeout = u32::try_from(self.timing().timeout_ms).unwrap_or(u32::MAX);
        match abi::http_call(&target.cluster, &headers, &[], timeout) {
            Ok(token) => {
                self.in_flight = Some((token, step));
                Ok(token)
            }
            Err(error) => {
                let reason = alloc::format!("the host refused the call to cluster {:?}: {}", target.cluster, error.name());
                self.fail(reason.clone(), now_ms);
                Err(reason)
            }
        }
    }

    /// Returns whether `token` is this provider's call in flight.
    pub fn owns_call(&self, token: u32) -> bool {
        self.in_flight.is_some_and(|(in_flight, _)| in_flight == token)
    }

    /// Handles the response to this VM's call.
    pub fn finish_fetch(&mut self, header_count: usize, body_size: usize, now_ms: u64) -> FetchResult {
        let Some((_, step)) = self.in_flight.take() else {
            return FetchResult::Failed(String::from("a response arrived for a call that is not in flight"));
        };
        match step {
            Step::Discovery => self.finish_discovery(header_count, body_size, now_ms),
            Step::Jwks => self.finish_jwks(header_count, body_size, now_ms),
        }
    }

    fn finish_discovery(&mut self, header_count: usize, body_size: usize, now_ms: u64) -> FetchResult {
        let Source::Discovery { document, uri, .. } = &self.source else {
            return FetchResult::Failed(String::from("a discovery response arrived for a provider without discovery"));
        };
        let cluster = document.cluster.clone();
        let found = read_response("discovery endpoint", header_count, body_size, MAX_DISCOVERY_BYTES).and_then(|body| {
            let jwks_uri = discovery::jwks_uri_from_discovery(&body, uri, &self.issuers).map_err(|error| error.to_string())?;
            let target = FetchTarget::parse(&jwks_uri, &cluster)
                .ok_or_else(|| alloc::format!("discovery document's `jwks_uri` {jwks_uri:?} cannot be fetched"))?;
            Ok((jwks_uri, target))
        });
        match found {
            Ok((jwks_uri, target)) => {
                let _ = abi::set_shared_data(&self.key("jwks_uri"), jwks_uri.as_bytes(), 0);
                if let Source::Discovery { jwks, .. } = &mut self.source {
                    *jwks = Some(target.clone());
                }
                match self.call(&target, Step::Jwks, now_ms) {
                    Ok(token) => FetchResult::Continued(token),
                    Err(reason) => FetchResult::Failed(reason),
                }
            }
            Err(reason) => {
                self.fail(reason.clone(), now_ms);
                FetchResult::Failed(reason)
            }
        }
    }

    fn finish_jwks(&mut self, header_count: usize, body_size: usize, now_ms: u64) -> FetchResult {
        let result = read_response("key server", header_count, body_size, MAX_JWKS_BYTES).and_then(|body| {
            let set = KeySet::from_json(&body, KeySetOptions::default()).map_err(|error| error.to_string())?;
            Ok((set, body))
        });
        match result {
            Ok((set, body)) => {
                let keys = set.keys().len();
                let skipped = set.skipped().iter().map(ToString::to_string).collect();
                let version = digest_u64(&body);
                self.cache.fetch_succeeded(Arc::new(set), version, now_ms);
                self.shared.publish(&[&version.to_le_bytes(), &body], now_ms);
                self.shared.release_lease();
                FetchResult::Stored { keys, skipped }
            }
            Err(reason) => {
                // The discovered URL may be what broke: the next attempt discovers again.
                if let Source::Discovery { jwks, .. } = &mut self.source {
                    *jwks = None;
                    let _ = abi::set_shared_data(&self.key("jwks_uri"), b"", 0);
                }
                self.fail(reason.clone(), now_ms);
                FetchResult::Failed(reason)
            }
        }
    }

    /// Records a failed fetch, publishes it for the other workers and frees the lease.
    fn fail(&mut self, reason: String, now_ms: u64) {
        self.in_flight = None;
        self.shared.fail(&mut self.cache, reason, now_ms);
    }
}

/// Reads the body, of at most `max_bytes`, of a 200 response. A larger body is rejected
/// before any of it is copied into the VM.
pub(super) fn read_response(server: &str, header_count: usize, body_size: usize, max_bytes: usize) -> Result<Vec<u8>, String> {
    if header_count == 0 {
        return Err(alloc::format!("the {server} could not be reached or reset the connection"));
    }
    let headers = abi::header_pairs(MapType::HttpCallResponseHeaders)
        .map_err(|error| alloc::format!("the host could not return the {server}'s response headers: {}", error.name()))?;
    let status = headers.iter().find(|(name, _)| name == ":status").map(|(_, value)| value.as_str());
    if status != Some("200") {
        let hint = match status {
            Some("504") => " (timed out)",
            Some("503") => " (unreachable or overloaded)",
            _ => "",
        };
        return Err(alloc::format!("the {server} returned status {}{hint}", status.unwrap_or("(none)")));
    }
    if body_size > max_bytes {
        return Err(alloc::format!("the {server}'s response is {body_size} bytes, more than the maximum of {max_bytes}"));
    }
    abi::buffer(BufferType::HttpCallResponseBody, body_size)
        .map_err(|error| alloc::format!("the host could not return the {server}'s response body: {}", error.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_target_split() {
        let target = FetchTarget::parse("https://idp.example.com/a/jwks?x=1#frag", "idp").unwrap();
        assert_eq!(target.authority, "idp.example.com");
        assert_eq!(target.path, "/a/jwks?x=1");
        assert_eq!(target.scheme, "https");
        assert_eq!(FetchTarget::parse("https://idp.example.com", "idp").unwrap().path, "/");
        assert_eq!(FetchTarget::parse("https://idp.example.com?x=1", "idp").unwrap().path, "/?x=1");
        assert!(FetchTarget::parse("https:///jwks", "idp").is_none());
        assert!(FetchTarget::parse("ftp://idp.example.com/jwks", "idp").is_none());
        assert!(FetchTarget::parse("https://idp.example.com/jwks", "").is_none());
    }
}
