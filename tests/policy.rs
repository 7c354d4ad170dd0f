//! The policy schema: what compiles, what is rejected, and that every rejection names the
//! field at fault.

use portcullis::error::{ConfigError, ErrorCode};
use portcullis::policy::Policy;
use serde_json::{json, Value};

fn compile(document: &Value) -> Result<Policy, ConfigError> {
    Policy::from_json(document.to_string().as_bytes())
}

fn with(changes: Value) -> Value {
    let mut document = json!({"algorithms": ["RS256"]});
    for (name, value) in changes.as_object().expect("object") {
        document[name] = value.clone();
    }
    document
}

#[test]
fn policy_invalid_values_name_field() {
    let cases = [
        (with(json!({"algorithms": []})), "algorithms"),
        (with(json!({"algorithms": ["none"]})), "algorithms[0]"),
        (with(json!({"algorithms": ["RS256", "rs256"]})), "algorithms[1]"),
        (with(json!({"issuer": []})), "issuer"),
        (with(json!({"issuer": [""]})), "issuer[0]"),
        (with(json!({"issuer": "https://a/{tenant}/{tenant}"})), "issuer[0]"),
        (with(json!({"issuer": "https://a/{tid}/{tenant}"})), "issuer[0]"),
        (with(json!({"tenants": ["a"]})), "tenants"),
        (with(json!({"issuer": "https://a/{tenant}", "tenants": ["a/b"]})), "tenants"),
        (with(json!({"tenant_claim": "tid"})), "tenant_claim"),
        (with(json!({"audiences": []})), "audiences"),
        (with(json!({"audiences": [""]})), "audiences"),
        (with(json!({"client_ids": []})), "client_ids"),
        (with(json!({"clock_skew_seconds": 601})), "clock_skew_seconds"),
        (with(json!({"max_lifetime": 0})), "max_lifetime"),
        (with(json!({"max_lifetime": "999ms"})), "max_lifetime"),
        (with(json!({"max_token_age": "500ms"})), "max_token_age"),
        (with(json!({"max_token_bytes": 255})), "max_token_bytes"),
        (with(json!({"max_token_bytes": 65537})), "max_token_bytes"),
        (with(json!({"profile": "rfc7519"})), "profile"),
        (with(json!({"token_type": ""})), "token_type"),
        (with(json!({"profile": "rfc9068", "token_type": "JWT"})), "token_type"),
        (with(json!({"token_type_claim": {"claim": "", "value": "access"}})), "token_type_claim.claim"),
        (with(json!({"required_claims": [{"claim": ""}]})), "required_claims[0]"),
        (with(json!({"required_claims": [{"claim": "a", "equals": 1, "one_of": [1]}]})), "required_claims[0]"),
        (with(json!({"required_claims": [{"claim": "a", "one_of": []}]})), "required_claims[0]"),
        (with(json!({"scopes": {}})), "scopes"),
        (with(json!({"scopes": {"all_of": ["a b"]}})), "scopes"),
        (with(json!({"roles": {"all_of": ["a"]}})), "roles"),
        (with(json!({"roles": {"preset": "okta", "all_of": ["a"]}})), "roles.preset"),
        (with(json!({"roles": {"preset": "groups"}})), "roles"),
        (with(json!({"local_jwks": {}})), "local_jwks"),
        (with(json!({"remote_jwks": {}})), "remote_jwks"),
        (with(json!({"remote_jwks": {"http_uri": {"uri": "ftp://a/jwks"}}})), "remote_jwks.http_uri.uri"),
        (with(json!({"remote_jwks": {"http_uri": {"uri": "https://a/jwks"}, "cache_duration": "10ms"}})), "remote_jwks.cache_duration"),
        (with(json!({"from_headers": [{"name": "bad header"}]})), "from_headers[0].name"),
        (with(json!({"claim_to_headers": [{"header_name": ":path", "claim_name": "sub"}]})), "claim_to_headers"),
    ];
    for (document, field) in cases {
        match compile(&document) {
            Ok(_) => panic!("{document} compiled"),
            Err(error) => {
                assert_eq!(error.code(), ErrorCode::ConfigInvalid, "{document}");
                assert!(error.to_string().contains(&format!("`{field}`")), "{document}: {error}");
            }
        }
    }
}

#[test]
fn policy_syntax_errors_name_field() {
    let cases = [
        (json!({"algorithms": ["RS256"], "audience": "x"}), "unknown field `audience`"),
        (json!({"algorithms": "RS256"}), "invalid type"),
        (json!({}), "missing field `algorithms`"),
        (with(json!({"max_lifetime": "1 hour"})), "invalid duration"),
        (with(json!({"max_lifetime": -5})), "must not be negative"),
        (with(json!({"clock_skew_seconds": "60"})), "invalid type"),
    ];
    for (document, expected) in cases {
        let error = compile(&document).expect_err("rejected");
        assert_eq!(error.code(), ErrorCode::ConfigInvalid);
        assert!(error.to_string().contains(expected), "{document}: {error}");
    }
    assert!(Policy::from_json(b"not json").is_err());
    assert!(Policy::from_json(br#"{"algorithms":["RS256"],"algorithms":["HS256"]}"#).is_err(), "duplicate field");
}

#[test]
fn policy_defaults_and_limits() {
    let policy = compile(&with(json!({}))).expect("minimal policy");
    assert_eq!(policy.leeway, 60);
    assert!(policy.require_expiration);
    assert_eq!(policy.max_token_bytes, 16 * 1024);
    assert_eq!(policy.max_lifetime, None);

    let policy = compile(&with(json!({
        "clock_skew_seconds": 600,
        "max_lifetime": "1.5h",
        "max_token_age": "1s",
        "max_token_bytes": 65536,
        "algorithms": ["RS256", "RS256", "ES256"]
    })))
    .expect("limits at their bounds");
    assert_eq!(policy.leeway, 600);
    assert_eq!(policy.max_lifetime, Some(5400));
    assert_eq!(policy.max_token_age, Some(1));
    assert_eq!(policy.max_token_bytes, 65536);
    assert_eq!(policy.algorithms.len(), 2, "duplicates collapse");

    let profile = compile(&with(json!({"profile": "rfc9068"}))).expect("profile");
    assert_eq!(profile.token_type.as_deref(), Some("at+jwt"));
    assert_eq!(profile.required_registered, ["iss", "exp", "aud", "sub", "client_id", "iat", "jti"]);
    let typed = compile(&with(json!({"token_type": "application/AT+JWT"}))).expect("typ");
    assert_eq!(typed.token_type.as_deref(), Some("at+jwt"));
}

/// ES256K compiles only in builds with the `es256k` feature.
#[test]
fn policy_es256k_needs_feature() {
    let result = compile(&with(json!({"algorithms": ["ES256K"]})));
    if cfg!(feature = "es256k") {
        assert!(result.is_ok());
    } else {
        let error = result.expect_err("feature missing");
        assert!(error.to_string().contains("es256k"), "{error}");
    }
}
