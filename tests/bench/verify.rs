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
mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{fixture, Case, Fixture, WasmBench, CASES};

/// Samples per case and runtime.
const SAMPLES: usize = 31;
/// Shortest batch; shorter batches are dominated by timer resolution.
const MIN_BATCH: Duration = Duration::from_millis(2);

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
    let prepare = sample(|iterations| {
        for _ in 0..iterations {
            std::hint::black_box(fixture.key_set());
        }
    });
    let keys = fixture.key_set();
    let policy = fixture.parsed_policy();
    let verify = sample(|iterations| {
        for _ in 0..iterations {
            portcullis::verify_token(std::hint::black_box(&fixture.token), &keys, &policy, fixture.now)
                .expect("the fixture token verifies");
        }
    });
    (summary(&verify), summary(&prepare))
}

fn wasmtime_times(module: &wasmtime::Module, engine: &wasmtime::Engine, fixture: &Fixture) -> wasmtime::Result<(Value, Value)> {
    let mut bench = WasmBench::load(engine, module, fixture)?;
    let prepare_times = sample(|iterations| {
        for _ in 0..iterations {
            let status = bench.prepare().expect("bench_prepare runs");
            assert_eq!(status, 0, "bench_prepare accepts the fixture");
        }
    });
    let verify_times = sample(|iterations| {
        let passed = bench.verify(iterations).expect("bench_verify runs");
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
        Some(path) => Some(support::load_bench_module(std::path::Path::new(path))?),
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
        "wasmtime": support::WASMTIME_ENGINE,
        "samples": SAMPLES,
        "min_batch_ms": MIN_BATCH.as_secs_f64() * 1e3,
        "results": results,
    });
    std::fs::write(out_dir.join("rust.json"), serde_json::to_string_pretty(&document)?)?;
    Ok(())
}
