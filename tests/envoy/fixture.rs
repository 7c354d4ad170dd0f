//! Shared set-up for the filter tests: the built filter, the token fixture (a real
//! oidc-provider on 127.0.0.1) and host options.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use envoy_host::{Clock, Envoy, HostOptions, LogLevel, Outcome, Request, StartError};
use portcullis::alg::Algorithm;
use serde_json::{json, Value};

/// Path of the filter module; `make filter` builds it.
pub fn filter_path() -> PathBuf {
    match std::env::var_os("PORTCULLIS_FILTER_WASM") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/filter/portcullis.wasm"),
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
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pub issuer: String,
    pub port: u16,
    pub jwks_uri: String,
    pub jwks: Value,
    pub audience: String,
    pub tokens: BTreeMap<String, String>,
    /// The audience of opaque tokens (`tokens.opaque`).
    pub opaque_audience: String,
    pub introspection_endpoint: String,
    /// Identifier and secret of the confidential client that may introspect.
    pub api_client: (String, String),
    /// The private ES256 JWK that `tokens.dpop` is bound to.
    pub dpop_jwk: Value,
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
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("fixture output");
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
            stdin,
            stdout,
            issuer: output["issuer"].as_str().expect("issuer").to_string(),
            port: u16::try_from(output["port"].as_u64().expect("port")).expect("port fits"),
            jwks_uri: output["jwksUri"].as_str().expect("jwksUri").to_string(),
            jwks: output["jwks"].clone(),
            audience: output["audience"].as_str().expect("audience").to_string(),
            tokens,
            opaque_audience: output["opaqueAudience"].as_str().expect("opaqueAudience").to_string(),
            introspection_endpoint: output["introspectionEndpoint"].as_str().expect("introspectionEndpoint").to_string(),
            api_client: (
                output["apiClient"]["clientId"].as_str().expect("apiClient.clientId").to_string(),
                output["apiClient"]["clientSecret"].as_str().expect("apiClient.clientSecret").to_string(),
            ),
            dpop_jwk: output["dpopJwk"].clone(),
        }
    }

    /// The fixture shared by the tests of this process that do not rotate keys. It stops
    /// when the test process exits and closes its stdin.
    pub fn shared() -> &'static Authz {
        static SHARED: OnceLock<Authz> = OnceLock::new();
        SHARED.get_or_init(Authz::start)
    }

    /// Sends a command (`rotate`, `retire`, `opaque`, `revoke <token>`) and returns the
    /// fixture's JSON reply.
    pub fn command(&mut self, name: &str) -> Value {
        writeln!(self.stdin, "{name}").expect("fixture stdin");
        self.stdin.flush().expect("fixture stdin");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("fixture answer");
        let answer: Value = serde_json::from_str(&line).unwrap_or_else(|error| panic!("fixture answered {line:?}: {error}"));
        assert_ne!(answer["event"], "error", "fixture command {name} failed: {answer}");
        answer
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

/// Returns the configuration `{"providers": {"idp": provider}}`.
pub fn config(provider: Value) -> Value {
    json!({ "providers": { "idp": provider } })
}

/// Returns the first part of a plain-text denial body: `<code>: <message>`.
pub fn code_of(body: &str) -> &str {
    body.split(':').next().unwrap_or_default()
}

/// Seconds since the Unix epoch, for claims of locally signed tokens.
pub fn now_seconds() -> i64 {
    let elapsed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(elapsed.as_secs()).expect("seconds fit")
}

/// Algorithms with the committed test key that signs each, by its name in
/// tests/vectors/keys.json: every RSA, ECDSA and EdDSA algorithm of the default build, and
/// HS256.
pub const ALGORITHMS: [(Algorithm, &str); 11] = [
    (Algorithm::RS256, "K_RSA_A"),
    (Algorithm::RS384, "K_RSA_A"),
    (Algorithm::RS512, "K_RSA_A"),
    (Algorithm::PS256, "K_RSA_A"),
    (Algorithm::PS384, "K_RSA_A"),
    (Algorithm::PS512, "K_RSA_A"),
    (Algorithm::ES256, "K_EC_A"),
    (Algorithm::ES384, "K_P384"),
    (Algorithm::ES512, "K_P521"),
    (Algorithm::EdDSA, "K_ED25519"),
    (Algorithm::HS256, "K_HS"),
];

/// The issuer of locally signed tokens.
pub const LOCAL_ISSUER: &str = crate::common::ISSUER;

/// The audience of locally signed tokens.
pub const LOCAL_AUDIENCE: &str = crate::common::AUDIENCE;

/// Claims valid for an hour from now, with members added or replaced (`null` removes one).
pub fn local_claims(changes: &Value) -> Value {
    let now = now_seconds();
    let claims = json!({
        "iss": LOCAL_ISSUER,
        "aud": LOCAL_AUDIENCE,
        "sub": "user-123",
        "iat": now,
        "exp": now + 3600,
    });
    crate::common::with(&claims, changes)
}

/// Signs an RS256 token with the committed test key `K_RSA_A` (kid `rsa-a`).
pub fn local_token(changes: &Value) -> String {
    crate::common::rs256(&local_claims(changes))
}

/// Returns a provider with the committed test keys inline (`K_RSA_A` for RS256, `K_EC_A` for
/// ES256), their issuer and audience, and `fields` added or replaced.
pub fn local_provider(fields: &Value) -> Value {
    let provider = json!({
        "issuer": LOCAL_ISSUER,
        "audiences": [LOCAL_AUDIENCE],
        "algorithms": ["RS256", "ES256"],
        "local_jwks": { "inline": { "keys": crate::common::jwks_a_keys() } },
    });
    crate::common::with(&provider, fields)
}

/// Returns a counter's value, 0 when it was never defined.
pub fn metric(envoy: &Envoy, name: &str) -> u64 {
    envoy.metrics().get(name).copied().unwrap_or(0)
}

/// Asserts that no log line contains any of `secrets`.
#[track_caller]
pub fn assert_not_logged(envoy: &Envoy, secrets: &[&str]) {
    for record in envoy.logs() {
        for secret in secrets {
            assert!(!record.message.contains(secret), "a log line contains a token: {}", record.message);
        }
    }
}

/// Log lines at warning level or above that contain `text`.
pub fn warnings(envoy: &Envoy, text: &str) -> Vec<String> {
    envoy
        .logs()
        .into_iter()
        .filter(|record| record.level >= LogLevel::Warn && record.message.contains(text))
        .map(|record| record.message)
        .collect()
}

/// Returns the `:path` of every callout to `cluster`, in order.
pub fn paths_of(envoy: &Envoy, cluster: &str) -> Vec<String> {
    envoy
        .callouts()
        .iter()
        .filter(|call| call.cluster == cluster)
        .filter_map(|call| header(&call.headers, ":path").map(str::to_string))
        .collect()
}

/// `token` with one character in the middle of its signature changed, so the signature
/// no longer verifies but stays canonical base64url of the same length.
pub fn tamper_signature(token: &str) -> String {
    let (signing_input, signature) = token.rsplit_once('.').expect("three segments");
    let mut characters: Vec<char> = signature.chars().collect();
    let middle = characters.len() / 2;
    characters[middle] = if characters[middle] == 'A' { 'B' } else { 'A' };
    format!("{signing_input}.{}", characters.into_iter().collect::<String>())
}
