//! Revocation lists and introspection calls of one provider in an edge worker: which
//! request is due, and what a finished one means. The worker's JavaScript sends the
//! requests and reports their results, as for key sets (`keys.rs`).
//!
//! Fetch identifiers tell the results apart: `<provider>#revocation_list` for a list, and
//! `<provider>#introspection#<token digest in hex>` for an introspection call. Provider
//! names contain no `#`.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use crate::config::{RemoteTiming, RevocationListSettings};
use crate::gate::{IntrospectionLookup, ListLookup, TokenCache};
use crate::introspection::{
    self, next_step, EndpointHealth, IntrospectionCache, IntrospectionRequest, IntrospectionSettings, NextStep, TokenDigest,
};
use crate::keycache::DocumentCache;
use crate::revocation::RevocationList;

/// The suffix of a revocation list's fetch identifier.
pub const LIST_SUFFIX: &str = "#revocation_list";

/// The infix of an introspection call's fetch identifier.
pub const INTROSPECTION_INFIX: &str = "#introspection#";

fn hex(digest: &TokenDigest) -> String {
    digest.iter().map(|byte| alloc::format!("{byte:02x}")).collect()
}

/// Parses the hex digest of an introspection fetch identifier.
pub fn parse_hex_digest(text: &str) -> Option<TokenDigest> {
    let mut digest = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (index, slot) in digest.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// The revocation list of one provider.
pub struct WebList {
    uri: String,
    cache: DocumentCache<RevocationList>,
    in_flight: bool,
}

impl WebList {
    /// Creates the state of a provider's list.
    pub fn new(settings: &RevocationListSettings) -> Self {
        Self { uri: settings.uri.clone(), cache: DocumentCache::new(settings.timing), in_flight: false }
    }

    /// Returns the list's URL.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Returns the timing settings.
    pub fn timing(&self) -> &RemoteTiming {
        self.cache.timing()
    }

    /// Returns the list a request can be checked against at `now_ms`.
    pub fn lookup(&self, now_ms: u64) -> ListLookup<'_> {
        ListLookup::from_cache(&self.cache, now_ms)
    }

    /// Starts the fetch that is due at `now_ms`, if any.
    pub fn start_due_fetch(&mut self, now_ms: u64) -> bool {
        if !self.cache.should_fetch(now_ms) {
            return false;
        }
        self.cache.fetch_started(now_ms);
        self.in_flight = true;
        true
    }

    /// Handles the body of a 200 response. Returns the number of entries, or why the
    /// body is unusable (recorded as a failed fetch); `None` when no fetch was in flight.
    pub fn fetch_succeeded(&mut self, body: &[u8], now_ms: u64, jitter: f32) -> Option<Result<usize, String>> {
        if !core::mem::take(&mut self.in_flight) {
            return None;
        }
        match RevocationList::from_json(body) {
            Ok(list) => {
                let entries = list.len();
                self.cache.fetch_succeeded(Arc::new(list), content_version(body), now_ms);
                Some(Ok(entries))
            }
            Err(reason) => {
                self.cache.fetch_failed(reason.clone(), now_ms, jitter);
                Some(Err(reason))
            }
        }
    }

    /// Records a failed fetch. Returns false when none was in flight.
    pub fn fetch_failed(&mut self, reason: String, now_ms: u64, jitter: f32) -> bool {
        if !core::mem::take(&mut self.in_flight) {
            return false;
        }
        self.cache.fetch_failed(reason, now_ms, jitter);
        true
    }

    /// Adopts a list fetched at `fetched_at_ms` elsewhere, if newer than the current one.
    ///
    /// # Errors
    ///
    /// Why the document is not a valid list.
    pub fn adopt(&mut self, body: &[u8], fetched_at_ms: u64) -> Result<bool, String> {
        let list = RevocationList::from_json(body)?;
        Ok(self.cache.adopt(Arc::new(list), content_version(body), fetched_at_ms))
    }
}

/// Returns the first eight bytes of the SHA-256 digest of a list document.
fn content_version(body: &[u8]) -> u64 {
    let digest = Sha256::digest(body);
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(first)
}

/// An introspection call to send.
pub struct DueCall {
    /// The fetch identifier's digest part.
    pub digest: TokenDigest,
    /// The request to send.
    pub request: IntrospectionRequest,
    /// Timeout in milliseconds.
    pub timeout_ms: u64,
}

/// The introspection state of one provider.
pub struct WebIntrospector {
    settings: IntrospectionSettings,
    health: EndpointHealth,
    /// Calls decided on but not yet handed to JavaScript.
    queued: BTreeMap<TokenDigest, IntrospectionRequest>,
    /// Calls handed to JavaScript, with when they started.
    in_flight: BTreeMap<TokenDigest, u64>,
}

impl WebIntrospector {
    /// Creates the state of a provider's introspection.
    pub fn new(settings: &IntrospectionSettings) -> Self {
        Self { settings: settings.clone(), health: EndpointHealth::default(), queued: BTreeMap::new(), in_flight: BTreeMap::new() }
    }

    /// Returns the endpoint URL.
    pub fn uri(&self) -> &str {
        &self.settings.uri
    }

    /// Returns how long a request may wait for a response, in milliseconds: twice the
    /// call timeout, by when the call has timed out for sure.
    pub fn pending_timeout_ms(&self) -> u64 {
        self.settings.timeout_ms.saturating_mul(2)
    }

    /// Returns the response for `token` from `cache`, or queues a call.
    pub fn lookup(&mut self, cache: &mut IntrospectionCache, index: usize, token: &str, now_ms: u64) -> IntrospectionLookup {
        let digest = TokenCache::digest(token);
        match next_step(cache.get(index, &digest, now_ms), &self.health, now_ms) {
            NextStep::Use(answer) => IntrospectionLookup::Answer(answer),
            NextStep::Fail(reason) => IntrospectionLookup::Unavailable(reason),
            NextStep::Call => {
                let running = self.in_flight.get(&digest).is_some_and(|since| now_ms < since.saturating_add(self.pending_timeout_ms()));
                if !running && !self.queued.contains_key(&digest) {
                    self.queued.insert(digest, self.settings.request(token));
                }
                IntrospectionLookup::Pending
            }
        }
    }

    /// Hands the queued calls over, recording them as started at `now_ms`.
    pub fn take_due(&mut self, now_ms: u64) -> Vec<DueCall> {
        let queued = core::mem::take(&mut self.queued);
        queued
            .into_iter()
            .map(|(digest, request)| {
                self.in_flight.insert(digest, now_ms);
                DueCall { digest, request, timeout_ms: self.settings.timeout_ms }
            })
            .collect()
    }

    /// Handles the body of a 200 response to the call for `digest`. Returns whether the
    /// token is active, or why the body is unusable (recorded as a failed call); `None`
    /// when no call for `digest` was in flight.
    pub fn call_succeeded(
        &mut self,
        cache: &mut IntrospectionCache,
        index: usize,
        digest: &TokenDigest,
        body: &[u8],
        now_ms: u64,
        jitter: f32,
    ) -> Option<Result<bool, String>> {
        self.in_flight.remove(digest)?;
        match introspection::parse_response(body) {
            Ok(answer) => {
                let active = answer.is_active();
                self.health.record_success(now_ms);
                cache.insert(index, *digest, Arc::new(answer), now_ms, &self.settings);
                Some(Ok(active))
            }
            Err(reason) => {
                self.health.record_failure(reason.clone(), now_ms, jitter);
                Some(Err(reason))
            }
        }
    }

    /// Records a failed call for `digest`. Returns false when none was in flight.
    pub fn call_failed(&mut self, digest: &TokenDigest, reason: String, now_ms: u64, jitter: f32) -> bool {
        if self.in_flight.remove(digest).is_none() {
            return false;
        }
        self.health.record_failure(reason, now_ms, jitter);
        true
    }
}

/// Returns the fetch identifier of an introspection call.
pub fn introspection_id(provider: &str, digest: &TokenDigest) -> String {
    alloc::format!("{provider}{INTROSPECTION_INFIX}{}", hex(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_hex_round_trip() {
        let digest = [0xabu8; 32];
        let id = introspection_id("idp", &digest);
        let hex = id.strip_prefix("idp#introspection#").unwrap();
        assert_eq!(parse_hex_digest(hex), Some(digest));
        assert_eq!(parse_hex_digest("zz"), None);
    }
}
