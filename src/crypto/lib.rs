//! Verification-only signature arithmetic for portcullis.
//!
//! - [`rsa`]: RSASSA-PKCS1-v1_5 and RSASSA-PSS verification with a Montgomery
//!   exponentiation for public exponents of at most 32 bits.
//! - [`weierstrass`] over [`montgomery`]: ECDSA verification on P-256, P-384 and P-521 with
//!   per-key tables.
//! - [`hmac`]: HMAC-SHA-256/384/512 with the key's hash states prepared once.
//!
//! Keys are checked and prepared once ([`rsa::RsaVerifyingKey::new`],
//! [`weierstrass::P256VerifyingKey::p256`], [`hmac::HmacKey::new`]); verifications reuse
//! them. Nothing here runs in constant time except the final tag and encoding comparisons:
//! the inputs of a public-key verification are public. Every path is checked against the
//! `rsa`, `p256`, `p384`, `p521` and `hmac` crates in portcullis's tests
//! (tests/fast_paths.rs) and fuzz target (tests/fuzz, target `signatures`).
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

extern crate alloc;

pub mod hmac;
pub mod montgomery;
pub mod rsa;
pub mod weierstrass;
