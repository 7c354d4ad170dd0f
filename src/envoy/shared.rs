//! A fetched document (a key set, a revocation list) in shared data: one worker at a time
//! fetches it, and every worker adopts what another one published.
//!
//! Under the document's key prefix, the keys are:
//!
//! - the document key (`jwks`, `list`): fetch time (u64 milliseconds), then the content
//!   in the layout of its owner;
//! - `version`: a publication number (u64) that grows with every publication, cheap to
//!   poll;
//! - `lease`: until when (u64) which VM (u32) may fetch, taken with compare-and-swap so one
//!   worker fetches at a time;
//! - `failure`: time (u64), next retry time (u64), failure count (u32), then the reason,
//!   so every worker reports the same error and keeps the same backoff.
//!
//! All integers are little-endian. A host without shared data makes every worker fetch
//! for itself.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use super::abi;
use super::keys::{jitter, read_u32, read_u64};
use crate::keycache::DocumentCache;

/// The shared-data keys of one document and what this VM has read of them.
pub(super) struct SharedDocument {
    prefix: String,
    /// The name of the key that stores the document, under `prefix`.
    document_key: &'static str,
    vm_id: u32,
    seen_version: u64,
    seen_failure_at: u64,
}

impl SharedDocument {
    /// Creates the state for the keys under `prefix`, the document stored at
    /// `<prefix><document_key>`.
    pub(super) fn new(prefix: String, document_key: &'static str, vm_id: u32) -> Self {
        Self { prefix, document_key, vm_id, seen_version: 0, seen_failure_at: 0 }
    }

    /// Returns the full shared-data key of `name`.
    pub(super) fn key(&self, name: &str) -> String {
        alloc::format!("{}{name}", self.prefix)
    }

    /// Takes the fetch lease for `lease_ms` from `now_ms`. Returns false when another
    /// worker has taken it. Hosts without shared data let every worker fetch.
    pub(super) fn take_lease(&self, now_ms: u64, lease_ms: u64) -> bool {
        take_lease(&self.key("lease"), self.vm_id, now_ms, lease_ms)
    }

    /// Frees the fetch lease if this VM holds it.
    pub(super) fn release_lease(&self) {
        release_lease(&self.key("lease"), self.vm_id);
    }

    /// Adopts into `cache` a newer document or failure that another worker published.
    /// Returns true when what requests would get changed.
    ///
    /// `decode` reads the stored content that follows the fetch time and returns its
    /// content version with the parsed document, or with `None` when the document is
    /// invalid. It returns `None` when the layout is wrong, and then the publication is
    /// read again on the next call.
    pub(super) fn sync<T>(
        &mut self,
        cache: &mut DocumentCache<T>,
        now_ms: u64,
        decode: impl FnOnce(&[u8]) -> Option<(u64, Option<T>)>,
    ) -> bool {
        let mut changed = self.adopt_document(cache, now_ms, decode);
        changed |= self.adopt_failure(cache);
        changed
    }

    fn adopt_document<T>(
        &mut self,
        cache: &mut DocumentCache<T>,
        now_ms: u64,
        decode: impl FnOnce(&[u8]) -> Option<(u64, Option<T>)>,
    ) -> bool {
        let version = match abi::shared_data(&self.key("version")) {
            Ok(Some((bytes, _))) => read_u64(&bytes, 0).unwrap_or(0),
            _ => return false,
        };
        if version <= self.seen_version {
            return false;
        }

        let Ok(Some((bytes, _))) = abi::shared_data(&self.key(self.document_key)) else { return false };
        let (Some(fetched_at), Some(content)) = (read_u64(&bytes, 0), bytes.get(8..)) else { return false };
        let Some((content_version, document)) = decode(content) else { return false };
        self.seen_version = version;
        match document {
            // A document fetched long ago by another worker still ages from its fetch time.
            Some(document) => cache.adopt(Arc::new(document), content_version, fetched_at.min(now_ms)),
            None => false,
        }
    }

    fn adopt_failure<T>(&mut self, cache: &mut DocumentCache<T>) -> bool {
        let Ok(Some((bytes, _))) = abi::shared_data(&self.key("failure")) else { return false };
        let (Some(failed_at), Some(retry_at), Some(failures)) = (read_u64(&bytes, 0), read_u64(&bytes, 8), read_u32(&bytes, 16)) else {
            return false;
        };
        if failed_at <= self.seen_failure_at {
            return false;
        }
        self.seen_failure_at = failed_at;
        let reason = String::from_utf8_lossy(bytes.get(20..).unwrap_or_default()).into_owned();
        cache.adopt_failure(reason, failed_at, retry_at, failures)
    }

    /// Records a failed fetch in `cache`, publishes it for the other workers and frees the
    /// lease.
    pub(super) fn fail<T>(&mut self, cache: &mut DocumentCache<T>, reason: String, now_ms: u64) {
        cache.fetch_failed(reason.clone(), now_ms, jitter());
        let mut value = Vec::with_capacity(20 + reason.len());
        value.extend_from_slice(&now_ms.to_le_bytes());
        value.extend_from_slice(&cache.retry_at_ms().to_le_bytes());
        value.extend_from_slice(&cache.failures().to_le_bytes());
        value.extend_from_slice(reason.as_bytes());
        if abi::set_shared_data(&self.key("failure"), &value, 0).is_ok() {
            self.seen_failure_at = now_ms;
        }
        self.release_lease();
    }

    /// Publishes a document fetched at `now_ms`: the fetch time followed by `content`.
    pub(super) fn publish(&mut self, content: &[&[u8]], now_ms: u64) {
        let length = content.iter().map(|part| part.len()).sum::<usize>();
        let mut value = Vec::with_capacity(8 + length);
        value.extend_from_slice(&now_ms.to_le_bytes());
        for part in content {
            value.extend_from_slice(part);
        }
        // The publication number grows with every publication, even two in one millisecond.
        let previous = match abi::shared_data(&self.key("version")) {
            Ok(Some((bytes, _))) => read_u64(&bytes, 0).unwrap_or(0),
            _ => 0,
        };
        let number = now_ms.max(previous.saturating_add(1));
        let published = abi::set_shared_data(&self.key(self.document_key), &value, 0).is_ok()
            && abi::set_shared_data(&self.key("version"), &number.to_le_bytes(), 0).is_ok();
        if published {
            self.seen_version = number;
        }
    }
}

/// Takes the fetch lease stored at `key` for `lease_ms` from `now_ms`, with
/// compare-and-swap. Returns false when another VM has taken it. Hosts without shared data let
/// every VM fetch.
fn take_lease(key: &str, vm_id: u32, now_ms: u64, lease_ms: u64) -> bool {
    let (value, cas) = match abi::shared_data(key) {
        Ok(Some(entry)) => entry,
        Ok(None) => {
            // Create the key first: CAS 0 writes unconditionally, so creation itself
            // cannot be exclusive, but every later take compares versions.
            if abi::set_shared_data(key, &[0; 12], 0).is_err() {
                return true;
            }
            match abi::shared_data(key) {
                Ok(Some(entry)) => entry,
                _ => return true,
            }
        }
        Err(_) => return true,
    };
    let holder = read_u32(&value, 8);
    if read_u64(&value, 0).is_some_and(|until| until > now_ms) && holder != Some(vm_id) {
        return false;
    }
    let until = now_ms.saturating_add(lease_ms);
    let mut lease = Vec::with_capacity(12);
    lease.extend_from_slice(&until.to_le_bytes());
    lease.extend_from_slice(&vm_id.to_le_bytes());
    abi::set_shared_data(key, &lease, cas).is_ok()
}

/// Frees the lease at `key` if `vm_id` holds it.
fn release_lease(key: &str, vm_id: u32) {
    if let Ok(Some((value, cas))) = abi::shared_data(key) {
        if read_u32(&value, 8) == Some(vm_id) {
            let _ = abi::set_shared_data(key, &[0; 12], cas);
        }
    }
}
