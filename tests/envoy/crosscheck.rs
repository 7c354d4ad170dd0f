//! Compares the filter in the stand-in with the core compiled natively. The same
//! configuration and requests must get the same decision, status, reply body and headers.
//!
//! The tokens are variants of one valid token per algorithm. Signature bits are flipped,
//! signatures cut and lengthened, `alg` and `kid` changed, claim bytes changed, and claims
//! re-signed so that a time, audience or issuer check fails. The core's own tests run
//! natively, so a difference here points at the WebAssembly build: the compiler, wasm-opt
//! or the adapter.

use std::time::{Duration, SystemTime};

use envoy_host::{Clock, Envoy, Outcome, Request, StartError};
use portcullis::alg::Algorithm;
use portcullis::config::Gate;
use portcullis::gate::{Decision, NoRemoteKeys, RequestParts};
use serde_json::{json, Value};

use crate::common::{b64, private_jwk, public_of, sign_json, unb64};
use crate::fixture::{self, LOCAL_AUDIENCE, LOCAL_ISSUER};

/// Returns the algorithms of the default filter build (ES256K needs a cargo feature) with
/// their keys: the fixture's list, the `Ed25519` name, and HS384 and HS512 with a 64-byte
/// secret.
fn algorithms() -> Vec<(Algorithm, &'static str)> {
    let mut algorithms = fixture::ALGORITHMS.to_vec();
    algorithms.extend([(Algorithm::Ed25519, "K_ED25519"), (Algorithm::HS384, "K_HS_512"), (Algorithm::HS512, "K_HS_512")]);
    algorithms
}

/// Every signature bit whose index is a multiple of this is flipped once.
const BIT_STRIDE: usize = 37;

/// Every claims byte whose index is a multiple of this is changed once.
const BYTE_STRIDE: usize = 11;

/// Returns one provider with every key inline and every algorithm allowed, so that a
/// changed `alg` reaches key selection. Allowed requests get an `x-jwt-sub` header.
fn crosscheck_config() -> Value {
    let mut names: Vec<&str> = algorithms().iter().map(|(_, key)| *key).collect();
    names.sort_unstable();
    names.dedup();
    let keys: Vec<Value> = names.iter().map(|name| public_of(&private_jwk(name))).collect();
    let algorithms: Vec<&str> = algorithms().iter().map(|(alg, _)| alg.name()).collect();
    fixture::config(json!({
        "issuer": LOCAL_ISSUER,
        "audiences": [LOCAL_AUDIENCE],
        "algorithms": algorithms,
        "local_jwks": { "inline": { "keys": keys } },
        "claim_to_headers": [{ "header_name": "x-jwt-sub", "claim_name": "sub" }]
    }))
}

/// Signs `claims` with `key_name` under `alg`, with the key's `kid` in the header.
fn signed(alg: Algorithm, key_name: &str, claims: &Value) -> String {
    let jwk = private_jwk(key_name);
    sign_json(alg, &jwk, &json!({ "alg": alg.name(), "kid": jwk["kid"], "typ": "at+jwt" }), claims)
}

/// Returns the variants of one algorithm's valid token at `now`, each with a name for
/// failure messages.
fn variants(alg: Algorithm, key_name: &str, now: i64) -> Vec<(String, String)> {
    let claims = fixture::local_claims(&json!({ "iat": now - 60, "exp": now + 3600 }));
    let token = signed(alg, key_name, &claims);
    let parts: Vec<&str> = token.split('.').collect();
    let (header, payload, signature_text) = (parts[0], parts[1], parts[2]);
    let signature = unb64(signature_text);
    let mut cases = vec![(String::from("valid"), token.clone())];

    for bit in (0..signature.len() * 8).step_by(BIT_STRIDE) {
        let mut flipped = signature.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        cases.push((format!("signature bit {bit} flipped"), format!("{header}.{payload}.{}", b64(&flipped))));
    }
    let shorter = &signature[..signature.len() - 1];
    let longer = [signature.as_slice(), &[0]].concat();
    for (name, bytes) in [("signature empty", &[][..]), ("signature one byte short", shorter), ("signature one byte long", &longer)] {
        cases.push((String::from(name), format!("{header}.{payload}.{}", b64(bytes))));
    }
    cases.push((String::from("signature text cut by one character"), format!("{header}.{payload}.{}", &signature_text[1..])));

    let header_json: Value = serde_json::from_slice(&unb64(header)).expect("header JSON");
    for (other, _) in algorithms().into_iter().filter(|(other, _)| *other != alg) {
        let mut changed = header_json.clone();
        changed["alg"] = json!(other.name());
        cases.push((format!("alg changed to {other}"), format!("{}.{payload}.{signature_text}", b64(changed.to_string()))));
    }
    for (name, kid) in [("kid unknown", json!("no-such-key")), ("kid removed", Value::Null), ("kid a number", json!(7))] {
        let mut changed = header_json.clone();
        match kid {
            Value::Null => {
                changed.as_object_mut().expect("header object").remove("kid");
            }
            other => changed["kid"] = other,
        }
        cases.push((String::from(name), format!("{}.{payload}.{signature_text}", b64(changed.to_string()))));
    }

    let payload_bytes = unb64(payload);
    for index in (0..payload_bytes.len()).step_by(BYTE_STRIDE) {
        let mut changed = payload_bytes.clone();
        changed[index] ^= 0x01;
        cases.push((format!("claims byte {index} changed"), format!("{header}.{}.{signature_text}", b64(&changed))));
    }

    let re_signed = [
        ("expired", json!({ "exp": now - 3600 })),
        ("not yet valid", json!({ "nbf": now + 3600 })),
        ("issued in the future", json!({ "iat": now + 3600 })),
        ("no exp", json!({ "exp": null })),
        ("exp a string", json!({ "exp": "soon" })),
        ("other issuer", json!({ "iss": "https://other.example.com/" })),
        ("other audience", json!({ "aud": "api://other" })),
        ("audience list", json!({ "aud": ["api://other", LOCAL_AUDIENCE] })),
        ("sub a number", json!({ "sub": 42 })),
    ];
    for (name, changes) in re_signed {
        cases.push((format!("re-signed, {name}"), signed(alg, key_name, &crate::common::with(&claims, &changes))));
    }
    cases
}

/// What a decision looks like from outside: forwarded with the `sub` header and with or
/// without the token, or a reply.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Forwarded { sub: Option<String>, token_kept: bool },
    Reply { status: u16, challenge: String, body: String },
}

fn seen_in_filter(outcome: &Outcome) -> Seen {
    match outcome {
        Outcome::Forwarded { headers, .. } => Seen::Forwarded {
            sub: fixture::header(headers, "x-jwt-sub").map(str::to_string),
            token_kept: fixture::header(headers, "authorization").is_some(),
        },
        Outcome::LocalReply { .. } => {
            let (status, challenge, body) = fixture::reply(outcome);
            Seen::Reply { status, challenge, body }
        }
        other => panic!("expected a decision, got {other:?}"),
    }
}

fn seen_natively(gate: &Gate, token: &str, now: u64) -> Seen {
    let request = fixture::request(Some(token));
    seen_natively_for(gate, &request, now)
}

/// Decides `request` natively, reading its pseudo-headers as the filter does.
fn seen_natively_for(gate: &Gate, request: &Request, now: u64) -> Seen {
    let pseudo = |name: &str| request.headers.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str());
    let headers: Vec<(&str, &str)> =
        request.headers.iter().filter(|(name, _)| !name.starts_with(':')).map(|(name, value)| (name.as_str(), value.as_str())).collect();
    let parts = RequestParts {
        method: pseudo(":method"),
        path: pseudo(":path"),
        scheme: pseudo(":scheme"),
        authority: pseudo(":authority"),
        headers: &headers,
    };
    match gate.decide(parts, &mut NoRemoteKeys, now, true) {
        Decision::Allow(allowed) => Seen::Forwarded {
            sub: allowed.set_headers.iter().find(|(name, _)| name == "x-jwt-sub").map(|(_, value)| value.clone()),
            token_kept: headers.iter().any(|(name, _)| *name == "authorization")
                && !allowed.remove_headers.iter().any(|name| name == "authorization"),
        },
        Decision::Deny(denial) => Seen::Reply {
            status: denial.status,
            challenge: fixture::header(&denial.headers, "www-authenticate").unwrap_or_default().to_string(),
            body: denial.body,
        },
        Decision::Pending { providers } => panic!("local keys never wait, but providers {providers:?} are pending"),
    }
}

#[test]
fn filter_matches_native_core() {
    let config = crosscheck_config();
    let gate = Gate::from_json(config.to_string().as_bytes()).expect("configuration compiles natively");
    // Both sides read the same fixed time, so no reply differs by a second that passed
    // between the two.
    let now = fixture::now_seconds();
    let mut options = fixture::options(&config, Default::default());
    options.clock = Clock::Manual(SystemTime::UNIX_EPOCH + Duration::from_secs(now.unsigned_abs()));
    let mut envoy = fixture::start(options);
    let mut compared = 0;
    let mut allowed = 0;
    let algorithms = algorithms();
    for &(alg, key_name) in &algorithms {
        for (case, token) in variants(alg, key_name, now) {
            let in_filter = seen_in_filter(&envoy.send(0, fixture::request(Some(&token))));
            let native = seen_natively(&gate, &token, now.unsigned_abs());
            assert_eq!(in_filter, native, "{alg}, {case}");
            if case == "valid" {
                let expected = Seen::Forwarded { sub: Some(String::from("user-123")), token_kept: false };
                assert_eq!(in_filter, expected, "{alg}: the valid token passes");
            }
            compared += 1;
            allowed += usize::from(matches!(in_filter, Seen::Forwarded { .. }));
        }
    }
    assert_eq!(envoy.failure(0), None, "the VM is alive");
    // Each algorithm's valid token and its audience-list variant pass. Every other variant
    // fails.
    assert_eq!(allowed, 2 * algorithms.len(), "allowed requests out of {compared}");
}

/// Returns the lines the filter logs, at trace level, for a configuration it rejects.
fn filter_config_logs(config: &[u8]) -> Vec<String> {
    let mut options = fixture::options(&json!({}), Default::default());
    options.plugin_config = config.to_vec();
    options.log_level = envoy_host::LogLevel::Trace;
    match Envoy::start(options) {
        Err(StartError::ConfigRejected { logs, .. }) => logs.into_iter().map(|record| record.message).collect(),
        Err(other) => panic!("expected the configuration to be rejected, got {other}"),
        Ok(envoy) => panic!("configuration accepted; logs: {:?}", envoy.logs()),
    }
}

/// Returns a provider with the committed keys inline and `fields` added or replaced.
fn provider_config(fields: &Value) -> Vec<u8> {
    fixture::config(fixture::local_provider(fields)).to_string().into_bytes()
}

/// Returns a provider with the committed keys inline and this `jwt_cache_config`.
fn cache_config(cache: &Value) -> Vec<u8> {
    let mut config = fixture::config(fixture::local_provider(&json!({})));
    config["jwt_cache_config"] = cache.clone();
    config.to_string().into_bytes()
}

/// An all-digit secret, which YAML turns into a JSON number.
const NUMERIC_SECRET: u64 = 804_613_977_251;

#[test]
fn config_errors_match_native_core() {
    let secret = NUMERIC_SECRET.to_string();
    let secret = secret.as_str();
    let introspection = json!({ "introspection": {
        "http_uri": { "uri": "https://idp.example.com/introspect", "cluster": "idp" },
        "client_id": "api",
        "client_secret": NUMERIC_SECRET,
    }});
    let numeric_oct_key = json!({ "kty": "oct", "kid": "hs", "k": NUMERIC_SECRET });
    let audiences: Vec<String> = (0..11_000).map(|index| format!("api://{index:0>94}")).collect();
    let oversized = provider_config(&json!({ "audiences": audiences }));
    assert!(oversized.len() > portcullis::policy::MAX_CONFIG_BYTES, "{} bytes", oversized.len());
    let mut padded = provider_config(&json!({}));
    padded.extend(std::iter::repeat_n(b' ', portcullis::policy::MAX_CONFIG_BYTES));
    padded.push(b'x');
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // Numbers that do not fit a 32-bit usize still get the range message.
        ("max_token_bytes 2^32", provider_config(&json!({ "max_token_bytes": 1_u64 << 32 }))),
        ("max_token_bytes 2^64 - 1", provider_config(&json!({ "max_token_bytes": u64::MAX }))),
        ("jwt_cache_size 2^32", cache_config(&json!({ "jwt_cache_size": 1_u64 << 32 }))),
        ("max_bytes 2^32 + 4096", cache_config(&json!({ "max_bytes": (1_u64 << 32) + 4096 }))),
        // A document over the limit is rejected as a whole, never cut and read in part.
        ("valid document over 1 MiB", oversized),
        ("valid document, 1 MiB of spaces, then text", padded),
        // A value of the wrong type is named by its kind only.
        ("numeric client secret", provider_config(&introspection)),
        ("secret string where a number belongs", provider_config(&json!({ "max_token_bytes": "hunter2-secret" }))),
        (
            "secret string where a duration belongs",
            provider_config(&json!({ "local_jwks": null, "remote_jwks": {
                "http_uri": { "uri": "https://idp.example.com/jwks", "cluster": "idp" },
                "cache_duration": "hunter2-secret"
            }})),
        ),
        (
            "oct key secret as a number",
            provider_config(&json!({ "algorithms": ["HS256"], "local_jwks": { "inline": { "keys": [numeric_oct_key] } } })),
        ),
    ];
    for (case, config) in cases {
        let native = Gate::from_json(&config).expect_err(case).to_string();
        let logs = filter_config_logs(&config);
        let in_filter = logs.iter().find_map(|line| line.strip_prefix("portcullis: configuration"));
        assert_eq!(in_filter.map(|rest| format!("configuration{rest}")), Some(native.clone()), "{case}: {logs:?}");
        assert!(!native.contains(secret), "{case}: {native}");
        assert!(!native.contains("hunter2"), "{case}: {native}");
        assert!(!logs.iter().any(|line| line.contains(secret)), "{case}: {logs:?}");
        assert!(!logs.iter().any(|line| line.contains("hunter2")), "{case}: {logs:?}");
        assert!(!native.contains("expected usize"), "{case}: {native}");
        assert!(!native.contains("unknown field"), "{case} is rejected for its value: {native}");
        assert!(!native.contains("at least one provider"), "{case} is rejected for its value: {native}");
    }
}

/// Returns a request with `method`, `path` and these headers.
fn request_with(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut request = Request::get("api.example.test", path);
    request.headers[0].1 = method.to_string();
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
}

#[test]
fn rules_and_preflight_match_native_core() {
    let mut config = crosscheck_config();
    config["bypass_cors_preflight"] = json!(true);
    config["rules"] = json!([
        { "match": { "prefix": "/public" } },
        { "match": { "path": "/admin", "methods": ["POST"] }, "requires": { "provider_name": "idp" } },
        { "match": { "prefix": "/maybe" }, "requires": { "allow_missing": {} } },
        { "match": { "prefix": "/" }, "requires": { "provider_name": "idp" } }
    ]);
    let gate = Gate::from_json(config.to_string().as_bytes()).expect("configuration compiles natively");
    let now = fixture::now_seconds();
    let mut options = fixture::options(&config, Default::default());
    options.clock = Clock::Manual(SystemTime::UNIX_EPOCH + Duration::from_secs(now.unsigned_abs()));
    let mut envoy = fixture::start(options);

    let token = signed(Algorithm::ES256, "K_EC_A", &fixture::local_claims(&json!({ "iat": now - 60, "exp": now + 3600 })));
    let bearer = format!("Bearer {token}");
    let expired = signed(Algorithm::ES256, "K_EC_A", &fixture::local_claims(&json!({ "iat": now - 7200, "exp": now - 3600 })));
    let expired_bearer = format!("Bearer {expired}");
    let origin = ("origin", "https://app.example.test");
    let preflight = ("access-control-request-method", "POST");

    let cases = [
        ("preflight", request_with("OPTIONS", "/orders", &[origin, preflight])),
        ("OPTIONS without a requested method", request_with("OPTIONS", "/orders", &[origin])),
        ("OPTIONS without an origin", request_with("OPTIONS", "/orders", &[preflight])),
        ("public path without a token", request_with("GET", "/public/status?x=1", &[])),
        ("public path with an expired token", request_with("GET", "/public/status", &[("authorization", &expired_bearer)])),
        ("admin POST without a token", request_with("POST", "/admin", &[])),
        ("admin POST with a token", request_with("POST", "/admin", &[("authorization", &bearer)])),
        ("admin GET falls to the catch-all", request_with("GET", "/admin", &[])),
        ("admin path with a query", request_with("POST", "/admin?next=1", &[("authorization", &bearer)])),
        ("allow_missing without a token", request_with("GET", "/maybe", &[])),
        ("allow_missing with an expired token", request_with("GET", "/maybe", &[("authorization", &expired_bearer)])),
        ("allow_missing with a valid token", request_with("GET", "/maybe", &[("authorization", &bearer)])),
        ("two authorization headers", request_with("GET", "/orders", &[("authorization", &bearer), ("authorization", &bearer)])),
        ("lower-case scheme", request_with("GET", "/orders", &[("authorization", &format!("bearer {token}"))])),
        ("lower-case method", request_with("post", "/admin", &[])),
    ];

    let mut allowed = 0;
    for (case, request) in cases {
        let in_filter = seen_in_filter(&envoy.send(0, request.clone()));
        let native = seen_natively_for(&gate, &request, now.unsigned_abs());
        assert_eq!(in_filter, native, "{case}");
        allowed += usize::from(matches!(in_filter, Seen::Forwarded { .. }));
    }
    // The preflight, both public requests, the admin POST with a token and its query form,
    // two of the allow_missing requests and the lower-case scheme pass.
    assert_eq!(allowed, 8, "allowed requests");
    assert_eq!(envoy.failure(0), None, "the VM is alive");
}
