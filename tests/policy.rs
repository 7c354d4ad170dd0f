//! The policy schema: what compiles, what is rejected, and that every rejection names the
//! field at fault.

use portcullis::config::{Gate, KeySource};
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
        (json!({}), "algorithms"),
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
        (
            with(json!({
                "local_jwks": {"inline": {"keys": []}},
                "remote_jwks": {"http_uri": {"uri": "https://a/jwks"}}
            })),
            "remote_jwks",
        ),
        (
            with(json!({"algorithms": ["RS256", "HS256"], "remote_jwks": {"http_uri": {"uri": "https://a/jwks"}}})),
            "algorithms[1]",
        ),
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
        (with(json!({"max_lifetime": "1 hour"})), "invalid duration"),
        (with(json!({"max_lifetime": -5})), "must not be negative"),
        (with(json!({"clock_skew_seconds": "60"})), "invalid type"),
    ];
    for (document, expected) in cases {
        let error = compile(&document).expect_err("rejected");
        assert_eq!(error.code(), ErrorCode::ConfigInvalid);
        assert!(error.to_string().contains(expected), "{document}: {error}");
    }

    // The same faults inside a gate configuration name the provider and field.
    let provider = |changes: Value| {
        let mut provider = json!({"algorithms": ["RS256"], "remote_jwks": {"http_uri": {"uri": "https://a/jwks"}}});
        for (name, value) in changes.as_object().expect("object") {
            provider[name] = value.clone();
        }
        json!({"providers": {"idp": provider}})
    };
    let cases = [
        (provider(json!({"audience": "x"})), "providers.idp.audience", "unknown field `audience`"),
        (provider(json!({"max_lifetime": "1 hour"})), "providers.idp.max_lifetime", "invalid duration"),
        (
            provider(json!({"remote_jwks": {"http_uri": {"uri": "https://a/jwks"}, "cache_duration": "10 minutes"}})),
            "providers.idp.remote_jwks.cache_duration",
            "invalid duration",
        ),
        (provider(json!({"algorithms": "RS256"})), "providers.idp.algorithms", "invalid type"),
        (json!({"providers": {}, "rules": [{"match": {"prefix": "/"}, "requires": {"provider": "idp"}}]}), "rules[0].requires", "unknown field"),
        (provider(json!({"subjects": [{"prefix": 1}]})), "providers.idp.subjects[0].prefix", "invalid type: integer, expected a string"),
        (provider(json!({"subjects": [{"starts_with": "u"}]})), "providers.idp.subjects[0].starts_with", "unknown variant `starts_with`"),
        (provider(json!({"subjects": ["user:"]})), "providers.idp.subjects[0]", "invalid type: string"),
        // An array is not an object, not even one with every member at its default.
        (json!({"providers": {}, "failure": []}), "failure", "invalid type: array, expected an object"),
    ];
    for (document, field, expected) in cases {
        let error = Gate::from_json(document.to_string().as_bytes()).expect_err("rejected");
        match &error {
            ConfigError::InvalidValue { field: actual, message } => {
                assert!(actual.starts_with(field), "{document}: field {actual}, expected {field}");
                assert!(message.contains(expected), "{document}: {message}");
            }
            other => panic!("{document}: expected an invalid value, got {other:?}"),
        }
    }
    assert!(matches!(Gate::from_json(b"{\"providers\": "), Err(ConfigError::Syntax { .. })));
    assert!(matches!(Gate::from_json(b"{\"providers\": {}} x"), Err(ConfigError::Syntax { .. })));
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

/// A gate configuration with one provider, `idp`.
fn gate(provider: &Value) -> Result<Gate, ConfigError> {
    Gate::from_json(json!({ "providers": { "idp": provider } }).to_string().as_bytes())
}

/// A provider that only introspects: it verifies no JWT.
fn introspection_only(changes: Value) -> Value {
    let mut provider = json!({
        "issuer": "https://as.example.com",
        "introspection": {
            "http_uri": { "uri": "https://as.example.com/introspect" },
            "client_id": "gate",
            "client_secret": "secret"
        }
    });
    for (name, value) in changes.as_object().expect("object") {
        provider[name] = value.clone();
    }
    provider
}

#[test]
fn gate_algorithms_optional_only_without_jwts() {
    let provider = introspection_only(json!({}));
    let compiled = gate(&provider).expect("an introspection-only provider needs no algorithms");
    assert!(matches!(compiled.providers[0].keys, KeySource::IntrospectionOnly));
    assert!(compiled.providers[0].policy.algorithms.is_empty());
    assert!(gate(&introspection_only(json!({"algorithms": []}))).is_ok(), "an empty list is still accepted");

    let local = json!({"local_jwks": {"inline": {"keys": [{"kty": "oct", "k": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}}});
    let mut empty = local.clone();
    empty["algorithms"] = json!([]);
    let mut after_jwt = introspection_only(local.clone());
    after_jwt["introspection"]["mode"] = json!("after_jwt");
    for (case, provider) in [("missing", local), ("empty", empty), ("after_jwt", after_jwt)] {
        let error = gate(&provider).expect_err(case);
        assert_eq!(error.code(), ErrorCode::ConfigInvalid, "{case}");
        let message = error.to_string();
        assert!(message.contains("`providers.idp.algorithms`") && message.contains("list at least one algorithm"), "{case}: {message}");
    }
}

#[test]
fn gate_introspection_only_rejects_jwt_checks() {
    let cases = [
        (json!({"token_type": "at+jwt"}), "providers.idp.token_type"),
        (json!({"token_type_claim": {"claim": "token_use", "value": "access"}}), "providers.idp.token_type_claim"),
        (json!({"profile": "rfc9068"}), "providers.idp.profile"),
    ];
    for (changes, field) in cases {
        let provider = introspection_only(changes.clone());
        let error = gate(&provider).expect_err(field);
        assert_eq!(error.code(), ErrorCode::ConfigInvalid, "{field}");
        let message = error.to_string();
        assert!(message.contains(&format!("`{field}`")), "{field}: {message}");
        assert!(message.contains("verifies no JWT"), "{field}: {message}");

        // With mode "after_jwt" the token is a JWT, and the same fields apply.
        let mut after_jwt = provider;
        after_jwt["introspection"]["mode"] = json!("after_jwt");
        after_jwt["algorithms"] = json!(["RS256"]);
        after_jwt["remote_jwks"] = json!({"http_uri": {"uri": "https://as.example.com/jwks"}});
        gate(&after_jwt).unwrap_or_else(|error| panic!("{changes} with after_jwt: {error}"));
    }
}
