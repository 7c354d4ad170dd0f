//! Many requests, valid and invalid mixed, through one VM, watching the guest's memory.
//! `make test` runs a short version; the `envoy_soak` bench runs a million.

// The bench reads fields and helpers the short test does not.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use envoy_host::{Envoy, HostOptions, Outcome, Request};
use portcullis::alg::Algorithm;
use serde_json::{json, Value};

use crate::common;
use crate::fixture::{self, Authz};

/// Distinct HS256 tokens cycled through, more than the default cache size (1000), so the
/// cache keeps evicting.
const DISTINCT_TOKENS: usize = 1500;

/// The mix repeats every this many requests.
const CYCLE: usize = 12;

/// Requests of warm-up. By request 9,000 every distinct token has been sent once and the
/// verified-token cache is full. At request 30,000 the clock passes the 30 s refetch
/// cooldown, and the unknown `kid` causes a refetch. A refetch prepares a new key set
/// while the old one still serves.
pub const WARM_UP: usize = 35_000;

/// Requests of the short soak. Another refetch falls after warm-up, at request 60,000.
pub const SHORT_RUN: usize = 65_000;

/// Seed of the stand-in's random source in the short soak. The token cache's maps take
/// their layout from its random hash key, and the allocator's use of pages follows. With
/// fresh random bytes, a run without any leak sometimes took one more 64 KiB page after
/// warm-up (2 runs of 25). With a seed every run takes the same pages.
pub const SHORT_RUN_SEED: u64 = 0x706f_7274_6375_6c6c;

/// Warm-up of the long soak in `make bench-envoy`, which sends twice as many requests.
/// The guest's memory rises in steps until a plateau: each scheduled refresh of the
/// remote key set (`cache_duration` 300 s, and the clock moves one second per thousand
/// requests) and each unknown-`kid` refetch prepares a new key set while the old one
/// still serves, and the token cache's maps take their shape from its random hash key.
/// In five runs the plateau came between request 300,000 and 500,000, and a run of
/// 3,000,000 requests stayed on it from request 300,000 on. A leak grows with the
/// number of requests, so the soak fails on any growth in its second half.
pub const LONG_WARM_UP: usize = 1_000_000;

/// Providers `idp` (the fixture's remote keys) and `hs` (an inline HMAC key), a public
/// path, and a rule per provider.
pub fn soak_config(authz: &Authz) -> Value {
    let hs_key = common::private_jwk("K_HS");
    json!({
        "providers": {
            "idp": authz.remote_provider(),
            "hs": {
                "issuer": fixture::LOCAL_ISSUER,
                "audiences": [fixture::LOCAL_AUDIENCE],
                "algorithms": ["HS256"],
                "local_jwks": { "inline": { "keys": [hs_key] } },
                "claim_to_headers": [{ "header_name": "x-jwt-sub", "claim_name": "sub" }]
            }
        },
        "rules": [
            { "match": { "prefix": "/public" } },
            { "match": { "prefix": "/hs" }, "requires": { "provider_name": "hs" } },
            { "match": { "prefix": "/" }, "requires": { "provider_name": "idp" } }
        ]
    })
}

/// The requests of one cycle, by position, and what each kind is.
pub struct Mix {
    idp: Vec<(&'static str, Option<String>)>,
    hs_tokens: Vec<String>,
}

impl Mix {
    /// Builds the tokens: the fixture's, tampered and foreign ones, and distinct HS256
    /// tokens.
    pub fn new(authz: &Authz) -> Mix {
        let valid = authz.token("valid");
        let tampered = fixture::tamper_signature(valid);
        let unknown_kid = common::sign_json(
            Algorithm::RS256,
            &common::private_jwk("K_ATK_RSA"),
            &json!({ "alg": "RS256", "kid": "attacker", "typ": "at+jwt" }),
            &json!({ "sub": "x" }),
        );
        let hs_key = common::private_jwk("K_HS");
        let hs_tokens = (0..DISTINCT_TOKENS)
            .map(|index| {
                let header = json!({ "alg": "HS256", "kid": hs_key["kid"] });
                let claims = fixture::local_claims(&json!({ "jti": format!("soak-{index}"), "exp": fixture::now_seconds() + 24 * 3600 }));
                common::sign_json(Algorithm::HS256, &hs_key, &header, &claims)
            })
            .collect();
        Mix {
            idp: vec![
                ("valid", Some(format!("Bearer {valid}"))),
                ("valid with write scope", Some(format!("Bearer {}", authz.token("validWrite")))),
                ("missing", None),
                ("malformed header", Some(String::from("Bearer a b"))),
                ("tampered signature", Some(format!("Bearer {tampered}"))),
                ("wrong audience (RS256)", Some(format!("Bearer {}", authz.token("wrongAudience")))),
                ("garbage", Some(String::from("Bearer abc.def.ghi"))),
                ("unknown kid", Some(format!("Bearer {unknown_kid}"))),
                ("wrong audience (ES256)", Some(format!("Bearer {}", authz.token("es256")))),
            ],
            hs_tokens,
        }
    }

    /// Request number `index` of the mix.
    pub fn request(&self, index: usize) -> Request {
        let slot = index % CYCLE;
        match slot {
            9 | 10 => {
                let token = &self.hs_tokens[(index / CYCLE * 2 + slot - 9) % DISTINCT_TOKENS];
                Request::get("api.test", "/hs/items").header("authorization", &format!("Bearer {token}"))
            }
            11 => Request::get("api.test", "/public/status").header("x-jwt-sub", "spoofed"),
            _ => {
                let (_, authorization) = &self.idp[slot];
                let request = Request::get("api.test", "/orders?page=2").header("x-jwt-sub", "spoofed");
                match authorization {
                    Some(value) => request.header("authorization", value),
                    None => request,
                }
            }
        }
    }

    /// Describes what the mix sends, for the record.
    pub fn describe(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.idp.iter().map(|(name, _)| format!("{name} (idp)")).collect();
        kinds.push(format!("two of {DISTINCT_TOKENS} distinct valid HS256 tokens (cache evictions)"));
        kinds.push(String::from("public path without a token"));
        kinds
    }
}

/// Counts the first `requests` requests of the mix that are let through: the two valid
/// `idp` tokens, the two HS256 tokens and the public path of each cycle.
pub fn expected_forwarded(requests: usize) -> usize {
    (0..requests).filter(|index| matches!(index % CYCLE, 0 | 1 | 9 | 10 | 11)).count()
}

/// What a soak run saw.
#[derive(Debug, Default)]
pub struct SoakReport {
    pub requests: usize,
    pub forwarded: usize,
    pub replies: std::collections::BTreeMap<u16, usize>,
    pub other: usize,
    pub memory_at_start: usize,
    pub memory_after_warm_up: usize,
    pub memory_at_end: usize,
    /// Guest memory every tenth of the run, after warm-up.
    pub memory_samples: Vec<usize>,
    pub elapsed: Duration,
    pub guest_time: Duration,
}

/// Sends `requests` requests of the mix to worker 0, moving the clock one second every
/// thousand requests. Memory is read after `warm_up` requests and at the end.
pub fn run(envoy: &mut Envoy, mix: &Mix, requests: usize, warm_up: usize) -> SoakReport {
    let mut report = SoakReport { requests, memory_at_start: envoy.memory_bytes(0), ..SoakReport::default() };
    let started = Instant::now();
    let guest_before = envoy.guest_time(0);
    let sample_every = (requests / 10).max(1);
    for index in 0..requests {
        match envoy.send(0, mix.request(index)) {
            Outcome::Forwarded { .. } => report.forwarded += 1,
            Outcome::LocalReply { status, .. } => *report.replies.entry(status).or_default() += 1,
            _ => report.other += 1,
        }
        if index % 1000 == 999 {
            envoy.advance(Duration::from_secs(1));
            envoy.drain_logs();
        }
        if index + 1 == warm_up {
            report.memory_after_warm_up = envoy.memory_bytes(0);
        }
        if index >= warm_up && (index + 1) % sample_every == 0 {
            report.memory_samples.push(envoy.memory_bytes(0));
        }
    }
    report.elapsed = started.elapsed();
    report.guest_time = envoy.guest_time(0) - guest_before;
    report.memory_at_end = envoy.memory_bytes(0);
    report
}

/// Host options for a soak: one worker, logs at info so the host keeps few lines.
pub fn soak_options(authz: &Authz) -> HostOptions {
    let mut options = fixture::options(&soak_config(authz), authz.clusters());
    options.log_level = envoy_host::LogLevel::Info;
    options
}

#[test]
fn memory_flat_after_warm_up() {
    let authz = Authz::shared();
    let mut options = soak_options(authz);
    options.random_seed = Some(SHORT_RUN_SEED);
    let mut envoy = fixture::start(options);
    let mix = Mix::new(authz);
    let report = run(&mut envoy, &mix, SHORT_RUN, WARM_UP);
    assert_eq!(report.other, 0, "{report:?}");
    assert_eq!(report.forwarded, expected_forwarded(SHORT_RUN), "{report:?}");
    assert_eq!(report.memory_at_end, report.memory_after_warm_up, "guest memory grew after warm-up: {report:?}");
    assert_eq!(envoy.failure(0), None);
}

