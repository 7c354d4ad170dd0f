//! Shared set-up for the filter tests: the built filter, the token fixture (a real
//! oidc-provider on 127.0.0.1) and host options.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, SystemTime};

use envoy_host::{Clock, Envoy, HostOptions, LogLevel, Outcome, Request, StartError};
use serde_json::{json, Value};

/// Path of the filter module; `make filter` builds it.
pub fn filter_path() -> PathBuf {
    match std::env::var_os("PORTCULLIS_FILTER_WASM") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/wasm32-wasip1/wasm-release/portcullis.wasm"),
    }
}

/// Reads the filter module, failing the test with a hint when it was not built.
pub fn filter_wasm() -> Vec<u8> {
    let path = filter_path();
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!("cannot read the filter at {}: {error}; build it with `make filter`", path.display())
    })
}

/// The authorization server fixture: a real oidc-provider with tokens from real logins.
pub struct Authz {
    child: Child,
    _stdin: ChildStdin,
    pub issuer: String,
    pub port: u16,
    pub jwks_uri: String,
    pub jwks: Value,
    pub audience: String,
    pub tokens: BTreeMap<String, String>,
}

impl Authz {
    /// Starts `node js/authz/fixture.mjs` and reads its one line of JSON.
    pub fn start() -> Authz {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("js/authz/fixture.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node must be installed to run the token fixture");
        let stdin = child.stdin.take().expect("piped stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("fixture output");
        let output: Value = serde_json::from_str(&line)
            .unwrap_or_else(|error| panic!("fixture printed {line:?}: {error}; run `npm ci` in js/"));
        let tokens = output["tokens"]
            .as_object()
            .expect("tokens")
            .iter()
            .map(|(name, token)| (name.clone(), token.as_str().expect("token").to_string()))
            .collect();
        Authz {
            child,
            _stdin: stdin,
            issuer: output["issuer"].as_str().expect("issuer").to_string(),
            port: u16::try_from(output["port"].as_u64().expect("port")).expect("port fits"),
            jwks_uri: output["jwksUri"].as_str().expect("jwksUri").to_string(),
            jwks: output["jwks"].clone(),
            audience: output["audience"].as_str().expect("audience").to_string(),
            tokens,
        }
    }

    /// A token by fixture name (`valid`, `es256`, `wrongAudience`, `wrongIssuer`, ...).
    pub fn token(&self, name: &str) -> &str {
        self.tokens.get(name).unwrap_or_else(|| panic!("no fixture token {name}"))
    }

    /// The cluster map pointing `authz` at the server.
    pub fn clusters(&self) -> BTreeMap<String, SocketAddr> {
        BTreeMap::from([(String::from("authz"), SocketAddr::from(([127, 0, 0, 1], self.port)))])
    }

    /// A provider with the server's remote key set.
    pub fn remote_provider(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "audiences": [self.audience],
            "algorithms": ["RS256", "ES256"],
            "profile": "rfc9068",
            "remote_jwks": {
                "http_uri": { "uri": self.jwks_uri, "cluster": "authz", "timeout": "2s" },
                "cache_duration": "300s"
            },
            "claim_to_headers": [
                { "header_name": "x-jwt-sub", "claim_name": "sub" },
                { "header_name": "x-jwt-scope", "claim_name": "scope" }
            ]
        })
    }
}

impl Drop for Authz {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Host options for a configuration, with a manual clock at the real current time.
pub fn options(config: &Value, clusters: BTreeMap<String, SocketAddr>) -> HostOptions {
    HostOptions {
        wasm: filter_wasm(),
        plugin_config: serde_json::to_vec(config).expect("config serializes"),
        root_id: String::from("portcullis"),
        vm_id: String::from("portcullis"),
        clusters,
        clock: Clock::Manual(SystemTime::now()),
        log_level: LogLevel::Debug,
        pump_limit: Duration::from_secs(10),
        ..HostOptions::default()
    }
}

/// Starts the host, failing the test on any start error.
pub fn start(options: HostOptions) -> Envoy {
    Envoy::start(options).unwrap_or_else(|error: StartError| panic!("host start failed: {error}"))
}

/// A GET request to `/orders`, with an `Authorization: Bearer` header when a token is given.
pub fn request(token: Option<&str>) -> Request {
    let request = Request::get("api.example.test", "/orders").header("x-jwt-sub", "spoofed");
    match token {
        Some(token) => request.header("authorization", &format!("Bearer {token}")),
        None => request,
    }
}

/// Returns a header of a forwarded request or local reply.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

/// Unpacks a local reply as (status, www-authenticate, body), failing otherwise.
pub fn reply(outcome: &Outcome) -> (u16, String, String) {
    match outcome {
        Outcome::LocalReply { status, headers, body, .. } => (
            *status,
            header(headers, "www-authenticate").unwrap_or_default().to_string(),
            String::from_utf8_lossy(body).into_owned(),
        ),
        other => panic!("expected a local reply, got {other:?}"),
    }
}

/// Unpacks forwarded headers, failing otherwise.
pub fn forwarded(outcome: &Outcome) -> &[(String, String)] {
    match outcome {
        Outcome::Forwarded { headers, .. } => headers,
        other => panic!("expected the request to be forwarded, got {other:?}"),
    }
}
