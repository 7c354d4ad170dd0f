//! Exports for timing `portcullis::verify_token` inside a WebAssembly engine.
//!
//! The host writes inputs into memory returned by [`bench_alloc`], prepares the key set and
//! policy once with [`bench_prepare`], then times [`bench_verify`] calls of many iterations
//! each. Nothing is imported: the host reads the clock.

use std::cell::RefCell;

use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::policy::Policy;

thread_local! {
    static PREPARED: RefCell<Option<(KeySet, Policy)>> = const { RefCell::new(None) };
}

/// Allocates `len` bytes that the host fills; they are never freed (a bench run is short).
#[unsafe(no_mangle)]
pub extern "C" fn bench_alloc(len: usize) -> *mut u8 {
    Box::leak(vec![0u8; len].into_boxed_slice()).as_mut_ptr()
}

fn bytes<'a>(pointer: *const u8, len: usize) -> &'a [u8] {
    // SAFETY: the host passes a pointer from `bench_alloc` and at most its length.
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts(pointer, len)
    }
}

/// Parses a JWKS document (symmetric keys allowed) and a policy; returns 0 on success,
/// 1 for a bad key set, 2 for a bad policy. The time this takes is key preparation.
#[unsafe(no_mangle)]
pub extern "C" fn bench_prepare(jwks: *const u8, jwks_len: usize, policy: *const u8, policy_len: usize) -> u32 {
    let Ok(keys) = KeySet::from_json(bytes(jwks, jwks_len), KeySetOptions { allow_symmetric: true }) else {
        return 1;
    };
    let Ok(policy) = Policy::from_json(bytes(policy, policy_len)) else {
        return 2;
    };
    PREPARED.with(|prepared| *prepared.borrow_mut() = Some((keys, policy)));
    0
}

/// Verifies the token `iterations` times at `now`; returns how many verifications passed.
#[unsafe(no_mangle)]
pub extern "C" fn bench_verify(token: *const u8, token_len: usize, now: u64, iterations: u32) -> u32 {
    let Ok(token) = std::str::from_utf8(bytes(token, token_len)) else {
        return 0;
    };
    PREPARED.with(|prepared| {
        let prepared = prepared.borrow();
        let Some((keys, policy)) = prepared.as_ref() else {
            return 0;
        };
        (0..iterations).filter(|_| portcullis::verify_token(token, keys, policy, now).is_ok()).count() as u32
    })
}
