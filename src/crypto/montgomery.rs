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
//! For the NIST field primes the reduction needs no products at all ([`Shape`]), which
//! removes `L²` of the `2L²` limb products of a field product.
//!
//! The functions are `const fn` so that curve constants are computed at compile time. They
//! do not run in constant time: they serve signature verification, whose inputs are public.

// Indices are loop counters below the array length `L`; none comes from input.
#![allow(clippy::indexing_slicing)]

/// Bits per limb.
pub const LIMB_BITS: u32 = 29;

const LIMB_MASK: u64 = (1 << LIMB_BITS) - 1;

/// Largest limb count whose loops [`limb_loop`] writes out limb by limb, with the
/// `unrolled` feature: 14, P-384's field and group order (P-256 has 9). P-521's 19 limbs
/// keep their loops.
const UNROLLED_LIMBS: usize = 14;

/// `limb_loop!(L, count, i { body })` runs `body` for `i` in `0..count`, and
/// `limb_loop!(L, start => count, i { body })` for `i` in `start..count`, where `L` is the
/// limb count and `count ≤ L`. With the `unrolled` feature and at most [`UNROLLED_LIMBS`]
/// limbs it repeats the body with constant indices instead of looping, so the compiler
/// keeps the limbs in locals instead of memory at every optimisation level. A loop gets
/// that only when the optimiser unrolls it: in our builds opt-level 3 unrolls the P-256
/// loops only, and opt-level "s" or "z" none. Measured in the Envoy filter (Cargo.toml,
/// feature `ecdsa-unrolled`), this takes ES256 from 152 to 122 µs and ES384 from 448 to
/// 318 µs at opt-level 3, and from 336 to 148 µs and 779 to 368 µs at opt-level "s".
macro_rules! limb_loop {
    ($limbs:expr, $count:expr, $index:ident $body:block) => {
        if cfg!(feature = "unrolled") && $limbs <= UNROLLED_LIMBS {
            limb_loop!(@unrolled [0 1 2 3 4 5 6 7 8 9 10 11 12 13], $index, ($index < $count), $body);
        } else {
            let mut $index = 0;
            while $index < $count {
                $body
                $index += 1;
            }
        }
    };
    ($limbs:expr, $start:expr => $count:expr, $index:ident $body:block) => {
        if cfg!(feature = "unrolled") && $limbs <= UNROLLED_LIMBS {
            limb_loop!(@unrolled [0 1 2 3 4 5 6 7 8 9 10 11 12 13], $index, ($index >= $start && $index < $count), $body);
        } else {
            let mut $index = $start;
            while $index < $count {
                $body
                $index += 1;
            }
        }
    };
    (@unrolled [$($value:literal)*], $index:ident, $condition:expr, $body:block) => {
        $({
            let $index: usize = $value;
            // The last copy of a body may assign a carry that nothing reads, and a start
            // of `i + 1` reads better than clippy's `>` form.
            #[allow(unused_assignments, clippy::int_plus_one)]
            if $condition $body
        })*
    };
}

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
    /// The reduction that [`Self::mul`] and [`Self::square`] use.
    shape: Shape,
}

/// A modulus whose Montgomery reduction needs no multiplications: one that is `-1` modulo
/// `2^29` and a signed sum of a few powers of two, as the NIST primes are.
///
/// Then the reduction factor of a column is its low 29 bits, and adding `factor·m` is a
/// few shifted additions and subtractions instead of `L` products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Any odd modulus: `L` products per reduction step.
    Generic,
    /// `2^256 - 2^224 + 2^192 + 2^96 - 1`, the field prime of P-256, in 9 limbs.
    P256,
    /// `2^384 - 2^128 - 2^96 + 2^32 - 1`, the field prime of P-384, in 14 limbs.
    P384,
    /// `2^521 - 1`, the field prime of P-521, in 19 limbs.
    P521,
}

impl Shape {
    /// Returns the limb count and the terms `±2^e` of the modulus, each written `±(e + 1)`.
    const fn terms(self) -> (usize, [i32; 5]) {
        match self {
            Shape::Generic => (0, [0; 5]),
            Shape::P256 => (9, [257, -225, 193, 97, -1]),
            Shape::P384 => (14, [385, -129, -97, 33, -1]),
            Shape::P521 => (19, [522, -1, 0, 0, 0]),
        }
    }
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
        Self { value, n0_inv, r_squared: power, one, shape: Shape::Generic }
    }

    /// Builds the constants for a modulus of the given [`Shape`], whose reduction needs no
    /// multiplications.
    ///
    /// Runs only in constant evaluation (the curve constants): a shape that does not match
    /// the modulus or the limb count fails the build.
    #[allow(clippy::panic, reason = "evaluated at compile time, where a panic is a build error")]
    pub const fn with_shape(bytes: &[u8], shape: Shape) -> Self {
        let mut modulus = Self::new(bytes);
        let (limbs, terms) = shape.terms();
        if limbs != L || modulus.n0_inv != 1 {
            panic!("the shape does not fit this modulus");
        }
        let mut sum = [0i64; L];
        let mut index = 0;
        while index < terms.len() {
            let term = terms[index];
            if term != 0 {
                let bit = term.unsigned_abs() as usize - 1;
                let value = 1i64 << (bit % LIMB_BITS as usize);
                let limb = bit / LIMB_BITS as usize;
                sum[limb] += if term < 0 { -value } else { value };
            }
            index += 1;
        }
        let mut limb = 0;
        while limb < L {
            if limb + 1 < L {
                sum[limb + 1] += sum[limb] >> LIMB_BITS;
                sum[limb] &= LIMB_MASK as i64;
            }
            if sum[limb] as u64 != modulus.value[limb] {
                panic!("the shape's terms do not sum to the modulus");
            }
            limb += 1;
        }
        modulus.shape = shape;
        modulus
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
        limb_loop!(L, L, i {
            limb_loop!(L, L, j {
                let k = i + j;
                if k < L {
                    columns[0][k] += a[i] * b[j];
                } else {
                    columns[1][k - L] += a[i] * b[j];
                }
            });
        });
        self.reduce_any(columns)
    }

    /// Montgomery square `a²·R⁻¹ mod m`, reduced: as [`Self::mul`], with each cross product
    /// computed once and doubled.
    #[inline(never)]
    pub const fn square(&self, a: &[u64; L]) -> [u64; L] {
        let mut columns = [[0u64; L]; 2];
        limb_loop!(L, L, i {
            limb_loop!(L, i + 1 => L, j {
                let k = i + j;
                if k < L {
                    columns[0][k] += a[i] * a[j];
                } else {
                    columns[1][k - L] += a[i] * a[j];
                }
            });
        });
        limb_loop!(L, L, k {
            columns[0][k] <<= 1;
            columns[1][k] <<= 1;
        });
        limb_loop!(L, L, i {
            let k = 2 * i;
            if k < L {
                columns[0][k] += a[i] * a[i];
            } else {
                columns[1][k - L] += a[i] * a[i];
            }
        });
        self.reduce_any(columns)
    }

    /// Reduces by the method of the modulus's [`Shape`]. The guard on `L` lets each
    /// monomorphized copy keep only the reductions its limb count can use.
    #[inline(always)]
    const fn reduce_any(&self, columns: [[u64; L]; 2]) -> [u64; L] {
        match self.shape {
            Shape::P256 if L == 9 => self.reduce_sparse::<257, -225, 193, 97, -1>(columns),
            Shape::P384 if L == 14 => self.reduce_sparse::<385, -129, -97, 33, -1>(columns),
            Shape::P521 if L == 19 => self.reduce_sparse::<522, -1, 0, 0, 0>(columns),
            _ => self.reduce(columns),
        }
    }

    /// Montgomery reduction for a modulus `Σ ±2^e` that is `-1` modulo `2^29`, with the
    /// terms as const parameters `±(e + 1)` (0: none), so that each becomes a constant
    /// shift. The factor of column `i` is its low 29 bits.
    ///
    /// The columns are signed, because a subtracted term can take a column below zero
    /// until the carries arrive. Their magnitude stays below 2^63: the products sum to
    /// less than `L·2^58` and the five terms add less than `5·2^57`.
    #[inline(always)]
    const fn reduce_sparse<const A: i32, const B: i32, const C: i32, const D: i32, const E: i32>(
        &self,
        columns: [[u64; L]; 2],
    ) -> [u64; L] {
        let mut low = [0i64; L];
        let mut high = [0i64; L];
        limb_loop!(L, L, k {
            low[k] = columns[0][k] as i64;
            high[k] = columns[1][k] as i64;
        });

        limb_loop!(L, L, i {
            let factor = low[i] & LIMB_MASK as i64;
            add_term::<L, A>(&mut low, &mut high, i, factor);
            add_term::<L, B>(&mut low, &mut high, i, factor);
            add_term::<L, C>(&mut low, &mut high, i, factor);
            add_term::<L, D>(&mut low, &mut high, i, factor);
            add_term::<L, E>(&mut low, &mut high, i, factor);
            // The low 29 bits of column i are now zero, so the shift is exact.
            let carry = low[i] >> LIMB_BITS;
            if i + 1 < L {
                low[i + 1] += carry;
            } else {
                high[0] += carry;
            }
        });

        let mut result = [0u64; L];
        limb_loop!(L, L - 1, k {
            high[k + 1] += high[k] >> LIMB_BITS;
            result[k] = (high[k] & LIMB_MASK as i64) as u64;
        });
        // The whole result is below 2m, so its top limb is not negative.
        result[L - 1] = high[L - 1] as u64;
        subtract_if_not_below(result, &self.value)
    }

    /// Montgomery reduction of a product held as `2L` column sums (`columns[0]` the low
    /// half, `columns[1]` the high half, each sum below `L·2^58`), then one conditional
    /// subtraction.
    #[inline(always)]
    const fn reduce(&self, columns: [[u64; L]; 2]) -> [u64; L] {
        let m = &self.value;
        let [mut low, mut high] = columns;
        limb_loop!(L, L, i {
            let factor = low[i].wrapping_mul(self.n0_inv) & LIMB_MASK;
            limb_loop!(L, L, j {
                let k = i + j;
                if k < L {
                    low[k] += factor * m[j];
                } else {
                    high[k - L] += factor * m[j];
                }
            });
            // The low 29 bits of column i are now zero; carry the rest up.
            let carry = low[i] >> LIMB_BITS;
            if i + 1 < L {
                low[i + 1] += carry;
            } else {
                high[0] += carry;
            }
        });
        limb_loop!(L, L - 1, k {
            high[k + 1] += high[k] >> LIMB_BITS;
            high[k] &= LIMB_MASK;
        });
        subtract_if_not_below(high, m)
    }

    /// `a + b mod m`.
    #[inline]
    pub const fn add(&self, a: &[u64; L], b: &[u64; L]) -> [u64; L] {
        let mut sum = [0u64; L];
        let mut carry = 0;
        limb_loop!(L, L, i {
            let limb = a[i] + b[i] + carry;
            sum[i] = limb & LIMB_MASK;
            carry = limb >> LIMB_BITS;
        });
        subtract_if_not_below(sum, &self.value)
    }

    /// `a - b mod m`.
    #[inline]
    pub const fn sub(&self, a: &[u64; L], b: &[u64; L]) -> [u64; L] {
        let mut difference = [0u64; L];
        let mut borrow = 0;
        limb_loop!(L, L, i {
            let limb = a[i].wrapping_sub(b[i]).wrapping_sub(borrow);
            difference[i] = limb & LIMB_MASK;
            borrow = limb >> 63;
        });
        if borrow == 0 {
            return difference;
        }
        let mut carry = 0;
        limb_loop!(L, L, i {
            let limb = difference[i] + self.value[i] + carry;
            difference[i] = limb & LIMB_MASK;
            carry = limb >> LIMB_BITS;
        });
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

/// Adds `factor·(±2^e)` for the term `T = ±(e + 1)` to the columns of row `row` (`T = 0`
/// adds nothing).
#[inline(always)]
const fn add_term<const L: usize, const T: i32>(low: &mut [i64; L], high: &mut [i64; L], row: usize, factor: i64) {
    if T == 0 {
        return;
    }
    let bit = T.unsigned_abs() as usize - 1;
    let value = factor << (bit % LIMB_BITS as usize);
    let value = if T < 0 { -value } else { value };
    let k = row + bit / LIMB_BITS as usize;
    if k < L {
        low[k] += value;
    } else if k < 2 * L {
        high[k - L] += value;
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
    limb_loop!(L, L, i {
        let limb = value[i].wrapping_sub(m[i]).wrapping_sub(borrow);
        difference[i] = limb & LIMB_MASK;
        borrow = limb >> 63;
    });
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
    use alloc::vec;
    use alloc::vec::Vec;

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

    /// Random elements below `modulus`, from a fixed xorshift sequence, with the edge values
    /// 0, 1, `m - 1` and `m - 2` first.
    fn elements<const L: usize>(modulus: &Modulus<L>, count: usize) -> Vec<[u64; L]> {
        let mut one = [0u64; L];
        one[0] = 1;
        let minus_one = modulus.sub(&[0; L], &one);
        let mut values = vec![[0u64; L], one, minus_one, modulus.sub(&minus_one, &one)];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        while values.len() < count {
            let mut limbs = [0u64; L];
            for limb in &mut limbs {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *limb = state & LIMB_MASK;
            }
            // As wide as m, a quarter of them one limb narrower; one subtraction then
            // brings each below m.
            let top = modulus.value.iter().rposition(|&limb| limb != 0).unwrap_or(0);
            let top_bits = 64 - modulus.value[top].leading_zeros();
            for limb in &mut limbs[top..] {
                *limb = 0;
            }
            if state % 4 != 0 {
                limbs[top] = state >> 20 & ((1 << top_bits) - 1);
            }
            limbs = subtract_if_not_below(limbs, &modulus.value);
            assert!(less_than(&limbs, &modulus.value));
            values.push(limbs);
        }
        values
    }

    /// Checks that the multiplication-free reduction of `shape` gives the generic results.
    fn shaped_matches_generic<const L: usize>(prime: &[u8], shape: Shape) {
        let generic = Modulus::<L>::new(prime);
        let shaped = Modulus::<L>::with_shape(prime, shape);
        assert_eq!(shaped.one, generic.one);
        let values = elements(&generic, 300);
        for a in &values {
            assert_eq!(shaped.square(a), generic.square(a), "{shape:?} square of {a:?}");
            for b in values.iter().step_by(7) {
                assert_eq!(shaped.mul(a, b), generic.mul(a, b), "{shape:?} product of {a:?} and {b:?}");
            }
        }
        // Products of two values up to m - 1 in Montgomery form stay reduced.
        let top = shaped.sub(&[0; L], &shaped.one);
        assert!(less_than(&shaped.mul(&top, &top), &shaped.value));
    }

    #[test]
    fn shaped_reduction_matches_generic() {
        let p384 = [
            &[0xffu8; 31][..],
            &[0xfe, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff][..],
        ]
        .concat();
        let mut p521 = [0xffu8; 66];
        p521[0] = 0x01;
        shaped_matches_generic::<9>(&P256, Shape::P256);
        shaped_matches_generic::<14>(&p384, Shape::P384);
        shaped_matches_generic::<19>(&p521, Shape::P521);
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
