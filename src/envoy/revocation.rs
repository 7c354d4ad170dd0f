//! Revocation lists in Envoy: fetched through a cluster on ticks, by one worker at a time,
//! and shared with the other workers through shared data ([`SharedDocument`]), as key sets
//! are (`keys.rs`).
//!
//! Per list source (the provider name and a digest of its URL and cluster) the keys under
//! `portcullis/<provider>/<digest>/revocation/` are:
//!
//! - `list`: fetch time (u64 milliseconds), then the list document;
//! - `version`: a publication number (u64) that grows with every publication;
//! - `lease`: until when (u64) which VM (u32) may fetch, taken with compare-and-swap;
//! - `failure`: time (u64), next retry time (u64), failure count (u32), then the reason.
//!
//! Timing, stale-if-error and backoff are [`DocumentCache`]'s, as for key sets.

use alloc::string::String;
use alloc::sync::Arc;

use super::abi;
use super::keys::{digest_u64, read_response, FetchTarget};
use super::shared::SharedDocument;
use crate::config::{Provider, RemoteTiming, RevocationListSettings};
use crate::gate::ListLookup;
use crate::keycache::DocumentCache;
use crate::revocation::{RevocationList, MAX_LIST_BYTES};

/// The revocation list of one provider in one VM.
pub struct RemoteList {
    /// Provider name, for logs and metrics.
    pub name: String,
    cache: DocumentCache<RevocationList>,
    target: FetchTarget,
    shared: SharedDocument,
    in_flight: Option<u32>,
}

impl RemoteList {
    /// Creates the state for a provider's list.
    ///
    /// # Errors
    ///
    /// A message naming the field when `cluster` is missing or the URL cannot be called.
    pub fn new(provider: &Provider, settings: &RevocationListSettings, vm_id: u32) -> Result<Self, String> {
        let cluster = settings.cluster.as_deref().ok_or_else(|| {
            String::from("`revocation_list.http_uri.cluster` is required in Envoy: name the cluster that reaches the list")
        })?;
        let target = FetchTarget::parse(&settings.uri, cluster)
            .ok_or_else(|| alloc::format!("`revocation_list.http_uri.uri` {:?} is not an absolute http or https URL", settings.uri))?;
        let source_id = digest_u64(alloc::format!("revocation\n{}\n{cluster}", settings.uri).as_bytes());
        Ok(Self {
            name: provider.name.clone(),
            cache: DocumentCache::new(settings.timing),
            target,
            shared: SharedDocument::new(alloc::format!("portcullis/{}/{source_id:016x}/revocation/", provider.name), "list", vm_id),
            in_flight: None,
        })
    }

    /// Returns the fetch timing.
    pub fn timing(&self) -> &RemoteTiming {
        self.cache.timing()
    }

    fn lease_ms(&self) -> u64 {
        self.timing().timeout_ms.saturating_mul(2)
    }

    /// Returns the list a request can be checked against at `now_ms`.
    pub fn lookup(&self, now_ms: u64) -> ListLookup<'_> {
        ListLookup::from_cache(&self.cache, now_ms)
    }

    /// Adopts a newer list or failure another worker published. Returns true when what
    /// requests would get changed.
    pub fn sync_shared(&mut self, now_ms: u64) -> bool {
        self.shared.sync(&mut self.cache, now_ms, |body| Some((digest_u64(body), RevocationList::from_json(body).ok())))
    }

    /// Whether this VM should start a fetch now.
    pub fn wants_fetch(&self, now_ms: u64) -> bool {
        self.in_flight.is_none() && self.cache.should_fetch(now_ms)
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
        let headers = [
            (":method", "GET"),
            (":path", self.target.path.as_str()),
            (":authority", self.target.authority.as_str()),
            (":scheme", self.target.scheme.as_str()),
            ("accept", "application/json"),
            ("user-agent", "portcullis"),
        ];
        let timeout = u32::try_from(self.timing().timeout_ms).unwrap_or(u32::MAX);
        match abi::http_call(&self.target.cluster, &headers, &[], timeout) {
            Ok(token) => {
                self.in_flight = Some(token);
                Ok(Some(token))
            }
            Err(error) => {
                let reason = alloc::format!("the host refused the call to cluster {:?}: {}", self.target.cluster, error.name());
                self.fail(reason.clone(), now_ms);
                Err(reason)
            }
        }
    }

    /// Returns whether `token` is this list's call in flight.
    pub fn owns_call(&self, token: u32) -> bool {
        self.in_flight == Some(token)
    }

    /// Handles the response to this VM's call. Returns the number of listed identifiers.
    ///
    /// # Errors
    ///
    /// Why the response was unusable; the failure is recorded and published.
    pub fn finish_fetch(&mut self, header_count: usize, body_size: usize, now_ms: u64) -> Result<usize, String> {
        self.in_flight = None;
        let result = read_response("revocation list server", header_count, body_size, MAX_LIST_BYTES)
            .and_then(|body| RevocationList::from_json(&body).map(|list| (list, body)));
        match result {
            Ok((list, body)) => {
                let entries = list.len();
                let version = digest_u64(&body);
                self.cache.fetch_succeeded(Arc::new(list), version, now_ms);
                self.shared.publish(&[&body], now_ms);
                self.shared.release_lease();
                Ok(entries)
            }
            Err(reason) => {
                self.fail(reason.clone(), now_ms);
                Err(reason)
            }
        }
    }

    fn fail(&mut self, reason: String, now_ms: u64) {
        self.in_flight = None;
        self.shared.fail(&mut self.cache, reason, now_ms);
    }
}
