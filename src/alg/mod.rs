//! JWS algorithms ([RFC 7518 §3](https://www.rfc-editor.org/rfc/rfc7518#section-3),
//! [RFC 8037 §3.1](https://www.rfc-editor.org/rfc/rfc8037#section-3.1)) and signature checks.
//!
//! Signature checks go through `jwt_compact::Algorithm`, the seam for faster backends.
//! RSA ([`rsa`]), ECDSA on P-256, P-384 and P-521 ([`weierstrass`], over [`montgomery`])
//! and HMAC ([`hmac`], over `sha2`'s compression functions) are portcullis's own
//! verification-only implementations in the `portcullis-crypto` crate (src/crypto/), with keys
//! prepared once at import; Ed25519 ([`eddsa`]) is `ed25519-dalek`'s, with an optional
//! table per key. [`ecdsa`] keeps ES384 and ES512 over `p384` and
//! `p521` for signing in tests and as a reference. The key type and
//! curve are bound to the algorithm here: an RSA key can never verify an HMAC token, a
//! P-384 key never an ES256 token.

pub mod ecdsa;
pub mod eddsa;
pub mod hmac;
pub mod rsa;
pub mod weierstrass;

pub use portcullis_crypto::montgomery;

use alloc::string::String;
use core::fmt;

use jwt_compact::AlgorithmSignature;

use crate::error::VerifyError;
use crate::jwks::PublicKey;

/// The signing key type of the algorithms that only verify: it has no values.
#[derive(Debug)]
pub enum VerifyOnly {}

/// A JWS signature algorithm this crate verifies.
///
/// `none` is not a variant: unsecured tokens are never accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// ECDSA on P-521 with SHA-512.
    ES512,
    /// ECDSA on secp256k1 with SHA-256 ([RFC 8812 §3.2](https://www.rfc-editor.org/rfc/rfc8812#section-3.2)); cargo feature `es256k`.
    ES256K,
    /// EdDSA; only Ed25519 keys are supported.
    EdDSA,
    /// Ed25519, the fully specified name of [RFC 9864](https://www.rfc-editor.org/rfc/rfc9864).
    Ed25519,
}

/// The key a JWK must hold to verify an algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `kty: oct` of at least this many bytes ([RFC 7518 §3.2](https://www.rfc-editor.org/rfc/rfc7518#section-3.2)).
    Oct {
        /// Minimum key length in bytes: the hash output size.
        min_bytes: usize,
    },
    /// `kty: RSA`.
    Rsa,
    /// `kty: EC` with this `crv`.
    Ec(&'static str),
    /// `kty: OKP` with this `crv`.
    Okp(&'static str),
}

impl Algorithm {
    /// Every algorithm, in declaration order.
    pub const ALL: &'static [Algorithm] = &[
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::ES512,
        Self::ES256K,
        Self::EdDSA,
        Self::Ed25519,
    ];

    /// Looks up an `alg` value; names are case-sensitive ([RFC 7515 §4.1.1](https://www.rfc-editor.org/rfc/rfc7515#section-4.1.1)).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|alg| alg.name() == name)
    }

    /// Returns the registered `alg` name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::ES512 => "ES512",
            Self::ES256K => "ES256K",
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
        }
    }

    /// Whether this build can verify the algorithm (ES256K needs the `es256k` feature).
    pub const fn is_supported(self) -> bool {
        !matches!(self, Self::ES256K) || cfg!(feature = "es256k")
    }

    /// Whether the algorithm uses a shared secret.
    pub const fn is_symmetric(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    /// Returns the key a JWK must hold to verify this algorithm.
    pub const fn key_kind(self) -> KeyKind {
        match self {
            Self::HS256 => KeyKind::Oct { min_bytes: 32 },
            Self::HS384 => KeyKind::Oct { min_bytes: 48 },
            Self::HS512 => KeyKind::Oct { min_bytes: 64 },
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyKind::Rsa
            }
            Self::ES256 => KeyKind::Ec("P-256"),
            Self::ES384 => KeyKind::Ec("P-384"),
            Self::ES512 => KeyKind::Ec("P-521"),
            Self::ES256K => KeyKind::Ec("secp256k1"),
            Self::EdDSA | Self::Ed25519 => KeyKind::Okp("Ed25519"),
        }
    }

    /// Returns the fixed signature length in bytes, if the algorithm has one.
    ///
    /// RSA signatures are as long as the modulus, so they are checked against the key.
    pub const fn signature_length(self) -> Option<usize> {
        match self {
            Self::HS256 => Some(32),
            Self::HS384 => Some(48),
            Self::HS512 | Self::ES256 | Self::ES256K | Self::EdDSA | Self::Ed25519 => Some(64),
            Self::ES384 => Some(96),
            Self::ES512 => Some(132),
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Explains why `key` cannot verify `alg`, or returns `None` when it can.
pub fn key_mismatch(alg: Algorithm, key: &PublicKey) -> Option<String> {
    let fits = match (alg.key_kind(), key) {
        (KeyKind::Oct { min_bytes }, PublicKey::Oct(secret)) => {
            if secret.len() < min_bytes {
                return Some(alloc::format!(
                    "{alg} needs a secret of at least {min_bytes} bytes, the key has {}",
                    secret.len()
                ));
            }
            true
        }
        (KeyKind::Rsa, PublicKey::Rsa(_)) => true,
        (KeyKind::Ec(crv), key) => key.curve() == Some(crv),
        (KeyKind::Okp(crv), key) => key.curve() == Some(crv),
        _ => false,
    };
    if fits {
        None
    } else {
        Some(alloc::format!("{alg} needs {}, the key is {}", describe_kind(alg.key_kind()), key.describe()))
    }
}

fn describe_kind(kind: KeyKind) -> String {
    match kind {
        KeyKind::Oct { .. } => String::from("an oct key"),
        KeyKind::Rsa => String::from("an RSA key"),
        KeyKind::Ec(crv) => alloc::format!("an EC key on {crv}"),
        KeyKind::Okp(crv) => alloc::format!("an OKP key on {crv}"),
    }
}

/// Verifies `signature` over `message` with `key` under `alg`.
///
/// The caller has already checked that `alg` is allowed and that the key fits it
/// ([`key_mismatch`]); a mismatch here is reported as an invalid signature.
///
/// # Errors
///
/// [`VerifyError::SignatureLength`] when the signature has the wrong length for the
/// algorithm or the RSA modulus; [`VerifyError::Signature`] when it does not verify.
pub fn verify_signature(
    alg: Algorithm,
    key: &PublicKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    #[cfg(feature = "es256k")]
    use jwt_compact::alg as jc;
    match (alg, key) {
        (Algorithm::HS256, PublicKey::Oct(secret)) => check(&hmac::Hmac::<32>, secret.hmac_key(), message, signature),
        (Algorithm::HS384, PublicKey::Oct(secret)) => check(&hmac::Hmac::<48>, secret.hmac_key(), message, signature),
        (Algorithm::HS512, PublicKey::Oct(secret)) => check(&hmac::Hmac::<64>, secret.hmac_key(), message, signature),
        (
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
            PublicKey::Rsa(rsa_key),
        ) => {
            let expected = rsa_key.modulus_bytes();
            if signature.len() != expected {
                return Err(VerifyError::SignatureLength { expected, actual: signature.len() });
            }
            use rsa::{RsaHash, RsaPadding};
            let scheme = match alg {
                Algorithm::RS256 => rsa::Rsa::new(RsaHash::Sha256, RsaPadding::Pkcs1v15),
                Algorithm::RS384 => rsa::Rsa::new(RsaHash::Sha384, RsaPadding::Pkcs1v15),
                Algorithm::RS512 => rsa::Rsa::new(RsaHash::Sha512, RsaPadding::Pkcs1v15),
                Algorithm::PS256 => rsa::Rsa::new(RsaHash::Sha256, RsaPadding::Pss),
                Algorithm::PS384 => rsa::Rsa::new(RsaHash::Sha384, RsaPadding::Pss),
                _ => rsa::Rsa::new(RsaHash::Sha512, RsaPadding::Pss),
            };
            check(&scheme, rsa_key.key(), message, signature)
        }
        (Algorithm::ES256, PublicKey::P256(point)) => check(&weierstrass::Es256, point, message, signature),
        (Algorithm::ES384, PublicKey::P384(point)) => check(&weierstrass::Es384, point, message, signature),
        (Algorithm::ES512, PublicKey::P521(point)) => check(&weierstrass::Es512, point, message, signature),
        #[cfg(feature = "es256k")]
        (Algorithm::ES256K, PublicKey::Secp256k1(point)) => {
            check(&jc::Es256k::<sha2::Sha256>::default(), point, message, signature)
        }
        (Algorithm::EdDSA | Algorithm::Ed25519, PublicKey::Ed25519(key)) => {
            let signature: &[u8; eddsa::SIGNATURE_LENGTH] = signature
                .try_into()
                .map_err(|_| VerifyError::SignatureLength { expected: eddsa::SIGNATURE_LENGTH, actual: signature.len() })?;
            if key.verify(message, signature) { Ok(()) } else { Err(VerifyError::Signature) }
        }
        _ => Err(VerifyError::Signature),
    }
}

fn check<A: jwt_compact::Algorithm>(
    alg: &A,
    key: &A::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> Result<(), VerifyError> {
    if let Some(expected) = <A::Signature as AlgorithmSignature>::LENGTH {
        if signature.len() != expected.get() {
            return Err(VerifyError::SignatureLength { expected: expected.get(), actual: signature.len() });
        }
    }
    // Zero or out-of-range ECDSA scalars fail here (CVE-2022-21449 "psychic signatures").
    let parsed = A::Signature::try_from_slice(signature).map_err(|_| VerifyError::Signature)?;
    if alg.verify_signature(&parsed, key, message) {
        Ok(())
    } else {
        Err(VerifyError::Signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_case_sensitively() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(*alg));
        }
        for name in ["none", "None", "NONE", "nOnE", "", "rs256", "HS256 ", "ES256k"] {
            assert_eq!(Algorithm::from_name(name), None, "{name}");
        }
    }

    #[test]
    fn signature_lengths() {
        assert_eq!(Algorithm::HS256.signature_length(), Some(32));
        assert_eq!(Algorithm::ES256.signature_length(), Some(64));
        assert_eq!(Algorithm::ES256K.signature_length(), Some(64));
        assert_eq!(Algorithm::ES384.signature_length(), Some(96));
        assert_eq!(Algorithm::ES512.signature_length(), Some(132));
        assert_eq!(Algorithm::EdDSA.signature_length(), Some(64));
        assert_eq!(Algorithm::RS256.signature_length(), None);
    }
}
