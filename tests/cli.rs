//! The `portcullis` command line, run as a separate process on the real-world cases.
//!
//! Each case writes its key set and policy to a temporary directory and checks the exit
//! status (0 accepted, 1 rejected, 2 usage or configuration) and the stable error code in
//! `error: <code>: <message>` on stderr. Key sets served over HTTP come from a server on
//! 127.0.0.1 that this test starts and stops.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use portcullis::alg::Algorithm;
use portcullis::pkce::code_challenge;
use serde_json::{json, Value};

const BINARY: &str = env!("CARGO_BIN_EXE_portcullis");

/// A directory under the system temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!("portcullis-cli-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create scratch directory");
        Self(path)
    }

    fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write scratch file");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BINARY)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start portcullis");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        // The binary stops reading after the largest token it accepts, which closes the pipe.
        if let Err(error) = input.write_all(text.as_bytes()) {
            assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {error}");
        }
    }
    drop(input);
    child.wait_with_output().expect("portcullis finishes")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {}", String::from_utf8_lossy(&output.stdout)))
}

/// One `verify` run: key set document, policy document, token, time.
struct Case<'a> {
    id: &'a str,
    jwks: String,
    policy: Value,
    token: String,
    now: u64,
}

impl Case<'_> {
    fn run(&self) -> Output {
        let scratch = Scratch::new();
        let jwks = scratch.write("jwks.json", &self.jwks);
        let policy = scratch.write("policy.json", &self.policy.to_string());
        let now = self.now.to_string();
        run(&["verify", "--jwks", &jwks, "--policy", &policy, "--now", &now, "-"], Some(&self.token))
    }

    #[track_caller]
    fn expect_rejected(&self, code: &str) {
        let output = self.run();
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{}: {message}", self.id);
        // Warnings about skipped keys may come first; the error is the last line.
        let last = message.lines().last().unwrap_or_default();
        assert!(last.starts_with(&format!("error: {code}: ")), "{}: expected {code}, stderr: {message}", self.id);
        assert!(output.stdout.is_empty(), "{}", self.id);
    }

    #[track_caller]
    fn expect_accepted(&self) -> Value {
        let output = self.run();
        assert_eq!(output.status.code(), Some(0), "{}: {}", self.id, stderr(&output));
        stdout_json(&output)
    }
}

fn case<'a>(id: &'a str, token: String) -> Case<'a> {
    Case { id, jwks: jwks_json(&jwks_a_keys()), policy: p0_json(), token, now: NOW }
}

#[test]
fn cli_verify_prints_claims() {
    let claims = case("RS256", rs256(&valid_claims())).expect_accepted();
    assert_eq!(claims, valid_claims());
    let claims = case("ES256", es256(&valid_claims())).expect_accepted();
    assert_eq!(claims, valid_claims());

    // The token may also be an argument instead of standard input.
    let scratch = Scratch::new();
    let jwks = scratch.write("jwks.json", &jwks_json(&jwks_a_keys()));
    let policy = scratch.write("policy.json", &p0_json().to_string());
    let token = rs256(&valid_claims());
    let output = run(&["verify", "--jwks", &jwks, "--policy", &policy, "--now=1700000000", &token], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout_json(&output), valid_claims());
}

#[test]
fn cli_real_world_rejections() {
    let rsa = private_jwk("K_RSA_A");
    let admin = claims_with(&json!({"role": "admin"}));
    let pem = fixtures()["key_forms"]["K_RSA_A"]["spki_pem"].as_str().expect("pem").to_string();
    let c001 = sign_json(Algorithm::HS256, &json!({"kty": "oct", "k": b64(&pem)}), &json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-a"}), &admin);
    let c002 = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(valid_claims().to_string()));
    let c004 = with_signature(&es256(&admin), &b64([0u8; 64]));
    let c008 = sign_json(Algorithm::RS256, &private_jwk("K_ATK_RSA"), &json!({"alg": "RS256", "kid": "att-1", "jku": "https://attacker.example/jwks.json"}), &admin);
    let c009 = sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": 123}), &admin);
    let c010 = sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": "rsa-a", "crit": ["exp-policy"], "exp-policy": "mfa"}), &admin);
    let c014 = rs256(&claims_with(&json!({"exp": "1700003600"})));
    let c017 = rs256(&claims_with(&json!({"exp": null})));
    let c018 = rs256(&claims_with(&json!({"exp": 1_699_999_940})));
    let c019 = rs256(&claims_with(&json!({"aud": ["https://other.example.com"]})));
    let c020 = rs256(&claims_with(&json!({"iss": "https://idp.example.com"})));
    let c031 = "a.".repeat(100_000) + "b";
    let c032 = sign_raw(Algorithm::RS256, &rsa, br#"{"alg":"RS256","kid":"rsa-a"}"#, b"not json");
    let id_token = sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": "rsa-a", "typ": "JWT"}), &valid_claims());
    let cases = [
        ("C001 HS256 with the public key", c001, "algorithm_not_allowed"),
        ("C002 alg none", c002, "algorithm_not_allowed"),
        ("C004 zero ECDSA signature", c004, "signature_invalid"),
        ("C008 jku", c008, "key_not_found"),
        ("C009 numeric kid", c009, "header_malformed"),
        ("C010 crit", c010, "unsupported_critical"),
        ("C014 string exp", c014, "claims_malformed"),
        ("C017 no exp", c017, "claim_missing"),
        ("C018 exp + leeway = now", c018, "token_expired"),
        ("C019 other audiences", c019, "audience_invalid"),
        ("C020 issuer without slash", c020, "issuer_invalid"),
        ("C031 many dots", c031, "token_too_large"),
        ("C032 claims not JSON", c032, "claims_malformed"),
    ];
    for (id, token, code) in cases {
        case(id, token).expect_rejected(code);
    }

    let mut c037 = case("C037 ID token under typ enforcement", id_token);
    c037.policy["token_type"] = json!("at+jwt");
    c037.expect_rejected("token_type_invalid");
}

#[test]
fn cli_c012_rfc7515_a1_base64() {
    let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let keys = jwks_json(&[json!({"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"})]);
    let make = |id, token: String| Case { id, jwks: keys.clone(), policy: json!({"algorithms": ["HS256"]}), token, now: 1_300_819_000 };
    // A key file is local configuration, so the `oct` key is accepted.
    let claims = make("C012 canonical", token.to_string()).expect_accepted();
    assert_eq!(claims["iss"], "joe");
    let trailing_bits = token.replace("FWFOEjXk", "FWFOEjXl");
    make("C012 B1", trailing_bits).expect_rejected("invalid_base64");
    make("C012 B2", format!("{token}=")).expect_rejected("invalid_base64");
    let mut expired = make("RFC 7515 A.1 at 1700000000", token.to_string());
    expired.now = NOW;
    expired.expect_rejected("token_expired");
}

#[test]
fn cli_key_set_cases() {
    // C006: exponent 35 verifies.
    let mut e35 = case("C006 e = 35", token("K_RSA_E35", Algorithm::RS256, &valid_claims()));
    e35.jwks = jwks_json(&[public_jwk("K_RSA_E35")]);
    e35.expect_accepted();

    // C026: the mixed set loads, skipped entries are reported once as warnings.
    let ec = public_jwk("K_EC_A");
    let mixed = jwks_json(&[
        with(&public_jwk("K_RSA_A"), &json!({"use": "sig", "alg": "RS256"})),
        json!({"kty": "EC", "kid": "ec-a", "crv": "P-256", "x": ec["x"], "y": ec["y"]}),
        json!({"kty": "AKP", "kid": "pq-1", "alg": "ML-DSA-65", "pub": "AAAA"}),
        json!({"kid": "no-kty"}),
    ]);
    let mut c026 = case("C026 ES256 with an alg-less JWK", es256(&valid_claims()));
    c026.jwks = mixed.clone();
    let output = c026.run();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let warnings = stderr(&output);
    assert!(warnings.contains("warning: "), "{warnings}");
    assert!(warnings.contains("key `pq-1` (entry 2) skipped"), "{warnings}");
    assert!(warnings.contains("key `no-kty` (entry 3) skipped"), "{warnings}");
    let mut pq = case("C026 kid of a skipped entry", sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &json!({"alg": "RS256", "kid": "pq-1"}), &valid_claims()));
    pq.jwks = mixed;
    pq.expect_rejected("key_unusable");

    // C029 R6: Istio's placeholder set has no usable key: a configuration error, exit 2.
    let mut r6 = case("C029 R6", rs256(&valid_claims()));
    r6.jwks = String::from(r#"{"keys":[{"e":"AQAB","kid":"abc","kty":"RSA","n":"RXJyb3ItSXN0aW9kRmFpbGVkVG9GZXRjaEp3a3NVcmk"}]}"#);
    let output = r6.run();
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{message}");
    assert!(message.contains("warning: "), "{message}");
    assert!(message.contains("key `abc` (entry 0) skipped: the RSA modulus has 255 bits"), "{message}");
    assert!(message.lines().last().unwrap_or_default().starts_with("error: jwks_invalid: "), "{message}");

    // C023: the Cognito profile, client mismatch.
    let cognito_issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE";
    let access = json!({"sub": "user-123", "iss": cognito_issuer, "client_id": "otherclient999", "token_use": "access", "iat": NOW, "exp": NOW + 3600});
    let mut c023 = case("C023 other client", rs256(&access));
    c023.policy = json!({"issuer": cognito_issuer, "algorithms": ["RS256"], "token_type_claim": {"claim": "token_use", "value": "access"}, "client_ids": ["exampleclientid123"]});
    c023.expect_rejected("client_not_allowed");
}

#[test]
fn cli_local_jwks_in_policy() {
    let scratch = Scratch::new();
    let mut document = p0_json();
    document["local_jwks"] = json!({"inline": {"keys": jwks_a_keys()}});
    let policy = scratch.write("policy.json", &document.to_string());
    let output = run(&["verify", "--policy", &policy, "--now", "1700000000", "-"], Some(&rs256(&valid_claims())));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));

    let policy = scratch.write("plain.json", &p0_json().to_string());
    let output = run(&["verify", "--policy", &policy, "-"], Some("x"));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("--jwks is required"), "{}", stderr(&output));
}

/// Serves `responses` one per connection on 127.0.0.1, then stops. Returns the URL base
/// and the thread, which ends after the last response or after ten seconds.
fn serve(responses: Vec<Vec<u8>>) -> (String, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    listener.set_nonblocking(true).expect("non-blocking listener");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    let handle = thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut requests = Vec::new();
        let mut pending = responses.into_iter();
        let mut next = pending.next();
        while let Some(response) = next.take() {
            if Instant::now() > deadline {
                break;
            }
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).expect("blocking stream");
                    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !request.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut buffer) {
                            Ok(0) | Err(_) => break,
                            Ok(read) => request.extend_from_slice(&buffer[..read]),
                        }
                    }
                    requests.push(String::from_utf8_lossy(&request).into_owned());
                    let _ = stream.write_all(&response);
                    next = pending.next();
                }
                Err(_) => {
                    next = Some(response);
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }
        requests
    });
    (base, handle)
}

#[test]
fn cli_http_jwks() {
    let body = jwks_json(&jwks_a_keys());
    let plain = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    let (first, second) = body.split_at(body.len() / 2);
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n{:x};ext=1\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    let not_found = String::from("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
    let not_json = String::from("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nnot json");
    let (base, server) = serve(vec![plain.into_bytes(), chunked.into_bytes(), not_found.into_bytes(), not_json.into_bytes()]);

    let scratch = Scratch::new();
    let policy = scratch.write("policy.json", &p0_json().to_string());
    let url = format!("{base}/.well-known/jwks.json");
    let token = rs256(&valid_claims());
    let verify = |token: &str| run(&["verify", "--jwks", &url, "--policy", &policy, "--now", "1700000000", token], None);

    let output = verify(&token);
    assert_eq!(output.status.code(), Some(0), "Content-Length: {}", stderr(&output));
    let output = verify(&token);
    assert_eq!(output.status.code(), Some(0), "chunked: {}", stderr(&output));
    let output = verify(&token);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("error: jwks_unavailable: "), "{}", stderr(&output));
    assert!(stderr(&output).contains("status 404"), "{}", stderr(&output));
    let output = verify(&token);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).starts_with("error: jwks_invalid: "), "{}", stderr(&output));

    let requests = server.join().expect("server thread");
    assert_eq!(requests.len(), 4);
    assert!(requests[0].starts_with("GET /.well-known/jwks.json HTTP/1.1\r\n"), "{}", requests[0]);
    assert!(requests[0].contains(&format!("Host: {}\r\n", base.trim_start_matches("http://"))), "{}", requests[0]);

    // A fetched `oct` key is refused: secrets come only from local files.
    let oct = jwks_json(&[public_jwk("K_HS")]);
    let response = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{oct}", oct.len());
    let (base, server) = serve(vec![response.into_bytes()]);
    let hs_policy = scratch.write("hs.json", &json!({"algorithms": ["HS256"]}).to_string());
    let hs = sign_json(Algorithm::HS256, &private_jwk("K_HS"), &json!({"alg": "HS256", "kid": "hs-1"}), &valid_claims());
    let url = format!("{base}/jwks");
    let output = run(&["verify", "--jwks", &url, "--policy", &hs_policy, "--now", "1700000000", &hs], None);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("local configuration"), "{}", stderr(&output));
    server.join().expect("server thread");
}

#[test]
fn cli_http_jwks_errors() {
    let scratch = Scratch::new();
    let policy = scratch.write("policy.json", &p0_json().to_string());
    let token = rs256(&valid_claims());
    for (url, code) in [
        ("https://idp.example.com/jwks.json", None),
        ("ftp://idp.example.com/jwks.json", None),
        ("http://", None),
        ("http://127.0.0.1:notaport/", None),
        ("http://user@127.0.0.1/", None),
        // Port 9 (discard) on loopback: nothing listens there on a test machine.
        ("http://127.0.0.1:9/jwks.json", Some("jwks_unavailable")),
    ] {
        let output = run(&["verify", "--jwks", url, "--policy", &policy, &token], None);
        assert_eq!(output.status.code(), Some(2), "{url}: {}", stderr(&output));
        match code {
            Some(code) => assert!(stderr(&output).starts_with(&format!("error: {code}: ")), "{url}: {}", stderr(&output)),
            None => assert!(stderr(&output).contains("http://"), "{url}: {}", stderr(&output)),
        }
    }
}

#[test]
fn cli_inspect() {
    let token = rs256(&valid_claims());
    let output = run(&["inspect", &token], None);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let printed = stdout_json(&output);
    assert_eq!(printed["claims"], valid_claims());
    assert_eq!(printed["header"], json!({"alg": "RS256", "kid": "rsa-a"}));
    assert!(stderr(&output).starts_with("warning: nothing was verified"), "{}", stderr(&output));

    // Inspection ignores the signature but still refuses what cannot be decoded.
    let forged = with_signature(&token, "AAAA");
    assert_eq!(run(&["inspect", "-"], Some(&forged)).status.code(), Some(0));
    let output = run(&["inspect", "not-a-token"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).starts_with("error: token_malformed: "), "{}", stderr(&output));
}

#[test]
fn cli_pkce() {
    for (args, length) in [(vec!["pkce"], 43), (vec!["pkce", "--length", "128"], 128), (vec!["pkce", "--length=64"], 64)] {
        let output = run(&args, None);
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        let printed = stdout_json(&output);
        let verifier = printed["code_verifier"].as_str().expect("verifier");
        assert_eq!(verifier.len(), length);
        assert_eq!(printed["code_challenge"].as_str(), Some(code_challenge(verifier).expect("valid verifier").as_str()));
        assert_eq!(printed["code_challenge_method"], "S256");
    }
    let first = stdout_json(&run(&["pkce"], None));
    let second = stdout_json(&run(&["pkce"], None));
    assert_ne!(first["code_verifier"], second["code_verifier"], "verifiers come from OS randomness");
    for length in ["42", "129", "x", "-1"] {
        let output = run(&["pkce", "--length", length], None);
        assert_eq!(output.status.code(), Some(2), "--length {length}");
    }
}

#[test]
fn cli_usage_and_configuration_errors() {
    let scratch = Scratch::new();
    let jwks = scratch.write("jwks.json", &jwks_json(&jwks_a_keys()));
    let policy = scratch.write("policy.json", &p0_json().to_string());
    let bad_policy = scratch.write("bad-policy.json", r#"{"algorithms":["RS256"],"audience":"x"}"#);
    let none_policy = scratch.write("none-policy.json", r#"{"algorithms":["none"]}"#);
    let bad_jwks = scratch.write("bad-jwks.json", "not json");
    let token = rs256(&valid_claims());

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![], "a command is required"),
        (vec!["frobnicate"], "unknown command"),
        (vec!["verify", "--policy", &policy], "a token"),
        (vec!["verify", "--jwks", &jwks, &token], "--policy is required"),
        (vec!["verify", "--jwks", &jwks, "--policy", &policy, "--now", "yesterday", &token], "--now"),
        (vec!["verify", "--jwks", &jwks, "--policy", &policy, "--color", &token], "unknown option --color"),
        (vec!["verify", "--jwks", &jwks, "--jwks", &jwks, "--policy", &policy, &token], "given twice"),
        (vec!["verify", "--jwks", &jwks, "--policy", &policy, &token, &token], "exactly one token"),
        (vec!["verify", "--jwks", &jwks, "--policy"], "needs a value"),
        (vec!["verify", "--jwks", &jwks, "--policy", &bad_policy, &token], "error: config_invalid: "),
        (vec!["verify", "--jwks", &jwks, "--policy", &none_policy, &token], "never allowed"),
        (vec!["verify", "--jwks", &bad_jwks, "--policy", &policy, &token], "error: jwks_invalid: "),
        (vec!["verify", "--jwks", "/nonexistent/jwks.json", "--policy", &policy, &token], "cannot read the key set file"),
        (vec!["verify", "--jwks", &jwks, "--policy", "/nonexistent/policy.json", &token], "cannot read the policy file"),
        (vec!["pkce", "extra"], "takes no argument"),
    ];
    for (args, expected) in cases {
        let output = run(&args, None);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{args:?}: {}", stderr(&output));
        assert!(output.stdout.is_empty(), "{args:?}");
    }

    let help = run(&["help"], None);
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("portcullis verify"));
}
