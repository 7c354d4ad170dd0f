//! Key-server faults and their expected behaviour. Cold: the fault is there from the start,
//! so no keys were ever fetched. Warm: keys were fetched, then the fault begins.
//!
//! | fault | cold | warm |
//! |---|---|---|
//! | connection refused, reset, 5xx | 401 `jwks_unavailable` | last keys serve for `stale_if_error` |
//! | garbage or empty key set, Istio's placeholder | 401 `jwks_unavailable` | last keys serve |
//! | 10 MB body | refused unread, 401 | last keys serve |
//! | slower than the timeout | 504 from the router, 401 | last keys serve |

use std::time::Duration;

use envoy_host::{CalloutFault, Envoy, Response};
use serde_json::json;

use crate::fixture::{code_of, config, forwarded, header, options, reply, request, start, warnings, Authz};

/// Istio's placeholder key set for a failed JWKS fetch: an RSA key whose modulus is the
/// text "Error-IstiodFailedToFetchJwksUri".
const ISTIO_PLACEHOLDER: &str =
    r#"{"keys":[{"e":"AQAB","kid":"abc","kty":"RSA","n":"RXJyb3ItSXN0aW9kRmFpbGVkVG9GZXRjaEp3a3NVcmk"}]}"#;

/// Growth of guest memory a request may cause for ordinary allocations; a body read into
/// the VM would take ten times more.
const GROWTH_ALLOWANCE: usize = 1024 * 1024;

fn respond(status: u16, body: impl Into<Vec<u8>>) -> CalloutFault {
    CalloutFault::Respond(Response { status, headers: Vec::new(), body: body.into() })
}

fn cold(authz: &Authz, fault: CalloutFault) -> Envoy {
    let mut options = options(&config(authz.remote_provider()), authz.clusters());
    options.callout_faults.insert(String::from("authz"), fault);
    start(options)
}

/// Starts a host whose keys were fetched, then expired (60 s) with `fault` on every
/// refresh.
fn warm(authz: &Authz, fault: CalloutFault) -> Envoy {
    let mut provider = authz.remote_provider();
    provider["remote_jwks"]["cache_duration"] = json!("60s");
    let mut envoy = start(options(&config(provider), authz.clusters()));
    forwarded(&envoy.send(0, request(Some(authz.token("valid")))));
    envoy.set_callout_fault("authz", Some(fault));
    for _ in 0..70 {
        envoy.advance(Duration::from_secs(1));
        envoy.run_until_idle(Duration::from_secs(5));
    }
    envoy
}

fn faults() -> Vec<(&'static str, CalloutFault, &'static str)> {
    vec![
        ("connection refused", CalloutFault::ConnectFailure, "status 503"),
        ("reset", CalloutFault::Reset, "could not be reached or reset"),
        ("status 500", respond(500, "oops"), "status 500"),
        ("garbage body", respond(200, "<html>not a key set</html>"), "key set is invalid"),
        ("empty key set", respond(200, r#"{"keys":[]}"#), "no usable signature key"),
        ("keys not an array", respond(200, r#"{"keys":{}}"#), "key set is invalid"),
        ("Istio placeholder", respond(200, ISTIO_PLACEHOLDER), "no usable signature key"),
        ("10 MB body", respond(200, vec![b' '; 10 * 1024 * 1024]), "more than the maximum"),
    ]
}

#[test]
fn cold_faults_fail_closed() {
    let authz = Authz::shared();
    for (name, fault, logged) in faults() {
        let mut envoy = cold(authz, fault);
        let memory_before = envoy.memory_bytes(0);
        let (status, challenge, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
        assert_eq!(status, 401, "{name}");
        assert_eq!(code_of(&body), "jwks_unavailable", "{name}: {body}");
        assert!(challenge.contains(r#"error="invalid_token""#), "{name}: {challenge}");
        let found = warnings(&envoy, logged);
        assert!(!found.is_empty(), "{name}: expected a warning with {logged:?}: {:?}", envoy.logs());
        assert!(found[0].contains("provider idp"), "{name}: {}", found[0]);
        assert!(envoy.memory_bytes(0) < memory_before + GROWTH_ALLOWANCE, "{name}: guest memory grew from {memory_before} to {}", envoy.memory_bytes(0));
        assert_eq!(envoy.failure(0), None, "{name}: the VM is alive");
    }
}

#[test]
fn warm_faults_keep_last_keys() {
    let authz = Authz::shared();
    for (name, fault, logged) in faults() {
        let mut envoy = warm(authz, fault);
        let memory_before = envoy.memory_bytes(0);
        let outcome = envoy.send(0, request(Some(authz.token("valid"))));
        assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"), "{name}");
        assert!(!warnings(&envoy, logged).is_empty(), "{name}: expected a warning with {logged:?}: {:?}", envoy.logs());
        assert!(!warnings(&envoy, "serving keys fetched").is_empty(), "{name}: stale keys are reported");
        assert!(envoy.memory_bytes(0) < memory_before + GROWTH_ALLOWANCE, "{name}: guest memory grew from {memory_before} to {}", envoy.memory_bytes(0));
        assert_eq!(envoy.failure(0), None, "{name}: the VM is alive");
    }
}

#[test]
fn slow_key_server_times_out() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider["remote_jwks"]["http_uri"]["timeout"] = json!("500ms");
    let mut options = options(&config(provider), authz.clusters());
    options.callout_faults.insert(String::from("authz"), CalloutFault::Delay(Duration::from_secs(3)));
    let mut envoy = start(options);
    let id = envoy.start_request(0, request(Some(authz.token("valid"))));
    envoy.run_until_idle(Duration::from_secs(5));
    assert_eq!(envoy.outcome(id), None, "waiting while the fetch runs");
    envoy.advance(Duration::from_millis(500));
    let (status, _, body) = reply(&envoy.wait(id));
    envoy.finish(id);
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "jwks_unavailable", "{body}");
    assert!(!warnings(&envoy, "status 504 (timed out)").is_empty(), "{:?}", envoy.logs());
    assert_eq!(envoy.callouts()[0].timeout, Duration::from_millis(500));
}

#[test]
fn unreachable_cluster_fails_closed() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    // A port nothing listens on: bind and drop a listener to find one.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let clusters = [(String::from("authz"), unused)].into_iter().collect();
    provider["remote_jwks"]["http_uri"]["uri"] = json!(format!("http://{unused}/jwks"));
    let mut envoy = start(options(&config(provider), clusters));
    let (status, _, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "jwks_unavailable", "{body}");
}

#[test]
fn unknown_cluster_fails_closed() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider["remote_jwks"]["http_uri"]["cluster"] = json!("no-such-cluster");
    let mut envoy = start(options(&config(provider), authz.clusters()));
    let (status, _, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "jwks_unavailable", "{body}");
    assert!(!warnings(&envoy, "the host refused the call to cluster \"no-such-cluster\"").is_empty(), "{:?}", envoy.logs());
}
