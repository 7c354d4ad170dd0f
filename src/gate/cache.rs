//! A bounded cache of verified tokens, so a token seen again skips signature verification.
//!
//! Entries are keyed by the provider and the SHA-256 digest of the token, so the cache
//! never stores a token itself. An entry records the version of the key set that verified
//! it and is used only while that version is served. A key rotation therefore
//! re-verifies every cached token. Entries are dropped at the token's `exp`, and a hit
//! still runs the policy's time checks (`exp`, `nbf`, `iat`, maximum age) at the current
//! time. Failures are never cached. Tokens without `exp` are not cached, because nothing
//! would bound their entry's lifetime.
//!
//! Both the number of entries and an estimate of their memory are bounded; the least
//! recently used entry is evicted first. The cache does no I/O and reads no clock.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::Arc;

use sha2::{Digest, Sha256};

use crate::verify::VerifiedToken;

/// Default number of entries, per cache (the Envoy filter keeps one cache per worker).
/// Envoy's `jwt_authn` defaults to 100 per provider; 1000 serves more distinct clients
/// while the byte bound below still caps memory.
pub const DEFAULT_MAX_ENTRIES: usize = 1000;

/// Default bound of the estimated memory of all entries, in bytes.
pub const DEFAULT_MAX_BYTES: usize = 1024 * 1024;

/// Largest share of `max_bytes` one entry may take: a token with huge claims is verified
/// each time instead of flushing the cache.
const MAX_ENTRY_SHARE: usize = 8;

/// Estimated bytes of an entry besides its claims: the map nodes, the digest and the
/// typed registered claims.
const ENTRY_OVERHEAD_BYTES: usize = 256;

/// Estimated memory per byte of claims JSON: a parsed `serde_json` map takes about three
/// times its text (an estimate from the sizes of `String`, `Value` and B-tree nodes).
const BYTES_PER_CLAIMS_BYTE: usize = 3;

/// Bounds of a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheLimits {
    /// Maximum number of entries; 0 disables the cache.
    pub max_entries: usize,
    /// Maximum estimated bytes of all entries.
    pub max_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self { max_entries: DEFAULT_MAX_ENTRIES, max_bytes: DEFAULT_MAX_BYTES }
    }
}

/// Hit and miss counts since the last [`TokenCache::take_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found a usable entry.
    pub hits: u64,
    /// Lookups that found none (absent, expired, or verified by an older key set).
    pub misses: u64,
}

/// The SHA-256 digest of a token, the cache key.
pub type TokenDigest = [u8; 32];

type Key = (usize, TokenDigest);

#[derive(Debug)]
struct Entry {
    token: Arc<VerifiedToken>,
    key_version: u64,
    exp: i64,
    cost: usize,
    stamp: u64,
}

/// Verified tokens by provider and token digest.
#[derive(Debug, Default)]
pub struct TokenCache {
    limits: CacheLimits,
    entries: BTreeMap<Key, Entry>,
    /// Keys by last use, oldest first.
    recency: BTreeMap<u64, Key>,
    /// Keys by `exp`, earliest first.
    expiry: BTreeSet<(i64, Key)>,
    bytes: usize,
    next_stamp: u64,
    stats: CacheStats,
}

impl TokenCache {
    /// Creates an empty cache with these bounds.
    pub fn new(limits: CacheLimits) -> Self {
        Self { limits, ..Self::default() }
    }

    /// Creates a cache that stores nothing.
    pub fn disabled() -> Self {
        Self::new(CacheLimits { max_entries: 0, max_bytes: 0 })
    }

    /// Returns whether the cache stores anything.
    pub fn is_enabled(&self) -> bool {
        self.limits.max_entries > 0 && self.limits.max_bytes > 0
    }

    /// Returns the cache key of a token.
    pub fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    /// Returns the entry of `provider` for the token with `digest`, if it was verified by
    /// key-set version `key_version` and `now` (seconds) is before its `exp`.
    ///
    /// Entries that are expired or belong to another key-set version are removed. The
    /// caller still runs the policy's time checks on the returned token.
    pub fn get(&mut self, provider: usize, digest: &TokenDigest, key_version: u64, now: i64) -> Option<Arc<VerifiedToken>> {
        let key = (provider, *digest);
        let usable = match self.entries.get(&key) {
            None => {
                self.stats.misses += 1;
                return None;
            }
            Some(entry) => entry.key_version == key_version && now < entry.exp,
        };
        if !usable {
            self.remove(&key);
            self.stats.misses += 1;
            return None;
        }
        let stamp = self.next_stamp();
        let entry = self.entries.get_mut(&key)?;
        self.recency.remove(&entry.stamp);
        entry.stamp = stamp;
        self.recency.insert(stamp, key);
        self.stats.hits += 1;
        Some(Arc::clone(&entry.token))
    }

    /// Stores a token that `provider` verified with key-set version `key_version`.
    ///
    /// `claims_bytes` is the size of the decoded claims JSON, for the memory estimate.
    /// Tokens without `exp`, tokens already expired at `now`, and tokens whose entry would
    /// take more than an eighth of the byte bound are not stored.
    pub fn insert(&mut self, provider: usize, digest: TokenDigest, key_version: u64, token: Arc<VerifiedToken>, claims_bytes: usize, now: i64) {
        if !self.is_enabled() {
            return;
        }
        let Some(exp) = token.claims().exp else { return };
        if exp <= now {
            return;
        }
        let cost = ENTRY_OVERHEAD_BYTES.saturating_add(claims_bytes.saturating_mul(BYTES_PER_CLAIMS_BYTE));
        if cost > self.limits.max_bytes / MAX_ENTRY_SHARE {
            return;
        }
        let key = (provider, digest);
        self.remove(&key);
        self.purge_expired(now);
        while self.entries.len() >= self.limits.max_entries || self.bytes.saturating_add(cost) > self.limits.max_bytes {
            let Some((_, oldest)) = self.recency.pop_first() else { break };
            self.remove(&oldest);
        }
        let stamp = self.next_stamp();
        self.recency.insert(stamp, key);
        self.expiry.insert((exp, key));
        self.bytes = self.bytes.saturating_add(cost);
        self.entries.insert(key, Entry { token, key_version, exp, cost, stamp });
    }

    /// Drops every entry whose `exp` is at or before `now` (seconds).
    pub fn purge_expired(&mut self, now: i64) {
        while let Some(&(exp, key)) = self.expiry.first() {
            if exp > now {
                break;
            }
            self.remove(&key);
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Returns whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Estimated bytes of all entries.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Returns the hit and miss counts since the last call, and resets them.
    pub fn take_stats(&mut self) -> CacheStats {
        core::mem::take(&mut self.stats)
    }

    fn remove(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.recency.remove(&entry.stamp);
            self.expiry.remove(&(entry.exp, *key));
            self.bytes = self.bytes.saturating_sub(entry.cost);
        }
    }

    fn next_stamp(&mut self) -> u64 {
        self.next_stamp = self.next_stamp.wrapping_add(1);
        self.next_stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::{KeySet, KeySetOptions};
    use crate::policy::Policy;
    use crate::verify::verify_token;
    use base64ct::{Base64UrlUnpadded, Encoding};
    use hmac::{Hmac, Mac};

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn verified(exp: i64) -> Arc<VerifiedToken> {
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"HS256"}"#);
        let claims = Base64UrlUnpadded::encode_string(alloc::format!(r#"{{"sub":"u","exp":{exp}}}"#).as_bytes());
        let input = alloc::format!("{header}.{claims}");
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(input.as_bytes());
        let token = alloc::format!("{input}.{}", Base64UrlUnpadded::encode_string(&mac.finalize().into_bytes()));
        let jwks = alloc::format!(r#"{{"keys":[{{"kty":"oct","k":"{}"}}]}}"#, Base64UrlUnpadded::encode_string(SECRET));
        let keys = KeySet::from_json(jwks.as_bytes(), KeySetOptions { allow_symmetric: true }).unwrap();
        let policy = Policy::from_json(br#"{"algorithms":["HS256"]}"#).unwrap();
        Arc::new(verify_token(&token, &keys, &policy, 100).unwrap())
    }

    fn digest(n: u8) -> TokenDigest {
        [n; 32]
    }

    #[test]
    fn hit_after_insert() {
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(0, digest(1), 7, verified(1000), 100, 100);
        assert!(cache.get(0, &digest(1), 7, 200).is_some());
        assert!(cache.get(1, &digest(1), 7, 200).is_none(), "another provider misses");
        assert_eq!(cache.take_stats(), CacheStats { hits: 1, misses: 1 });
        assert_eq!(cache.take_stats(), CacheStats::default());
    }

    #[test]
    fn entry_dropped_at_exp() {
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(0, digest(1), 7, verified(1000), 100, 100);
        assert!(cache.get(0, &digest(1), 7, 999).is_some());
        assert!(cache.get(0, &digest(1), 7, 1000).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn other_key_version_misses() {
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(0, digest(1), 7, verified(1000), 100, 100);
        assert!(cache.get(0, &digest(1), 8, 200).is_none());
        assert!(cache.is_empty(), "an entry of an older key set is removed");
    }

    #[test]
    fn entry_count_bounded_least_recent_first() {
        let mut cache = TokenCache::new(CacheLimits { max_entries: 2, max_bytes: DEFAULT_MAX_BYTES });
        let token = verified(1000);
        cache.insert(0, digest(1), 0, Arc::clone(&token), 10, 100);
        cache.insert(0, digest(2), 0, Arc::clone(&token), 10, 100);
        assert!(cache.get(0, &digest(1), 0, 100).is_some());
        cache.insert(0, digest(3), 0, Arc::clone(&token), 10, 100);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(0, &digest(2), 0, 100).is_none(), "the least recently used entry went first");
        assert!(cache.get(0, &digest(1), 0, 100).is_some());
        assert!(cache.get(0, &digest(3), 0, 100).is_some());
    }

    #[test]
    fn bytes_bounded() {
        let limits = CacheLimits { max_entries: 100, max_bytes: 8 * 1000 };
        let mut cache = TokenCache::new(limits);
        let token = verified(1000);
        for n in 0..50u8 {
            cache.insert(0, digest(n), 0, Arc::clone(&token), 100, 100);
            assert!(cache.bytes() <= limits.max_bytes, "{} bytes after {n}", cache.bytes());
        }
        assert_eq!(cache.len(), 8000 / (ENTRY_OVERHEAD_BYTES + 300));
        cache.insert(0, digest(99), 0, token, 1000, 100);
        assert!(cache.get(0, &digest(99), 0, 100).is_none(), "an entry over an eighth of the bound is not stored");
    }

    #[test]
    fn purge_drops_expired_only() {
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(0, digest(1), 0, verified(500), 10, 100);
        cache.insert(0, digest(2), 0, verified(1000), 10, 100);
        cache.purge_expired(500);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(0, &digest(2), 0, 600).is_some());
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let mut cache = TokenCache::disabled();
        cache.insert(0, digest(1), 0, verified(1000), 10, 100);
        assert!(cache.is_empty());
    }
}
