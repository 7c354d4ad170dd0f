//! Measurements of the Envoy filter in the proxy-wasm stand-in, written as JSON for the
//! benchmarks page:
//!
//! - `docs/bench/filter.json`: time in the guest per request, for a cached token and for a
//!   token verified in full, per algorithm;
//! - `docs/bench/soak.json`: a long run of valid and invalid requests through one VM, with
//!   the guest's memory before, after warm-up and at the end.
//!
//! Run with `make bench-envoy`, or
//! `cargo bench --bench envoy_filter -- [filter] [soak] [--requests N] [--out-dir DIR]`.
//! Needs the filter built (`make filter`) and `npm ci` in js/ (the soak uses the token
//! fixture). The guest is compiled with Cranelift's speed optimizations, as Envoy's
//! wasmtime runtime compiles it; Envoy's default runtime, V8, may be faster or slower.

#[path = "../common/mod.rs"]
mod common;
// The bench uses part of the test fixture.
#[allow(dead_code)]
mod fixture;
mod soak;

use std::path::{Path, PathBuf};
use std::process::Command;

use envoy_host::{Envoy, Outcome, Request};
use portcullis::alg::Algorithm;
use serde_json::{json, Value};

/// Requests measured per algorithm for tokens verified in full; each is a distinct token.
const MISS_REQUESTS: usize = 300;

/// Requests measured for cached tokens and for requests without verification.
const FAST_REQUESTS: usize = 5_000;

struct Arguments {
    filter: bool,
    soak: bool,
    requests: usize,
    out_dir: PathBuf,
}

fn arguments() -> Arguments {
    let mut parsed = Arguments {
        filter: false,
        soak: false,
        requests: 2 * soak::LONG_WARM_UP,
        out_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/bench"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "filter" => parsed.filter = true,
            "soak" => parsed.soak = true,
            "--requests" => {
                let value = args.next().unwrap_or_default();
                parsed.requests = value.replace('_', "").parse().unwrap_or_else(|_| panic!("--requests takes a number, got {value:?}"));
            }
            "--out-dir" => parsed.out_dir = PathBuf::from(args.next().expect("--out-dir takes a directory")),
            // `cargo bench` passes `--bench`; other flags are cargo's too.
            other if other.starts_with("--") => {}
            other => panic!("unknown argument {other:?}; expected filter, soak, --requests N or --out-dir DIR"),
        }
    }
    if !parsed.filter && !parsed.soak {
        parsed.filter = true;
        parsed.soak = true;
    }
    parsed
}

/// Runs a command and returns its output, trimmed, or `unknown`.
fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
        .unwrap_or_else(|| String::from("unknown"))
}

/// Returns the 1, 5 and 15 minute load averages from /proc/loadavg, because other work
/// on the machine slows the measured times.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| String::from("unknown"))
}

/// `nproc`, the `lscpu` model name and the date, for the record.
fn machine() -> (Value, String) {
    let model = command_output("lscpu", &[])
        .lines()
        .find_map(|line| line.strip_prefix("Model name:").map(|model| model.trim().to_string()))
        .unwrap_or_else(|| String::from("unknown"));
    let machine = json!({
        "nproc": command_output("nproc", &[]).parse::<u64>().ok(),
        "cpu_model": model,
        "os": command_output("uname", &["-srm"]),
        "rustc": command_output("rustc", &["--version"]),
    });
    (machine, command_output("date", &["-u", "+%Y-%m-%d"]))
}

fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("JSON") + "\n";
    std::fs::write(path, text).unwrap_or_else(|error| panic!("cannot write {}: {error}", path.display()));
    println!("wrote {}", path.display());
}

/// Keys for every algorithm, by the fixture name in tests/vectors/keys.json.
const KEYS: [&str; 6] = ["K_RSA_A", "K_EC_A", "K_P384", "K_P521", "K_ED25519", "K_HS"];


/// Builds a configuration: one provider accepting every algorithm with the committed test
/// keys inline, a public path, and the default token cache.
fn bench_config() -> Value {
    let keys: Vec<Value> = KEYS
        .iter()
        .map(|name| if *name == "K_HS" { common::private_jwk(name) } else { common::public_jwk(name) })
        .collect();
    let algorithms: Vec<&str> = fixture::ALGORITHMS.iter().map(|(alg, _)| alg.name()).collect();
    json!({
        "providers": {
            "bench": {
                "issuer": fixture::LOCAL_ISSUER,
                "audiences": [fixture::LOCAL_AUDIENCE],
                "algorithms": algorithms,
                "local_jwks": { "inline": { "keys": keys } },
                "claim_to_headers": [{ "header_name": "x-jwt-sub", "claim_name": "sub" }]
            }
        },
        "rules": [
            { "match": { "prefix": "/public" } },
            { "match": { "prefix": "/" }, "requires": { "provider_name": "bench" } }
        ]
    })
}

fn token(alg: Algorithm, key: &str, index: usize) -> String {
    let jwk = common::private_jwk(key);
    let header = json!({ "alg": alg.name(), "kid": jwk["kid"] });
    let claims = fixture::local_claims(&json!({ "jti": format!("bench-{}-{index}", alg.name()) }));
    common::sign_json(alg, &jwk, &header, &claims)
}

fn with_token(token: &str) -> Request {
    Request::get("api.test", "/orders").header("authorization", &format!("Bearer {token}"))
}

/// Time per request of one case, in microseconds.
struct Measured {
    /// Mean guest time.
    guest: f64,
    /// Median guest time of single requests.
    guest_median: f64,
    /// Mean time of the whole exchange, host and guest.
    wall: f64,
    requests: usize,
}

/// Sends the requests and returns the guest time and the wall time per request.
fn measure(envoy: &mut Envoy, requests: impl Iterator<Item = Request>, expect_forwarded: bool) -> Measured {
    let guest_before = envoy.guest_time(0);
    let started = std::time::Instant::now();
    let mut per_request = Vec::new();
    for request in requests {
        let before = envoy.guest_time(0);
        let outcome = envoy.send(0, request);
        per_request.push((envoy.guest_time(0) - before).as_secs_f64() * 1e6);
        assert_eq!(matches!(outcome, Outcome::Forwarded { .. }), expect_forwarded, "{outcome:?}");
    }
    let requests = per_request.len();
    per_request.sort_by(f64::total_cmp);
    Measured {
        guest: (envoy.guest_time(0) - guest_before).as_secs_f64() * 1e6 / requests as f64,
        guest_median: per_request.get(requests / 2).copied().unwrap_or(f64::NAN),
        wall: started.elapsed().as_secs_f64() * 1e6 / requests as f64,
        requests,
    }
}

fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn bench_filter(out_dir: &Path) {
    let mut options = fixture::options(&bench_config(), Default::default());
    options.optimize_guest = true;
    options.log_level = envoy_host::LogLevel::Info;
    let load_at_start = load_average();
    let compile_started = std::time::Instant::now();
    let mut envoy = fixture::start(options);
    let compile_s = compile_started.elapsed().as_secs_f64();
    let mut results = Vec::new();
    let mut record = |case: &str, alg: Option<&str>, measured: Measured| {
        let Measured { guest, guest_median, wall, requests } = measured;
        println!(
            "{case:<28} {:<6} guest {guest:>8.1} µs (median {guest_median:>8.1})  host+guest {wall:>8.1} µs  ({requests} requests)",
            alg.unwrap_or("-")
        );
        results.push(json!({
            "case": case,
            "alg": alg,
            "requests": requests,
            "guest_us_per_request": round(guest),
            "guest_us_median": round(guest_median),
            "host_and_guest_us_per_request": round(wall),
        }));
    };

    // Warm-up: first calls allocate the filter's maps and metrics.
    let warm = token(Algorithm::RS256, "K_RSA_A", usize::MAX);
    for _ in 0..200 {
        envoy.send(0, with_token(&warm));
        envoy.send(0, Request::get("api.test", "/public/x"));
    }

    let public = (0..FAST_REQUESTS).map(|_| Request::get("api.test", "/public/x"));
    record("no_token_required", None, measure(&mut envoy, public, true));
    let missing = (0..FAST_REQUESTS).map(|_| Request::get("api.test", "/orders"));
    record("token_missing_401", None, measure(&mut envoy, missing, false));
    let malformed = (0..FAST_REQUESTS).map(|_| Request::get("api.test", "/orders").header("authorization", "Bearer a.b"));
    record("token_malformed_401", None, measure(&mut envoy, malformed, false));
    let hits = (0..FAST_REQUESTS).map(|_| with_token(&warm));
    record("cache_hit", Some("RS256"), measure(&mut envoy, hits, true));
    for (alg, key) in fixture::ALGORITHMS {
        let tokens: Vec<String> = (0..MISS_REQUESTS).map(|index| token(alg, key, index)).collect();
        let requests = tokens.iter().map(|token| with_token(token));
        record("cache_miss_full_verification", Some(alg.name()), measure(&mut envoy, requests, true));
    }
    let tampered: Vec<String> = (0..MISS_REQUESTS)
        .map(|index| fixture::tamper_signature(&token(Algorithm::RS256, "K_RSA_A", 10_000 + index)))
        .collect();
    let requests = tampered.iter().map(|token| with_token(token));
    record("signature_invalid_401", Some("RS256"), measure(&mut envoy, requests, false));
    assert_eq!(envoy.failure(0), None);

    for (case, (code, host_calls)) in split_host_calls(&warm) {
        for result in results.iter_mut().filter(|result| result["case"] == case) {
            result["guest_code_us_per_request"] = json!(round(code));
            result["host_calls_us_per_request"] = json!(round(host_calls));
        }
    }

    let wasm = fixture::filter_wasm();
    // PORTCULLIS_FILTER_BUILD and PORTCULLIS_FILTER_COMMAND name the build and the command
    // when PORTCULLIS_FILTER_WASM picks another module.
    let build = std::env::var("PORTCULLIS_FILTER_BUILD").unwrap_or_else(|_| {
        String::from("make filter (cargo rustc --lib --profile wasm-release --target wasm32-wasip1 --features envoy --crate-type cdylib, then wasm-opt -Oz --strip-producers)")
    });
    let command = std::env::var("PORTCULLIS_FILTER_COMMAND").unwrap_or_else(|_| String::from("make bench-envoy (cargo bench --bench envoy_filter -- filter)"));
    let (machine, date) = machine();
    write_json(
        &out_dir.join("filter.json"),
        &json!({
            "description": "Time per request of the portcullis Envoy filter in the proxy-wasm stand-in (tests/host): guest_us_per_request is the mean time inside the filter's callbacks (context create, request headers, log, done, delete), host calls included, and guest_us_median the median of single requests; host_and_guest_us_per_request adds the stand-in's own work. For the cases without a signature check, a second VM times every host call. It splits the guest time into guest_code_us_per_request (the filter's own wasm code, the guest allocator included) and host_calls_us_per_request (the stand-in's implementation of the host calls, which Envoy implements differently). The two clock reads per host call make their sum larger than guest_us_per_request. cache_miss_full_verification sends a distinct token per request, so each is verified in full and stored in the cache.",
            "command": command,
            "date": date,
            "machine": machine,
            "engine": "wasmtime 48.0.10 with Cranelift opt_level speed, one VM, manual clock; Envoy's default runtime is V8",
            "filter": { "bytes": wasm.len(), "build": build },
            "keys": "tests/vectors/keys.json: RSA 2048 (RS*, PS*), P-256, P-384, P-521, Ed25519, 32-byte HMAC secret",
            "compile_seconds": round(compile_s),
            "load_average_1_5_15_min": { "start": load_at_start, "end": load_average() },
            "results": results,
        }),
    );
}

/// Runs the cases without a signature check in a VM that times its host calls, and
/// returns for each the microseconds per request of the filter's own code and of the host
/// calls.
fn split_host_calls(cached_token: &str) -> Vec<(&'static str, (f64, f64))> {
    let mut options = fixture::options(&bench_config(), Default::default());
    options.optimize_guest = true;
    options.time_host_calls = true;
    options.log_level = envoy_host::LogLevel::Info;
    let mut envoy = fixture::start(options);
    for _ in 0..200 {
        envoy.send(0, with_token(cached_token));
        envoy.send(0, Request::get("api.test", "/public/x"));
    }

    let cases: [(&'static str, Request, bool); 3] = [
        ("no_token_required", Request::get("api.test", "/public/x"), true),
        ("token_missing_401", Request::get("api.test", "/orders"), false),
        ("cache_hit", with_token(cached_token), true),
    ];
    let mut split = Vec::new();
    for (case, request, expect_forwarded) in cases {
        let host_before = envoy.host_call_time(0);
        let Measured { guest, requests, .. } = measure(&mut envoy, (0..FAST_REQUESTS).map(|_| request.clone()), expect_forwarded);
        let host_calls = (envoy.host_call_time(0) - host_before).as_secs_f64() * 1e6 / requests as f64;
        split.push((case, (guest - host_calls, host_calls)));
    }
    assert_eq!(envoy.failure(0), None);
    split
}

fn bench_soak(out_dir: &Path, requests: usize) {
    let load_at_start = load_average();
    let authz = fixture::Authz::start();
    let mut options = soak::soak_options(&authz);
    options.optimize_guest = true;
    let mut envoy = fixture::start(options);
    let mix = soak::Mix::new(&authz);
    let warm_up = soak::LONG_WARM_UP.min(requests / 2);
    println!("soak: {requests} requests, memory read after {warm_up}");
    let report = soak::run(&mut envoy, &mix, requests, warm_up);
    println!("{report:?}");

    assert_eq!(report.other, 0, "every request was forwarded or answered");
    assert_eq!(report.forwarded, soak::expected_forwarded(requests));
    assert_eq!(envoy.failure(0), None);
    let grew = report.memory_at_end > report.memory_after_warm_up;
    let replies: serde_json::Map<String, Value> = report.replies.iter().map(|(status, count)| (status.to_string(), json!(count))).collect();

    let (machine, date) = machine();
    write_json(
        &out_dir.join("soak.json"),
        &json!({
            "description": "Valid and invalid requests, mixed, through one VM of the portcullis Envoy filter in the proxy-wasm stand-in; the guest's linear memory is read at start, after warm-up (every distinct token sent once, token cache full, the remote key set refreshed and refetched for unknown kids) and at the end. Linear memory never shrinks, so a leak shows as growth after warm-up.",
            "command": format!("make bench-envoy (cargo bench --bench envoy_filter -- soak --requests {requests})"),
            "date": date,
            "machine": machine,
            "engine": "wasmtime 48.0.10 with Cranelift opt_level speed, one VM, manual clock advanced 1 s per 1000 requests",
            "requests": report.requests,
            "mix": mix.describe(),
            "outcomes": { "forwarded": report.forwarded, "replies_by_status": replies },
            "warm_up_requests": warm_up,
            "memory_bytes": {
                "start": report.memory_at_start,
                "after_warm_up": report.memory_after_warm_up,
                "end": report.memory_at_end,
                "every_tenth_after_warm_up": report.memory_samples,
            },
            "grew_after_warm_up": grew,
            "load_average_1_5_15_min": { "start": load_at_start, "end": load_average() },
            "elapsed_seconds": round(report.elapsed.as_secs_f64()),
            "guest_seconds": round(report.guest_time.as_secs_f64()),
            "guest_us_per_request": round(report.guest_time.as_secs_f64() * 1e6 / report.requests as f64),
        }),
    );
    assert!(!grew, "guest memory grew after warm-up: {report:?}");
}

fn main() {
    let arguments = arguments();
    std::fs::create_dir_all(&arguments.out_dir).expect("output directory");
    if arguments.filter {
        bench_filter(&arguments.out_dir);
    }
    if arguments.soak {
        bench_soak(&arguments.out_dir, arguments.requests);
    }
}
