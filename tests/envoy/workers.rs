//! Keys across workers: one fetch for all VMs, background refresh, refetch on an unknown
//! `kid` with a shared cooldown, stale-if-error, failing closed, backoff, and paused
//! requests resumed on every worker.

use std::time::Duration;

use envoy_host::{CalloutFault, Envoy, Outcome};
use portcullis::alg::Algorithm;
use serde_json::{json, Value};

use crate::common;
use crate::fixture::{code_of, config, header, metric, options, paths_of, reply, request, start, warnings, Authz};

fn host(authz: &Authz, provider: Value, workers: usize) -> Envoy {
    host_with_fault(authz, provider, workers, None)
}

/// Starts a host whose callouts to the key server see `fault` from the start.
fn host_with_fault(authz: &Authz, provider: Value, workers: usize, fault: Option<CalloutFault>) -> Envoy {
    let mut options = options(&config(provider), authz.clusters());
    options.workers = workers;
    options.callout_faults = fault.into_iter().map(|fault| (String::from("authz"), fault)).collect();
    start(options)
}

fn fetches(envoy: &Envoy) -> usize {
    paths_of(envoy, "authz").len()
}

/// Moves the clock in 100 ms steps (the filter's tick while busy) and lets callouts land.
fn advance(envoy: &mut Envoy, total: Duration) {
    let step = Duration::from_millis(100);
    let mut moved = Duration::ZERO;
    while moved < total {
        envoy.advance(step);
        envoy.run_until_idle(Duration::from_secs(5));
        moved += step;
    }
}

fn assert_allowed(outcome: &Outcome, case: &str) {
    match outcome {
        Outcome::Forwarded { headers, .. } => assert_eq!(header(headers, "x-jwt-sub"), Some("alice"), "{case}"),
        other => panic!("{case}: expected the request to be forwarded, got {other:?}"),
    }
}

fn assert_denied(outcome: &Outcome, code: &str, case: &str) {
    let (status, _, body) = reply(outcome);
    assert_eq!(status, 401, "{case}");
    assert_eq!(code_of(&body), code, "{case}: {body}");
}

#[test]
fn concurrent_first_requests_one_fetch() {
    let authz = Authz::shared();
    let mut envoy = host(authz, authz.remote_provider(), 3);
    let ids: Vec<_> = (0..3).map(|worker| envoy.start_request(worker, request(Some(authz.token("valid"))))).collect();
    for id in &ids {
        assert_eq!(envoy.outcome(*id), None, "every first request waits for the keys");
    }
    // Worker 0 fetched; the others find the keys in shared data on their next tick.
    envoy.run_until_idle(Duration::from_secs(5));
    advance(&mut envoy, Duration::from_millis(200));
    for (worker, id) in ids.into_iter().enumerate() {
        assert_allowed(&envoy.wait(id), &format!("worker {worker}"));
        envoy.finish(id);
    }
    assert_eq!(fetches(&envoy), 1, "one fetch serves every worker");
    assert_eq!(metric(&envoy, "portcullis.provider.idp.jwks_fetch_success"), 1);
    assert_eq!(metric(&envoy, "portcullis.provider.idp.allowed"), 3);
}

#[test]
fn refreshed_in_background_before_expiry() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider["remote_jwks"]["cache_duration"] = json!("60s");
    let mut envoy = host(authz, provider, 2);
    envoy.run_until_idle(Duration::from_secs(5));
    assert_eq!(fetches(&envoy), 1);
    // The refresh window opens 6 s (a tenth of the duration) before expiry.
    advance(&mut envoy, Duration::from_secs(53));
    assert_eq!(fetches(&envoy), 1, "no refresh before the window");
    advance(&mut envoy, Duration::from_secs(2));
    assert_eq!(fetches(&envoy), 2, "one refresh, on a tick, for both workers");
    advance(&mut envoy, Duration::from_secs(10));
    for worker in 0..2 {
        let id = envoy.start_request(worker, request(Some(authz.token("valid"))));
        assert!(envoy.outcome(id).is_some(), "worker {worker}: keys are fresh, so the request is decided at once");
        assert_allowed(&envoy.wait(id), &format!("worker {worker}"));
        envoy.finish(id);
    }
    assert_eq!(fetches(&envoy), 2);
}

/// Signs a token with a `kid` that no key set has.
fn unknown_kid_token(kid: &str) -> String {
    let header = json!({ "alg": "RS256", "kid": kid, "typ": "at+jwt" });
    common::sign_json(Algorithm::RS256, &common::private_jwk("K_ATK_RSA"), &header, &json!({ "sub": "x" }))
}

#[test]
fn unknown_kid_refetch_shared_cooldown() {
    let mut authz = Authz::start();
    let mut provider = authz.remote_provider();
    provider["remote_jwks"]["refetch_cooldown"] = json!("30s");
    let mut envoy = host(&authz, provider, 3);
    for worker in 0..3 {
        assert_allowed(&envoy.send(worker, request(Some(authz.token("valid")))), "before rotation");
    }
    assert_eq!(fetches(&envoy), 1);

    // R1: the issuer publishes a new key and signs with it; the first token naming it
    // triggers one refetch.
    let rotated = authz.command("rotate");
    let new_token = rotated["tokens"]["valid"].as_str().unwrap().to_string();
    assert_allowed(&envoy.send(1, request(Some(&new_token))), "new kid on worker 1");
    assert_eq!(fetches(&envoy), 2, "one refetch for the unknown kid");
    // Worker 2 has not ticked yet: it adopts worker 1's keys instead of fetching.
    assert_allowed(&envoy.send(2, request(Some(&new_token))), "new kid on worker 2");
    assert_allowed(&envoy.send(0, request(Some(authz.token("valid")))), "old kid still published");
    assert_eq!(fetches(&envoy), 2);

    // R2: many unknown kids within the cooldown trigger no fetch on any worker.
    advance(&mut envoy, Duration::from_secs(1));
    for index in 0..30 {
        let outcome = envoy.send(index % 3, request(Some(&unknown_kid_token(&format!("random-{index}")))));
        assert_denied(&outcome, "key_not_found", &format!("random kid {index}"));
    }
    assert_eq!(fetches(&envoy), 2, "no refetch inside the cooldown, whichever worker asks");
    // After the cooldown one more refetch is granted, to one worker only.
    advance(&mut envoy, Duration::from_secs(30));
    for index in 0..6 {
        let outcome = envoy.send(index % 3, request(Some(&unknown_kid_token("random-late"))));
        assert_denied(&outcome, "key_not_found", "random kid after the cooldown");
    }
    assert_eq!(fetches(&envoy), 3);

    // R5: once the old key is retired and the keys refreshed, old tokens fail, even the
    // ones in the verified-token cache.
    authz.command("retire");
    advance(&mut envoy, Duration::from_secs(300));
    for worker in 0..3 {
        assert_denied(&envoy.send(worker, request(Some(authz.token("valid")))), "key_not_found", &format!("retired key, worker {worker}"));
        assert_allowed(&envoy.send(worker, request(Some(&new_token))), &format!("new key, worker {worker}"));
    }
}

#[test]
fn stale_keys_serve_then_fail_closed() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider["remote_jwks"]["cache_duration"] = json!("60s");
    provider["remote_jwks"]["stale_if_error"] = json!("120s");
    let mut envoy = host(authz, provider, 2);
    assert_allowed(&envoy.send(0, request(Some(authz.token("valid")))), "fresh keys");

    envoy.set_callout_fault("authz", Some(CalloutFault::ConnectFailure));
    advance(&mut envoy, Duration::from_secs(61));
    for worker in 0..2 {
        assert_allowed(&envoy.send(worker, request(Some(authz.token("valid")))), &format!("stale keys, worker {worker}"));
    }
    assert!(metric(&envoy, "portcullis.provider.idp.jwks_stale_in_use") >= 2);
    assert!(metric(&envoy, "portcullis.provider.idp.jwks_fetch_failed") >= 1);
    let stale = warnings(&envoy, "serving keys fetched");
    assert!(!stale.is_empty(), "{:?}", envoy.logs());
    assert!(stale[0].contains("provider idp"), "{}", stale[0]);

    advance(&mut envoy, Duration::from_secs(120));
    for worker in 0..2 {
        assert_denied(&envoy.send(worker, request(Some(authz.token("valid")))), "jwks_unavailable", &format!("grace over, worker {worker}"));
    }

    // The endpoint recovers: the next retry (at most the 5 min backoff cap away) restores
    // service on both workers.
    envoy.set_callout_fault("authz", None);
    advance(&mut envoy, Duration::from_secs(301));
    for worker in 0..2 {
        assert_allowed(&envoy.send(worker, request(Some(authz.token("valid")))), &format!("recovered, worker {worker}"));
    }
}

#[test]
fn down_at_start_backs_off_with_jitter() {
    let authz = Authz::shared();
    let mut envoy = host_with_fault(authz, authz.remote_provider(), 2, Some(CalloutFault::ConnectFailure));
    envoy.run_until_idle(Duration::from_secs(5));
    assert_eq!(fetches(&envoy), 1, "the fetch at configuration time failed");
    let started = envoy.now();
    advance(&mut envoy, Duration::from_secs(40));
    let times: Vec<Duration> = envoy.callouts().iter().skip(1).map(|call| call.time - started).collect();
    let gaps: Vec<f64> = times.windows(2).map(|pair| (pair[1] - pair[0]).as_secs_f64()).collect();
    assert!(gaps.len() >= 3, "retries: {times:?}");
    for (index, gap) in gaps.iter().enumerate() {
        // After the first retry, 2 s, 4 s, 8 s, ... plus up to 20 % jitter and up to one
        // idle tick (1 s), since retries start on ticks.
        let base = f64::from(2u32 << index);
        assert!(*gap >= base, "retry {index} after {gap} s, before the backoff; all: {gaps:?}");
        assert!(*gap <= base * 1.2 + 1.05, "retry {index} after {gap} s, past backoff and jitter; all: {gaps:?}");
    }
    // Both workers reply at once instead of waiting for keys.
    for worker in 0..2 {
        let id = envoy.start_request(worker, request(Some(authz.token("valid"))));
        let outcome = envoy.outcome(id).expect("decided without waiting");
        assert_denied(&outcome, "jwks_unavailable", &format!("worker {worker}"));
        envoy.finish(id);
    }
    envoy.set_callout_fault("authz", None);
    advance(&mut envoy, Duration::from_secs(40));
    assert_allowed(&envoy.send(1, request(Some(authz.token("valid")))), "first success restores service");
}

#[test]
fn paused_request_answered_after_timeout() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider["remote_jwks"]["http_uri"]["timeout"] = json!("5s");
    provider["remote_jwks"]["pending_timeout"] = json!("1s");
    let mut envoy = host_with_fault(authz, provider, 2, Some(CalloutFault::Delay(Duration::from_secs(30))));
    // Worker 0 fetches; worker 1 waits for keys it does not fetch itself.
    let waiting = envoy.start_request(1, request(Some(authz.token("valid"))));
    assert_eq!(envoy.outcome(waiting), None);
    advance(&mut envoy, Duration::from_millis(900));
    assert_eq!(envoy.outcome(waiting), None, "still waiting before the pending timeout");
    advance(&mut envoy, Duration::from_millis(200));
    let outcome = envoy.outcome(waiting).expect("answered after the pending timeout");
    envoy.finish(waiting);
    assert_denied(&outcome, "jwks_unavailable", "pending timeout");
    // The fetch itself times out at 5 s; the worker that made it reports the 504.
    advance(&mut envoy, Duration::from_secs(5));
    assert!(!warnings(&envoy, "status 504 (timed out)").is_empty(), "{:?}", envoy.logs());
}

#[test]
fn paused_requests_resumed_on_other_workers() {
    let authz = Authz::shared();
    let mut envoy = host_with_fault(authz, authz.remote_provider(), 2, Some(CalloutFault::Delay(Duration::from_millis(500))));
    let id = envoy.start_request(1, request(Some(authz.token("valid"))));
    assert_eq!(envoy.outcome(id), None);
    envoy.run_until_idle(Duration::from_secs(5));
    advance(&mut envoy, Duration::from_millis(700));
    let outcome = envoy.outcome(id).expect("resumed by a tick on worker 1");
    assert_allowed(&outcome, "worker 1");
    envoy.finish(id);
    assert_eq!(fetches(&envoy), 1);
    assert!(envoy.callouts().iter().all(|call| call.worker == 0), "worker 1 never fetched");
}
