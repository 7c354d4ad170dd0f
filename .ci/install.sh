#!/usr/bin/env bash
# Installs what the build and tests need, idempotently: each step checks first.
# Usage: .ci/install.sh [rust-targets] [wasm-bindgen] [npm] [chromium] [all]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wasm_bindgen_version="0.2.130"

log() { printf 'install: %s\n' "$*" >&2; }

install_rust_targets() {
  local installed
  installed="$(rustup target list --installed)"
  for target in wasm32-unknown-unknown wasm32-wasip1 wasm32v1-none; do
    if ! grep -qx "$target" <<<"$installed"; then
      log "rustup target add $target"
      rustup target add "$target"
    fi
  done
}

install_wasm_bindgen() {
  if command -v wasm-bindgen >/dev/null 2>&1 \
    && [[ "$(wasm-bindgen --version)" == "wasm-bindgen $wasm_bindgen_version" ]] \
    && command -v wasm-bindgen-test-runner >/dev/null 2>&1; then
    return
  fi
  # Without --locked: a locked dependency of the CLI is missing from the registry mirror.
  # --debug halves the install time; the CLI's speed does not matter here.
  log "cargo install wasm-bindgen-cli $wasm_bindgen_version"
  cargo install --debug --force wasm-bindgen-cli --version "$wasm_bindgen_version"
}

install_npm() {
  # npm ci is quick when node_modules matches the lock file, but still rewrites it; skip
  # when the lock file has not changed since the last install.
  local dir
  for dir in "$root/js"; do
    if [[ ! -f "$dir/node_modules/.package-lock.json" || "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
      log "npm ci in ${dir#"$root"/}"
      (cd "$dir" && npm ci --no-audit --no-fund)
    fi
  done
}

install_chromium() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    return
  fi
  log "apt-get install chromium chromium-driver"
  local sudo=""
  [[ "$(id -u)" -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
}

[[ $# -gt 0 ]] || set -- all
for component in "$@"; do
  case "$component" in
    rust-targets) install_rust_targets ;;
    wasm-bindgen) install_wasm_bindgen ;;
    npm) install_npm ;;
    chromium) install_chromium ;;
    all) install_rust_targets; install_npm; install_wasm_bindgen; install_chromium ;;
    *) log "unknown component: $component"; exit 2 ;;
  esac
done
