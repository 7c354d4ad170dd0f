//! Shared fixtures for the integration tests: the committed keys of `tests/vectors/keys.json`,
//! signing for every algorithm, the default policy `P0` and token builders.
//!
//! Signing goes through `jwt_compact::Algorithm::sign` (and this crate's ES384/ES512), the
//! same trait the verifier uses, so a token signed here differs from a real issuer's only
//! in the keys.

#![allow(dead_code)]

use std::sync::OnceLock;

use base64ct::{Base64UrlUnpadded, Encoding};
use jwt_compact::AlgorithmSignature as _;
use portcullis::alg::Algorithm;
use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::policy::Policy;
use portcullis::verify::{verify_token, VerifiedToken};
use portcullis::VerifyError;
use serde_json::{json, Value};

/// The injected clock of the default policy: 2023-11-14T22:13:20Z.
pub const NOW: u64 = 1_700_000_000;
/// The issuer of `P0`.
pub const ISSUER: &str = "https://idp.example.com/";
/// The audience of `P0`.
pub const AUDIENCE: &str = "api://example-api";

const KEYS_JSON: &str = include_str!("../vectors/keys.json");
const RFC_JSON: &str = include_str!("../vectors/rfc.json");

/// Returns the parsed `keys.json`.
pub fn fixtures() -> &'static Value {
    static FIXTURES: OnceLock<Value> = OnceLock::new();
    FIXTURES.get_or_init(|| serde_json::from_str(KEYS_JSON).expect("keys.json is valid JSON"))
}

/// Returns the parsed `rfc.json`.
pub fn rfc_vectors() -> &'static Value {
    static VECTORS: OnceLock<Value> = OnceLock::new();
    VECTORS.get_or_init(|| serde_json::from_str(RFC_JSON).expect("rfc.json is valid JSON"))
}

/// Returns the private JWK of a fixture key, e.g. `K_RSA_A`, with its `kid`.
pub fn private_jwk(name: &str) -> Value {
    fixtures()["keys"][name]["jwk"].clone()
}

/// Members that make a JWK private (RFC 7518 §6.2.2 for EC keys, §6.3.2 for RSA keys).
pub const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// Returns `jwk` without its private members. `oct` keys keep `k`, because their secret is the key.
pub fn public_of(jwk: &Value) -> Value {
    let mut public = jwk.clone();
    if let Some(members) = public.as_object_mut() {
        for name in PRIVATE_MEMBERS {
            members.remove(name);
        }
    }
    public
}

/// Returns the public JWK of a fixture key.
pub fn public_jwk(name: &str) -> Value {
    public_of(&private_jwk(name))
}

/// Returns `jwk` with members added or replaced. A `null` value removes the member.
pub fn with(jwk: &Value, changes: &Value) -> Value {
    let mut merged = jwk.clone();
    let target = merged.as_object_mut().expect("a JSON object");
    for (name, value) in changes.as_object().expect("changes are a JSON object") {
        if value.is_null() {
            target.remove(name);
        } else {
            target.insert(name.clone(), value.clone());
        }
    }
    merged
}

/// Returns a JWKS document with `keys`.
pub fn jwks_json(keys: &[Value]) -> String {
    json!({ "keys": keys }).to_string()
}

/// Parses a key set as fetched from the network (`oct` keys are skipped).
pub fn key_set(keys: &[Value]) -> KeySet {
    KeySet::from_json(jwks_json(keys).as_bytes(), KeySetOptions::default()).expect("key set parses")
}

/// Parses a key set from local configuration (`oct` keys allowed).
pub fn local_key_set(keys: &[Value]) -> KeySet {
    KeySet::from_json(jwks_json(keys).as_bytes(), KeySetOptions { allow_symmetric: true })
        .expect("key set parses")
}

/// Returns the entries of `JWKS_A`: `K_RSA_A` (use sig, alg RS256) and `K_EC_A` (use sig, alg ES256).
pub fn jwks_a_keys() -> Vec<Value> {
    vec![
        with(&public_jwk("K_RSA_A"), &json!({"use": "sig", "alg": "RS256"})),
        with(&public_jwk("K_EC_A"), &json!({"use": "sig", "alg": "ES256"})),
    ]
}

/// Parses `JWKS_A`.
pub fn jwks_a() -> KeySet {
    key_set(&jwks_a_keys())
}

/// Returns the policy document `P0`.
pub fn p0_json() -> Value {
    json!({
        "issuer": ISSUER,
        "audiences": [AUDIENCE],
        "algorithms": ["RS256", "ES256"],
        "clock_skew_seconds": 60,
        "max_token_bytes": 16384
    })
}

/// Compiles a policy document.
pub fn policy(document: &Value) -> Policy {
    Policy::from_json(document.to_string().as_bytes()).expect("policy compiles")
}

/// Compiles `P0`.
pub fn p0() -> Policy {
    policy(&p0_json())
}

/// Compiles `P0` with top-level fields added or replaced (`null` removes a field).
pub fn p0_with(changes: &Value) -> Policy {
    policy(&with(&p0_json(), changes))
}

/// Returns the claims that the real-world cases call valid.
pub fn valid_claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-123",
        "iat": 1_700_000_000,
        "exp": 1_700_003_600
    })
}

/// Returns the valid claims with members added or replaced (`null` removes a member).
pub fn claims_with(changes: &Value) -> Value {
    with(&valid_claims(), changes)
}

/// Encodes as unpadded base64url.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    Base64UrlUnpadded::encode_string(bytes.as_ref())
}

/// Decodes unpadded base64url.
pub fn unb64(text: &str) -> Vec<u8> {
    Base64UrlUnpadded::decode_vec(text).expect("canonical base64url")
}

fn member_bytes(jwk: &Value, name: &str) -> Vec<u8> {
    let text = jwk[name].as_str().unwrap_or_else(|| panic!("JWK member `{name}` is missing"));
    unb64(text)
}

fn rsa_private(jwk: &Value) -> rsa::RsaPrivateKey {
    let number = |name| rsa::BigUint::from_bytes_be(&member_bytes(jwk, name));
    rsa::RsaPrivateKey::from_components(number("n"), number("e"), number("d"), vec![number("p"), number("q")])
        .expect("RSA private key is consistent")
}

fn sign_with<A: jwt_compact::Algorithm>(alg: &A, key: &A::SigningKey, message: &[u8]) -> Vec<u8> {
    alg.sign(key, message).as_bytes().into_owned()
}

/// Signs `message` under `alg` with a private JWK.
pub fn sign_bytes(alg: Algorithm, jwk: &Value, message: &[u8]) -> Vec<u8> {
    use jwt_compact::alg as jc;
    use portcullis::alg::ecdsa::{Es384, Es512};
    match alg {
        Algorithm::HS256 => sign_with(&jc::Hs256, &jc::Hs256Key::new(member_bytes(jwk, "k")), message),
        Algorithm::HS384 => sign_with(&jc::Hs384, &jc::Hs384Key::new(member_bytes(jwk, "k")), message),
        Algorithm::HS512 => sign_with(&jc::Hs512, &jc::Hs512Key::new(member_bytes(jwk, "k")), message),
        Algorithm::RS256 => sign_with(&jc::Rsa::rs256(), &rsa_private(jwk), message),
        Algorithm::RS384 => sign_with(&jc::Rsa::rs384(), &rsa_private(jwk), message),
        Algorithm::RS512 => sign_with(&jc::Rsa::rs512(), &rsa_private(jwk), message),
        Algorithm::PS256 => sign_with(&jc::Rsa::ps256(), &rsa_private(jwk), message),
        Algorithm::PS384 => sign_with(&jc::Rsa::ps384(), &rsa_private(jwk), message),
        Algorithm::PS512 => sign_with(&jc::Rsa::ps512(), &rsa_private(jwk), message),
        Algorithm::ES256 => {
            let key = p256::ecdsa::SigningKey::from_slice(&member_bytes(jwk, "d")).expect("P-256 scalar");
            sign_with(&jc::Es256, &key, message)
        }
        Algorithm::ES384 => {
            let key = p384::ecdsa::SigningKey::from_slice(&member_bytes(jwk, "d")).expect("P-384 scalar");
            sign_with(&Es384, &key, message)
        }
        Algorithm::ES512 => {
            let key = p521::ecdsa::SigningKey::from_slice(&member_bytes(jwk, "d")).expect("P-521 scalar");
            sign_with(&Es512, &key, message)
        }
        #[cfg(feature = "es256k")]
        Algorithm::ES256K => {
            let key = k256::ecdsa::SigningKey::from_slice(&member_bytes(jwk, "d")).expect("secp256k1 scalar");
            sign_with(&jc::Es256k::<sha2::Sha256>::default(), &key, message)
        }
        Algorithm::EdDSA | Algorithm::Ed25519 => {
            let seed: [u8; 32] = member_bytes(jwk, "d").try_into().expect("Ed25519 seed of 32 bytes");
            sign_with(&jc::Ed25519, &ed25519_dalek::SigningKey::from_bytes(&seed), message)
        }
        #[cfg(not(feature = "es256k"))]
        Algorithm::ES256K => panic!("signing ES256K needs the `es256k` feature"),
    }
}

/// Builds a compact JWS from raw header and payload bytes.
pub fn sign_raw(alg: Algorithm, jwk: &Value, header: &[u8], payload: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let signature = sign_bytes(alg, jwk, signing_input.as_bytes());
    format!("{signing_input}.{}", b64(signature))
}

/// Builds a compact JWS from a header and claims given as JSON values.
pub fn sign_json(alg: Algorithm, jwk: &Value, header: &Value, claims: &Value) -> String {
    sign_raw(alg, jwk, header.to_string().as_bytes(), claims.to_string().as_bytes())
}

/// Signs `claims` with a fixture key under `alg`; the header is `{"alg", "kid"}` with the
/// key's `kid`.
pub fn token(key_name: &str, alg: Algorithm, claims: &Value) -> String {
    let jwk = private_jwk(key_name);
    let header = json!({"alg": alg.name(), "kid": jwk["kid"]});
    sign_json(alg, &jwk, &header, claims)
}

/// An RS256 token from `K_RSA_A` with `claims`.
pub fn rs256(claims: &Value) -> String {
    token("K_RSA_A", Algorithm::RS256, claims)
}

/// An ES256 token from `K_EC_A` with `claims`.
pub fn es256(claims: &Value) -> String {
    token("K_EC_A", Algorithm::ES256, claims)
}

/// Replaces the signature segment of a token.
pub fn with_signature(token: &str, signature_b64: &str) -> String {
    let (signing_input, _) = token.rsplit_once('.').expect("three segments");
    format!("{signing_input}.{signature_b64}")
}

/// Verifies at [`NOW`].
pub fn verify(token: &str, keys: &KeySet, policy: &Policy) -> Result<VerifiedToken, VerifyError> {
    verify_token(token, keys, policy, NOW)
}

/// Asserts that `result` failed with the error code `expected`, naming `case` on failure.
#[track_caller]
pub fn assert_code(result: &Result<VerifiedToken, VerifyError>, expected: &str, case: &str) {
    match result {
        Ok(verified) => panic!("{case}: expected {expected}, but the token verified: {:?}", verified.claims_map()),
        Err(error) => assert_eq!(error.code().as_str(), expected, "{case}: {error}"),
    }
}

/// Asserts that `result` verified, naming `case` on failure.
#[track_caller]
pub fn assert_accepted(result: &Result<VerifiedToken, VerifyError>, case: &str) {
    if let Err(error) = result {
        panic!("{case}: expected the token to verify, got {}: {error}", error.code());
    }
}
