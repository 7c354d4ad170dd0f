#!/usr/bin/env bash
# Runs the wasm-bindgen adapter's tests (tests/web.rs) in Node.js and in headless Chromium,
# and fails unless each runner ran every test defined there: a runner that skips tests, or
# runs in the wrong environment, exits 0 otherwise.
#
# Usage: js/package/test-wasm.sh   (installs what it needs through .ci/install.sh)
# Honours CARGO_TARGET_DIR. Chromium and the test server listen on 127.0.0.1 only.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
test_file="$root/tests/web.rs"

"$root/.ci/install.sh" rust-targets wasm-bindgen chromium

defined="$(grep -c '^#\[wasm_bindgen_test\]' "$test_file")"
[[ "$defined" -gt 0 ]] || { echo "test-wasm: no #[wasm_bindgen_test] in $test_file" >&2; exit 1; }

run_cargo_test() {
  (cd "$root" && cargo test --target wasm32-unknown-unknown --features web-verify --test web)
}

# check_run NAME OUTPUT_FILE: the runner must report the defined count as run and passed.
check_run() {
  local name="$1" output="$2" running passed
  running="$(sed -n 's/^running \([0-9]*\) tests\{0,1\}$/\1/p' "$output" | tail -n 1)"
  passed="$(sed -n 's/^test result: ok\. \([0-9]*\) passed; 0 failed; 0 ignored; 0 filtered out.*/\1/p' "$output" | tail -n 1)"
  if [[ "$running" != "$defined" || "$passed" != "$defined" ]]; then
    echo "test-wasm: $name ran ${running:-no} and passed ${passed:-no} of the $defined tests defined in tests/web.rs" >&2
    exit 1
  fi
  echo "test-wasm: $name: $passed of $defined tests passed" >&2
}

log_dir="$(mktemp -d)"
trap 'rm -rf "$log_dir"' EXIT

echo "test-wasm: Node.js" >&2
(unset WASM_BINDGEN_USE_BROWSER; run_cargo_test) 2>&1 | tee "$log_dir/node.log"
if grep -q '^Running headless tests in' "$log_dir/node.log"; then
  echo "test-wasm: the Node.js run started a browser" >&2
  exit 1
fi
check_run "Node.js" "$log_dir/node.log"

echo "test-wasm: headless Chromium" >&2
WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" run_cargo_test 2>&1 | tee "$log_dir/chrome.log"
if ! grep -q '^Running headless tests in Chrome' "$log_dir/chrome.log"; then
  echo "test-wasm: the browser run did not run in headless Chrome" >&2
  exit 1
fi
check_run "Chromium" "$log_dir/chrome.log"
