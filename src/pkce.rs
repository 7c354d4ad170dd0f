//! Proof Key for Code Exchange ([RFC 7636](https://www.rfc-editor.org/rfc/rfc7636)), S256 only.
//!
//! `plain` is never produced and never accepted: with `plain` anyone who sees the
//! authorization request can redeem the code. Randomness is an argument; the adapters pass
//! bytes from the platform CSPRNG (`crypto.getRandomValues` in browsers and workers).

use alloc::string::String;
use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ErrorCode;

/// Shortest code verifier, in characters ([RFC 7636 §4.1](https://www.rfc-editor.org/rfc/rfc7636#section-4.1)).
pub const MIN_VERIFIER_LENGTH: usize = 43;

/// Longest code verifier, in characters.
pub const MAX_VERIFIER_LENGTH: usize = 128;

/// Default verifier length: 43 characters of base64url carry 258 bits of randomness.
pub const DEFAULT_VERIFIER_LENGTH: usize = 43;

/// The only challenge method produced.
pub const CHALLENGE_METHOD: &str = "S256";

/// A malformed verifier or challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PkceError {
    /// The verifier is shorter than 43 or longer than 128 characters.
    VerifierLength {
        /// Its length.
        actual: usize,
    },
    /// The verifier contains a character outside `[A-Za-z0-9-._~]`.
    VerifierCharacter {
        /// Byte offset of the first such character.
        position: usize,
    },
    /// The requested length is outside 43..=128.
    RequestedLength {
        /// The requested length.
        requested: usize,
    },
    /// Fewer random bytes than characters requested.
    NotEnoughRandomness {
        /// Bytes needed.
        needed: usize,
    },
}

impl PkceError {
    /// Returns the stable code.
    pub const fn code(&self) -> ErrorCode {
        ErrorCode::PkceInvalid
    }
}

impl fmt::Display for PkceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VerifierLength { actual } => write!(
                f,
                "code verifier has {actual} characters; RFC 7636 requires {MIN_VERIFIER_LENGTH} to {MAX_VERIFIER_LENGTH}"
            ),
            Self::VerifierCharacter { position } => write!(
                f,
                "code verifier has a character outside A-Z a-z 0-9 - . _ ~ at position {position}"
            ),
            Self::RequestedLength { requested } => write!(
                f,
                "verifier length {requested} is outside {MIN_VERIFIER_LENGTH} to {MAX_VERIFIER_LENGTH}"
            ),
            Self::NotEnoughRandomness { needed } => write!(f, "{needed} random bytes are needed"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PkceError {}

#[cfg(feature = "std")]
extern crate std;

/// A code verifier with its S256 challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkce {
    /// The secret `code_verifier`, sent only to the token endpoint.
    pub code_verifier: String,
    /// `BASE64URL(SHA256(code_verifier))`, sent in the authorization request.
    pub code_challenge: String,
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce")
            .field("code_verifier", &"<secret>")
            .field("code_challenge", &self.code_challenge)
            .finish()
    }
}

const VERIFIER_ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Builds a verifier of `length` characters from `random` bytes and computes its challenge.
///
/// Each character takes 6 bits of one random byte; 256 is a multiple of 64, so every
/// character is uniform over the base64url alphabet, a subset of the unreserved set.
///
/// # Errors
///
/// [`PkceError::RequestedLength`] outside 43..=128; [`PkceError::NotEnoughRandomness`]
/// when `random` is shorter than `length`.
pub fn create_pkce(random: &[u8], length: usize) -> Result<Pkce, PkceError> {
    if !(MIN_VERIFIER_LENGTH..=MAX_VERIFIER_LENGTH).contains(&length) {
        return Err(PkceError::RequestedLength { requested: length });
    }
    let bytes = random.get(..length).ok_or(PkceError::NotEnoughRandomness { needed: length })?;
    let code_verifier: String = bytes
        .iter()
        .filter_map(|byte| VERIFIER_ALPHABET.get(usize::from(byte & 0x3f)).copied().map(char::from))
        .collect();
    let code_challenge = challenge_unchecked(&code_verifier);
    Ok(Pkce { code_verifier, code_challenge })
}

/// Checks a verifier's length and characters ([RFC 7636 §4.1](https://www.rfc-editor.org/rfc/rfc7636#section-4.1)).
///
/// # Errors
///
/// [`PkceError::VerifierLength`] or [`PkceError::VerifierCharacter`].
pub fn check_verifier(verifier: &str) -> Result<(), PkceError> {
    if let Some(position) = verifier.bytes().position(|byte| !is_unreserved(byte)) {
        return Err(PkceError::VerifierCharacter { position });
    }
    if !(MIN_VERIFIER_LENGTH..=MAX_VERIFIER_LENGTH).contains(&verifier.len()) {
        return Err(PkceError::VerifierLength { actual: verifier.chars().count() });
    }
    Ok(())
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

fn challenge_unchecked(verifier: &str) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(verifier.as_bytes()))
}

/// Computes the S256 challenge of a verifier ([RFC 7636 §4.2](https://www.rfc-editor.org/rfc/rfc7636#section-4.2)).
///
/// # Errors
///
/// As [`check_verifier`].
pub fn code_challenge(verifier: &str) -> Result<String, PkceError> {
    check_verifier(verifier)?;
    Ok(challenge_unchecked(verifier))
}

/// Checks a verifier against a stored challenge in constant time.
///
/// Returns false for a malformed verifier and for any challenge that is not exactly the
/// unpadded base64url S256 value (padded, standard-alphabet or hex forms never match).
pub fn verify_pkce(verifier: &str, challenge: &str) -> bool {
    if check_verifier(verifier).is_err() {
        return false;
    }
    let expected = challenge_unchecked(verifier);
    expected.len() == challenge.len() && bool::from(expected.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC7636_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC7636_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert_eq!(code_challenge(RFC7636_VERIFIER).unwrap(), RFC7636_CHALLENGE);
        assert!(verify_pkce(RFC7636_VERIFIER, RFC7636_CHALLENGE));
    }

    #[test]
    fn wrong_encodings_never_match() {
        for challenge in [
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM=",
            "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3",
            "MTNkMzFlOTYxYTFhZDhlYzJmMTZiMTBjNGM5ODJlMDg3NmE4NzhhZDZkZjE0NDU2NmVlMTg5NGFjYjcwZjljMw",
            "38v3YOi6zQgk1xkqk6Y5dvSDoBHqZrTh3mmWHxxWvyk",
            RFC7636_VERIFIER,
        ] {
            assert!(!verify_pkce(RFC7636_VERIFIER, challenge), "{challenge}");
        }
    }

    #[test]
    fn verifier_length_bounds() {
        assert!(matches!(check_verifier(&"a".repeat(42)), Err(PkceError::VerifierLength { actual: 42 })));
        assert!(check_verifier(&"a".repeat(43)).is_ok());
        assert!(check_verifier(&"a".repeat(128)).is_ok());
        assert!(matches!(check_verifier(&"a".repeat(129)), Err(PkceError::VerifierLength { actual: 129 })));
    }

    #[test]
    fn verifier_charset() {
        let base = "a".repeat(42);
        for bad in ["+", "/", "=", " ", "%", "é"] {
            let verifier = alloc::format!("{base}{bad}");
            assert!(matches!(check_verifier(&verifier), Err(PkceError::VerifierCharacter { position: 42 })), "{bad}");
        }
        assert!(check_verifier(&alloc::format!("{}-._~", "a".repeat(40))).is_ok());
    }

    #[test]
    fn created_verifiers_within_bounds() {
        let random: alloc::vec::Vec<u8> = (0..=255u8).cycle().take(128).collect();
        for length in [43, 64, 128] {
            let pkce = create_pkce(&random, length).unwrap();
            assert_eq!(pkce.code_verifier.len(), length);
            assert!(check_verifier(&pkce.code_verifier).is_ok());
            assert!(verify_pkce(&pkce.code_verifier, &pkce.code_challenge));
        }
        assert_eq!(create_pkce(&random, 42), Err(PkceError::RequestedLength { requested: 42 }));
        assert_eq!(create_pkce(&random, 129), Err(PkceError::RequestedLength { requested: 129 }));
        assert_eq!(create_pkce(&random[..10], 43), Err(PkceError::NotEnoughRandomness { needed: 43 }));
    }
}
