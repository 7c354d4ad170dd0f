//! Requests and replies through the filter: `Authorization` parsing, RFC 6750 challenges,
//! failure bodies, several tokens, hostile tokens and key sets, and tokens kept out of
//! replies and logs.

use envoy_host::{CalloutFault, Envoy, Outcome, Request, Response};
use portcullis::alg::Algorithm;
use serde_json::{json, Value};

use crate::common;
use crate::fixture::{
    assert_not_logged, code_of, config, forwarded, header, local_provider, local_token, options, reply, start, warnings, Authz,
};

/// Returns a provider that reads `Authorization: Bearer` and the `access_token` query
/// parameter, as Envoy's `jwt_authn` does by default.
fn header_and_param_provider() -> Value {
    local_provider(&json!({
        "from_headers": [{ "name": "authorization", "value_prefix": "Bearer " }],
        "from_params": ["access_token"]
    }))
}

fn get(path: &str, authorization: &[&str]) -> Request {
    authorization.iter().fold(Request::get("api.test", path), |request, value| request.header("authorization", value))
}

/// What a reply must carry: status, `error` attribute (None: no attribute) and code.
struct Expected {
    status: u16,
    error: Option<&'static str>,
    code: &'static str,
}

const ACCEPT: Option<Expected> = None;

fn reject(status: u16, error: Option<&'static str>, code: &'static str) -> Option<Expected> {
    Some(Expected { status, error, code })
}

#[test]
fn authorization_header_parsing() {
    let mut envoy = start(options(&config(header_and_param_provider()), Default::default()));
    let t = local_token(&json!({}));
    let cases: Vec<(&str, Request, Option<Expected>)> = vec![
        ("W1 Bearer", get("/a", &[&format!("Bearer {t}")]), ACCEPT),
        ("W2 bearer", get("/a", &[&format!("bearer {t}")]), ACCEPT),
        ("W3 BEARER", get("/a", &[&format!("BEARER {t}")]), ACCEPT),
        ("W4 two spaces", get("/a", &[&format!("Bearer  {t}")]), ACCEPT),
        ("W5 trailing junk", get("/a", &[&format!("Bearer {t} .jjjj")]), reject(400, Some("invalid_request"), "authorization_malformed")),
        ("W6 junk in token", get("/a", &[&format!("Bearer {t}junk")]), reject(401, Some("invalid_token"), "invalid_base64")),
        ("W7 tab", get("/a", &[&format!("Bearer\t{t}")]), reject(400, Some("invalid_request"), "authorization_malformed")),
        ("W8 list", get("/a", &[&format!("Bearer {t}, Bearer {t}")]), reject(400, Some("invalid_request"), "authorization_malformed")),
        ("W8 two headers", get("/a", &[&format!("Bearer {t}"), &format!("Bearer {t}")]), reject(400, Some("invalid_request"), "token_multiple")),
        ("W9 scheme only", get("/a", &["Bearer"]), reject(401, None, "token_missing")),
        ("W9 scheme and space", get("/a", &["Bearer "]), reject(401, None, "token_missing")),
        ("W10 header and query", get(&format!("/a?access_token={t}"), &[&format!("Bearer {t}")]), reject(400, Some("invalid_request"), "token_multiple")),
        ("W11 Basic", get("/a", &["Basic dXNlcjpwYXNz"]), reject(401, None, "token_missing")),
        ("query only", get(&format!("/a?access_token={t}"), &[]), ACCEPT),
        ("query malformed", get("/a?access_token=a%20b", &[]), reject(400, Some("invalid_request"), "authorization_malformed")),
    ];
    for (name, request, expected) in cases {
        let outcome = envoy.send(0, request);
        let Some(expected) = expected else {
            forwarded(&outcome);
            continue;
        };
        let (status, challenge, body) = reply(&outcome);
        assert_eq!(status, expected.status, "{name}: {body}");
        assert_eq!(code_of(&body), expected.code, "{name}: {body}");
        assert!(challenge.starts_with("Bearer realm=\"http://api.test/a\""), "{name}: {challenge}");
        match expected.error {
            Some(error) => assert!(challenge.contains(&format!("error=\"{error}\"")), "{name}: {challenge}"),
            None => assert!(!challenge.contains("error"), "{name}: no error attribute without credentials: {challenge}"),
        }
        assert!(!challenge.contains(&t), "{name}: the token is never echoed in the challenge");
        assert!(!body.contains(&t), "{name}: the token is never echoed in the body");
    }
    assert_not_logged(&envoy, &[&t]);
}

#[test]
fn json_body_when_enabled() {
    let mut gate = config(local_provider(&json!({})));
    gate["failure"] = json!({ "json_body": true, "realm": "orders-api" });
    let mut envoy = start(options(&gate, Default::default()));
    let expired = local_token(&json!({ "iat": 1_000_000, "exp": 1_000_100 }));
    let outcome = envoy.send(0, Request::get("api.test", "/a").header("authorization", &format!("Bearer {expired}")));
    let Outcome::LocalReply { status, headers, body, details } = outcome else { panic!("expected a reply, got {outcome:?}") };
    assert_eq!(status, 401);
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(details, "portcullis_denied{token_expired}");
    let challenge = header(&headers, "www-authenticate").unwrap();
    assert!(challenge.starts_with(r#"Bearer realm="orders-api", error="invalid_token", error_description="token expired at 1000100"#), "{challenge}");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(body["code"], "token_expired");
    assert!(body["error_description"].as_str().unwrap().starts_with("token expired at 1000100"), "{body}");
}

#[test]
fn details_stripped_on_request() {
    let mut gate = config(local_provider(&json!({ "scopes": { "all_of": ["admin"] } })));
    gate["failure"] = json!({ "strip_details": true, "json_body": true });
    let mut envoy = start(options(&gate, Default::default()));
    let cases = [
        (local_token(&json!({ "iat": 1_000_000, "exp": 1_000_100 })), 401, "Bearer realm=\"http://api.test/a\", error=\"invalid_token\""),
        (local_token(&json!({ "scope": "read" })), 403, "Bearer realm=\"http://api.test/a\", error=\"insufficient_scope\""),
    ];
    for (token, expected_status, expected_challenge) in cases {
        let outcome = envoy.send(0, Request::get("api.test", "/a?x=1").header("authorization", &format!("Bearer {token}")));
        let Outcome::LocalReply { status, headers, body, .. } = outcome else { panic!("expected a reply, got {outcome:?}") };
        assert_eq!(status, expected_status);
        assert_eq!(header(&headers, "www-authenticate"), Some(expected_challenge));
        assert!(body.is_empty(), "no body: {}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn several_tokens_for_one_provider_rejected() {
    let provider = local_provider(&json!({
        "from_headers": [{ "name": "authorization", "value_prefix": "Bearer " }],
        "from_cookies": ["session"]
    }));
    let mut envoy = start(options(&config(provider), Default::default()));
    let token = local_token(&json!({}));
    let request = Request::get("api.test", "/a")
        .header("authorization", &format!("Bearer {token}"))
        .header("cookie", &format!("session={token}"));
    let (status, challenge, body) = reply(&envoy.send(0, request));
    assert_eq!(status, 400);
    assert_eq!(code_of(&body), "token_multiple");
    assert!(challenge.contains(r#"error="invalid_request""#), "{challenge}");
    let two_cookies = Request::get("api.test", "/a").header("cookie", &format!("session={token}; session={token}"));
    assert_eq!(reply(&envoy.send(0, two_cookies)).0, 400);
}

#[test]
fn spoofed_outputs_removed_everywhere() {
    let mut gate = config(local_provider(&json!({
        "claim_to_headers": [{ "header_name": "X-User", "claim_name": "sub" }],
        "forward_payload_header": "x-claims"
    })));
    gate["rules"] = json!([{ "match": { "prefix": "/public" } }, { "match": { "prefix": "/" }, "requires": { "provider_name": "idp" } }]);
    let mut envoy = start(options(&gate, Default::default()));
    let spoofed = |path: &str| Request::get("api.test", path).header("x-user", "admin").header("X-Claims", "e30");
    let outcome = envoy.send(0, spoofed("/public"));
    let headers = forwarded(&outcome);
    assert_eq!(header(headers, "x-user"), None);
    assert_eq!(header(headers, "x-claims"), None);
    let token = local_token(&json!({}));
    let outcome = envoy.send(0, spoofed("/orders").header("authorization", &format!("Bearer {token}")));
    let headers = forwarded(&outcome);
    assert_eq!(headers.iter().filter(|(name, _)| name == "x-user").count(), 1);
    assert_eq!(header(headers, "x-user"), Some("user-123"));
    assert_ne!(header(headers, "x-claims"), Some("e30"));
}

/// Tokens whose `kid` tries to pick a key (path traversal, SQL, NUL, odd types, huge).
#[test]
fn kid_injection_rejected() {
    let mut envoy = start(options(&config(local_provider(&json!({}))), Default::default()));
    let claims = crate::fixture::local_claims(&json!({}));
    let rsa = common::private_jwk("K_RSA_A");
    let empty_secret = json!({ "kty": "oct", "k": "" });
    let secret = json!({ "kty": "oct", "k": common::b64("secret123") });
    let sign = |alg: Algorithm, jwk: &Value, kid: Value| common::sign_json(alg, jwk, &json!({ "alg": alg.name(), "kid": kid }), &claims);
    let cases = [
        ("path traversal", sign(Algorithm::HS256, &empty_secret, json!("../../../../../../dev/null")), "algorithm_not_allowed"),
        ("SQL injection", sign(Algorithm::HS256, &secret, json!("x' UNION SELECT 'secret123' -- ")), "algorithm_not_allowed"),
        ("NUL suffix", sign(Algorithm::RS256, &rsa, json!("rsa-a\u{0}.pem")), "key_not_found"),
        ("case differs", sign(Algorithm::RS256, &rsa, json!("RSA-A")), "key_not_found"),
        ("number", sign(Algorithm::RS256, &rsa, json!(123)), "header_malformed"),
        ("null", sign(Algorithm::RS256, &rsa, Value::Null), "header_malformed"),
        ("array", sign(Algorithm::RS256, &rsa, json!(["rsa-a"])), "header_malformed"),
        ("object", sign(Algorithm::RS256, &rsa, json!({ "$ne": "" })), "header_malformed"),
        ("64 KiB", sign(Algorithm::RS256, &rsa, json!("k".repeat(64 * 1024))), "token_too_large"),
    ];
    for (name, token, code) in cases {
        let (status, _, body) = reply(&envoy.send(0, Request::get("api.test", "/a").header("authorization", &format!("Bearer {token}"))));
        assert_eq!(status, 401, "{name}");
        assert_eq!(code_of(&body), code, "{name}: {body}");
    }
    assert_eq!(envoy.failure(0), None);
}

/// Oversized and many-dotted tokens are rejected by size before any decoding, and a large
/// but legitimate header (an `x5c` chain) still verifies.
#[test]
fn oversized_tokens_bounded() {
    let mut envoy = start(options(&config(local_provider(&json!({}))), Default::default()));
    let memory_before = envoy.memory_bytes(0);
    let es256 = common::es256(&crate::fixture::local_claims(&json!({})));
    let (signing_input, _) = es256.rsplit_once('.').unwrap();
    let cases = [
        ("D1 many dots", format!("{}b", "a.".repeat(30_000)), "token_too_large"),
        ("D3 long ES256 signature", format!("{signing_input}.{}", "A".repeat(21_830)), "token_too_large"),
        ("two dots", String::from("a.b"), "token_malformed"),
    ];
    for (name, token, code) in cases {
        let (status, _, body) = reply(&envoy.send(0, Request::get("api.test", "/a").header("authorization", &format!("Bearer {token}"))));
        assert_eq!(status, 401, "{name}");
        assert_eq!(code_of(&body), code, "{name}: {body}");
    }
    let chain: Vec<String> = (0..4).map(|index| common::b64(vec![index; 1500])).collect();
    let header = json!({ "alg": "RS256", "kid": "rsa-a", "x5c": chain });
    let x5c = common::sign_json(Algorithm::RS256, &common::private_jwk("K_RSA_A"), &header, &crate::fixture::local_claims(&json!({})));
    assert!(x5c.len() > 8_000, "{}", x5c.len());
    forwarded(&envoy.send(0, Request::get("api.test", "/a").header("authorization", &format!("Bearer {x5c}"))));
    assert!(envoy.memory_bytes(0) <= memory_before + 1024 * 1024, "no large allocation");
}

/// Starts a host whose key server returns `jwks`.
fn remote_with_jwks(authz: &Authz, jwks: &Value) -> Envoy {
    let mut options = options(&config(authz.remote_provider()), authz.clusters());
    let body = serde_json::to_vec(jwks).unwrap();
    options.callout_faults.insert(String::from("authz"), CalloutFault::Respond(Response { status: 200, headers: Vec::new(), body }));
    start(options)
}

fn fixture_keys(authz: &Authz) -> Vec<Value> {
    authz.jwks["keys"].as_array().unwrap().clone()
}

/// Entries a key set may carry that no signature key should break: unknown types, bad
/// members, encryption keys.
#[test]
fn odd_jwks_entries_skipped() {
    let authz = Authz::shared();
    let mut keys = fixture_keys(authz);
    keys.extend([
        json!({ "kty": "AKP", "kid": "pq-1", "alg": "ML-DSA-65", "pub": "AAAA" }),
        json!({ "kty": "OKP", "kid": "x-1", "crv": "X25519", "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" }),
        common::with(&common::public_jwk("K_RSA_B"), &json!({ "kid": "rsa-pad", "n": format!("{}==", common::public_jwk("K_RSA_B")["n"].as_str().unwrap()) })),
        json!({ "kty": "EC", "kid": "ec-nox", "crv": "P-256", "y": common::public_jwk("K_EC_A")["y"] }),
        common::with(&common::public_jwk("K_RSA_C"), &json!({ "kid": "rsa-enc", "use": "enc", "alg": "RSA-OAEP" })),
        json!({ "kid": "no-kty" }),
    ]);
    let mut envoy = remote_with_jwks(authz, &json!({ "keys": keys }));
    let outcome = envoy.send(0, crate::fixture::request(Some(authz.token("valid"))));
    assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"));
    assert!(!warnings(&envoy, "provider idp").is_empty(), "skipped entries are logged: {:?}", envoy.logs());
}

/// A `kid` shared by an encryption key and the signature key verifies with the signature
/// key, in either order.
#[test]
fn shared_kid_with_enc_key() {
    let authz = Authz::shared();
    let keys = fixture_keys(authz);
    let rsa = keys.iter().find(|key| key["kty"] == "RSA").unwrap().clone();
    let enc = common::with(&common::public_jwk("K_RSA_C"), &json!({ "kid": rsa["kid"], "use": "enc", "alg": "RSA-OAEP" }));
    for order in [vec![enc.clone(), rsa.clone()], vec![rsa.clone(), enc.clone()]] {
        let mut envoy = remote_with_jwks(authz, &json!({ "keys": order }));
        let outcome = envoy.send(0, crate::fixture::request(Some(authz.token("valid"))));
        assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"));
    }
}
