//! Differential target for this crate's own signature arithmetic: RSA (src/alg/rsa.rs)
//! against the `rsa` crate, ECDSA on P-256 and P-384 (src/alg/weierstrass.rs) against the
//! `p256` and `p384` crates, and Ed25519 with precomputed tables (src/alg/eddsa.rs) against
//! `ed25519-dalek`'s own verification. The input picks a key and a padding, a message, and either a
//! valid signature with bytes XORed in or raw signature bytes; both implementations must give
//! the same answer. For RSA the expected answer also requires the signature to be below the
//! modulus (RFC 8017 §5.2.2), which `rsa` 0.9 does not check for PSS.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use portcullis::alg::eddsa::Ed25519VerifyingKey;
use portcullis::alg::rsa::{RsaHash, RsaPadding, RsaVerifyingKey};
use portcullis::alg::weierstrass::{P256VerifyingKey, P384VerifyingKey};
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, Pkcs1v15Sign, Pss, RsaPrivateKey, RsaPublicKey};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384};

const KEYS: &str = include_str!("../../vectors/keys.json");
const RSA_KEYS: [&str; 5] = ["K_RSA_A", "K_RSA_3072", "K_RSA_4096", "K_RSA_E3", "K_RSA_E35"];
/// Messages signed once at start; the fuzzer mutates their signatures.
const MESSAGES: [&[u8]; 2] = [b"eyJhbGciOiJSUzI1NiJ9.e30", b""];

#[derive(Arbitrary, Debug)]
enum Input<'a> {
    Rsa { key: u8, pss: bool, message: u8, mask: &'a [u8], offset: u16 },
    RsaRaw { key: u8, pss: bool, signature: &'a [u8] },
    P256 { message: u8, mask: &'a [u8], offset: u8 },
    P256Raw { signature: &'a [u8], digest: [u8; 32] },
    P384 { message: u8, mask: &'a [u8], offset: u8 },
    Ed25519 { key: u8, message: &'a [u8], mask: &'a [u8], offset: u8 },
    Ed25519Raw { key: u8, message: u8, signature: [u8; 64] },
}

struct RsaFixture {
    fast: RsaVerifyingKey,
    reference: RsaPublicKey,
    /// Signatures of each message: PKCS#1 v1.5 then PSS, SHA-256.
    signatures: Vec<[Vec<u8>; 2]>,
}

struct Fixtures {
    rsa: Vec<RsaFixture>,
    p256: (P256VerifyingKey, p256::ecdsa::VerifyingKey, Vec<Vec<u8>>),
    p384: (P384VerifyingKey, p384::ecdsa::VerifyingKey, Vec<Vec<u8>>),
    /// Signing keys and their verifying keys with tables; the second shares the first's
    /// table of the base point, as keys of one set do.
    ed25519: Vec<(ed25519_dalek::SigningKey, Ed25519VerifyingKey)>,
}

fn member(jwk: &Value, name: &str) -> Vec<u8> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    Base64UrlUnpadded::decode_vec(jwk[name].as_str().unwrap_or_default()).unwrap_or_default()
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let keys: Value = serde_json::from_str(KEYS).expect("keys.json");
        let rsa = RSA_KEYS
            .iter()
            .map(|name| {
                let jwk = &keys["keys"][name]["jwk"];
                let number = |member_name| BigUint::from_bytes_be(&member(jwk, member_name));
                let private = RsaPrivateKey::from_components(number("n"), number("e"), number("d"), vec![number("p"), number("q")])
                    .expect("private key");
                let exponent = member(jwk, "e").iter().fold(0u32, |value, &byte| value << 8 | u32::from(byte));
                let signatures = MESSAGES
                    .iter()
                    .map(|message| {
                        let hashed = Sha256::digest(message);
                        [
                            private.sign(Pkcs1v15Sign::new::<Sha256>(), &hashed).expect("sign"),
                            private.sign_with_rng(&mut rand::rngs::OsRng, Pss::new_with_salt::<Sha256>(32), &hashed).expect("sign"),
                        ]
                    })
                    .collect();
                RsaFixture {
                    fast: RsaVerifyingKey::new(&member(jwk, "n"), exponent).expect("prepare"),
                    reference: private.to_public_key(),
                    signatures,
                }
            })
            .collect();
        let p256_signing = p256::ecdsa::SigningKey::from_slice(&member(&keys["keys"]["K_EC_A"]["jwk"], "d")).expect("P-256");
        let point = p256_signing.verifying_key().to_encoded_point(false);
        let p256_fast = P256VerifyingKey::p256(point.x().expect("x"), point.y().expect("y")).expect("prepare");
        let p256_signatures = MESSAGES
            .iter()
            .map(|message| {
                let signature: p256::ecdsa::Signature = p256_signing.sign(message);
                signature.to_bytes().to_vec()
            })
            .collect();
        let p384_signing = p384::ecdsa::SigningKey::from_slice(&member(&keys["keys"]["K_P384"]["jwk"], "d")).expect("P-384");
        let point = p384_signing.verifying_key().to_encoded_point(false);
        let p384_fast = P384VerifyingKey::p384(point.x().expect("x"), point.y().expect("y")).expect("prepare");
        let p384_signatures = MESSAGES
            .iter()
            .map(|message| {
                let signature: p384::ecdsa::Signature = p384_signing.sign(message);
                signature.to_bytes().to_vec()
            })
            .collect();
        let seed: [u8; 32] = member(&keys["keys"]["K_ED25519"]["jwk"], "d").try_into().expect("Ed25519 seed");
        let mut ed25519: Vec<(ed25519_dalek::SigningKey, Ed25519VerifyingKey)> = Vec::new();
        for seed in [seed, [0x42; 32]] {
            let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
            let mut verifying = Ed25519VerifyingKey::new(signing.verifying_key());
            verifying.precompute(ed25519.first().map(|(_, first)| first));
            assert!(verifying.has_tables(), "the fuzz build turns on ed25519-tables");
            ed25519.push((signing, verifying));
        }
        Fixtures {
            ed25519,
            rsa,
            p256: (p256_fast, *p256_signing.verifying_key(), p256_signatures),
            p384: (p384_fast, *p384_signing.verifying_key(), p384_signatures),
        }
    })
}

fn masked(signature: &[u8], mask: &[u8], offset: usize) -> Vec<u8> {
    let mut changed = signature.to_vec();
    let len = changed.len().max(1);
    for (index, byte) in mask.iter().enumerate() {
        if let Some(slot) = changed.get_mut((offset + index) % len) {
            *slot ^= byte;
        }
    }
    changed
}

fn check_rsa(fixture: &RsaFixture, pss: bool, message: &[u8], signature: &[u8]) {
    let hashed = Sha256::digest(message);
    let (padding, reference) = if pss {
        (RsaPadding::Pss, fixture.reference.verify(Pss::new_with_salt::<Sha256>(32), &hashed, signature).is_ok())
    } else {
        (RsaPadding::Pkcs1v15, fixture.reference.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, signature).is_ok())
    };
    let expected = reference && BigUint::from_bytes_be(signature) < *fixture.reference.n();
    assert_eq!(fixture.fast.verify(RsaHash::Sha256, padding, message, signature), expected, "RSA pss={pss}");
}

fuzz_target!(|input: Input<'_>| {
    let fixtures = fixtures();
    match input {
        Input::Rsa { key, pss, message, mask, offset } => {
            let fixture = &fixtures.rsa[usize::from(key) % fixtures.rsa.len()];
            let index = usize::from(message) % MESSAGES.len();
            let signature = masked(&fixture.signatures[index][usize::from(pss)], mask, usize::from(offset));
            check_rsa(fixture, pss, MESSAGES[index], &signature);
        }
        Input::RsaRaw { key, pss, signature } => {
            let fixture = &fixtures.rsa[usize::from(key) % fixtures.rsa.len()];
            let mut full = signature.to_vec();
            full.resize(fixture.reference.size(), 0);
            check_rsa(fixture, pss, MESSAGES[0], &full);
        }
        Input::P256 { message, mask, offset } => {
            let (fast, reference, signatures) = &fixtures.p256;
            let index = usize::from(message) % MESSAGES.len();
            let signature = masked(&signatures[index], mask, usize::from(offset));
            let expected = p256::ecdsa::Signature::from_slice(&signature)
                .is_ok_and(|parsed| reference.verify(MESSAGES[index], &parsed).is_ok());
            assert_eq!(fast.verify_digest(&Sha256::digest(MESSAGES[index]), &signature), expected, "P-256");
        }
        Input::P256Raw { signature, digest } => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
            let (fast, reference, _) = &fixtures.p256;
            let mut full = signature.to_vec();
            full.resize(64, 0);
            let expected = p256::ecdsa::Signature::from_slice(&full)
                .is_ok_and(|parsed| reference.verify_prehash(&digest, &parsed).is_ok());
            assert_eq!(fast.verify_digest(&digest, &full), expected, "P-256 raw");
        }
        Input::P384 { message, mask, offset } => {
            let (fast, reference, signatures) = &fixtures.p384;
            let index = usize::from(message) % MESSAGES.len();
            let signature = masked(&signatures[index], mask, usize::from(offset));
            let expected = p384::ecdsa::Signature::from_slice(&signature)
                .is_ok_and(|parsed| reference.verify(MESSAGES[index], &parsed).is_ok());
            assert_eq!(fast.verify_digest(&Sha384::digest(MESSAGES[index]), &signature), expected, "P-384");
        }
        Input::Ed25519 { key, message, mask, offset } => {
            let (signing, verifying) = &fixtures.ed25519[usize::from(key) % fixtures.ed25519.len()];
            let signed = signing.sign(message).to_bytes();
            let changed: [u8; 64] = masked(&signed, mask, usize::from(offset)).try_into().expect("64 bytes");
            let expected = verifying.verify_without_tables(message, &changed);
            assert_eq!(verifying.verify(message, &changed), expected, "Ed25519");
            if changed == signed {
                assert!(expected, "Ed25519: an unchanged signature verifies");
            }
        }
        Input::Ed25519Raw { key, message, signature } => {
            let (_, verifying) = &fixtures.ed25519[usize::from(key) % fixtures.ed25519.len()];
            let message = MESSAGES[usize::from(message) % MESSAGES.len()];
            assert_eq!(verifying.verify(message, &signature), verifying.verify_without_tables(message, &signature), "Ed25519 raw");
        }
    }
});
