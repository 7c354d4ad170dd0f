//! HS256, HS384 and HS512 ([RFC 7518 §3.2](https://www.rfc-editor.org/rfc/rfc7518#section-3.2))
//! with the key's HMAC states prepared once.
//!
//! HMAC ([RFC 2104](https://www.rfc-editor.org/rfc/rfc2104)) hashes one block of
//! `key ⊕ ipad` before the message and one of `key ⊕ opad` before the inner digest. Both
//! depend only on the key, so [`HmacKey::new`] runs them once and keeps the two hash states
//! per hash function; a verification then costs the message blocks and one outer block,
//! two compressions fewer than keying a new HMAC. The states are as secret as the key and
//! are zeroed on drop. Tags are compared in constant time.

use alloc::vec::Vec;
use core::fmt;

use sha2::{Digest as _, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroize as _;

// Initial hash values of FIPS 180-4 §5.3.
const SHA256_IV: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const SHA384_IV: [u64; 8] = [
    0xcbbb9d5dc1059ed8,
    0x629a292a367cd507,
    0x9159015a3070dd17,
    0x152fecd8f70e5939,
    0x67332667ffc00b31,
    0x8eb44a8768581511,
    0xdb0c2e0d64f98fa7,
    0x47b5481dbefa4fa4,
];
const SHA512_IV: [u64; 8] = [
    0x6a09e667f3bcc908,
    0xbb67ae8584caa73b,
    0x3c6ef372fe94f82b,
    0xa54ff53a5f1d36f1,
    0x510e527fade682d1,
    0x9b05688c2b3e6c1f,
    0x1f83d9abfb41bd6b,
    0x5be0cd19137e2179,
];

/// An HMAC key with its inner and outer hash states for SHA-256, SHA-384 and SHA-512.
#[derive(Clone)]
pub struct HmacKey {
    sha256: [[u32; 8]; 2],
    sha384: [[u64; 8]; 2],
    sha512: [[u64; 8]; 2],
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(..)")
    }
}

impl Drop for HmacKey {
    fn drop(&mut self) {
        self.sha256.zeroize();
        self.sha384.zeroize();
        self.sha512.zeroize();
    }
}

impl HmacKey {
    /// Computes the hash states of `key ⊕ ipad` and `key ⊕ opad` for each hash function.
    pub fn new(key: &[u8]) -> Self {
        Self { sha256: states_256(key), sha384: states_512(key, SHA384_IV, true), sha512: states_512(key, SHA512_IV, false) }
    }

    /// Checks a tag of `tag.len()` bytes: 32 for SHA-256, 48 for SHA-384, 64 for SHA-512;
    /// other lengths fail.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        let mut computed = [0u8; 64];
        let len = match tag.len() {
            32 => {
                mac_256(&self.sha256, message, &mut computed);
                32
            }
            48 => {
                mac_512(&self.sha384, message, 48, &mut computed);
                48
            }
            64 => {
                mac_512(&self.sha512, message, 64, &mut computed);
                64
            }
            _ => return false,
        };
        let equal = computed.get(..len).is_some_and(|computed| bool::from(computed.ct_eq(tag)));
        computed.zeroize();
        equal
    }
}

/// Returns the key as one block: hashed first when longer than the block (RFC 2104 §2).
fn key_block<const BLOCK: usize>(key: &[u8], long_key_digest: impl FnOnce(&[u8]) -> Vec<u8>) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        let mut digest = long_key_digest(key);
        for (slot, byte) in block.iter_mut().zip(&digest) {
            *slot = *byte;
        }
        digest.zeroize();
    } else {
        for (slot, byte) in block.iter_mut().zip(key) {
            *slot = *byte;
        }
    }
    block
}

fn states_256(key: &[u8]) -> [[u32; 8]; 2] {
    let mut block = key_block::<64>(key, |key| Sha256::digest(key).to_vec());
    let mut states = [SHA256_IV; 2];
    for (state, pad) in states.iter_mut().zip([0x36u8, 0x5c]) {
        let mut padded = block;
        padded.iter_mut().for_each(|byte| *byte ^= pad);
        sha2::compress256(state, &[padded.into()]);
        padded.zeroize();
    }
    block.zeroize();
    states
}

fn states_512(key: &[u8], iv: [u64; 8], sha384: bool) -> [[u64; 8]; 2] {
    let mut block = key_block::<128>(key, |key| if sha384 { Sha384::digest(key).to_vec() } else { Sha512::digest(key).to_vec() });
    let mut states = [iv; 2];
    for (state, pad) in states.iter_mut().zip([0x36u8, 0x5c]) {
        let mut padded = block;
        padded.iter_mut().for_each(|byte| *byte ^= pad);
        sha2::compress512(state, &[padded.into()]);
        padded.zeroize();
    }
    block.zeroize();
    states
}

/// Hashes `data` after one block already in `state`, with Merkle–Damgård padding
/// (FIPS 180-4 §5.1), calling `compress` once per block of `BLOCK` bytes.
fn finish<const BLOCK: usize>(data: &[u8], mut compress: impl FnMut([u8; BLOCK])) {
    let mut blocks = data.chunks_exact(BLOCK);
    for block in blocks.by_ref() {
        if let Ok(block) = block.try_into() {
            compress(block);
        }
    }
    let tail = blocks.remainder();
    // Length in bits of the prefix block and the data; SHA-512's 128-bit field has zero
    // high bytes for any message that fits in memory.
    let bits = ((BLOCK + data.len()) as u64).wrapping_mul(8);
    let mut last = [0u8; 256];
    let Some(head) = last.get_mut(..tail.len()) else {
        return;
    };
    head.copy_from_slice(tail);
    if let Some(byte) = last.get_mut(tail.len()) {
        *byte = 0x80;
    }
    let length_bytes = BLOCK / 8;
    let total = if tail.len() + 1 + length_bytes <= BLOCK { BLOCK } else { 2 * BLOCK };
    if let Some(field) = last.get_mut(total - 8..total) {
        field.copy_from_slice(&bits.to_be_bytes());
    }
    for block in last.get(..total).unwrap_or_default().chunks_exact(BLOCK) {
        if let Ok(block) = block.try_into() {
            compress(block);
        }
    }
}

fn mac_256(states: &[[u32; 8]; 2], message: &[u8], out: &mut [u8; 64]) {
    let [inner_start, outer_start] = states;
    let mut inner = *inner_start;
    finish::<64>(message, |block| sha2::compress256(&mut inner, &[block.into()]));
    let mut digest = [0u8; 32];
    for (chunk, word) in digest.chunks_exact_mut(4).zip(inner) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    let mut outer = *outer_start;
    finish::<64>(&digest, |block| sha2::compress256(&mut outer, &[block.into()]));
    for (chunk, word) in out.chunks_exact_mut(4).zip(outer) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

fn mac_512(states: &[[u64; 8]; 2], message: &[u8], output_len: usize, out: &mut [u8; 64]) {
    let [inner_start, outer_start] = states;
    let mut inner = *inner_start;
    finish::<128>(message, |block| sha2::compress512(&mut inner, &[block.into()]));
    let mut digest = [0u8; 64];
    for (chunk, word) in digest.chunks_exact_mut(8).zip(inner) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    let mut outer = *outer_start;
    finish::<128>(digest.get(..output_len).unwrap_or_default(), |block| {
        sha2::compress512(&mut outer, &[block.into()]);
    });
    for (chunk, word) in out.chunks_exact_mut(8).zip(outer) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::Mac as _;

    fn reference(key: &[u8], message: &[u8], len: usize) -> Vec<u8> {
        match len {
            32 => hmac::Hmac::<Sha256>::new_from_slice(key).unwrap().chain_update(message).finalize().into_bytes().to_vec(),
            48 => hmac::Hmac::<Sha384>::new_from_slice(key).unwrap().chain_update(message).finalize().into_bytes().to_vec(),
            _ => hmac::Hmac::<Sha512>::new_from_slice(key).unwrap().chain_update(message).finalize().into_bytes().to_vec(),
        }
    }

    #[test]
    fn tags_match_hmac_crate() {
        let message: Vec<u8> = (0..=255u8).cycle().take(700).collect();
        for key_len in [0, 1, 32, 63, 64, 65, 127, 128, 129, 300] {
            let key: Vec<u8> = (0..key_len).map(|index| (index * 7 + 3) as u8).collect();
            let prepared = HmacKey::new(&key);
            for message_len in [0, 1, 55, 56, 63, 64, 65, 111, 112, 119, 127, 128, 129, 200, 700] {
                let message = &message[..message_len];
                for len in [32, 48, 64] {
                    let tag = reference(&key, message, len);
                    assert!(prepared.verify(message, &tag), "key {key_len} message {message_len} tag {len}");
                    let mut wrong = tag.clone();
                    wrong[len - 1] ^= 1;
                    assert!(!prepared.verify(message, &wrong), "key {key_len} message {message_len} tag {len}");
                }
            }
        }
    }

    #[test]
    fn other_tag_lengths_fail() {
        let prepared = HmacKey::new(b"key");
        assert!(!prepared.verify(b"m", &[]));
        assert!(!prepared.verify(b"m", &[0; 31]));
        assert!(!prepared.verify(b"m", &[0; 65]));
    }
}
