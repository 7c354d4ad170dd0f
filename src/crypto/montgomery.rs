//! Montgomery arithmetic modulo a fixed odd modulus of up to 400 bits, for the fields and
//! group orders of P-256 and P-384.
//!
//! An element is `[u64; L]`: little-endian limbs of 29 bits, fully reduced below the
//! modulus `m` and kept in Montgomery form `x·R mod m` with `R = 2^(29·L)`. A product of
//! two limbs has 58 bits, so a column of the Montgomery product (at most `2L` ≤ 28 products
//! plus the carry) fits a `u64` without carry handling. This is fast in WebAssembly, which
//! multiplies 64-bit integers natively but has no 128-bit product. `R > 4m` keeps every
//! product below `2m` before its one conditional subtraction.
//!
//! The functions are `const fn` so that curve constants are computed at compile time. They
//! do not run in constant time: they serve signature verification, whose inputs are public.

// Indices are loop counters below the array length `L`; none comes from input.
#![allow(clippy::indexing_slicing)]

/// Bits per limb.
pub const LIMB_BITS: u32 = 29;

const LIMB_MASK: u64 = (1 << LIMB_BITS) - 1;

/// An odd modulus with the constants of Montgomery arithmetic.
#[derive(Debug)]
pub struct Modulus<const L: usize> {
    /// The modulus, plain limbs.
    pub value: [u64; L],
    /// `-m⁻¹ mod 2^29`.
    n0_inv: u64,
    /// `R² mod m`.
    r_squared: [u64; L],
    /// `R mod m`: one in Montgomery form.
    pub one: [u64; L],
}

impl<const L: usize> Modulus<L> {
    /// Builds the constants for the big-endian modulus `bytes` (odd, below `2^(29·L - 2)`).
    pub const fn new(bytes: &[u8]) -> Self {
        let value = from_be_bytes::<L>(bytes);
        let n0 = value[0];
        let mut inverse: u64 = 1;
        let mut step = 0;
        while step < 6 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inverse)));
            step += 1;
        }
        let n0_inv = inverse.wrapping_neg() & LIMB_MASK;
        // R mod m and R² mod m by doubling 1 modulo m.
        let mut power = [0u64; L];
        power[0] = 1;
        let mut one = [0u64; L];
        let mut doubling = 0;
        while doubling < 2 * LIMB_BITS as usize * L {
            power = double_mod(&power, &value);
            doubling += 1;
            if doubling == LIMB_BITS as usize * L {
                one = power;
            }
        }
        Self { value, n0_inv, r_squared: power, one }
    }

    /// Montgomery product `a·b·R⁻¹ mod m`, reduced.
    ///
    /// The schoolbook product goes into `2L` independent column sums first, so that the
    /// multiplications do not wait on one another; the reduction then adds `f·m` row by
    /// row, where each factor `f` waits only on the column below it.
    ///
    /// Not inlined: one copy per modulus size keeps the unrolled code small enough for the
    /// npm package, at the cost of a call per product.
    #[inline(never)]
    pub const fn mul(&self, a: &[u64; L], b: &[u64; L]) -> [u64; L] {
        let mut columns = [[0u64; L]; 2];
        let mut i = 0;
        while i < L {
            let mut j = 0;
            while j < L {
                let k = i + j;
                if k < L {
                    columns[0][k] += a[i] * b[j];
                } else {
                    columns[1][k - L] += a[i] * b[j];
                }
                j += 1;
            }
            i += 1;
        }
        self.reduce(columns)
    }

    /// Montgomery square `a²·R⁻¹ mod m`, reduced: as [`Self::mul`], with each cross product
    /// computed once and doubled.
    #[inline(never)]
    pub const fn square(&self, a: &[u64; L]) -> [u64; L] {
        let mut columns = [[0u64; L]; 2];
        let mut i = 0;
        while i < L {
            let mut j = i + 1;
            while j < L {
                let k = i + j;
                if k < L {
                    columns[0][k] += a[i] * a[j];
                } else {
                    columns[1][k - L] += a[i] * a[j];
                }
                j += 1;
            }
            i += 1;
        }
        let mut k = 0;
        while k < L {
            columns[0][k] <<= 1;
            columns[1][k] <<= 1;
            k += 1;
        }
        let mut i = 0;
        while i < L {
            let k = 2 * i;
            if k < L {
                columns[0][k] += a[i] * a[i];
            } else {
                columns[1][k - L] += a[i] * a[i];
            }
            i += 1;
        }
        self.reduce(columns)
    }

    /// Montgomery reduction of a product held as `2L` column sums (`columns[0]` the low
    /// half, `columns[1]` the high half, each sum below `L·2^58`), then one conditional
    /// subtraction.
    #[inline(always)]
    const fn reduce(&self, columns: [[u64; L]; 2]) -> [u64; L] {
        let m = &self.value;
        let [mut low, mut high] = columns;
        let mut i = 0;
        while i < L {
            let factor = low[i].wrapping_mul(self.n0_inv) & LIMB_MASK;
            let mut j = 0;
            while j < L {
                let k = i + j;
                if k < L {
                    low[k] += factor * m[j];
                } else {
                    high[k - L] += factor * m[j];
                }
                j += 1;
            }
            // The low 29 bits of column i are now zero; carry the rest up.
            let carry = low[i] >> LIMB_BITS;
            if i + 1 < L {
                low[i + 1] += carry;
            } else {
                high[0] += carry;
            }
            i += 1;
        }
        let mut k = 0;
        while k + 1 < L {
            high[k + 1] += high[k] >> LIMB_BITS;
            high[k] &= LIMB_MASK;
            k += 1;
        }
        subtract_if_not_below(high, m)
    }

    /// `a + b mod m`.
    #[inline]
    pub const fn add(&self, a: &[u64; L], b: &[u64; L]) -> [u64; L] {
        let mut sum = [0u64; L];
        let mut carry = 0;
        let mut i = 0;
        while i < L {
            let limb = a[i] + b[i] + carry;
            sum[i] = limb & LIMB_MASK;
            carry = limb >> LIMB_BITS;
            i += 1;
        }
        subtract_if_not_below(sum, &self.value)
    }

    /// `a - b mod m`.
    #[inline]
    pub const fn sub(&self, a: &[u64; L], b: &[u64; L]) -> [u64; L] {
        let mut difference = [0u64; L];
        let mut borrow = 0;
        let mut i = 0;
        while i < L {
            let limb = a[i].wrapping_sub(b[i]).wrapping_sub(borrow);
            difference[i] = limb & LIMB_MASK;
            borrow = limb >> 63;
            i += 1;
        }
        if borrow == 0 {
            return difference;
        }
        let mut carry = 0;
        let mut i = 0;
        while i < L {
            let limb = difference[i] + self.value[i] + carry;
            difference[i] = limb & LIMB_MASK;
            carry = limb >> LIMB_BITS;
            i += 1;
        }
        difference
    }

    /// Converts plain limbs below `m` to Montgomery form.
    #[inline]
    pub const fn to_montgomery(&self, plain: &[u64; L]) -> [u64; L] {
        self.mul(plain, &self.r_squared)
    }

    /// Converts from Montgomery form to plain limbs.
    #[inline]
    pub const fn from_montgomery(&self, element: &[u64; L]) -> [u64; L] {
        let mut unit = [0u64; L];
        unit[0] = 1;
        self.mul(element, &unit)
    }

    /// Inverse by Fermat's little theorem, `a^(m-2)` (m prime), with 4-bit windows;
    /// zero maps to zero.
    pub fn invert(&self, a: &[u64; L]) -> [u64; L] {
        let mut two = [0u64; L];
        two[0] = 2;
        let exponent = subtract_if_not_below(self.value, &two);
        let mut powers = [self.one; 16];
        for index in 1..16 {
            powers[index] = self.mul(&powers[index - 1], a);
        }
        let mut result = self.one;
        let total_bits = LIMB_BITS as usize * L;
        let mut bit = total_bits.next_multiple_of(4);
        while bit > 0 {
            bit -= 4;
            for _ in 0..4 {
                result = self.square(&result);
            }
            let mut digit = 0;
            for offset in (0..4).rev() {
                digit = digit << 1 | bit_at(&exponent, bit + offset);
            }
            if digit != 0 {
                result = self.mul(&result, &powers[digit as usize]);
            }
        }
        result
    }
}

/// Bit `index` of plain limbs (zero past the end).
const fn bit_at<const L: usize>(limbs: &[u64; L], index: usize) -> u64 {
    let limb = index / LIMB_BITS as usize;
    if limb >= L {
        return 0;
    }
    limbs[limb] >> (index % LIMB_BITS as usize) & 1
}

/// Returns `value - m` when `value ≥ m`, else `value`; both normalized.
#[inline]
const fn subtract_if_not_below<const L: usize>(value: [u64; L], m: &[u64; L]) -> [u64; L] {
    let mut difference = [0u64; L];
    let mut borrow = 0;
    let mut i = 0;
    while i < L {
        let limb = value[i].wrapping_sub(m[i]).wrapping_sub(borrow);
        difference[i] = limb & LIMB_MASK;
        borrow = limb >> 63;
        i += 1;
    }
    if borrow == 0 { difference } else { value }
}

const fn double_mod<const L: usize>(value: &[u64; L], m: &[u64; L]) -> [u64; L] {
    let mut doubled = [0u64; L];
    let mut i = 0;
    while i < L {
        doubled[i] = value[i] << 1;
        if i > 0 {
            doubled[i] |= doubled[i - 1] >> LIMB_BITS;
            doubled[i - 1] &= LIMB_MASK;
        }
        i += 1;
    }
    // `value < m < 2^(29·L - 2)`, so the top limb has room for the doubled value.
    subtract_if_not_below(doubled, m)
}

/// Reads a big-endian integer of at most `29·L` bits into plain limbs.
pub const fn from_be_bytes<const L: usize>(bytes: &[u8]) -> [u64; L] {
    let mut limbs = [0u64; L];
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[bytes.len() - 1 - index] as u64;
        let bit = index * 8;
        let limb = bit / LIMB_BITS as usize;
        let offset = bit % LIMB_BITS as usize;
        if limb < L {
            limbs[limb] |= (byte << offset) & LIMB_MASK;
        }
        if offset + 8 > LIMB_BITS as usize && limb + 1 < L {
            limbs[limb + 1] |= byte >> (LIMB_BITS as usize - offset);
        }
        index += 1;
    }
    limbs
}

/// Writes plain limbs as a big-endian integer filling `bytes`.
pub fn to_be_bytes<const L: usize>(limbs: &[u64; L], bytes: &mut [u8]) {
    let len = bytes.len();
    for (index, byte) in bytes.iter_mut().enumerate() {
        let bit = (len - 1 - index) * 8;
        let limb = bit / LIMB_BITS as usize;
        let offset = bit % LIMB_BITS as usize;
        let mut value = limbs.get(limb).copied().unwrap_or(0) >> offset;
        if offset + 8 > LIMB_BITS as usize {
            value |= limbs.get(limb + 1).copied().unwrap_or(0) << (LIMB_BITS as usize - offset);
        }
        *byte = value as u8;
    }
}

/// Whether plain limbs `a < b`.
pub const fn less_than<const L: usize>(a: &[u64; L], b: &[u64; L]) -> bool {
    let mut i = L;
    while i > 0 {
        i -= 1;
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

/// Whether all limbs are zero.
pub const fn is_zero<const L: usize>(a: &[u64; L]) -> bool {
    let mut i = 0;
    while i < L {
        if a[i] != 0 {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    // P-256's field prime.
    const P256: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];

    #[test]
    fn small_modulus_matches_u128() {
        let modulus: u64 = 0xffff_ffff_ffff_ffc5;
        let field = Modulus::<3>::new(&modulus.to_be_bytes());
        for (a, b) in [(0u64, 5u64), (1, 1), (modulus - 1, modulus - 1), (0x1234_5678_9abc_def0, 0x0fed_cba9_8765_4321)] {
            let (a_m, b_m) = (field.to_montgomery(&from_be_bytes(&a.to_be_bytes())), field.to_montgomery(&from_be_bytes(&b.to_be_bytes())));
            let back = |x: [u64; 3]| {
                let mut bytes = [0u8; 8];
                to_be_bytes(&field.from_montgomery(&x), &mut bytes);
                u64::from_be_bytes(bytes)
            };
            let m = u128::from(modulus);
            assert_eq!(back(field.mul(&a_m, &b_m)), (u128::from(a) * u128::from(b) % m) as u64);
            assert_eq!(back(field.square(&a_m)), (u128::from(a) * u128::from(a) % m) as u64);
            assert_eq!(back(field.add(&a_m, &b_m)), ((u128::from(a) + u128::from(b)) % m) as u64);
            assert_eq!(back(field.sub(&a_m, &b_m)), ((u128::from(a) + m - u128::from(b)) % m) as u64);
            if a != 0 {
                assert_eq!(back(field.mul(&field.invert(&a_m), &a_m)), 1);
            }
        }
    }

    #[test]
    fn bytes_round_trip() {
        let limbs = from_be_bytes::<9>(&P256);
        let mut bytes = [0u8; 32];
        to_be_bytes(&limbs, &mut bytes);
        assert_eq!(bytes, P256);
        assert!(limbs.iter().all(|&limb| limb <= LIMB_MASK));
    }

    #[test]
    fn inverse_p256() {
        let field = Modulus::<9>::new(&P256);
        let mut plain = [0u64; 9];
        plain[0] = 12345;
        plain[8] = 77;
        let element = field.to_montgomery(&plain);
        assert_eq!(field.mul(&field.invert(&element), &element), field.one);
    }
}
