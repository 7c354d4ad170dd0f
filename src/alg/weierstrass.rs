//! ES256, ES384 and ES512 as `jwt_compact::Algorithm`s over the prepared keys of
//! `portcullis-crypto` (its module docs describe the tables and the arithmetic).

use alloc::borrow::Cow;
use core::num::NonZeroUsize;

use jwt_compact::{Algorithm, AlgorithmSignature};
pub use portcullis_crypto::weierstrass::{EcKeyError, EcVerifyingKey, P256VerifyingKey, P384VerifyingKey, P521VerifyingKey};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::VerifyOnly;

/// An ECDSA signature `r || s` of `LEN` bytes; the scalars are range-checked when it is
/// verified.
#[derive(Clone, Debug)]
pub struct EcdsaSignature<const LEN: usize>([u8; LEN]);

impl<const LEN: usize> AlgorithmSignature for EcdsaSignature<LEN> {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(LEN);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        slice.try_into().map(Self).map_err(|_| anyhow::anyhow!("an ECDSA signature here has {LEN} bytes"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// `ES256` over [`P256VerifyingKey`], as a `jwt_compact::Algorithm` that verifies only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Es256;

impl Algorithm for Es256 {
    type SigningKey = VerifyOnly;
    type VerifyingKey = P256VerifyingKey;
    type Signature = EcdsaSignature<64>;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES256")
    }

    fn sign(&self, signing_key: &Self::SigningKey, _message: &[u8]) -> Self::Signature {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Self::Signature, verifying_key: &Self::VerifyingKey, message: &[u8]) -> bool {
        verifying_key.verify_digest(&Sha256::digest(message), &signature.0)
    }
}

/// `ES384` over [`P384VerifyingKey`], as a `jwt_compact::Algorithm` that verifies only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Es384;

impl Algorithm for Es384 {
    type SigningKey = VerifyOnly;
    type VerifyingKey = P384VerifyingKey;
    type Signature = EcdsaSignature<96>;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    fn sign(&self, signing_key: &Self::SigningKey, _message: &[u8]) -> Self::Signature {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Self::Signature, verifying_key: &Self::VerifyingKey, message: &[u8]) -> bool {
        verifying_key.verify_digest(&Sha384::digest(message), &signature.0)
    }
}

/// `ES512` over [`P521VerifyingKey`], as a `jwt_compact::Algorithm` that verifies only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Es512;

impl Algorithm for Es512 {
    type SigningKey = VerifyOnly;
    type VerifyingKey = P521VerifyingKey;
    type Signature = EcdsaSignature<132>;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES512")
    }

    fn sign(&self, signing_key: &Self::SigningKey, _message: &[u8]) -> Self::Signature {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Self::Signature, verifying_key: &Self::VerifyingKey, message: &[u8]) -> bool {
        verifying_key.verify_digest(&Sha512::digest(message), &signature.0)
    }
}
