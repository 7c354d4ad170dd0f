//! State shared by worker VMs and time: ticks, shared data, metrics and queues.

mod common;

use std::time::{Duration, UNIX_EPOCH};

use common::{guest, messages, reported, start};
use envoy_host::{Clock, Outcome, Request};

const METRIC_IMPORTS: &str = r#"
  (import "env" "proxy_define_metric" (func $define (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $increment (param i32 i64) (result i32)))
  (import "env" "proxy_record_metric" (func $record (param i32 i64) (result i32)))
  (import "env" "proxy_get_metric" (func $get_metric (param i32 i32) (result i32)))"#;

fn manual_clock() -> Clock {
    Clock::Manual(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
}

#[test]
fn ticks_follow_manual_clock() {
    let imports = format!(
        r#"{METRIC_IMPORTS}
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))"#
    );
    let wasm = guest(
        &imports,
        r#"
  (data (i32.const 1024) "ticks")
  (data (i32.const 1040) "time_ms")
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $define (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 128)))
    (drop (call $set_tick (i32.const 100)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param $root i32)
    (drop (call $increment (i32.load (i32.const 128)) (i64.const 1)))
    (drop (call $now (i32.const 136)))
    (call $report (i32.const 1040) (i32.const 7)
      (i32.wrap_i64 (i64.div_u (i64.sub (i64.load (i32.const 136)) (i64.const 1700000000000000000)) (i64.const 1000000)))))
"#,
    );
    let mut envoy = start(wasm, |o| o.clock = manual_clock());
    assert_eq!(envoy.metrics().get("ticks"), Some(&0));

    envoy.advance(Duration::from_millis(350));
    assert_eq!(envoy.metrics().get("ticks"), Some(&3));
    assert_eq!(
        reported(&envoy, "time_ms"),
        300,
        "the last tick ran at 300 ms"
    );

    envoy.advance(Duration::from_millis(50));
    assert_eq!(envoy.metrics().get("ticks"), Some(&4));
    assert_eq!(reported(&envoy, "time_ms"), 400);
}

#[test]
fn ticks_follow_system_clock() {
    let imports = format!(
        r#"{METRIC_IMPORTS}
  (import "env" "proxy_set_tick_period_milliseconds" (func $set_tick (param i32) (result i32)))"#
    );
    let wasm = guest(
        &imports,
        r#"
  (data (i32.const 1024) "ticks")
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $define (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 128)))
    (drop (call $set_tick (i32.const 20)))
    (i32.const 1))
  (func (export "proxy_on_tick") (param $root i32)
    (drop (call $increment (i32.load (i32.const 128)) (i64.const 1))))
"#,
    );
    let mut envoy = start(wasm, |_| {});
    envoy.advance(Duration::from_millis(300));
    let ticks = envoy.metrics().get("ticks").copied().unwrap_or_default();
    // 15 periods fit in 300 ms; scheduling delays on a busy machine may cost a few.
    assert!((5..=15).contains(&ticks), "ticks: {ticks}");
}

#[test]
fn shared_data_cas_across_workers() {
    let wasm = guest(
        "",
        r#"
  (data (i32.const 1024) "k")
  (data (i32.const 1030) "v1") (data (i32.const 1034) "v2") (data (i32.const 1038) "v3") (data (i32.const 1042) "v4")
  (data (i32.const 1100) "first") (data (i32.const 1110) "s1") (data (i32.const 1120) "s2") (data (i32.const 1130) "s3")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (local $status i32) (local $cas i32)
    (local.set $status (call $get_shared (i32.const 1024) (i32.const 1) (i32.const 32) (i32.const 36) (i32.const 40)))
    (if (i32.eq (local.get $status) (i32.const 1))
      (then
        (call $report (i32.const 1100) (i32.const 5) (local.get $status))
        ;; A cas on a missing key is ignored: the key is created.
        (drop (call $set_shared (i32.const 1024) (i32.const 1) (i32.const 1030) (i32.const 2) (i32.const 12345))))
      (else
        (local.set $cas (i32.load (i32.const 40)))
        (call $report (i32.const 1110) (i32.const 2) (call $set_shared (i32.const 1024) (i32.const 1) (i32.const 1034) (i32.const 2) (local.get $cas)))
        (call $report (i32.const 1120) (i32.const 2) (call $set_shared (i32.const 1024) (i32.const 1) (i32.const 1038) (i32.const 2) (local.get $cas)))
        (call $report (i32.const 1130) (i32.const 2) (call $set_shared (i32.const 1024) (i32.const 1) (i32.const 1042) (i32.const 2) (i32.const 0)))))
    (i32.const 0))
"#,
    );
    let mut envoy = start(wasm, |o| o.workers = 2);

    envoy.send(0, Request::get("api", "/"));
    assert_eq!(reported(&envoy, "first"), 1, "a missing key is NotFound");
    let (value, first_cas) = envoy.shared_data("k").expect("worker 0 created k");
    assert_eq!(value, b"v1");
    assert_ne!(first_cas, 0, "0 is never a stored cas");

    envoy.send(1, Request::get("api", "/"));
    assert_eq!(
        reported(&envoy, "s1"),
        0,
        "worker 1 sees worker 0's value and cas"
    );
    assert_eq!(reported(&envoy, "s2"), 8, "a stale cas is CasMismatch");
    assert_eq!(reported(&envoy, "s3"), 0, "cas 0 writes unconditionally");
    let (value, last_cas) = envoy.shared_data("k").expect("k");
    assert_eq!(value, b"v4");
    assert!(last_cas > first_cas);
}

#[test]
fn metric_defined_by_two_vms_is_one_stat() {
    let wasm = guest(
        METRIC_IMPORTS,
        r#"
  (data (i32.const 1024) "requests_total")
  (data (i32.const 1040) "inflight")
  (data (i32.const 1056) "sizes")
  (data (i32.const 1100) "zero") (data (i32.const 1110) "get") (data (i32.const 1120) "hist_get")
  (data (i32.const 1130) "cid") (data (i32.const 1140) "gid") (data (i32.const 1150) "hid")
  (data (i32.const 1160) "bad_kind") (data (i32.const 1170) "unknown")
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $define (i32.const 0) (i32.const 1024) (i32.const 14) (i32.const 128)))
    (drop (call $define (i32.const 1) (i32.const 1040) (i32.const 8) (i32.const 132)))
    (drop (call $define (i32.const 2) (i32.const 1056) (i32.const 5) (i32.const 136)))
    (call $report (i32.const 1160) (i32.const 8) (call $define (i32.const 3) (i32.const 1056) (i32.const 5) (i32.const 140)))
    (call $report (i32.const 1130) (i32.const 3) (i32.load (i32.const 128)))
    (call $report (i32.const 1140) (i32.const 3) (i32.load (i32.const 132)))
    (call $report (i32.const 1150) (i32.const 3) (i32.load (i32.const 136)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (drop (call $increment (i32.load (i32.const 128)) (i64.const 1)))
    (drop (call $increment (i32.load (i32.const 132)) (i64.const 5)))
    (drop (call $increment (i32.load (i32.const 132)) (i64.const -2)))
    (drop (call $record (i32.load (i32.const 136)) (i64.const 42)))
    (call $report (i32.const 1100) (i32.const 4) (call $increment (i32.load (i32.const 128)) (i64.const 0)))
    (drop (call $get_metric (i32.load (i32.const 128)) (i32.const 144)))
    (call $report (i32.const 1110) (i32.const 3) (i32.load (i32.const 144)))
    (call $report (i32.const 1120) (i32.const 8) (call $get_metric (i32.load (i32.const 136)) (i32.const 144)))
    (call $report (i32.const 1170) (i32.const 7) (call $increment (i32.const 400) (i64.const 1)))
    (i32.const 0))
"#,
    );
    let mut envoy = start(wasm, |o| o.workers = 2);

    for worker in [0, 1, 1] {
        let outcome = envoy.send(worker, Request::get("api", "/"));
        assert!(matches!(outcome, Outcome::Forwarded { .. }), "{outcome:?}");
    }

    let metrics = envoy.metrics();
    assert_eq!(metrics.get("requests_total"), Some(&3));
    assert_eq!(metrics.get("inflight"), Some(&9));
    assert_eq!(envoy.histograms().get("sizes"), Some(&vec![42, 42, 42]));
    assert_eq!(
        reported(&envoy, "get"),
        3,
        "get_metric reads the shared stat"
    );
    assert_eq!(
        reported(&envoy, "zero"),
        2,
        "a counter increment must be positive"
    );
    assert_eq!(reported(&envoy, "hist_get"), 2, "histograms cannot be read");
    assert_eq!(
        reported(&envoy, "unknown"),
        1,
        "an undefined id is NotFound"
    );
    assert_eq!(
        reported(&envoy, "bad_kind"),
        2,
        "metric type 3 is BadArgument"
    );
    assert_eq!(reported(&envoy, "cid"), 4);
    assert_eq!(reported(&envoy, "gid"), 5);
    assert_eq!(reported(&envoy, "hid"), 6);
}

#[test]
fn queue_ready_goes_to_last_registrant() {
    let wasm = guest(
        r#"
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_resolve_shared_queue" (func $resolve (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
  (import "env" "proxy_dequeue_shared_queue" (func $dequeue (param i32 i32 i32) (result i32)))"#,
        r#"
  (data (i32.const 1024) "jwks-updates")
  (data (i32.const 1040) "item")
  (data (i32.const 1050) "ready")
  (data (i32.const 1100) "enq") (data (i32.const 1110) "got") (data (i32.const 1120) "empty")
  (data (i32.const 1130) "resolved") (data (i32.const 1140) "missing") (data (i32.const 1150) "absent")
  (func (export "proxy_on_configure") (param i32 i32) (result i32)
    (drop (call $register (i32.const 1024) (i32.const 12) (i32.const 128)))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $report (i32.const 1130) (i32.const 8) (call $resolve (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const 12) (i32.const 132)))
    (call $report (i32.const 1140) (i32.const 7) (call $resolve (i32.const 0) (i32.const 0) (i32.const 1040) (i32.const 4) (i32.const 132)))
    (call $report (i32.const 1150) (i32.const 6) (call $enqueue (i32.const 999) (i32.const 1040) (i32.const 4)))
    (call $report (i32.const 1100) (i32.const 3) (call $enqueue (i32.load (i32.const 128)) (i32.const 1040) (i32.const 4)))
    (i32.const 0))
  (func (export "proxy_on_queue_ready") (param $root i32) (param $token i32)
    (call $say (i32.const 1050) (i32.const 5))
    (drop (call $dequeue (local.get $token) (i32.const 32) (i32.const 36)))
    (drop (call $set_shared (i32.const 1110) (i32.const 3) (i32.load (i32.const 32)) (i32.load (i32.const 36)) (i32.const 0)))
    (call $report (i32.const 1120) (i32.const 5) (call $dequeue (local.get $token) (i32.const 32) (i32.const 36))))
"#,
    );
    let mut envoy = start(wasm, |o| o.workers = 2);

    envoy.send(0, Request::get("api", "/"));
    assert_eq!(reported(&envoy, "enq"), 0);
    assert!(
        !messages(&envoy, 1).contains(&"ready".to_string()),
        "on_queue_ready never runs inside the enqueue call"
    );
    envoy.run_until_idle(Duration::from_secs(1));

    assert_eq!(envoy.shared_data("got").expect("dequeued").0, b"item");
    assert_eq!(reported(&envoy, "empty"), 7);
    assert_eq!(reported(&envoy, "resolved"), 0);
    assert_eq!(reported(&envoy, "missing"), 1);
    assert_eq!(
        reported(&envoy, "absent"),
        1,
        "enqueue to an unknown queue is NotFound"
    );
    assert!(messages(&envoy, 1).contains(&"ready".to_string()));
    assert!(!messages(&envoy, 0).contains(&"ready".to_string()));
}
