//! Metrics and logs: counters per provider and per code, one debug line per decision,
//! warnings naming the provider, and no token anywhere.

use envoy_host::{LogLevel, Request};
use serde_json::json;

use crate::fixture::{assert_not_logged, config, forwarded, metric, options, reply, request, start, Authz};

#[test]
fn counters_per_provider_and_code() {
    let authz = Authz::shared();
    let mut gate = config(authz.remote_provider());
    gate["rules"] = json!([{ "match": { "prefix": "/public" } }, { "match": { "prefix": "/" }, "requires": { "provider_name": "idp" } }]);
    let mut envoy = start(options(&gate, authz.clusters()));
    forwarded(&envoy.send(0, request(Some(authz.token("valid")))));
    forwarded(&envoy.send(0, request(Some(authz.token("valid")))));
    forwarded(&envoy.send(0, Request::get("api.test", "/public")));
    reply(&envoy.send(0, request(Some(authz.token("wrongAudience")))));
    reply(&envoy.send(0, request(None)));
    reply(&envoy.send(0, request(None).header("authorization", "Bearer a b")));

    let expected = [
        ("portcullis.allowed", 3),
        ("portcullis.provider.idp.allowed", 2),
        ("portcullis.denied", 3),
        ("portcullis.denied.audience_invalid", 1),
        ("portcullis.denied.token_missing", 1),
        ("portcullis.denied.authorization_malformed", 1),
        ("portcullis.provider.idp.denied", 3),
        ("portcullis.provider.idp.denied.audience_invalid", 1),
        ("portcullis.provider.idp.denied.token_missing", 1),
        ("portcullis.provider.idp.jwks_fetch_success", 1),
        ("portcullis.provider.idp.jwks_fetch_failed", 0),
        ("portcullis.jwt_cache_hit", 1),
        ("portcullis.jwt_cache_miss", 2),
    ];
    for (name, count) in expected {
        assert_eq!(metric(&envoy, name), count, "{name}: {:?}", envoy.metrics());
    }
    for name in envoy.metrics().keys() {
        assert!(name.starts_with("portcullis."), "{name}");
    }
}

#[test]
fn one_debug_line_per_decision() {
    let authz = Authz::shared();
    let mut envoy = start(options(&config(authz.remote_provider()), authz.clusters()));
    envoy.run_until_idle(std::time::Duration::from_secs(5));
    envoy.drain_logs();
    let tokens: Vec<&str> = authz.tokens.values().map(String::as_str).collect();
    let cases = [
        (request(Some(authz.token("valid"))), "portcullis: allowed reason=verified providers=idp path=/orders"),
        (request(Some(authz.token("wrongIssuer"))), "portcullis: denied status=401 code=issuer_invalid provider=idp path=/orders: "),
        (request(None), "portcullis: denied status=401 code=token_missing provider=idp path=/orders: "),
    ];
    for (request, expected) in cases {
        envoy.send(0, request);
        let lines: Vec<String> = envoy
            .drain_logs()
            .into_iter()
            .filter(|record| record.level == LogLevel::Debug && record.message.starts_with("portcullis: "))
            .map(|record| record.message)
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with(expected), "{}", lines[0]);
    }
    // A token in the query string is kept out of the logged path.
    let token = authz.token("valid");
    envoy.send(0, Request::get("api.test", &format!("/orders?access_token={token}")));
    assert_not_logged(&envoy, &tokens);
}
