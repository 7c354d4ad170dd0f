//! The benchmark cases, their signed tokens and key sets, and the bench module of
//! tests/bench-wasm in wasmtime, shared by the `verify` and `criterion_verify` benchmarks so
//! that both time the same tokens with the same keys.

use portcullis::alg::Algorithm;
use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::policy::Policy;
use serde_json::json;

use crate::common;

/// The engine settings of every wasmtime measurement, as the pages print them.
pub const WASMTIME_ENGINE: &str = "wasmtime 48.0.10, Cranelift opt_level speed";

/// One algorithm and the fixture key (a name in tests/vectors/keys.json) that signs its token.
pub struct Case {
    pub name: &'static str,
    pub alg: Algorithm,
    pub key: &'static str,
}

pub const CASES: &[Case] = &[
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
pub struct Fixture {
    pub case: &'static Case,
    pub now: u64,
    pub token: String,
    pub jwks: String,
    pub policy: String,
}

/// The key set options of every case: the HS256 case needs its `oct` key.
const KEY_SET_OPTIONS: KeySetOptions = KeySetOptions { allow_symmetric: true };

pub fn fixture(case: &'static Case, now: u64) -> Fixture {
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

impl Fixture {
    /// Parses the fixture's key set; this is the key preparation that the benchmarks time
    /// apart from verification.
    pub fn key_set(&self) -> KeySet {
        KeySet::from_json(self.jwks.as_bytes(), KEY_SET_OPTIONS).expect("the fixture key set parses")
    }

    pub fn parsed_policy(&self) -> Policy {
        Policy::from_json(self.policy.as_bytes()).expect("the fixture policy parses")
    }
}

/// Compiles the bench module (tests/bench-wasm, built for wasm32-unknown-unknown) with the
/// settings of [`WASMTIME_ENGINE`].
pub fn load_bench_module(path: &std::path::Path) -> wasmtime::Result<(wasmtime::Engine, wasmtime::Module)> {
    let mut config = wasmtime::Config::new();
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    let engine = wasmtime::Engine::new(&config)?;
    let module = wasmtime::Module::from_file(&engine, path)?;
    Ok((engine, module))
}

/// Addresses and lengths of bytes written into the bench module's memory.
type GuestBytes = (u32, u32);

/// One instance of the bench module with a fixture's token, key set and policy in its memory.
pub struct WasmBench {
    store: wasmtime::Store<()>,
    prepare: wasmtime::TypedFunc<(u32, u32, u32, u32), u32>,
    verify: wasmtime::TypedFunc<(u32, u32, u64, u32), u32>,
    jwks: GuestBytes,
    policy: GuestBytes,
    token: GuestBytes,
    now: u64,
}

impl WasmBench {
    /// Instantiates the module and copies the fixture's inputs into its memory; call
    /// [`WasmBench::prepare`] before [`WasmBench::verify`].
    pub fn load(engine: &wasmtime::Engine, module: &wasmtime::Module, fixture: &Fixture) -> wasmtime::Result<Self> {
        let mut store = wasmtime::Store::new(engine, ());
        let instance = wasmtime::Instance::new(&mut store, module, &[])?;
        let memory = instance.get_memory(&mut store, "memory").ok_or_else(|| wasmtime::format_err!("no memory export"))?;
        let alloc: wasmtime::TypedFunc<u32, u32> = instance.get_typed_func(&mut store, "bench_alloc")?;
        let mut write = |bytes: &[u8]| -> wasmtime::Result<GuestBytes> {
            let len = u32::try_from(bytes.len())?;
            let pointer = alloc.call(&mut store, len)?;
            memory.write(&mut store, pointer as usize, bytes)?;
            Ok((pointer, len))
        };
        let jwks = write(fixture.jwks.as_bytes())?;
        let policy = write(fixture.policy.as_bytes())?;
        let token = write(fixture.token.as_bytes())?;
        Ok(Self {
            prepare: instance.get_typed_func(&mut store, "bench_prepare")?,
            verify: instance.get_typed_func(&mut store, "bench_verify")?,
            store,
            jwks,
            policy,
            token,
            now: fixture.now,
        })
    }

    /// Parses the key set and policy inside the module (`bench_prepare`); returns its
    /// status, 0 when both parse.
    pub fn prepare(&mut self) -> wasmtime::Result<u32> {
        let arguments = (self.jwks.0, self.jwks.1, self.policy.0, self.policy.1);
        self.prepare.call(&mut self.store, arguments)
    }

    /// Verifies the token `iterations` times inside the module (`bench_verify`), so one call
    /// crosses into wasm once; returns how many verifications passed.
    pub fn verify(&mut self, iterations: u32) -> wasmtime::Result<u32> {
        self.verify.call(&mut self.store, (self.token.0, self.token.1, self.now, iterations))
    }
}
