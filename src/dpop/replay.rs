//! Replay protection for DPoP proofs. Each proof, identified by its key thumbprint and
//! `jti`, is accepted once while its `iat` is acceptable.
//!
//! Proofs are grouped by the minute of their `iat` ("buckets"). A proof whose `iat` lies
//! in bucket `b` is acceptable only while `now` is within `max_age` of that minute, so a
//! bucket can be forgotten once `now` has passed its end by `max_age`. Memory therefore
//! stays bounded by the proofs of about `2 × max_age` seconds.
//!
//! [`ReplayCache`] keeps the buckets in memory for one process (an edge-worker isolate).
//! The `shard_*` functions describe the same buckets as a fixed set of keys for a store
//! shared by several processes that offers compare-and-swap but no deletion (Envoy's shared
//! data): bucket `b` lives in ring slot `b mod slots`, split into [`SHARDS`] shards by the
//! proof digest. A slot containing an older bucket is overwritten, so the number of keys and
//! their sizes stay bounded.

use alloc::collections::BTreeSet;
use alloc::string::String;
use alloc::vec::Vec;

use sha2::{Digest, Sha256};

use super::VerifiedProof;

/// Width of one bucket, in seconds.
pub const BUCKET_SECONDS: u64 = 60;

/// Maximum number of proofs one [`ReplayCache`] stores. 131,072 digests take about 4 MiB
/// of B-tree nodes, an estimate from 16-byte keys and the B-tree's node overhead. With the
/// default `max_age` of 300 s, that allows about 200 proofs per second, sustained, in one
/// process.
pub const DEFAULT_MAX_ENTRIES: usize = 131_072;

/// Shards per bucket in a shared store.
pub const SHARDS: u16 = 256;

/// Maximum number of digests in one shard: 1024 × 16 bytes, so one compare-and-swap copies
/// at most 16 KiB. A bucket then contains up to 262,144 proofs, about 4,300 per second.
pub const MAX_SHARD_ENTRIES: usize = 1024;

/// Bytes of a proof digest: the first 128 bits of SHA-256, so collisions need about 2^64
/// proofs.
pub const DIGEST_BYTES: usize = 16;

/// The replay-cache identity of a proof.
pub type ProofDigest = [u8; DIGEST_BYTES];

/// The outcome of recording a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayCheck {
    /// First use: the proof is recorded.
    Fresh,
    /// The proof was seen before.
    Replayed,
    /// The proof could not be recorded (cache full, store unavailable); fail closed.
    Unavailable(String),
}

/// Returns the digest of a proof: its `jti` scoped to the key that signed it, so one
/// client cannot use up another client's `jti` values.
pub fn proof_digest(proof: &VerifiedProof) -> ProofDigest {
    let mut hasher = Sha256::new();
    hasher.update(proof.jkt.as_bytes());
    hasher.update([0u8]);
    hasher.update(proof.jti.as_bytes());
    let digest = hasher.finalize();
    let mut out = [0u8; DIGEST_BYTES];
    out.copy_from_slice(digest.get(..DIGEST_BYTES).unwrap_or(&[0; DIGEST_BYTES]));
    out
}

/// Returns the bucket of an `iat`.
pub fn bucket_of(iat: i64) -> u64 {
    u64::try_from(iat).unwrap_or(0) / BUCKET_SECONDS
}

/// Returns whether no proof of `bucket` is acceptable any more at `now` with `max_age`.
fn bucket_expired(bucket: u64, max_age: u64, now: u64) -> bool {
    let end = bucket.saturating_add(1).saturating_mul(BUCKET_SECONDS);
    now > end.saturating_add(max_age)
}

/// Proofs seen in one process.
#[derive(Debug)]
pub struct ReplayCache {
    max_entries: usize,
    /// The proofs seen, as `(bucket, (0, digest))` in bucket order. The constant 0 gives
    /// the set the type of the token cache's indexes (`gate::cache`), so that the B-tree
    /// code is compiled once for both.
    seen: BTreeSet<(u64, (usize, ProofDigest))>,
}

impl Default for ReplayCache {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_ENTRIES)
    }
}

impl ReplayCache {
    /// Creates an empty cache that stores at most `max_entries` proofs.
    pub fn new(max_entries: usize) -> Self {
        Self { max_entries, seen: BTreeSet::new() }
    }

    /// Records a proof with `iat` at `now` (seconds), where proofs are acceptable within
    /// `max_age` seconds of now.
    ///
    /// A full cache returns [`ReplayCheck::Unavailable`] rather than forget a proof that
    /// could still be replayed.
    pub fn record(&mut self, digest: ProofDigest, iat: i64, max_age: u64, now: u64) -> ReplayCheck {
        self.purge(max_age, now);
        let key = (bucket_of(iat), (0, digest));
        if self.seen.contains(&key) {
            return ReplayCheck::Replayed;
        }
        if self.seen.len() >= self.max_entries {
            return ReplayCheck::Unavailable(alloc::format!(
                "the DPoP replay cache is full ({} proofs); retry shortly",
                self.max_entries
            ));
        }
        self.seen.insert(key);
        ReplayCheck::Fresh
    }

    /// Drops the buckets whose proofs are no longer acceptable at `now`.
    pub fn purge(&mut self, max_age: u64, now: u64) {
        while let Some(&(bucket, _)) = self.seen.first() {
            if !bucket_expired(bucket, max_age, now) {
                break;
            }
            self.seen.pop_first();
        }
    }

    /// Number of proofs remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Returns whether no proof is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Number of ring slots a shared store needs for `max_age`: every bucket that can contain an
/// acceptable proof at one time, plus one for clocks that differ between processes.
pub fn shard_slots(max_age: u64) -> u64 {
    max_age.saturating_mul(2).div_ceil(BUCKET_SECONDS).saturating_add(2)
}

/// Returns the ring slot and the shard of a proof.
pub fn shard_of(digest: &ProofDigest, iat: i64, max_age: u64) -> (u64, u16) {
    let slot = bucket_of(iat) % shard_slots(max_age);
    let shard = u16::from_le_bytes([digest[0], digest[1]]) % SHARDS;
    (slot, shard)
}

/// The update of a shard after a proof was looked up in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardUpdate {
    /// The proof was seen before.
    Replayed,
    /// Write this value (with compare-and-swap) to record the proof.
    Write(Vec<u8>),
    /// The proof cannot be recorded: the shard is full, or its slot already contains a newer
    /// bucket.
    Refused(String),
}

/// Looks a proof up in a shard's stored value (`None` or empty when the key is new) and
/// returns the update that records it.
///
/// A shard value is the bucket (u64, little-endian) followed by 16-byte digests.
pub fn shard_update(stored: Option<&[u8]>, digest: &ProofDigest, iat: i64) -> ShardUpdate {
    let bucket = bucket_of(iat);
    let stored = stored.unwrap_or_default();
    let stored_bucket = stored.get(..8).and_then(|bytes| bytes.try_into().ok()).map(u64::from_le_bytes);
    let digests = match stored_bucket {
        Some(current) if current == bucket => stored.get(8..).unwrap_or_default(),
        Some(current) if current > bucket => {
            return ShardUpdate::Refused(String::from("the proof's `iat` is older than the replay window"));
        }
        // A new key, or a slot that still contains an expired bucket: start over.
        _ => &[],
    };
    if digests.chunks_exact(DIGEST_BYTES).any(|seen| seen == digest) {
        return ShardUpdate::Replayed;
    }
    if digests.len() / DIGEST_BYTES >= MAX_SHARD_ENTRIES {
        return ShardUpdate::Refused(alloc::format!(
            "the DPoP replay cache shard is full ({MAX_SHARD_ENTRIES} proofs for this minute); retry shortly"
        ));
    }
    let whole = digests.len() - digests.len() % DIGEST_BYTES;
    let mut value = Vec::with_capacity(8 + whole + DIGEST_BYTES);
    value.extend_from_slice(&bucket.to_le_bytes());
    value.extend_from_slice(digests.get(..whole).unwrap_or_default());
    value.extend_from_slice(digest);
    ShardUpdate::Write(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(n: u8) -> ProofDigest {
        [n; DIGEST_BYTES]
    }

    #[test]
    fn replay_detected_in_same_window() {
        let mut cache = ReplayCache::default();
        assert_eq!(cache.record(digest(1), 1_000, 300, 1_000), ReplayCheck::Fresh);
        assert_eq!(cache.record(digest(1), 1_000, 300, 1_200), ReplayCheck::Replayed);
        assert_eq!(cache.record(digest(2), 1_000, 300, 1_200), ReplayCheck::Fresh);
    }

    #[test]
    fn buckets_dropped_after_window() {
        let mut cache = ReplayCache::default();
        cache.record(digest(1), 1_000, 300, 1_000);
        // Bucket 16 covers 960..1020; it is acceptable until 1020 + 300.
        cache.purge(300, 1_320);
        assert_eq!(cache.len(), 1);
        cache.purge(300, 1_321);
        assert!(cache.is_empty());
    }

    #[test]
    fn full_cache_fails_closed() {
        let mut cache = ReplayCache::new(2);
        cache.record(digest(1), 1_000, 300, 1_000);
        cache.record(digest(2), 1_000, 300, 1_000);
        assert!(matches!(cache.record(digest(3), 1_000, 300, 1_000), ReplayCheck::Unavailable(_)));
        assert_eq!(cache.record(digest(1), 1_000, 300, 1_000), ReplayCheck::Replayed);
    }

    #[test]
    fn shard_records_then_detects() {
        let ShardUpdate::Write(value) = shard_update(None, &digest(1), 1_000) else { panic!("expected a write") };
        assert_eq!(value.len(), 8 + DIGEST_BYTES);
        assert_eq!(shard_update(Some(&value), &digest(1), 1_000), ShardUpdate::Replayed);
        let ShardUpdate::Write(second) = shard_update(Some(&value), &digest(2), 1_010) else { panic!("expected a write") };
        assert_eq!(second.len(), 8 + 2 * DIGEST_BYTES);
    }

    #[test]
    fn shard_slot_reused_by_newer_bucket() {
        let ShardUpdate::Write(old) = shard_update(None, &digest(1), 1_000) else { panic!("expected a write") };
        let later = 1_000 + 60 * i64::try_from(shard_slots(300)).unwrap();
        let ShardUpdate::Write(value) = shard_update(Some(&old), &digest(1), later) else { panic!("expected a write") };
        assert_eq!(value.len(), 8 + DIGEST_BYTES, "the expired bucket's digests are dropped");
        assert!(matches!(shard_update(Some(&value), &digest(3), 1_000), ShardUpdate::Refused(_)));
    }

    #[test]
    fn shard_capacity_bounded() {
        let mut value = 16u64.to_le_bytes().to_vec();
        for n in 0..MAX_SHARD_ENTRIES {
            let mut entry = [0u8; DIGEST_BYTES];
            entry[..8].copy_from_slice(&(n as u64 + 1000).to_le_bytes());
            value.extend_from_slice(&entry);
        }
        assert!(matches!(shard_update(Some(&value), &digest(200), 1_000), ShardUpdate::Refused(_)));
    }

    #[test]
    fn slots_cover_window() {
        assert_eq!(shard_slots(300), 12);
        assert_eq!(shard_slots(30), 3);
    }
}
