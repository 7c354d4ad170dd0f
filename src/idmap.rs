//! A hash map for keys that no client chooses: ids the host assigns, names the operator
//! writes, and keyed hashes whose key stays secret.
//!
//! A hash map instead of a B-tree, because a B-tree's insert and remove code is compiled
//! once per key and value type, and a lookup compares keys at every level.
//! The hash is FxHash's rotate, exclusive or and multiply, not a keyed SipHash, which
//! made a filter cache hit 0.4 µs slower. A client cannot crowd one bucket of these maps:
//! the host picks the ids, the operator the names, and a client cannot predict a keyed
//! hash such as the one that names introspection calls in flight. Maps keyed by anything a
//! client controls stay B-trees, and so do the bounded caches (`gate::cache`).

use core::hash::{BuildHasherDefault, Hasher};

/// A hash map with [`IdHasher`].
pub type IdMap<K, V> = hashbrown::HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// A hasher with FxHash's mixing: each 64-bit word goes in by a rotation, an exclusive or
/// and a multiplication.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdHasher(u64);

/// The 64-bit multiplier of FxHash (the `fxhash` crate).
const MULTIPLIER: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(MULTIPLIER);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in words.by_ref() {
            self.add(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            for (target, byte) in word.iter_mut().zip(rest) {
                *target = *byte;
            }
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn map_keeps_every_entry() {
        let mut map: IdMap<u32, u32> = IdMap::default();
        for id in 0..10_000u32 {
            map.insert(id.wrapping_mul(7), id);
        }
        assert_eq!(map.len(), 10_000);
        for id in 0..10_000u32 {
            assert_eq!(map.get(&id.wrapping_mul(7)), Some(&id), "id {id}");
        }
        assert_eq!(map.remove(&7), Some(1));
        assert_eq!(map.get(&7), None);
    }

    #[test]
    fn hash_depends_on_every_byte() {
        let hash = |bytes: &[u8]| {
            let mut hasher = IdHasher::default();
            hasher.write(bytes);
            hasher.finish()
        };
        let name = *b"portcullis.provider.idp.allowed";
        let mut seen = alloc::collections::BTreeSet::new();
        seen.insert(hash(&name));
        for index in 0..name.len() {
            let mut changed = name;
            changed[index] ^= 1;
            assert!(seen.insert(hash(&changed)), "flipping a bit of byte {index} changes the hash");
        }
        let mut names: IdMap<alloc::string::String, u32> = IdMap::default();
        names.insert("portcullis.allowed".to_string(), 1);
        names.insert("portcullis.denied".to_string(), 2);
        assert_eq!(names.get("portcullis.denied"), Some(&2));
    }
}
