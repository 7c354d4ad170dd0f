//! Server-issued DPoP nonces ([RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8))
//! without server state.
//!
//! A nonce names a time window and carries an HMAC-SHA256 of that window under a secret
//! key: `base64url(window (8 bytes, big-endian) || first 16 bytes of the MAC)`. The gate
//! issues the nonce of the current window and accepts those of the current and the
//! previous one, so a nonce stays valid for between one and two lifetimes. Gates that
//! share the secret accept each other's nonces; nothing else needs to be shared.

use alloc::string::String;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Shortest nonce secret, in bytes: the HMAC-SHA256 key size.
pub const MIN_SECRET_BYTES: usize = 32;

/// Default time one nonce is issued, in seconds.
pub const DEFAULT_NONCE_LIFETIME_SECONDS: u64 = 300;

/// Bytes of the MAC kept in a nonce: 128 bits, beyond guessing.
const MAC_BYTES: usize = 16;

/// Text mixed into every MAC, so the secret cannot produce valid values for another use.
const CONTEXT: &[u8] = b"portcullis DPoP nonce v1\0";

/// Issues and checks the nonces of one secret.
#[derive(Clone)]
pub struct NonceIssuer {
    secret: Zeroizing<Vec<u8>>,
    lifetime_seconds: u64,
}

impl core::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NonceIssuer").field("lifetime_seconds", &self.lifetime_seconds).finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// Creates an issuer. `lifetime_seconds` is raised to at least 1.
    pub fn new(secret: &[u8], lifetime_seconds: u64) -> Self {
        Self { secret: Zeroizing::new(secret.to_vec()), lifetime_seconds: lifetime_seconds.max(1) }
    }

    /// Returns the nonce of `window`.
    pub fn nonce_for_window(&self, window: u64) -> String {
        // HMAC takes keys of any length, so `new_from_slice` cannot fail here.
        let mut value = Vec::with_capacity(8 + MAC_BYTES);
        value.extend_from_slice(&window.to_be_bytes());
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) {
            mac.update(CONTEXT);
            mac.update(&window.to_be_bytes());
            let tag = mac.finalize().into_bytes();
            value.extend_from_slice(tag.get(..MAC_BYTES).unwrap_or_default());
        }
        Base64UrlUnpadded::encode_string(&value)
    }

    /// Returns the nonce to issue at `now` (seconds since the Unix epoch).
    pub fn current(&self, now: u64) -> String {
        self.nonce_for_window(now / self.lifetime_seconds)
    }

    /// Returns the nonces accepted at `now`: the current one, then the previous one.
    pub fn accepted(&self, now: u64) -> [String; 2] {
        let window = now / self.lifetime_seconds;
        [self.nonce_for_window(window), self.nonce_for_window(window.saturating_sub(1))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_accepted_for_two_windows() {
        let issuer = NonceIssuer::new(&[1u8; 32], 300);
        let issued = issuer.current(1_000);
        assert!(issuer.accepted(1_199).contains(&issued), "the same window");
        assert!(issuer.accepted(1_200).contains(&issued), "the next window");
        assert!(!issuer.accepted(1_500).contains(&issued), "two windows later");
        assert_eq!(issued.len(), 32);
    }

    #[test]
    fn nonce_depends_on_secret() {
        let one = NonceIssuer::new(&[1u8; 32], 300);
        let other = NonceIssuer::new(&[2u8; 32], 300);
        assert_ne!(one.current(1_000), other.current(1_000));
        assert_eq!(one.current(1_000), NonceIssuer::new(&[1u8; 32], 300).current(1_000));
    }
}
