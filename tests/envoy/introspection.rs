//! Token introspection (RFC 7662) and revocation lists through the filter: opaque tokens
//! from oidc-provider introspected and revoked for real, responses shared by workers, and
//! endpoint failures; lists fetched on ticks and shared by workers.

use std::time::Duration;

use envoy_host::{CalloutFault, Envoy, Outcome, Response};
use serde_json::{json, Value};

use crate::fixture::{
    code_of, config, forwarded, header, local_provider, local_token, metric, now_seconds, options, paths_of, reply, request, start,
    tamper_signature, warnings, Authz,
};

/// Builds a provider that only introspects, through the cluster `authz`.
fn opaque_provider(authz: &Authz, cache_duration: &str) -> Value {
    json!({
        "issuer": authz.issuer,
        "audiences": [authz.opaque_audience],
        "scopes": { "all_of": ["api:read"] },
        "introspection": {
            "http_uri": { "uri": authz.introspection_endpoint, "cluster": "authz", "timeout": "2s" },
            "client_id": authz.api_client.0,
            "client_secret": authz.api_client.1,
            "cache_duration": cache_duration
        },
        "claim_to_headers": [
            { "header_name": "x-jwt-sub", "claim_name": "sub" },
            { "header_name": "x-jwt-scope", "claim_name": "scope" }
        ]
    })
}

fn host(authz: &Authz, provider: Value, workers: usize) -> Envoy {
    let mut options = options(&config(provider), authz.clusters());
    options.workers = workers;
    start(options)
}

/// Moves the clock in one-second steps and lets ticks and callouts run.
fn advance(envoy: &mut Envoy, total: Duration) {
    let mut moved = Duration::ZERO;
    while moved < total {
        envoy.advance(Duration::from_secs(1));
        envoy.run_until_idle(Duration::from_secs(5));
        moved += Duration::from_secs(1);
    }
}

fn introspections(envoy: &Envoy) -> usize {
    paths_of(envoy, "authz").iter().filter(|path| path.contains("introspection")).count()
}

#[track_caller]
fn assert_denied(outcome: &Outcome, code: &str, case: &str) {
    let (status, challenge, body) = reply(outcome);
    assert_eq!(status, 401, "{case}: {body}");
    assert_eq!(code_of(&body), code, "{case}: {body}");
    assert!(challenge.contains(r#"error="invalid_token""#), "{case}: {challenge}");
}

#[test]
fn revoked_opaque_token_rejected_within_cache_duration() {
    let mut authz = Authz::start();
    let token = authz.command("opaque")["token"].as_str().expect("token").to_string();
    let mut envoy = host(&authz, opaque_provider(&authz, "30s"), 2);

    let outcome = envoy.send(0, request(Some(&token)));
    let headers = forwarded(&outcome);
    assert_eq!(header(headers, "x-jwt-sub"), Some("alice"));
    assert!(header(headers, "x-jwt-scope").is_some_and(|scope| scope.contains("api:read")));
    assert_eq!(introspections(&envoy), 1);
    let call = envoy.callouts().into_iter().find(|call| call.cluster == "authz").expect("a callout");
    assert_eq!(header(&call.headers, ":method"), Some("POST"));
    assert!(header(&call.headers, "authorization").is_some_and(|value| value.starts_with("Basic ")));
    assert!(String::from_utf8_lossy(&call.body).starts_with("token="));

    // Cached on this worker, and shared with the other one.
    forwarded(&envoy.send(0, request(Some(&token))));
    forwarded(&envoy.send(1, request(Some(&token))));
    assert_eq!(introspections(&envoy), 1, "one call serves both workers");

    assert_eq!(authz.command(&format!("revoke {token}"))["event"], "revoked");
    forwarded(&envoy.send(1, request(Some(&token))));
    advance(&mut envoy, Duration::from_secs(31));
    for worker in 0..2 {
        assert_denied(&envoy.send(worker, request(Some(&token))), "token_inactive", &format!("revoked, worker {worker}"));
    }
    assert_eq!(metric(&envoy, "portcullis.provider.idp.introspection_success"), 2);
    crate::fixture::assert_not_logged(&envoy, &[&token, &authz.api_client.1]);
}

#[test]
fn unknown_opaque_token_inactive() {
    let authz = Authz::shared();
    let mut envoy = host(authz, opaque_provider(authz, "30s"), 1);
    assert_denied(&envoy.send(0, request(Some("never-issued-token"))), "token_inactive", "unknown token");
    assert_denied(&envoy.send(0, request(Some("never-issued-token"))), "token_inactive", "cached answer");
    assert_eq!(introspections(&envoy), 1, "inactive answers are cached too");
}

#[test]
fn opaque_token_checked_against_policy() {
    let authz = Authz::shared();
    let mut provider = opaque_provider(authz, "30s");
    provider["scopes"] = json!({ "all_of": ["api:admin"] });
    let mut envoy = host(authz, provider, 1);
    let (status, _, body) = reply(&envoy.send(0, request(Some(authz.token("opaque")))));
    assert_eq!(status, 403);
    assert_eq!(code_of(&body), "insufficient_scope", "{body}");

    let mut provider = opaque_provider(authz, "30s");
    provider["audiences"] = json!([authz.audience]);
    let mut envoy = host(authz, provider, 1);
    assert_denied(&envoy.send(0, request(Some(authz.token("opaque")))), "audience_invalid", "another audience");
}

#[test]
fn introspection_endpoint_down_fails_closed() {
    let authz = Authz::shared();
    let mut options = options(&config(opaque_provider(authz, "30s")), authz.clusters());
    options.callout_faults.insert(String::from("authz"), CalloutFault::ConnectFailure);
    let mut envoy = start(options);
    assert_denied(&envoy.send(0, request(Some(authz.token("opaque")))), "introspection_unavailable", "endpoint down");
    let logged = warnings(&envoy, "introspection failed");
    assert!(!logged.is_empty(), "no introspection warning: {:?}", envoy.logs());
    assert!(logged[0].contains("provider idp"), "{:?}", envoy.logs());
    // During the backoff the next request fails at once, without a call.
    let calls = introspections(&envoy);
    assert_denied(&envoy.send(0, request(Some(authz.token("opaque")))), "introspection_unavailable", "backing off");
    assert_eq!(introspections(&envoy), calls);
    assert_eq!(metric(&envoy, "portcullis.provider.idp.introspection_failed"), 1);
}

#[test]
fn stale_answer_serves_while_endpoint_fails() {
    let authz = Authz::shared();
    let mut provider = opaque_provider(authz, "10s");
    provider["introspection"]["stale_if_error"] = json!("30s");
    let mut envoy = host(authz, provider, 1);
    forwarded(&envoy.send(0, request(Some(authz.token("opaque")))));
    envoy.set_callout_fault("authz", Some(CalloutFault::Respond(Response { status: 500, headers: Vec::new(), body: b"oops".to_vec() })));
    advance(&mut envoy, Duration::from_secs(11));
    forwarded(&envoy.send(0, request(Some(authz.token("opaque")))));
    assert!(!warnings(&envoy, "status 500").is_empty(), "{:?}", envoy.logs());
    advance(&mut envoy, Duration::from_secs(31));
    assert_denied(&envoy.send(0, request(Some(authz.token("opaque")))), "introspection_unavailable", "stale window over");
}

/// The endpoint's answer for any token, as `opaque_provider` accepts it when `active`.
fn scripted_answer(authz: &Authz, active: bool) -> CalloutFault {
    let answer = if active {
        json!({
            "active": true,
            "iss": authz.issuer,
            "aud": authz.opaque_audience,
            "scope": "api:read",
            "sub": "alice",
            "exp": now_seconds() + 3600
        })
    } else {
        json!({ "active": false })
    };
    CalloutFault::Respond(Response { status: 200, headers: Vec::new(), body: answer.to_string().into_bytes() })
}

/// Once the endpoint works again, no worker keeps treating it as failing: a stale answer
/// is not served in place of asking, on the worker whose call recovered nor on the one
/// that only adopted the shared failure.
#[test]
fn stale_answers_stop_once_endpoint_recovers() {
    let authz = Authz::shared();
    let mut provider = opaque_provider(authz, "10s");
    provider["introspection"]["stale_if_error"] = json!("60s");
    let mut options = options(&config(provider), authz.clusters());
    options.workers = 2;
    options.callout_faults.insert(String::from("authz"), scripted_answer(authz, true));
    let mut envoy = start(options);
    let (first, second) = ("opaque-recovery-1", "opaque-recovery-2");
    forwarded(&envoy.send(0, request(Some(first))));
    forwarded(&envoy.send(0, request(Some(second))));

    // The endpoint fails: worker 0's call fails and the stale answer serves; worker 1
    // adopts the shared answer and the shared failure.
    let failure = Response { status: 500, headers: Vec::new(), body: b"oops".to_vec() };
    envoy.set_callout_fault("authz", Some(CalloutFault::Respond(failure)));
    advance(&mut envoy, Duration::from_secs(11));
    forwarded(&envoy.send(0, request(Some(first))));
    forwarded(&envoy.send(1, request(Some(second))));
    assert_eq!(metric(&envoy, "portcullis.provider.idp.introspection_failed"), 1);

    // The endpoint recovers. After the backoff, a stale answer is asked for again.
    envoy.set_callout_fault("authz", Some(scripted_answer(authz, true)));
    advance(&mut envoy, Duration::from_secs(3));
    forwarded(&envoy.send(0, request(Some(first))));
    assert_eq!(metric(&envoy, "portcullis.provider.idp.introspection_success"), 3, "the endpoint was asked again");

    // Both tokens are revoked. Once their answers are stale, the working endpoint is
    // asked on both workers, so the revocation takes effect.
    envoy.set_callout_fault("authz", Some(scripted_answer(authz, false)));
    advance(&mut envoy, Duration::from_secs(11));
    assert_denied(&envoy.send(0, request(Some(first))), "token_inactive", "worker whose call recovered");
    assert_denied(&envoy.send(1, request(Some(second))), "token_inactive", "worker that adopted the failure");
    assert_eq!(metric(&envoy, "portcullis.provider.idp.introspection_failed"), 1);

    // A new failure after the recovery backs off from the start (1 s, at most 1.2 s with
    // jitter), not as the second failure in a row (2 s): the old failure stays over.
    let failure = Response { status: 500, headers: Vec::new(), body: b"oops".to_vec() };
    envoy.set_callout_fault("authz", Some(CalloutFault::Respond(failure)));
    advance(&mut envoy, Duration::from_secs(1));
    assert_denied(&envoy.send(0, request(Some("opaque-recovery-3"))), "introspection_unavailable", "failing again");
    envoy.advance(Duration::from_millis(1500));
    envoy.run_until_idle(Duration::from_secs(5));
    let calls = introspections(&envoy);
    assert_denied(&envoy.send(0, request(Some("opaque-recovery-4"))), "introspection_unavailable", "after one backoff");
    assert_eq!(introspections(&envoy), calls + 1, "the backoff of a first failure is over after 1.5 s");
}

/// A call the host rejects (an unknown cluster) is logged and counted like one that failed
/// on the way, and so is a rejected revocation-list fetch.
#[test]
fn host_rejected_calls_logged_and_counted() {
    let authz = Authz::shared();
    let mut provider = opaque_provider(authz, "30s");
    provider["introspection"]["http_uri"]["cluster"] = json!("no-such-cluster");
    let mut envoy = start(options(&config(provider), authz.clusters()));
    assert_denied(&envoy.send(0, request(Some("opaque-refused"))), "introspection_unavailable", "call refused");
    let logged = warnings(&envoy, "introspection failed: the host refused the call to cluster \"no-such-cluster\"");
    assert_eq!(logged.len(), 1, "{:?}", envoy.logs());
    assert!(logged[0].contains("provider idp"), "{logged:?}");
    assert_eq!(metric(&envoy, "portcullis.provider.idp.introspection_failed"), 1);

    let mut provider = listed_provider("10s");
    provider["revocation_list"]["http_uri"]["cluster"] = json!("no-such-cluster");
    let mut envoy = start(options(&config(provider), authz.clusters()));
    let token = local_token(&json!({ "jti": "j-1" }));
    assert_denied(&envoy.send(0, request(Some(&token))), "revocation_list_unavailable", "fetch refused");
    assert!(!warnings(&envoy, "revocation list fetch failed: the host refused the call").is_empty(), "{:?}", envoy.logs());
    assert!(metric(&envoy, "portcullis.provider.idp.revocation_list_fetch_failed") >= 1);
}

#[test]
fn malformed_answers_fail_closed() {
    let authz = Authz::shared();
    let bodies: [&[u8]; 4] = [br#"{"active":"true"}"#, br#"{"exp":1}"#, b"not json", br#"{"active":true,"active":false}"#];
    for body in bodies {
        let mut options = options(&config(opaque_provider(authz, "30s")), authz.clusters());
        let response = Response { status: 200, headers: Vec::new(), body: body.to_vec() };
        options.callout_faults.insert(String::from("authz"), CalloutFault::Respond(response));
        let mut envoy = start(options);
        let case = String::from_utf8_lossy(body).into_owned();
        assert_denied(&envoy.send(0, request(Some(authz.token("opaque")))), "introspection_unavailable", &case);
    }
}

/// Builds a provider with the fixture's JWT keys that also introspects, through a cluster
/// whose responses the test sets, because oidc-provider does not introspect JWTs.
fn after_jwt_provider(authz: &Authz) -> Value {
    let mut provider = authz.remote_provider();
    provider["introspection"] = json!({
        "http_uri": { "uri": "http://introspect.test/introspect", "cluster": "introspect", "timeout": "2s" },
        "client_id": "gate",
        "client_secret": "gate-secret",
        "mode": "after_jwt",
        "cache_duration": "5s"
    });
    provider
}

fn after_jwt_host(authz: &Authz, answer: &Value) -> Envoy {
    let mut clusters = authz.clusters();
    clusters.insert(String::from("introspect"), clusters["authz"]);
    let mut options = options(&config(after_jwt_provider(authz)), clusters);
    let response = Response { status: 200, headers: Vec::new(), body: answer.to_string().into_bytes() };
    options.callout_faults.insert(String::from("introspect"), CalloutFault::Respond(response));
    start(options)
}

#[test]
fn after_jwt_mode_checks_both() {
    let authz = Authz::shared();
    let mut envoy = after_jwt_host(authz, &json!({ "active": true, "sub": "alice" }));
    let outcome = envoy.send(0, request(Some(authz.token("valid"))));
    assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"), "claims come from the JWT");
    assert_eq!(paths_of(&envoy, "introspect").len(), 1);
    // A JWT that fails locally is never sent to the endpoint.
    let tampered = tamper_signature(authz.token("valid"));
    let (_, _, body) = reply(&envoy.send(0, request(Some(&tampered))));
    assert_eq!(code_of(&body), "signature_invalid", "{body}");
    assert_eq!(paths_of(&envoy, "introspect").len(), 1);

    let mut envoy = after_jwt_host(authz, &json!({ "active": false }));
    assert_denied(&envoy.send(0, request(Some(authz.token("valid")))), "token_inactive", "revoked JWT");
}

#[test]
fn bad_introspection_configuration_rejected() {
    let authz = Authz::shared();
    let base = opaque_provider(authz, "30s");
    let cases = [
        ("/introspection/mode", json!("sometimes"), "introspection.mode"),
        ("/introspection/cache_duration", json!("0s"), "introspection.cache_duration"),
        ("/introspection/client_secret", json!(""), "introspection.client_secret"),
        ("/introspection/http_uri/cluster", Value::Null, "introspection.http_uri.cluster"),
        ("/remote_jwks", json!({ "http_uri": { "uri": authz.jwks_uri, "cluster": "authz" } }), "verifies no JWT"),
        ("/token_type", json!("at+jwt"), "providers.idp.token_type"),
        ("/token_type_claim", json!({ "claim": "token_use", "value": "access" }), "providers.idp.token_type_claim"),
        ("/profile", json!("rfc9068"), "providers.idp.profile"),
    ];
    for (pointer, value, expected) in cases {
        let mut provider = base.clone();
        match (value.is_null(), pointer.rsplit_once('/')) {
            (true, Some((parent, name))) => {
                provider.pointer_mut(parent).and_then(Value::as_object_mut).expect("parent").remove(name);
            }
            (false, Some((parent, name))) => {
                let parent = if parent.is_empty() { &mut provider } else { provider.pointer_mut(parent).expect("parent") };
                parent[name] = value.clone();
            }
            (_, None) => unreachable!("pointers start with `/`"),
        }
        match Envoy::start(options(&config(provider.clone()), authz.clusters())) {
            Err(envoy_host::StartError::ConfigRejected { logs, .. }) => {
                assert!(logs.iter().any(|record| record.message.contains(expected)), "{pointer}: {logs:?}");
            }
            Err(other) => panic!("{pointer}: expected ConfigRejected, got {other}"),
            Ok(_) => panic!("{pointer}: accepted: {provider}"),
        }
    }
    // An introspection-only provider may list algorithms; they go unused.
    let mut provider = base;
    provider["algorithms"] = json!(["RS256"]);
    assert!(Envoy::start(options(&config(provider), authz.clusters())).is_ok());
}

/// Builds a provider with the committed local keys and a revocation list served through
/// `lists`.
fn listed_provider(cache_duration: &str) -> Value {
    local_provider(&json!({
        "revocation_list": {
            "http_uri": { "uri": "http://lists.test/revoked.json", "cluster": "lists", "timeout": "1s" },
            "cache_duration": cache_duration
        },
        "claim_to_headers": [{ "header_name": "x-jwt-sub", "claim_name": "sub" }]
    }))
}

fn list_response(jtis: &[&str]) -> CalloutFault {
    CalloutFault::Respond(Response { status: 200, headers: Vec::new(), body: json!({ "revoked": jtis }).to_string().into_bytes() })
}

fn list_host(authz: &Authz, cache_duration: &str, workers: usize, list: CalloutFault) -> Envoy {
    let mut clusters = authz.clusters();
    clusters.insert(String::from("lists"), clusters["authz"]);
    let mut options = options(&config(listed_provider(cache_duration)), clusters);
    options.workers = workers;
    options.callout_faults.insert(String::from("lists"), list);
    start(options)
}

#[test]
fn listed_jti_rejected() {
    let authz = Authz::shared();
    let revoked = local_token(&json!({ "jti": "revoked-1" }));
    let unlisted = local_token(&json!({ "jti": "kept-1" }));
    let mut envoy = list_host(authz, "60s", 3, list_response(&["revoked-1", "other"]));
    for worker in 0..3 {
        assert_denied(&envoy.send(worker, request(Some(&revoked))), "token_revoked", &format!("worker {worker}"));
        assert_eq!(header(forwarded(&envoy.send(worker, request(Some(&unlisted)))), "x-jwt-sub"), Some("user-123"));
    }
    assert_eq!(paths_of(&envoy, "lists").len(), 1, "one fetch serves every worker");
    assert_eq!(metric(&envoy, "portcullis.provider.idp.revocation_list_fetch_success"), 1);
    let no_jti = local_token(&json!({ "jti": null }));
    let (_, _, body) = reply(&envoy.send(0, request(Some(&no_jti))));
    assert_eq!(code_of(&body), "claim_missing", "a token without jti cannot be checked: {body}");
}

#[test]
fn list_refreshed_on_ticks() {
    let authz = Authz::shared();
    let token = local_token(&json!({ "jti": "later-revoked" }));
    let mut envoy = list_host(authz, "60s", 2, list_response(&[]));
    // Worker 0 fetches at start; worker 1 adopts the published list on its first request.
    envoy.run_until_idle(Duration::from_secs(5));
    forwarded(&envoy.send(1, request(Some(&token))));
    envoy.set_callout_fault("lists", Some(list_response(&["later-revoked"])));
    // The refresh starts in the last tenth of the cache duration: 54 s after the fetch.
    advance(&mut envoy, Duration::from_secs(53));
    forwarded(&envoy.send(0, request(Some(&token))));
    advance(&mut envoy, Duration::from_secs(2));
    for worker in 0..2 {
        assert_denied(&envoy.send(worker, request(Some(&token))), "token_revoked", &format!("after the refresh, worker {worker}"));
    }
    assert_eq!(paths_of(&envoy, "lists").len(), 2, "one refresh, on a tick, for both workers");
}

#[test]
fn list_server_down_fails_closed_then_stale_serves() {
    let authz = Authz::shared();
    let token = local_token(&json!({ "jti": "j-1" }));
    let mut cold = list_host(authz, "10s", 1, CalloutFault::ConnectFailure);
    assert_denied(&cold.send(0, request(Some(&token))), "revocation_list_unavailable", "no list yet");
    assert!(!warnings(&cold, "revocation list fetch failed").is_empty(), "{:?}", cold.logs());

    let mut warm = list_host(authz, "10s", 1, list_response(&[]));
    forwarded(&warm.send(0, request(Some(&token))));
    warm.set_callout_fault("lists", Some(CalloutFault::ConnectFailure));
    advance(&mut warm, Duration::from_secs(15));
    forwarded(&warm.send(0, request(Some(&token))));
}

#[test]
fn invalid_list_rejected() {
    let authz = Authz::shared();
    let token = local_token(&json!({ "jti": "j-1" }));
    let garbage = CalloutFault::Respond(Response { status: 200, headers: Vec::new(), body: br#"{"revoked":"j-1"}"#.to_vec() });
    let mut envoy = list_host(authz, "10s", 1, garbage);
    assert_denied(&envoy.send(0, request(Some(&token))), "revocation_list_unavailable", "a list that is not an array");
    assert!(!warnings(&envoy, "must be an array").is_empty(), "{:?}", envoy.logs());
}
