# portcullis: `make demo` runs the main job, `make test` runs every test. Both install
# what they need first (.ci/install.sh is idempotent).

SHELL := /bin/bash
CARGO ?= cargo
FILTER_WASM := target/filter/portcullis.wasm
# The filter as cargo links it, before wasm-opt.
FILTER_LINKED := target/wasm32-wasip1/wasm-release/portcullis.wasm
# Cargo features of the filter; `make filter FILTER_FEATURES=envoy,es256k` adds ES256K.
FILTER_FEATURES ?= envoy
# Optimisation level of the filter: unset means the wasm-release profile's 3.
# `make filter FILTER_OPT_LEVEL=s` or `=z` trades speed for size (docs/envoy/README.md, Limits).
FILTER_OPT_LEVEL ?=
FILTER_OPT_CONFIG := $(if $(FILTER_OPT_LEVEL),--config 'profile.wasm-release.opt-level=$(if $(filter s z,$(FILTER_OPT_LEVEL)),"$(FILTER_OPT_LEVEL)",$(FILTER_OPT_LEVEL))')
ENVOY_HOST := target/release/envoy-host

.PHONY: demo test pkg filter host bench bench-envoy install install-browser test-rust test-wasm test-js test-demo check-nostd clean

install:
	.ci/install.sh rust-targets npm wasm-bindgen

install-browser:
	.ci/install.sh chromium

# The Envoy filter: a proxy-wasm module for wasm32-wasip1. wasm-opt (npm binaryen, which
# `install` puts in js/node_modules) drops the name section and shrinks the module by
# about 15 % (812,470 to 692,825 bytes when this was written). The filter benchmark
# measured the same time per request before and after. wasm-opt runs only when cargo has
# relinked the module.
filter: install
	$(CARGO) rustc --lib --profile wasm-release --target wasm32-wasip1 --features $(FILTER_FEATURES) --crate-type cdylib $(FILTER_OPT_CONFIG)
	$(MAKE) --no-print-directory $(FILTER_WASM)

$(FILTER_WASM): $(FILTER_LINKED)
	mkdir -p $(dir $@)
	js/node_modules/.bin/wasm-opt -Oz --strip-producers $< -o $@.partial
	mv $@.partial $@

# The Envoy stand-in used by the demo.
host:
	$(CARGO) build --release -p portcullis-envoy-host --bin envoy-host

# The npm package in pkg/.
pkg: install
	js/package/build.sh

demo: install filter host pkg
	node js/demo/demo.mjs --filter-wasm $(FILTER_WASM) --envoy-host $(ENVOY_HOST)

check-nostd: install
	$(CARGO) rustc --lib --target wasm32v1-none --crate-type rlib

test-rust: install filter
	$(CARGO) test --workspace
	$(CARGO) test --features es256k --lib --tests
	# The Ed25519 tables and unrolled ECDSA arithmetic of the filter and the bench module,
	# against ed25519-dalek and the p256/p384 crates.
	$(CARGO) test --features ed25519-tables,ecdsa-unrolled --lib --test fast_paths --test tamper --test rfc_vectors
	$(CARGO) test --release -p portcullis-crypto --features unrolled
	# The filter's own unit tests (ABI helpers, key fetches, maps): native, with `envoy`.
	$(CARGO) test --features envoy --lib envoy::
	$(CARGO) clippy --workspace --all-targets --features envoy,cli -- -D warnings

test-wasm: install install-browser
	js/package/test-wasm.sh

test-js: pkg install-browser
	cd js && npm test

# The React and Angular example apps, driven through login by Playwright in Chromium.
test-examples: pkg install-browser
	js/examples/test.sh

test-demo: demo

test: check-nostd test-rust test-wasm test-js test-examples test-demo

bench: install filter pkg bench-envoy
	.ci/bench.sh

# The Envoy filter's measurements: docs/bench/filter.json (time per request) and
# docs/bench/soak.json (two million requests through one VM): about five minutes on a
# 2-core machine once built.
bench-envoy: install filter
	$(CARGO) bench --bench envoy_filter

clean:
	$(CARGO) clean
	find pkg -mindepth 1 ! -name README.md -delete
