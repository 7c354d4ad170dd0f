#!/usr/bin/env bash
# Measures token verification natively, in wasmtime, in V8, and with `jose` and
# `@tsndr/cloudflare-worker-jwt` in Node.js, in one run, then runs the criterion benchmarks
# (natively and in wasmtime), and writes docs/benchmarks.md, docs/bench/verify.json and
# docs/bench/verify.svg. Called by `make bench`, which builds the filter and the npm package
# first (their sizes are on the page) and runs `make bench-envoy` (docs/bench/filter.json,
# soak.json).
#
# Usage: .ci/bench.sh   (idempotent; installs what it needs through .ci/install.sh)
# BENCH_RUNS (default 2) sets how many times the measurements repeat; the page shows the
# first run and every run's medians. Honours CARGO_TARGET_DIR. Takes about a minute per run,
# and the criterion benchmarks about 90 seconds more.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
runs="${BENCH_RUNS:-2}"
log() { printf 'bench: %s\n' "$*" >&2; }

"$root/.ci/install.sh" rust-targets npm

log "building the bench module (tests/bench-wasm, wasm32-unknown-unknown)"
(cd "$root/tests/bench-wasm" && CARGO_TARGET_DIR="$target_dir" cargo build --quiet --release --target wasm32-unknown-unknown)
bench_wasm="$target_dir/wasm32-unknown-unknown/release/portcullis_bench_wasm.wasm"

log "building the native and wasmtime measurements"
(cd "$root" && CARGO_TARGET_DIR="$target_dir" cargo bench --quiet --bench verify --bench criterion_verify --no-run)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
run_dirs=()
for run in $(seq 1 "$runs"); do
  dir="$work/run$run"
  mkdir -p "$dir"
  log "run $run of $runs: native and wasmtime"
  (cd "$root" && CARGO_TARGET_DIR="$target_dir" cargo bench --quiet --bench verify -- "$dir" "$bench_wasm")
  log "run $run of $runs: V8, jose, @tsndr/cloudflare-worker-jwt"
  node "$root/js/bench/verify.mjs" "$dir/fixtures.json" "$bench_wasm" "$dir/node.json"
  run_dirs+=("$dir")
done

log "criterion: native and wasmtime"
(cd "$root" && BENCH_WASM="$bench_wasm" CARGO_TARGET_DIR="$target_dir" cargo bench --quiet --bench criterion_verify)
criterion_command="BENCH_WASM=${bench_wasm#"$root/"} cargo bench --bench criterion_verify"

node "$root/js/bench/page.mjs" \
  --runs "${run_dirs[@]}" \
  --sizes "$root/docs/sizes-npm.json" \
  --filter "$root/target/filter/portcullis.wasm" \
  --filter-z "$root/target/filter-z/portcullis.wasm" \
  --bench-wasm "$bench_wasm" \
  --docs "$root/docs" \
  --command "make bench (.ci/bench.sh, BENCH_RUNS=$runs)" \
  --criterion "$target_dir/criterion" \
  --criterion-command "$criterion_command"
