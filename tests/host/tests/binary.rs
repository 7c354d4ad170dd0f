//! The `envoy-host` binary as a reverse proxy between a client and a loopback upstream.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{guest, serialize, serve, wat_bytes};

/// Rejects requests without `authorization` with a 401, and tags the others.
fn auth_filter() -> Vec<u8> {
    let headers = serialize(&[("www-authenticate", "Bearer")]);
    let body = format!(
        r#"
  (data (i32.const 1024) "authorization")
  (data (i32.const 1040) "missing token")
  (data (i32.const 1056) "no token")
  (data (i32.const 1072) "x-checked")
  (data (i32.const 1088) "yes")
  (data (i32.const 2048) "{}")
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (if (call $get_value (i32.const 0) (i32.const 1024) (i32.const 13) (i32.const 40) (i32.const 44))
      (then
        (drop (call $local (i32.const 401) (i32.const 1040) (i32.const 13) (i32.const 1056) (i32.const 8) (i32.const 2048) (i32.const {}) (i32.const -1))))
      (else
        (drop (call $add (i32.const 0) (i32.const 1072) (i32.const 9) (i32.const 1088) (i32.const 3)))))
    (i32.const 0))
"#,
        wat_bytes(&headers),
        headers.len()
    );
    guest(
        r#"
  (import "env" "proxy_get_header_map_value" (func $get_value (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $local (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))"#,
        &body,
    )
}

/// Kills the child by its handle and removes its files when the test ends, even if it
/// panics.
struct Proxy {
    child: Child,
    dir: PathBuf,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn launch(upstream: SocketAddr) -> (Proxy, SocketAddr) {
    let dir = std::env::temp_dir().join(format!("envoy-host-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let wasm_path = dir.join("filter.wasm");
    let config_path = dir.join("config.json");
    std::fs::write(&wasm_path, auth_filter()).expect("write module");
    std::fs::write(&config_path, "{}").expect("write config");

    let mut child = Command::new(env!("CARGO_BIN_EXE_envoy-host"))
        .arg("--wasm")
        .arg(&wasm_path)
        .arg("--config")
        .arg(&config_path)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.to_string(),
            "--workers",
            "2",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start envoy-host");
    let stdout = child.stdout.take().expect("stdout");
    let proxy = Proxy { child, dir };
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the listening line");
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("listening address");
    (proxy, address)
}

fn get(address: SocketAddr, extra_headers: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect to envoy-host");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    write!(
        stream,
        "GET /orders HTTP/1.1\r\nHost: api.test\r\n{extra_headers}\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
}

#[test]
fn proxy_rejects_and_forwards() {
    let upstream = serve(|_| b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nupstream ok".to_vec());
    let (mut proxy, address) = launch(upstream.address);

    let rejected = get(address, "");
    assert!(
        rejected.starts_with("HTTP/1.1 401 "),
        "response: {rejected}"
    );
    assert!(
        rejected.contains("www-authenticate: Bearer\r\n"),
        "response: {rejected}"
    );
    assert!(rejected.ends_with("no token"), "response: {rejected}");

    let accepted = get(address, "Authorization: Bearer abc\r\n");
    assert!(
        accepted.starts_with("HTTP/1.1 200 "),
        "response: {accepted}"
    );
    assert!(accepted.ends_with("upstream ok"), "response: {accepted}");
    let seen = upstream
        .requests
        .recv_timeout(Duration::from_secs(5))
        .expect("the upstream saw the request");
    assert!(
        seen.starts_with("GET /orders HTTP/1.1\r\n"),
        "upstream saw: {seen}"
    );
    assert!(seen.contains("host: api.test\r\n"), "upstream saw: {seen}");
    assert!(seen.contains("x-checked: yes\r\n"), "upstream saw: {seen}");
    assert!(
        seen.contains("authorization: Bearer abc\r\n"),
        "upstream saw: {seen}"
    );

    // Closing standard input stops the proxy.
    drop(proxy.child.stdin.take());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = proxy.child.try_wait().expect("poll child") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "envoy-host did not stop after stdin closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status: {status}");
}
