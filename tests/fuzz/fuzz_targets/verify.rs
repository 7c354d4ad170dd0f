//! Structured input: a token, a key set and a policy, each either a known-good document,
//! a known-good document with fuzzer text spliced in, or raw fuzzer text. Nothing may
//! panic, and a known token verifies only with its own key set.
#![no_main]

#[path = "common.rs"]
mod common;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::policy::Policy;
use portcullis::verify::verify_token;

#[derive(Arbitrary, Debug)]
enum Piece<'a> {
    Known(u8),
    Spliced { base: u8, at: u16, cut: u8, text: &'a str },
    Raw(&'a str),
}

impl Piece<'_> {
    fn build(&self, known: &[String]) -> String {
        let pick = |index: u8| known.get(usize::from(index) % known.len().max(1)).cloned().unwrap_or_default();
        match self {
            Self::Known(index) => pick(*index),
            Self::Spliced { base, at, cut, text } => {
                let base = pick(*base);
                let mut at = usize::from(*at) % (base.len() + 1);
                while !base.is_char_boundary(at) {
                    at -= 1;
                }
                let mut end = (at + usize::from(*cut)).min(base.len());
                while !base.is_char_boundary(end) {
                    end -= 1;
                }
                format!("{}{text}{}", &base[..at], &base[end..])
            }
            Self::Raw(text) => (*text).to_string(),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    token: Piece<'a>,
    jwks: Piece<'a>,
    policy: Piece<'a>,
    now: u64,
    known_time: Option<u8>,
    allow_symmetric: bool,
}

fuzz_target!(|input: Input<'_>| {
    let known = common::known();
    let token = input.token.build(&known.tokens);
    let jwks = input.jwks.build(&known.jwks);
    let policy = input.policy.build(&known.policies);
    let now = match input.known_time {
        Some(index) => known.times[usize::from(index) % known.times.len()],
        None => input.now,
    };
    let Ok(keys) = KeySet::from_json(jwks.as_bytes(), KeySetOptions { allow_symmetric: input.allow_symmetric }) else { return };
    let Ok(policy) = Policy::from_json(policy.as_bytes()) else { return };
    let result = verify_token(&token, &keys, &policy, now);
    // A changed known token must never verify with the key set of the token it came from.
    if let (Piece::Spliced { base, .. }, Piece::Known(set), Ok(_)) = (&input.token, &input.jwks, &result) {
        let original = &known.tokens[usize::from(*base) % known.tokens.len()];
        if usize::from(*base) % known.tokens.len() == usize::from(*set) % known.jwks.len() && token != *original {
            panic!("a changed token verified: {token}");
        }
    }
});
