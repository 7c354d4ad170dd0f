//! The Envoy filter: the proxy-wasm ABI 0.2.1 exports, dispatching to a root context
//! (configuration, keys, callouts, ticks, metrics) and HTTP contexts (one request each).
//!
//! Build: `make filter`, which runs `cargo rustc --lib --profile wasm-release --target
//! wasm32-wasip1 --features envoy --crate-type cdylib` and then `wasm-opt -Oz`.
//! The filter only converts between the host and the core: decisions come from
//! [`crate::gate`], key-cache policy from [`crate::keycache`].
//!
//! The module exports the ABI functions itself instead of using the proxy-wasm SDK,
//! because the SDK panics on host statuses it does not expect, and a panic traps the VM
//! for every request on that worker.
#![allow(unsafe_code)]

pub mod abi;
mod dpop;
mod filter;
mod introspection;
mod keys;
mod metrics;
#[cfg(any(all(target_family = "wasm", not(target_feature = "atomics")), test))]
mod pool;
mod revocation;
mod shared;

use alloc::vec::Vec;

use filter::with_filter;

/// Small blocks come from free lists by size class (see [`pool`]); only the filter
/// module uses it, not native builds with this feature. The lists take no lock, so a
/// build with wasm threads keeps std's allocator.
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: pool::Pool = pool::Pool::new();

/// Marks the module as built for ABI 0.2.1.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_abi_version_0_2_1() {}

/// Allocates `size` bytes for the host to write a buffer into.
///
/// The block is a leaked `Vec<u8>` of capacity `size`; `abi::take_buffer` takes it back.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut block: Vec<u8> = Vec::with_capacity(size);
    let pointer = block.as_mut_ptr();
    core::mem::forget(block);
    pointer
}

unsafe extern "C" {
    fn __wasm_call_ctors();
}

/// Runs static constructors; Envoy calls it once after instantiating a reactor module.
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    // SAFETY: provided by the linker for reactor modules; called once, before any other export.
    unsafe { __wasm_call_ctors() }
}

/// Creates a root context (`parent_id == 0`) or an HTTP context.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_context_create(context_id: u32, parent_id: u32) {
    with_filter(|filter| filter.create_context(context_id, parent_id));
}

/// Starts the VM; nothing to do.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

/// Reads the plugin configuration; 0 rejects it.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_configure(root_id: u32, configuration_size: usize) -> u32 {
    with_filter(|filter| u32::from(filter.configure(root_id, configuration_size))).unwrap_or(0)
}

/// Periodic work of a root context: key refresh, waiting requests.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    with_filter(|filter| filter.tick(root_id));
}

/// Decides a request from its headers; 0 continues, 1 pauses.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_headers(context_id: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    with_filter(|filter| filter.request_headers(context_id)).unwrap_or(1)
}

/// Holds the body of a request that is still waiting for a decision.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_body(context_id: u32, _body_size: usize, _end_of_stream: u32) -> u32 {
    with_filter(|filter| filter.request_data(context_id)).unwrap_or(1)
}

/// Holds the trailers of a request that is still waiting for a decision.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_request_trailers(context_id: u32, _trailers: usize) -> u32 {
    with_filter(|filter| filter.request_data(context_id)).unwrap_or(1)
}

/// Adds the headers the gate asked for (a fresh `DPoP-Nonce`) to the response.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_response_headers(context_id: u32, _headers: usize, _end_of_stream: u32) -> u32 {
    with_filter(|filter| filter.response_headers(context_id)).unwrap_or(0)
}

/// Responses pass unchanged.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_response_body(_context_id: u32, _body_size: usize, _end_of_stream: u32) -> u32 {
    0
}

/// Responses pass unchanged.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_response_trailers(_context_id: u32, _trailers: usize) -> u32 {
    0
}

/// Receives the answer to a key-set, revocation-list or introspection call.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_http_call_response(context_id: u32, token: u32, headers: usize, body_size: usize, _trailers: usize) {
    with_filter(|filter| filter.http_call_response(context_id, token, headers, body_size));
}

/// A context is done; 1 lets the host delete it.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_done(context_id: u32) -> u32 {
    with_filter(|filter| filter.done(context_id));
    1
}

/// Access logging; nothing to do.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_log(_context_id: u32) {}

/// Forgets a context.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    with_filter(|filter| filter.delete(context_id));
}

/// Shared queues are not used.
#[unsafe(no_mangle)]
pub extern "C" fn proxy_on_queue_ready(_root_id: u32, _queue_id: u32) {}
