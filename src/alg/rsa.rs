//! RS256/384/512 and PS256/384/512 as a `jwt_compact::Algorithm` over
//! [`RsaVerifyingKey`], the dedicated public-key path of `portcullis-crypto` (its module
//! docs describe the arithmetic and the padding checks).

use alloc::borrow::Cow;
use alloc::vec::Vec;

use jwt_compact::{Algorithm, AlgorithmSignature};
pub use portcullis_crypto::rsa::{RsaHash, RsaKeyError, RsaPadding, RsaVerifyingKey, MAX_RSA_BITS};

use super::VerifyOnly;

/// An RSA signature: as many bytes as the modulus.
#[derive(Clone, Debug)]
pub struct RsaSignature(Vec<u8>);

impl AlgorithmSignature for RsaSignature {
    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(Self(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// An RSA JWS algorithm over [`RsaVerifyingKey`], as a `jwt_compact::Algorithm` that
/// verifies only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsa {
    hash: RsaHash,
    padding: RsaPadding,
}

impl Rsa {
    /// Creates the algorithm for a hash and a padding.
    pub const fn new(hash: RsaHash, padding: RsaPadding) -> Self {
        Self { hash, padding }
    }
}

impl Algorithm for Rsa {
    type SigningKey = VerifyOnly;
    type VerifyingKey = RsaVerifyingKey;
    type Signature = RsaSignature;

    fn name(&self) -> Cow<'static, str> {
        let name = match (self.padding, self.hash) {
            (RsaPadding::Pkcs1v15, RsaHash::Sha256) => "RS256",
            (RsaPadding::Pkcs1v15, RsaHash::Sha384) => "RS384",
            (RsaPadding::Pkcs1v15, RsaHash::Sha512) => "RS512",
            (RsaPadding::Pss, RsaHash::Sha256) => "PS256",
            (RsaPadding::Pss, RsaHash::Sha384) => "PS384",
            (RsaPadding::Pss, RsaHash::Sha512) => "PS512",
        };
        Cow::Borrowed(name)
    }

    fn sign(&self, signing_key: &Self::SigningKey, _message: &[u8]) -> Self::Signature {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Self::Signature, verifying_key: &Self::VerifyingKey, message: &[u8]) -> bool {
        verifying_key.verify(self.hash, self.padding, message, &signature.0)
    }
}
