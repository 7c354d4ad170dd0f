//! ES384 and ES512 ([RFC 7518 §3.4](https://www.rfc-editor.org/rfc/rfc7518#section-3.4))
//! as `jwt_compact::Algorithm` implementations over `p384` and `p521`.
//!
//! JWS carries ECDSA signatures as `R || S`, each scalar as a fixed-width big-endian
//! integer: 48 bytes each on P-384, 66 bytes each on P-521. Parsing rejects zero and
//! out-of-range scalars.

use alloc::borrow::Cow;
use core::num::NonZeroUsize;

use jwt_compact::{Algorithm, AlgorithmSignature};
use p384::ecdsa::signature::{Signer as _, Verifier as _};
use p521::ecdsa::signature::RandomizedSigner as _;
use sha2::{Digest as _, Sha512};

/// An ES384 signature.
#[derive(Clone, Debug)]
pub struct Es384Signature(p384::ecdsa::Signature);

impl AlgorithmSignature for Es384Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(96);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        p384::ecdsa::Signature::from_slice(slice)
            .map(Self)
            .map_err(|_| anyhow::anyhow!("invalid P-384 signature"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

/// The `ES384` algorithm: ECDSA on P-384 with SHA-384.
#[derive(Clone, Copy, Debug, Default)]
pub struct Es384;

impl Algorithm for Es384 {
    type SigningKey = p384::ecdsa::SigningKey;
    type VerifyingKey = p384::ecdsa::VerifyingKey;
    type Signature = Es384Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES384")
    }

    fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
        Es384Signature(signing_key.sign(message))
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Self::VerifyingKey,
        message: &[u8],
    ) -> bool {
        verifying_key.verify(message, &signature.0).is_ok()
    }
}

/// An ES512 signature.
#[derive(Clone, Debug)]
pub struct Es512Signature(p521::ecdsa::Signature);

impl AlgorithmSignature for Es512Signature {
    const LENGTH: Option<NonZeroUsize> = NonZeroUsize::new(132);

    fn try_from_slice(slice: &[u8]) -> anyhow::Result<Self> {
        p521::ecdsa::Signature::from_slice(slice)
            .map(Self)
            .map_err(|_| anyhow::anyhow!("invalid P-521 signature"))
    }

    fn as_bytes(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.0.to_bytes().to_vec())
    }
}

/// The `ES512` algorithm: ECDSA on P-521 with SHA-512.
#[derive(Clone, Copy, Debug, Default)]
pub struct Es512;

impl Algorithm for Es512 {
    type SigningKey = p521::ecdsa::SigningKey;
    type VerifyingKey = p521::ecdsa::VerifyingKey;
    type Signature = Es512Signature;

    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed("ES512")
    }

    /// Signs with a nonce derived from the key and the message, in the spirit of
    /// RFC 6979; `p521` only signs with a caller-supplied RNG. Verification never signs.
    fn sign(&self, signing_key: &Self::SigningKey, message: &[u8]) -> Self::Signature {
        let mut rng = DerivedNonces::new(&signing_key.to_bytes(), message);
        Es512Signature(signing_key.sign_with_rng(&mut rng, message))
    }

    fn verify_signature(
        &self,
        signature: &Self::Signature,
        verifying_key: &Self::VerifyingKey,
        message: &[u8],
    ) -> bool {
        verifying_key.verify(message, &signature.0).is_ok()
    }
}

/// A deterministic byte stream: SHA-512 over (secret key, message digest, counter).
///
/// Unpredictable without the secret key and different for every message, which is what
/// an ECDSA nonce needs; it exists only so that `Es512::sign` needs no OS randomness.
struct DerivedNonces {
    seed: [u8; 64],
    counter: u64,
    buffer: [u8; 64],
    used: usize,
}

impl DerivedNonces {
    fn new(secret: &[u8], message: &[u8]) -> Self {
        let mut hasher = Sha512::new();
        hasher.update(b"portcullis ES512 nonce");
        hasher.update(secret);
        hasher.update(Sha512::digest(message));
        Self { seed: hasher.finalize().into(), counter: 0, buffer: [0; 64], used: 64 }
    }
}

impl rand_core::RngCore for DerivedNonces {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, destination: &mut [u8]) {
        for byte in destination {
            if self.used == self.buffer.len() {
                let mut hasher = Sha512::new();
                hasher.update(self.seed);
                hasher.update(self.counter.to_be_bytes());
                self.buffer = hasher.finalize().into();
                self.counter = self.counter.wrapping_add(1);
                self.used = 0;
            }
            *byte = self.buffer.get(self.used).copied().unwrap_or_default();
            self.used += 1;
        }
    }

    fn try_fill_bytes(&mut self, destination: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(destination);
        Ok(())
    }
}

impl rand_core::CryptoRng for DerivedNonces {}

impl Drop for DerivedNonces {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.seed);
        zeroize::Zeroize::zeroize(&mut self.buffer);
    }
}
