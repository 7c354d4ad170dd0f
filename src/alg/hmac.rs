//! HS256, HS384 and HS512 as a `jwt_compact::Algorithm` over [`HmacKey`], whose HMAC
//! states are prepared once per key by `portcullis-crypto`.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use core::num::NonZeroUsize;

use jwt_compact::{Algorithm, AlgorithmSignature};
pub use portcullis_crypto::hmac::HmacKey;

use super::VerifyOnly;

/// An HMAC tag of `LEN` bytes.
#[derive(Clone, Debug)]
pub struct HmacTag<const LEN: usize>(Vec<u8>);

impl<const LEN: usize> AlgorithmSignature for HmacTag<LEN> {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(LEN);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        Ok(Self(slice.to_vec()))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.0)
    }
}

/// HS256 (`LEN = 32`), HS384 (48) or HS512 (64) over [`HmacKey`], as a
/// `jwt_compact::Algorithm` that verifies only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hmac<const LEN: usize>;

impl<const LEN: usize> Algorithm for Hmac<LEN> {
    type SigningKey = VerifyOnly;
    type VerifyingKey = HmacKey;
    type Signature = HmacTag<LEN>;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(match LEN {
            32 => "HS256",
            48 => "HS384",
            _ => "HS512",
        })
    }

    fn sign(&self, signing_key: &Self::SigningKey, _message: &[u8]) -> Self::Signature {
        match *signing_key {}
    }

    fn verify_signature(&self, signature: &Self::Signature, verifying_key: &Self::VerifyingKey, message: &[u8]) -> bool {
        signature.0.len() == LEN && verifying_key.verify(message, &signature.0)
    }
}
