//! Helpers shared by the host tests: a WAT prelude for test guests, readers for the values
//! guests report, and small loopback HTTP servers.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use envoy_host::{Envoy, HostOptions};

/// Builds a test guest: ABI 0.2.1 marker, `_initialize`, a bump allocator, 4 pages of
/// memory, the imports every guest uses, and helpers:
///
/// - `$report (key_ptr, key_len, value)` stores `value` as 4 little-endian bytes in shared
///   data under the key, so a test reads it with `reported`.
/// - `$say (ptr, len)` logs the bytes at info level.
///
/// Addresses 0..1024 are scratch space (16..20 is used by `$report`); tests put their
/// strings at 1024 and above with `(data ...)`; the heap starts at 65536.
///
/// A body that exports its own `_initialize`, `_start` or `proxy_abi_version_*`, or that
/// contains the comment `;; no allocator`, replaces the corresponding default.
pub fn guest(imports: &str, body: &str) -> Vec<u8> {
    let marker = if body.contains("proxy_abi_version_") || body.contains(";; no abi marker") {
        ""
    } else {
        r#"(func (export "proxy_abi_version_0_2_1"))"#
    };
    let initialize =
        if body.contains(r#"(export "_initialize")"#) || body.contains(r#"(export "_start")"#) {
            ""
        } else {
            r#"(func (export "_initialize"))"#
        };
    let allocator = if body.contains(";; no allocator") {
        ""
    } else {
        ALLOCATOR
    };
    let text = format!(
        r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_set_shared_data" (func $set_shared (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_shared_data" (func $get_shared (param i32 i32 i32 i32 i32) (result i32)))
  {imports}
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const 65536))
  {marker}
  {initialize}
  {allocator}
  (func $report (param $key i32) (param $key_len i32) (param $value i32)
    (i32.store (i32.const 16) (local.get $value))
    (drop (call $set_shared (local.get $key) (local.get $key_len) (i32.const 16) (i32.const 4) (i32.const 0))))
  (func $say (param $ptr i32) (param $len i32)
    (drop (call $log (i32.const 2) (local.get $ptr) (local.get $len))))
  {body}
)"#
    );
    wat::parse_str(&text).unwrap_or_else(|e| panic!("test guest does not assemble: {e}\n{text}"))
}

/// A bump allocator that grows memory when the heap passes its end.
const ALLOCATOR: &str = r#"(func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $ptr i32)
    (local.set $ptr (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $size)) (i32.const 7)) (i32.const -8)))
    (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1))))))
    (local.get $ptr))"#;

/// Starts a host with `wasm` and otherwise default options changed by `configure`.
pub fn start(wasm: Vec<u8>, configure: impl FnOnce(&mut HostOptions)) -> Envoy {
    let mut options = HostOptions {
        wasm,
        ..HostOptions::default()
    };
    configure(&mut options);
    Envoy::start(options).unwrap_or_else(|e| panic!("host did not start: {e}"))
}

/// Reads a value a guest stored with `$report`.
pub fn reported(envoy: &Envoy, key: &str) -> u32 {
    let (bytes, _) = envoy
        .shared_data(key)
        .unwrap_or_else(|| panic!("the guest reported no value for {key:?}"));
    let array: [u8; 4] = bytes
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("value for {key:?} is not 4 bytes: {bytes:?}"));
    u32::from_le_bytes(array)
}

/// Returns the messages logged on `worker`, in order.
pub fn messages(envoy: &Envoy, worker: usize) -> Vec<String> {
    envoy
        .logs()
        .into_iter()
        .filter(|r| r.worker == worker)
        .map(|r| r.message)
        .collect()
}

/// Escapes bytes for a WAT string literal.
pub fn wat_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// Serializes header pairs in the proxy-wasm map format.
pub fn serialize(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Turns `&[(&str, &str)]` into owned pairs.
pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A loopback HTTP server that writes `respond(request_head)` verbatim to each connection.
/// The request heads it reads arrive on `requests`. An empty response keeps the
/// connection open without a reply for 20 seconds.
pub struct Server {
    pub address: SocketAddr,
    pub requests: mpsc::Receiver<String>,
}

pub fn serve(respond: impl Fn(&str) -> Vec<u8> + Send + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let address = listener.local_addr().expect("local address");
    let (sender, requests) = mpsc::channel();
    thread::spawn(move || {
        for connection in listener.incoming() {
            let Ok(mut stream) = connection else {
                return;
            };
            let head = read_head(&mut stream);
            let _ = sender.send(head.clone());
            let answer = respond(&head);
            if answer.is_empty() {
                // Hold the connection without a reply.
                thread::spawn(move || {
                    thread::sleep(Duration::from_secs(20));
                    drop(stream);
                });
                continue;
            }
            let _ = stream.write_all(&answer);
        }
    });
    Server { address, requests }
}

fn read_head(stream: &mut TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut head = String::new();
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap_or(0);
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; content_length];
    let _ = reader.read_exact(&mut body);
    head.push_str(&String::from_utf8_lossy(&body));
    head
}

/// Returns an address on which nothing listens (a port that was just released).
pub fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address")
}
