//! Loading and starting a module: imports, exports, start-up order, configuration.

mod common;

use common::{guest, messages, reported, start};
use envoy_host::{AbiVersion, Envoy, HostOptions, StartError, provided_imports};

const GET_BUFFER: &str = r#"(import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))"#;

fn start_error(wasm: Vec<u8>) -> StartError {
    match Envoy::start(HostOptions {
        wasm,
        ..HostOptions::default()
    }) {
        Ok(_) => panic!("the host started a module it should reject"),
        Err(error) => error,
    }
}

#[test]
fn startup_calls_in_envoy_order() {
    let wasm = guest(
        GET_BUFFER,
        r#"
  (data (i32.const 1024) "initialize")
  (data (i32.const 1040) "create")
  (data (i32.const 1056) "vm_start")
  (data (i32.const 1072) "configure")
  (data (i32.const 1088) "vm_size")
  (data (i32.const 1104) "config")
  (data (i32.const 1120) "ctx")
  (data (i32.const 1136) "parent")
  (func (export "_initialize") (call $say (i32.const 1024) (i32.const 10)))
  (func (export "proxy_on_context_create") (param $ctx i32) (param $parent i32)
    (call $say (i32.const 1040) (i32.const 6))
    (call $report (i32.const 1120) (i32.const 3) (local.get $ctx))
    (call $report (i32.const 1136) (i32.const 6) (local.get $parent)))
  (func (export "proxy_on_vm_start") (param $ctx i32) (param $size i32) (result i32)
    (call $say (i32.const 1056) (i32.const 8))
    (call $report (i32.const 1088) (i32.const 7) (local.get $size))
    (i32.const 1))
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32)
    (call $say (i32.const 1072) (i32.const 9))
    (drop (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size) (i32.const 32) (i32.const 36)))
    (drop (call $set_shared (i32.const 1104) (i32.const 6) (i32.load (i32.const 32)) (i32.load (i32.const 36)) (i32.const 0)))
    (i32.const 1))
"#,
    );
    let envoy = start(wasm, |o| {
        o.workers = 2;
        o.vm_config = b"vm-config".to_vec();
        o.plugin_config = br#"{"issuer":"https://issuer.test"}"#.to_vec();
    });

    let expected = ["initialize", "create", "vm_start", "configure"];
    assert_eq!(messages(&envoy, 0), expected);
    assert_eq!(messages(&envoy, 1), expected);
    assert_eq!(reported(&envoy, "ctx"), 1, "the root context id is 1");
    assert_eq!(reported(&envoy, "parent"), 0, "a root context has parent 0");
    assert_eq!(reported(&envoy, "vm_size"), 9);
    let (config, _) = envoy.shared_data("config").expect("config was stored");
    assert_eq!(config, br#"{"issuer":"https://issuer.test"}"#);
}

#[test]
fn start_command_runs_without_initialize() {
    let wasm = guest(
        "",
        r#"
  (data (i32.const 1024) "start")
  (func (export "_start") (call $say (i32.const 1024) (i32.const 5)))
"#,
    );
    let envoy = start(wasm, |_| {});
    assert_eq!(messages(&envoy, 0), ["start"]);
}

#[test]
fn restricted_call_during_initialize_traps() {
    // Envoy allows only logging, clocks, randomness and a few WASI stubs while
    // `_initialize` runs.
    let wasm = guest(
        "",
        r#"
  (data (i32.const 1024) "k")
  (func (export "_initialize")
    (drop (call $set_shared (i32.const 1024) (i32.const 1) (i32.const 1024) (i32.const 1) (i32.const 0))))
"#,
    );
    match start_error(wasm) {
        StartError::Trap { worker, message } => {
            assert_eq!(worker, 0);
            assert!(
                message.contains("restricted_callback"),
                "message: {message}"
            );
            assert!(message.contains("_initialize"), "message: {message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn unknown_env_import_rejected_by_name() {
    let wasm = guest(
        r#"(import "env" "proxy_get_configuration" (func (param i32 i32) (result i32)))"#,
        "",
    );
    assert_eq!(
        start_error(wasm),
        StartError::ForbiddenImport {
            module: "env".to_string(),
            name: "proxy_get_configuration".to_string()
        }
    );
}

#[test]
fn unknown_wasi_import_rejected_by_name() {
    let wasm = guest(
        r#"(import "wasi_snapshot_preview1" "sock_open" (func (param i32) (result i32)))"#,
        "",
    );
    assert_eq!(
        start_error(wasm),
        StartError::ForbiddenImport {
            module: "wasi_snapshot_preview1".to_string(),
            name: "sock_open".to_string()
        }
    );
}

#[test]
fn wasi_imports_envoy_provides_load() {
    let wasm = guest(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
  (import "wasi_unstable" "fd_write" (func (param i32 i32 i32 i32) (result i32)))"#,
        "",
    );
    let envoy = start(wasm, |_| {});
    assert_eq!(envoy.workers(), 1);
}

#[test]
fn import_with_wrong_signature_fails_to_link() {
    let wasm = guest(
        r#"(import "env" "proxy_done" (func (param i32) (result i32)))"#,
        "",
    );
    assert!(
        matches!(start_error(wasm), StartError::Link { .. }),
        "a proxy_done taking a parameter must not link"
    );
}

#[test]
fn log_level_import_needs_abi_0_2_1() {
    // Envoy links proxy_get_log_level only for modules that declare ABI 0.2.1.
    let wasm = guest(
        r#"(import "env" "proxy_get_log_level" (func (param i32) (result i32)))"#,
        r#"(func (export "proxy_abi_version_0_2_0"))"#,
    );
    assert_eq!(
        start_error(wasm),
        StartError::ForbiddenImport {
            module: "env".to_string(),
            name: "proxy_get_log_level".to_string()
        }
    );
}

#[test]
fn missing_abi_marker_rejected() {
    let wasm = guest("", ";; no abi marker");
    assert!(matches!(
        start_error(wasm),
        StartError::UnsupportedAbi { .. }
    ));
}

#[test]
fn abi_0_1_0_rejected_clearly() {
    let wasm = guest("", r#"(func (export "proxy_abi_version_0_1_0"))"#);
    match start_error(wasm) {
        StartError::UnsupportedAbi { message } => assert!(message.contains("0.1.0"), "{message}"),
        other => panic!("expected UnsupportedAbi, got {other:?}"),
    }
}

#[test]
fn missing_allocator_rejected() {
    let wasm = guest("", ";; no allocator");
    assert_eq!(
        start_error(wasm),
        StartError::MissingExport {
            name: "proxy_on_memory_allocate".to_string()
        }
    );
}

#[test]
fn configure_false_rejects_config() {
    let wasm = guest(
        "",
        r#"(func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0))"#,
    );
    assert_eq!(
        start_error(wasm),
        StartError::ConfigRejected {
            worker: 0,
            callback: "proxy_on_configure".to_string(),
            logs: Vec::new(),
        }
    );
}

#[test]
fn vm_start_false_rejects_config() {
    let wasm = guest(
        "",
        r#"(func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 0))"#,
    );
    assert_eq!(
        start_error(wasm),
        StartError::ConfigRejected {
            worker: 0,
            callback: "proxy_on_vm_start".to_string(),
            logs: Vec::new(),
        }
    );
}

#[test]
fn trap_in_configure_is_start_error() {
    let wasm = guest(
        "",
        r#"(func (export "proxy_on_configure") (param i32 i32) (result i32) unreachable)"#,
    );
    match start_error(wasm) {
        StartError::Trap { message, .. } => {
            assert!(message.contains("proxy_on_configure"), "message: {message}");
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn non_loopback_cluster_rejected() {
    let mut options = HostOptions {
        wasm: guest("", ""),
        ..HostOptions::default()
    };
    options
        .clusters
        .insert("idp".to_string(), "10.1.2.3:443".parse().expect("address"));
    assert!(matches!(
        Envoy::start(options),
        Err(StartError::ClusterNotLoopback { .. })
    ));
}

#[test]
fn provided_imports_cover_abi_and_wasi() {
    let imports = provided_imports(AbiVersion::V0_2_1);
    let has = |module: &str, name: &str| imports.iter().any(|(m, n)| m == module && n == name);
    assert!(has("env", "proxy_http_call"));
    assert!(has("env", "proxy_get_log_level"));
    assert!(has("env", "proxy_continue_stream"));
    assert!(has("wasi_snapshot_preview1", "fd_write"));
    assert!(has("wasi_unstable", "random_get"));
    assert!(!has("env", "proxy_continue_request"), "0.1.0-only import");
    assert!(
        !provided_imports(AbiVersion::V0_2_0)
            .iter()
            .any(|(_, n)| n == "proxy_get_log_level")
    );
}
