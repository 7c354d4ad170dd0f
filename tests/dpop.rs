//! DPoP proof checks (RFC 9449 §4.3) and token binding (§6.1): every rule has a case
//! that must fail.

use base64ct::{Base64UrlUnpadded, Encoding};
use ed25519_dalek::Signer as _;
use portcullis::dpop::{check_binding, is_bound, verify_proof, DpopPolicy, ProofRequest};
use portcullis::ErrorCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const NOW: u64 = 1_700_000_000;
const URL: &str = "https://api.example.com/orders?page=2";
const ACCESS_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

fn p256_key() -> p256::ecdsa::SigningKey {
    p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap()
}

fn p256_jwk(key: &p256::ecdsa::SigningKey) -> Value {
    let point = key.verifying_key().to_encoded_point(false);
    json!({ "kty": "EC", "crv": "P-256", "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()) })
}

fn ath(token: &str) -> String {
    b64(&Sha256::digest(token.as_bytes()))
}

fn claims() -> Value {
    json!({ "jti": "proof-1", "htm": "GET", "htu": "https://api.example.com/orders", "iat": NOW, "ath": ath(ACCESS_TOKEN) })
}

fn sign_es256(header: &Value, claims: &Value, key: &p256::ecdsa::SigningKey) -> String {
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let signature: p256::ecdsa::Signature = key.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

fn proof_with(header_edit: impl Fn(&mut Value), claims_edit: impl Fn(&mut Value)) -> String {
    let key = p256_key();
    let mut header = json!({ "typ": "dpop+jwt", "alg": "ES256", "jwk": p256_jwk(&key) });
    header_edit(&mut header);
    let mut body = claims();
    claims_edit(&mut body);
    sign_es256(&header, &body, &key)
}

fn request<'a>() -> ProofRequest<'a> {
    ProofRequest { method: "GET", url: URL, access_token: Some(ACCESS_TOKEN), nonces: &[] }
}

fn check(proof: &str, request: &ProofRequest<'_>, policy: &DpopPolicy) -> Result<String, (ErrorCode, String)> {
    verify_proof(proof, request, policy, NOW).map(|verified| verified.jkt).map_err(|error| (error.code(), error.to_string()))
}

fn expect_invalid(proof: &str, request: &ProofRequest<'_>, fragment: &str) {
    match check(proof, request, &DpopPolicy::default()) {
        Err((ErrorCode::DpopProofInvalid, message)) => assert!(message.contains(fragment), "{message} lacks {fragment:?}"),
        other => panic!("expected dpop_proof_invalid with {fragment:?}, got {other:?}"),
    }
}

#[test]
fn valid_proof_returns_thumbprint() {
    let jkt = check(&proof_with(|_| {}, |_| {}), &request(), &DpopPolicy::default()).unwrap();
    assert_eq!(jkt.len(), 43);
}

#[test]
fn eddsa_proof_accepted() {
    let key = ed25519_dalek::SigningKey::from_bytes(&[9u8; 32]);
    let header = json!({ "typ": "dpop+jwt", "alg": "EdDSA", "jwk": { "kty": "OKP", "crv": "Ed25519", "x": b64(key.verifying_key().as_bytes()) } });
    let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims().to_string().as_bytes()));
    let proof = format!("{input}.{}", b64(&key.sign(input.as_bytes()).to_bytes()));
    assert!(check(&proof, &request(), &DpopPolicy::default()).is_ok());
}

#[test]
fn header_rules() {
    expect_invalid(&proof_with(|header| header["typ"] = json!("JWT"), |_| {}), &request(), "typ");
    expect_invalid(&proof_with(|header| { header.as_object_mut().unwrap().remove("typ"); }, |_| {}), &request(), "typ");
    expect_invalid(&proof_with(|header| { header.as_object_mut().unwrap().remove("jwk"); }, |_| {}), &request(), "jwk");
    expect_invalid(&proof_with(|header| header["jwk"] = json!("not an object"), |_| {}), &request(), "jwk");
    expect_invalid(&proof_with(|header| header["jwk"]["d"] = json!(b64(&[7u8; 32])), |_| {}), &request(), "private");
    expect_invalid(&proof_with(|header| header["alg"] = json!("HS256"), |_| {}), &request(), "not allowed");
    expect_invalid(&proof_with(|header| header["alg"] = json!("none"), |_| {}), &request(), "not allowed");
    expect_invalid(&proof_with(|header| header["alg"] = json!("ES384"), |_| {}), &request(), "not allowed");
}

#[test]
fn key_from_header_must_sign() {
    // A proof whose header names another key than the one that signed it.
    let other = p256::ecdsa::SigningKey::from_slice(&[8u8; 32]).unwrap();
    let proof = proof_with(|header| header["jwk"] = p256_jwk(&other), |_| {});
    expect_invalid(&proof, &request(), "signature");
    let mut tampered = proof_with(|_| {}, |_| {});
    tampered.push_str("AA");
    assert!(check(&tampered, &request(), &DpopPolicy::default()).is_err());
}

#[test]
fn method_and_url_rules() {
    expect_invalid(&proof_with(|_| {}, |claims| claims["htm"] = json!("POST")), &request(), "htm");
    expect_invalid(&proof_with(|_| {}, |claims| claims["htm"] = json!("get")), &request(), "htm");
    expect_invalid(&proof_with(|_| {}, |claims| claims["htu"] = json!("https://api.example.com/other")), &request(), "htu");
    expect_invalid(&proof_with(|_| {}, |claims| claims["htu"] = json!("https://evil.example.com/orders")), &request(), "htu");
    expect_invalid(&proof_with(|_| {}, |claims| claims["htu"] = json!("http://api.example.com/orders")), &request(), "htu");
    // Normalisation: case, default port, query and fragment do not matter.
    let normalised = proof_with(|_| {}, |claims| claims["htu"] = json!("HTTPS://API.example.com:443/orders#x"));
    assert!(check(&normalised, &request(), &DpopPolicy::default()).is_ok());
}

#[test]
fn claim_presence_and_types() {
    for name in ["jti", "htm", "htu", "iat"] {
        expect_invalid(&proof_with(|_| {}, |claims| { claims.as_object_mut().unwrap().remove(name); }), &request(), name);
    }
    expect_invalid(&proof_with(|_| {}, |claims| claims["jti"] = json!(17)), &request(), "jti");
    expect_invalid(&proof_with(|_| {}, |claims| claims["jti"] = json!("")), &request(), "jti");
    expect_invalid(&proof_with(|_| {}, |claims| claims["iat"] = json!("1700000000")), &request(), "iat");
}

#[test]
fn iat_window() {
    expect_invalid(&proof_with(|_| {}, |claims| claims["iat"] = json!(NOW - 301)), &request(), "iat");
    expect_invalid(&proof_with(|_| {}, |claims| claims["iat"] = json!(NOW + 301)), &request(), "iat");
    assert!(check(&proof_with(|_| {}, |claims| claims["iat"] = json!(NOW - 300)), &request(), &DpopPolicy::default()).is_ok());
}

#[test]
fn access_token_hash() {
    expect_invalid(&proof_with(|_| {}, |claims| { claims.as_object_mut().unwrap().remove("ath"); }), &request(), "ath");
    expect_invalid(&proof_with(|_| {}, |claims| claims["ath"] = json!(ath("another.token.value"))), &request(), "ath");
    // Without an access token (a token request) `ath` is not checked.
    let no_token = ProofRequest { access_token: None, ..request() };
    assert!(check(&proof_with(|_| {}, |claims| { claims.as_object_mut().unwrap().remove("ath"); }), &no_token, &DpopPolicy::default()).is_ok());
}

#[test]
fn nonce_rules() {
    let policy = DpopPolicy { require_nonce: true, ..DpopPolicy::default() };
    let with_nonce = proof_with(|_| {}, |claims| claims["nonce"] = json!("n-2"));
    let current = ["n-2", "n-1"];
    let nonced = ProofRequest { nonces: &current, ..request() };
    assert!(check(&with_nonce, &nonced, &policy).is_ok());
    let missing = proof_with(|_| {}, |_| {});
    assert_eq!(check(&missing, &nonced, &policy).unwrap_err().0, ErrorCode::DpopNonceRequired);
    let stale = proof_with(|_| {}, |claims| claims["nonce"] = json!("n-0"));
    assert_eq!(check(&stale, &nonced, &policy).unwrap_err().0, ErrorCode::DpopNonceRequired);
}

#[test]
fn binding_to_token_key() {
    let proof = verify_proof(&proof_with(|_| {}, |_| {}), &request(), &DpopPolicy::default(), NOW).unwrap();
    let bound = json!({ "cnf": { "jkt": proof.jkt } });
    assert!(is_bound(bound.as_object().unwrap()));
    assert!(check_binding(bound.as_object().unwrap(), &proof).is_ok());
    let other = json!({ "cnf": { "jkt": b64(&[0u8; 32]) } });
    assert_eq!(check_binding(other.as_object().unwrap(), &proof).unwrap_err().code(), ErrorCode::DpopProofInvalid);
    let unbound = json!({ "sub": "x" });
    assert!(!is_bound(unbound.as_object().unwrap()));
    assert!(check_binding(unbound.as_object().unwrap(), &proof).is_err());
}

#[test]
fn oversized_and_garbage_proofs() {
    let huge = "a".repeat(9 * 1024);
    assert!(check(&huge, &request(), &DpopPolicy::default()).is_err());
    for garbage in ["", "a.b.c", "....", "eyJ9.eyJ9.", "\u{0}"] {
        assert!(check(garbage, &request(), &DpopPolicy::default()).is_err(), "{garbage:?}");
    }
}
