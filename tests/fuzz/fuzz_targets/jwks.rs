//! Arbitrary bytes as a JWKS document. Whatever loads is used to verify the known tokens.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::verify::verify_token;

fuzz_target!(|data: &[u8]| {
    let known = common::known();
    for allow_symmetric in [false, true] {
        let Ok(keys) = KeySet::from_json(data, KeySetOptions { allow_symmetric }) else { continue };
        for skipped in keys.skipped() {
            let _ = skipped.to_string();
        }
        for jwk in keys.keys() {
            let _ = jwk.thumbprint_b64();
        }
        for token in &known.tokens {
            for policy in &known.compiled {
                let _ = verify_token(token, &keys, policy, known.times[0]);
            }
        }
    }
});
