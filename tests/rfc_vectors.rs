//! Signature and thumbprint vectors from the RFCs, read from `tests/vectors/rfc.json`.
//!
//! Each test is named for its source. Randomized signatures (ECDSA, RSASSA-PSS) are only
//! verified. Deterministic ones (HMAC, RSASSA-PKCS1-v1_5, Ed25519) are also re-signed with
//! the RFC's private key and must reproduce the RFC token byte for byte. That also checks
//! the signing helpers that every other test relies on.

mod common;

use common::{b64, public_of, rfc_vectors, sign_bytes};
use portcullis::alg::{self, Algorithm};
use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::policy::Policy;
use portcullis::token::{parse_token, DEFAULT_MAX_TOKEN_BYTES};
use portcullis::verify::verify_token;
use serde_json::{json, Value};

fn vector(name: &str) -> &'static Value {
    rfc_vectors()["signatures"]
        .as_array()
        .and_then(|entries| entries.iter().find(|entry| entry["name"] == name))
        .unwrap_or_else(|| panic!("rfc.json has no signature vector {name}"))
}

fn thumbprint_vector(name: &str) -> &'static Value {
    rfc_vectors()["thumbprints"]
        .as_array()
        .and_then(|entries| entries.iter().find(|entry| entry["name"] == name))
        .unwrap_or_else(|| panic!("rfc.json has no thumbprint vector {name}"))
}

/// Runs one signature vector through every layer: the key imports, the signature verifies
/// on its own and through `verify_token`, and one flipped bit makes it fail.
fn check_vector(name: &str) {
    let entry = vector(name);
    let source = entry["source"].as_str().expect("source");
    let alg = Algorithm::from_name(entry["alg"].as_str().expect("alg")).expect("known alg");
    let token = entry["token"].as_str().expect("token");
    let now = entry["now"].as_u64().expect("now");
    let private = &entry["key"];
    let public = public_of(private);

    let options = KeySetOptions { allow_symmetric: alg.is_symmetric() };
    let keys = KeySet::from_json(json!({ "keys": [public] }).to_string().as_bytes(), options)
        .unwrap_or_else(|error| panic!("{source}: key does not import: {error}"));
    assert_eq!(keys.skipped(), &[], "{source}");

    // The signature alone, through the same key selection as the verifier.
    let parsed = parse_token(token, DEFAULT_MAX_TOKEN_BYTES).unwrap_or_else(|error| panic!("{source}: {error}"));
    let candidates = keys.select(parsed.header(), alg).unwrap_or_else(|error| panic!("{source}: {error}"));
    assert_eq!(candidates.len(), 1, "{source}");
    let key = &candidates[0].key;
    let message = parsed.signing_input().as_bytes();
    alg::verify_signature(alg, key, message, parsed.signature())
        .unwrap_or_else(|error| panic!("{source}: signature does not verify: {error}"));

    // One flipped bit anywhere in the signature must fail.
    let mut damaged = parsed.signature().to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x01;
    let damaged_result = alg::verify_signature(alg, key, message, &damaged);
    assert!(damaged_result.is_err(), "{source}: a changed signature verified");

    // The whole pipeline. The allowlist holds only the vector's algorithm and no issuer or
    // audience is required, because the RFC claims name neither ours.
    let policy = Policy::from_json(json!({ "algorithms": [alg.name()] }).to_string().as_bytes()).expect("policy");
    let result = verify_token(token, &keys, &policy, now);
    match entry["payload"].as_str() {
        Some("claims") => {
            let verified = result.unwrap_or_else(|error| panic!("{source}: {} {error}", error.code()));
            assert_eq!(verified.algorithm(), alg, "{source}");
            assert_eq!(verified.claims().iss.as_deref(), Some("joe"), "{source}");
            assert_eq!(verified.claims().exp, Some(1_300_819_380), "{source}");
            assert_eq!(verified.claims_map()["http://example.com/is_root"], true, "{source}");
        }
        // Claims are parsed only after the signature verified, so `claims_malformed` for a
        // text payload shows that the signature passed.
        Some("text") => {
            let error = result.expect_err("a text payload is not a claims set");
            assert_eq!(error.code().as_str(), "claims_malformed", "{source}: {error}");
        }
        other => panic!("{source}: unknown payload kind {other:?}"),
    }

    if entry["deterministic"] == true {
        let signature = sign_bytes(alg, private, message);
        let expected = token.rsplit_once('.').map(|(_, signature)| signature);
        assert_eq!(Some(b64(signature).as_str()), expected, "{source}: re-signing differs");
    }
}

#[test]
fn hs256_rfc7515_a1() {
    check_vector("hs256_rfc7515_a1");
}

#[test]
fn rs256_rfc7515_a2() {
    check_vector("rs256_rfc7515_a2");
}

#[test]
fn es256_rfc7515_a3() {
    check_vector("es256_rfc7515_a3");
}

#[test]
fn es512_rfc7515_a4() {
    check_vector("es512_rfc7515_a4");
}

#[test]
fn rs256_rfc7520_4_1() {
    check_vector("rs256_rfc7520_4_1");
}

#[test]
fn ps384_rfc7520_4_2() {
    check_vector("ps384_rfc7520_4_2");
}

#[test]
fn es512_rfc7520_4_3() {
    check_vector("es512_rfc7520_4_3");
}

#[test]
fn eddsa_rfc8037_a4() {
    check_vector("eddsa_rfc8037_a4");
}

/// RFC 9864 names the same algorithm `Ed25519`; the RFC 8037 key verifies it too.
#[test]
fn ed25519_rfc8037_a4_under_rfc9864_name() {
    let entry = vector("eddsa_rfc8037_a4");
    let private = &entry["key"];
    let keys = KeySet::from_json(json!({ "keys": [public_of(private)] }).to_string().as_bytes(), KeySetOptions::default())
        .expect("key imports");
    let token = common::sign_raw(Algorithm::Ed25519, private, br#"{"alg":"Ed25519"}"#, b"Example of Ed25519 signing");
    let policy = Policy::from_json(br#"{"algorithms":["Ed25519"]}"#).expect("policy");
    let error = verify_token(&token, &keys, &policy, 1_700_000_000).expect_err("text payload");
    assert_eq!(error.code().as_str(), "claims_malformed", "{error}");
}

/// The RFC 7515 A.1 token expired in 2011, so today it is `token_expired`.
/// `require_expiration: false` does not change that: it only allows tokens without `exp`.
#[test]
fn hs256_rfc7515_a1_expired_today() {
    let entry = vector("hs256_rfc7515_a1");
    let keys = KeySet::from_json(json!({ "keys": [entry["key"]] }).to_string().as_bytes(), KeySetOptions { allow_symmetric: true })
        .expect("key imports");
    let token = entry["token"].as_str().expect("token");
    for document in [json!({"algorithms": ["HS256"]}), json!({"algorithms": ["HS256"], "require_expiration": false})] {
        let policy = Policy::from_json(document.to_string().as_bytes()).expect("policy");
        let error = verify_token(token, &keys, &policy, 1_700_000_000).expect_err("expired in 2011");
        assert_eq!(error.code().as_str(), "token_expired", "{document}: {error}");
    }
}

fn check_thumbprint(name: &str) {
    let entry = thumbprint_vector(name);
    let source = entry["source"].as_str().expect("source");
    let keys = KeySet::from_json(json!({ "keys": [entry["key"]] }).to_string().as_bytes(), KeySetOptions::default())
        .unwrap_or_else(|error| panic!("{source}: {error}"));
    assert_eq!(keys.keys()[0].thumbprint_b64(), entry["thumbprint"].as_str().expect("thumbprint"), "{source}");
}

#[test]
fn thumbprint_rfc7638_3_1() {
    check_thumbprint("thumbprint_rfc7638_3_1");
}

#[test]
fn thumbprint_rfc8037_a3() {
    check_thumbprint("thumbprint_rfc8037_a3");
}

/// The thumbprint covers only the required members, so `kid`, `alg`, `use` and a leading
/// zero byte in `n` do not change it.
#[test]
fn thumbprint_rfc7638_ignores_optional_members() {
    let entry = thumbprint_vector("thumbprint_rfc7638_3_1");
    let mut key = entry["key"].clone();
    let modulus = common::unb64(key["n"].as_str().expect("n"));
    let mut padded = vec![0u8];
    padded.extend_from_slice(&modulus);
    key["n"] = Value::String(b64(padded));
    key["use"] = json!("sig");
    key["kid"] = json!("another-kid");
    let keys = KeySet::from_json(json!({ "keys": [key] }).to_string().as_bytes(), KeySetOptions::default()).expect("imports");
    assert_eq!(keys.keys()[0].thumbprint_b64(), entry["thumbprint"].as_str().expect("thumbprint"));
}
