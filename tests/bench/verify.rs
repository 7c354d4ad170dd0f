//! Times token verification natively and in wasmtime, and writes the fixtures that the
//! V8 and JavaScript measurements (js/bench/verify.mjs) use, so that every runtime verifies
//! the same tokens with the same keys.
//!
//! Usage: `cargo bench --bench verify -- OUT_DIR [BENCH_WASM]` (run by .ci/bench.sh);
//! `BENCH_ONLY=ES256,HS256` limits the run to some cases.
//! Writes `OUT_DIR/fixtures.json` and `OUT_DIR/rust.json`. `BENCH_WASM` is the module of
//! tests/bench-wasm built for wasm32-unknown-unknown; without it only native times are taken.
//!
//! One sample is the mean time per verification over a batch of at least 2 ms; each case
//! reports the minimum, median and maximum of its samples, in microseconds. A verification
//! is `portcullis::verify_token` in full: parsing, key selection, signature, claims and
//! `exp`. Key preparation (`KeySet::from_json`) is timed separately.

#[path = "../common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use portcullis::alg::Algorithm;
use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::policy::Policy;
use serde_json::{json, Value};

/// Samples per case and runtime.
const SAMPLES: usize = 31;
/// Shortest batch; shorter batches are dominated by timer resolution.
const MIN_BATCH: Duration = Duration::from_millis(2);

struct Case {
    name: &'static str,
    alg: Algorithm,
    key: &'static str,
}

const CASES: &[Case] = &[
    Case { name: "RS256-2048", alg: Algorithm::RS256, key: "K_RSA_A" },
    Case { name: "PS256-2048", alg: Algorithm::PS256, key: "K_RSA_A" },
    Case { name: "RS256-4096", alg: Algorithm::RS256, key: "K_RSA_4096" },
    Case { name: "ES256", alg: Algorithm::ES256, key: "K_EC_A" },
    Case { name: "ES384", alg: Algorithm::ES384, key: "K_P384" },
    Case { name: "ES512", alg: Algorithm::ES512, key: "K_P521" },
    Case { name: "EdDSA", alg: Algorithm::EdDSA, key: "K_ED25519" },
    Case { name: "HS256", alg: Algorithm::HS256, key: "K_HS" },
];

/// A token valid for an hour from the real clock, so that verifiers that read the clock
/// themselves (`@tsndr/cloudflare-worker-jwt`) accept it too.
struct Fixture {
    case: &'static Case,
    now: u64,
    token: String,
    jwks: String,
    policy: String,
}

fn fixture(case: &'static Case, now: u64) -> Fixture {
    let private = common::private_jwk(case.key);
    let mut public = common::public_of(&private);
    public["alg"] = json!(case.alg.name());
    let claims = json!({
        "iss": common::ISSUER,
        "aud": common::AUDIENCE,
        "sub": "user-123",
        "scope": "api:read api:write",
        "iat": now,
        "exp": now + 3600,
    });
    let header = json!({ "alg": case.alg.name(), "kid": private["kid"], "typ": "JWT" });
    Fixture {
        case,
        now,
        token: common::sign_json(case.alg, &private, &header, &claims),
        jwks: json!({ "keys": [public] }).to_string(),
        policy: json!({ "issuer": common::ISSUER, "audiences": [common::AUDIENCE], "algorithms": [case.alg.name()] })
            .to_string(),
    }
}

/// Takes `SAMPLES` batches of `run(iterations)`, each at least `MIN_BATCH` long, and returns
/// the microseconds per call of each batch, sorted.
fn sample(mut run: impl FnMut(u32)) -> Vec<f64> {
    run(1);
    let mut iterations = 1u32;
    loop {
        let started = Instant::now();
        run(iterations);
        if started.elapsed() >= MIN_BATCH {
            break;
        }
        iterations = iterations.saturating_mul(2);
    }
    let mut samples: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let started = Instant::now();
            run(iterations);
            started.elapsed().as_secs_f64() * 1e6 / f64::from(iterations)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples
}

fn summary(samples: &[f64]) -> Value {
    let round = |value: f64| (value * 100.0).round() / 100.0;
    json!({
        "min_us": round(samples.first().copied().unwrap_or(f64::NAN)),
        "median_us": round(samples[samples.len() / 2]),
        "max_us": round(samples.last().copied().unwrap_or(f64::NAN)),
        "samples": samples.len(),
    })
}

fn native(fixture: &Fixture) -> (Value, Value) {
    let options = KeySetOptions { allow_symmetric: true };
    let prepare = sample(|iterations| {
        for _ in 0..iterations {
            std::hint::black_box(KeySet::from_json(fixture.jwks.as_bytes(), options).expect("key set"));
        }
    });
    let keys = KeySet::from_json(fixture.jwks.as_bytes(), options).expect("key set");
    let policy = Policy::from_json(fixture.policy.as_bytes()).expect("policy");
    let verify = sample(|iterations| {
        for _ in 0..iterations {
            portcullis::verify_token(std::hint::black_box(&fixture.token), &keys, &policy, fixture.now)
                .expect("the fixture token verifies");
        }
    });
    (summary(&verify), summary(&prepare))
}

struct WasmBench {
    store: wasmtime::Store<()>,
    memory: wasmtime::Memory,
    alloc: wasmtime::TypedFunc<u32, u32>,
    prepare: wasmtime::TypedFunc<(u32, u32, u32, u32), u32>,
    verify: wasmtime::TypedFunc<(u32, u32, u64, u32), u32>,
}

impl WasmBench {
    fn new(engine: &wasmtime::Engine, module: &wasmtime::Module) -> wasmtime::Result<Self> {
        let mut store = wasmtime::Store::new(engine, ());
        let instance = wasmtime::Instance::new(&mut store, module, &[])?;
        let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| wasmtime::format_err!("no memory export"))?;
        Ok(Self {
            alloc: instance.get_typed_func(&mut store, "bench_alloc")?,
            prepare: instance.get_typed_func(&mut store, "bench_prepare")?,
            verify: instance.get_typed_func(&mut store, "bench_verify")?,
            memory,
            store,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> wasmtime::Result<(u32, u32)> {
        let len = u32::try_from(bytes.len())?;
        let pointer = self.alloc.call(&mut self.store, len)?;
        self.memory.write(&mut self.store, pointer as usize, bytes)?;
        Ok((pointer, len))
    }
}

fn wasmtime_times(module: &wasmtime::Module, engine: &wasmtime::Engine, fixture: &Fixture) -> wasmtime::Result<(Value, Value)> {
    let mut bench = WasmBench::new(engine, module)?;
    let jwks = bench.write(fixture.jwks.as_bytes())?;
    let policy = bench.write(fixture.policy.as_bytes())?;
    let token = bench.write(fixture.token.as_bytes())?;
    let prepare = bench.prepare.clone();
    let verify = bench.verify.clone();
    let prepare_times = sample(|iterations| {
        for _ in 0..iterations {
            let status = prepare.call(&mut bench.store, (jwks.0, jwks.1, policy.0, policy.1)).expect("bench_prepare runs");
            assert_eq!(status, 0, "bench_prepare accepts the fixture");
        }
    });
    let verify_times = sample(|iterations| {
        let passed = verify.call(&mut bench.store, (token.0, token.1, fixture.now, iterations)).expect("bench_verify runs");
        assert_eq!(passed, iterations, "{}: every verification in wasmtime passes", fixture.case.name);
    });
    Ok((summary(&verify_times), summary(&prepare_times)))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; the remaining arguments are ours.
    let arguments: Vec<String> = std::env::args().skip(1).filter(|argument| !argument.starts_with("--")).collect();
    let out_dir = std::path::PathBuf::from(arguments.first().ok_or("usage: verify OUT_DIR [BENCH_WASM]")?);
    std::fs::create_dir_all(&out_dir)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    // BENCH_ONLY=NAME,… limits the run to some cases (for profiling one algorithm).
    let only = std::env::var("BENCH_ONLY").ok();
    let selected = |case: &&Case| only.as_deref().is_none_or(|names| names.split(',').any(|name| name == case.name));
    let fixtures: Vec<Fixture> = CASES.iter().filter(selected).map(|case| fixture(case, now)).collect();
    let fixtures_json: Vec<Value> = fixtures
        .iter()
        .map(|fixture| {
            json!({
                "name": fixture.case.name,
                "alg": fixture.case.alg.name(),
                "key": fixture.case.key,
                "token": fixture.token,
                "jwks": serde_json::from_str::<Value>(&fixture.jwks).unwrap_or(Value::Null),
                "policy": serde_json::from_str::<Value>(&fixture.policy).unwrap_or(Value::Null),
            })
        })
        .collect();
    let fixtures_document = json!({
        "now": now,
        "issuer": common::ISSUER,
        "audience": common::AUDIENCE,
        "cases": fixtures_json,
    });
    std::fs::write(out_dir.join("fixtures.json"), serde_json::to_string_pretty(&fixtures_document)?)?;

    let wasm = match arguments.get(1) {
        Some(path) => {
            let mut config = wasmtime::Config::new();
            config.cranelift_opt_level(wasmtime::OptLevel::Speed);
            let engine = wasmtime::Engine::new(&config)?;
            let module = wasmtime::Module::from_file(&engine, path)?;
            Some((engine, module))
        }
        None => None,
    };

    let mut results = Vec::new();
    for fixture in &fixtures {
        let (native_verify, native_prepare) = native(fixture);
        eprintln!("native   {:<11} {native_verify}", fixture.case.name);
        let mut result = json!({
            "name": fixture.case.name,
            "alg": fixture.case.alg.name(),
            "native": native_verify,
            "native_prepare": native_prepare,
        });
        if let Some((engine, module)) = &wasm {
            let (verify, prepare) = wasmtime_times(module, engine, fixture)?;
            eprintln!("wasmtime {:<11} {verify}", fixture.case.name);
            result["wasmtime"] = verify;
            result["wasmtime_prepare"] = prepare;
        }
        results.push(result);
    }
    let document = json!({
        "wasmtime": "wasmtime 48.0.10, Cranelift opt_level speed",
        "samples": SAMPLES,
        "min_batch_ms": MIN_BATCH.as_secs_f64() * 1e3,
        "results": results,
    });
    std::fs::write(out_dir.join("rust.json"), serde_json::to_string_pretty(&document)?)?;
    Ok(())
}
