#![cfg(not(target_arch = "wasm32"))]
//! The Envoy filter in the proxy-wasm stand-in, with tokens from a real oidc-provider.
//!
//! Needs the filter built (`make filter`) and js/node_modules installed (`npm ci` in js/).
//! Tests that do not rotate keys share one token fixture ([`fixture::Authz::shared`]).

#[path = "../common/mod.rs"]
mod common;
mod crosscheck;
mod dpop;
mod examples;
mod faults;
mod features;
mod fixture;
mod introspection;
mod observability;
mod replies;
mod rules;
mod soak;
mod workers;

use std::time::Duration;

use base64ct::{Base64UrlUnpadded, Encoding};
use envoy_host::{Outcome, StartError};
use fixture::{code_of, config, forwarded, header, reply, request, start, Authz};
use serde_json::{json, Value};

fn tampered(token: &str) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut claims: Value = serde_json::from_slice(&Base64UrlUnpadded::decode_vec(&parts[1]).unwrap()).unwrap();
    claims["scope"] = json!("openid api:read api:admin");
    parts[1] = Base64UrlUnpadded::encode_string(claims.to_string().as_bytes());
    parts.join(".")
}

fn alg_none(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let header = Base64UrlUnpadded::encode_string(br#"{"alg":"none","typ":"at+jwt"}"#);
    format!("{header}.{payload}.")
}

#[test]
fn demo_rows_through_filter() {
    let authz = Authz::shared();
    let mut envoy = start(fixture::options(&config(authz.remote_provider()), authz.clusters()));

    let outcome = envoy.send(0, request(Some(authz.token("valid"))));
    let headers = forwarded(&outcome);
    assert_eq!(header(headers, "x-jwt-sub"), Some("alice"));
    assert_eq!(header(headers, "x-jwt-scope"), Some("api:read"));
    assert_eq!(header(headers, "authorization"), None, "the credential is not forwarded by default");
    assert_eq!(headers.iter().filter(|(name, _)| name == "x-jwt-sub").count(), 1, "the spoofed header is gone");

    let cases = [
        ("tampered", tampered(authz.token("valid")), "signature_invalid"),
        ("wrong audience", authz.token("wrongAudience").to_string(), "audience_invalid"),
        ("wrong issuer", authz.token("wrongIssuer").to_string(), "issuer_invalid"),
        ("alg none", alg_none(authz.token("valid")), "algorithm_not_allowed"),
    ];
    for (name, token, code) in cases {
        let (status, challenge, body) = reply(&envoy.send(0, request(Some(&token))));
        assert_eq!(status, 401, "{name}");
        assert_eq!(code_of(&body), code, "{name}: {body}");
        assert!(challenge.starts_with("Bearer realm=\""), "{name}: {challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{name}: {challenge}");
        assert!(!challenge.contains(&token), "{name}: the token is never echoed");
        assert!(!body.contains(&token), "{name}: the token is never echoed");
    }

    let (status, challenge, body) = reply(&envoy.send(0, request(None)));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "token_missing");
    assert!(!challenge.contains("error="), "no error attribute without credentials: {challenge}");

    // The manual clock moves past `exp` (one hour) plus the 60 s default leeway.
    envoy.advance(Duration::from_secs(3600 + 61));
    let (status, _, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "token_expired", "{body}");

    let logs = envoy.logs();
    for token in authz.tokens.values() {
        assert!(logs.iter().all(|record| !record.message.contains(token.as_str())), "logs never contain tokens");
    }
}

#[test]
fn es256_token_verifies() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider["audiences"] = json!(["https://es.portcullis.test"]);
    let mut envoy = start(fixture::options(&config(provider), authz.clusters()));
    let outcome = envoy.send(0, request(Some(authz.token("es256"))));
    assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"));
}

#[test]
fn request_paused_until_keys_arrive() {
    let authz = Authz::shared();
    let mut envoy = start(fixture::options(&config(authz.remote_provider()), authz.clusters()));
    // The fetch started in on_configure has not been answered: the host delivers callout
    // responses only while it pumps events.
    let id = envoy.start_request(0, request(Some(authz.token("valid"))));
    assert_eq!(envoy.outcome(id), None, "the request waits for the key set");
    let outcome = envoy.wait(id);
    assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"));
    envoy.finish(id);
    let fetches = envoy.callouts().iter().filter(|call| call.cluster == "authz").count();
    assert_eq!(fetches, 1, "one fetch serves the waiting request");
}

#[test]
fn workers_share_one_fetch() {
    let authz = Authz::shared();
    let mut options = fixture::options(&config(authz.remote_provider()), authz.clusters());
    options.workers = 3;
    let mut envoy = start(options);
    for worker in 0..3 {
        let outcome = envoy.send(worker, request(Some(authz.token("valid"))));
        assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"), "worker {worker}");
    }
    let fetches = envoy.callouts().len();
    assert_eq!(fetches, 1, "the first worker's fetch is shared through shared data");
}

#[test]
fn key_server_down_fails_closed() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    // A port nothing listens on: bind and drop a listener to find one.
    let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let clusters = [(String::from("authz"), unused)].into_iter().collect();
    provider["remote_jwks"]["http_uri"]["uri"] = json!(format!("http://{unused}/jwks"));
    let mut envoy = start(fixture::options(&config(provider), clusters));
    let (status, challenge, body) = reply(&envoy.send(0, request(Some(authz.token("valid")))));
    assert_eq!(status, 401);
    assert_eq!(code_of(&body), "jwks_unavailable", "{body}");
    assert!(challenge.contains("error=\"invalid_token\""));
    let warnings: Vec<_> = envoy.logs().into_iter().filter(|record| record.message.contains("key set fetch failed")).collect();
    assert!(!warnings.is_empty(), "a fetch failure is logged as a warning naming the provider");
    assert!(warnings[0].message.contains("provider idp"));
}

#[test]
fn bad_configuration_rejected_with_field() {
    let authz = Authz::shared();
    let cases = [
        (json!({ "providers": {} }), "providers"),
        (json!({ "providers": { "idp": { "algorithms": ["none"], "local_jwks": { "inline": authz.jwks } } } }), "providers.idp.algorithms[0]"),
        (json!({ "providers": { "idp": { "algorithms": ["RS256"], "audience": "x", "local_jwks": { "inline": authz.jwks } } } }), "unknown field `audience`"),
        (json!({ "providers": { "idp": { "algorithms": ["RS256"], "remote_jwks": { "http_uri": { "uri": authz.jwks_uri } } } } }), "cluster"),
        (json!({ "providers": { "idp": { "algorithms": ["RS256"], "local_jwks": { "inline_string": "not json" } } } }), "providers.idp.local_jwks"),
        (json!("not an object"), "configuration is invalid"),
    ];
    for (config, expected) in cases {
        let options = fixture::options(&config, authz.clusters());
        match envoy_host::Envoy::start(options) {
            Err(StartError::ConfigRejected { logs, .. }) => {
                assert!(logs.iter().any(|record| record.message.contains(expected)), "{config}: {logs:?}");
            }
            Err(other) => panic!("{config}: expected ConfigRejected, got {other}"),
            Ok(envoy) => panic!("{config}: accepted; logs: {:?}", envoy.logs()),
        }
    }
}

#[test]
fn local_jwks_needs_no_callout() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider.as_object_mut().unwrap().remove("remote_jwks");
    provider["local_jwks"] = json!({ "inline": authz.jwks });
    let mut envoy = start(fixture::options(&config(provider), authz.clusters()));
    let outcome = envoy.send(0, request(Some(authz.token("valid"))));
    assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"));
    assert!(envoy.callouts().is_empty());
}

#[test]
fn filter_imports_only_what_envoy_provides() {
    let engine = wasmtime::Engine::default();
    let module = wasmtime::Module::new(&engine, fixture::filter_wasm()).unwrap();
    let mut imports: Vec<String> = module.imports().map(|import| format!("{}.{}", import.module(), import.name())).collect();
    imports.sort();
    for import in &imports {
        let allowed = import.starts_with("env.proxy_")
            || [
                "wasi_snapshot_preview1.random_get",
                "wasi_snapshot_preview1.environ_get",
                "wasi_snapshot_preview1.environ_sizes_get",
                "wasi_snapshot_preview1.fd_write",
                "wasi_snapshot_preview1.proc_exit",
                "wasi_snapshot_preview1.clock_time_get",
            ]
            .contains(&import.as_str());
        assert!(allowed, "unexpected import {import}; all imports: {imports:?}");
    }
    assert!(!imports.iter().any(|import| import.contains("wbindgen")), "{imports:?}");
    let exports: Vec<&str> = module.exports().map(|export| export.name()).collect();
    for required in ["proxy_abi_version_0_2_1", "proxy_on_memory_allocate", "_initialize", "proxy_on_request_headers"] {
        assert!(exports.contains(&required), "missing export {required}");
    }
}

#[test]
fn filter_survives_garbage_requests() {
    let authz = Authz::shared();
    let mut provider = authz.remote_provider();
    provider.as_object_mut().unwrap().remove("remote_jwks");
    provider["local_jwks"] = json!({ "inline": authz.jwks });
    let mut envoy = start(fixture::options(&config(provider), authz.clusters()));
    let long = "a".repeat(70_000);
    let nested = format!("{}.{}.AA", Base64UrlUnpadded::encode_string(format!("{{\"alg\":\"RS256\",\"kid\":{}1{}}}", "[".repeat(5000), "]".repeat(5000)).as_bytes()), "e30");
    let values = [
        String::from("Bearer"),
        String::from("Bearer "),
        String::from("Bearer \u{7f}\u{1}"),
        String::from("Bearer a.b"),
        format!("Bearer {long}"),
        format!("Bearer {nested}"),
        String::from("Bearer ...."),
        String::from("bearer  x.y.z junk"),
        String::from("Basic dXNlcjpwYXNz"),
        "Bearer ".to_string() + &"a.".repeat(30_000),
    ];
    for value in values {
        let outcome = envoy.send(0, request(None).header("authorization", &value));
        assert!(matches!(outcome, Outcome::LocalReply { .. }), "{value:.40}: {outcome:?}");
    }
    // The VM is still alive: a valid token passes.
    let outcome = envoy.send(0, request(Some(authz.token("valid"))));
    assert_eq!(header(forwarded(&outcome), "x-jwt-sub"), Some("alice"));
}
