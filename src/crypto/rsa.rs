//! RSA signature verification for RS256/384/512 and PS256/384/512.
//!
//! RS256/384/512 is RSASSA-PKCS1-v1_5
//! ([RFC 8017 §8.2.2](https://www.rfc-editor.org/rfc/rfc8017#section-8.2.2)). PS256/384/512 is
//! RSASSA-PSS ([RFC 8017 §8.1.2](https://www.rfc-editor.org/rfc/rfc8017#section-8.1.2)) with
//! a salt as long as the hash, as
//! [RFC 7518 §3.5](https://www.rfc-editor.org/rfc/rfc7518#section-3.5) requires.
//!
//! Verification only needs `s^e mod n` with a public exponent of at most 32 bits, so this
//! module does one Montgomery exponentiation instead of going through a general bignum
//! library. Integers are little-endian arrays of 27-bit limbs in `u32`. A product of two
//! limbs has 54 bits, so one column of a Montgomery product (at most 2 × 152 limb products
//! for a 4,096-bit modulus, plus the carry) stays below 2^63 and is summed in a `u64`
//! without carry handling. WebAssembly multiplies 32 × 32 → 64 bits natively, which makes
//! this layout fast there as well as natively.
//!
//! `R = 2^(27·L)` is chosen with `R > 4n`. Then a Montgomery product of two values below
//! `2n` is again below `2n`, and no conditional subtraction is needed until the end.
//!
//! Key preparation ([`RsaVerifyingKey::new`]) computes the limbs of `n`, `-n⁻¹ mod 2^27` and
//! `R² mod n` once per key. A verification then costs one Montgomery product to enter the
//! Montgomery domain, one squaring per exponent bit and one product per further set bit:
//! 18 products for e = 65537.
//!
//! PKCS#1 v1.5 is checked by building the expected encoding and comparing it in full, so
//! no parser can be fooled by extra bytes (the class of Bleichenbacher's 2006 e = 3
//! forgery). PSS follows EMSA-PSS-VERIFY step by step. A signature representative at or
//! above `n` is rejected (RFC 8017 §5.2.2 step 1).

use alloc::vec;
use alloc::vec::Vec;

use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq as _;

/// Largest modulus accepted, in bits.
pub const MAX_RSA_BITS: usize = 4096;

/// Bits per limb.
const LIMB_BITS: u32 = 27;

const LIMB_MASK: u32 = (1 << LIMB_BITS) - 1;

/// Limbs of the largest modulus accepted.
const MAX_LIMBS: usize = limbs_for_bits(MAX_RSA_BITS + 8);

/// Returns the number of limbs for `R = 2^(27·L) > 4 · 2^bits`.
const fn limbs_for_bits(bits: usize) -> usize {
    (bits + 2).div_ceil(LIMB_BITS as usize)
}

/// The hash function of an RSA algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaHash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// The signature padding of an RSA algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaPadding {
    /// RSASSA-PKCS1-v1_5.
    Pkcs1v15,
    /// RSASSA-PSS with MGF1 over the same hash and a salt as long as the hash.
    Pss,
}

/// The reason an RSA public key cannot be prepared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaKeyError {
    /// The modulus is empty, even, or longer than [`MAX_RSA_BITS`].
    Modulus,
    /// The exponent is even or below 3.
    Exponent,
}

impl core::fmt::Display for RsaKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Modulus => write!(f, "the modulus is empty, even or longer than {MAX_RSA_BITS} bits"),
            Self::Exponent => f.write_str("the exponent is even or below 3"),
        }
    }
}

/// An RSA public key prepared for verification: the modulus as limbs, `-n⁻¹ mod 2^27` and
/// `R² mod n`.
///
/// # Security
///
/// Preparation checks only what the arithmetic needs (an odd modulus of at most
/// [`MAX_RSA_BITS`] bits, an odd exponent of at least 3). Minimum key sizes are the caller's
/// to check (`portcullis::jwks` rejects moduli below 2048 bits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaVerifyingKey {
    modulus: Vec<u32>,
    r_squared: Vec<u32>,
    n0_inv: u32,
    exponent: u32,
    modulus_bits: usize,
    modulus_bytes: usize,
}

impl RsaVerifyingKey {
    /// Prepares a key from its big-endian modulus and its public exponent.
    ///
    /// # Errors
    ///
    /// [`RsaKeyError`] when the modulus or exponent cannot be used; see the type's docs.
    pub fn new(modulus: &[u8], exponent: u32) -> Result<Self, RsaKeyError> {
        let modulus = strip_leading_zeros(modulus);
        let modulus_bits = match modulus.first() {
            Some(&first) => modulus.len() * 8 - first.leading_zeros() as usize,
            None => return Err(RsaKeyError::Modulus),
        };
        if modulus.last().is_none_or(|last| last & 1 == 0) || modulus_bits > MAX_RSA_BITS {
            return Err(RsaKeyError::Modulus);
        }
        if exponent < 3 || exponent % 2 == 0 {
            return Err(RsaKeyError::Exponent);
        }
        let modulus_bytes = modulus.len();
        // Signatures are decoded into the same limbs, so the limbs also hold every value of
        // `modulus_bytes` bytes.
        let len = limbs_for_bits(modulus_bits.max(modulus_bytes * 8));
        let mut limbs = vec![0; len];
        limbs_from_be(modulus, &mut limbs);
        let n0_inv = negative_inverse(limbs.first().copied().unwrap_or(1));
        let mut key = Self { modulus: limbs, r_squared: vec![0; len], n0_inv, exponent, modulus_bits, modulus_bytes };
        key.r_squared = key.compute_r_squared();
        Ok(key)
    }

    /// Modulus length in bytes: the length of every signature.
    pub fn modulus_bytes(&self) -> usize {
        self.modulus_bytes
    }

    /// Modulus length in bits.
    pub fn modulus_bits(&self) -> usize {
        self.modulus_bits
    }

    /// Returns the public exponent.
    pub fn exponent(&self) -> u32 {
        self.exponent
    }

    /// Checks `signature` over `message` (the JWS signing input, hashed here).
    ///
    /// Returns `false` for a signature of the wrong length, one whose integer value is not
    /// below the modulus, and one whose encoding does not match exactly.
    pub fn verify(&self, hash: RsaHash, padding: RsaPadding, message: &[u8], signature: &[u8]) -> bool {
        let mut encoded = [0u8; MAX_RSA_BITS / 8];
        let Some(encoded) = encoded.get_mut(..self.modulus_bytes) else {
            return false;
        };
        if !self.public_operation(signature, encoded) {
            return false;
        }
        match (hash, padding) {
            (RsaHash::Sha256, RsaPadding::Pkcs1v15) => pkcs1v15_matches::<Sha256>(&SHA256_PREFIX, message, encoded),
            (RsaHash::Sha384, RsaPadding::Pkcs1v15) => pkcs1v15_matches::<Sha384>(&SHA384_PREFIX, message, encoded),
            (RsaHash::Sha512, RsaPadding::Pkcs1v15) => pkcs1v15_matches::<Sha512>(&SHA512_PREFIX, message, encoded),
            (RsaHash::Sha256, RsaPadding::Pss) => pss_matches::<Sha256>(message, encoded, self.modulus_bits),
            (RsaHash::Sha384, RsaPadding::Pss) => pss_matches::<Sha384>(message, encoded, self.modulus_bits),
            (RsaHash::Sha512, RsaPadding::Pss) => pss_matches::<Sha512>(message, encoded, self.modulus_bits),
        }
    }

    /// Computes `signature^e mod n` (RSAVP1) into `encoded`, big-endian, as long as the
    /// modulus. Returns `false` when the signature has the wrong length or is not below `n`.
    pub fn public_operation(&self, signature: &[u8], encoded: &mut [u8]) -> bool {
        if signature.len() != self.modulus_bytes || encoded.len() != self.modulus_bytes {
            return false;
        }

        let len = self.modulus.len();
        let mut buffers = [[0u32; MAX_LIMBS]; 4];
        let [base, plain, power, scratch] = &mut buffers;
        let (Some(base), Some(plain), Some(power), Some(scratch)) =
            (base.get_mut(..len), plain.get_mut(..len), power.get_mut(..len), scratch.get_mut(..len))
        else {
            return false;
        };

        limbs_from_be(signature, plain);
        if !less_than(plain, &self.modulus) {
            return false;
        }

        // base = s·R mod n (below 2n), the Montgomery form of s.
        mont_mul(base, plain, &self.r_squared, &self.modulus, self.n0_inv, scratch);
        power.copy_from_slice(base);
        let mut product = [0u32; MAX_LIMBS];
        let Some(product) = product.get_mut(..len) else {
            return false;
        };

        let top = 31 - self.exponent.leading_zeros();
        for bit in (1..top).rev() {
            mont_sqr(product, power, &self.modulus, self.n0_inv, scratch);
            if self.exponent >> bit & 1 == 1 {
                mont_mul(power, product, base, &self.modulus, self.n0_inv, scratch);
            } else {
                power.copy_from_slice(product);
            }
        }

        // The exponent is odd: square once more, then multiply by s in the ordinary domain,
        // which leaves the Montgomery domain in the same product.
        mont_sqr(product, power, &self.modulus, self.n0_inv, scratch);
        mont_mul(power, product, plain, &self.modulus, self.n0_inv, scratch);
        if !less_than(power, &self.modulus) {
            subtract_in_place(power, &self.modulus);
        }

        be_from_limbs(power, encoded);
        true
    }

    /// Computes `R² mod n` by doubling: `R mod n` first, then the Montgomery form of
    /// `2^(27·L)`, which is `R² mod n`, by square-and-multiply on the Montgomery form of 2.
    fn compute_r_squared(&self) -> Vec<u32> {
        let len = self.modulus.len();
        let total_bits = len * LIMB_BITS as usize;
        // two = 2·R mod n, by 27·L + 1 modular doublings of 1.
        let mut two = vec![0u32; len];
        if let Some(first) = two.first_mut() {
            *first = 1;
        }
        for _ in 0..=total_bits {
            double_mod(&mut two, &self.modulus);
        }
        // Left-to-right square-and-multiply for the exponent 27·L on Montgomery forms.
        let mut power = two.clone();
        let mut scratch = vec![0u32; len];
        let mut product = vec![0u32; len];
        let top = usize::BITS - 1 - total_bits.leading_zeros();
        for bit in (0..top).rev() {
            mont_sqr(&mut product, &power, &self.modulus, self.n0_inv, &mut scratch);
            if total_bits >> bit & 1 == 1 {
                mont_mul(&mut power, &product, &two, &self.modulus, self.n0_inv, &mut scratch);
            } else {
                power.copy_from_slice(&product);
            }
        }
        if !less_than(&power, &self.modulus) {
            subtract_in_place(&mut power, &self.modulus);
        }
        power
    }
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&byte| byte != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Returns `-n0⁻¹ mod 2^27` for an odd `n0`, by Newton's iteration (each step doubles the
/// number of correct low bits: 1, 2, 4, 8, 16, 32).
fn negative_inverse(n0: u32) -> u32 {
    let mut inverse: u32 = 1;
    for _ in 0..5 {
        inverse = inverse.wrapping_mul(2u32.wrapping_sub(n0.wrapping_mul(inverse)));
    }
    inverse.wrapping_neg() & LIMB_MASK
}

/// Reads a big-endian integer into limbs; bits beyond the limbs are dropped (callers size
/// the limbs for the input).
fn limbs_from_be(bytes: &[u8], limbs: &mut [u32]) {
    limbs.fill(0);
    let mut limbs = limbs.iter_mut();
    let mut pending: u64 = 0;
    let mut pending_bits = 0;
    for &byte in bytes.iter().rev() {
        pending |= u64::from(byte) << pending_bits;
        pending_bits += 8;
        if pending_bits >= LIMB_BITS {
            if let Some(limb) = limbs.next() {
                *limb = pending as u32 & LIMB_MASK;
            }
            pending >>= LIMB_BITS;
            pending_bits -= LIMB_BITS;
        }
    }
    if let Some(limb) = limbs.next() {
        *limb = pending as u32;
    }
}

/// Writes limbs as a big-endian integer filling `bytes`; higher bits are dropped.
fn be_from_limbs(limbs: &[u32], bytes: &mut [u8]) {
    let mut limbs = limbs.iter();
    let mut pending: u64 = 0;
    let mut pending_bits = 0;
    for byte in bytes.iter_mut().rev() {
        if pending_bits < 8 {
            pending |= u64::from(limbs.next().copied().unwrap_or(0)) << pending_bits;
            pending_bits += LIMB_BITS;
        }
        *byte = pending as u8;
        pending >>= 8;
        pending_bits -= 8;
    }
}

/// Returns whether `a < b`, both with normalized limbs of the same length.
fn less_than(a: &[u32], b: &[u32]) -> bool {
    for (x, y) in a.iter().zip(b).rev() {
        if x != y {
            return x < y;
        }
    }
    false
}

/// `a -= b` for `a ≥ b`, normalized limbs.
fn subtract_in_place(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0u32;
    for (x, &y) in a.iter_mut().zip(b) {
        let difference = x.wrapping_sub(y).wrapping_sub(borrow);
        borrow = difference >> 31;
        *x = difference & LIMB_MASK;
    }
}

/// `a = 2a mod n` for `a < n`.
fn double_mod(a: &mut [u32], n: &[u32]) {
    let mut carry = 0;
    for limb in a.iter_mut() {
        let doubled = (*limb << 1) | carry;
        carry = doubled >> LIMB_BITS;
        *limb = doubled & LIMB_MASK;
    }
    if carry != 0 || !less_than(a, n) {
        subtract_in_place(a, n);
    }
}

/// Sums `x[i] · y[len-1-i]`: one column of a product, `y` read backwards.
#[inline(always)]
fn column(x: &[u32], y: &[u32]) -> u64 {
    x.iter().zip(y.iter().rev()).map(|(&a, &b)| u64::from(a) * u64::from(b)).sum()
}

/// Montgomery product `out = a·b·R⁻¹ mod n`, below `2n` for `a, b < 2n`, by product
/// scanning: column `k` adds every `a[i]·b[k-i]` and `m[i]·n[k-i]`, then shifts out one
/// limb. `m` is scratch for the reduction factors.
fn mont_mul(out: &mut [u32], a: &[u32], b: &[u32], n: &[u32], n0_inv: u32, m: &mut [u32]) {
    let len = n.len();
    let mut accumulator: u64 = 0;
    for k in 0..len {
        let (Some(a_part), Some(b_part)) = (a.get(..=k), b.get(..=k)) else { return };
        accumulator += column(a_part, b_part);
        accumulator = reduce_step(accumulator, k, n, n0_inv, m);
    }
    for k in len..2 * len - 1 {
        let low = k + 1 - len;
        let (Some(a_part), Some(b_part)) = (a.get(low..), b.get(low..)) else { return };
        accumulator += column(a_part, b_part);
        accumulator = output_step(accumulator, k, n, m, out);
    }
    if let Some(last) = out.last_mut() {
        *last = accumulator as u32;
    }
}

/// Montgomery square `out = a²·R⁻¹ mod n`: as [`mont_mul`], each cross product once, doubled.
fn mont_sqr(out: &mut [u32], a: &[u32], n: &[u32], n0_inv: u32, m: &mut [u32]) {
    let len = n.len();
    let mut accumulator: u64 = 0;
    for k in 0..2 * len - 1 {
        let low = k.saturating_sub(len - 1);
        // Pairs i < k - i: a[low..half] against a[k-half+1..=k-low] backwards.
        let half = k.div_ceil(2);
        let cross = match (a.get(low..half.max(low)), a.get(k + 1 - half.max(low)..=k - low)) {
            (Some(x), Some(y)) => column(x, y),
            _ => 0,
        };
        accumulator += cross << 1;
        if k % 2 == 0 {
            let middle = u64::from(a.get(k / 2).copied().unwrap_or(0));
            accumulator += middle * middle;
        }
        accumulator = if k < len { reduce_step(accumulator, k, n, n0_inv, m) } else { output_step(accumulator, k, n, m, out) };
    }
    if let Some(last) = out.last_mut() {
        *last = accumulator as u32;
    }
}

/// Column `k < L` of the reduction: adds `m[i]·n[k-i]` for `i < k`, chooses `m[k]` so that
/// the low limb becomes zero, and shifts it out.
#[inline(always)]
fn reduce_step(mut accumulator: u64, k: usize, n: &[u32], n0_inv: u32, m: &mut [u32]) -> u64 {
    if let (Some(m_part), Some(n_part)) = (m.get(..k), n.get(1..=k)) {
        accumulator += column(m_part, n_part);
    }
    let factor = (accumulator as u32).wrapping_mul(n0_inv) & LIMB_MASK;
    if let Some(slot) = m.get_mut(k) {
        *slot = factor;
    }
    accumulator += u64::from(factor) * u64::from(n.first().copied().unwrap_or(0));
    accumulator >> LIMB_BITS
}

/// Column `k ≥ L` of the reduction: adds `m[i]·n[k-i]` and emits limb `k - L` of the result.
#[inline(always)]
fn output_step(mut accumulator: u64, k: usize, n: &[u32], m: &[u32], out: &mut [u32]) -> u64 {
    let low = k + 1 - n.len();
    if let (Some(m_part), Some(n_part)) = (m.get(low..), n.get(low..)) {
        accumulator += column(m_part, n_part);
    }
    if let Some(slot) = out.get_mut(k - n.len()) {
        *slot = accumulator as u32 & LIMB_MASK;
    }
    accumulator >> LIMB_BITS
}

/// DER `DigestInfo` prefixes of RFC 8017 §9.2 note 1: the algorithm identifier with NULL
/// parameters and the header of the digest's OCTET STRING.
const SHA256_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
const SHA384_PREFIX: [u8; 19] =
    [0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30];
const SHA512_PREFIX: [u8; 19] =
    [0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40];

/// Returns whether `encoded` is exactly EMSA-PKCS1-v1_5(message):
/// `00 01 FF…FF 00 || DigestInfo prefix || hash`, with at least 8 bytes of `FF`.
fn pkcs1v15_matches<D: Digest>(prefix: &[u8], message: &[u8], encoded: &[u8]) -> bool {
    let digest = D::digest(message);
    let trailer = prefix.len() + digest.len();
    let Some(padding_len) = encoded.len().checked_sub(trailer + 3).filter(|&len| len >= 8) else {
        return false;
    };
    let mut expected = [0u8; MAX_RSA_BITS / 8];
    let Some(expected) = expected.get_mut(..encoded.len()) else {
        return false;
    };
    let mut bytes = expected.iter_mut();
    let header = [0x00, 0x01].into_iter();
    let fill = core::iter::repeat_n(0xff, padding_len);
    let separator = core::iter::once(0x00);
    let source = header.chain(fill).chain(separator).chain(prefix.iter().copied()).chain(digest.iter().copied());
    for (slot, value) in bytes.by_ref().zip(source) {
        *slot = value;
    }
    bool::from(expected.ct_eq(encoded))
}

/// Checks that `encoded`, as long as the modulus, is a valid EMSA-PSS encoding of
/// `message` for a modulus of `modulus_bits` bits, with a salt as long as the hash
/// (RFC 8017 §9.1.2).
fn pss_matches<D: Digest>(message: &[u8], encoded: &[u8], modulus_bits: usize) -> bool {
    let hash_len = <D as Digest>::output_size();
    let salt_len = hash_len;
    let em_bits = modulus_bits - 1;
    let em_len = em_bits.div_ceil(8);

    // When emBits is a multiple of 8, EM is one byte shorter than the modulus and the
    // integer must fit in it (I2OSP of RFC 8017 §4.1).
    let Some((leading, em)) = encoded.split_at_checked(encoded.len() - em_len) else {
        return false;
    };
    if leading.iter().any(|&byte| byte != 0) || em_len < hash_len + salt_len + 2 {
        return false;
    }

    let Some((&trailer, body)) = em.split_last() else {
        return false;
    };
    if trailer != 0xbc {
        return false;
    }

    let Some((masked_db, h)) = body.split_at_checked(em_len - hash_len - 1) else {
        return false;
    };
    let unused_bits = 8 * em_len - em_bits;
    let top_mask = 0xffu8 >> unused_bits;
    if masked_db.first().is_none_or(|&first| first & !top_mask != 0) {
        return false;
    }

    let mut db = [0u8; MAX_RSA_BITS / 8];
    let Some(db) = db.get_mut(..masked_db.len()) else {
        return false;
    };
    db.copy_from_slice(masked_db);
    mgf1_xor::<D>(h, db);
    if let Some(first) = db.first_mut() {
        *first &= top_mask;
    }

    let zeros_len = em_len - hash_len - salt_len - 2;
    let Some((zeros, rest)) = db.split_at_checked(zeros_len) else {
        return false;
    };
    let Some((&one, salt)) = rest.split_first() else {
        return false;
    };
    if zeros.iter().any(|&byte| byte != 0) || one != 0x01 || salt.len() != salt_len {
        return false;
    }

    let m_hash = D::digest(message);
    let mut hasher = D::new();
    hasher.update([0u8; 8]);
    hasher.update(&m_hash);
    hasher.update(salt);
    let computed = hasher.finalize();
    bool::from(<[u8]>::ct_eq(&computed, h))
}

/// XORs MGF1(seed) over `target` (RFC 8017 §B.2.1).
fn mgf1_xor<D: Digest>(seed: &[u8], target: &mut [u8]) {
    for (counter, chunk) in target.chunks_mut(<D as Digest>::output_size()).enumerate() {
        let mut hasher = D::new();
        hasher.update(seed);
        hasher.update((counter as u32).to_be_bytes());
        for (byte, mask) in chunk.iter_mut().zip(hasher.finalize()) {
            *byte ^= mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_from_u64(modulus: u64, exponent: u32) -> RsaVerifyingKey {
        RsaVerifyingKey::new(&modulus.to_be_bytes(), exponent).unwrap()
    }

    fn power_mod(base: u64, exponent: u32, modulus: u64) -> u64 {
        let mut result: u128 = 1;
        let mut square = u128::from(base) % u128::from(modulus);
        let mut remaining = exponent;
        while remaining > 0 {
            if remaining & 1 == 1 {
                result = result * square % u128::from(modulus);
            }
            square = square * square % u128::from(modulus);
            remaining >>= 1;
        }
        result as u64
    }

    #[test]
    fn public_operation_small_moduli() {
        for modulus in [0xffff_ffff_ffff_ffc5u64, 0x8000_0000_0000_0001, 0xd8f2_a3c1_0b5e_7765, 1_000_003 * 999_983] {
            for exponent in [3, 35, 65537, 0xffff_ffff] {
                let key = key_from_u64(modulus, exponent);
                let width = key.modulus_bytes();
                for base in [0u64, 1, 2, 3, modulus - 1, modulus / 2, 0x1234_5678_9abc_def0 % modulus] {
                    let mut encoded = vec![0u8; width];
                    let signature = &base.to_be_bytes()[8 - width..];
                    assert!(key.public_operation(signature, &mut encoded), "{modulus:#x} {exponent} {base:#x}");
                    let mut expected = [0u8; 8];
                    expected.copy_from_slice(&power_mod(base, exponent, modulus).to_be_bytes());
                    assert_eq!(encoded, &expected[8 - width..], "{modulus:#x} {exponent} {base:#x}");
                }
            }
        }
    }

    #[test]
    fn signature_not_below_modulus_rejected() {
        let key = key_from_u64(0xd8f2_a3c1_0b5e_7765, 65537);
        let mut encoded = [0u8; 8];
        assert!(!key.public_operation(&0xd8f2_a3c1_0b5e_7765u64.to_be_bytes(), &mut encoded));
        assert!(!key.public_operation(&u64::MAX.to_be_bytes(), &mut encoded));
        assert!(!key.public_operation(&[0u8; 7], &mut encoded[..7]));
    }

    #[test]
    fn bad_keys_rejected() {
        assert_eq!(RsaVerifyingKey::new(&[], 65537), Err(RsaKeyError::Modulus));
        assert_eq!(RsaVerifyingKey::new(&[0, 0], 65537), Err(RsaKeyError::Modulus));
        assert_eq!(RsaVerifyingKey::new(&[0x81, 0x02], 65537), Err(RsaKeyError::Modulus));
        assert_eq!(RsaVerifyingKey::new(&[0x81, 0x03], 1), Err(RsaKeyError::Exponent));
        assert_eq!(RsaVerifyingKey::new(&[0x81, 0x03], 4), Err(RsaKeyError::Exponent));
        assert_eq!(RsaVerifyingKey::new(&[0xff; MAX_RSA_BITS / 8 + 1], 3), Err(RsaKeyError::Modulus));
    }

    #[test]
    fn limbs_round_trip() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let mut limbs = vec![0u32; limbs_for_bits(bytes.len() * 8)];
        limbs_from_be(&bytes, &mut limbs);
        assert!(limbs.iter().all(|&limb| limb <= LIMB_MASK));
        let mut back = vec![0u8; bytes.len()];
        be_from_limbs(&limbs, &mut back);
        assert_eq!(back, bytes);
    }
}
