//! ECDSA verification on P-256, P-384 and P-521 (ES256, ES384, ES512;
//! [RFC 7518 §3.4](https://www.rfc-editor.org/rfc/rfc7518#section-3.4)) with tables
//! prepared once per key.
//!
//! Verification computes `u1·G + u2·Q` ([SEC 1 v2 §4.1.4](https://www.secg.org/sec1-v2.pdf))
//! in Jacobian coordinates with the `a = -3` doubling and mixed additions. Each scalar is
//! split into 4 pieces (5 on P-521, so that a piece fits a `u128`), and the key holds, for `G` and for `Q`, the odd multiples of
//! `2^(c·j)·G` and `2^(c·j)·Q` for every piece `j` (`c` bits per piece) in affine form. The
//! pieces are recoded in width-w NAF and summed in one shared doubling chain of `c`
//! doublings (Shamir's trick over one table per piece and point), so a P-256 verification needs 64
//! doublings instead of 256. The key's `x`-coordinate check compares `X` with `r·Z²`, so
//! no field inversion is needed; the one inversion is `s⁻¹ mod n`. The three field primes
//! are sums of a few powers of two, so field products reduce with shifts and additions
//! only ([`Shape`]).
//!
//! Key preparation checks that the point lies on the curve with coordinates below `p`.
//! Nothing here runs in constant time: every input of a verification is public.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::montgomery::{self, is_zero, less_than, Modulus, Shape};

/// Most pieces a scalar is split into (P-521).
const MAX_CHUNKS: usize = 5;
/// NAF width for the key's tables: 8 odd multiples per piece.
const Q_WINDOW: u32 = 5;
/// NAF width for the generator's tables: 16 odd multiples per piece.
const G_WINDOW: u32 = 6;
/// Digits of the largest piece (106 bits on P-521) plus the NAF carry.
const MAX_DIGITS: usize = 108;

/// Short Weierstrass curve `y² = x³ - 3x + b` of prime order, with `L` limbs per element.
#[derive(Debug)]
pub struct Curve<const L: usize> {
    name: &'static str,
    field: Modulus<L>,
    order: Modulus<L>,
    /// `b`, Montgomery form.
    b: [u64; L],
    generator: Affine<L>,
    /// Bytes of a coordinate and of a scalar.
    bytes: usize,
    /// Pieces each scalar is split into.
    chunks: usize,
    /// Bits of each scalar piece.
    chunk_bits: usize,
    /// `p - n`, plain: an `x`-coordinate reduced mod `n` may stand for `r + n` when `r < p - n`.
    p_minus_n: [u64; L],
}

impl<const L: usize> Curve<L> {
    /// Builds a curve from its field, given as a shaped modulus so that field products
    /// reduce without multiplications, and its big-endian order and constants.
    const fn new(name: &'static str, chunks: usize, field: Modulus<L>, n: &[u8], b: &[u8], gx: &[u8], gy: &[u8]) -> Self {
        let order = Modulus::<L>::new(n);
        let b = field.to_montgomery(&montgomery::from_be_bytes(b));
        let generator = Affine {
            x: field.to_montgomery(&montgomery::from_be_bytes(gx)),
            y: field.to_montgomery(&montgomery::from_be_bytes(gy)),
        };
        let p_minus_n = field.sub(&field.value, &order.value);
        Self { name, field, order, b, generator, bytes: n.len(), chunks, chunk_bits: (n.len() * 8).div_ceil(chunks), p_minus_n }
    }
}

/// Decodes a hexadecimal constant; runs only in constant evaluation, where a bad index is a
/// compile error.
#[allow(clippy::indexing_slicing)]
const fn hex<const N: usize>(text: &str) -> [u8; N] {
    let digits = text.as_bytes();
    let mut bytes = [0u8; N];
    let mut index = 0;
    while index < N {
        bytes[index] = nibble(digits[2 * index]) << 4 | nibble(digits[2 * index + 1]);
        index += 1;
    }
    bytes
}

// Runs only in constant evaluation, where a panic is a compile error.
#[allow(clippy::panic)]
const fn nibble(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => panic!("not a lowercase hexadecimal digit"),
    }
}

/// NIST P-256 ([SEC 2 v2 §2.4.2](https://www.secg.org/sec2-v2.pdf)).
pub static P256: Curve<9> = Curve::new(
    "P-256",
    4,
    Modulus::with_shape(&hex::<32>("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff"), Shape::P256),
    &hex::<32>("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551"),
    &hex::<32>("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b"),
    &hex::<32>("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"),
    &hex::<32>("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
);

/// NIST P-384 ([SEC 2 v2 §2.5.1](https://www.secg.org/sec2-v2.pdf)).
pub static P384: Curve<14> = Curve::new(
    "P-384",
    4,
    Modulus::with_shape(&hex::<48>("fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff"), Shape::P384),
    &hex::<48>("ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973"),
    &hex::<48>("b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef"),
    &hex::<48>("aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7"),
    &hex::<48>("3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f"),
);

/// NIST P-521 ([SEC 2 v2 §2.6.1](https://www.secg.org/sec2-v2.pdf)).
pub static P521: Curve<19> = Curve::new(
    "P-521",
    5,
    Modulus::with_shape(&hex::<66>("01ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"), Shape::P521),
    &hex::<66>("01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409"),
    &hex::<66>("0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00"),
    &hex::<66>("00c6858e06b70404e9cd9e3ecb662395b4429c648139053fb521f828af606b4d3dbaa14b5e77efe75928fe1dc127a2ffa8de3348b3c1856a429bf97e7e31c2e5bd66"),
    &hex::<66>("011839296a789a3bc0045c8a5fb42c7d1bd998f54449579b446817afbd17273e662c97ee72995ef42640c550b9013fad0761353c7086a272c24088be94769fd16650"),
);

/// A point in affine coordinates, Montgomery form; never the point at infinity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Affine<const L: usize> {
    x: [u64; L],
    y: [u64; L],
}

/// A point in Jacobian coordinates `(X/Z², Y/Z³)`, Montgomery form; `Z = 0` is the point at
/// infinity.
#[derive(Clone, Copy, Debug)]
struct Jacobian<const L: usize> {
    x: [u64; L],
    y: [u64; L],
    z: [u64; L],
}

impl<const L: usize> Curve<L> {
    fn infinity(&self) -> Jacobian<L> {
        Jacobian { x: self.field.one, y: self.field.one, z: [0; L] }
    }

    fn to_jacobian(&self, point: &Affine<L>) -> Jacobian<L> {
        Jacobian { x: point.x, y: point.y, z: self.field.one }
    }

    /// Whether `y² = x³ - 3x + b`.
    fn is_on_curve(&self, point: &Affine<L>) -> bool {
        let f = &self.field;
        let x_squared = f.square(&point.x);
        let three_x = f.add(&f.add(&point.x, &point.x), &point.x);
        let right = f.add(&f.sub(&f.mul(&x_squared, &point.x), &three_x), &self.b);
        f.square(&point.y) == right
    }

    /// Doubling, dbl-2001-b of the Explicit-Formulas Database (a = -3): 3M + 5S.
    #[inline(never)]
    fn double(&self, point: &Jacobian<L>) -> Jacobian<L> {
        let f = &self.field;
        let delta = f.square(&point.z);
        let gamma = f.square(&point.y);
        let beta = f.mul(&point.x, &gamma);
        let alpha = {
            let product = f.mul(&f.sub(&point.x, &delta), &f.add(&point.x, &delta));
            f.add(&f.add(&product, &product), &product)
        };
        let beta_4 = f.add(&f.add(&beta, &beta), &f.add(&beta, &beta));
        let beta_8 = f.add(&beta_4, &beta_4);
        let x = f.sub(&f.square(&alpha), &beta_8);
        let z = f.sub(&f.sub(&f.square(&f.add(&point.y, &point.z)), &gamma), &delta);
        let gamma_squared = f.square(&gamma);
        let gamma_squared_2 = f.add(&gamma_squared, &gamma_squared);
        let gamma_squared_4 = f.add(&gamma_squared_2, &gamma_squared_2);
        let gamma_squared_8 = f.add(&gamma_squared_4, &gamma_squared_4);
        let y = f.sub(&f.mul(&alpha, &f.sub(&beta_4, &x)), &gamma_squared_8);
        Jacobian { x, y, z }
    }

    /// Mixed addition, madd-2007-bl: 7M + 4S, with the cases a formula cannot take
    /// (infinity, equal points, opposite points).
    #[inline(never)]
    fn add_affine(&self, point: &Jacobian<L>, other: &Affine<L>) -> Jacobian<L> {
        if is_zero(&point.z) {
            return self.to_jacobian(other);
        }
        let f = &self.field;
        let z1z1 = f.square(&point.z);
        let u2 = f.mul(&other.x, &z1z1);
        let s2 = f.mul(&other.y, &f.mul(&point.z, &z1z1));
        let h = f.sub(&u2, &point.x);
        let r_half = f.sub(&s2, &point.y);
        if is_zero(&h) {
            return if is_zero(&r_half) { self.double(point) } else { self.infinity() };
        }
        let r = f.add(&r_half, &r_half);
        let hh = f.square(&h);
        let i = f.add(&f.add(&hh, &hh), &f.add(&hh, &hh));
        let j = f.mul(&h, &i);
        let v = f.mul(&point.x, &i);
        let x = f.sub(&f.sub(&f.square(&r), &j), &f.add(&v, &v));
        let y1j = f.mul(&point.y, &j);
        let y = f.sub(&f.mul(&r, &f.sub(&v, &x)), &f.add(&y1j, &y1j));
        let z = f.sub(&f.sub(&f.square(&f.add(&point.z, &h)), &z1z1), &hh);
        Jacobian { x, y, z }
    }

    /// General addition, add-2007-bl: 11M + 5S, with the same cases as [`Self::add_affine`].
    #[inline(never)]
    fn add(&self, first: &Jacobian<L>, second: &Jacobian<L>) -> Jacobian<L> {
        if is_zero(&first.z) {
            return *second;
        }
        if is_zero(&second.z) {
            return *first;
        }
        let f = &self.field;
        let z1z1 = f.square(&first.z);
        let z2z2 = f.square(&second.z);
        let u1 = f.mul(&first.x, &z2z2);
        let u2 = f.mul(&second.x, &z1z1);
        let s1 = f.mul(&first.y, &f.mul(&second.z, &z2z2));
        let s2 = f.mul(&second.y, &f.mul(&first.z, &z1z1));
        let h = f.sub(&u2, &u1);
        let r_half = f.sub(&s2, &s1);
        if is_zero(&h) {
            return if is_zero(&r_half) { self.double(first) } else { self.infinity() };
        }
        let r = f.add(&r_half, &r_half);
        let i = f.square(&f.add(&h, &h));
        let j = f.mul(&h, &i);
        let v = f.mul(&u1, &i);
        let x = f.sub(&f.sub(&f.square(&r), &j), &f.add(&v, &v));
        let s1j = f.mul(&s1, &j);
        let y = f.sub(&f.mul(&r, &f.sub(&v, &x)), &f.add(&s1j, &s1j));
        let z = f.mul(&f.sub(&f.sub(&f.square(&f.add(&first.z, &second.z)), &z1z1), &z2z2), &h);
        Jacobian { x, y, z }
    }

    fn negate(&self, point: &Affine<L>) -> Affine<L> {
        Affine { x: point.x, y: self.field.sub(&[0; L], &point.y) }
    }

    /// Returns, for each of the pieces `j`, the odd multiples `1, 3, …,
    /// 2^(window-1) - 1` of `2^(c·j)·base` in affine form, or `None` if one is the point at
    /// infinity (impossible for a point of prime order `n > 2^(c·3) · 2^window`).
    fn odd_multiples(&self, base: &Affine<L>, window: u32) -> Option<Vec<Affine<L>>> {
        let per_chunk = 1usize << (window - 2);
        let mut points = Vec::with_capacity(self.chunks * per_chunk);
        let mut chunk_base = self.to_jacobian(base);
        for chunk in 0..self.chunks {
            if chunk > 0 {
                for _ in 0..self.chunk_bits {
                    chunk_base = self.double(&chunk_base);
                }
            }
            let twice = self.double(&chunk_base);
            let mut multiple = chunk_base;
            points.push(multiple);
            for _ in 1..per_chunk {
                multiple = self.add(&multiple, &twice);
                points.push(multiple);
            }
        }
        self.to_affine(&points)
    }

    /// Converts points to affine form with one inversion (Montgomery's trick).
    fn to_affine(&self, points: &[Jacobian<L>]) -> Option<Vec<Affine<L>>> {
        let f = &self.field;
        let mut prefix = Vec::with_capacity(points.len());
        let mut running = f.one;
        for point in points {
            if is_zero(&point.z) {
                return None;
            }
            running = f.mul(&running, &point.z);
            prefix.push(running);
        }
        let mut inverse = f.invert(&running);
        let mut affine = Vec::with_capacity(points.len());
        for (index, point) in points.iter().enumerate().rev() {
            let before = if index == 0 { f.one } else { prefix.get(index - 1).copied().unwrap_or(f.one) };
            let z_inverse = f.mul(&inverse, &before);
            inverse = f.mul(&inverse, &point.z);
            let z_inverse_squared = f.square(&z_inverse);
            affine.push(Affine {
                x: f.mul(&point.x, &z_inverse_squared),
                y: f.mul(&point.y, &f.mul(&z_inverse_squared, &z_inverse)),
            });
        }
        affine.reverse();
        Some(affine)
    }
}

/// The generator's and the key's tables of one key.
struct Tables<const L: usize> {
    generator: Vec<Affine<L>>,
    key: Vec<Affine<L>>,
}

/// An ECDSA public key on P-256 (`L = 9`), P-384 (`L = 14`) or P-521 (`L = 19`), checked
/// and prepared for verification.
#[derive(Clone)]
pub struct EcVerifyingKey<const L: usize> {
    curve: &'static Curve<L>,
    point: Affine<L>,
    tables: Arc<Tables<L>>,
}

/// A P-256 key prepared for ES256.
pub type P256VerifyingKey = EcVerifyingKey<9>;

/// A P-384 key prepared for ES384.
pub type P384VerifyingKey = EcVerifyingKey<14>;

/// A P-521 key prepared for ES512.
pub type P521VerifyingKey = EcVerifyingKey<19>;

impl<const L: usize> fmt::Debug for EcVerifyingKey<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut x = [0u8; 66];
        let x = x.get_mut(..self.curve.bytes).unwrap_or_default();
        montgomery::to_be_bytes(&self.curve.field.from_montgomery(&self.point.x), x);
        write!(f, "EcVerifyingKey({}, x = ", self.curve.name)?;
        for byte in x.iter() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// Why an EC public key cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcKeyError {
    /// A coordinate has the wrong length or is not below the field prime.
    Coordinate,
    /// The point does not satisfy the curve equation.
    NotOnCurve,
}

impl EcVerifyingKey<9> {
    /// Checks and prepares a P-256 key from its big-endian coordinates (32 bytes each).
    ///
    /// # Errors
    ///
    /// [`EcKeyError`] when a coordinate is out of range or the point is not on the curve.
    pub fn p256(x: &[u8], y: &[u8]) -> Result<Self, EcKeyError> {
        Self::new(&P256, x, y)
    }

    /// Checks an ES256 signature over a SHA-256 digest; see [`EcVerifyingKey::verify_prehashed`].
    #[inline(never)]
    pub fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> bool {
        self.verify_prehashed(digest, signature)
    }
}

impl EcVerifyingKey<14> {
    /// Checks and prepares a P-384 key from its big-endian coordinates (48 bytes each).
    ///
    /// # Errors
    ///
    /// [`EcKeyError`] when a coordinate is out of range or the point is not on the curve.
    pub fn p384(x: &[u8], y: &[u8]) -> Result<Self, EcKeyError> {
        Self::new(&P384, x, y)
    }

    /// Checks an ES384 signature over a SHA-384 digest; see [`EcVerifyingKey::verify_prehashed`].
    #[inline(never)]
    pub fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> bool {
        self.verify_prehashed(digest, signature)
    }
}

impl EcVerifyingKey<19> {
    /// Checks and prepares a P-521 key from its big-endian coordinates (66 bytes each).
    ///
    /// # Errors
    ///
    /// [`EcKeyError`] when a coordinate is out of range or the point is not on the curve.
    pub fn p521(x: &[u8], y: &[u8]) -> Result<Self, EcKeyError> {
        Self::new(&P521, x, y)
    }

    /// Checks an ES512 signature over a SHA-512 digest; see [`EcVerifyingKey::verify_prehashed`].
    #[inline(never)]
    pub fn verify_digest(&self, digest: &[u8], signature: &[u8]) -> bool {
        self.verify_prehashed(digest, signature)
    }
}

impl<const L: usize> EcVerifyingKey<L> {
    fn new(curve: &'static Curve<L>, x: &[u8], y: &[u8]) -> Result<Self, EcKeyError> {
        let field = &curve.field;
        if x.len() != curve.bytes || y.len() != curve.bytes {
            return Err(EcKeyError::Coordinate);
        }
        let (x, y) = (montgomery::from_be_bytes::<L>(x), montgomery::from_be_bytes::<L>(y));
        if !less_than(&x, &field.value) || !less_than(&y, &field.value) {
            return Err(EcKeyError::Coordinate);
        }
        let point = Affine { x: field.to_montgomery(&x), y: field.to_montgomery(&y) };
        if !curve.is_on_curve(&point) {
            return Err(EcKeyError::NotOnCurve);
        }
        let key = curve.odd_multiples(&point, Q_WINDOW).ok_or(EcKeyError::NotOnCurve)?;
        let generator = curve.odd_multiples(&curve.generator, G_WINDOW).ok_or(EcKeyError::NotOnCurve)?;
        Ok(Self { curve, point, tables: Arc::new(Tables { generator, key }) })
    }

    /// Checks an ECDSA signature `r || s` (big-endian, as long as the coordinates each)
    /// over a message digest no longer than a coordinate (SHA-256 for P-256, SHA-384 for
    /// P-384, SHA-512 for P-521: no digest has more bits than the order, so none is
    /// truncated).
    ///
    /// Returns `false` for a signature of the wrong length, `r` or `s` outside `[1, n-1]`,
    /// a sum `u1·G + u2·Q` at infinity, and an `x`-coordinate that does not match `r`.
    ///
    /// Each curve's `verify_digest` calls this; they are not generic, so the arithmetic is
    /// compiled in this crate with this crate's optimisation settings.
    fn verify_prehashed(&self, digest: &[u8], signature: &[u8]) -> bool {
        let curve = self.curve;
        let (field, order) = (&curve.field, &curve.order);
        if signature.len() != 2 * curve.bytes || digest.len() > curve.bytes {
            return false;
        }
        let Some((r_bytes, s_bytes)) = signature.split_at_checked(curve.bytes) else {
            return false;
        };
        let r = montgomery::from_be_bytes::<L>(r_bytes);
        let s = montgomery::from_be_bytes::<L>(s_bytes);
        let in_range = |scalar: &[u64; L]| !is_zero(scalar) && less_than(scalar, &order.value);
        if !in_range(&r) || !in_range(&s) {
            return false;
        }
        // The digest is below 2^(8·bytes), which is at most 2n on these curves, so one
        // subtraction reduces it.
        let digest = montgomery::from_be_bytes::<L>(digest);
        let digest = if less_than(&digest, &order.value) { digest } else { order.sub(&digest, &order.value) };
        let s_inverse = order.invert(&order.to_montgomery(&s));
        // A plain value times a Montgomery form is the plain product.
        let u1 = order.mul(&digest, &s_inverse);
        let u2 = order.mul(&r, &s_inverse);
        let Some(sum) = self.linear_combination(&u1, &u2) else {
            return false;
        };
        if is_zero(&sum.z) {
            return false;
        }
        let z_squared = field.square(&sum.z);
        if field.mul(&field.to_montgomery(&r), &z_squared) == sum.x {
            return true;
        }
        less_than(&r, &curve.p_minus_n)
            && field.mul(&field.to_montgomery(&field.add(&r, &order.value)), &z_squared) == sum.x
    }

    /// Computes `u1·G + u2·Q` for plain scalars below `n`; `None` only if a table lookup
    /// fails, which the recoding rules out.
    fn linear_combination(&self, u1: &[u64; L], u2: &[u64; L]) -> Option<Jacobian<L>> {
        let curve = self.curve;
        let bits = curve.chunk_bits;
        let mut generator_digits = [[0i8; MAX_DIGITS]; MAX_CHUNKS];
        let mut key_digits = [[0i8; MAX_DIGITS]; MAX_CHUNKS];
        for (chunk, (generator, key)) in generator_digits.iter_mut().zip(key_digits.iter_mut()).enumerate().take(curve.chunks) {
            wnaf(piece(u1, chunk * bits, bits), G_WINDOW, generator);
            wnaf(piece(u2, chunk * bits, bits), Q_WINDOW, key);
        }
        let g_per_chunk = 1usize << (G_WINDOW - 2);
        let q_per_chunk = 1usize << (Q_WINDOW - 2);
        let mut sum = curve.infinity();
        for position in (0..=bits).rev() {
            if !is_zero(&sum.z) {
                sum = curve.double(&sum);
            }
            for chunk in 0..curve.chunks {
                let generator = generator_digits.get(chunk).and_then(|digits| digits.get(position)).copied().unwrap_or(0);
                sum = self.add_digit(sum, generator, &self.tables.generator, chunk * g_per_chunk)?;
                let key = key_digits.get(chunk).and_then(|digits| digits.get(position)).copied().unwrap_or(0);
                sum = self.add_digit(sum, key, &self.tables.key, chunk * q_per_chunk)?;
            }
        }
        Some(sum)
    }

    /// Adds `digit · table[offset]`'s multiple: `table[offset + (|digit| - 1) / 2]`, negated
    /// for a negative digit.
    #[inline]
    fn add_digit(&self, sum: Jacobian<L>, digit: i8, table: &[Affine<L>], offset: usize) -> Option<Jacobian<L>> {
        if digit == 0 {
            return Some(sum);
        }
        let point = table.get(offset + (digit.unsigned_abs() as usize - 1) / 2)?;
        let curve = self.curve;
        Some(if digit > 0 { curve.add_affine(&sum, point) } else { curve.add_affine(&sum, &curve.negate(point)) })
    }
}

/// Bits `start .. start + count` (count ≤ 127) of plain limbs.
fn piece<const L: usize>(limbs: &[u64; L], start: usize, count: usize) -> u128 {
    let limb_bits = montgomery::LIMB_BITS as usize;
    (start..start + count).rev().fold(0u128, |value, bit| {
        let limb = limbs.get(bit / limb_bits).copied().unwrap_or(0);
        value << 1 | u128::from((limb >> (bit % limb_bits)) & 1)
    })
}

/// Width-`window` NAF of `value`: odd digits below `2^(window-1)` in absolute value, at
/// least `window - 1` zeros after each nonzero digit, least significant first.
fn wnaf(mut value: u128, window: u32, digits: &mut [i8]) {
    let modulus = 1i32 << window;
    for digit in digits.iter_mut() {
        if value == 0 {
            *digit = 0;
            continue;
        }
        if value & 1 == 1 {
            let mut remainder = (value & (modulus as u128 - 1)) as i32;
            if remainder >= modulus / 2 {
                remainder -= modulus;
            }
            *digit = remainder as i8;
            value = value.wrapping_sub(remainder as i128 as u128);
        } else {
            *digit = 0;
        }
        value >>= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wnaf_reconstructs_value() {
        for value in [0u128, 1, 2, 31, 32, 33, 0xdead_beef, u64::MAX as u128, (1 << 96) - 1] {
            for window in [5, 6] {
                let mut digits = [0i8; MAX_DIGITS];
                wnaf(value, window, &mut digits);
                let rebuilt = digits.iter().rev().fold(0i128, |sum, &digit| sum * 2 + i128::from(digit));
                assert_eq!(rebuilt, value as i128, "{value:#x} w={window}");
                assert!(digits.iter().all(|&digit| digit == 0 || (digit % 2 != 0 && digit.unsigned_abs() < 1 << (window - 1))));
            }
        }
    }

    #[test]
    fn generators_are_on_their_curves() {
        assert!(P256.is_on_curve(&P256.generator));
        assert!(P384.is_on_curve(&P384.generator));
    }

    #[test]
    fn order_times_generator_is_infinity() {
        // n·G = (n-1)·G + G: (n-1)·G = -G, so the sum is infinity.
        let key = P256VerifyingKey::new(&P256, &[0; 32], &[0; 32]);
        assert!(key.is_err());
        let mut n_minus_one = P256.order.value;
        n_minus_one[0] -= 1;
        let generator_key = {
            let (mut x, mut y) = ([0u8; 32], [0u8; 32]);
            montgomery::to_be_bytes(&P256.field.from_montgomery(&P256.generator.x), &mut x);
            montgomery::to_be_bytes(&P256.field.from_montgomery(&P256.generator.y), &mut y);
            P256VerifyingKey::p256(&x, &y).unwrap()
        };
        let minus_g = generator_key.linear_combination(&n_minus_one, &[0; 9]).unwrap();
        let affine = P256.to_affine(&[minus_g]).unwrap();
        assert_eq!(affine[0], P256.negate(&P256.generator));
        // (n-1)·G + 1·Q with Q = G passes through P + (-P) at the end.
        let mut one = [0u64; 9];
        one[0] = 1;
        let sum = generator_key.linear_combination(&n_minus_one, &one).unwrap();
        assert!(is_zero(&sum.z));
    }
}
