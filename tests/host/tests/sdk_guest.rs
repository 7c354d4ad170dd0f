//! A filter built with the proxy-wasm Rust SDK (`guests/sdk-filter`) loads and runs.
//!
//! The test builds the guest with `cargo build --release --target wasm32-wasip1` into
//! Cargo's per-test temporary directory (about 5 s the first time); the `wasm32-wasip1`
//! target must be installed (`rustup target add wasm32-wasip1`).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{pairs, serve};
use envoy_host::{Envoy, HostOptions, Outcome, Request, StartError};

fn sdk_filter() -> Vec<u8> {
    static WASM: OnceLock<Vec<u8>> = OnceLock::new();
    WASM.get_or_init(|| {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("guests/sdk-filter/Cargo.toml");
        let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sdk-filter");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip1",
                "--manifest-path",
            ])
            .arg(&manifest)
            .arg("--target-dir")
            .arg(&target_dir)
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .status()
            .expect("run cargo to build the SDK guest");
        assert!(
            status.success(),
            "building guests/sdk-filter failed ({status}); is the wasm32-wasip1 target installed?"
        );
        let wasm = target_dir.join("wasm32-wasip1/release/sdk_filter.wasm");
        std::fs::read(&wasm).unwrap_or_else(|e| panic!("read {}: {e}", wasm.display()))
    })
    .clone()
}

fn start_sdk(configure: impl FnOnce(&mut HostOptions)) -> Result<Envoy, StartError> {
    let mut options = HostOptions {
        wasm: sdk_filter(),
        ..HostOptions::default()
    };
    configure(&mut options);
    Envoy::start(options)
}

#[test]
fn sdk_filter_forwards_and_denies() {
    let mut envoy = start_sdk(|o| o.workers = 2).expect("the SDK filter starts");

    let forwarded = envoy.send(1, Request::get("api", "/"));
    let Outcome::Forwarded { headers, .. } = forwarded else {
        panic!("expected forwarding, got {forwarded:?}");
    };
    assert!(
        headers.contains(&("x-sdk".to_string(), "1".to_string())),
        "{headers:?}"
    );

    let denied = envoy.send(0, Request::get("api", "/").header("x-deny", "1"));
    assert_eq!(
        denied,
        Outcome::LocalReply {
            status: 403,
            headers: pairs(&[
                ("x-reason", "denied"),
                ("content-length", "9"),
                ("content-type", "text/plain"),
            ]),
            body: b"forbidden".to_vec(),
            details: String::new(),
        }
    );
}

#[test]
fn sdk_filter_resumes_after_callout() {
    let server = serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nkeys".to_vec());
    let mut envoy = start_sdk(|o| {
        o.clusters.insert("upstream".to_string(), server.address);
        o.pump_limit = Duration::from_secs(10);
    })
    .expect("the SDK filter starts");

    let outcome = envoy.send(0, Request::get("api", "/").header("x-call", "1"));

    let Outcome::Forwarded { headers, .. } = outcome else {
        panic!("expected forwarding after the callout, got {outcome:?}");
    };
    assert!(
        headers.contains(&("x-called".to_string(), "200".to_string())),
        "{headers:?}"
    );
    assert!(
        headers.contains(&("x-body-length".to_string(), "4".to_string())),
        "{headers:?}"
    );
    assert_eq!(envoy.callouts().len(), 1);
}

#[test]
fn sdk_filter_config_rejection() {
    let result = start_sdk(|o| o.plugin_config = b"reject".to_vec());
    assert!(
        matches!(result, Err(StartError::ConfigRejected { ref callback, .. }) if callback == "proxy_on_configure"),
        "{:?}",
        result.err()
    );
}
