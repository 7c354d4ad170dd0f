//! Tests of the wasm-bindgen adapter (`portcullis::web`) through its JavaScript values.
//!
//! Run by `js/package/test-wasm.sh` in Node.js and in headless Chromium, which checks that
//! the runner ran every test defined here. Build with `--features web-verify`.
#![cfg(all(target_arch = "wasm32", feature = "web-verify"))]

use base64ct::{Base64UrlUnpadded, Encoding};
use js_sys::{Array, Object, Reflect, JSON};
use portcullis::authorization::ResponseErrorCode;
use portcullis::web;
use portcullis::ErrorCode;
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

const RFC7636_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC7636_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const RFC_VECTORS: &str = include_str!("vectors/rfc.json");
const ERRORS_DECLARATION: &str = include_str!("../js/package/errors.d.ts");

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

fn json(text: &str) -> JsValue {
    JSON::parse(text).unwrap()
}

fn object(text: &str) -> JsValue {
    json(text)
}

fn string(value: &str) -> JsValue {
    JsValue::from_str(value)
}

/// Asserts a `TokenError` with this code and the status of the core's RFC 6750 mapping.
fn assert_token_error(error: &JsValue, code: ErrorCode) {
    assert!(error.is_instance_of::<js_sys::Error>(), "not an Error: {error:?}");
    assert_eq!(get(error, "name").as_string().as_deref(), Some("TokenError"));
    assert_eq!(get(error, "code").as_string().as_deref(), Some(code.as_str()), "{:?}", get(error, "message"));
    assert_eq!(get(error, "status").as_f64(), Some(f64::from(code.http_status())));
    assert!(!get(error, "message").as_string().unwrap_or_default().is_empty());
}

fn assert_response_error(error: &JsValue, code: ResponseErrorCode) {
    assert!(error.is_instance_of::<js_sys::Error>());
    assert_eq!(get(error, "name").as_string().as_deref(), Some("AuthorizationResponseError"));
    assert_eq!(get(error, "code").as_string().as_deref(), Some(code.as_str()), "{:?}", get(error, "message"));
}

fn assert_type_error(error: &JsValue) {
    assert!(error.is_instance_of::<js_sys::TypeError>(), "not a TypeError: {error:?}");
}

fn assert_range_error(error: &JsValue) {
    assert!(error.is_instance_of::<js_sys::RangeError>(), "not a RangeError: {error:?}");
}

/// Builds an unsigned token: the signature segment is one zero byte.
fn token(header: &str, claims: &str) -> String {
    format!(
        "{}.{}.AA",
        Base64UrlUnpadded::encode_string(header.as_bytes()),
        Base64UrlUnpadded::encode_string(claims.as_bytes())
    )
}

/// Reads the string-literal union `name` from errors.d.ts.
fn declared_union(name: &str) -> Vec<String> {
    let start = ERRORS_DECLARATION.find(&format!("export type {name} =")).expect("union declared");
    let rest = &ERRORS_DECLARATION[start..];
    let body = &rest[..rest.find(';').expect("union ends")];
    body.lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix("| '"))
        .map(|line| line.trim_end_matches('\'').to_string())
        .collect()
}

// ----------------------------------------------------------------------------------------
// Error classes

#[wasm_bindgen_test]
fn error_code_union_matches_rust() {
    let rust: Vec<String> = ErrorCode::ALL.iter().map(|code| code.as_str().to_string()).collect();
    assert_eq!(declared_union("ErrorCode"), rust);
}

#[wasm_bindgen_test]
fn response_error_code_union_matches_rust() {
    let rust: Vec<String> = ResponseErrorCode::ALL.iter().map(|code| code.as_str().to_string()).collect();
    assert_eq!(declared_union("AuthorizationResponseErrorCode"), rust);
}

// ----------------------------------------------------------------------------------------
// PKCE

#[wasm_bindgen_test]
fn pkce_rfc7636_appendix_b() {
    assert_eq!(web::pkce_challenge(string(RFC7636_VERIFIER)).unwrap(), RFC7636_CHALLENGE);
    assert!(web::verify_pkce(string(RFC7636_VERIFIER), string(RFC7636_CHALLENGE)).unwrap());
}

#[wasm_bindgen_test]
fn pkce_verifier_length_bounds() {
    for length in [0, 1, 42, 129, 200] {
        let error = web::pkce_challenge(string(&"a".repeat(length))).unwrap_err();
        assert_token_error(&error, ErrorCode::PkceInvalid);
    }
    for length in [43, 64, 128] {
        assert!(web::pkce_challenge(string(&"a".repeat(length))).is_ok(), "{length}");
    }
}

#[wasm_bindgen_test]
fn pkce_verifier_charset() {
    let base = "a".repeat(42);
    for bad in ["+", "/", "=", " ", "%", "é"] {
        let error = web::pkce_challenge(string(&format!("{base}{bad}"))).unwrap_err();
        assert_token_error(&error, ErrorCode::PkceInvalid);
        assert!(!web::verify_pkce(string(&format!("{base}{bad}")), string(RFC7636_CHALLENGE)).unwrap());
    }
    assert!(web::pkce_challenge(string(&format!("{}-._~", "a".repeat(40)))).is_ok());
}

#[wasm_bindgen_test]
fn pkce_wrong_encodings_never_verify() {
    for challenge in [
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM=",
        "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3",
        "MTNkMzFlOTYxYTFhZDhlYzJmMTZiMTBjNGM5ODJlMDg3NmE4NzhhZDZkZjE0NDU2NmVlMTg5NGFjYjcwZjljMw",
        "38v3YOi6zQgk1xkqk6Y5dvSDoBHqZrTh3mmWHxxWvyk",
        RFC7636_VERIFIER,
        "",
    ] {
        assert!(!web::verify_pkce(string(RFC7636_VERIFIER), string(challenge)).unwrap(), "{challenge}");
    }
}

#[wasm_bindgen_test]
fn pkce_argument_types() {
    assert_type_error(&web::pkce_challenge(JsValue::UNDEFINED).unwrap_err());
    assert_type_error(&web::verify_pkce(JsValue::from_f64(1.0), string(RFC7636_CHALLENGE)).unwrap_err());
    assert_type_error(&web::verify_pkce(string(RFC7636_VERIFIER), JsValue::NULL).unwrap_err());
}

#[wasm_bindgen_test]
fn create_pkce_default_length() {
    let pkce = web::create_pkce(JsValue::UNDEFINED).unwrap();
    let verifier = get(&pkce, "codeVerifier").as_string().unwrap();
    let challenge = get(&pkce, "codeChallenge").as_string().unwrap();
    assert_eq!(verifier.len(), 43);
    assert_eq!(get(&pkce, "codeChallengeMethod").as_string().as_deref(), Some("S256"));
    assert_eq!(web::pkce_challenge(string(&verifier)).unwrap(), challenge);
    assert!(web::verify_pkce(string(&verifier), string(&challenge)).unwrap());
}

#[wasm_bindgen_test]
fn create_pkce_every_allowed_length() {
    for length in 43..=128 {
        let options = object(&format!(r#"{{"verifierLength":{length}}}"#));
        let pkce = web::create_pkce(options).unwrap();
        let verifier = get(&pkce, "codeVerifier").as_string().unwrap();
        assert_eq!(verifier.len(), length);
        assert!(verifier.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'), "{verifier}");
        assert!(web::verify_pkce(string(&verifier), get(&pkce, "codeChallenge")).unwrap());
    }
}

#[wasm_bindgen_test]
fn create_pkce_rejects_other_lengths() {
    for length in ["0", "32", "42", "129", "134", "171", "1e9"] {
        let error = web::create_pkce(object(&format!(r#"{{"verifierLength":{length}}}"#))).unwrap_err();
        assert_token_error(&error, ErrorCode::PkceInvalid);
    }
    assert_range_error(&web::create_pkce(object(r#"{"verifierLength":-1}"#)).unwrap_err());
    assert_range_error(&web::create_pkce(object(r#"{"verifierLength":43.5}"#)).unwrap_err());
    assert_type_error(&web::create_pkce(object(r#"{"verifierLength":"43"}"#)).unwrap_err());
    assert_type_error(&web::create_pkce(string("43")).unwrap_err());
}

#[wasm_bindgen_test]
fn create_pkce_values_differ() {
    let first = get(&web::create_pkce(JsValue::UNDEFINED).unwrap(), "codeVerifier");
    let second = get(&web::create_pkce(JsValue::UNDEFINED).unwrap(), "codeVerifier");
    assert_ne!(first.as_string(), second.as_string());
}

#[wasm_bindgen_test]
fn random_state_and_nonce_form() {
    let mut seen = Vec::new();
    for value in [web::random_state(), web::random_state(), web::random_nonce(), web::random_nonce()] {
        let value = value.unwrap();
        assert_eq!(value.len(), 43);
        assert_eq!(Base64UrlUnpadded::decode_vec(&value).unwrap().len(), 32);
        assert!(!seen.contains(&value));
        seen.push(value);
    }
}

// ----------------------------------------------------------------------------------------
// Authorization requests and responses

fn request_options(extra: &str) -> JsValue {
    object(&format!(
        r#"{{"authorizationEndpoint":"https://idp.example.com/authorize","clientId":"demo",
            "redirectUri":"https://app.example.com/callback","scope":"openid api:read",
            "state":"xyz","codeChallenge":"{RFC7636_CHALLENGE}"{extra}}}"#
    ))
}

#[wasm_bindgen_test]
fn build_url_parameters() {
    let url = web::build_authorization_url(request_options(
        r#","resource":["https://api.example.com"],"extraParams":{"prompt":"login","nonce":"n 1"}"#,
    ))
    .unwrap();
    assert_eq!(
        url,
        format!(
            "https://idp.example.com/authorize?response_type=code&client_id=demo\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcallback&scope=openid%20api%3Aread&state=xyz\
             &code_challenge={RFC7636_CHALLENGE}&code_challenge_method=S256\
             &resource=https%3A%2F%2Fapi.example.com&prompt=login&nonce=n%201"
        )
    );
}

#[wasm_bindgen_test]
fn build_url_scope_array() {
    let mut options = request_options("");
    Reflect::set(&options, &string("scope"), &Array::of2(&string("openid"), &string("api:read"))).unwrap();
    let url = web::build_authorization_url(options.clone()).unwrap();
    assert!(url.contains("&scope=openid%20api%3Aread&"), "{url}");
    Reflect::set(&options, &string("scope"), &Array::of1(&string("two words"))).unwrap();
    assert_type_error(&web::build_authorization_url(options.clone()).unwrap_err());
    options = request_options("");
    Reflect::set(&options, &string("scope"), &JsValue::from_f64(1.0)).unwrap();
    assert_type_error(&web::build_authorization_url(options).unwrap_err());
}

#[wasm_bindgen_test]
fn build_url_never_plain() {
    for extra in [
        r#","extraParams":{"code_challenge_method":"plain"}"#,
        r#","extraParams":{"response_type":"token"}"#,
        r#","extraParams":{"code_verifier":"secret"}"#,
        r#","extraParams":{"state":"other"}"#,
    ] {
        assert_type_error(&web::build_authorization_url(request_options(extra)).unwrap_err());
    }
    let error = web::build_authorization_url(object(&format!(
        r#"{{"authorizationEndpoint":"https://idp.example.com/authorize?code_challenge_method=plain","clientId":"demo",
            "redirectUri":"https://app.example.com/cb","scope":"","state":"xyz","codeChallenge":"{RFC7636_CHALLENGE}"}}"#
    )))
    .unwrap_err();
    assert_type_error(&error);
}

#[wasm_bindgen_test]
fn build_url_rejects_challenge_forms() {
    for challenge in [
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM=",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM=",
        "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3",
        RFC7636_VERIFIER.get(..42).unwrap(),
    ] {
        let options = request_options("");
        Reflect::set(&options, &string("codeChallenge"), &string(challenge)).unwrap();
        assert_type_error(&web::build_authorization_url(options).unwrap_err());
    }
}

#[wasm_bindgen_test]
fn build_url_argument_types() {
    assert_type_error(&web::build_authorization_url(JsValue::UNDEFINED).unwrap_err());
    assert_type_error(&web::build_authorization_url(object("{}")).unwrap_err());
    let options = request_options(r#","extraParams":{"prompt":1}"#);
    assert_type_error(&web::build_authorization_url(options).unwrap_err());
}

fn expectations(state: &str, issuer: Option<&str>) -> JsValue {
    let options = Object::new();
    Reflect::set(&options, &string("expectedState"), &string(state)).unwrap();
    if let Some(issuer) = issuer {
        Reflect::set(&options, &string("expectedIssuer"), &string(issuer)).unwrap();
    }
    options.into()
}

#[wasm_bindgen_test]
fn parse_response_code() {
    let response = web::parse_authorization_response(
        string("https://app.example.com/cb?code=abc%2Bd&state=xyz&iss=https%3A%2F%2Fidp.example.com"),
        expectations("xyz", Some("https://idp.example.com")),
    )
    .unwrap();
    assert_eq!(get(&response, "code").as_string().as_deref(), Some("abc+d"));
}

#[wasm_bindgen_test]
fn parse_response_state_mismatch() {
    for url in ["https://app/cb?code=abc&state=other", "https://app/cb?code=abc"] {
        let error = web::parse_authorization_response(string(url), expectations("xyz", None)).unwrap_err();
        assert_response_error(&error, ResponseErrorCode::StateMismatch);
    }
}

#[wasm_bindgen_test]
fn parse_response_issuer_rfc9207() {
    for url in [
        "https://app/cb?code=abc&state=xyz&iss=https%3A%2F%2Fevil.example.com",
        "https://app/cb?code=abc&state=xyz",
    ] {
        let error = web::parse_authorization_response(string(url), expectations("xyz", Some("https://idp.example.com")))
            .unwrap_err();
        assert_response_error(&error, ResponseErrorCode::IssuerMismatch);
    }
}

#[wasm_bindgen_test]
fn parse_response_server_error() {
    let error = web::parse_authorization_response(
        string("https://app/cb?error=access_denied&error_description=The+user+said+no&state=xyz"),
        expectations("xyz", None),
    )
    .unwrap_err();
    assert_response_error(&error, ResponseErrorCode::ErrorResponse);
    assert_eq!(get(&error, "error").as_string().as_deref(), Some("access_denied"));
    assert_eq!(get(&error, "errorDescription").as_string().as_deref(), Some("The user said no"));
    assert!(get(&error, "errorUri").is_undefined());
}

#[wasm_bindgen_test]
fn parse_response_malformed() {
    for url in ["https://app/cb?code=a&code=b&state=xyz", "https://app/cb?code=%E0&state=xyz", "https://app/cb?state=xyz"] {
        let error = web::parse_authorization_response(string(url), expectations("xyz", None)).unwrap_err();
        assert_response_error(&error, ResponseErrorCode::ResponseMalformed);
    }
    assert_type_error(&web::parse_authorization_response(string("https://app/cb"), JsValue::UNDEFINED).unwrap_err());
}

// ----------------------------------------------------------------------------------------
// Inspection

#[wasm_bindgen_test]
fn inspect_utf8_claims() {
    let claims = r#"{"sub":"José","name":"名前 🚀","groups":["Ä","ß"],"iss":"https://idp.example.com"}"#;
    let inspected = web::inspect_token(string(&token(r#"{"alg":"RS256","kid":"ключ"}"#, claims))).unwrap();
    let decoded = get(&inspected, "claims");
    assert_eq!(get(&decoded, "sub").as_string().as_deref(), Some("José"));
    assert_eq!(get(&decoded, "name").as_string().as_deref(), Some("名前 🚀"));
    assert_eq!(JSON::stringify(&get(&decoded, "groups")).unwrap(), "[\"Ä\",\"ß\"]");
    assert_eq!(get(&get(&inspected, "header"), "kid").as_string().as_deref(), Some("ключ"));
}

#[wasm_bindgen_test]
fn inspect_dates_follow_numeric_date_rules() {
    let inspected = web::inspect_token(string(&token(
        r#"{"alg":"ES256"}"#,
        r#"{"exp":1700003600.75,"nbf":1700000000.1,"iat":1.6999999995e9}"#,
    )))
    .unwrap();
    assert_eq!(get(&inspected, "expiresAt").as_f64(), Some(1_700_003_600.0));
    assert_eq!(get(&inspected, "notBefore").as_f64(), Some(1_700_000_001.0));
    assert_eq!(get(&inspected, "issuedAt").as_f64(), Some(1_700_000_000.0));
    // The claims object keeps the value as written in the token.
    assert_eq!(get(&get(&inspected, "claims"), "exp").as_f64(), Some(1_700_003_600.75));

    let without = web::inspect_token(string(&token(r#"{"alg":"ES256"}"#, "{}"))).unwrap();
    assert!(get(&without, "expiresAt").is_null());
    assert!(get(&without, "notBefore").is_null());
    assert!(get(&without, "issuedAt").is_null());
}

#[wasm_bindgen_test]
fn inspect_exp_beyond_2_53_rejected() {
    // JSON.parse would show 9007199254740992; the verifier rejects the value as out of range.
    for claims in [r#"{"exp":9007199254740993}"#, r#"{"exp":1e20}"#, r#"{"exp":-1}"#] {
        let error = web::inspect_token(string(&token(r#"{"alg":"ES256"}"#, claims))).unwrap_err();
        assert_token_error(&error, ErrorCode::ClaimsMalformed);
    }
}

#[wasm_bindgen_test]
fn inspect_wrong_claim_types_rejected() {
    for claims in [r#"{"exp":"1700003600"}"#, r#"{"nbf":true}"#, r#"{"aud":5}"#, r#"{"exp":1,"exp":2}"#] {
        let error = web::inspect_token(string(&token(r#"{"alg":"ES256"}"#, claims))).unwrap_err();
        assert_token_error(&error, ErrorCode::ClaimsMalformed);
    }
}

#[wasm_bindgen_test]
fn inspect_scopes_from_scope_and_scp() {
    let inspected =
        web::inspect_token(string(&token(r#"{"alg":"ES256"}"#, r#"{"scope":"a  b","scp":["b","c"]}"#))).unwrap();
    assert_eq!(JSON::stringify(&get(&inspected, "scopes")).unwrap(), r#"["a","b","c"]"#);
}

#[wasm_bindgen_test]
fn inspect_proto_member_is_own_property() {
    let inspected =
        web::inspect_token(string(&token(r#"{"alg":"ES256"}"#, r#"{"__proto__":{"admin":true}}"#))).unwrap();
    let claims: Object = get(&inspected, "claims").unchecked_into();
    assert!(Object::has_own(&claims, &string("__proto__")));
    assert_eq!(JsValue::from(Object::get_prototype_of(&claims)), JsValue::from(Object::get_prototype_of(&Object::new())));
    assert!(get(&claims, "admin").is_undefined());
}

#[wasm_bindgen_test]
fn inspect_malformed_tokens() {
    let cases = [
        ("", ErrorCode::TokenMalformed),
        ("a.b", ErrorCode::TokenMalformed),
        ("a.b.c.d", ErrorCode::TokenMalformed),
        ("e30=.e30.AA", ErrorCode::InvalidBase64),
        ("bm90IGpzb24.e30.AA", ErrorCode::HeaderMalformed),
        ("e30.bm90IGpzb24.AA", ErrorCode::ClaimsMalformed),
    ];
    for (input, code) in cases {
        assert_token_error(&web::inspect_token(string(input)).unwrap_err(), code);
    }
    let huge = "a".repeat(16 * 1024 + 1);
    assert_token_error(&web::inspect_token(string(&huge)).unwrap_err(), ErrorCode::TokenTooLarge);
    assert_type_error(&web::inspect_token(JsValue::from_f64(1.0)).unwrap_err());
}

#[wasm_bindgen_test]
fn expires_in_counts_seconds() {
    let with_exp = string(&token(r#"{"alg":"ES256"}"#, r#"{"exp":1700000600}"#));
    assert_eq!(web::expires_in(with_exp.clone(), JsValue::from_f64(1_700_000_000.0)).unwrap().as_f64(), Some(600.0));
    assert_eq!(web::expires_in(with_exp.clone(), JsValue::from_f64(1_700_000_700.9)).unwrap().as_f64(), Some(-100.0));
    let without = string(&token(r#"{"alg":"ES256"}"#, "{}"));
    assert!(web::expires_in(without, JsValue::from_f64(1.0)).unwrap().is_null());
    assert_range_error(&web::expires_in(with_exp, JsValue::from_f64(f64::NAN)).unwrap_err());
}

#[wasm_bindgen_test]
fn is_expired_boundaries() {
    let with_exp = string(&token(r#"{"alg":"ES256"}"#, r#"{"exp":1700000600}"#));
    let check = |options: &str| web::is_expired(with_exp.clone(), object(options)).unwrap();
    assert!(!check(r#"{"now":1700000599}"#));
    assert!(check(r#"{"now":1700000600}"#), "a token is expired at exp, as the verifier reads it");
    assert!(check(r#"{"now":1700000500,"minValidity":100}"#));
    assert!(!check(r#"{"now":1700000500,"minValidity":99}"#));
    assert!(check(r#"{"now":1700000500,"minValidity":50,"clockSkew":50}"#));
    assert_range_error(&web::is_expired(with_exp.clone(), object(r#"{"minValidity":-1}"#)).unwrap_err());
    let without = string(&token(r#"{"alg":"ES256"}"#, "{}"));
    assert!(!web::is_expired(without, JsValue::UNDEFINED).unwrap());
}

// ----------------------------------------------------------------------------------------
// Verification

fn rfc_vectors() -> Vec<Value> {
    let document: Value = serde_json::from_str(RFC_VECTORS).unwrap();
    document["signatures"].as_array().unwrap().clone()
}

/// Returns the public members of a vector's JWK as a JWKS document.
fn public_jwks(key: &Value) -> String {
    let mut public = key.as_object().unwrap().clone();
    if key["kty"] != "oct" {
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            public.remove(private);
        }
    }
    serde_json::json!({ "keys": [public] }).to_string()
}

#[wasm_bindgen_test]
fn verify_rfc_signature_vectors() {
    for vector in rfc_vectors() {
        let name = vector["name"].as_str().unwrap();
        let alg = vector["alg"].as_str().unwrap();
        let policy = format!(r#"{{"algorithms":["{alg}"]}}"#);
        let result = web::verify_token(
            string(vector["token"].as_str().unwrap()),
            string(&public_jwks(&vector["key"])),
            string(&policy),
            JsValue::from_f64(vector["now"].as_f64().unwrap()),
        );
        match (vector["key"]["kty"].as_str(), vector["payload"].as_str()) {
            // Secrets are never accepted in a key set given to the browser build.
            (Some("oct"), _) => assert_token_error(&result.unwrap_err(), ErrorCode::JwksInvalid),
            (_, Some("claims")) => {
                let verified = result.unwrap_or_else(|error| panic!("{name}: {error:?}"));
                assert_eq!(get(&verified, "algorithm").as_string().as_deref(), Some(alg), "{name}");
                assert_eq!(get(&get(&verified, "claims"), "iss").as_string().as_deref(), Some("joe"), "{name}");
            }
            // A text payload passes the signature check and then fails as claims.
            _ => assert_token_error(&result.unwrap_err(), ErrorCode::ClaimsMalformed),
        }
    }
}

fn es256_vector() -> Value {
    rfc_vectors().into_iter().find(|vector| vector["name"] == "es256_rfc7515_a3").unwrap()
}

#[wasm_bindgen_test]
fn verify_es256_rfc7515_a3_result() {
    let vector = es256_vector();
    let verified = web::verify_token(
        string(vector["token"].as_str().unwrap()),
        json(&public_jwks(&vector["key"])),
        object(r#"{"issuer":"joe","algorithms":["ES256"]}"#),
        JsValue::from_f64(1_300_819_000.0),
    )
    .unwrap();
    assert_eq!(get(&get(&verified, "header"), "alg").as_string().as_deref(), Some("ES256"));
    assert_eq!(get(&get(&verified, "claims"), "exp").as_f64(), Some(1_300_819_380.0));
    assert_eq!(get(&get(&verified, "claims"), "http://example.com/is_root").as_bool(), Some(true));
    assert!(get(&verified, "keyId").is_null());
    assert_eq!(Array::from(&get(&verified, "scopes")).length(), 0);
}

#[wasm_bindgen_test]
fn verify_failures_carry_codes() {
    let vector = es256_vector();
    let token = vector["token"].as_str().unwrap();
    let jwks = public_jwks(&vector["key"]);
    let run = |token: &str, policy: &str, now: f64| {
        web::verify_token(string(token), string(&jwks), string(policy), JsValue::from_f64(now)).unwrap_err()
    };
    let es256 = r#"{"algorithms":["ES256"]}"#;
    assert_token_error(&run(token, es256, 1_300_819_380.0 + 60.0), ErrorCode::TokenExpired);
    assert_token_error(&run(token, r#"{"algorithms":["RS256"]}"#, 1_300_819_000.0), ErrorCode::AlgorithmNotAllowed);
    assert_token_error(&run(token, r#"{"algorithms":["ES256"],"issuer":"mallory"}"#, 1_300_819_000.0), ErrorCode::IssuerInvalid);
    assert_token_error(&run(token, r#"{"algorithms":["ES256"],"audiences":["api"]}"#, 1_300_819_000.0), ErrorCode::ClaimMissing);

    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let (header, _) = signing_input.split_once('.').unwrap();
    let forged_claims = Base64UrlUnpadded::encode_string(br#"{"iss":"joe","exp":1300819380,"admin":true}"#);
    let tampered = format!("{header}.{forged_claims}.{signature}");
    assert_token_error(&run(&tampered, es256, 1_300_819_000.0), ErrorCode::SignatureInvalid);
}

#[wasm_bindgen_test]
fn verify_document_errors() {
    let vector = es256_vector();
    let token = string(vector["token"].as_str().unwrap());
    let jwks = string(&public_jwks(&vector["key"]));
    let now = JsValue::from_f64(1_300_819_000.0);
    let error = web::verify_token(token.clone(), jwks.clone(), string(r#"{"algorithms":["none"]}"#), now.clone()).unwrap_err();
    assert_token_error(&error, ErrorCode::ConfigInvalid);
    let error = web::verify_token(token.clone(), jwks.clone(), string(r#"{"algorithms":["ES256"],"audience":"x"}"#), now.clone())
        .unwrap_err();
    assert_token_error(&error, ErrorCode::ConfigInvalid);
    let error = web::verify_token(token.clone(), string(r#"{"keys":5}"#), string(r#"{"algorithms":["ES256"]}"#), now.clone())
        .unwrap_err();
    assert_token_error(&error, ErrorCode::JwksInvalid);
    assert_type_error(&web::verify_token(token.clone(), JsValue::from_f64(1.0), string("{}"), now.clone()).unwrap_err());
    assert_type_error(&web::verify_token(JsValue::NULL, jwks, string("{}"), now).unwrap_err());
}
