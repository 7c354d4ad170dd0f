//! Property tests: no input makes the core panic, every error carries a stable code, and a
//! changed token never verifies.
//!
//! Inputs are arbitrary byte strings and generated JSON trees. Member names are drawn
//! partly from the names the core acts on (`alg`, `exp`, `kty`, policy fields), so that
//! generated values reach the typed code paths instead of being ignored as unknown members.
//! A panic fails the test like a failed assertion.

mod common;

use common::{b64, local_key_set, private_jwk, public_jwk, sign_json, sign_raw, NOW};
use portcullis::alg::Algorithm;
use portcullis::error::ErrorCode;
use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::policy::Policy;
use portcullis::token::{inspect_token, parse_token, MAX_TOKEN_BYTES_LIMIT};
use portcullis::verify::verify_token;
use portcullis::VerifyError;
use proptest::prelude::*;
use serde_json::{json, Map, Number, Value};

/// Names the core reads in headers, claims, JWKs and policies.
const NAMES: &[&str] = &[
    "alg", "kid", "typ", "cty", "crit", "b64", "jwk", "jku", "x5c", "x5t", "iss", "sub", "aud", "exp", "nbf", "iat", "jti",
    "client_id", "azp", "scope", "scp", "roles", "groups", "realm_access", "token_use", "tid", "keys", "kty", "crv", "use",
    "key_ops", "n", "e", "x", "y", "k", "d", "issuer", "audiences", "algorithms", "clock_skew_seconds", "require_expiration",
    "max_lifetime", "max_token_age", "token_type", "token_type_claim", "profile", "subjects", "client_ids", "required_claims",
    "scopes", "max_token_bytes", "tenants", "tenant_claim", "claim", "value", "equals", "one_of", "all_of", "any_of",
    "preset", "local_jwks", "remote_jwks", "http_uri", "uri", "from_headers", "claim_to_headers",
];

/// Strings that mean something somewhere in the core.
const STRINGS: &[&str] = &[
    "", "RS256", "ES256", "HS256", "EdDSA", "Ed25519", "ES512", "none", "RSA", "EC", "OKP", "oct", "P-256", "P-521", "Ed25519",
    "secp256k1", "sig", "enc", "verify", "at+jwt", "application/at+jwt", "rsa-a", "ec-a", "hs-1", "https://idp.example.com/",
    "api://example-api", "https://login.example.com/{tenant}/v2.0", "rfc9068", "600s", "1.5h", "keycloak_client:x", "AQAB",
    "AA", "____", "access", "read write",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![4 => proptest::sample::select(NAMES).prop_map(String::from), 1 => ".{0,12}"]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite numbers only", |float| Number::from_f64(float).map(Value::Number)),
        proptest::sample::select(&[0i64, 1, -1, 1_699_999_940, 1_700_000_000, 1_700_003_600, 253_402_300_799, 253_402_300_800][..])
            .prop_map(Value::from),
        proptest::sample::select(STRINGS).prop_map(|text| Value::String(text.into())),
        ".{0,24}".prop_map(Value::String),
        proptest::collection::vec(any::<u8>(), 0..80).prop_map(|bytes| Value::String(b64(bytes))),
    ]
}

fn json_tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((name(), inner), 0..8).prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    proptest::collection::vec((name(), json_tree()), 0..10).prop_map(|pairs| Value::Object(pairs.into_iter().collect()))
}

/// Compiles a policy that switches on most checks, so that generated claims reach each of them.
fn busy_policy() -> Policy {
    common::policy(&json!({
        "issuer": ["https://idp.example.com/", "https://login.example.com/{tenant}/v2.0"],
        "tenant_claim": "tid",
        "audiences": ["api://example-api"],
        "algorithms": ["HS256", "RS256", "ES256"],
        "max_lifetime": "1h",
        "max_token_age": "2h",
        "token_type_claim": {"claim": "token_use", "value": "access"},
        "subjects": [{"prefix": "user-"}],
        "client_ids": ["web"],
        "required_claims": [{"claim": "realm_access.roles", "one_of": [["a"], "b"]}],
        "scopes": {"any_of": ["read", "write"]},
        "roles": {"claim": "roles", "all_of": ["reader"]}
    }))
}

fn all_keys() -> KeySet {
    local_key_set(&[public_jwk("K_HS"), public_jwk("K_RSA_A"), public_jwk("K_EC_A"), public_jwk("K_ED25519")])
}

/// Asserts the contract of an error: a known code whose string form round-trips.
fn check_error(error: &VerifyError) {
    let code = error.code();
    assert!(ErrorCode::ALL.contains(&code), "{code:?}");
    assert_eq!(ErrorCode::from_str_code(code.as_str()), Some(code));
    assert!(!error.to_string().is_empty());
}

fn verify_everywhere(token: &str) {
    for policy in [common::p0(), busy_policy(), common::p0_with(&json!({"max_token_bytes": MAX_TOKEN_BYTES_LIMIT}))] {
        for keys in [common::jwks_a(), all_keys()] {
            for now in [0, NOW, u64::MAX] {
                if let Err(error) = verify_token(token, &keys, &policy, now) {
                    check_error(&error);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// No byte string as a token makes the core panic.
    #[test]
    fn any_bytes_as_token(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_token(&text, MAX_TOKEN_BYTES_LIMIT);
        let _ = inspect_token(&text, MAX_TOKEN_BYTES_LIMIT);
        verify_everywhere(&text);
    }

    /// Strings shaped like tokens: three segments of base64url-ish text.
    #[test]
    fn token_shaped_strings(segments in proptest::collection::vec("[A-Za-z0-9_=+/.-]{0,60}", 1..5)) {
        verify_everywhere(&segments.join("."));
    }

    /// No JSON value as the header makes the core panic. Headers are signed with K_HS, so
    /// one with `alg: HS256` and a fitting `kid` goes on to the signature check.
    #[test]
    fn any_json_as_header(header in json_tree(), with_alg in any::<bool>()) {
        let mut header = header;
        if let (Value::Object(members), true) = (&mut header, with_alg) {
            members.insert("alg".into(), json!("HS256"));
        }
        let token = sign_raw(Algorithm::HS256, &private_jwk("K_HS"), header.to_string().as_bytes(), common::valid_claims().to_string().as_bytes());
        verify_everywhere(&token);
    }

    /// No JSON value as the claims makes the core panic. The claims are validly signed, so
    /// they get past the signature check and through every claim check.
    #[test]
    fn any_json_as_claims(claims in json_tree(), base in any::<bool>()) {
        let claims = match (claims, base) {
            (Value::Object(generated), true) => {
                let mut merged = common::valid_claims();
                for (name, value) in generated {
                    merged[name] = value;
                }
                merged
            }
            (other, _) => other,
        };
        let token = sign_json(Algorithm::HS256, &private_jwk("K_HS"), &json!({"alg": "HS256", "kid": "hs-1"}), &claims);
        verify_everywhere(&token);
    }

    /// No byte string as a JWKS document makes the core panic.
    #[test]
    fn any_bytes_as_jwks(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        for options in [KeySetOptions::default(), KeySetOptions { allow_symmetric: true }] {
            if let Err(error) = KeySet::from_json(&bytes, options) {
                assert_eq!(error.code(), ErrorCode::JwksInvalid);
                assert!(!error.to_string().is_empty());
            }
        }
    }

    /// Generated key sets: JWKs with real key types and random members. Whatever loads is
    /// then used to verify tokens of several algorithms.
    #[test]
    fn any_json_as_jwks(entries in proptest::collection::vec(json_jwk(), 0..6), extra in json_object()) {
        let mut document = extra;
        document["keys"] = Value::Array(entries);
        let text = document.to_string();
        for options in [KeySetOptions::default(), KeySetOptions { allow_symmetric: true }] {
            if let Ok(keys) = KeySet::from_json(text.as_bytes(), options) {
                for token in sample_tokens() {
                    for policy in [common::p0(), busy_policy()] {
                        if let Err(error) = verify_token(token, &keys, &policy, NOW) {
                            check_error(&error);
                        }
                    }
                }
            }
        }
    }

    /// No JSON value as a policy document makes the core panic; whatever compiles is then
    /// used to verify tokens.
    #[test]
    fn any_json_as_policy(document in json_object(), algorithms in proptest::collection::vec(proptest::sample::select(STRINGS), 0..4)) {
        for candidate in [document.clone(), with_algorithms(&document, &algorithms)] {
            let text = candidate.to_string();
            match Policy::from_json(text.as_bytes()) {
                Ok(policy) => {
                    for token in sample_tokens() {
                        if let Err(error) = verify_token(token, &all_keys(), &policy, NOW) {
                            check_error(&error);
                        }
                    }
                }
                Err(error) => {
                    assert_eq!(error.code(), ErrorCode::ConfigInvalid);
                    assert!(!error.to_string().is_empty());
                }
            }
        }
    }

    /// No byte string as a policy document makes the core panic.
    #[test]
    fn any_bytes_as_policy(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Policy::from_json(&bytes);
    }

    /// A valid token with any change, of any kind, never verifies.
    #[test]
    fn mutated_tokens_never_verify(which in 0usize..3, edits in proptest::collection::vec(edit(), 1..4)) {
        let (token, keys, policy) = &valid_tokens()[which];
        let mut mutated = token.clone().into_bytes();
        for (kind, position, byte) in edits {
            let length = mutated.len();
            let index = position.index(length.max(1));
            match kind {
                0 if length > 0 => mutated[index.min(length - 1)] = byte,
                1 => mutated.insert(index.min(length), byte),
                2 if length > 0 => {
                    mutated.remove(index.min(length - 1));
                }
                _ => mutated.truncate(index.min(length)),
            }
        }
        let mutated = String::from_utf8_lossy(&mutated).into_owned();
        let result = verify_token(&mutated, keys, policy, NOW);
        if mutated == *token {
            prop_assert!(result.is_ok());
        } else {
            match result {
                Ok(_) => prop_assert!(false, "a changed token verified: {mutated}"),
                Err(error) => check_error(&error),
            }
        }
    }
}

/// Every code's string form parses back to the code, and the strings are distinct.
#[test]
fn error_codes_round_trip() {
    let mut seen = std::collections::BTreeSet::new();
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_str_code(code.as_str()), Some(*code));
        assert_eq!(code.to_string(), code.as_str());
        assert!(code.as_str().bytes().all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_'), "{code}");
        assert!(seen.insert(code.as_str()), "duplicate code string {code}");
        let status = code.http_status();
        assert!([400, 401, 403, 500].contains(&status), "{code}: {status}");
    }
    assert_eq!(ErrorCode::from_str_code("no_such_code"), None);
    assert_eq!(ErrorCode::from_str_code("TOKEN_EXPIRED"), None);
}

fn edit() -> impl Strategy<Value = (u8, proptest::sample::Index, u8)> {
    let byte = prop_oneof![
        proptest::sample::select(&b"AaZz09-_.=+/ \n\0"[..]),
        any::<u8>(),
    ];
    (0u8..4, any::<proptest::sample::Index>(), byte)
}

fn json_jwk() -> impl Strategy<Value = Value> {
    let material = proptest::collection::vec(any::<u8>(), 0..70).prop_map(b64);
    (
        proptest::sample::select(&["RSA", "EC", "OKP", "oct", "AKP", ""][..]),
        proptest::sample::select(&["P-256", "P-384", "P-521", "secp256k1", "Ed25519", "X25519", ""][..]),
        proptest::collection::vec((proptest::sample::select(&["n", "e", "x", "y", "k", "d"][..]), material), 0..5),
        json_object(),
    )
        .prop_map(|(kty, crv, members, extra)| {
            let mut jwk = extra;
            jwk["kty"] = json!(kty);
            jwk["crv"] = json!(crv);
            for (name, value) in members {
                jwk[name] = json!(value);
            }
            jwk
        })
}

fn with_algorithms(document: &Value, algorithms: &[&str]) -> Value {
    let mut document = document.clone();
    document["algorithms"] = json!(algorithms);
    document
}

/// Tokens of several algorithms and kinds, for key sets and policies under test.
fn sample_tokens() -> &'static [String] {
    static TOKENS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TOKENS.get_or_init(|| {
        let claims = common::valid_claims();
        vec![
            sign_json(Algorithm::HS256, &private_jwk("K_HS"), &json!({"alg": "HS256", "kid": "hs-1"}), &claims),
            sign_json(Algorithm::HS256, &private_jwk("K_HS"), &json!({"alg": "HS256"}), &claims),
            common::rs256(&claims),
            common::es256(&claims),
            sign_json(Algorithm::EdDSA, &private_jwk("K_ED25519"), &json!({"alg": "EdDSA"}), &claims),
        ]
    })
}

/// Valid tokens with the key set and policy that accept them.
fn valid_tokens() -> &'static [(String, KeySet, Policy)] {
    static TOKENS: std::sync::OnceLock<Vec<(String, KeySet, Policy)>> = std::sync::OnceLock::new();
    TOKENS.get_or_init(|| {
        let claims = common::valid_claims();
        let hs = sign_json(Algorithm::HS256, &private_jwk("K_HS"), &json!({"alg": "HS256", "kid": "hs-1"}), &claims);
        let hs_policy = common::p0_with(&json!({"algorithms": ["HS256"]}));
        let tokens = vec![
            (hs, local_key_set(&[public_jwk("K_HS")]), hs_policy),
            (common::es256(&claims), common::jwks_a(), common::p0()),
            (common::rs256(&claims), common::jwks_a(), common::p0()),
        ];
        for (token, keys, policy) in &tokens {
            assert!(verify_token(token, keys, policy, NOW).is_ok(), "fixture token verifies");
        }
        tokens
    })
}
