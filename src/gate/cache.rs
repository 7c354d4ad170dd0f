//! A bounded cache of verified tokens, so a token seen again skips signature verification.
//!
//! An entry keeps the token it was verified for, and a lookup is a hit only when the
//! presented token equals it, compared in full and in constant time. Entries are found
//! by the provider and the token's last [`TAIL_BYTES`] bytes, the end of its signature.
//! Two tokens may end alike: the comparison finds them different, and the lookup misses.
//! Naming entries by a keyed hash of the whole token instead took 13 to 16 % of the
//! size-tuned Envoy filter's time per cached-token request in a profile. The comparison
//! reads each byte once, eight at a time.
//! An entry records the version of the key set that verified it and is used only while
//! that version is served. A key rotation therefore re-verifies every cached token.
//! Entries are dropped at the token's `exp`, and a hit still runs the policy's time
//! checks (`exp`, `nbf`, `iat`, maximum age) at the current time. Failures are never
//! cached. Tokens without `exp` are not cached, because nothing would bound their entry's
//! lifetime.
//!
//! Both the number of entries and an estimate of their memory are bounded; the least
//! recently used entry is evicted first. The cache does no I/O and reads no clock.

use alloc::boxed::Box;
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

/// Estimated bytes of an entry besides its claims and its token: the map nodes, the tail
/// and the typed registered claims.
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

/// The SHA-256 digest of a token, as [`TokenCache::digest`] returns it.
pub type TokenDigest = [u8; 32];

/// A token's last [`TAIL_BYTES`] bytes as two little-endian words, zero-padded at the
/// front for a shorter token, as [`TokenCache::tail`] returns them.
pub type TokenTail = (u64, u64);

/// Bytes at the end of a token that name its entry: 96 bits of a base64url signature.
pub const TAIL_BYTES: usize = 16;

type Key = (usize, TokenTail);

#[derive(Debug)]
struct Entry {
    /// The token as presented when it was verified.
    text: Box<str>,
    token: Arc<VerifiedToken>,
    key_version: u64,
    exp: i64,
    cost: usize,
    /// Stamp of the insertion, which no other entry has.
    stored: u64,
    /// Stamp of the last use.
    used: u64,
    /// Stamp under which `recency` holds the entry: its last use when eviction last
    /// looked at it, so at most `used`.
    queued: u64,
}

/// A reference to the entry that [`TokenCache::find`] compared with a token and found
/// equal. [`TokenCache::get_matched`] takes it instead of comparing the token again, and
/// misses if the entry was replaced since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryMatch {
    provider: usize,
    tail: TokenTail,
    stored: u64,
}

impl EntryMatch {
    /// Returns the provider whose entry it is.
    pub fn provider(&self) -> usize {
        self.provider
    }
}

/// Verified tokens by provider and the end of the token.
#[derive(Debug, Default)]
pub struct TokenCache {
    limits: CacheLimits,
    /// Entries by key, in a B-tree rather than a hash map. When deleted slots fill a full
    /// hash map, hashbrown reallocates its table at twice the size, long after the cache
    /// filled up. A B-tree allocates and frees one node at a time, so its memory stays flat.
    entries: BTreeMap<Key, Entry>,
    /// Keys by an earlier use, oldest first. A hit only records its stamp in the entry;
    /// eviction moves an entry used since it was queued to its last use before it
    /// evicts anything, so it still evicts the least recently used entry.
    /// A set of (stamp, key) pairs rather than a map, so that it has the type of `expiry`
    /// and the B-tree code is compiled once for both.
    recency: BTreeSet<(u64, Key)>,
    /// Keys by `exp`, earliest first. Only tokens with `exp` after the current time are
    /// stored, so `exp` is positive here.
    expiry: BTreeSet<(u64, Key)>,
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

    /// Returns the SHA-256 digest of a token. It names tokens where every worker must
    /// compute the same name, as the introspection answers shared between workers do;
    /// this cache names its entries with [`TokenCache::tail`].
    pub fn digest(token: &str) -> TokenDigest {
        Sha256::digest(token.as_bytes()).into()
    }

    /// Returns the name of a token's entry: its last [`TAIL_BYTES`] bytes.
    pub fn tail(token: &str) -> TokenTail {
        let bytes = token.as_bytes();
        let mut tail = [0u8; TAIL_BYTES];
        let start = bytes.len().saturating_sub(TAIL_BYTES);
        if let (Some(end), Some(to)) = (bytes.get(start..), tail.get_mut(TAIL_BYTES - (bytes.len() - start)..)) {
            to.copy_from_slice(end);
        }
        let word = |at: usize| tail.get(at..at + 8).and_then(|bytes| bytes.try_into().ok()).map_or(0, u64::from_le_bytes);
        (word(0), word(8))
    }

    /// Returns the entry of `provider` for `token`, which ends in `tail`, if it was
    /// verified by key-set version `key_version` and `now` (seconds) is before its `exp`.
    ///
    /// Entries that are expired or belong to another key-set version are removed; an
    /// entry of another token with the same end stays. The caller still runs the
    /// policy's time checks on the returned token.
    pub fn get(&mut self, provider: usize, tail: &TokenTail, token: &str, key_version: u64, now: i64) -> Option<Arc<VerifiedToken>> {
        let matched = self.find(provider, tail, token);
        self.get_matched(matched, key_version, now)
    }

    /// Returns the entry that [`TokenCache::find`] found, as [`TokenCache::get`] does,
    /// unless it was replaced or removed since. `None` counts a miss.
    pub fn get_matched(&mut self, matched: Option<EntryMatch>, key_version: u64, now: i64) -> Option<Arc<VerifiedToken>> {
        let Some(matched) = matched else {
            self.stats.misses += 1;
            return None;
        };
        let key = (matched.provider, matched.tail);
        let usable = match self.entries.get(&key) {
            Some(entry) if entry.stored == matched.stored => entry.key_version == key_version && now < entry.exp,
            _ => {
                self.stats.misses += 1;
                return None;
            }
        };
        if !usable {
            self.remove(&key);
            self.stats.misses += 1;
            return None;
        }
        let stamp = self.next_stamp();
        let entry = self.entries.get_mut(&key)?;
        entry.used = stamp;
        self.stats.hits += 1;
        Some(Arc::clone(&entry.token))
    }

    /// Returns whether `provider` has an entry for `token`, which ends in `tail`, whatever
    /// its key-set version and `exp`, without counting a hit or a miss or marking it used.
    pub fn contains(&self, provider: usize, tail: &TokenTail, token: &str) -> bool {
        self.find(provider, tail, token).is_some()
    }

    /// Returns the entry of `provider` for `token`, which ends in `tail`, whatever its
    /// key-set version and `exp`, for [`TokenCache::get_matched`]. Counts nothing.
    pub fn find(&self, provider: usize, tail: &TokenTail, token: &str) -> Option<EntryMatch> {
        let entry = self.entries.get(&(provider, *tail)).filter(|entry| same_token(&entry.text, token))?;
        Some(EntryMatch { provider, tail: *tail, stored: entry.stored })
    }

    /// Stores a token that `provider` verified with key-set version `key_version`.
    ///
    /// `text` is the token as presented and `tail` its end. `claims_bytes` is the size of
    /// the decoded claims JSON, for the memory estimate. Tokens without `exp`, tokens
    /// already expired at `now`, and tokens whose entry would take more than an eighth of
    /// the byte bound are not stored. An entry of another token with the same end is
    /// replaced.
    #[allow(clippy::too_many_arguments)]
    pub fn insert(&mut self, provider: usize, tail: TokenTail, text: &str, key_version: u64, token: Arc<VerifiedToken>, claims_bytes: usize, now: i64) {
        if !self.is_enabled() {
            return;
        }
        let Some(exp) = token.claims().exp else { return };
        if exp <= now {
            return;
        }
        let cost = ENTRY_OVERHEAD_BYTES.saturating_add(claims_bytes.saturating_mul(BYTES_PER_CLAIMS_BYTE)).saturating_add(text.len());
        if cost > self.limits.max_bytes / MAX_ENTRY_SHARE {
            return;
        }
        let key = (provider, tail);
        self.remove(&key);
        self.purge_expired(now);
        while self.entries.len() >= self.limits.max_entries || self.bytes.saturating_add(cost) > self.limits.max_bytes {
            let Some((queued, oldest)) = self.recency.pop_first() else { break };
            match self.entries.get_mut(&oldest) {
                Some(entry) if entry.used != queued => {
                    entry.queued = entry.used;
                    self.recency.insert((entry.used, oldest));
                }
                _ => self.remove(&oldest),
            }
        }
        let stamp = self.next_stamp();
        self.recency.insert((stamp, key));
        self.expiry.insert((expiry_stamp(exp), key));
        self.bytes = self.bytes.saturating_add(cost);
        self.entries.insert(key, Entry { text: Box::from(text), token, key_version, exp, cost, stored: stamp, used: stamp, queued: stamp });
    }

    /// Drops every entry whose `exp` is at or before `now` (seconds).
    pub fn purge_expired(&mut self, now: i64) {
        while let Some(&(exp, key)) = self.expiry.first() {
            if exp > expiry_stamp(now) {
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
            self.recency.remove(&(entry.queued, *key));
            self.expiry.remove(&(expiry_stamp(entry.exp), *key));
            self.bytes = self.bytes.saturating_sub(entry.cost);
        }
    }

    fn next_stamp(&mut self) -> u64 {
        self.next_stamp = self.next_stamp.wrapping_add(1);
        self.next_stamp
    }
}

/// Returns whether two tokens are equal, in a time that depends only on their lengths,
/// so that timing reveals nothing to a client about a cached token's bytes.
fn same_token(stored: &str, presented: &str) -> bool {
    let (stored, presented) = (stored.as_bytes(), presented.as_bytes());
    if stored.len() != presented.len() {
        return false;
    }
    let word = |bytes: &[u8]| bytes.try_into().map_or(u64::MAX, u64::from_le_bytes);
    let mut stored_words = stored.chunks_exact(8);
    let mut presented_words = presented.chunks_exact(8);
    let mut difference = 0u64;
    for (left, right) in stored_words.by_ref().zip(presented_words.by_ref()) {
        difference |= word(left) ^ word(right);
    }
    for (left, right) in stored_words.remainder().iter().zip(presented_words.remainder()) {
        difference |= u64::from(left ^ right);
    }
    difference == 0
}

/// Converts an `exp` or a current time (seconds) to a key of `expiry`. Times before 1970
/// count as 0, which no clock that the gate reads returns.
fn expiry_stamp(seconds: i64) -> u64 {
    u64::try_from(seconds).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::{KeySet, KeySetOptions};
    use crate::policy::Policy;
    use crate::verify::verify_token;
    use alloc::string::String;
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

    fn tail(n: u8) -> TokenTail {
        (u64::from(n), u64::from(n))
    }

    fn text(n: u8) -> String {
        alloc::format!("token-{n}")
    }

    #[test]
    fn hit_after_insert() {
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(0, tail(1), &text(1), 7, verified(1000), 100, 100);
        assert!(cache.get(0, &tail(1), &text(1), 7, 200).is_some());
        assert!(cache.get(1, &tail(1), &text(1), 7, 200).is_none(), "another provider misses");
        assert_eq!(cache.take_stats(), CacheStats { hits: 1, misses: 1 });
        assert_eq!(cache.take_stats(), CacheStats::default());
    }

    #[test]
    fn entry_dropped_at_exp() {
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(0, tail(1), &text(1), 7, verified(1000), 100, 100);
        assert!(cache.get(0, &tail(1), &text(1), 7, 999).is_some());
        assert!(cache.get(0, &tail(1), &text(1), 7, 1000).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn other_key_version_misses() {
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(0, tail(1), &text(1), 7, verified(1000), 100, 100);
        assert!(cache.get(0, &tail(1), &text(1), 8, 200).is_none());
        assert!(cache.is_empty(), "an entry of an older key set is removed");
    }

    #[test]
    fn entry_count_bounded_least_recent_first() {
        let mut cache = TokenCache::new(CacheLimits { max_entries: 2, max_bytes: DEFAULT_MAX_BYTES });
        let token = verified(1000);
        cache.insert(0, tail(1), &text(1), 0, Arc::clone(&token), 10, 100);
        cache.insert(0, tail(2), &text(2), 0, Arc::clone(&token), 10, 100);
        assert!(cache.get(0, &tail(1), &text(1), 0, 100).is_some());
        cache.insert(0, tail(3), &text(3), 0, Arc::clone(&token), 10, 100);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(0, &tail(2), &text(2), 0, 100).is_none(), "the least recently used entry went first");
        assert!(cache.get(0, &tail(1), &text(1), 0, 100).is_some());
        assert!(cache.get(0, &tail(3), &text(3), 0, 100).is_some());
    }

    #[test]
    fn bytes_bounded() {
        let limits = CacheLimits { max_entries: 100, max_bytes: 8 * 1000 };
        let mut cache = TokenCache::new(limits);
        let token = verified(1000);
        for n in 0..50u8 {
            cache.insert(0, tail(n), &text(n), 0, Arc::clone(&token), 100, 100);
            assert!(cache.bytes() <= limits.max_bytes, "{} bytes after {n}", cache.bytes());
        }
        assert_eq!(cache.len(), 8000 / (ENTRY_OVERHEAD_BYTES + 300));
        cache.insert(0, tail(99), &text(99), 0, token, 1000, 100);
        assert!(cache.get(0, &tail(99), &text(99), 0, 100).is_none(), "an entry over an eighth of the bound is not stored");
    }

    #[test]
    fn purge_drops_expired_only() {
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(0, tail(1), &text(1), 0, verified(500), 10, 100);
        cache.insert(0, tail(2), &text(2), 0, verified(1000), 10, 100);
        cache.purge_expired(500);
        assert_eq!(cache.len(), 1);
        assert!(cache.get(0, &tail(2), &text(2), 0, 600).is_some());
    }

    #[test]
    fn disabled_cache_stores_nothing() {
        let mut cache = TokenCache::disabled();
        cache.insert(0, tail(1), &text(1), 0, verified(1000), 10, 100);
        assert!(cache.is_empty());
    }

    #[test]
    fn tail_is_the_last_bytes() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl";
        let end = &token.as_bytes()[token.len() - TAIL_BYTES..];
        let word = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap());
        assert_eq!(TokenCache::tail(token), (word(&end[..8]), word(&end[8..])));
        let mut seen = alloc::collections::BTreeSet::new();
        seen.insert(TokenCache::tail(token));
        for index in token.len() - TAIL_BYTES..token.len() {
            let mut changed = String::from(token);
            changed.replace_range(index..=index, if &token[index..=index] == "A" { "B" } else { "A" });
            assert!(seen.insert(TokenCache::tail(&changed)), "changing byte {index} changes the tail");
        }
        assert_eq!(TokenCache::tail("ab"), (0, u64::from_le_bytes(*b"\0\0\0\0\0\0ab")), "a short token is padded in front");
        assert_eq!(TokenCache::tail(""), (0, 0));
    }

    #[test]
    fn only_the_same_token_hits() {
        let mut cache = TokenCache::new(CacheLimits::default());
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl";
        let tail = TokenCache::tail(token);
        cache.insert(0, tail, token, 0, verified(1000), 10, 100);
        // Every byte before the tail, changed: the same tail, another token.
        for index in 0..token.len() - TAIL_BYTES {
            let mut changed = String::from(token);
            changed.replace_range(index..=index, if &token[index..=index] == "e" { "f" } else { "e" });
            assert_eq!(TokenCache::tail(&changed), tail);
            assert!(!cache.contains(0, &tail, &changed), "byte {index}");
            assert!(cache.get(0, &tail, &changed, 0, 200).is_none(), "byte {index}");
        }
        let longer = alloc::format!("x{token}");
        assert!(cache.get(0, &TokenCache::tail(&longer), &longer, 0, 200).is_none(), "one more byte in front");
        assert!(cache.get(0, &tail, token, 0, 200).is_some(), "the cached token stays");
        assert_eq!(cache.take_stats(), CacheStats { hits: 1, misses: 1 + (token.len() - TAIL_BYTES) as u64 });
        let replacement = String::from(token).replacen("eyJz", "eyJ0", 1);
        cache.insert(0, tail, &replacement, 0, verified(1000), 10, 100);
        assert_eq!(cache.len(), 1, "a token with the same tail replaces the entry");
        assert!(cache.get(0, &tail, token, 0, 200).is_none());
        assert!(cache.get(0, &tail, &replacement, 0, 200).is_some());
    }

    #[test]
    fn match_expires_when_entry_replaced() {
        let mut cache = TokenCache::new(CacheLimits::default());
        cache.insert(0, tail(1), &text(1), 0, verified(1000), 10, 100);
        let matched = cache.find(0, &tail(1), &text(1));
        assert!(matched.is_some());
        assert_eq!(cache.find(0, &tail(1), &text(2)), None, "another token with the same hash");
        assert!(cache.get_matched(matched, 0, 200).is_some());
        cache.insert(0, tail(1), &text(2), 0, verified(1000), 10, 100);
        assert!(cache.get_matched(matched, 0, 200).is_none(), "the entry was replaced since");
        assert!(cache.get_matched(None, 0, 200).is_none());
        assert_eq!(cache.take_stats(), CacheStats { hits: 1, misses: 2 });
        assert!(cache.get_matched(cache.find(0, &tail(1), &text(2)), 0, 200).is_some());
    }

    #[test]
    fn comparison_sees_every_byte() {
        for len in 0..40 {
            let stored: String = (0..len).map(|index| char::from(b'a' + (index % 26) as u8)).collect();
            assert!(same_token(&stored, &stored.clone()), "{len}");
            for index in 0..len {
                let mut changed = stored.clone().into_bytes();
                changed[index] = b'Z';
                assert!(!same_token(&stored, core::str::from_utf8(&changed).unwrap()), "{len} {index}");
            }
            assert!(!same_token(&stored, &alloc::format!("{stored}a")));
        }
    }

    #[test]
    fn eviction_follows_last_use() {
        let mut cache = TokenCache::new(CacheLimits { max_entries: 3, max_bytes: DEFAULT_MAX_BYTES });
        let token = verified(1000);
        for n in 1..=3 {
            cache.insert(0, tail(n), &text(n), 0, Arc::clone(&token), 10, 100);
        }
        // Last uses, oldest first: 2, 3, 1, then 2 again.
        for n in [2, 3, 1, 2] {
            assert!(cache.get(0, &tail(n), &text(n), 0, 100).is_some());
        }
        cache.insert(0, tail(4), &text(4), 0, Arc::clone(&token), 10, 100);
        assert!(!cache.contains(0, &tail(3), &text(3)), "3 was used least recently");
        cache.insert(0, tail(5), &text(5), 0, Arc::clone(&token), 10, 100);
        assert!(!cache.contains(0, &tail(1), &text(1)), "then 1");
        for n in [2, 4, 5] {
            assert!(cache.contains(0, &tail(n), &text(n)), "{n} stays");
        }
        assert_eq!(cache.len(), 3);
    }
}
