//! SipHash-2-4 with a 128-bit output, the keyed hash that names the entries of the
//! introspection cache: it hashes a token's SHA-256 digest under a random key.
//!
//! In the Envoy filter, which is built for size, a general hasher's rounds stay function
//! calls. Here the rounds are written out, and one call hashes a whole byte string.
//! The output, as little-endian bytes, equals the `siphasher` crate's
//! `SipHasher24::finish128().as_bytes()` after one `write` of the same bytes; the tests
//! compare them. It is returned as two integers, which the caches' B-trees compare in
//! two integer comparisons instead of a `memcmp` call. (A `u128` would do the same but
//! pulls in its own formatting code, several kilobytes in the filter.)

/// Bytes of a key.
pub const KEY_BYTES: usize = 16;

/// One SipRound on the four state words, which stay in locals.
macro_rules! sip_round {
    ($v0:ident, $v1:ident, $v2:ident, $v3:ident) => {
        $v0 = $v0.wrapping_add($v1);
        $v1 = $v1.rotate_left(13) ^ $v0;
        $v0 = $v0.rotate_left(32);
        $v2 = $v2.wrapping_add($v3);
        $v3 = $v3.rotate_left(16) ^ $v2;
        $v0 = $v0.wrapping_add($v3);
        $v3 = $v3.rotate_left(21) ^ $v0;
        $v2 = $v2.wrapping_add($v1);
        $v1 = $v1.rotate_left(17) ^ $v2;
        $v2 = $v2.rotate_left(32);
    };
}

/// Reads up to 8 bytes as a little-endian word. Missing bytes count as zero.
#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    let mut word = 0u64;
    for (shift, byte) in bytes.iter().take(8).enumerate() {
        word |= u64::from(*byte) << (8 * shift);
    }
    word
}

/// Returns SipHash-2-4 of `bytes` under `key`, 128 bits as two words. The little-endian
/// bytes of the first word, then of the second, are the reference output.
pub fn hash128(key: &[u8; KEY_BYTES], bytes: &[u8]) -> (u64, u64) {
    let k0 = word(key.get(..8).unwrap_or_default());
    let k1 = word(key.get(8..).unwrap_or_default());
    let mut v0 = k0 ^ 0x736f_6d65_7073_6575;
    let mut v1 = k1 ^ 0x646f_7261_6e64_6f6d ^ 0xee;
    let mut v2 = k0 ^ 0x6c79_6765_6e65_7261;
    let mut v3 = k1 ^ 0x7465_6462_7974_6573;

    let mut blocks = bytes.chunks_exact(8);
    for block in blocks.by_ref() {
        let m = u64::from_le_bytes(block.try_into().unwrap_or_default());
        v3 ^= m;
        sip_round!(v0, v1, v2, v3);
        sip_round!(v0, v1, v2, v3);
        v0 ^= m;
    }
    // The last word: the remaining bytes, and the length's low byte on top.
    let m = word(blocks.remainder()) | (bytes.len() as u64) << 56;
    v3 ^= m;
    sip_round!(v0, v1, v2, v3);
    sip_round!(v0, v1, v2, v3);
    v0 ^= m;

    v2 ^= 0xee;
    for _ in 0..4 {
        sip_round!(v0, v1, v2, v3);
    }
    let first = v0 ^ v1 ^ v2 ^ v3;
    v1 ^= 0xdd;
    for _ in 0..4 {
        sip_round!(v0, v1, v2, v3);
    }
    let second = v0 ^ v1 ^ v2 ^ v3;
    (first, second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use siphasher::sip128::{Hasher128, SipHasher24};

    fn bytes_of((first, second): (u64, u64)) -> [u8; 16] {
        (u128::from(first) | u128::from(second) << 64).to_le_bytes()
    }

    fn reference(key: &[u8; 16], bytes: &[u8]) -> [u8; 16] {
        let mut hasher = SipHasher24::new_with_key(key);
        core::hash::Hasher::write(&mut hasher, bytes);
        hasher.finish128().as_bytes()
    }

    #[test]
    fn hash128_matches_reference_crate() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for length in 0..300 {
            let mut key = [0u8; 16];
            key.iter_mut().for_each(|byte| *byte = next() as u8);
            let bytes: alloc::vec::Vec<u8> = (0..length).map(|_| next() as u8).collect();
            assert_eq!(bytes_of(hash128(&key, &bytes)), reference(&key, &bytes), "length {length}");
        }
    }

    #[test]
    fn hash128_reference_vector() {
        // The first 128-bit vector of the SipHash reference code: key 00..0f, empty message.
        let key: [u8; 16] = core::array::from_fn(|index| index as u8);
        let expected = [0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25, 0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14, 0xc7, 0x55, 0x02, 0x93];
        assert_eq!(bytes_of(hash128(&key, &[])), expected);
    }
}
