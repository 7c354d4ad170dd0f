//! DPoP (RFC 9449) through the filter, with a token that oidc-provider bound to the
//! fixture's key: every rule of the proof and of the binding has a case that must fail.

use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use envoy_host::{Envoy, Outcome, Request, Response};
use portcullis::alg::Algorithm;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::common;
use crate::fixture::{code_of, config, forwarded, header, metric, options, reply, start, Authz};

const AUTHORITY: &str = "api.example.test";
const PATH: &str = "/orders";
const URL: &str = "http://api.example.test/orders";

fn now_seconds(envoy: &Envoy) -> i64 {
    i64::try_from(envoy.wall_seconds()).expect("seconds fit")
}

/// The parts of one proof; [`Proof::sign`] builds it.
struct Proof<'a> {
    jwk: &'a Value,
    alg: Algorithm,
    typ: &'a str,
    method: &'a str,
    url: &'a str,
    token: Option<&'a str>,
    iat: i64,
    jti: String,
    nonce: Option<&'a str>,
}

impl<'a> Proof<'a> {
    /// A proof that must pass for a GET of `URL` with `token` at `now`.
    fn new(jwk: &'a Value, token: &'a str, now: i64) -> Self {
        let jti = Base64UrlUnpadded::encode_string(&rand_bytes());
        Proof { jwk, alg: Algorithm::ES256, typ: "dpop+jwt", method: "GET", url: URL, token: Some(token), iat: now, jti, nonce: None }
    }

    fn sign(&self) -> String {
        let header = json!({ "typ": self.typ, "alg": self.alg.name(), "jwk": common::public_of(self.jwk) });
        let mut claims = json!({ "jti": self.jti, "htm": self.method, "htu": self.url, "iat": self.iat });
        if let Some(token) = self.token {
            claims["ath"] = json!(Base64UrlUnpadded::encode_string(&Sha256::digest(token.as_bytes())));
        }
        if let Some(nonce) = self.nonce {
            claims["nonce"] = json!(nonce);
        }
        common::sign_json(self.alg, self.jwk, &header, &claims)
    }
}

/// 16 bytes that differ between calls, for `jti` values.
fn rand_bytes() -> [u8; 16] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let digest = Sha256::digest(format!("{count}/{nanos}/{}", std::process::id()).as_bytes());
    digest[..16].try_into().unwrap()
}

fn dpop_request(token: &str, proof: Option<&str>) -> Request {
    let request = Request::get(AUTHORITY, PATH).header("authorization", &format!("DPoP {token}"));
    match proof {
        Some(proof) => request.header("dpop", proof),
        None => request,
    }
}

fn bearer_request(token: &str) -> Request {
    Request::get(AUTHORITY, PATH).header("authorization", &format!("Bearer {token}"))
}

fn dpop_provider(authz: &Authz, dpop: Value) -> Value {
    let mut provider = authz.remote_provider();
    provider["dpop"] = dpop;
    provider
}

fn host(authz: &Authz, dpop: Value, workers: usize) -> Envoy {
    let mut options = options(&config(dpop_provider(authz, dpop)), authz.clusters());
    options.workers = workers;
    start(options)
}

fn all_challenges(outcome: &Outcome) -> Vec<String> {
    match outcome {
        Outcome::LocalReply { headers, .. } => {
            headers.iter().filter(|(name, _)| name == "www-authenticate").map(|(_, value)| value.clone()).collect()
        }
        other => panic!("expected a local reply, got {other:?}"),
    }
}

#[track_caller]
fn assert_proof_rejected(outcome: &Outcome, fragment: &str, case: &str) {
    let (status, challenge, body) = reply(outcome);
    assert_eq!(status, 401, "{case}: {body}");
    assert_eq!(code_of(&body), "dpop_proof_invalid", "{case}: {body}");
    assert!(body.contains(fragment), "{case}: {body:?} lacks {fragment:?}");
    assert!(challenge.starts_with("DPoP realm=\""), "{case}: {challenge}");
    assert!(challenge.contains(r#"algs="ES256 RS256 PS256 EdDSA""#), "{case}: {challenge}");
    assert!(challenge.contains(r#"error="invalid_dpop_proof""#), "{case}: {challenge}");
}

#[test]
fn bound_token_with_proof_allowed() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = host(authz, json!({ "mode": "allowed" }), 1);
    let proof = Proof::new(&authz.dpop_jwk, token, now_seconds(&envoy)).sign();
    let outcome = envoy.send(0, dpop_request(token, Some(&proof)));
    let headers = forwarded(&outcome);
    assert_eq!(header(headers, "x-jwt-sub"), Some("alice"));
    assert_eq!(header(headers, "authorization"), None, "the credential is removed");
    assert_eq!(header(headers, "dpop"), None, "the proof is removed with it");
}

#[test]
fn bound_token_without_proof_rejected() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = host(authz, json!({}), 1);
    let outcome = envoy.send(0, dpop_request(token, None));
    assert_proof_rejected(&outcome, "no `DPoP` header", "no proof");
    let challenges = all_challenges(&outcome);
    assert_eq!(challenges.len(), 2, "DPoP and Bearer are both offered: {challenges:?}");
    assert!(challenges[1].starts_with("Bearer realm="), "{challenges:?}");
    assert!(!challenges[1].contains("error="), "{challenges:?}");
}

#[test]
fn bound_token_as_bearer_rejected() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = host(authz, json!({}), 1);
    let outcome = envoy.send(0, bearer_request(token));
    let (status, challenge, body) = reply(&outcome);
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "dpop_proof_invalid", "{body}");
    assert!(body.contains("bound to a key"), "{body}");
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert!(challenge.contains(r#"error="invalid_token""#), "{challenge}");
    let challenges = all_challenges(&outcome);
    assert!(challenges.iter().any(|value| value.starts_with("DPoP ") && value.contains("algs=")), "{challenges:?}");
}

#[test]
fn bound_token_rejected_without_dpop_settings() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = start(options(&config(authz.remote_provider()), authz.clusters()));
    let (status, _, body) = reply(&envoy.send(0, bearer_request(token)));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "dpop_proof_invalid", "{body}");
    assert!(body.contains("DPoP is not enabled"), "{body}");
    // The DPoP scheme is not read at all then.
    let proof = Proof::new(&authz.dpop_jwk, token, now_seconds(&envoy)).sign();
    let (status, _, body) = reply(&envoy.send(0, dpop_request(token, Some(&proof))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "token_missing", "{body}");
}

#[test]
fn unbound_bearer_token_still_allowed() {
    let authz = Authz::shared();
    let mut envoy = host(authz, json!({ "mode": "allowed" }), 1);
    let outcome = envoy.send(0, bearer_request(authz.token("valid")));
    assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"));
}

#[test]
fn required_mode_refuses_bearer() {
    let authz = Authz::shared();
    let mut envoy = host(authz, json!({ "mode": "required" }), 1);
    let outcome = envoy.send(0, bearer_request(authz.token("valid")));
    let (status, challenge, body) = reply(&outcome);
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "dpop_proof_invalid", "{body}");
    assert!(body.contains("requires DPoP"), "{body}");
    assert_eq!(all_challenges(&outcome).len(), 1, "only DPoP is offered");
    assert!(challenge.starts_with("DPoP realm="), "{challenge}");
    // No token at all: a DPoP challenge without an error.
    let outcome = envoy.send(0, Request::get(AUTHORITY, PATH));
    let (status, challenge, _) = reply(&outcome);
    assert_eq!(status, 401);
    assert!(challenge.starts_with("DPoP realm="), "{challenge}");
    assert!(!challenge.contains("error="), "{challenge}");
    // And the bound token with its proof passes.
    let token = authz.token("dpop");
    let proof = Proof::new(&authz.dpop_jwk, token, now_seconds(&envoy)).sign();
    forwarded(&envoy.send(0, dpop_request(token, Some(&proof))));
}

#[test]
fn each_proof_rule_has_a_failing_case() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = host(authz, json!({ "max_age": "60s" }), 1);
    let now = now_seconds(&envoy);
    let jwk = &authz.dpop_jwk;
    let other_key = common::private_jwk("K_EC_A");
    let cases: Vec<(&str, String, &str)> = vec![
        ("another URL", Proof { url: "http://api.example.test/admin", ..Proof::new(jwk, token, now) }.sign(), "`htu`"),
        ("another host", Proof { url: "http://evil.example.test/orders", ..Proof::new(jwk, token, now) }.sign(), "`htu`"),
        ("another scheme", Proof { url: "https://api.example.test/orders", ..Proof::new(jwk, token, now) }.sign(), "`htu`"),
        ("another method", Proof { method: "POST", ..Proof::new(jwk, token, now) }.sign(), "`htm`"),
        ("another key", Proof::new(&other_key, token, now).sign(), "not the key the access token is bound to"),
        ("iat too old", Proof { iat: now - 61, ..Proof::new(jwk, token, now) }.sign(), "`iat`"),
        ("iat in the future", Proof { iat: now + 61, ..Proof::new(jwk, token, now) }.sign(), "`iat`"),
        ("ath of another token", Proof { token: Some(authz.token("valid")), ..Proof::new(jwk, token, now) }.sign(), "`ath`"),
        ("no ath", Proof { token: None, ..Proof::new(jwk, token, now) }.sign(), "`ath`"),
        ("typ JWT", Proof { typ: "JWT", ..Proof::new(jwk, token, now) }.sign(), "`typ`"),
        ("empty jti", Proof { jti: String::new(), ..Proof::new(jwk, token, now) }.sign(), "`jti`"),
        ("symmetric alg", {
            let header = json!({ "typ": "dpop+jwt", "alg": "HS256", "jwk": { "kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" } });
            let claims = json!({ "jti": "x", "htm": "GET", "htu": URL, "iat": now });
            common::sign_json(Algorithm::HS256, &json!({ "kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0" }), &header, &claims)
        }, "not allowed"),
        ("tampered signature", crate::fixture::tamper_signature(&Proof::new(jwk, token, now).sign()), "signature"),
        ("not a JWT", String::from("not-a-proof"), "DPoP proof is invalid"),
    ];
    for (case, proof, fragment) in cases {
        assert_proof_rejected(&envoy.send(0, dpop_request(token, Some(&proof))), fragment, case);
    }
    let proof = Proof::new(jwk, token, now).sign();
    let twice = dpop_request(token, Some(&proof)).header("dpop", &proof);
    assert_proof_rejected(&envoy.send(0, twice), "more than one", "two DPoP headers");
    // The failures burned no `jti`: a good proof still passes.
    forwarded(&envoy.send(0, dpop_request(token, Some(&proof))));
    assert!(metric(&envoy, "portcullis.denied.dpop_proof_invalid") >= 15);
}

#[test]
fn proof_algorithm_outside_allowlist_rejected() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = host(authz, json!({ "algorithms": ["EdDSA"] }), 1);
    let proof = Proof::new(&authz.dpop_jwk, token, now_seconds(&envoy)).sign();
    let outcome = envoy.send(0, dpop_request(token, Some(&proof)));
    let (_, challenge, body) = reply(&outcome);
    assert!(body.contains("ES256") && body.contains("not allowed"), "{body}");
    assert!(challenge.contains(r#"algs="EdDSA""#), "{challenge}");
}

#[test]
fn replayed_proof_rejected_on_every_worker() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = host(authz, json!({}), 2);
    let proof = Proof::new(&authz.dpop_jwk, token, now_seconds(&envoy)).sign();
    forwarded(&envoy.send(0, dpop_request(token, Some(&proof))));
    assert_proof_rejected(&envoy.send(0, dpop_request(token, Some(&proof))), "used before", "replay on the same worker");
    assert_proof_rejected(&envoy.send(1, dpop_request(token, Some(&proof))), "used before", "replay on another worker");
    // A proof first used on worker 1 is a replay on worker 0.
    let second = Proof::new(&authz.dpop_jwk, token, now_seconds(&envoy)).sign();
    forwarded(&envoy.send(1, dpop_request(token, Some(&second))));
    assert_proof_rejected(&envoy.send(0, dpop_request(token, Some(&second))), "used before", "replay of worker 1's proof");
    let keys: Vec<String> = (0..12u64)
        .flat_map(|slot| (0..256u16).map(move |shard| format!("portcullis/dpop/replay/300/{slot}/{shard}")))
        .filter(|key| envoy.shared_data(key).is_some())
        .collect();
    assert!(!keys.is_empty() && keys.len() <= 2, "the proofs are in the shared replay ring: {keys:?}");
}

#[test]
fn replay_window_forgets_old_proofs_only_after_iat_window() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = host(authz, json!({ "max_age": "30s" }), 1);
    let proof = Proof::new(&authz.dpop_jwk, token, now_seconds(&envoy)).sign();
    forwarded(&envoy.send(0, dpop_request(token, Some(&proof))));
    envoy.advance(Duration::from_secs(20));
    assert_proof_rejected(&envoy.send(0, dpop_request(token, Some(&proof))), "used before", "inside the window");
    envoy.advance(Duration::from_secs(20));
    assert_proof_rejected(&envoy.send(0, dpop_request(token, Some(&proof))), "`iat`", "outside the window the iat check rejects it");
}

fn dpop_nonce(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::LocalReply { headers, .. } => header(headers, "dpop-nonce").map(str::to_string),
        other => panic!("expected a local reply, got {other:?}"),
    }
}

#[test]
fn nonce_required_then_accepted() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = host(authz, json!({ "nonce": { "enabled": true, "lifetime": "60s" } }), 2);
    // Worker 0 fetches the keys at start; worker 1 adopts them on its first request.
    envoy.run_until_idle(Duration::from_secs(5));
    let jwk = &authz.dpop_jwk;

    let outcome = envoy.send(0, dpop_request(token, Some(&Proof::new(jwk, token, now_seconds(&envoy)).sign())));
    let (status, challenge, body) = reply(&outcome);
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "dpop_nonce_required", "{body}");
    assert!(challenge.starts_with("DPoP realm="), "{challenge}");
    assert!(challenge.contains(r#"error="use_dpop_nonce""#), "{challenge}");
    let nonce = dpop_nonce(&outcome).expect("a DPoP-Nonce header");

    // The nonce works on the other worker too: the secret is shared.
    let proof = Proof { nonce: Some(&nonce), ..Proof::new(jwk, token, now_seconds(&envoy)) }.sign();
    let id = envoy.start_request(1, dpop_request(token, Some(&proof)));
    let outcome = envoy.wait(id);
    forwarded(&outcome);
    let response = envoy.respond(id, Response { status: 200, headers: Vec::new(), body: Vec::new() }).expect("a response");
    envoy.finish(id);
    assert_eq!(header(&response.headers, "dpop-nonce"), Some(nonce.as_str()), "every response carries the current nonce");

    let wrong = Proof { nonce: Some("bm90IGEgbm9uY2U"), ..Proof::new(jwk, token, now_seconds(&envoy)) }.sign();
    let (_, _, body) = reply(&envoy.send(0, dpop_request(token, Some(&wrong))));
    assert_eq!(code_of(&body), "dpop_nonce_required", "a nonce not issued here: {body}");

    // Two lifetimes later the nonce is stale.
    envoy.advance(Duration::from_secs(121));
    let stale = Proof { nonce: Some(&nonce), ..Proof::new(jwk, token, now_seconds(&envoy)) }.sign();
    let outcome = envoy.send(0, dpop_request(token, Some(&stale)));
    let (_, _, body) = reply(&outcome);
    assert_eq!(code_of(&body), "dpop_nonce_required", "stale nonce: {body}");
    assert_ne!(dpop_nonce(&outcome).as_deref(), Some(nonce.as_str()), "a new nonce is issued");
}

#[test]
fn configured_origin_used_for_htu() {
    let authz = Authz::shared();
    let token = authz.token("dpop");
    let mut envoy = host(authz, json!({ "origin": "https://api.example.com" }), 1);
    let now = now_seconds(&envoy);
    let external = Proof { url: "https://api.example.com/orders?page=1", ..Proof::new(&authz.dpop_jwk, token, now) }.sign();
    forwarded(&envoy.send(0, dpop_request(token, Some(&external))));
    let internal = Proof::new(&authz.dpop_jwk, token, now).sign();
    assert_proof_rejected(&envoy.send(0, dpop_request(token, Some(&internal))), "`htu`", "the URL behind the proxy");
}

#[test]
fn bad_dpop_configuration_rejected() {
    let authz = Authz::shared();
    let cases = [
        (json!({ "mode": "always" }), "dpop.mode"),
        (json!({ "algorithms": ["HS256"] }), "dpop.algorithms[0]"),
        (json!({ "algorithms": [] }), "dpop.algorithms"),
        (json!({ "max_age": "0s" }), "dpop.max_age"),
        (json!({ "nonce": { "enabled": true, "secret": "c2hvcnQ" } }), "dpop.nonce.secret"),
        (json!({ "origin": "https://api.example.com/base" }), "dpop.origin"),
        (json!({ "nonce": { "lifetime": "2h" } }), "dpop.nonce.lifetime"),
        (json!({ "unknown": 1 }), "unknown field `unknown`"),
    ];
    for (dpop, expected) in cases {
        let options = options(&config(dpop_provider(authz, dpop.clone())), authz.clusters());
        match Envoy::start(options) {
            Err(envoy_host::StartError::ConfigRejected { logs, .. }) => {
                assert!(logs.iter().any(|record| record.message.contains(expected)), "{dpop}: {logs:?}");
            }
            Err(other) => panic!("{dpop}: expected ConfigRejected, got {other}"),
            Ok(_) => panic!("{dpop}: accepted"),
        }
    }
}
