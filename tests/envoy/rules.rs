//! Rules through the filter: matching by prefix, exact path and method (first match wins),
//! the requirement forms, and CORS preflights.

use envoy_host::{Envoy, Outcome, Request};
use serde_json::{json, Value};

use crate::fixture::{code_of, forwarded, header, local_provider, local_token, metric, options, reply, start};

/// Provider `a` reads `Authorization: Bearer`, provider `b` the header `x-b-token`; both
/// copy `sub` to their own header.
fn two_providers(rules: Value) -> Value {
    json!({
        "providers": {
            "a": local_provider(&json!({ "claim_to_headers": [{ "header_name": "x-a-sub", "claim_name": "sub" }] })),
            "b": local_provider(&json!({
                "from_headers": [{ "name": "x-b-token" }],
                "claim_to_headers": [{ "header_name": "x-b-sub", "claim_name": "sub" }]
            }))
        },
        "rules": rules
    })
}

fn host(rules: Value) -> Envoy {
    start(options(&two_providers(rules), Default::default()))
}

fn with_tokens(method: &str, path: &str, a: Option<&str>, b: Option<&str>) -> Request {
    let mut request = Request::get("api.test", path).header("x-a-sub", "spoofed").header("x-b-sub", "spoofed");
    request.headers[0].1 = method.to_string();
    if let Some(token) = a {
        request = request.header("authorization", &format!("Bearer {token}"));
    }
    if let Some(token) = b {
        request = request.header("x-b-token", token);
    }
    request
}

/// Returns the status of a reply, or 200 for a forwarded request.
fn status(outcome: &Outcome) -> u16 {
    match outcome {
        Outcome::Forwarded { .. } => 200,
        other => reply(other).0,
    }
}

#[test]
fn prefix_path_and_methods_first_match_wins() {
    let mut envoy = host(json!([
        { "match": { "path": "/api/admin" }, "requires": { "provider_name": "b" } },
        { "match": { "prefix": "/api", "methods": ["POST", "delete"] }, "requires": { "requires_all": { "requirements": [
            { "provider_name": "a" }, { "provider_name": "b" }
        ] } } },
        { "match": { "prefix": "/api" }, "requires": { "provider_name": "a" } },
        { "match": { "prefix": "/api/public" } },
        { "match": { "prefix": "/health" } }
    ]));
    let token = local_token(&json!({}));
    let t = Some(token.as_str());
    let cases = [
        ("GET", "/api/orders", t, None, 200),
        ("GET", "/api/orders", None, t, 401),
        ("GET", "/api/admin", t, None, 401),
        ("GET", "/api/admin", None, t, 200),
        ("GET", "/api/admin/x", t, None, 200),
        ("POST", "/api/orders", t, None, 401),
        ("POST", "/api/orders", t, t, 200),
        ("DELETE", "/api/orders", t, t, 200),
        // The earlier `/api` rule matches first, so the later public rule never applies.
        ("GET", "/api/public/x", None, None, 401),
        ("GET", "/health", None, None, 200),
        // No rule matches: no token is required.
        ("GET", "/other", None, None, 200),
        ("GET", "/api/orders?x=/health", None, None, 401),
    ];
    for (method, path, a, b, expected) in cases {
        let outcome = envoy.send(0, with_tokens(method, path, a, b));
        assert_eq!(status(&outcome), expected, "{method} {path} a={} b={}", a.is_some(), b.is_some());
        if let Outcome::Forwarded { headers, .. } = &outcome {
            for name in ["x-a-sub", "x-b-sub"] {
                assert_ne!(header(headers, name), Some("spoofed"), "{method} {path}: {name} is never passed on from the client");
            }
        }
    }
}

#[test]
fn requires_any_takes_either_token() {
    let mut envoy = host(json!([{ "match": { "prefix": "/" }, "requires": { "requires_any": { "requirements": [
        { "provider_name": "a" }, { "provider_name": "b" }
    ] } } }]));
    let token = local_token(&json!({}));
    let outcome = envoy.send(0, with_tokens("GET", "/x", None, Some(&token)));
    assert_eq!(header(forwarded(&outcome), "x-b-sub"), Some("user-123"));
    let outcome = envoy.send(0, with_tokens("GET", "/x", Some(&token), None));
    assert_eq!(header(forwarded(&outcome), "x-a-sub"), Some("user-123"));
    let (status, challenge, body) = reply(&envoy.send(0, with_tokens("GET", "/x", None, None)));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "token_missing");
    assert!(!challenge.contains("error="), "{challenge}");
    // A present token that fails is reported over an absent one.
    let expired = local_token(&json!({ "iat": 1_000_000, "exp": 1_000_100 }));
    let (_, _, body) = reply(&envoy.send(0, with_tokens("GET", "/x", None, Some(&expired))));
    assert_eq!(code_of(&body), "token_expired");
}

#[test]
fn requires_all_needs_every_token() {
    let mut envoy = host(json!([{ "match": { "prefix": "/" }, "requires": { "requires_all": { "requirements": [
        { "provider_name": "a" }, { "provider_name": "b" }
    ] } } }]));
    let token = local_token(&json!({}));
    let outcome = envoy.send(0, with_tokens("GET", "/x", Some(&token), Some(&token)));
    let headers = forwarded(&outcome);
    assert_eq!(header(headers, "x-a-sub"), Some("user-123"));
    assert_eq!(header(headers, "x-b-sub"), Some("user-123"));
    let (_, _, body) = reply(&envoy.send(0, with_tokens("GET", "/x", Some(&token), None)));
    assert_eq!(code_of(&body), "token_missing");
    let (_, _, body) = reply(&envoy.send(0, with_tokens("GET", "/x", Some(&token), Some("not-a-jwt"))));
    assert_eq!(code_of(&body), "token_malformed");
}

#[test]
fn allow_missing_rejects_bad_tokens() {
    let mut envoy = host(json!([{ "match": { "prefix": "/" }, "requires": { "allow_missing": {} } }]));
    let outcome = envoy.send(0, with_tokens("GET", "/x", None, None));
    assert_eq!(header(forwarded(&outcome), "x-a-sub"), None, "the spoofed header is removed");
    let token = local_token(&json!({}));
    let outcome = envoy.send(0, with_tokens("GET", "/x", Some(&token), None));
    assert_eq!(header(forwarded(&outcome), "x-a-sub"), Some("user-123"));
    let tampered = format!("{token}A");
    let (status, _, _) = reply(&envoy.send(0, with_tokens("GET", "/x", Some(&tampered), None)));
    assert_eq!(status, 401);
}

#[test]
fn allow_missing_or_failed_passes_all() {
    let mut envoy = host(json!([{ "match": { "prefix": "/" }, "requires": { "allow_missing_or_failed": {} } }]));
    let token = local_token(&json!({}));
    let expired = local_token(&json!({ "iat": 1_000_000, "exp": 1_000_100 }));
    for (name, a) in [("missing", None), ("failed", Some(expired.as_str()))] {
        let outcome = envoy.send(0, with_tokens("GET", "/x", a, None));
        let headers = forwarded(&outcome);
        assert_eq!(header(headers, "x-a-sub"), None, "{name}: no outputs, and the spoofed header is removed");
    }
    let outcome = envoy.send(0, with_tokens("GET", "/x", Some(&token), None));
    assert_eq!(header(forwarded(&outcome), "x-a-sub"), Some("user-123"));
    let two_tokens = with_tokens("GET", "/x", Some(&token), None).header("authorization", "Bearer x.y.z");
    let outcome = envoy.send(0, two_tokens);
    assert_eq!(header(forwarded(&outcome), "x-a-sub"), None, "two tokens fail the provider, which this rule tolerates");
}

#[test]
fn cors_preflight_bypassed_when_enabled() {
    let preflight = || {
        with_tokens("OPTIONS", "/x", None, None)
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
    };
    let rules = json!([{ "match": { "prefix": "/" }, "requires": { "provider_name": "a" } }]);
    let mut config = two_providers(rules);
    config["bypass_cors_preflight"] = json!(true);
    let mut envoy = start(options(&config, Default::default()));
    let outcome = envoy.send(0, preflight());
    assert_eq!(header(forwarded(&outcome), "x-a-sub"), None, "outputs are removed from preflights too");
    assert_eq!(metric(&envoy, "portcullis.cors_preflight_bypassed"), 1);
    let not_preflight = with_tokens("OPTIONS", "/x", None, None).header("origin", "https://app.example");
    assert_eq!(status(&envoy.send(0, not_preflight)), 401, "OPTIONS without Access-Control-Request-Method is no preflight");

    let mut envoy = host(json!([{ "match": { "prefix": "/" }, "requires": { "provider_name": "a" } }]));
    assert_eq!(status(&envoy.send(0, preflight())), 401, "bypass is off by default");
}
