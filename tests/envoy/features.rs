//! Provider configuration features through the filter: discovery, token sources, outputs,
//! time checks, token type, scopes and roles.

use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use envoy_host::{CalloutFault, Request, Response};
use serde_json::{json, Value};

use crate::fixture::{
    code_of, config, forwarded, header, local_provider, local_token, options, paths_of, reply, request, start, warnings, Authz,
};

fn discovery_provider(authz: &Authz) -> Value {
    let mut provider = authz.remote_provider();
    provider["remote_jwks"] = json!({
        "discovery_uri": {
            "uri": format!("{}/.well-known/openid-configuration", authz.issuer),
            "cluster": "authz",
            "timeout": "2s"
        },
        "cache_duration": "60s"
    });
    provider
}

#[test]
fn discovery_then_jwks_through_cluster() {
    let authz = Authz::shared();
    let mut envoy = start(options(&config(discovery_provider(authz)), authz.clusters()));
    let outcome = envoy.send(0, request(Some(authz.token("valid"))));
    assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"));
    assert_eq!(paths_of(&envoy, "authz"), ["/.well-known/openid-configuration", "/jwks"]);
}

#[test]
fn discovered_uri_shared_with_workers() {
    let authz = Authz::shared();
    let mut options = options(&config(discovery_provider(authz)), authz.clusters());
    options.workers = 2;
    let mut envoy = start(options);
    let outcome = envoy.send(0, request(Some(authz.token("valid"))));
    forwarded(&outcome);
    // Past the 60 s cache duration every worker has refreshed or adopted the refresh;
    // neither runs discovery again.
    for _ in 0..70 {
        envoy.advance(Duration::from_secs(1));
        envoy.run_until_idle(Duration::from_secs(5));
    }
    let paths = paths_of(&envoy, "authz");
    assert_eq!(paths.iter().filter(|path| path.contains("openid-configuration")).count(), 1, "{paths:?}");
    assert!(paths.iter().filter(|path| *path == "/jwks").count() >= 2, "the keys were refreshed: {paths:?}");
    for worker in 0..2 {
        let outcome = envoy.send(worker, request(Some(authz.token("valid"))));
        assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"), "worker {worker}");
    }
}

#[test]
fn discovery_issuer_mismatch_fails_closed() {
    let authz = Authz::shared();
    let mut provider = discovery_provider(authz);
    provider["issuer"] = json!("https://other-issuer.example");
    let mut envoy = start(options(&config(provider), authz.clusters()));
    let (status, _, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "jwks_unavailable", "{body}");
    assert_eq!(paths_of(&envoy, "authz"), ["/.well-known/openid-configuration"], "the keys are never fetched");
    let logged = warnings(&envoy, "discovery document names issuer");
    assert!(!logged.is_empty(), "{:?}", envoy.logs());
    assert!(logged[0].contains("provider idp"), "{}", logged[0]);
}

#[test]
fn discovery_garbage_document_fails() {
    let authz = Authz::shared();
    let mut options = options(&config(discovery_provider(authz)), authz.clusters());
    let garbage = CalloutFault::Respond(Response { status: 200, headers: Vec::new(), body: b"<html>".to_vec() });
    options.callout_faults.insert(String::from("authz"), garbage);
    let mut envoy = start(options);
    let (status, _, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "jwks_unavailable", "{body}");
    assert!(!warnings(&envoy, "discovery document is invalid").is_empty(), "{:?}", envoy.logs());
    assert_eq!(envoy.failure(0), None);
}

#[test]
fn discovery_without_checkable_issuer_rejected() {
    let authz = Authz::shared();
    let mut provider = discovery_provider(authz);
    provider.as_object_mut().unwrap().remove("issuer");
    provider["remote_jwks"]["discovery_uri"]["uri"] = json!(format!("{}/metadata.json", authz.issuer));
    match envoy_host::Envoy::start(options(&config(provider), authz.clusters())) {
        Err(envoy_host::StartError::ConfigRejected { logs, .. }) => {
            assert!(logs.iter().any(|record| record.message.contains("set `issuer`")), "{logs:?}");
        }
        Err(other) => panic!("expected ConfigRejected, got {other}"),
        Ok(_) => panic!("a discovery URL without a well-known path and no issuer was accepted"),
    }
}

#[test]
fn custom_header_with_prefix() {
    let provider = local_provider(&json!({
        "from_headers": [{ "name": "x-api-token", "value_prefix": "Token " }],
        "claim_to_headers": [{ "header_name": "x-jwt-sub", "claim_name": "sub" }]
    }));
    let mut envoy = start(options(&config(provider), Default::default()));
    let token = local_token(&json!({}));
    let outcome = envoy.send(0, Request::get("api.test", "/a").header("x-api-token", &format!("Token {token}")));
    let headers = forwarded(&outcome);
    assert_eq!(header(headers, "x-jwt-sub"), Some("user-123"));
    assert_eq!(header(headers, "x-api-token"), None, "the credential is removed");

    let (status, challenge, _) = reply(&envoy.send(0, Request::get("api.test", "/a").header("authorization", &format!("Bearer {token}"))));
    assert_eq!(status, 401, "Authorization is not a source of this provider");
    assert!(!challenge.contains("error="), "{challenge}");
}

#[test]
fn query_parameter_removed_from_path() {
    let provider = local_provider(&json!({ "from_params": ["access_token"] }));
    let mut envoy = start(options(&config(provider), Default::default()));
    let token = local_token(&json!({}));
    let outcome = envoy.send(0, Request::get("api.test", &format!("/a?x=1&access_token={token}&y=2")));
    assert_eq!(header(forwarded(&outcome), ":path"), Some("/a?x=1&y=2"));
    let outcome = envoy.send(0, Request::get("api.test", &format!("/a?access_token={token}")));
    assert_eq!(header(forwarded(&outcome), ":path"), Some("/a"));
}

#[test]
fn cookie_removed_from_cookie_header() {
    let provider = local_provider(&json!({ "from_cookies": ["session"] }));
    let mut envoy = start(options(&config(provider), Default::default()));
    let token = local_token(&json!({}));
    let outcome = envoy.send(0, Request::get("api.test", "/a").header("cookie", &format!("a=1; session={token}; b=2")));
    assert_eq!(header(forwarded(&outcome), "cookie"), Some("a=1; b=2"));
    let outcome = envoy.send(0, Request::get("api.test", "/a").header("cookie", &format!("session={token}")));
    assert_eq!(header(forwarded(&outcome), "cookie"), None);
}

#[test]
fn forward_keeps_credential() {
    let token = local_token(&json!({}));
    for (forward, expected) in [(true, Some(format!("Bearer {token}"))), (false, None)] {
        let provider = local_provider(&json!({ "forward": forward }));
        let mut envoy = start(options(&config(provider), Default::default()));
        let outcome = envoy.send(0, request(Some(&token)));
        assert_eq!(header(forwarded(&outcome), "authorization").map(str::to_string), expected, "forward {forward}");
    }
}

#[test]
fn payload_header_carries_claims() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider["forward_payload_header"] = json!("x-jwt-payload");
    let mut envoy = start(options(&config(provider), authz.clusters()));
    let token = authz.token("valid");
    let outcome = envoy.send(0, request(Some(token)).header("x-jwt-payload", "spoofed"));
    let headers = forwarded(&outcome);
    let values: Vec<&str> = headers.iter().filter(|(name, _)| name == "x-jwt-payload").map(|(_, value)| value.as_str()).collect();
    assert_eq!(values.len(), 1, "the spoofed value is gone: {values:?}");
    let forwarded_claims: Value = serde_json::from_slice(&Base64UrlUnpadded::decode_vec(values[0]).unwrap()).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let token_claims: Value = serde_json::from_slice(&Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap();
    assert_eq!(forwarded_claims, token_claims);
}

#[test]
fn claims_to_headers_flattened() {
    let provider = local_provider(&json!({
        "claim_to_headers": [
            { "header_name": "x-roles", "claim_name": "realm_access.roles" },
            { "header_name": "x-groups", "claim_name": "groups" },
            { "header_name": "x-object", "claim_name": "object" },
            { "header_name": "x-number", "claim_name": "number" },
            { "header_name": "x-flag", "claim_name": "flag" },
            { "header_name": "x-tenant", "claim_name": "https://example.com/tenant" },
            { "header_name": "x-client-roles", "claim_name": ["resource_access", "my.app", "roles"] },
            { "header_name": "x-absent", "claim_name": "absent" },
            { "header_name": "x-null", "claim_name": "nothing" }
        ]
    }));
    let mut envoy = start(options(&config(provider), Default::default()));
    let token = local_token(&json!({
        "realm_access": { "roles": ["admin", "reader"] },
        "groups": ["g1", "g2", 3],
        "object": { "k": 1 },
        "number": 42,
        "flag": true,
        "https://example.com/tenant": "t1",
        "resource_access": { "my.app": { "roles": ["writer"] } },
        "nothing": null
    }));
    let outcome = envoy.send(0, request(Some(&token)).header("x-absent", "spoofed"));
    let headers = forwarded(&outcome);
    assert_eq!(header(headers, "x-roles"), Some("admin,reader"));
    assert_eq!(header(headers, "x-groups"), Some("g1,g2,3"));
    assert_eq!(header(headers, "x-object"), Some(r#"{"k":1}"#));
    assert_eq!(header(headers, "x-number"), Some("42"));
    assert_eq!(header(headers, "x-flag"), Some("true"));
    assert_eq!(header(headers, "x-tenant"), Some("t1"));
    assert_eq!(header(headers, "x-client-roles"), Some("writer"));
    assert_eq!(header(headers, "x-absent"), None, "absent claims set no header, and spoofed values are removed");
    assert_eq!(header(headers, "x-null"), None);
}

#[test]
fn clock_skew_configurable() {
    let authz = Authz::shared();
    for (skew, expected) in [(None, None), (Some(10), Some("token_expired"))] {
        let mut provider = authz.remote_provider();
        if let Some(skew) = skew {
            provider["clock_skew_seconds"] = json!(skew);
        }
        let mut envoy = start(options(&config(provider), authz.clusters()));
        envoy.run_until_idle(Duration::from_secs(5));
        // 30 s past `exp`: inside the default 60 s, outside 10 s.
        envoy.advance(seconds_until(&envoy, expiry(authz.token("valid")) + 30));
        let outcome = envoy.send(0, request(Some(authz.token("valid"))));
        match expected {
            None => {
                forwarded(&outcome);
            }
            Some(code) => {
                let (status, _, body) = reply(&outcome);
                assert_eq!(status, 401);
                assert_eq!(code_of(&body), code, "{body}");
            }
        }
    }
}

#[test]
fn expiration_required_unless_disabled() {
    let token = local_token(&json!({ "exp": null }));
    let mut envoy = start(options(&config(local_provider(&json!({}))), Default::default()));
    let (status, _, body) = reply(&envoy.send(0, request(Some(&token))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "claim_missing", "{body}");

    let provider = local_provider(&json!({ "require_expiration": false }));
    let mut envoy = start(options(&config(provider), Default::default()));
    forwarded(&envoy.send(0, request(Some(&token))));
}

#[test]
fn max_lifetime_enforced() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider["max_lifetime"] = json!("30m");
    let mut envoy = start(options(&config(provider), authz.clusters()));
    let (status, _, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "lifetime_too_long", "{body}");
}

#[test]
fn rfc9068_profile_requires_at_jwt() {
    let rfc9068_claims = json!({ "client_id": "app", "jti": "j-1" });
    let cases = [
        ("no typ", local_token(&rfc9068_claims), "token_type_invalid"),
        ("typ JWT", typed_token("JWT", &rfc9068_claims), "token_type_invalid"),
        ("missing client_id", typed_token("at+jwt", &json!({ "jti": "j-1" })), "claim_missing"),
    ];
    let provider = local_provider(&json!({ "profile": "rfc9068" }));
    let mut envoy = start(options(&config(provider), Default::default()));
    for (name, token, code) in cases {
        let (status, _, body) = reply(&envoy.send(0, request(Some(&token))));
        assert_eq!(status, 401, "{name}");
        assert_eq!(code_of(&body), code, "{name}: {body}");
    }
    for typ in ["at+jwt", "application/at+jwt"] {
        let outcome = envoy.send(0, request(Some(&typed_token(typ, &rfc9068_claims))));
        forwarded(&outcome);
    }
}

/// Returns the `exp` claim of a token.
pub fn expiry(token: &str) -> i64 {
    let payload = token.split('.').nth(1).expect("three segments");
    let claims: Value = serde_json::from_slice(&Base64UrlUnpadded::decode_vec(payload).expect("base64url")).expect("JSON claims");
    claims["exp"].as_i64().expect("numeric exp")
}

/// Returns the time from the host's clock until `at` (seconds since the epoch), for
/// `Envoy::advance`.
pub fn seconds_until(envoy: &envoy_host::Envoy, at: i64) -> Duration {
    let now = i64::try_from(envoy.wall_seconds()).expect("seconds fit");
    Duration::from_secs(u64::try_from(at - now).unwrap_or(0))
}

fn typed_token(typ: &str, changes: &Value) -> String {
    let jwk = crate::common::private_jwk("K_RSA_A");
    let header = json!({ "alg": "RS256", "kid": "rsa-a", "typ": typ });
    crate::common::sign_json(portcullis::alg::Algorithm::RS256, &jwk, &header, &crate::fixture::local_claims(changes))
}

#[test]
fn scopes_answer_403_with_scope() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider["scopes"] = json!({ "all_of": ["api:write"] });
    let mut envoy = start(options(&config(provider), authz.clusters()));
    let (status, challenge, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
    assert_eq!(status, 403);
    assert_eq!(code_of(&body), "insufficient_scope", "{body}");
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
    assert!(challenge.contains(r#"scope="api:write""#), "{challenge}");
    forwarded(&envoy.send(0, request(Some(authz.token("validWrite")))));
}

#[test]
fn roles_from_keycloak_realm() {
    let provider = local_provider(&json!({ "roles": { "preset": "keycloak_realm", "any_of": ["admin"] } }));
    let mut envoy = start(options(&config(provider), Default::default()));
    let reader = local_token(&json!({ "realm_access": { "roles": ["reader"] } }));
    let (status, challenge, body) = reply(&envoy.send(0, request(Some(&reader))));
    assert_eq!(status, 403);
    assert_eq!(code_of(&body), "insufficient_role", "{body}");
    assert!(challenge.contains(r#"error="insufficient_scope""#), "{challenge}");
    let admin = local_token(&json!({ "realm_access": { "roles": ["reader", "admin"] } }));
    forwarded(&envoy.send(0, request(Some(&admin))));
}

#[test]
fn token_cache_hits_and_misses() {
    let authz = Authz::shared();
    let mut envoy = start(options(&config(authz.remote_provider()), authz.clusters()));
    for _ in 0..3 {
        forwarded(&envoy.send(0, request(Some(authz.token("valid")))));
    }
    assert_eq!(crate::fixture::metric(&envoy, "portcullis.jwt_cache_miss"), 1);
    assert_eq!(crate::fixture::metric(&envoy, "portcullis.jwt_cache_hit"), 2);
    // A cached token still expires: past `exp` plus the leeway it is rejected.
    envoy.advance(seconds_until(&envoy, expiry(authz.token("valid")) + 61));
    let (status, _, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "token_expired", "{body}");
    // A failure is never cached: a tampered token misses every time.
    let before = crate::fixture::metric(&envoy, "portcullis.jwt_cache_hit");
    let tampered = format!("{}x", authz.token("validWrite"));
    for _ in 0..2 {
        reply(&envoy.send(0, request(Some(&tampered))));
    }
    assert_eq!(crate::fixture::metric(&envoy, "portcullis.jwt_cache_hit"), before);
}

#[test]
fn token_cache_disabled_by_size_zero() {
    let mut provider = config(local_provider(&json!({})));
    provider["jwt_cache_config"] = json!({ "jwt_cache_size": 0 });
    let mut envoy = start(options(&provider, Default::default()));
    let token = local_token(&json!({}));
    for _ in 0..2 {
        forwarded(&envoy.send(0, request(Some(&token))));
    }
    assert_eq!(crate::fixture::metric(&envoy, "portcullis.jwt_cache_hit"), 0);
}

#[test]
fn cached_token_checked_against_rule() {
    // One token, cached under provider `idp`, must still satisfy each rule's requirement.
    let mut gate = config(local_provider(&json!({ "scopes": { "all_of": ["read"] } })));
    gate["providers"]["strict"] = local_provider(&json!({ "scopes": { "all_of": ["admin"] } }));
    gate["rules"] = json!([
        { "match": { "prefix": "/admin" }, "requires": { "provider_name": "strict" } },
        { "match": { "prefix": "/" }, "requires": { "provider_name": "idp" } }
    ]);
    let mut envoy = start(options(&gate, Default::default()));
    let token = local_token(&json!({ "scope": "read" }));
    let bearer = format!("Bearer {token}");
    for _ in 0..2 {
        forwarded(&envoy.send(0, Request::get("api.test", "/orders").header("authorization", &bearer)));
        let (status, _, _) = reply(&envoy.send(0, Request::get("api.test", "/admin").header("authorization", &bearer)));
        assert_eq!(status, 403);
    }
    assert!(crate::fixture::metric(&envoy, "portcullis.jwt_cache_hit") >= 1);
}
