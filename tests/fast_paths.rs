//! Differential tests of this crate's own signature arithmetic (src/alg/rsa.rs,
//! src/alg/weierstrass.rs) against the reference implementations: the `rsa` 0.9 crate's
//! RSASSA verification and the `p256`, `p384` and `p521` 0.13 crates' ECDSA verification.
//! Ed25519 verification with tables (src/alg/eddsa.rs, crate feature `ed25519-tables`) is
//! compared with `ed25519-dalek`'s `verify`; without the feature both sides are the latter.
//!
//! Every case runs both and expects the same result, on the RFC vectors, on random keys,
//! messages and signatures, and on hand-built edge cases: RSA signatures at or above the
//! modulus and with leading zero bytes, malformed PKCS#1 v1.5 encodings including an
//! e = 3 forgery of Bleichenbacher's 2006 kind, exponents 3, 35 and 65537, moduli of
//! 2048, 3072 and 4096 bits; ECDSA scalars that are zero or not below the order, high-S
//! signatures, sums at infinity, and off-curve keys.
//!
//! One deliberate difference: RFC 8017 §5.2.2 rejects a signature representative at or
//! above `n`. `rsa` 0.9 checks this for PKCS#1 v1.5 but not for PSS, so the expected result
//! is "below n and the reference accepts".

mod common;

use common::{private_jwk, public_jwk, public_of, unb64};
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::elliptic_curve::bigint::ArrayEncoding as _;
use p256::elliptic_curve::Curve as _;
use portcullis::alg::rsa::{RsaHash, RsaPadding, RsaVerifyingKey};
use portcullis::alg::weierstrass::{P256VerifyingKey, P384VerifyingKey, P521VerifyingKey};
use portcullis::alg::eddsa::Ed25519VerifyingKey;
use portcullis::alg::{self, Algorithm};
use portcullis::jwks::{KeySet, KeySetOptions};
use proptest::prelude::*;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha384, Sha512};

const RSA_KEYS: [&str; 5] = ["K_RSA_A", "K_RSA_3072", "K_RSA_4096", "K_RSA_E3", "K_RSA_E35"];
const HASHES: [RsaHash; 3] = [RsaHash::Sha256, RsaHash::Sha384, RsaHash::Sha512];

fn member(jwk: &Value, name: &str) -> Vec<u8> {
    unb64(jwk[name].as_str().unwrap_or_else(|| panic!("member {name}")))
}

struct RsaFixture {
    fast: RsaVerifyingKey,
    reference: RsaPublicKey,
    private: rsa::RsaPrivateKey,
    d: BigUint,
}

fn rsa_fixture(name: &str) -> RsaFixture {
    let jwk = private_jwk(name);
    let number = |member_name| BigUint::from_bytes_be(&member(&jwk, member_name));
    let exponent = member(&jwk, "e").iter().fold(0u32, |value, &byte| value << 8 | u32::from(byte));
    RsaFixture {
        fast: RsaVerifyingKey::new(&member(&jwk, "n"), exponent).expect("the fixture key prepares"),
        reference: RsaPublicKey::new(number("n"), number("e")).expect("the reference accepts the key"),
        private: rsa::RsaPrivateKey::from_components(number("n"), number("e"), number("d"), vec![number("p"), number("q")])
            .expect("consistent private key"),
        d: number("d"),
    }
}

fn digest(hash: RsaHash, message: &[u8]) -> Vec<u8> {
    match hash {
        RsaHash::Sha256 => Sha256::digest(message).to_vec(),
        RsaHash::Sha384 => Sha384::digest(message).to_vec(),
        RsaHash::Sha512 => Sha512::digest(message).to_vec(),
    }
}

fn reference_rsa(key: &RsaPublicKey, hash: RsaHash, padding: RsaPadding, message: &[u8], signature: &[u8]) -> bool {
    let hashed = digest(hash, message);
    let result = match (padding, hash) {
        (RsaPadding::Pkcs1v15, RsaHash::Sha256) => key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, signature),
        (RsaPadding::Pkcs1v15, RsaHash::Sha384) => key.verify(Pkcs1v15Sign::new::<Sha384>(), &hashed, signature),
        (RsaPadding::Pkcs1v15, RsaHash::Sha512) => key.verify(Pkcs1v15Sign::new::<Sha512>(), &hashed, signature),
        (RsaPadding::Pss, RsaHash::Sha256) => key.verify(Pss::new_with_salt::<Sha256>(32), &hashed, signature),
        (RsaPadding::Pss, RsaHash::Sha384) => key.verify(Pss::new_with_salt::<Sha384>(48), &hashed, signature),
        (RsaPadding::Pss, RsaHash::Sha512) => key.verify(Pss::new_with_salt::<Sha512>(64), &hashed, signature),
    };
    result.is_ok()
}

/// Returns the result RFC 8017 requires: the representative is below `n` and the reference
/// accepts.
fn expected_rsa(key: &RsaPublicKey, hash: RsaHash, padding: RsaPadding, message: &[u8], signature: &[u8]) -> bool {
    BigUint::from_bytes_be(signature) < *key.n() && reference_rsa(key, hash, padding, message, signature)
}

fn sign_rsa(fixture: &RsaFixture, hash: RsaHash, padding: RsaPadding, message: &[u8]) -> Vec<u8> {
    let hashed = digest(hash, message);
    let mut rng = rand_core::OsRng;
    let signature = match (padding, hash) {
        (RsaPadding::Pkcs1v15, RsaHash::Sha256) => fixture.private.sign(Pkcs1v15Sign::new::<Sha256>(), &hashed),
        (RsaPadding::Pkcs1v15, RsaHash::Sha384) => fixture.private.sign(Pkcs1v15Sign::new::<Sha384>(), &hashed),
        (RsaPadding::Pkcs1v15, RsaHash::Sha512) => fixture.private.sign(Pkcs1v15Sign::new::<Sha512>(), &hashed),
        (RsaPadding::Pss, RsaHash::Sha256) => fixture.private.sign_with_rng(&mut rng, Pss::new_with_salt::<Sha256>(32), &hashed),
        (RsaPadding::Pss, RsaHash::Sha384) => fixture.private.sign_with_rng(&mut rng, Pss::new_with_salt::<Sha384>(48), &hashed),
        (RsaPadding::Pss, RsaHash::Sha512) => fixture.private.sign_with_rng(&mut rng, Pss::new_with_salt::<Sha512>(64), &hashed),
    };
    signature.expect("signing succeeds")
}

/// `encoded^d mod n` as a signature of the modulus length: a signature over any encoding.
fn raw_sign(fixture: &RsaFixture, encoded: &[u8]) -> Vec<u8> {
    let value = BigUint::from_bytes_be(encoded).modpow(&fixture.d, fixture.reference.n());
    left_pad(&value.to_bytes_be(), fixture.reference.size())
}

fn left_pad(bytes: &[u8], len: usize) -> Vec<u8> {
    let mut padded = vec![0u8; len - bytes.len()];
    padded.extend_from_slice(bytes);
    padded
}

fn fast_rsa(fixture: &RsaFixture, hash: RsaHash, padding: RsaPadding, message: &[u8], signature: &[u8]) -> bool {
    fixture.fast.verify(hash, padding, message, signature)
}

#[track_caller]
fn assert_rsa_agrees(fixture: &RsaFixture, hash: RsaHash, padding: RsaPadding, message: &[u8], signature: &[u8], case: &str) -> bool {
    let expected = expected_rsa(&fixture.reference, hash, padding, message, signature);
    assert_eq!(fast_rsa(fixture, hash, padding, message, signature), expected, "{case}: {hash:?} {padding:?}");
    expected
}

const SHA256_PREFIX: [u8; 19] =
    [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];

/// EMSA-PKCS1-v1_5 for SHA-256 built from parts, for malformed variants.
fn pkcs1_encoding(len: usize, header: &[u8], separator: &[u8], prefix: &[u8], hash: &[u8], trailer: &[u8]) -> Vec<u8> {
    let fill = len - header.len() - separator.len() - prefix.len() - hash.len() - trailer.len();
    let mut encoded = header.to_vec();
    encoded.extend(std::iter::repeat_n(0xff, fill));
    encoded.extend_from_slice(separator);
    encoded.extend_from_slice(prefix);
    encoded.extend_from_slice(hash);
    encoded.extend_from_slice(trailer);
    encoded
}

#[test]
fn rsa_fixture_keys_all_paddings_match_reference() {
    for name in RSA_KEYS {
        let fixture = rsa_fixture(name);
        for hash in HASHES {
            for padding in [RsaPadding::Pkcs1v15, RsaPadding::Pss] {
                let message = format!("{name} {hash:?} {padding:?}");
                let signature = sign_rsa(&fixture, hash, padding, message.as_bytes());
                assert!(assert_rsa_agrees(&fixture, hash, padding, message.as_bytes(), &signature, name), "{name} verifies");
                assert!(!fast_rsa(&fixture, hash, padding, b"another message", &signature), "{name}: other message");
                let other_padding = if padding == RsaPadding::Pss { RsaPadding::Pkcs1v15 } else { RsaPadding::Pss };
                assert!(!fast_rsa(&fixture, hash, other_padding, message.as_bytes(), &signature), "{name}: other padding");
            }
        }
    }
}

#[test]
fn rsa_signature_not_below_modulus_rejected() {
    for name in RSA_KEYS {
        let fixture = rsa_fixture(name);
        let n = fixture.reference.n().clone();
        let size = fixture.reference.size();
        let message = b"message";
        let valid = sign_rsa(&fixture, RsaHash::Sha256, RsaPadding::Pkcs1v15, message);
        let mut cases = vec![
            ("n", left_pad(&n.to_bytes_be(), size)),
            ("n + 1", left_pad(&(n.clone() + 1u32).to_bytes_be(), size)),
            ("all ones", vec![0xff; size]),
        ];
        // s + n has the same residue as a valid s; it fits the modulus length when the top
        // byte leaves room.
        let shifted = BigUint::from_bytes_be(&valid) + &n;
        if shifted.to_bytes_be().len() <= size {
            cases.push(("valid + n", left_pad(&shifted.to_bytes_be(), size)));
        }
        for (case, signature) in cases {
            for padding in [RsaPadding::Pkcs1v15, RsaPadding::Pss] {
                assert!(!fast_rsa(&fixture, RsaHash::Sha256, padding, message, &signature), "{name}: {case}");
                assert_rsa_agrees(&fixture, RsaHash::Sha256, padding, message, &signature, case);
            }
        }
        assert!(!fixture.fast.verify(RsaHash::Sha256, RsaPadding::Pkcs1v15, message, &valid[1..]), "{name}: short");
        let mut long = vec![0u8];
        long.extend_from_slice(&valid);
        assert!(!fixture.fast.verify(RsaHash::Sha256, RsaPadding::Pkcs1v15, message, &long), "{name}: long");
    }
}

#[test]
fn rsa_signature_with_leading_zero_verifies() {
    let fixture = rsa_fixture("K_RSA_A");
    let (message, signature) = (0u32..5000)
        .map(|counter| {
            let message = format!("leading zero {counter}");
            let signature = sign_rsa(&fixture, RsaHash::Sha256, RsaPadding::Pkcs1v15, message.as_bytes());
            (message, signature)
        })
        .find(|(_, signature)| signature[0] == 0)
        .expect("one signature in 5000 starts with a zero byte");
    assert!(assert_rsa_agrees(&fixture, RsaHash::Sha256, RsaPadding::Pkcs1v15, message.as_bytes(), &signature, "leading zero"));
}

#[test]
fn rsa_pkcs1_padding_variants_rejected() {
    let sha384_prefix: Vec<u8> = {
        let mut prefix = SHA256_PREFIX.to_vec();
        prefix[14] = 0x02;
        prefix
    };
    let no_null_prefix = [0x30, 0x2f, 0x30, 0x0b, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x04, 0x20];
    for name in RSA_KEYS {
        let fixture = rsa_fixture(name);
        let len = fixture.reference.size();
        let message = b"padding variants";
        let hash = Sha256::digest(message).to_vec();
        let other_hash = Sha256::digest(b"another message").to_vec();
        let valid = pkcs1_encoding(len, &[0x00, 0x01], &[0x00], &SHA256_PREFIX, &hash, &[]);
        assert!(
            assert_rsa_agrees(&fixture, RsaHash::Sha256, RsaPadding::Pkcs1v15, message, &raw_sign(&fixture, &valid), "valid"),
            "{name}: the hand-built encoding verifies"
        );
        let mut not_all_ff = valid.clone();
        not_all_ff[5] = 0xfe;
        let mut short_padding = pkcs1_encoding(len, &[0x00, 0x01], &[0x00], &SHA256_PREFIX, &hash, &[]);
        // Seven bytes of FF, then the separator moved forward and zero bytes at the end.
        short_padding.truncate(2 + 7);
        short_padding.push(0x00);
        short_padding.extend_from_slice(&SHA256_PREFIX);
        short_padding.extend_from_slice(&hash);
        short_padding.resize(len, 0x00);
        let variants = [
            ("wrong hash OID", pkcs1_encoding(len, &[0x00, 0x01], &[0x00], &sha384_prefix, &hash, &[])),
            ("DigestInfo without NULL parameters", pkcs1_encoding(len, &[0x00, 0x01], &[0x00], &no_null_prefix, &hash, &[])),
            ("missing 0x00 separator", pkcs1_encoding(len, &[0x00, 0x01], &[0xff], &SHA256_PREFIX, &hash, &[])),
            ("trailing garbage", pkcs1_encoding(len, &[0x00, 0x01], &[0x00], &SHA256_PREFIX, &hash, &[0xde, 0xad, 0xbe, 0xef])),
            ("block type 2", pkcs1_encoding(len, &[0x00, 0x02], &[0x00], &SHA256_PREFIX, &hash, &[])),
            ("leading byte 1", pkcs1_encoding(len, &[0x01, 0x01], &[0x00], &SHA256_PREFIX, &hash, &[])),
            ("padding byte not FF", not_all_ff),
            ("seven bytes of padding", short_padding),
            ("hash of another message", pkcs1_encoding(len, &[0x00, 0x01], &[0x00], &SHA256_PREFIX, &other_hash, &[])),
            ("hash truncated", pkcs1_encoding(len, &[0x00, 0x01], &[0x00], &SHA256_PREFIX, &hash[..31], &[0x00])),
        ];
        for (case, encoded) in variants {
            assert_eq!(encoded.len(), len, "{case}");
            let signature = raw_sign(&fixture, &encoded);
            assert!(!fast_rsa(&fixture, RsaHash::Sha256, RsaPadding::Pkcs1v15, message, &signature), "{name}: {case}");
            assert_rsa_agrees(&fixture, RsaHash::Sha256, RsaPadding::Pkcs1v15, message, &signature, case);
        }
    }
}

/// Bleichenbacher's 2006 forgery for e = 3: a cube root of `00 01 FF 00 DigestInfo hash`
/// followed by garbage. A verifier that stops reading after the hash accepts it.
#[test]
fn rsa_e3_cube_root_forgery_rejected() {
    let fixture = rsa_fixture("K_RSA_E3");
    assert_eq!(fixture.fast.exponent(), 3);
    let len = fixture.reference.size();
    let message = b"forged";
    let mut prefix = vec![0x00, 0x01, 0xff, 0x00];
    prefix.extend_from_slice(&SHA256_PREFIX);
    prefix.extend_from_slice(&Sha256::digest(message));
    let mut low = prefix.clone();
    low.resize(len, 0x00);
    let root = BigUint::from_bytes_be(&low).cbrt() + 1u32;
    let cube = left_pad(&(&root * &root * &root).to_bytes_be(), len);
    assert_eq!(&cube[..prefix.len()], &prefix[..], "the cube starts with the encoding a lax parser looks for");
    let signature = left_pad(&root.to_bytes_be(), len);
    assert!(!fast_rsa(&fixture, RsaHash::Sha256, RsaPadding::Pkcs1v15, message, &signature));
    assert!(!reference_rsa(&fixture.reference, RsaHash::Sha256, RsaPadding::Pkcs1v15, message, &signature));
}

#[derive(Clone, Debug)]
enum Mutation {
    None,
    FlipBit(usize),
    SetByte(usize, u8),
    Truncate,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => Just(Mutation::None),
        3 => any::<usize>().prop_map(Mutation::FlipBit),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(index, byte)| Mutation::SetByte(index, byte)),
        1 => Just(Mutation::Truncate),
    ]
}

fn mutate(signature: &[u8], mutation: &Mutation) -> Vec<u8> {
    let mut changed = signature.to_vec();
    match *mutation {
        Mutation::None => {}
        Mutation::FlipBit(bit) => {
            let bit = bit % (changed.len() * 8);
            changed[bit / 8] ^= 1 << (bit % 8);
        }
        Mutation::SetByte(index, byte) => {
            let index = index % changed.len();
            changed[index] = byte;
        }
        Mutation::Truncate => {
            changed.pop();
        }
    }
    changed
}

fn rsa_fixtures() -> &'static [RsaFixture] {
    static FIXTURES: std::sync::OnceLock<Vec<RsaFixture>> = std::sync::OnceLock::new();
    FIXTURES.get_or_init(|| RSA_KEYS.iter().map(|name| rsa_fixture(name)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn rsa_random_messages_agree_with_reference(
        key in 0..RSA_KEYS.len(),
        hash in proptest::sample::select(&HASHES[..]),
        pss in any::<bool>(),
        message in proptest::collection::vec(any::<u8>(), 0..200),
        change in mutation(),
    ) {
        let fixture = &rsa_fixtures()[key];
        let padding = if pss { RsaPadding::Pss } else { RsaPadding::Pkcs1v15 };
        let signature = mutate(&sign_rsa(fixture, hash, padding, &message), &change);
        let expected = expected_rsa(&fixture.reference, hash, padding, &message, &signature);
        prop_assert_eq!(fast_rsa(fixture, hash, padding, &message, &signature), expected);
        if matches!(change, Mutation::None) {
            prop_assert!(expected);
        }
    }

    #[test]
    fn rsa_random_signatures_agree_with_reference(
        key in 0..RSA_KEYS.len(),
        pss in any::<bool>(),
        seed in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let fixture = &rsa_fixtures()[key];
        let padding = if pss { RsaPadding::Pss } else { RsaPadding::Pkcs1v15 };
        let signature: Vec<u8> = seed.iter().cycle().take(fixture.reference.size()).copied().collect();
        let expected = expected_rsa(&fixture.reference, RsaHash::Sha256, padding, b"m", &signature);
        prop_assert_eq!(fast_rsa(fixture, RsaHash::Sha256, padding, b"m", &signature), expected);
    }
}

// ECDSA.

fn p256_key(secret: &[u8; 32]) -> Option<(p256::ecdsa::SigningKey, P256VerifyingKey)> {
    let signing = p256::ecdsa::SigningKey::from_slice(secret).ok()?;
    let point = signing.verifying_key().to_encoded_point(false);
    let fast = P256VerifyingKey::p256(point.x()?, point.y()?).expect("a valid public key prepares");
    Some((signing, fast))
}

fn p384_key(secret: &[u8; 48]) -> Option<(p384::ecdsa::SigningKey, P384VerifyingKey)> {
    let signing = p384::ecdsa::SigningKey::from_slice(secret).ok()?;
    let point = signing.verifying_key().to_encoded_point(false);
    let fast = P384VerifyingKey::p384(point.x()?, point.y()?).expect("a valid public key prepares");
    Some((signing, fast))
}

fn p256_reference(key: &p256::ecdsa::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    p256::ecdsa::Signature::from_slice(signature).is_ok_and(|signature| key.verify(message, &signature).is_ok())
}

fn p384_reference(key: &p384::ecdsa::VerifyingKey, message: &[u8], signature: &[u8]) -> bool {
    p384::ecdsa::Signature::from_slice(signature).is_ok_and(|signature| key.verify(message, &signature).is_ok())
}

fn p256_order() -> BigUint {
    BigUint::from_bytes_be(&p256::NistP256::ORDER.to_be_byte_array())
}

fn p384_order() -> BigUint {
    BigUint::from_bytes_be(&p384::NistP384::ORDER.to_be_byte_array())
}

fn scalar_bytes(value: &BigUint, len: usize) -> Vec<u8> {
    left_pad(&value.to_bytes_be(), len)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn p256_random_keys_agree_with_reference(
        secret in any::<[u8; 32]>(),
        message in proptest::collection::vec(any::<u8>(), 0..200),
        change in mutation(),
    ) {
        let Some((signing, fast)) = p256_key(&secret) else { return Ok(()) };
        let signature: p256::ecdsa::Signature = signing.sign(&message);
        let signature = mutate(&signature.to_bytes(), &change);
        let expected = p256_reference(signing.verifying_key(), &message, &signature);
        prop_assert_eq!(fast.verify_digest(&Sha256::digest(&message), &signature), expected);
        if matches!(change, Mutation::None) {
            prop_assert!(expected);
        }
    }

    #[test]
    fn p384_random_keys_agree_with_reference(
        secret in proptest::collection::vec(any::<u8>(), 48),
        message in proptest::collection::vec(any::<u8>(), 0..200),
        change in mutation(),
    ) {
        let secret: [u8; 48] = secret.try_into().expect("48 bytes");
        let Some((signing, fast)) = p384_key(&secret) else { return Ok(()) };
        let signature: p384::ecdsa::Signature = signing.sign(&message);
        let signature = mutate(&signature.to_bytes(), &change);
        let expected = p384_reference(signing.verifying_key(), &message, &signature);
        prop_assert_eq!(fast.verify_digest(&Sha384::digest(&message), &signature), expected);
        if matches!(change, Mutation::None) {
            prop_assert!(expected);
        }
    }

    #[test]
    fn p521_random_keys_agree_with_reference(
        secret in proptest::collection::vec(any::<u8>(), 66),
        message in proptest::collection::vec(any::<u8>(), 0..200),
        change in mutation(),
    ) {
        use jwt_compact::{Algorithm as _, AlgorithmSignature as _};
        let mut secret = secret;
        secret[0] &= 1;
        let Ok(signing) = p521::ecdsa::SigningKey::from_slice(&secret) else { return Ok(()) };
        let reference = p521::ecdsa::VerifyingKey::from(&signing);
        let point = reference.to_encoded_point(false);
        let fast = P521VerifyingKey::p521(point.x().expect("x"), point.y().expect("y")).expect("a valid key prepares");
        let signature = portcullis::alg::ecdsa::Es512.sign(&signing, &message);
        let signature = mutate(&signature.as_bytes(), &change);
        let expected = p521::ecdsa::Signature::from_slice(&signature).is_ok_and(|parsed| reference.verify(&message, &parsed).is_ok());
        prop_assert_eq!(fast.verify_digest(&Sha512::digest(&message), &signature), expected);
        if matches!(change, Mutation::None) {
            prop_assert!(expected);
        }
    }

    /// Random scalars with the same digest: nearly all invalid, and both must reject them.
    #[test]
    fn p256_random_signatures_agree_with_reference(r in any::<[u8; 32]>(), s in any::<[u8; 32]>()) {
        let (signing, fast) = p256_key(&[7; 32]).expect("a valid secret");
        let signature = [r, s].concat();
        let expected = p256_reference(signing.verifying_key(), b"m", &signature);
        prop_assert_eq!(fast.verify_digest(&Sha256::digest(b"m"), &signature), expected);
    }

    /// Coordinates near a valid key and random ones: both accept or both reject the import.
    #[test]
    fn p256_import_agrees_with_reference(x in any::<[u8; 32]>(), y in any::<[u8; 32]>(), near in any::<bool>(), delta in 0u8..4) {
        let (x, y) = if near {
            let (signing, _) = p256_key(&x).unwrap_or_else(|| p256_key(&[9; 32]).expect("a valid secret"));
            let point = signing.verifying_key().to_encoded_point(false);
            let mut y: [u8; 32] = point.y().expect("y")[..].try_into().expect("32 bytes");
            y[31] = y[31].wrapping_add(delta);
            (point.x().expect("x")[..].try_into().expect("32 bytes"), y)
        } else {
            (x, y)
        };
        let sec1 = [&[0x04][..], &x, &y].concat();
        let reference = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).is_ok();
        prop_assert_eq!(P256VerifyingKey::p256(&x, &y).is_ok(), reference);
    }
}

#[test]
fn ecdsa_scalars_out_of_range_rejected() {
    let (signing, fast) = p256_key(&[3; 32]).expect("a valid secret");
    let message = b"range";
    let valid: p256::ecdsa::Signature = signing.sign(message);
    let valid = valid.to_bytes();
    let (r, s) = valid.split_at(32);
    let n = p256_order();
    let scalars = [
        ("zero", vec![0u8; 32]),
        ("n", scalar_bytes(&n, 32)),
        ("n + 1", scalar_bytes(&(n.clone() + 1u32), 32)),
        ("all ones", vec![0xff; 32]),
    ];
    for (case, scalar) in &scalars {
        for signature in [[&scalar[..], s].concat(), [r, &scalar[..]].concat()] {
            assert!(!fast.verify_digest(&Sha256::digest(message), &signature), "P-256 {case}");
            assert!(!p256_reference(signing.verifying_key(), message, &signature), "reference P-256 {case}");
        }
    }
    let (signing, fast) = p384_key(&[3; 48]).expect("a valid secret");
    let valid: p384::ecdsa::Signature = signing.sign(message);
    let valid = valid.to_bytes();
    let s = &valid[48..];
    let n = p384_order();
    for (case, scalar) in [("zero", vec![0u8; 48]), ("n", scalar_bytes(&n, 48)), ("all ones", vec![0xff; 48])] {
        let signature = [&scalar[..], s].concat();
        assert!(!fast.verify_digest(&Sha384::digest(message), &signature), "P-384 {case}");
        assert!(!p384_reference(signing.verifying_key(), message, &signature), "reference P-384 {case}");
    }
}

#[test]
fn ecdsa_high_s_accepted_like_reference() {
    let (signing, fast) = p256_key(&[5; 32]).expect("a valid secret");
    let n = p256_order();
    for counter in 0..20u32 {
        let message = format!("high s {counter}");
        let signature: p256::ecdsa::Signature = signing.sign(message.as_bytes());
        let bytes = signature.to_bytes();
        let high_s = &n - BigUint::from_bytes_be(&bytes[32..]);
        let flipped = [&bytes[..32], &scalar_bytes(&high_s, 32)].concat();
        assert!(fast.verify_digest(&Sha256::digest(message.as_bytes()), &flipped), "high S {counter}");
        assert!(p256_reference(signing.verifying_key(), message.as_bytes(), &flipped), "reference high S {counter}");
    }
}

/// With `Q = G` (secret 1), a digest of `n - r` makes `u1 + u2 = 0`: the sum is the point
/// at infinity. With `Q = -G` (secret n - 1) and digest `r`, every piece of the sum cancels
/// on the way, so the running sum passes through infinity again and again.
#[test]
fn ecdsa_sum_at_infinity_rejected() {
    let n = p256_order();
    let one = scalar_bytes(&BigUint::from(1u32), 32);
    let minus_one = scalar_bytes(&(&n - 1u32), 32);
    for (secret, digest_of) in [(one, Box::new(|r: &BigUint| &p256_order() - r) as Box<dyn Fn(&BigUint) -> BigUint>), (minus_one, Box::new(|r: &BigUint| r.clone()))] {
        let secret: [u8; 32] = secret.try_into().expect("32 bytes");
        let (signing, fast) = p256_key(&secret).expect("a valid secret");
        for counter in 0..10u32 {
            let message = format!("infinity {counter}");
            let signature: p256::ecdsa::Signature = signing.sign(message.as_bytes());
            let bytes = signature.to_bytes();
            assert!(fast.verify_digest(&Sha256::digest(message.as_bytes()), &bytes), "valid {counter}");
            let r = BigUint::from_bytes_be(&bytes[..32]);
            let digest = scalar_bytes(&digest_of(&r), 32);
            assert!(!fast.verify_digest(&digest, &bytes), "sum at infinity {counter}");
            let reference = signing.verifying_key().verify_prehash(&digest, &signature);
            assert!(reference.is_err(), "reference sum at infinity {counter}");
        }
    }
}

#[test]
fn ec_off_curve_keys_rejected() {
    let jwk = public_of(&private_jwk("K_EC_A"));
    let (x, y) = (member(&jwk, "x"), member(&jwk, "y"));
    assert!(P256VerifyingKey::p256(&x, &y).is_ok());

    let p = common::unb64("_____wAAAAEAAAAAAAAAAAAAAAD___________________8");
    let mut y_plus_one = y.clone();
    y_plus_one[31] ^= 1;
    let y_plus_p = (BigUint::from_bytes_be(&y) + BigUint::from_bytes_be(&p)).to_bytes_be();
    for (case, x, y) in [
        ("y changed", x.clone(), y_plus_one),
        ("x = p", p.clone(), y.clone()),
        ("zero", vec![0; 32], vec![0; 32]),
        ("short x", x[1..].to_vec(), y.clone()),
    ] {
        assert!(P256VerifyingKey::p256(&x, &y).is_err(), "{case}");
    }
    assert!(y_plus_p.len() > 32, "y + p does not fit 32 bytes, so only the range check can catch a reduced twin");

    let p384 = public_of(&private_jwk("K_P384"));
    let (x, mut y) = (member(&p384, "x"), member(&p384, "y"));
    assert!(P384VerifyingKey::p384(&x, &y).is_ok());
    y[0] ^= 0x80;
    assert!(P384VerifyingKey::p384(&x, &y).is_err(), "P-384 y changed");

    // The JWKS import reports off-curve keys as unusable.
    let mut bad = public_of(&private_jwk("K_EC_A"));
    bad["y"] = json!(common::b64(&{
        let mut y = member(&jwk, "y");
        y[0] ^= 1;
        y
    }));
    let document = json!({ "keys": [bad] }).to_string();
    assert!(KeySet::from_json(document.as_bytes(), KeySetOptions::default()).is_err());
}

/// Every RFC signature vector through the fast path and the reference.
#[test]
fn rfc_vectors_match_reference() {
    let mut checked = 0;
    for vector in common::rfc_vectors()["signatures"].as_array().expect("signatures") {
        let Some(alg) = vector["alg"].as_str().and_then(Algorithm::from_name) else { continue };
        let token = vector["token"].as_str().expect("token");
        let (signing_input, signature) = token.rsplit_once('.').expect("three segments");
        let signature = unb64(signature);
        let public = public_of(&vector["key"]);
        let keys = KeySet::from_json(json!({ "keys": [public] }).to_string().as_bytes(), KeySetOptions { allow_symmetric: true })
            .expect("vector key imports");
        let fast = alg::verify_signature(alg, &keys.keys()[0].key, signing_input.as_bytes(), &signature).is_ok();
        let reference = match alg {
            Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512 => {
                let n = BigUint::from_bytes_be(&member(&public, "n"));
                let e = BigUint::from_bytes_be(&member(&public, "e"));
                let key = RsaPublicKey::new(n, e).expect("reference key");
                let (hash, padding) = match alg {
                    Algorithm::RS256 => (RsaHash::Sha256, RsaPadding::Pkcs1v15),
                    Algorithm::RS384 => (RsaHash::Sha384, RsaPadding::Pkcs1v15),
                    Algorithm::RS512 => (RsaHash::Sha512, RsaPadding::Pkcs1v15),
                    Algorithm::PS256 => (RsaHash::Sha256, RsaPadding::Pss),
                    Algorithm::PS384 => (RsaHash::Sha384, RsaPadding::Pss),
                    _ => (RsaHash::Sha512, RsaPadding::Pss),
                };
                expected_rsa(&key, hash, padding, signing_input.as_bytes(), &signature)
            }
            Algorithm::ES256 => {
                let sec1 = [&[0x04][..], &member(&public, "x"), &member(&public, "y")].concat();
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).expect("reference key");
                p256_reference(&key, signing_input.as_bytes(), &signature)
            }
            Algorithm::ES384 => {
                let sec1 = [&[0x04][..], &member(&public, "x"), &member(&public, "y")].concat();
                let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).expect("reference key");
                p384_reference(&key, signing_input.as_bytes(), &signature)
            }
            _ => continue,
        };
        assert!(fast, "{}: the fast path verifies", vector["name"]);
        assert_eq!(fast, reference, "{}", vector["name"]);
        checked += 1;
    }
    assert!(checked >= 3, "RSA and ECDSA vectors were checked");
}

// Ed25519.

/// A signing key and its public key, with tables when the crate feature `ed25519-tables`
/// is on.
fn ed25519_key(secret: &[u8; 32]) -> (ed25519_dalek::SigningKey, Ed25519VerifyingKey) {
    let signing = ed25519_dalek::SigningKey::from_bytes(secret);
    let mut key = Ed25519VerifyingKey::new(signing.verifying_key());
    key.precompute(None);
    (signing, key)
}

fn ed25519_sign(signing: &ed25519_dalek::SigningKey, message: &[u8]) -> [u8; 64] {
    use ed25519_dalek::Signer as _;
    signing.sign(message).to_bytes()
}

/// Asserts that the table path returns what `ed25519-dalek` returns, and returns that
/// result.
fn assert_ed25519_agrees(key: &Ed25519VerifyingKey, message: &[u8], signature: &[u8; 64], case: &str) -> bool {
    let expected = key.verify_without_tables(message, signature);
    assert_eq!(key.verify(message, signature), expected, "{case}");
    expected
}

fn hex32(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..text.len()).step_by(2).map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex")).collect();
    bytes.try_into().expect("32 bytes")
}

#[test]
fn ed25519_tables_built_for_key_sets_only() {
    let (_, key) = ed25519_key(&[7; 32]);
    assert_eq!(key.has_tables(), cfg!(feature = "ed25519-tables"));
    let public = public_jwk("K_ED25519");
    let keys = KeySet::from_json(json!({ "keys": [public] }).to_string().as_bytes(), KeySetOptions::default()).expect("key set");
    let portcullis::jwks::PublicKey::Ed25519(key) = &keys.keys()[0].key else { panic!("an Ed25519 key") };
    assert_eq!(key.has_tables(), cfg!(feature = "ed25519-tables"));
    let alone = portcullis::jwks::import(public.as_object().expect("object"), KeySetOptions::default()).expect("key imports");
    let portcullis::jwks::PublicKey::Ed25519(key) = &alone.key else { panic!("an Ed25519 key") };
    assert!(!key.has_tables(), "a key imported on its own, as a DPoP proof's, has no tables");
}

/// Only the first `MAX_ED25519_TABLES` Ed25519 keys of a set get tables, so a large set
/// costs bounded memory; the others still verify.
#[test]
fn ed25519_tables_capped_per_key_set() {
    let signing: Vec<ed25519_dalek::SigningKey> = (1..=6u8).map(|seed| ed25519_dalek::SigningKey::from_bytes(&[seed; 32])).collect();
    let jwks: Vec<Value> = signing
        .iter()
        .enumerate()
        .map(|(index, key)| json!({ "kty": "OKP", "crv": "Ed25519", "kid": format!("ed-{index}"), "x": common::b64(key.verifying_key().to_bytes()) }))
        .collect();
    let keys = KeySet::from_json(json!({ "keys": jwks }).to_string().as_bytes(), KeySetOptions::default()).expect("key set");
    let with_tables: Vec<bool> = keys
        .keys()
        .iter()
        .map(|jwk| match &jwk.key {
            portcullis::jwks::PublicKey::Ed25519(key) => key.has_tables(),
            _ => panic!("an Ed25519 key"),
        })
        .collect();
    let cap = if cfg!(feature = "ed25519-tables") { portcullis::jwks::MAX_ED25519_TABLES } else { 0 };
    let expected: Vec<bool> = (0..signing.len()).map(|index| index < cap).collect();
    assert_eq!(with_tables, expected);
    let message = b"eyJhbGciOiJFZERTQSJ9.e30";
    for (signing, jwk) in signing.iter().zip(keys.keys()) {
        let signature = ed25519_sign(signing, message);
        assert!(alg::verify_signature(Algorithm::EdDSA, &jwk.key, message, &signature).is_ok(), "{:?}", jwk.kid);
        let mut changed = signature;
        changed[40] ^= 4;
        assert!(alg::verify_signature(Algorithm::EdDSA, &jwk.key, message, &changed).is_err(), "{:?}", jwk.kid);
    }
}

#[test]
fn ed25519_every_signature_bit_flip_agrees() {
    for secret in [[1u8; 32], [0x5a; 32]] {
        let (signing, key) = ed25519_key(&secret);
        let message = b"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0";
        let signature = ed25519_sign(&signing, message);
        assert!(assert_ed25519_agrees(&key, message, &signature, "unchanged"));
        for bit in 0..512 {
            let mut changed = signature;
            changed[bit / 8] ^= 1 << (bit % 8);
            assert!(!assert_ed25519_agrees(&key, message, &changed, &format!("bit {bit}")), "bit {bit}");
        }
        assert!(!assert_ed25519_agrees(&key, b"another message", &signature, "another message"));
    }
}

#[test]
fn ed25519_s_not_below_order_rejected() {
    let (signing, key) = ed25519_key(&[3; 32]);
    let message = b"m";
    let signature = ed25519_sign(&signing, message);
    // s + l has the same value modulo l, but is not canonical.
    let order = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut s_plus_order = signature;
    let mut carry = 0u16;
    for (byte, order_byte) in s_plus_order[32..].iter_mut().zip(order) {
        let sum = u16::from(*byte) + u16::from(order_byte) + carry;
        *byte = sum.to_le_bytes()[0];
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "s + l fits in 32 bytes");
    assert!(!assert_ed25519_agrees(&key, message, &s_plus_order, "s + l"));
    for s in [order, [0xff; 32], hex32("0000000000000000000000000000000000000000000000000000000000000080")] {
        let mut changed = signature;
        changed[32..].copy_from_slice(&s);
        assert!(!assert_ed25519_agrees(&key, message, &changed, "large s"));
    }
}

#[test]
fn ed25519_special_r_values_agree() {
    let (signing, key) = ed25519_key(&[9; 32]);
    let message = b"m";
    let signature = ed25519_sign(&signing, message);
    let special = [
        // The identity, points of order 2, 4 and 8, and encodings of y at or above p.
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0000000000000000000000000000000000000000000000000000000000000080",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    ];
    for r in special {
        for s in [[0u8; 32], signature[32..].try_into().expect("32 bytes")] {
            let mut changed = [0u8; 64];
            changed[..32].copy_from_slice(&hex32(r));
            changed[32..].copy_from_slice(&s);
            assert!(!assert_ed25519_agrees(&key, message, &changed, r), "{r}");
        }
    }
}

/// The RFC 8032 §7.1 test vectors through both paths.
#[test]
fn ed25519_rfc8032_vectors_agree() {
    let vectors = [
        ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "", "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
        ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72", "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
        ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82", "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
    ];
    for (public, message, signature) in vectors {
        let mut key = Ed25519VerifyingKey::new(ed25519_dalek::VerifyingKey::from_bytes(&hex32(public)).expect("vector key"));
        key.precompute(None);
        let message: Vec<u8> = (0..message.len()).step_by(2).map(|at| u8::from_str_radix(&message[at..at + 2], 16).expect("hex")).collect();
        let signature: [u8; 64] = [hex32(&signature[..64]), hex32(&signature[64..])].concat().try_into().expect("64 bytes");
        assert!(assert_ed25519_agrees(&key, &message, &signature, public), "{public}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn ed25519_random_messages_agree(
        secret in any::<[u8; 32]>(),
        message in proptest::collection::vec(any::<u8>(), 0..300),
        change in mutation(),
    ) {
        let (signing, key) = ed25519_key(&secret);
        let signature = mutate(&ed25519_sign(&signing, &message), &change);
        let Ok(signature) = <[u8; 64]>::try_from(signature.as_slice()) else { return Ok(()) };
        let expected = key.verify_without_tables(&message, &signature);
        prop_assert_eq!(key.verify(&message, &signature), expected);
        if matches!(change, Mutation::None) {
            prop_assert!(expected);
        }
    }

    #[test]
    fn ed25519_random_signatures_agree(secret in any::<[u8; 32]>(), r in any::<[u8; 32]>(), s in any::<[u8; 32]>()) {
        let (_, key) = ed25519_key(&secret);
        let signature: [u8; 64] = [r, s].concat().try_into().expect("64 bytes");
        // Mostly rejected by both; a small s reaches the point arithmetic.
        let mut small_s = signature;
        small_s[40..].fill(0);
        for signature in [signature, small_s] {
            prop_assert_eq!(key.verify(b"m", &signature), key.verify_without_tables(b"m", &signature));
        }
    }
}
