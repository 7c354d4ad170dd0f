//! `proxy_http_call` against real loopback HTTP servers: responses, Envoy's router replies
//! for timeouts and connect failures, resets, unknown clusters, and resuming the request.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{closed_port, guest, messages, reported, serialize, serve, start, wat_bytes};
use envoy_host::{CalloutFault, Clock, Outcome, Request, Response};

const IMPORTS: &str = r#"
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_get_status" (func $get_status (param i32 i32 i32) (result i32)))"#;

/// Ends `proxy_on_http_call_response` by making the stream (context 2) effective and
/// continuing it.
const RESUME_STREAM: &str =
    "(drop (call $set_effective (i32.const 2))) (drop (call $continue (i32.const 0)))";
/// Ends `proxy_on_http_call_response` with a continue on the root context.
const CONTINUE_ON_ROOT: &str = "(drop (call $continue (i32.const 0)))";

/// Builds a guest that calls `cluster` from `proxy_on_request_headers` with `headers` and
/// pauses. Its `proxy_on_http_call_response` stores what it received, then runs `resume_code`.
fn callout_guest(
    cluster: &str,
    headers: &[(&str, &str)],
    timeout_ms: u32,
    resume_code: &str,
) -> Vec<u8> {
    let serialized = serialize(headers);
    let body = format!(
        r#"
  (data (i32.const 1024) "{cluster}")
  (data (i32.const 1100) "call") (data (i32.const 1120) "body") (data (i32.const 1140) "status")
  (data (i32.const 1160) "nh") (data (i32.const 1180) "gst") (data (i32.const 1200) ":status")
  (data (i32.const 1220) "token") (data (i32.const 1240) "msg") (data (i32.const 1260) "response")
  (data (i32.const 1280) "root") (data (i32.const 1300) "dispatched")
  (data (i32.const 2048) "{headers}")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    (call $report (i32.const 1100) (i32.const 4)
      (call $http_call (i32.const 1024) (i32.const {cluster_len}) (i32.const 2048) (i32.const {headers_len})
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const {timeout_ms}) (i32.const 64)))
    (call $report (i32.const 1220) (i32.const 5) (i32.load (i32.const 64)))
    (call $say (i32.const 1300) (i32.const 10))
    (i32.const 1))
  (func (export "proxy_on_http_call_response") (param $root i32) (param $token i32) (param $nh i32) (param $size i32) (param $nt i32)
    (call $say (i32.const 1260) (i32.const 8))
    (call $report (i32.const 1280) (i32.const 4) (local.get $root))
    (call $report (i32.const 1160) (i32.const 2) (local.get $nh))
    (drop (call $get_buffer (i32.const 4) (i32.const 0) (local.get $size) (i32.const 32) (i32.const 36)))
    (drop (call $set_shared (i32.const 1120) (i32.const 4) (i32.load (i32.const 32)) (i32.load (i32.const 36)) (i32.const 0)))
    (if (i32.eqz (call $get_value (i32.const 6) (i32.const 1200) (i32.const 7) (i32.const 40) (i32.const 44)))
      (then (drop (call $set_shared (i32.const 1140) (i32.const 6) (i32.load (i32.const 40)) (i32.load (i32.const 44)) (i32.const 0)))))
    (drop (call $get_status (i32.const 48) (i32.const 52) (i32.const 56)))
    (call $report (i32.const 1180) (i32.const 3) (i32.load (i32.const 48)))
    (drop (call $set_shared (i32.const 1240) (i32.const 3) (i32.load (i32.const 52)) (i32.load (i32.const 56)) (i32.const 0)))
    {resume_code})
"#,
        cluster_len = cluster.len(),
        headers = wat_bytes(&serialized),
        headers_len = serialized.len(),
    );
    guest(IMPORTS, &body)
}

const JWKS_REQUEST: &[(&str, &str)] = &[
    (":method", "GET"),
    (":path", "/keys"),
    (":authority", "idp.test"),
    ("accept", "application/json"),
];

fn text(envoy: &envoy_host::Envoy, key: &str) -> String {
    let (bytes, _) = envoy
        .shared_data(key)
        .unwrap_or_else(|| panic!("the guest stored no {key:?}"));
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn callout_answered_by_real_server() {
    let server =
        serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-kid: a\r\n\r\nhello".to_vec());
    let mut envoy = start(
        callout_guest("jwks", JWKS_REQUEST, 5000, RESUME_STREAM),
        |o| {
            o.clusters.insert("jwks".to_string(), server.address);
        },
    );

    let outcome = envoy.send(0, Request::get("api", "/orders"));

    assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    assert_eq!(reported(&envoy, "call"), 0);
    assert_eq!(
        reported(&envoy, "token"),
        4,
        "Envoy numbers HTTP callouts 4, 8, ..."
    );
    assert_eq!(
        reported(&envoy, "root"),
        1,
        "the response goes to the root context"
    );
    assert_eq!(reported(&envoy, "nh"), 3, ":status, content-length, x-kid");
    assert_eq!(text(&envoy, "status"), "200");
    assert_eq!(text(&envoy, "body"), "hello");
    assert_eq!(reported(&envoy, "gst"), 0);

    let head = server
        .requests
        .recv_timeout(Duration::from_secs(5))
        .expect("the server saw the request");
    assert!(
        head.starts_with("GET /keys HTTP/1.1\r\n"),
        "request: {head}"
    );
    assert!(head.contains("host: idp.test\r\n"), "request: {head}");
    assert!(
        head.contains("accept: application/json\r\n"),
        "request: {head}"
    );

    let callouts = envoy.callouts();
    assert_eq!(callouts.len(), 1);
    assert_eq!(callouts[0].cluster, "jwks");
    assert_eq!(callouts[0].timeout, Duration::from_secs(5));

    let logs = messages(&envoy, 0);
    let dispatched = logs.iter().position(|m| m == "dispatched");
    let response = logs.iter().position(|m| m == "response");
    assert!(
        dispatched < response,
        "the response is delivered after the dispatching callback returns: {logs:?}"
    );
}

#[test]
fn chunked_callout_response_is_decoded() {
    let server = serve(|_| {
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            .to_vec()
    });
    let mut envoy = start(
        callout_guest("jwks", JWKS_REQUEST, 5000, RESUME_STREAM),
        |o| {
            o.clusters.insert("jwks".to_string(), server.address);
        },
    );
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    assert_eq!(text(&envoy, "body"), "abcde");
}

#[test]
fn callout_to_unknown_cluster_is_bad_argument() {
    let mut envoy = start(
        callout_guest("nope", JWKS_REQUEST, 1000, RESUME_STREAM),
        |o| {
            o.pump_limit = Duration::from_millis(200);
        },
    );
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert_eq!(reported(&envoy, "call"), 2);
    assert!(envoy.callouts().is_empty());
    assert_eq!(
        outcome,
        Outcome::TimedOut,
        "nothing resumes the paused request"
    );
}

#[test]
fn callout_without_path_is_bad_argument() {
    let server = serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec());
    let headers = &[(":method", "GET"), (":authority", "idp.test")];
    let mut envoy = start(callout_guest("jwks", headers, 1000, RESUME_STREAM), |o| {
        o.clusters.insert("jwks".to_string(), server.address);
        o.pump_limit = Duration::from_millis(200);
    });
    envoy.send(0, Request::get("api", "/"));
    assert_eq!(reported(&envoy, "call"), 2);
    assert!(envoy.callouts().is_empty());
}

#[test]
fn silent_server_gets_router_timeout() {
    // The server accepts the connection and never responds.
    let server = serve(|_| Vec::new());
    let start_time = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut envoy = start(
        callout_guest("jwks", JWKS_REQUEST, 200, RESUME_STREAM),
        |o| {
            o.clusters.insert("jwks".to_string(), server.address);
            o.clock = Clock::Manual(start_time);
        },
    );

    let id = envoy.start_request(0, Request::get("api", "/"));
    assert_eq!(envoy.outcome(id), None, "the filter paused the request");
    envoy.advance(Duration::from_millis(199));
    assert_eq!(envoy.outcome(id), None, "the timeout has not passed yet");
    envoy.advance(Duration::from_millis(2));

    assert!(
        matches!(envoy.outcome(id), Some(Outcome::Forwarded { .. })),
        "{:?}",
        envoy.outcome(id)
    );
    assert_eq!(text(&envoy, "status"), "504");
    assert_eq!(text(&envoy, "body"), "upstream request timeout");
    assert_eq!(
        reported(&envoy, "nh"),
        3,
        ":status, content-length, content-type"
    );
    assert!(envoy.finish(id).is_some());
    assert_eq!(envoy.now(), Duration::from_millis(201));
}

#[test]
fn connect_failure_gets_router_503() {
    let mut envoy = start(
        callout_guest("jwks", JWKS_REQUEST, 2000, RESUME_STREAM),
        |o| {
            o.clusters.insert("jwks".to_string(), closed_port());
        },
    );
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    assert_eq!(text(&envoy, "status"), "503");
    assert!(text(&envoy, "body").starts_with("upstream connect error"));
}

#[test]
fn reset_after_headers_delivers_no_headers() {
    // Promises 100 bytes, sends 5, closes.
    let server = serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort".to_vec());
    let mut envoy = start(
        callout_guest("jwks", JWKS_REQUEST, 2000, RESUME_STREAM),
        |o| {
            o.clusters.insert("jwks".to_string(), server.address);
        },
    );
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    assert_eq!(reported(&envoy, "nh"), 0);
    assert_eq!(text(&envoy, "body"), "");
    assert_eq!(reported(&envoy, "gst"), 11, "BrokenConnection");
    assert_eq!(text(&envoy, "msg"), "reset");
}

#[test]
fn continue_from_root_context_is_ignored() {
    // Without proxy_set_effective_context the continue acts on the root context, which
    // has no stream to resume, so the request stays paused.
    let server = serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec());
    let wasm = callout_guest("jwks", JWKS_REQUEST, 2000, CONTINUE_ON_ROOT);
    let mut envoy = start(wasm, |o| {
        o.clusters.insert("jwks".to_string(), server.address);
        o.pump_limit = Duration::from_millis(500);
    });
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert_eq!(outcome, Outcome::TimedOut);
    assert_eq!(
        text(&envoy, "body"),
        "ok",
        "the response itself was delivered"
    );
}

#[test]
fn paused_requests_resume_independently() {
    // Two requests on one worker pause; the guest always resumes context 2, so only the
    // first one continues.
    let server = serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec());
    let mut envoy = start(
        callout_guest("jwks", JWKS_REQUEST, 2000, RESUME_STREAM),
        |o| {
            o.clusters.insert("jwks".to_string(), server.address);
        },
    );
    let first = envoy.start_request(0, Request::get("api", "/1"));
    let second = envoy.start_request(0, Request::get("api", "/2"));
    envoy.run_until_idle(Duration::from_secs(5));
    assert!(matches!(
        envoy.outcome(first),
        Some(Outcome::Forwarded { .. })
    ));
    assert_eq!(envoy.outcome(second), None);
    assert_eq!(envoy.callouts().len(), 2);
    envoy.finish(first);
    envoy.finish(second);
}

#[test]
fn ten_megabyte_callout_body_arrives_whole() {
    let body = vec![b'x'; 10 * 1024 * 1024];
    let response = {
        let mut r =
            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(&body);
        r
    };
    let server = serve(move |_| response.clone());
    let mut envoy = start(
        callout_guest("jwks", JWKS_REQUEST, 10000, RESUME_STREAM),
        |o| {
            o.clusters.insert("jwks".to_string(), server.address);
        },
    );
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    assert_eq!(envoy.shared_data("body").expect("body").0.len(), body.len());
    assert!(
        envoy.memory_bytes(0) > body.len(),
        "the guest memory grew for the body"
    );
}

/// Starts a guest that calls cluster `jwks` with a 1 s timeout, on a manual clock.
fn fault_host(fault: CalloutFault, server: Option<std::net::SocketAddr>) -> envoy_host::Envoy {
    start(
        callout_guest("jwks", JWKS_REQUEST, 1000, RESUME_STREAM),
        |o| {
            o.clusters.insert("jwks".to_string(), server.unwrap_or_else(closed_port));
            o.clock = Clock::Manual(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
            o.callout_faults.insert("jwks".to_string(), fault);
        },
    )
}

#[test]
fn injected_connect_failure_gets_503() {
    let mut envoy = fault_host(CalloutFault::ConnectFailure, None);
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    assert_eq!(text(&envoy, "status"), "503");
    assert!(text(&envoy, "body").starts_with("upstream connect error"));
    assert_eq!(envoy.callouts().len(), 1, "the call is recorded");
}

#[test]
fn injected_reset_delivers_no_headers() {
    let mut envoy = fault_host(CalloutFault::Reset, None);
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    assert_eq!(reported(&envoy, "nh"), 0);
    assert_eq!(reported(&envoy, "gst"), 11, "BrokenConnection");
}

#[test]
fn injected_response_replaces_server() {
    let response = Response {
        status: 200,
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: b"{}".to_vec(),
    };
    let mut envoy = fault_host(CalloutFault::Respond(response), None);
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    assert_eq!(text(&envoy, "status"), "200");
    assert_eq!(text(&envoy, "body"), "{}");
    assert_eq!(reported(&envoy, "nh"), 2, ":status, content-type");
}

#[test]
fn delay_within_timeout_delivers_late() {
    let server = serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec());
    let mut envoy = fault_host(CalloutFault::Delay(Duration::from_millis(600)), Some(server.address));
    let id = envoy.start_request(0, Request::get("api", "/"));
    envoy.run_until_idle(Duration::from_secs(5));
    assert_eq!(envoy.outcome(id), None, "the response is held for the host clock");
    envoy.advance(Duration::from_millis(599));
    assert_eq!(envoy.outcome(id), None);
    envoy.advance(Duration::from_millis(1));
    assert!(matches!(envoy.outcome(id), Some(Outcome::Forwarded { .. })), "{:?}", envoy.outcome(id));
    assert_eq!(text(&envoy, "body"), "ok");
    envoy.finish(id);
}

#[test]
fn delay_past_timeout_gets_504() {
    let server = serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec());
    let mut envoy = fault_host(CalloutFault::Delay(Duration::from_secs(3)), Some(server.address));
    let id = envoy.start_request(0, Request::get("api", "/"));
    envoy.run_until_idle(Duration::from_secs(5));
    envoy.advance(Duration::from_millis(1000));
    assert!(matches!(envoy.outcome(id), Some(Outcome::Forwarded { .. })), "{:?}", envoy.outcome(id));
    assert_eq!(text(&envoy, "status"), "504");
    envoy.advance(Duration::from_secs(5));
    assert_eq!(text(&envoy, "status"), "504", "the held response is never delivered");
    envoy.finish(id);
}

#[test]
fn fault_removed_reaches_server() {
    let server = serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".to_vec());
    let mut envoy = fault_host(CalloutFault::ConnectFailure, Some(server.address));
    envoy.set_callout_fault("jwks", None);
    let outcome = envoy.send(0, Request::get("api", "/"));
    assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    assert_eq!(text(&envoy, "body"), "ok");
    assert!(envoy.guest_time(0) > Duration::ZERO, "time in the guest is measured");
    assert_eq!(envoy.guest_time(7), Duration::ZERO, "unknown worker");
}
