#!/bin/sh
# Runs one cargo-fuzz target of the verification core for a given time.
#
# Usage: tests/fuzz/run.sh TARGET SECONDS [extra libFuzzer options]
#   TARGET is one of: token, jwks, policy, verify, signatures.
#
# cargo-fuzz needs nightly compiler flags (-Zsanitizer=address and others). This script
# uses the installed stable toolchain with RUSTC_BOOTSTRAP=1, which unlocks them; set
# FUZZ_TOOLCHAIN=nightly to use a nightly toolchain instead. It installs cargo-fuzz from
# crates.io when it is missing. New corpus entries go to tests/fuzz/corpus/TARGET (not
# committed); the committed seeds in tests/fuzz/seeds/TARGET are read as well. cargo-fuzz
# writes crashing inputs to tests/fuzz/artifacts/TARGET. The build goes to $CARGO_TARGET_DIR
# when set, else tests/fuzz/target.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer options]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

fuzz_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$fuzz_dir/../.." && pwd)
case $target in
    token | jwks | policy | verify | signatures) ;;
    *)
        echo "unknown target '$target'; the targets are token, jwks, policy, verify and signatures" >&2
        exit 2
        ;;
esac

if ! cargo fuzz --version > /dev/null 2>&1; then
    echo "cargo-fuzz is missing; installing it from crates.io" >&2
    cargo install cargo-fuzz --version 0.13.2
fi

toolchain=${FUZZ_TOOLCHAIN:-}
if [ -z "$toolchain" ]; then
    export RUSTC_BOOTSTRAP=1
    toolchain_arg=
else
    toolchain_arg=+$toolchain
fi

mkdir -p "$fuzz_dir/corpus/$target"
seeds=
if [ -d "$fuzz_dir/seeds/$target" ]; then
    seeds="$fuzz_dir/seeds/$target"
fi

cd "$root"
# shellcheck disable=SC2086 # $toolchain_arg and $seeds are empty or one word
exec cargo $toolchain_arg fuzz run "$target" \
    --fuzz-dir "$fuzz_dir" \
    --target-dir "${CARGO_TARGET_DIR:-$fuzz_dir/target}" \
    "$fuzz_dir/corpus/$target" $seeds \
    -- -max_total_time="$seconds" "$@"
