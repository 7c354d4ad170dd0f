//! A stand-in for Envoy that loads a proxy-wasm filter (ABI 0.2.1, `wasm32-wasip1`) in
//! wasmtime and runs HTTP requests through it, for tests where no Envoy binary is available.
//!
//! The host copies the behaviour of Envoy's Wasm filter, which is built on
//! proxy-wasm-cpp-host. That covers the imports it links, the start-up order, header-map
//! and buffer semantics with their return statuses, and local replies. It also covers HTTP
//! callouts (real HTTP/1.1 to loopback clusters), ticks, shared data with
//! compare-and-swap, and shared queues and metrics shared by all worker VMs. `README.md` beside this crate lists what it copies and what it leaves out.
//!
//! ```no_run
//! use envoy_host::{Envoy, HostOptions, Outcome, Request};
//!
//! let options = HostOptions {
//!     wasm: std::fs::read("filter.wasm").unwrap(),
//!     plugin_config: br#"{"issuer": "https://issuer.example"}"#.to_vec(),
//!     ..HostOptions::default()
//! };
//! let mut envoy = Envoy::start(options).unwrap();
//! let outcome = envoy.send(0, Request::get("api.example", "/orders"));
//! assert!(matches!(outcome, Outcome::LocalReply { status: 401, .. }));
//! ```

mod abi;
mod callout;
mod envoy;
mod headers;
mod hostcalls;
pub mod http;
mod memory;
mod options;
mod state;
mod vm;
mod wasi;

pub use abi::{AbiVersion, MetricKind, provided_imports};
pub use envoy::{Envoy, RequestId};
pub use options::{
    CalloutFault, CalloutRecord, Clock, HostOptions, LogLevel, LogRecord, Outcome, Request, Response, StartError,
};
