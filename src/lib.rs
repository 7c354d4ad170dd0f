//! # portcullis
//!
//! One OAuth 2.0 bearer-token verification core for every gate a request passes: the
//! browser and edge workers (feature `web`, wasm-bindgen) and Envoy (feature `envoy`,
//! proxy-wasm on `wasm32-wasip1`). The core is `no_std` + `alloc`.
//!
//! ## Design decisions
//!
//! - **One pipeline, fixed order**: parse → select key → verify signature → check claims
//!   → policy. [`verify`] documents the order; the first failure wins.
//! - **Trust in types**: [`token::UntrustedToken`] is syntax-checked only; only
//!   [`verify::Verifier::verify`] produces a [`verify::VerifiedToken`]. No public type
//!   means "signature checked, claims not yet".
//! - **Configuration chooses, tokens do not**: the algorithm allowlist comes from the
//!   [`policy::Policy`]; `none` is not even representable ([`alg::Algorithm`]); keys come
//!   from a configured [`jwks::KeySet`], never from `jwk`/`jku`/`x5u`/`x5c` headers;
//!   `exp` is required unless the policy opts out.
//! - **Time and randomness are arguments**: the core never reads a clock or an RNG.
//! - **Errors are data**: one enum per phase ([`error`]), each variant with a stable
//!   [`error::ErrorCode`] shared with JavaScript and Envoy metrics, mapped to RFC 6750 in
//!   one exhaustive match.
//! - **Nothing panics on input**: sizes are checked before decoding, JSON nesting is
//!   bounded, duplicate JSON members are rejected ([`json`]).
//!
//! ## Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `std` | `std::error::Error` implementations |
//! | `web` | wasm-bindgen exports: PKCE, state/nonce, authorization requests, inspection |
//! | `web-verify` | `web` plus `verifyToken` |
//! | `web-gate` | `web-verify` plus the request gate (class `Gate`) for edge workers |
//! | `npm-cdylib` | only for the npm package's `.wasm` files: no std, a small allocator |
//! | `envoy` | the proxy-wasm filter |
//! | `cli` | the `portcullis` command line |
//! | `es256k` | ES256K (secp256k1) |
//!
//! ## Verifying a token
//!
//! ```
//! use portcullis::{jwks::{KeySet, KeySetOptions}, policy::Policy, verify::Verifier};
//!
//! let policy = Policy::from_json(br#"{
//!     "issuer": "https://idp.example.com/",
//!     "audiences": ["api://example-api"],
//!     "algorithms": ["RS256", "ES256"]
//! }"#).unwrap();
//! let keys = KeySet::from_json(br#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#, KeySetOptions::default()).unwrap();
//! let error = Verifier::new(policy).verify("not.a.token", &keys, 1_700_000_000).unwrap_err();
//! assert_eq!(error.code().as_str(), "invalid_base64");
//! ```
#![no_std]
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

extern crate alloc;

#[cfg(any(feature = "std", test))]
extern crate std;

pub mod alg;
pub mod authorization;
pub mod bearer;
pub mod claims;
pub mod config;
pub mod dpop;
#[cfg(feature = "envoy")]
pub mod envoy;
pub mod error;
pub mod gate;
pub mod idmap;
pub mod introspection;
pub mod json;
pub mod jwks;
pub mod keycache;
pub mod pkce;
pub mod policy;
pub mod revocation;
mod schema;
pub mod siphash;
pub mod token;
pub mod verify;
#[cfg(feature = "web")]
pub mod web;

pub use error::{ErrorCode, VerifyError};
pub use jwks::{KeySet, KeySetOptions};
pub use policy::Policy;
pub use token::{inspect_token, parse_token};
pub use verify::{verify_token, VerifiedToken, Verifier};

// wasm builds without an OS never need getrandom: the core takes random bytes as
// arguments, and the browser adapter (`web`) reads `crypto.getRandomValues` itself. The
// dependency is linked only because `rsa` names it, so this source always fails.
#[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
fn no_randomness(_buffer: &mut [u8]) -> Result<(), getrandom::Error> {
    Err(getrandom::Error::UNSUPPORTED)
}

#[cfg(all(target_arch = "wasm32", not(target_os = "wasi")))]
getrandom::register_custom_getrandom!(no_randomness);
