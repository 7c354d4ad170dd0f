//! The wasm-bindgen adapter behind the npm package `portcullis` (feature `web`), its
//! `portcullis/verify` entry point (feature `web-verify`) and its `portcullis/gate` entry
//! point for edge workers (feature `web-gate`).
//!
//! Each export converts JavaScript values to Rust, calls the core, and converts the result
//! back. No check lives here: PKCE rules, authorization request and response rules,
//! NumericDate rules and the verification pipeline are the core's. Failures are thrown as
//! the classes of `js/package/errors.js`:
//!
//! - `TokenError` for every core failure that has an [`ErrorCode`](crate::ErrorCode), with
//!   `code` (its string form) and `status` ([`ErrorCode::http_status`](crate::ErrorCode::http_status));
//! - `AuthorizationResponseError` for a rejected authorization response, with `code` from
//!   [`ResponseErrorCode`](crate::authorization::ResponseErrorCode);
//! - `TypeError` or `RangeError` for arguments of the wrong type or range, and for
//!   authorization request parameters that cannot be sent (programming errors).
//!
//! The adapter reads the clock (`Date.now()`) only where the caller omits `now`, and takes
//! randomness from `crypto.getRandomValues` through a wasm-bindgen import.

mod authorization;
mod convert;
#[cfg(feature = "web-verify")]
mod dpop;
mod errors;
#[cfg(feature = "web-gate")]
mod gate;
mod inspect;
mod pkce;
// Single-threaded WebAssembly only: talc's wasm allocator assumes no atomics.
#[cfg(all(feature = "npm-cdylib", target_arch = "wasm32", target_os = "unknown", not(target_feature = "atomics")))]
mod runtime;
#[cfg(feature = "web-verify")]
mod verify;

pub use authorization::{build_authorization_url, parse_authorization_response};
#[cfg(feature = "web-verify")]
pub use dpop::verify_dpop_proof;
#[cfg(feature = "web-gate")]
pub use gate::WebGate;
pub use inspect::{expires_in, inspect_token, is_expired};
pub use pkce::{create_pkce, pkce_challenge, random_nonce, random_state, verify_pkce};
#[cfg(feature = "web-verify")]
pub use verify::verify_token;
