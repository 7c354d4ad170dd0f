//! Revocation lists: a document the gates fetch and refresh like a key set, listing the
//! `jti` values of tokens that must no longer be accepted before their `exp`.
//!
//! The format is one JSON object with a `revoked` array of `jti` strings:
//!
//! ```json
//! { "revoked": ["5f1c0a0e-0c53-4f0e-9a55-1c3e8f0b1b57", "Qm9yZWRvbQ"] }
//! ```
//!
//! Other members are ignored, so a publisher may add e.g. `updated_at`. The list is
//! checked after the signature and the claims: a token whose `jti` is listed fails with
//! `token_revoked`, and with a list configured a token without `jti` fails with
//! `claim_missing`, since it could never be revoked. Publishers may drop an entry once
//! the token it names has expired.
//!
//! Fetch timing, stale-if-error and backoff are [`crate::keycache::DocumentCache`]'s.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};

use serde_json::Value;

use crate::claims::Claims;
use crate::dpop::MAX_JTI_BYTES;
use crate::error::VerifyError;
use crate::json;

/// Largest list document read, in bytes.
pub const MAX_LIST_BYTES: usize = 1024 * 1024;

/// Most entries in one list: 32,768 quoted identifiers of 29 bytes, with their separators,
/// fill the byte limit.
pub const MAX_LIST_ENTRIES: usize = 32_768;

/// Default time a fetched list is used before it is fetched again, in milliseconds.
pub const DEFAULT_CACHE_DURATION_MS: u64 = 60_000;

/// Default time the last list keeps serving after its cache duration while fetches fail,
/// in milliseconds.
pub const DEFAULT_STALE_IF_ERROR_MS: u64 = 3_600_000;

/// The revoked token identifiers of one provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationList {
    revoked: BTreeSet<String>,
}

impl RevocationList {
    /// Parses a list document.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong: size, JSON, a missing or non-array `revoked`, an
    /// entry that is not a string of 1 to 256 bytes, or too many entries.
    pub fn from_json(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_LIST_BYTES {
            return Err(alloc::format!("the revocation list is {} bytes, more than the maximum of {MAX_LIST_BYTES}", bytes.len()));
        }
        let document = json::parse_object(bytes).map_err(|reason| alloc::format!("the revocation list is invalid: {reason}"))?;
        let entries = match document.get("revoked") {
            Some(Value::Array(entries)) => entries,
            Some(other) => return Err(alloc::format!("the revocation list's `revoked` must be an array, found {}", json::kind(other))),
            None => return Err(String::from("the revocation list has no `revoked` array")),
        };
        if entries.len() > MAX_LIST_ENTRIES {
            return Err(alloc::format!("the revocation list has {} entries, more than the maximum of {MAX_LIST_ENTRIES}", entries.len()));
        }
        let mut revoked = BTreeSet::new();
        for (index, entry) in entries.iter().enumerate() {
            match entry {
                Value::String(jti) if !jti.is_empty() && jti.len() <= MAX_JTI_BYTES => {
                    revoked.insert(jti.clone());
                }
                _ => {
                    return Err(alloc::format!("the revocation list's `revoked[{index}]` must be a string of 1 to {MAX_JTI_BYTES} bytes"));
                }
            }
        }
        Ok(Self { revoked })
    }

    /// Whether `jti` is listed.
    pub fn contains(&self, jti: &str) -> bool {
        self.revoked.contains(jti)
    }

    /// Number of listed identifiers.
    pub fn len(&self) -> usize {
        self.revoked.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.revoked.is_empty()
    }

    /// Checks a token's claims against the list.
    ///
    /// # Errors
    ///
    /// [`VerifyError::MissingClaim`] without `jti`; [`VerifyError::Revoked`] when listed.
    pub fn check(&self, claims: &Claims) -> Result<(), VerifyError> {
        let jti = claims.jti.as_deref().ok_or_else(|| VerifyError::MissingClaim { claim: String::from("jti") })?;
        if self.contains(jti) {
            return Err(VerifyError::Revoked { jti: jti.to_string() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parsed_and_checked() {
        let list = RevocationList::from_json(br#"{"revoked":["a","b"],"updated_at":1}"#).unwrap();
        assert_eq!(list.len(), 2);
        let revoked = Claims::from_json(br#"{"jti":"a"}"#).unwrap();
        assert_eq!(list.check(&revoked), Err(VerifyError::Revoked { jti: String::from("a") }));
        let fine = Claims::from_json(br#"{"jti":"c"}"#).unwrap();
        assert!(list.check(&fine).is_ok());
        let no_jti = Claims::from_json(br#"{"sub":"x"}"#).unwrap();
        assert!(matches!(list.check(&no_jti), Err(VerifyError::MissingClaim { .. })));
    }

    #[test]
    fn bad_lists_rejected() {
        for body in [r#"{}"#, r#"{"revoked":"a"}"#, r#"{"revoked":[1]}"#, r#"{"revoked":[""]}"#, r#"[]"#, "x"] {
            assert!(RevocationList::from_json(body.as_bytes()).is_err(), "{body}");
        }
        let long = alloc::format!(r#"{{"revoked":["{}"]}}"#, "a".repeat(MAX_JTI_BYTES + 1));
        assert!(RevocationList::from_json(long.as_bytes()).is_err());
    }
}
