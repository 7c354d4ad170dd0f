//! Arbitrary bytes as a token: parsing, inspection and full verification against every
//! known key set and policy must never panic.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use portcullis::token::{inspect_token, parse_token, MAX_TOKEN_BYTES_LIMIT};
use portcullis::verify::verify_token;

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let _ = parse_token(token, MAX_TOKEN_BYTES_LIMIT);
    let _ = inspect_token(token, MAX_TOKEN_BYTES_LIMIT);
    let known = common::known();
    for keys in &known.key_sets {
        for policy in &known.compiled {
            for now in known.times {
                if let Err(error) = verify_token(token, keys, policy, now) {
                    let _ = error.code().as_str();
                }
            }
        }
    }
});
