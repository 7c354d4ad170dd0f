//! Arbitrary bytes as a policy document. Whatever compiles is used to verify the known
//! tokens with their key sets.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use portcullis::policy::Policy;
use portcullis::verify::verify_token;

fuzz_target!(|data: &[u8]| {
    let policy = match Policy::from_json(data) {
        Ok(policy) => policy,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let known = common::known();
    for (token, keys) in known.tokens.iter().zip(&known.key_sets) {
        for now in known.times {
            let _ = verify_token(token, keys, &policy, now);
        }
    }
});
