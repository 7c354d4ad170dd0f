#!/usr/bin/env bash
# Builds the npm package `portcullis` into pkg/ and writes docs/sizes-npm.json.
#
# The package has three WebAssembly modules, one per entry point:
#   light   `portcullis`         features npm-cdylib             PKCE, state, requests, inspection
#   verify  `portcullis/verify`  features web-verify,npm-cdylib  signature verification
#   gate    `portcullis/gate`    features web-gate,npm-cdylib    request gate for edge workers
# Each goes through cargo (cdylib, wasm-release profile), wasm-bindgen (targets `bundler` and
# `web`; Node.js loads the `web` build synchronously) and `wasm-opt -Oz` from npm binaryen.
# The gate entry point also has a `workerd` build: Cloudflare Workers cannot compile
# WebAssembly at run time, so its loader imports the .wasm as a compiled module.
# `portcullis/client` has no module of its own: its entry file imports the light entry
# point beside it.
#
# Everything in pkg/ but its README is generated, and each build deletes it first, so edit
# the sources in js/package/ and src/, never the generated files. pkg/README.md is tracked:
# it is the README that users of the package get in its tarball.
#
# The wasm-bindgen and wasm-opt output of each module is kept in TARGET/npm-modules/ and
# reused while the module that cargo built, the tools and this script are unchanged.
#
# Usage: js/package/build.sh   (idempotent; installs what it needs through .ci/install.sh)
# Honours CARGO_TARGET_DIR. Needs nothing on the network once .ci/install.sh has run.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source_dir="$root/js/package"
out="$root/pkg"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
wasm_opt="$root/js/node_modules/.bin/wasm-opt"
# Largest gzipped size of the light module; the build fails above it.
light_gzip_budget=40960

log() { printf 'build: %s\n' "$*" >&2; }
fail() { printf 'build: error: %s\n' "$*" >&2; exit 1; }

"$root/.ci/install.sh" rust-targets wasm-bindgen npm

started=$SECONDS

# Size: opt-level "z" everywhere except the arithmetic of the signature algorithms in the
# verify module. There, opt-level "z" made ES256 about 1.7 times slower than opt-level 2, and
# opt-level 3 for them was no faster than 2 and 2 % larger (js/package/bench-verify.mjs, Node.js 20,
# shared 2-core machine). The light module links none of these crates. portcullis-crypto (RSA,
# ECDSA and HMAC) stays at "z" in the verify module: at opt-level 2 it put that module at
# 125.8 KB gzip, over its 120 KB budget (measured with `make pkg`, 2026-12-05). The gate
# module, which edge workers run and which has no size budget, compiles it at opt-level 2.
# At "z" the P-256 and P-384 arithmetic is still fast because it is written out limb by
# limb (Cargo feature `ecdsa-unrolled`): with it ES256 took 655 µs per verification in
# js/package/bench-verify.mjs, without it 1,562 µs.
speed_crates=(p256 p384 p521 primeorder elliptic-curve ecdsa ed25519-dalek curve25519-dalek sha2)

# Builds one module: build_module NAME FEATURES
build_module() {
  local name="$1" features="$2"
  local config=(--config 'profile.wasm-release.opt-level="z"')
  if [[ "$name" == verify || "$name" == gate ]]; then
    local crate
    for crate in "${speed_crates[@]}"; do
      config+=(--config "profile.wasm-release.package.${crate}.opt-level=2")
    done
  fi
  if [[ "$name" == gate ]]; then
    config+=(--config 'profile.wasm-release.package.portcullis-crypto.opt-level=2')
  fi
  log "cargo: $name (features $features)"
  (cd "$root" && CARGO_TARGET_DIR="$target_dir" cargo rustc --quiet --lib --profile wasm-release --target wasm32-unknown-unknown \
      --features "$features" --crate-type cdylib "${config[@]}")
  # Both modules are written to the same path; copy each one before building the next.
  cp "$target_dir/wasm32-unknown-unknown/wasm-release/portcullis.wasm" "$work/$name.wasm"

  # wasm-bindgen and wasm-opt take most of a rebuild. Their output depends only on the
  # module, the two tools and this script, so an unchanged module reuses the last output.
  local key cached
  key="$( { cat "$work/$name.wasm" "${BASH_SOURCE[0]}"; wasm-bindgen --version; "$wasm_opt" --version; } | sha256sum | cut -c1-32)"
  cached="$cache_dir/$name-$key"
  if [[ -d "$cached" ]]; then
    log "$name: module unchanged, reusing the wasm-bindgen and wasm-opt output"
    mkdir -p "$out/dist"
    cp -r "$cached/." "$out/dist/"
    return
  fi

  local target
  for target in bundler web; do
    local dir="$out/dist/$target/$name"
    mkdir -p "$dir"
    wasm-bindgen --target "$target" --no-typescript --out-dir "$dir" --out-name "portcullis_$name" "$work/$name.wasm"
    "$wasm_opt" -Oz --strip-producers "$dir/portcullis_${name}_bg.wasm" -o "$dir/portcullis_${name}_bg.wasm"
    # The bundler loader replaces wasm-bindgen's own entry file.
    if [[ "$target" == bundler ]]; then
      rm "$dir/portcullis_$name.js"
    fi
    share_errors_module "$dir"
  done

  rm -rf "$cache_dir/$name-"*
  mkdir -p "$cached.partial"
  for target in bundler web; do
    mkdir -p "$cached.partial/$target"
    cp -r "$out/dist/$target/$name" "$cached.partial/$target/"
  done
  mv "$cached.partial" "$cached"
}

# Points the glue of one module at the shared dist/errors.js instead of its own copy in
# snippets/, so that both entry points throw the same TokenError class.
share_errors_module() {
  local dir="$1" file
  for file in "$dir"/*.js; do
    sed -i -E "s#'\./snippets/portcullis-[0-9a-f]+/js/package/errors\.js'#'../../errors.js'#" "$file"
    if grep -q 'snippets/' "$file"; then
      fail "$file still imports from snippets/; update share_errors_module for this wasm-bindgen version"
    fi
  done
  rm -rf "$dir/snippets"
}

cache_dir="$target_dir/npm-modules"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$out"
find "$out" -mindepth 1 ! -name README.md -delete

build_module light npm-cdylib
build_module verify web-verify,npm-cdylib
build_module gate web-gate,npm-cdylib

grep -q "'../../errors.js'" "$out/dist/web/light/portcullis_light.js" \
  || fail "the light glue does not import the shared errors.js"

log "entry points and types"
cp "$source_dir/errors.js" "$out/dist/errors.js"
for target in bundler web node; do
  dir="$out/dist/$target"
  mkdir -p "$dir"
  cp "$source_dir/index.js" "$source_dir/verify.js" "$source_dir/gate.js" "$source_dir/client.js" "$dir/"
  for name in light verify gate; do
    sed "s/@ENTRY@/$name/g" "$source_dir/loaders/$target.js" > "$dir/$name-loader.js"
  done
done
mkdir -p "$out/dist/workerd"
cp "$source_dir/gate.js" "$out/dist/workerd/"
sed "s/@ENTRY@/gate/g" "$source_dir/loaders/workerd.js" > "$out/dist/workerd/gate-loader.js"
cp "$source_dir/index.d.ts" "$source_dir/verify.d.ts" "$source_dir/gate.d.ts" "$source_dir/client.d.ts" "$source_dir/errors.d.ts" "$source_dir/json.d.ts" "$out/"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)"
[[ -n "$version" ]] || fail "no version in Cargo.toml"
sed "s/@VERSION@/$version/" "$source_dir/package.json" > "$out/package.json"

log "sizes"
node "$source_dir/sizes.mjs" "$out" "$root/docs/sizes-npm.json" "$light_gzip_budget"

log "done in $((SECONDS - started)) s: $out"
