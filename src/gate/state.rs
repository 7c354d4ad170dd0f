//! What a decision reads besides the request and the configuration: remote keys,
//! revocation lists, introspection answers, the DPoP replay cache and the nonce secret.
//!
//! The gate does no I/O, so adapters implement [`GateState`] over their caches. A lookup
//! that needs a fetch or a callout answers `Pending`; the adapter starts it, and decides
//! the request again once it has finished.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use zeroize::Zeroizing;

use crate::dpop::replay::ReplayCheck;
use crate::dpop::VerifiedProof;
use crate::introspection::IntrospectionAnswer;
use crate::jwks::KeySet;
use crate::keycache::{DocumentCache, KeyCache, Served};
use crate::revocation::RevocationList;

/// The state of a remote provider's keys.
#[derive(Debug)]
pub enum KeyLookup<'a> {
    /// Keys to verify with (possibly stale within the stale-if-error window).
    Ready {
        /// The key set.
        keys: &'a KeySet,
        /// Identifier of the set's content. Cached tokens verified with another version are
        /// verified again.
        version: u64,
    },
    /// No keys yet; a fetch is under way or will start.
    Pending,
    /// No keys and none expected soon.
    Unavailable(String),
}

impl<'a> KeyLookup<'a> {
    /// Returns the state of the keys in `cache` at `now_ms`: ready while they are fresh or
    /// stale, pending until a first fetch or a refetch after idling finishes, and
    /// unavailable once fetches failed with no keys left to serve.
    ///
    /// After a failure, requests fail at once instead of waiting for a retry that the
    /// backoff may delay for minutes.
    pub fn from_cache(cache: &'a KeyCache, now_ms: u64) -> Self {
        match cache.served(now_ms) {
            Served::Fresh(_) | Served::Stale(_) => match cache.current() {
                Some(keys) => KeyLookup::Ready { keys, version: cache.version() },
                None => KeyLookup::Pending,
            },
            Served::Nothing { reason: None } => KeyLookup::Pending,
            Served::Nothing { reason: Some(reason) } => KeyLookup::Unavailable(reason),
        }
    }
}

/// The state of a provider's revocation list.
#[derive(Debug)]
pub enum ListLookup<'a> {
    /// The list to check against (possibly stale within the stale-if-error window).
    Ready(&'a RevocationList),
    /// No list yet; a fetch is under way or will start.
    Pending,
    /// No list and none expected soon.
    Unavailable(String),
}

impl<'a> ListLookup<'a> {
    /// Returns the state of the list in `cache` at `now_ms`: ready while it is fresh or
    /// stale, pending until a first fetch or a refetch after idling finishes, and
    /// unavailable once fetches failed with no list left to serve.
    pub fn from_cache(cache: &'a DocumentCache<RevocationList>, now_ms: u64) -> Self {
        match cache.served(now_ms) {
            Served::Fresh(_) | Served::Stale(_) => match cache.current() {
                Some(list) => ListLookup::Ready(list),
                None => ListLookup::Pending,
            },
            Served::Nothing { reason: None } => ListLookup::Pending,
            Served::Nothing { reason: Some(reason) } => ListLookup::Unavailable(reason),
        }
    }
}

/// The introspection answer for one token.
#[derive(Debug)]
pub enum IntrospectionLookup {
    /// The endpoint's answer (fresh, or stale while the endpoint fails).
    Answer(Arc<IntrospectionAnswer>),
    /// A call is under way or will start.
    Pending,
    /// No answer and none expected soon: the endpoint is failing.
    Unavailable(String),
}

/// The state a gate reads through its adapter.
///
/// Only [`GateState::lookup`] and [`GateState::refetch_for_unknown_kid`] are required; the
/// other methods default to "not available here", which fails requests of providers that
/// use them.
pub trait GateState {
    /// Returns the keys of provider `index` as of now.
    fn lookup(&mut self, index: usize) -> KeyLookup<'_>;

    /// Records that a token named a `kid` the keys lack. Returns true when a refetch will
    /// run (at most once per cooldown), so the decision waits for it.
    fn refetch_for_unknown_kid(&mut self, index: usize) -> bool;

    /// Returns the revocation list of provider `index` as of now.
    fn revocation_list(&mut self, _index: usize) -> ListLookup<'_> {
        ListLookup::Unavailable(String::from("revocation lists are not available here"))
    }

    /// Returns the introspection answer of provider `index` for `token`, starting a call
    /// when none is cached.
    fn introspect(&mut self, _index: usize, _token: &str) -> IntrospectionLookup {
        IntrospectionLookup::Unavailable(String::from("introspection is not available here"))
    }

    /// Records a verified DPoP proof of provider `index` whose `iat` is acceptable within
    /// `max_age` seconds of `now`, and reports whether it was seen before.
    fn record_proof(&mut self, _index: usize, _proof: &VerifiedProof, _max_age: u64, _now: u64) -> ReplayCheck {
        ReplayCheck::Unavailable(String::from("no DPoP replay cache is available here"))
    }

    /// Returns the secret of DPoP nonces for providers that configure none.
    fn nonce_secret(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        None
    }
}
