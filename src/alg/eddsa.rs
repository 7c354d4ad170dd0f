//! Ed25519 verification ([RFC 8032 §5.1.7](https://www.rfc-editor.org/rfc/rfc8032#section-5.1.7))
//! with keys that may carry precomputed tables.
//!
//! Without tables a signature is checked by `ed25519-dalek`'s `verify`, which computes
//! `[s]B - [k]A` in one variable-time double-scalar multiplication of about 250
//! doublings. With the crate feature `ed25519-tables`, [`crate::jwks::KeySet`] gives each
//! Ed25519 key comb tables of `B` and of `-A` (110 KiB each; the keys of a set share the
//! one of `B`), and the two products take at most 86 additions and 6 doublings together.
//! In WebAssembly, where `curve25519-dalek` uses its 32-bit field arithmetic, that takes
//! less than half the time. Keys imported on their own (a DPoP proof's `jwk`) get no
//! tables, because building them takes as long as about 15 verifications.
//!
//! The table path accepts exactly what `ed25519-dalek` 2's `verify` accepts: `s` must be
//! below the group order, `k` is SHA-512 of `R`, the key's encoding as given, and the
//! message, reduced modulo the order, and the encoding of `[s]B - [k]A` must equal `R`
//! byte for byte. Small-order keys are rejected at import. tests/fast_paths.rs compares
//! the two paths.
//!
//! Both paths take variable time, as `ed25519-dalek`'s verification does: every input is
//! public.

use core::fmt;

use ed25519_dalek::VerifyingKey;

/// Bytes of an Ed25519 signature: `R` then `s`.
pub const SIGNATURE_LENGTH: usize = 64;

/// An Ed25519 public key, with tables for faster verification once
/// [`Ed25519VerifyingKey::precompute`] ran.
#[derive(Clone)]
pub struct Ed25519VerifyingKey {
    key: VerifyingKey,
    #[cfg(feature = "ed25519-tables")]
    tables: Option<tables::KeyTables>,
}

impl fmt::Debug for Ed25519VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ed25519VerifyingKey").field("key", &self.key).field("tables", &self.has_tables()).finish()
    }
}

impl Ed25519VerifyingKey {
    /// Wraps a key without tables.
    pub fn new(key: VerifyingKey) -> Self {
        Self {
            key,
            #[cfg(feature = "ed25519-tables")]
            tables: None,
        }
    }

    /// The key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Builds the tables when the crate feature `ed25519-tables` is on, sharing the table
    /// of `B` with `shared`; does nothing otherwise. Each table takes 110 KiB.
    pub fn precompute(&mut self, shared: Option<&Self>) {
        #[cfg(feature = "ed25519-tables")]
        if self.tables.is_none() {
            let basepoint = shared.and_then(|other| other.tables.as_ref()).map(tables::KeyTables::basepoint);
            self.tables = Some(tables::KeyTables::new(&self.key, basepoint));
        }
        #[cfg(not(feature = "ed25519-tables"))]
        let _ = shared;
    }

    /// Returns whether verification uses tables.
    pub fn has_tables(&self) -> bool {
        #[cfg(feature = "ed25519-tables")]
        return self.tables.is_some();
        #[cfg(not(feature = "ed25519-tables"))]
        return false;
    }

    /// Verifies `signature` over `message`; see the module documentation for what is
    /// checked.
    pub fn verify(&self, message: &[u8], signature: &[u8; SIGNATURE_LENGTH]) -> bool {
        #[cfg(feature = "ed25519-tables")]
        if let Some(tables) = &self.tables {
            return tables.verify(&self.key, message, signature);
        }
        self.verify_without_tables(message, signature)
    }

    /// Verifies with `ed25519-dalek`'s `verify`, whether or not there are tables; for
    /// tests that compare the two paths.
    pub fn verify_without_tables(&self, message: &[u8], signature: &[u8; SIGNATURE_LENGTH]) -> bool {
        use ed25519_dalek::Verifier as _;
        self.key.verify(message, &ed25519_dalek::Signature::from_bytes(signature)).is_ok()
    }
}

#[cfg(feature = "ed25519-tables")]
mod tables {
    use alloc::sync::Arc;
    use alloc::vec::Vec;

    use curve25519_dalek::traits::Identity as _;
    use curve25519_dalek::{EdwardsPoint, Scalar};
    use ed25519_dalek::VerifyingKey;
    use sha2::{Digest, Sha512};

    use super::SIGNATURE_LENGTH;

    /// Bits per digit of the scalars. More bits mean fewer additions (about 256 / w per
    /// scalar) and larger tables (2^(w-1) entries per two digits). With 5 bits a
    /// verification took 13 % longer in wasmtime (tests/bench/verify.rs) and the tables
    /// 40 % less memory.
    const WINDOW_BITS: u32 = 6;
    const WINDOW: usize = WINDOW_BITS as usize;

    /// Signed digits of a scalar below 2^253: enough windows for 253 bits and a carry.
    const DIGITS: usize = 253 / WINDOW + 2;

    /// Multiples in each row: digits are recentered to `-2^(w-1)..=2^(w-1)`, and negative
    /// ones subtract.
    const MULTIPLES: usize = 1 << (WINDOW - 1);

    /// A table of multiples of a point `P` for multiplying it by scalars below 2^253.
    ///
    /// A scalar `c = Σ c_j 2^(wj)` with signed `w`-bit digits `c_j` gives
    /// `[c]P = 2^w · Σ_{j odd} [c_j]·2^(w(j-1))·P + Σ_{j even} [c_j]·2^(wj)·P`. Row `i`
    /// holds `1·Q ..= 2^(w-1)·Q` for `Q = 2^(2wi)·P`, so each term is one entry: one
    /// addition per nonzero digit and `w` doublings, with no doubling per bit. Entries
    /// are extended points of 160 bytes; with `w` = 6, 22 rows of 32 take 110 KiB.
    pub(super) struct CombTable(Vec<[EdwardsPoint; MULTIPLES]>);

    impl CombTable {
        fn new(point: &EdwardsPoint) -> Self {
            let mut rows = Vec::with_capacity(DIGITS.div_ceil(2));
            let mut base = *point;
            for _ in 0..DIGITS.div_ceil(2) {
                let mut row = [EdwardsPoint::identity(); MULTIPLES];
                let mut multiple = base;
                for entry in &mut row {
                    *entry = multiple;
                    multiple += base;
                }
                rows.push(row);
                base = times_power_of_two(&base, 2 * WINDOW_BITS);
            }
            Self(rows)
        }

        /// Adds `[digit]·Q` of row `row` to `sum`.
        fn add_digit(&self, sum: EdwardsPoint, row: usize, digit: i8) -> EdwardsPoint {
            let entry = usize::from(digit.unsigned_abs()).checked_sub(1).and_then(|index| self.0.get(row)?.get(index));
            match entry {
                None => sum,
                Some(entry) if digit > 0 => sum + entry,
                Some(entry) => sum - entry,
            }
        }
    }

    /// Returns `2^exponent · point`: multiplications by the cofactor 8, then doublings.
    fn times_power_of_two(point: &EdwardsPoint, exponent: u32) -> EdwardsPoint {
        let mut result = *point;
        for _ in 0..exponent / 3 {
            result = result.mul_by_cofactor();
        }
        for _ in 0..exponent % 3 {
            result = result + result;
        }
        result
    }

    /// Signed `w`-bit digits of a scalar below 2^253, least significant first, each in
    /// `-2^(w-1)..=2^(w-1)`.
    fn signed_digits(scalar: &Scalar) -> [i8; DIGITS] {
        let bytes = scalar.to_bytes();
        let bit = |index: usize| bytes.get(index / 8).map_or(0, |byte| (byte >> (index % 8)) & 1);
        let mut digits = [0i8; DIGITS];
        let mut carry = 0i8;
        for (position, digit) in digits.iter_mut().enumerate() {
            let window = (0..WINDOW).fold(0i8, |value, offset| value | ((bit(position * WINDOW + offset) as i8) << offset));
            // Recenter 0..2^w to -2^(w-1)..2^(w-1), carrying into the next digit.
            let value = window + carry;
            carry = (value + (1 << (WINDOW - 1))) >> WINDOW;
            *digit = value - (carry << WINDOW);
        }
        digits
    }

    /// The tables of one key: the basepoint's, shared by the keys of a set, and `-A`'s.
    #[derive(Clone)]
    pub(super) struct KeyTables {
        basepoint: Arc<CombTable>,
        minus_key: Arc<CombTable>,
    }

    impl KeyTables {
        pub(super) fn new(key: &VerifyingKey, basepoint: Option<Arc<CombTable>>) -> Self {
            let basepoint = basepoint.unwrap_or_else(|| Arc::new(CombTable::new(&curve25519_dalek::constants::ED25519_BASEPOINT_POINT)));
            Self { basepoint, minus_key: Arc::new(CombTable::new(&-key.to_edwards())) }
        }

        pub(super) fn basepoint(&self) -> Arc<CombTable> {
            Arc::clone(&self.basepoint)
        }

        /// Checks that the encoding of `[s]B + [k](-A)` is `R`.
        pub(super) fn verify(&self, key: &VerifyingKey, message: &[u8], signature: &[u8; SIGNATURE_LENGTH]) -> bool {
            let (r, s) = signature.split_at(SIGNATURE_LENGTH / 2);
            let Ok(s) = <[u8; 32]>::try_from(s) else { return false };
            let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s)) else { return false };
            let k = Scalar::from_hash(Sha512::new().chain_update(r).chain_update(key.as_bytes()).chain_update(message));
            let (s_digits, k_digits) = (signed_digits(&s), signed_digits(&k));
            let mut sum = EdwardsPoint::identity();
            for parity in [1, 0] {
                if parity == 0 {
                    sum = times_power_of_two(&sum, WINDOW_BITS);
                }
                for index in (parity..DIGITS).step_by(2) {
                    let row = index / 2;
                    sum = self.basepoint.add_digit(sum, row, s_digits.get(index).copied().unwrap_or(0));
                    sum = self.minus_key.add_digit(sum, row, k_digits.get(index).copied().unwrap_or(0));
                }
            }
            sum.compress().as_bytes().as_slice() == r
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn signed_digits_sum_to_the_scalar() {
            let order_minus_one = -Scalar::ONE;
            for scalar in [Scalar::ZERO, Scalar::ONE, Scalar::from(31u64), Scalar::from(u64::MAX), order_minus_one] {
                let digits = signed_digits(&scalar);
                let radix = Scalar::from(1u64 << WINDOW);
                let sum = digits.iter().rev().fold(Scalar::ZERO, |sum, digit| {
                    let magnitude = Scalar::from(u64::from(digit.unsigned_abs()));
                    sum * radix + if *digit < 0 { -magnitude } else { magnitude }
                });
                assert_eq!(sum, scalar);
                assert!(digits.iter().all(|digit| digit.unsigned_abs() as usize <= MULTIPLES), "{digits:?}");
            }
        }

        #[test]
        fn comb_matches_scalar_multiplication() {
            let table = CombTable::new(&curve25519_dalek::constants::ED25519_BASEPOINT_POINT);
            for scalar in [Scalar::ONE, Scalar::from(12_345u64), -Scalar::ONE, Scalar::from_bytes_mod_order([0xa5; 32])] {
                let digits = signed_digits(&scalar);
                let mut sum = EdwardsPoint::identity();
                for parity in [1, 0] {
                    if parity == 0 {
                        sum = times_power_of_two(&sum, WINDOW_BITS);
                    }
                    for index in (parity..DIGITS).step_by(2) {
                        sum = table.add_digit(sum, index / 2, digits[index]);
                    }
                }
                assert_eq!(sum, EdwardsPoint::mul_base(&scalar));
            }
        }
    }
}
