//! Criterion benchmarks of token verification per algorithm: the group `native` runs
//! `portcullis::verify_token` in this process, the group `wasmtime` runs it inside the bench
//! module of tests/bench-wasm. The cases, tokens and keys are those of the `verify` bench
//! (tests/bench/support.rs).
//!
//! Usage: `BENCH_WASM=MODULE cargo bench --bench criterion_verify [-- CRITERION_OPTIONS]`,
//! run by .ci/bench.sh. `MODULE` is tests/bench-wasm built for wasm32-unknown-unknown;
//! without `BENCH_WASM` only the native group runs. Criterion writes its estimates to
//! `$CARGO_TARGET_DIR/criterion/GROUP/CASE/new/estimates.json` (nanoseconds per
//! verification), which js/bench/page.mjs puts on docs/benchmarks.md.
//!
//! The settings below kept a run of both groups at 93 seconds on a loaded 2-core machine.
//! Command-line options such as `--sample-size` and `--measurement-time` override them.

#[path = "../common/mod.rs"]
mod common;
mod support;

use std::time::{Duration, Instant};

use criterion::Criterion;
use support::{fixture, Fixture, WasmBench, CASES};

/// Samples per benchmark; criterion's minimum is 10.
const SAMPLE_SIZE: usize = 20;
const WARM_UP_TIME: Duration = Duration::from_secs(1);
/// Time for all samples of one benchmark. Twenty samples of linearly growing batches need
/// at least 210 verifications, so 4 s fits cases of up to about 19 ms a verification. The
/// slowest case, ES512 in wasmtime, took 4 to 12 ms on a 2-core machine.
const MEASUREMENT_TIME: Duration = Duration::from_secs(4);

fn bench_native(criterion: &mut Criterion, fixtures: &[Fixture]) {
    let mut group = criterion.benchmark_group("native");
    for fixture in fixtures {
        let keys = fixture.key_set();
        let policy = fixture.parsed_policy();
        group.bench_function(fixture.case.name, |bencher| {
            bencher.iter(|| {
                portcullis::verify_token(std::hint::black_box(&fixture.token), &keys, &policy, fixture.now)
                    .expect("the fixture token verifies")
            });
        });
    }
    group.finish();
}

fn bench_wasmtime(criterion: &mut Criterion, fixtures: &[Fixture], module_path: &std::path::Path) -> wasmtime::Result<()> {
    let (engine, module) = support::load_bench_module(module_path)?;
    eprintln!("criterion_verify: the wasmtime group runs {} in {}", module_path.display(), support::WASMTIME_ENGINE);
    let mut group = criterion.benchmark_group("wasmtime");
    for fixture in fixtures {
        let mut bench = WasmBench::load(&engine, &module, fixture)?;
        let status = bench.prepare()?;
        if status != 0 {
            return Err(wasmtime::format_err!("{}: bench_prepare rejected the fixture with status {status}", fixture.case.name));
        }
        // One call into the module runs the whole batch, as in the `verify` bench.
        group.bench_function(fixture.case.name, |bencher| {
            bencher.iter_custom(|iterations| {
                let iterations = u32::try_from(iterations).expect("criterion asks for fewer than 2^32 iterations per sample");
                let started = Instant::now();
                let passed = bench.verify(iterations).expect("bench_verify runs");
                let elapsed = started.elapsed();
                assert_eq!(passed, iterations, "{}: every verification in wasmtime passes", fixture.case.name);
                elapsed
            });
        });
    }
    group.finish();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut criterion = Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(WARM_UP_TIME)
        .measurement_time(MEASUREMENT_TIME)
        .without_plots()
        .configure_from_args();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let fixtures: Vec<Fixture> = CASES.iter().map(|case| fixture(case, now)).collect();

    bench_native(&mut criterion, &fixtures);
    match std::env::var_os("BENCH_WASM") {
        Some(path) => bench_wasmtime(&mut criterion, &fixtures, std::path::Path::new(&path))?,
        None => eprintln!("criterion_verify: BENCH_WASM is not set, so the wasmtime group is skipped"),
    }
    criterion.final_summary();
    Ok(())
}
