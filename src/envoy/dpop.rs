//! DPoP state shared by the Envoy workers: the proof replay cache and the nonce secret.
//!
//! Replays are detected across workers with compare-and-swap on shared data, in the ring
//! of buckets and shards that [`crate::dpop::replay`] describes. The keys are
//! `portcullis/dpop/replay/<max_age>/<slot>/<shard>`, so their number stays bounded
//! (slots × 256 per `max_age`) although shared data cannot delete keys. A host without
//! shared data gets a replay cache per worker, and then a proof can be replayed once on
//! each other worker.
//!
//! The nonce secret is 32 random bytes that the first worker stores under
//! `portcullis/dpop/nonce_secret`. Workers read it back on every use, so even when two
//! workers store one at the same moment, all of them converge on the last one written.

use alloc::string::String;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use super::abi::{self, CAS_MISMATCH, NOT_FOUND};
use crate::dpop::nonce::MIN_SECRET_BYTES;
use crate::dpop::replay::{self, ProofDigest, ReplayCache, ReplayCheck, ShardUpdate};
use crate::dpop::VerifiedProof;

/// Attempts at recording one proof before the request fails closed.
const CAS_ATTEMPTS: usize = 8;

const NONCE_SECRET_KEY: &str = "portcullis/dpop/nonce_secret";

/// Replay detection and the nonce secret of one VM.
pub struct DpopState {
    /// Used when the host has no shared data.
    local: ReplayCache,
    local_secret: Zeroizing<Vec<u8>>,
}

fn random_secret() -> Zeroizing<Vec<u8>> {
    let mut secret = Zeroizing::new(alloc::vec![0u8; MIN_SECRET_BYTES]);
    if getrandom::getrandom(&mut secret).is_err() {
        // WASI's random_get failed: there is no secret to be had, so nonces from this VM
        // will not verify anywhere else and requests that need one fail.
        secret.clear();
    }
    secret
}

impl Default for DpopState {
    fn default() -> Self {
        Self { local: ReplayCache::default(), local_secret: random_secret() }
    }
}

impl DpopState {
    /// Records a proof and reports whether any worker saw it before.
    pub fn record(&mut self, proof: &VerifiedProof, max_age: u64, now: u64) -> ReplayCheck {
        let digest = replay::proof_digest(proof);
        match record_shared(&digest, proof.iat, max_age) {
            Some(check) => check,
            None => self.local.record(digest, proof.iat, max_age, now),
        }
    }

    /// Returns the nonce secret shared by the workers, creating it on first use.
    pub fn nonce_secret(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        match abi::shared_data(NONCE_SECRET_KEY) {
            Ok(Some((value, _))) if value.len() >= MIN_SECRET_BYTES => return Some(Zeroizing::new(value)),
            Ok(_) => {}
            Err(_) => return (!self.local_secret.is_empty()).then(|| self.local_secret.clone()),
        }
        if self.local_secret.is_empty() {
            return None;
        }
        if abi::set_shared_data(NONCE_SECRET_KEY, &self.local_secret, 0).is_err() {
            return Some(self.local_secret.clone());
        }
        match abi::shared_data(NONCE_SECRET_KEY) {
            Ok(Some((value, _))) if value.len() >= MIN_SECRET_BYTES => Some(Zeroizing::new(value)),
            _ => Some(self.local_secret.clone()),
        }
    }
}

/// Records a proof in shared data. Returns `None` when the host has no shared data.
fn record_shared(digest: &ProofDigest, iat: i64, max_age: u64) -> Option<ReplayCheck> {
    let (slot, shard) = replay::shard_of(digest, iat, max_age);
    let key = alloc::format!("portcullis/dpop/replay/{max_age}/{slot}/{shard}");
    for _ in 0..CAS_ATTEMPTS {
        let (stored, cas) = match abi::shared_data(&key) {
            Ok(Some((value, cas))) => (Some(value), cas),
            Ok(None) => (None, 0),
            Err(error) if error == NOT_FOUND => (None, 0),
            Err(_) => return None,
        };
        let value = match replay::shard_update(stored.as_deref(), digest, iat) {
            ShardUpdate::Replayed => return Some(ReplayCheck::Replayed),
            ShardUpdate::Refused(reason) => return Some(ReplayCheck::Unavailable(reason)),
            ShardUpdate::Write(value) => value,
        };
        // NOTE: a key's first write (CAS 0) is unconditional, so when two workers create
        // the same key at once, one of their two proofs is lost and could be replayed
        // once. Keys are reused once created, so this can only happen once per key.
        match abi::set_shared_data(&key, &value, cas) {
            Ok(()) => return Some(ReplayCheck::Fresh),
            Err(error) if error == CAS_MISMATCH => continue,
            Err(_) => return None,
        }
    }
    Some(ReplayCheck::Unavailable(String::from("the replay cache is busy; retry the request with a new proof")))
}
