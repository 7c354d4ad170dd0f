//! Tamper harness for every algorithm: a valid token passes untouched, and every change to
//! it fails with the specific error.
//!
//! For each algorithm the harness flips every bit of the signature, truncates and extends
//! it, swaps `alg` and `kid` in the header, and changes every byte of the claims. Claims
//! edits must fail as `signature_invalid` even when they break the JSON, because the claims
//! are parsed only after the signature verified.

mod common;

use common::{b64, private_jwk, public_of, sign_json, unb64, NOW};
use portcullis::alg::Algorithm;
use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::policy::Policy;
use portcullis::verify::verify_token;
use serde_json::json;

/// Returns every algorithm this build verifies.
fn supported() -> Vec<Algorithm> {
    Algorithm::ALL.iter().copied().filter(|alg| alg.is_supported()).collect()
}

fn policy_for(algorithms: &[Algorithm]) -> Policy {
    let names: Vec<&str> = algorithms.iter().map(|alg| alg.name()).collect();
    Policy::from_json(json!({ "algorithms": names, "issuer": common::ISSUER }).to_string().as_bytes()).expect("policy")
}

struct Harness {
    alg: Algorithm,
    token: String,
    keys: KeySet,
    /// Allows every supported algorithm, so that header changes reach key selection.
    open_policy: Policy,
    /// Allows only `alg`.
    strict_policy: Policy,
}

impl Harness {
    fn new(alg: Algorithm, key_name: &str, jwk_alg: bool) -> Self {
        let private = private_jwk(key_name);
        let mut public = public_of(&private);
        if jwk_alg {
            public["alg"] = json!(alg.name());
        }
        let keys = KeySet::from_json(json!({ "keys": [public] }).to_string().as_bytes(), KeySetOptions { allow_symmetric: true })
            .expect("key set parses");
        let claims = json!({
            "iss": common::ISSUER,
            "sub": "user-123",
            "scope": "read write",
            "iat": NOW,
            "exp": NOW + 3600
        });
        let header = json!({ "alg": alg.name(), "kid": private["kid"], "typ": "at+jwt" });
        let token = sign_json(alg, &private, &header, &claims);
        Self { alg, token, keys, open_policy: policy_for(&supported()), strict_policy: policy_for(&[alg]) }
    }

    fn code(&self, token: &str, policy: &Policy) -> Result<(), String> {
        verify_token(token, &self.keys, policy, NOW).map(|_| ()).map_err(|error| error.code().as_str().to_string())
    }

    fn segments(&self) -> (&str, &str, &str) {
        let mut parts = self.token.split('.');
        let header = parts.next().expect("header");
        let payload = parts.next().expect("payload");
        let signature = parts.next().expect("signature");
        (header, payload, signature)
    }

    #[track_caller]
    fn expect(&self, token: &str, policy: &Policy, expected: &str, case: &str) {
        assert_eq!(self.code(token, policy), Err(expected.to_string()), "{}: {case}", self.alg);
    }

    fn untouched_passes(&self) {
        assert_eq!(self.code(&self.token, &self.strict_policy), Ok(()), "{}: untouched token", self.alg);
        assert_eq!(self.code(&self.token, &self.open_policy), Ok(()), "{}: untouched token", self.alg);
    }

    fn every_signature_bit_flipped(&self) {
        self.signature_bits_flipped(|_| true);
    }

    fn signature_bits_flipped(&self, include: impl Fn(usize) -> bool) {
        let (header, payload, signature_b64) = self.segments();
        let signature = unb64(signature_b64);
        for bit in (0..signature.len() * 8).filter(|bit| include(*bit)) {
            let mut flipped = signature.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let token = format!("{header}.{payload}.{}", b64(&flipped));
            self.expect(&token, &self.strict_policy, "signature_invalid", &format!("bit {bit} flipped"));
        }
    }

    fn signature_truncated_and_extended(&self) {
        let (header, payload, signature_b64) = self.segments();
        let signature = unb64(signature_b64);
        let length = signature.len();
        let mut variants: Vec<(String, Vec<u8>)> = vec![
            ("empty".into(), Vec::new()),
            ("one byte".into(), signature[..1].to_vec()),
            ("last byte removed".into(), signature[..length - 1].to_vec()),
            ("half".into(), signature[..length / 2].to_vec()),
        ];
        let mut extended = signature.clone();
        extended.push(0);
        variants.push(("zero byte appended".into(), extended));
        let mut leading = vec![0];
        leading.extend_from_slice(&signature);
        variants.push(("zero byte prepended".into(), leading));
        variants.push(("doubled".into(), [signature.clone(), signature.clone()].concat()));
        for (case, bytes) in variants {
            let token = format!("{header}.{payload}.{}", b64(&bytes));
            self.expect(&token, &self.strict_policy, "signature_length_invalid", &case);
        }

        // Cut in the base64url text instead: one character less leaves a length that is
        // 1 (mod 4) or non-zero trailing bits, which is invalid base64url before any check.
        for cut in 1..=3 {
            let text = &signature_b64[..signature_b64.len() - cut];
            let token = format!("{header}.{payload}.{text}");
            let result = self.code(&token, &self.strict_policy);
            assert!(
                result == Err("invalid_base64".into()) || result == Err("signature_length_invalid".into()),
                "{}: {cut} characters cut: {result:?}",
                self.alg
            );
        }
    }

    fn header_alg_swapped(&self) {
        let (_, payload, signature) = self.segments();
        let kid = self.keys.keys()[0].kid.clone();
        for other in supported().into_iter().filter(|other| *other != self.alg) {
            let header = b64(json!({ "alg": other.name(), "kid": kid, "typ": "at+jwt" }).to_string());
            let token = format!("{header}.{payload}.{signature}");
            self.expect(&token, &self.strict_policy, "algorithm_not_allowed", &format!("alg {other}"));

            // With the other algorithm allowed, key selection decides. A key of another
            // type, or a JWK bound to the original `alg`, is unusable. A key of the same
            // family checks a signature that was made for another hash or padding.
            let expected = if self.keys.keys()[0].ineligibility(other).is_some() {
                "key_unusable"
            } else if other.signature_length().is_some() && other.signature_length() != self.alg.signature_length() {
                "signature_length_invalid"
            } else {
                "signature_invalid"
            };
            self.expect(&token, &self.open_policy, expected, &format!("alg {other} with every algorithm allowed"));
        }
        for name in ["none", "None", "", "HS256 ", "rs256", "ES256K1"] {
            let header = b64(json!({ "alg": name, "kid": kid }).to_string());
            let token = format!("{header}.{payload}.{signature}");
            self.expect(&token, &self.open_policy, "algorithm_not_allowed", &format!("alg {name:?}"));
        }
    }

    fn header_kid_swapped(&self) {
        let (_, payload, signature) = self.segments();
        for kid in ["other", "RSA-A", "", "rsa-a\u{0}", "../../../../dev/null", "ec-a ", "k\u{e9}y"] {
            if Some(kid) == self.keys.keys()[0].kid.as_deref() {
                continue;
            }
            let header = b64(json!({ "alg": self.alg.name(), "kid": kid, "typ": "at+jwt" }).to_string());
            let token = format!("{header}.{payload}.{signature}");
            self.expect(&token, &self.strict_policy, "key_not_found", &format!("kid {kid:?}"));
        }
    }

    fn header_members_changed(&self) {
        let (_, payload, signature) = self.segments();
        let alg = self.alg.name();
        let kid = self.keys.keys()[0].kid.clone().unwrap_or_default();
        // Written as text: `serde_json` would sort the members back into the signed order.
        let headers = [
            format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"JWT"}}"#),
            format!(r#"{{"alg":"{alg}","kid":"{kid}"}}"#),
            format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"at+jwt","x":1}}"#),
            format!(r#"{{"kid":"{kid}","typ":"at+jwt","alg":"{alg}"}}"#),
            format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"at+jwt"}} "#),
            format!(r#"{{"alg":"{alg}", "kid":"{kid}","typ":"at+jwt"}}"#),
            // Without `kid` the key is still found by its type, but the signature covers
            // the original header.
            format!(r#"{{"alg":"{alg}","typ":"at+jwt"}}"#),
        ];
        for header in headers {
            let token = format!("{}.{payload}.{signature}", b64(&header));
            self.expect(&token, &self.strict_policy, "signature_invalid", &format!("header {header}"));
        }
        let original = format!(r#"{{"alg":"{alg}","kid":"{kid}","typ":"at+jwt"}}"#);
        assert_eq!(unb64(self.segments().0), original.as_bytes(), "{alg}: the harness signs this header text");
    }

    fn every_claims_byte_changed(&self) {
        let (header, payload_b64, signature) = self.segments();
        let payload = unb64(payload_b64);
        for index in 0..payload.len() {
            for change in [0x01u8, 0x20, 0x80] {
                let mut edited = payload.clone();
                edited[index] ^= change;
                let token = format!("{header}.{}.{signature}", b64(&edited));
                self.expect(&token, &self.strict_policy, "signature_invalid", &format!("claims byte {index} ^ {change:#04x}"));
            }
        }
        // Claims replaced wholesale, by a valid object with more rights.
        let forged = json!({ "iss": common::ISSUER, "sub": "admin", "scope": "admin", "exp": NOW + 3600 });
        let token = format!("{header}.{}.{signature}", b64(forged.to_string()));
        self.expect(&token, &self.strict_policy, "signature_invalid", "claims replaced");
    }

    fn run(&self) {
        self.untouched_passes();
        self.every_signature_bit_flipped();
        self.signature_truncated_and_extended();
        self.header_alg_swapped();
        self.header_kid_swapped();
        self.header_members_changed();
        self.every_claims_byte_changed();
    }
}

fn run(alg: Algorithm, key_name: &str) {
    Harness::new(alg, key_name, false).run();
    // With the JWK bound to the algorithm through its `alg` member, only the header checks
    // change: every other algorithm now meets an unusable key.
    let bound = Harness::new(alg, key_name, true);
    bound.untouched_passes();
    bound.header_alg_swapped();
    bound.header_kid_swapped();
}

#[test]
fn tamper_hs256() {
    run(Algorithm::HS256, "K_HS");
}

#[test]
fn tamper_hs384() {
    run(Algorithm::HS384, "K_HS_512");
}

#[test]
fn tamper_hs512() {
    run(Algorithm::HS512, "K_HS_512");
}

#[test]
fn tamper_rs256() {
    run(Algorithm::RS256, "K_RSA_A");
}

#[test]
fn tamper_rs384() {
    run(Algorithm::RS384, "K_RSA_A");
}

#[test]
fn tamper_rs512() {
    run(Algorithm::RS512, "K_RSA_A");
}

#[test]
fn tamper_ps256() {
    run(Algorithm::PS256, "K_RSA_A");
}

#[test]
fn tamper_ps384() {
    run(Algorithm::PS384, "K_RSA_A");
}

#[test]
fn tamper_ps512() {
    run(Algorithm::PS512, "K_RSA_A");
}

#[test]
fn tamper_es256() {
    run(Algorithm::ES256, "K_EC_A");
}

#[test]
fn tamper_es384() {
    run(Algorithm::ES384, "K_P384");
}

#[test]
fn tamper_es512() {
    run(Algorithm::ES512, "K_P521");
}

#[test]
fn tamper_eddsa() {
    run(Algorithm::EdDSA, "K_ED25519");
}

#[test]
fn tamper_ed25519() {
    run(Algorithm::Ed25519, "K_ED25519");
}

#[cfg(feature = "es256k")]
#[test]
fn tamper_es256k() {
    run(Algorithm::ES256K, "K_SECP256K1");
}

/// RSA moduli of 3072 and 4096 bits, and the unusual exponents 3 and 35, go through the
/// signature checks of the harness with RS256. The bits flipped are the first and last 16
/// and one in every 8 bytes between, because a full sweep of a 4096-bit signature takes
/// minutes in an unoptimized build; `tamper_rs256` flips every bit on the same code path.
#[test]
fn tamper_rs256_other_rsa_keys() {
    for key_name in ["K_RSA_3072", "K_RSA_4096", "K_RSA_E3", "K_RSA_E35"] {
        let harness = Harness::new(Algorithm::RS256, key_name, false);
        let bits = unb64(harness.segments().2).len() * 8;
        harness.untouched_passes();
        harness.signature_bits_flipped(|bit| bit < 16 || bit >= bits - 16 || bit % 64 == (bit / 64) % 8);
        harness.signature_truncated_and_extended();
        harness.header_kid_swapped();
        harness.header_members_changed();
    }
}

/// A token signed by one key never verifies with another key of the same type under the
/// same `kid`.
#[test]
fn tamper_other_key_same_kid() {
    let pairs = [
        (Algorithm::HS256, "K_HS", "K_HS_512"),
        (Algorithm::RS256, "K_RSA_A", "K_RSA_B"),
        (Algorithm::PS256, "K_RSA_A", "K_RSA_B"),
        (Algorithm::ES256, "K_EC_A", "K_ATK_EC"),
    ];
    for (alg, signer, trusted) in pairs {
        let trusted_jwk = public_of(&private_jwk(trusted));
        let keys = KeySet::from_json(
            json!({ "keys": [common::with(&trusted_jwk, &json!({"kid": "shared"}))] }).to_string().as_bytes(),
            KeySetOptions { allow_symmetric: true },
        )
        .expect("key set");
        let header = json!({ "alg": alg.name(), "kid": "shared" });
        let claims = json!({ "iss": common::ISSUER, "exp": NOW + 60 });
        let token = sign_json(alg, &private_jwk(signer), &header, &claims);
        let error = verify_token(&token, &keys, &policy_for(&[alg]), NOW).expect_err("wrong key");
        assert_eq!(error.code().as_str(), "signature_invalid", "{alg} signed by {signer}: {error}");
    }
}
