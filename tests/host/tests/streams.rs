//! HTTP streams: header maps, bodies, local replies, traps and bad guest pointers.

mod common;

use common::{guest, messages, pairs, reported, serialize, start, wat_bytes};
use envoy_host::{Outcome, Request, Response};

const MAP_IMPORTS: &str = r#"
  (import "env" "proxy_get_header_map_pairs" (func $get_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_header_map_pairs" (func $set_pairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_size" (func $get_size (param i32 i32) (result i32)))"#;

#[test]
fn header_map_edits_keep_pseudo_headers_first() {
    let wasm = guest(
        MAP_IMPORTS,
        r#"
  (data (i32.const 1024) "x-added")
  (data (i32.const 1040) "1")
  (data (i32.const 1056) ":path")
  (data (i32.const 1072) "/new")
  (data (i32.const 1088) "x-remove")
  (data (i32.const 1104) "absent")
  (data (i32.const 1120) "X-Upper")
  (data (i32.const 1136) "up")
  (data (i32.const 1200) "pairs")
  (data (i32.const 1216) "rm")
  (data (i32.const 1232) "get")
  (data (i32.const 1248) "size")
  (data (i32.const 1264) "val")
  (data (i32.const 1280) "resp")
  (data (i32.const 1296) "count")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $count i32) (param $eos i32) (result i32)
    (call $report (i32.const 1296) (i32.const 5) (local.get $count))
    (drop (call $get_pairs (i32.const 0) (i32.const 32) (i32.const 36)))
    (drop (call $set_shared (i32.const 1200) (i32.const 5) (i32.load (i32.const 32)) (i32.load (i32.const 36)) (i32.const 0)))
    (drop (call $add (i32.const 0) (i32.const 1024) (i32.const 7) (i32.const 1040) (i32.const 1)))
    (drop (call $add (i32.const 0) (i32.const 1120) (i32.const 7) (i32.const 1136) (i32.const 2)))
    (drop (call $replace (i32.const 0) (i32.const 1056) (i32.const 5) (i32.const 1072) (i32.const 4)))
    (drop (call $remove (i32.const 0) (i32.const 1088) (i32.const 8)))
    (call $report (i32.const 1216) (i32.const 2) (call $remove (i32.const 0) (i32.const 1104) (i32.const 6)))
    (call $report (i32.const 1232) (i32.const 3) (call $get_value (i32.const 0) (i32.const 1104) (i32.const 6) (i32.const 40) (i32.const 44)))
    (drop (call $get_size (i32.const 0) (i32.const 48)))
    (call $report (i32.const 1248) (i32.const 4) (i32.load (i32.const 48)))
    (drop (call $get_value (i32.const 0) (i32.const 1056) (i32.const 5) (i32.const 40) (i32.const 44)))
    (drop (call $set_shared (i32.const 1264) (i32.const 3) (i32.load (i32.const 40)) (i32.load (i32.const 44)) (i32.const 0)))
    (call $report (i32.const 1280) (i32.const 4) (call $add (i32.const 2) (i32.const 1024) (i32.const 7) (i32.const 1040) (i32.const 1)))
    (i32.const 0))
"#,
    );
    let mut envoy = start(wasm, |_| {});
    let request = Request {
        headers: pairs(&[
            (":method", "GET"),
            (":path", "/orig"),
            ("x-keep", "yes"),
            (":authority", "api"),
            (":scheme", "http"),
            ("X-Remove", "gone"),
        ]),
        body: Vec::new(),
    };

    let outcome = envoy.send(0, request);

    let expected = pairs(&[
        (":method", "GET"),
        (":authority", "api"),
        (":scheme", "http"),
        (":path", "/new"),
        ("x-keep", "yes"),
        ("x-added", "1"),
        ("x-upper", "up"),
    ]);
    assert_eq!(
        outcome,
        Outcome::Forwarded {
            headers: expected.clone(),
            body: Vec::new()
        }
    );

    let (snapshot, _) = envoy.shared_data("pairs").expect("pairs were stored");
    assert_eq!(
        snapshot,
        serialize(&[
            (":method", "GET"),
            (":path", "/orig"),
            (":authority", "api"),
            (":scheme", "http"),
            ("x-keep", "yes"),
            ("x-remove", "gone"),
        ]),
        "pseudo-headers come first and names are lower-cased"
    );

    assert_eq!(reported(&envoy, "count"), 6);
    assert_eq!(reported(&envoy, "rm"), 0, "removing an absent header is Ok");
    assert_eq!(
        reported(&envoy, "get"),
        1,
        "getting an absent header is NotFound"
    );
    let byte_size: usize = expected.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(
        reported(&envoy, "size") as usize,
        byte_size,
        "map size is a byte size"
    );
    assert_eq!(envoy.shared_data("val").expect("value").0, b"/new");
    assert_eq!(
        reported(&envoy, "resp"),
        2,
        "response headers are BadArgument during the request"
    );
}

#[test]
fn set_header_map_pairs_replaces_all() {
    let serialized = serialize(&[("b", "2"), (":path", "/p")]);
    let body = format!(
        r#"
  (data (i32.const 2048) "{}")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $set_pairs (i32.const 0) (i32.const 2048) (i32.const {})))
    (i32.const 0))
"#,
        wat_bytes(&serialized),
        serialized.len()
    );
    let mut envoy = start(guest(MAP_IMPORTS, &body), |_| {});
    let outcome = envoy.send(0, Request::get("api", "/").header("x-old", "1"));
    assert_eq!(
        outcome,
        Outcome::Forwarded {
            headers: pairs(&[(":path", "/p"), ("b", "2")]),
            body: Vec::new()
        }
    );
}

#[test]
fn local_reply_stops_request() {
    let headers = serialize(&[("www-authenticate", "Bearer")]);
    let imports = r#"
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))"#;
    let body = format!(
        r#"
  (data (i32.const 1024) "bad token")
  (data (i32.const 1040) "denied")
  (data (i32.const 1056) "on_response_headers")
  (data (i32.const 1088) "status")
  (data (i32.const 2048) "{}")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $report (i32.const 1088) (i32.const 6)
      (call $local (i32.const 401) (i32.const 1024) (i32.const 9) (i32.const 1040) (i32.const 6) (i32.const 2048) (i32.const {}) (i32.const -1)))
    ;; A continue after the reply is ignored, and so is the Continue return value.
    (drop (call $continue (i32.const 0)))
    (i32.const 0))
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (call $say (i32.const 1056) (i32.const 19))
    (i32.const 0))
"#,
        wat_bytes(&headers),
        headers.len()
    );
    let mut envoy = start(guest(imports, &body), |_| {});
    let outcome = envoy.send(0, Request::get("api", "/orders"));
    assert_eq!(
        outcome,
        Outcome::LocalReply {
            status: 401,
            headers: pairs(&[
                ("www-authenticate", "Bearer"),
                ("content-length", "6"),
                ("content-type", "text/plain"),
            ]),
            body: b"denied".to_vec(),
            details: "bad_token".to_string(),
        }
    );
    assert_eq!(reported(&envoy, "status"), 0);
    assert!(
        messages(&envoy, 0).contains(&"on_response_headers".to_string()),
        "Envoy passes local replies through the filter's response callbacks"
    );
}

#[test]
fn request_body_delivered_after_headers() {
    let wasm = guest(
        r#"
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))"#,
        r#"
  (data (i32.const 1024) "!")
  (data (i32.const 1030) ":path")
  (data (i32.const 1100) "eos_headers")
  (data (i32.const 1120) "size")
  (data (i32.const 1130) "eos")
  (data (i32.const 1140) "append")
  (data (i32.const 1150) "hdr")
  (data (i32.const 1160) "middle")
  (data (i32.const 1170) "seen")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $count i32) (param $eos i32) (result i32)
    (call $report (i32.const 1100) (i32.const 11) (local.get $eos))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (call $report (i32.const 1120) (i32.const 4) (local.get $size))
    (call $report (i32.const 1130) (i32.const 3) (local.get $eos))
    (drop (call $get_buffer (i32.const 0) (i32.const 0) (local.get $size) (i32.const 32) (i32.const 36)))
    (drop (call $set_shared (i32.const 1170) (i32.const 4) (i32.load (i32.const 32)) (i32.load (i32.const 36)) (i32.const 0)))
    (call $report (i32.const 1140) (i32.const 6) (call $set_buffer (i32.const 0) (local.get $size) (i32.const 0) (i32.const 1024) (i32.const 1)))
    (call $report (i32.const 1160) (i32.const 6) (call $set_buffer (i32.const 0) (i32.const 2) (i32.const 0) (i32.const 1024) (i32.const 1)))
    (call $report (i32.const 1150) (i32.const 3) (call $get_value (i32.const 0) (i32.const 1030) (i32.const 5) (i32.const 40) (i32.const 44)))
    (i32.const 0))
"#,
    );
    let mut envoy = start(wasm, |_| {});
    let mut request = Request::get("api", "/upload");
    request.body = b"hello".to_vec();

    let outcome = envoy.send(0, request);

    let Outcome::Forwarded { body, .. } = outcome else {
        panic!("expected the request to be forwarded, got {outcome:?}");
    };
    assert_eq!(body, b"hello!");
    assert_eq!(
        reported(&envoy, "eos_headers"),
        0,
        "headers are not the end of stream"
    );
    assert_eq!(reported(&envoy, "size"), 5);
    assert_eq!(reported(&envoy, "eos"), 1);
    assert_eq!(envoy.shared_data("seen").expect("body").0, b"hello");
    assert_eq!(reported(&envoy, "append"), 0);
    assert_eq!(
        reported(&envoy, "middle"),
        2,
        "inserting mid-body is BadArgument in Envoy"
    );
    assert_eq!(
        reported(&envoy, "hdr"),
        2,
        "request headers are gone after they continued"
    );
}

#[test]
fn trap_fails_worker_closed() {
    let wasm = guest(
        r#"(import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))"#,
        r#"
  (data (i32.const 1024) "x-trap")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (i32.eqz (call $get_value (i32.const 0) (i32.const 1024) (i32.const 6) (i32.const 40) (i32.const 44)))
      (then unreachable))
    (i32.const 0))
"#,
    );
    let mut envoy = start(wasm, |o| o.workers = 2);

    let first = envoy.send(0, Request::get("api", "/").header("x-trap", "1"));
    let Outcome::Trapped { message } = first else {
        panic!("expected a trap, got {first:?}");
    };
    assert!(message.contains("unreachable"), "message: {message}");
    assert!(
        message.contains("proxy_on_request_headers"),
        "message: {message}"
    );

    let again = envoy.send(0, Request::get("api", "/"));
    assert!(
        matches!(again, Outcome::Trapped { .. }),
        "a failed VM stays failed: {again:?}"
    );
    let other = envoy.send(1, Request::get("api", "/"));
    assert!(
        matches!(other, Outcome::Forwarded { .. }),
        "other workers keep running: {other:?}"
    );
    assert!(envoy.failure(0).is_some());
    assert!(envoy.failure(1).is_none());
    assert!(
        envoy
            .logs()
            .iter()
            .any(|r| r.message.contains("unreachable"))
    );
}

#[test]
fn bad_guest_pointers_return_invalid_memory_access() {
    let call_headers = serialize(&[(":method", "GET"), (":path", "/"), (":authority", "a")]);
    let body = format!(
        r#"
  (data (i32.const 1024) "jwks")
  (data (i32.const 1100) "p1") (data (i32.const 1104) "p2") (data (i32.const 1108) "p3")
  (data (i32.const 1112) "p4") (data (i32.const 1116) "p5") (data (i32.const 1120) "p6")
  (data (i32.const 1124) "p7") (data (i32.const 1128) "p8") (data (i32.const 1132) "p9")
  (data (i32.const 1136) "pa") (data (i32.const 1140) "pb")
  (data (i32.const 2048) "{}")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $report (i32.const 1100) (i32.const 2) (call $log (i32.const 2) (i32.const -16) (i32.const 100)))
    (call $report (i32.const 1104) (i32.const 2) (call $get_value (i32.const 0) (i32.const -8) (i32.const 100) (i32.const 40) (i32.const 44)))
    (call $report (i32.const 1108) (i32.const 2) (call $get_pairs (i32.const 0) (i32.const -2) (i32.const 44)))
    (call $report (i32.const 1112) (i32.const 2) (call $get_shared (i32.const -1) (i32.const 5) (i32.const 40) (i32.const 44) (i32.const 48)))
    (call $report (i32.const 1116) (i32.const 2) (call $set_shared (i32.const 1024) (i32.const 3) (i32.const 0) (i32.const 2147483647) (i32.const 0)))
    (call $report (i32.const 1120) (i32.const 2)
      (call $http_call (i32.const 1024) (i32.const 4) (i32.const 2048) (i32.const {}) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const -4)))
    (call $report (i32.const 1124) (i32.const 2)
      (call $local (i32.const 403) (i32.const -1) (i32.const 10) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)))
    (call $report (i32.const 1128) (i32.const 2) (call $fd_write (i32.const 1) (i32.const -8) (i32.const 1) (i32.const 40)))
    (call $report (i32.const 1132) (i32.const 2) (call $add (i32.const 0) (i32.const 1024) (i32.const 3) (i32.const -100) (i32.const 50)))
    (call $report (i32.const 1136) (i32.const 2) (call $get_buffer (i32.const 6) (i32.const 0) (i32.const 10) (i32.const -4) (i32.const 44)))
    (call $report (i32.const 1140) (i32.const 2) (call $get_time (i32.const 262140)))
    (i32.const 0))
"#,
        wat_bytes(&call_headers),
        call_headers.len()
    );
    let imports = format!(
        r#"{MAP_IMPORTS}
  (import "env" "proxy_http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $get_time (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#
    );
    let server = common::serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec());
    let mut envoy = start(guest(&imports, &body), |o| {
        o.vm_config = b"0123456789".to_vec();
        o.clusters.insert("jwks".to_string(), server.address);
    });

    let outcome = envoy.send(0, Request::get("api", "/"));

    assert!(
        matches!(outcome, Outcome::Forwarded { .. }),
        "no reply was sent and the VM did not trap: {outcome:?}"
    );
    for key in ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p9", "pa", "pb"] {
        assert_eq!(
            reported(&envoy, key),
            6,
            "{key} must be InvalidMemoryAccess"
        );
    }
    assert_eq!(
        reported(&envoy, "p8"),
        21,
        "WASI reports a bad iovec as FAULT"
    );
    assert!(
        envoy.callouts().is_empty(),
        "no callout starts after a bad token pointer"
    );
}

#[test]
fn stream_end_calls_log_done_delete() {
    let wasm = guest(
        MAP_IMPORTS,
        r#"
  (data (i32.const 1024) "log") (data (i32.const 1030) "done") (data (i32.const 1040) "delete")
  (data (i32.const 1050) "create") (data (i32.const 1060) "headers")
  (data (i32.const 1070) ":path") (data (i32.const 1080) "x-late")
  (data (i32.const 1100) "read_in_log") (data (i32.const 1120) "write_in_log") (data (i32.const 1140) "parent")
  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (if (local.get $parent)
      (then
        (call $say (i32.const 1050) (i32.const 6))
        (call $report (i32.const 1140) (i32.const 6) (local.get $parent)))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $say (i32.const 1060) (i32.const 7))
    (i32.const 0))
  (func (export "proxy_on_log") (param i32)
    (call $say (i32.const 1024) (i32.const 3))
    (call $report (i32.const 1100) (i32.const 11) (call $get_value (i32.const 0) (i32.const 1070) (i32.const 5) (i32.const 40) (i32.const 44)))
    (call $report (i32.const 1120) (i32.const 12) (call $add (i32.const 0) (i32.const 1080) (i32.const 6) (i32.const 1080) (i32.const 6))))
  (func (export "proxy_on_done") (param i32) (result i32)
    (call $say (i32.const 1030) (i32.const 4))
    (i32.const 1))
  (func (export "proxy_on_delete") (param i32)
    (call $say (i32.const 1040) (i32.const 6)))
"#,
    );
    let mut envoy = start(wasm, |_| {});
    envoy.send(0, Request::get("api", "/"));
    // Current Envoy runs the access log (proxy_on_log) before the filter's onDestroy
    // (proxy_on_done, proxy_on_delete).
    assert_eq!(
        messages(&envoy, 0),
        ["create", "headers", "log", "done", "delete"]
    );
    assert_eq!(
        reported(&envoy, "parent"),
        1,
        "streams are children of the root context"
    );
    assert_eq!(
        reported(&envoy, "read_in_log"),
        0,
        "request headers are readable in on_log"
    );
    assert_eq!(reported(&envoy, "write_in_log"), 2, "but not writable");
}

#[test]
fn respond_runs_response_callbacks() {
    let wasm = guest(
        MAP_IMPORTS,
        r#"
  (data (i32.const 1024) "x-filtered") (data (i32.const 1040) "1")
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $add (i32.const 2) (i32.const 1024) (i32.const 10) (i32.const 1040) (i32.const 1)))
    (i32.const 0))
"#,
    );
    let mut envoy = start(wasm, |_| {});
    let id = envoy.start_request(0, Request::get("api", "/"));
    assert!(matches!(envoy.outcome(id), Some(Outcome::Forwarded { .. })));
    let response = envoy.respond(
        id,
        Response {
            status: 200,
            headers: pairs(&[("content-type", "text/plain")]),
            body: b"ok".to_vec(),
        },
    );
    assert_eq!(
        response,
        Some(Response {
            status: 200,
            headers: pairs(&[("content-type", "text/plain"), ("x-filtered", "1")]),
            body: b"ok".to_vec(),
        })
    );
    envoy.finish(id);
}

#[test]
fn properties_of_plugin_and_request() {
    let wasm = guest(
        r#"
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_property" (func $set_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_log_level" (func $get_log_level (param i32) (result i32)))"#,
        r#"
  (data (i32.const 1024) "plugin_root_id")
  (data (i32.const 1040) "request\00url_path")
  (data (i32.const 1060) "request\00headers\00x-tenant")
  (data (i32.const 1090) "upstream\00address")
  (data (i32.const 1110) "my\00value")
  (data (i32.const 1120) "v1")
  (data (i32.const 1200) "root_id") (data (i32.const 1210) "url_path") (data (i32.const 1220) "tenant")
  (data (i32.const 1230) "missing") (data (i32.const 1240) "set") (data (i32.const 1250) "custom")
  (data (i32.const 1260) "set_root") (data (i32.const 1270) "level")
  (func $copy (param $path i32) (param $len i32) (param $key i32) (param $key_len i32)
    (drop (call $get_property (local.get $path) (local.get $len) (i32.const 32) (i32.const 36)))
    (drop (call $set_shared (local.get $key) (local.get $key_len) (i32.load (i32.const 32)) (i32.load (i32.const 36)) (i32.const 0))))
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (call $report (i32.const 1260) (i32.const 8) (call $set_property (i32.const 1110) (i32.const 8) (i32.const 1120) (i32.const 2)))
    (drop (call $get_log_level (i32.const 48)))
    (call $report (i32.const 1270) (i32.const 5) (i32.load (i32.const 48)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $copy (i32.const 1024) (i32.const 14) (i32.const 1200) (i32.const 7))
    (call $copy (i32.const 1040) (i32.const 16) (i32.const 1210) (i32.const 8))
    (call $copy (i32.const 1060) (i32.const 24) (i32.const 1220) (i32.const 6))
    (call $report (i32.const 1230) (i32.const 7) (call $get_property (i32.const 1090) (i32.const 16) (i32.const 32) (i32.const 36)))
    (call $report (i32.const 1240) (i32.const 3) (call $set_property (i32.const 1110) (i32.const 8) (i32.const 1120) (i32.const 2)))
    (call $copy (i32.const 1110) (i32.const 8) (i32.const 1250) (i32.const 6))
    (i32.const 0))
"#,
    );
    let mut envoy = start(wasm, |o| {
        o.root_id = "portcullis_root".to_string();
        o.log_level = envoy_host::LogLevel::Debug;
    });
    envoy.send(
        0,
        Request::get("api", "/orders?page=2").header("x-tenant", "acme"),
    );
    let text = |key: &str| envoy.shared_data(key).map(|(v, _)| v).unwrap_or_default();
    assert_eq!(text("root_id"), b"portcullis_root");
    assert_eq!(text("url_path"), b"/orders");
    assert_eq!(text("tenant"), b"acme");
    assert_eq!(
        reported(&envoy, "missing"),
        1,
        "unsupported properties are NotFound"
    );
    assert_eq!(reported(&envoy, "set"), 0);
    assert_eq!(
        text("custom"),
        b"v1",
        "a property set on the stream reads back"
    );
    assert_eq!(
        reported(&envoy, "set_root"),
        1,
        "a root context has no filter state"
    );
    assert_eq!(
        reported(&envoy, "level"),
        1,
        "proxy_get_log_level returns Envoy's level"
    );
}
