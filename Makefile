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
# At opt-level z LLVM inlines almost nothing. An inlining threshold of 15 in the link-time
# pass (the flag reaches only the final crate, where LTO runs) made a cached-token request
# 4.1 -> 3.6 µs of guest time for 388,852 -> 394,016 bytes (median of five runs of
# 100,000 cached-token requests in tests/envoy/bench.rs, 2026-12-05); a threshold of 20
# put the filter over 400,000 bytes.
FILTER_Z_RUSTC_FLAGS := -C llvm-args=-inline-threshold=15
FILTER_RUSTC_FLAGS := $(if $(filter z,$(FILTER_OPT_LEVEL)),-- $(FILTER_Z_RUSTC_FLAGS))
# The size-tuned filter that `make bench` measures beside the default one, built in target
# directories of its own so that it does not displace the default build.
FILTER_Z_WASM := target/filter-z/portcullis.wasm
FILTER_Z_BUILD := target/filter-z-build
ENVOY_HOST := target/release/envoy-host

.PHONY: demo test pkg filter filter-z host bench bench-envoy install install-browser test-rust test-wasm test-js test-demo check-nostd clean

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
	$(CARGO) rustc --lib --profile wasm-release --target wasm32-wasip1 --features $(FILTER_FEATURES) --crate-type cdylib $(FILTER_OPT_CONFIG) $(FILTER_RUSTC_FLAGS)
	$(MAKE) --no-print-directory $(FILTER_WASM)

# The filter at opt-level z, as `make filter FILTER_OPT_LEVEL=z` builds it, into $(FILTER_Z_WASM).
filter-z: install
	CARGO_TARGET_DIR=$(FILTER_Z_BUILD) $(CARGO) rustc --lib --profile wasm-release --target wasm32-wasip1 --features $(FILTER_FEATURES) \
	  --crate-type cdylib --config 'profile.wasm-release.opt-level="z"' -- $(FILTER_Z_RUSTC_FLAGS)
	mkdir -p $(dir $(FILTER_Z_WASM))
	js/node_modules/.bin/wasm-opt -Oz --strip-producers $(FILTER_Z_BUILD)/wasm32-wasip1/wasm-release/portcullis.wasm -o $(FILTER_Z_WASM)

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

test-rust: install filter filter-z
	$(CARGO) test --workspace
	# The Envoy filter tests again, on the size-tuned build that the Envoy guide offers.
	PORTCULLIS_FILTER_WASM=$(FILTER_Z_WASM) $(CARGO) test --test envoy
	$(CARGO) test --features es256k --lib --tests
	# The Ed25519 tables and unrolled ECDSA arithmetic of the filter and the bench module,
	# against ed25519-dalek and the p256/p384 crates.
	$(CARGO) test --features ed25519-tables,ecdsa-unrolled --lib --test fast_paths --test tamper --test rfc_vectors
	$(CARGO) test --release -p portcullis-crypto --features unrolled
	# The filter's own unit tests (ABI helpers, key fetches): native, with `envoy`.
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
# 2-core machine once built. docs/bench/filter-z/filter.json: the time per request of the
# opt-level z build, about two minutes more with its first build.
bench-envoy: install filter filter-z
	$(CARGO) bench --bench envoy_filter
	PORTCULLIS_FILTER_WASM=$(FILTER_Z_WASM) PORTCULLIS_FILTER_BUILD='make filter FILTER_OPT_LEVEL=z (opt-level "z", $(FILTER_Z_RUSTC_FLAGS))' \
	  PORTCULLIS_FILTER_COMMAND='make bench-envoy (PORTCULLIS_FILTER_WASM=$(FILTER_Z_WASM) cargo bench --bench envoy_filter -- filter --out-dir docs/bench/filter-z)' \
	  $(CARGO) bench --bench envoy_filter -- filter --out-dir docs/bench/filter-z

clean:
	$(CARGO) clean
	find pkg -mindepth 1 ! -name README.md -delete
