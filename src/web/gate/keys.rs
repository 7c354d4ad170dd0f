//! The remote keys of one provider in an edge worker: which fetch is due, what a finished
//! fetch means, and what requests can verify with meanwhile.
//!
//! The timing rules are [`KeyCache`]'s, as in the Envoy filter. This file adds the two
//! steps of a fetch through OpenID Connect discovery (document, then key set) and the
//! bookkeeping of the one fetch that may be in flight. The worker's JavaScript sends the
//! HTTP requests and reports their results.

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::config::{Provider, RemoteTiming};
use crate::gate::KeyLookup;
use crate::jwks::{KeySet, KeySetOptions, MAX_JWKS_BYTES};
use crate::keycache::discovery::{self, MAX_DISCOVERY_BYTES};
use crate::keycache::{KeyCache, StaleNotice};
use crate::policy::{IssuerMatcher, RemoteJwks};

/// The document a fetch requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The discovery document, which names the key set's URL.
    Discovery,
    /// The key set.
    Jwks,
}

impl Step {
    /// Returns the name JavaScript receives.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discovery => "discovery",
            Self::Jwks => "jwks",
        }
    }

    /// Largest response body the step reads, in bytes.
    pub fn max_bytes(self) -> usize {
        match self {
            Self::Discovery => MAX_DISCOVERY_BYTES,
            Self::Jwks => MAX_JWKS_BYTES,
        }
    }
}

/// A fetch the worker should start now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchDue {
    /// The document to fetch.
    pub step: Step,
    /// Absolute URL.
    pub url: String,
    /// Timeout in milliseconds.
    pub timeout_ms: u64,
}

/// The result of a reported response.
#[derive(Debug)]
pub enum FetchOutcome {
    /// A key set was stored.
    Stored {
        /// Usable keys.
        keys: usize,
        /// Entries skipped, with reasons.
        skipped: Vec<String>,
    },
    /// Discovery found the key set's URL; this fetch continues with it.
    Next(FetchDue),
    /// The response was unusable; the failure was recorded.
    Failed(String),
    /// No fetch was in flight, so the response was ignored.
    Ignored,
}

enum Source {
    Jwks(String),
    Discovery { document: String, jwks: Option<String> },
}

/// The remote keys of one provider.
pub struct RemoteKeys {
    cache: KeyCache,
    source: Source,
    issuers: Vec<IssuerMatcher>,
    in_flight: Option<Step>,
    stale_notice: StaleNotice,
}

/// Returns the first eight bytes of the SHA-256 digest of a key-set document, which
/// identify its content for the verified-token cache.
fn content_version(body: &[u8]) -> u64 {
    let digest = Sha256::digest(body);
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(first)
}

/// Returns whether `url` is an absolute `http` or `https` URL with a host.
fn is_fetchable(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else { return false };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.starts_with(['/', '?', '#'])
        && !url.bytes().any(|byte| byte.is_ascii_control() || byte == b' ')
}

impl RemoteKeys {
    /// Creates the state of a remote provider of a checked gate.
    ///
    /// # Errors
    ///
    /// A message naming the field when the URL is not an absolute `http` or `https` URL,
    /// or when a discovery document could not be checked against an issuer: no `issuer`
    /// is configured and `discovery_uri` has neither well-known form.
    pub fn new(provider: &Provider, remote: &RemoteJwks) -> Result<Self, String> {
        let (field, uri) = match (&remote.http_uri, &remote.discovery_uri) {
            (Some(uri), _) => ("http_uri", &uri.uri),
            (None, Some(uri)) => ("discovery_uri", &uri.uri),
            (None, None) => return Err(String::from("set `remote_jwks.http_uri` or `remote_jwks.discovery_uri`")),
        };
        if !is_fetchable(uri) {
            return Err(alloc::format!("`remote_jwks.{field}.uri` {uri:?} is not an absolute http or https URL"));
        }
        let issuers = provider.policy.issuers.clone();
        let source = if remote.http_uri.is_some() {
            Source::Jwks(uri.clone())
        } else {
            if issuers.is_empty() && discovery::issuer_of_discovery_uri(uri).is_none() {
                return Err(alloc::format!(
                    "`remote_jwks.discovery_uri.uri` {uri:?} does not end in {} and is not an RFC 8414 well-known URL; set `issuer` so the discovery document can be checked",
                    discovery::OIDC_WELL_KNOWN
                ));
            }
            Source::Discovery { document: uri.clone(), jwks: None }
        };
        Ok(Self { cache: KeyCache::new(RemoteTiming::of(remote)), source, issuers, in_flight: None, stale_notice: StaleNotice::default() })
    }

    /// Returns the timing settings, defaults filled in.
    pub fn timing(&self) -> &RemoteTiming {
        self.cache.timing()
    }

    /// Returns the configured URL: the key set's, or the discovery document's.
    pub fn configured_url(&self) -> (&str, Step) {
        match &self.source {
            Source::Jwks(url) => (url, Step::Jwks),
            Source::Discovery { document, .. } => (document, Step::Discovery),
        }
    }

    /// Returns the cache state, for status reports.
    pub fn cache(&self) -> &KeyCache {
        &self.cache
    }

    /// Returns what a request can verify with at `now_ms`.
    pub fn lookup(&self, now_ms: u64) -> KeyLookup<'_> {
        KeyLookup::from_cache(&self.cache, now_ms)
    }

    /// Decides whether a request whose token names a `kid` missing from the keys should
    /// wait for a refetch. Returns true when this call was granted one (at most one per
    /// cooldown), or when a refetch granted since the current keys were fetched is due or
    /// running.
    pub fn request_kid_refetch(&mut self, now_ms: u64) -> bool {
        if self.cache.request_kid_refetch(now_ms) {
            return true;
        }
        let granted_since_fetch = self
            .cache
            .last_kid_refetch_ms()
            .is_some_and(|granted_at| granted_at >= self.cache.fetched_at_ms());
        granted_since_fetch && (self.cache.fetching() || self.cache.should_fetch(now_ms))
    }

    /// Starts the fetch that is due at `now_ms`, if any, and returns what to request.
    ///
    /// A fetch counts as in flight until its result is reported. One that is never reported
    /// is given up after twice its timeout, and then a new one may start.
    pub fn start_due_fetch(&mut self, now_ms: u64) -> Option<FetchDue> {
        if !self.cache.should_fetch(now_ms) {
            return None;
        }
        self.cache.fetch_started(now_ms);
        let (url, step) = match &self.source {
            Source::Jwks(url) => (url.clone(), Step::Jwks),
            Source::Discovery { jwks: Some(url), .. } => (url.clone(), Step::Jwks),
            Source::Discovery { document, jwks: None } => (document.clone(), Step::Discovery),
        };
        self.in_flight = Some(step);
        Some(FetchDue { step, url, timeout_ms: self.timing().timeout_ms })
    }

    /// Handles the body of a successful (status 200) response to the fetch in flight.
    pub fn fetch_succeeded(&mut self, body: &[u8], now_ms: u64) -> FetchOutcome {
        match self.in_flight.take() {
            None => FetchOutcome::Ignored,
            Some(Step::Discovery) => self.discovered(body, now_ms),
            Some(Step::Jwks) => match KeySet::from_json(body, KeySetOptions::default()) {
                Ok(set) => {
                    let keys = set.keys().len();
                    let skipped = set.skipped().iter().map(ToString::to_string).collect();
                    self.cache.fetch_succeeded(Arc::new(set), content_version(body), now_ms);
                    FetchOutcome::Stored { keys, skipped }
                }
                Err(error) => {
                    let reason = alloc::format!("the key set is invalid: {error}");
                    self.record_failure(Step::Jwks, reason.clone(), now_ms);
                    FetchOutcome::Failed(reason)
                }
            },
        }
    }

    fn discovered(&mut self, body: &[u8], now_ms: u64) -> FetchOutcome {
        let Source::Discovery { document, jwks } = &mut self.source else {
            return FetchOutcome::Ignored;
        };
        match discovery::jwks_uri_from_discovery(body, document, &self.issuers) {
            Ok(url) => {
                *jwks = Some(url.clone());
                self.in_flight = Some(Step::Jwks);
                FetchOutcome::Next(FetchDue { step: Step::Jwks, url, timeout_ms: self.cache.timing().timeout_ms })
            }
            Err(error) => {
                let reason = error.to_string();
                self.record_failure(Step::Discovery, reason.clone(), now_ms);
                FetchOutcome::Failed(reason)
            }
        }
    }

    /// Records that the fetch in flight failed: no response, a status other than 200, an
    /// oversized body, or a timeout. Returns false when no fetch was in flight.
    pub fn fetch_failed(&mut self, reason: String, now_ms: u64) -> bool {
        let Some(step) = self.in_flight.take() else { return false };
        self.record_failure(step, reason, now_ms);
        true
    }

    fn record_failure(&mut self, step: Step, reason: String, now_ms: u64) {
        // The discovered URL may be what broke: the next attempt discovers again.
        if let (Step::Jwks, Source::Discovery { jwks, .. }) = (step, &mut self.source) {
            *jwks = None;
        }
        self.in_flight = None;
        // Jitter spreads the retries of isolates that failed together, so it needs no
        // cryptographic quality.
        let jitter = js_sys::Math::random() as f32;
        self.cache.fetch_failed(reason, now_ms, jitter);
    }

    /// Adopts a key-set document fetched at `fetched_at_ms` by another isolate (read from a
    /// shared cache), if it is newer than the current set. Returns whether it was adopted.
    ///
    /// # Errors
    ///
    /// The reason when the document is not a valid key set.
    pub fn adopt(&mut self, body: &[u8], fetched_at_ms: u64) -> Result<bool, String> {
        let set = KeySet::from_json(body, KeySetOptions::default()).map_err(|error| alloc::format!("the key set is invalid: {error}"))?;
        Ok(self.cache.adopt(Arc::new(set), content_version(body), fetched_at_ms))
    }

    /// Returns a warning the first time stale keys serve after fresh ones did.
    pub fn stale_notice(&mut self, now_ms: u64) -> Option<String> {
        self.stale_notice.check(&self.cache, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetchable_urls() {
        assert!(is_fetchable("https://idp.example.com/jwks"));
        assert!(is_fetchable("http://127.0.0.1:8080"));
        assert!(!is_fetchable("https:///jwks"));
        assert!(!is_fetchable("ftp://idp.example.com/jwks"));
        assert!(!is_fetchable("https://idp.example.com/a b"));
        assert!(!is_fetchable("/jwks"));
    }
}
