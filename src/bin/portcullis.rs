//! `portcullis`: the operator's command line for the verification core (cargo feature `cli`).
//!
//! - `verify` checks a token against a key set and a policy exactly as the filter does and
//!   prints the verified claims.
//! - `inspect` decodes a token without checking anything, for reading one by eye.
//! - `pkce` prints a fresh S256 code verifier and challenge from OS randomness.
//!
//! Exit status: 0 success; 1 the token failed (`error: <code>: <message>` on stderr, with the
//! same stable codes as the library and the filter's logs); 2 a usage or configuration error.
//! Key sets come from a file or from a plain `http://` URL; HTTPS is not built in, so fetch
//! such a set with another tool and pass the file.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use portcullis::error::ErrorCode;
use portcullis::jwks::{import, KeySet, KeySetOptions, SkippedKey, MAX_JWKS_BYTES};
use portcullis::pkce::{create_pkce, CHALLENGE_METHOD, DEFAULT_VERIFIER_LENGTH, MAX_VERIFIER_LENGTH};
use portcullis::policy::ProviderConfig;
use portcullis::token::{inspect_token, MAX_TOKEN_BYTES_LIMIT};
use portcullis::verify::verify_token;
use serde_json::{json, Value};

const USAGE: &str = "\
usage:
  portcullis verify [--jwks <file | http://host[:port]/path>] --policy <file> [--now <unix seconds>] <token | ->
  portcullis inspect <token | ->
  portcullis pkce [--length <43..128>]

verify   checks the token's signature and claims against the key set and the policy and
         prints the verified claims as JSON. --jwks may be left out when the policy has
         `local_jwks`. --now sets the time of the check (default: the system clock).
inspect  prints the token's header and claims WITHOUT verifying anything.
pkce     prints a new code verifier and its S256 challenge (default length 43 characters).

A token argument of `-` reads the token from standard input.
Exit status: 0 success, 1 token rejected, 2 usage or configuration error.";

/// Maximum time for connecting to a JWKS server, and then between two reads.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Maximum size of the response header section from a JWKS server, in bytes.
const MAX_RESPONSE_HEAD_BYTES: u64 = 16 * 1024;

enum Failure {
    /// Bad command line: exit 2 with the usage text.
    Usage(String),
    /// Configuration, key set or environment problem: exit 2.
    Config { code: ErrorCode, message: String },
    /// The token was rejected: exit 1.
    Token { code: ErrorCode, message: String },
}

fn config(code: ErrorCode, message: impl Into<String>) -> Failure {
    Failure::Config { code, message: message.into() }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(output) => {
            // A closed stdout (e.g. `| head`) is not worth a panic or an error status.
            let _ = writeln!(io::stdout().lock(), "{output}");
            ExitCode::SUCCESS
        }
        Err(Failure::Usage(message)) => {
            let _ = writeln!(io::stderr().lock(), "error: {message}\nRun `portcullis help` for the usage.");
            ExitCode::from(2)
        }
        Err(Failure::Config { code, message }) => {
            let _ = writeln!(io::stderr().lock(), "error: {code}: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Token { code, message }) => {
            let _ = writeln!(io::stderr().lock(), "error: {code}: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &[String]) -> Result<String, Failure> {
    let Some((command, rest)) = args.split_first() else {
        return Err(Failure::Usage(String::from("a command is required: verify, inspect or pkce")));
    };
    match command.as_str() {
        "verify" => verify(rest),
        "inspect" => inspect(rest),
        "pkce" => pkce(rest),
        "help" | "--help" | "-h" => Ok(String::from(USAGE)),
        other => Err(Failure::Usage(format!("unknown command {other:?}; the commands are verify, inspect and pkce"))),
    }
}

/// Command-line options: `--name value` or `--name=value`, and positional arguments.
struct Options {
    named: Vec<(String, String)>,
    positional: Vec<String>,
}

impl Options {
    fn parse(args: &[String], allowed: &[&str]) -> Result<Self, Failure> {
        let mut named = Vec::new();
        let mut positional = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if arg == "-" || !arg.starts_with("--") {
                positional.push(arg.clone());
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            if !allowed.contains(&name) {
                return Err(Failure::Usage(format!("unknown option {name}")));
            }
            if named.iter().any(|(seen, _)| seen == name) {
                return Err(Failure::Usage(format!("option {name} is given twice")));
            }
            let value = match inline {
                Some(value) => value,
                None => iter.next().cloned().ok_or_else(|| Failure::Usage(format!("option {name} needs a value")))?,
            };
            named.push((name.to_string(), value));
        }
        Ok(Self { named, positional })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.named.iter().find(|(seen, _)| seen == name).map(|(_, value)| value.as_str())
    }

    /// Returns the token from the one positional argument, or from standard input for `-`.
    fn token(&self) -> Result<String, Failure> {
        match self.positional.as_slice() {
            [token] if token == "-" => read_stdin_token(),
            [token] => Ok(token.trim().to_string()),
            [] => Err(Failure::Usage(String::from("a token (or `-` for standard input) is required"))),
            _ => Err(Failure::Usage(String::from("give exactly one token"))),
        }
    }
}

fn read_stdin_token() -> Result<String, Failure> {
    let mut text = String::new();
    // One byte over the largest limit a policy may set is enough to report "too large".
    let limit = u64::try_from(MAX_TOKEN_BYTES_LIMIT).unwrap_or(u64::MAX).saturating_add(1024);
    io::stdin()
        .take(limit)
        .read_to_string(&mut text)
        .map_err(|error| config(ErrorCode::ConfigInvalid, format!("reading the token from standard input failed: {error}")))?;
    Ok(text.trim().to_string())
}

fn read_file(path: &str, what: &str, code: ErrorCode) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|error| config(code, format!("cannot read the {what} file {path:?}: {error}")))
}

fn verify(args: &[String]) -> Result<String, Failure> {
    let options = Options::parse(args, &["--jwks", "--policy", "--now"])?;
    let policy_path = options.get("--policy").ok_or_else(|| Failure::Usage(String::from("--policy is required")))?;
    let now = match options.get("--now") {
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| Failure::Usage(format!("--now must be whole seconds since the Unix epoch, got {text:?}")))?,
        None => SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_secs()).unwrap_or(0),
    };
    let token = options.token()?;

    let document = read_file(policy_path, "policy", ErrorCode::ConfigInvalid)?;
    let provider = ProviderConfig::from_json(&document)
        .map_err(|error| config(error.code(), format!("policy {policy_path:?}: {error}")))?;
    let policy = provider.compile("").map_err(|error| config(error.code(), format!("policy {policy_path:?}: {error}")))?;
    let keys = load_keys(options.get("--jwks"), &provider)?;

    let verified = verify_token(&token, &keys, &policy, now)
        .map_err(|error| Failure::Token { code: error.code(), message: error.to_string() })?;
    to_json(&Value::Object(verified.claims_map().clone()))
}

/// Loads the key set from `--jwks`, or from the policy's `local_jwks`, and reports skipped
/// entries on stderr.
fn load_keys(source: Option<&str>, provider: &ProviderConfig) -> Result<KeySet, Failure> {
    // A secret (`oct`) key is accepted only from a local file or the policy itself.
    let (bytes, origin, options) = match source {
        Some(url) if url.starts_with("http://") => (fetch(url)?, url.to_string(), KeySetOptions::default()),
        Some(url) if url.contains("://") => {
            return Err(Failure::Usage(format!(
                "cannot fetch {url:?}: only http:// URLs are fetched; download the key set with another tool and pass the file"
            )));
        }
        Some(path) => (read_file(path, "key set", ErrorCode::JwksInvalid)?, path.to_string(), KeySetOptions { allow_symmetric: true }),
        None => {
            let local = provider.local_jwks.as_ref().ok_or_else(|| {
                Failure::Usage(String::from("--jwks is required unless the policy has `local_jwks`"))
            })?;
            let bytes = match (&local.inline_string, &local.inline) {
                (Some(text), _) => text.clone().into_bytes(),
                (None, Some(value)) => value.to_string().into_bytes(),
                (None, None) => return Err(config(ErrorCode::ConfigInvalid, "`local_jwks` has neither `inline_string` nor `inline`")),
            };
            (bytes, String::from("the policy's local_jwks"), KeySetOptions { allow_symmetric: true })
        }
    };
    match KeySet::from_json(&bytes, options) {
        Ok(keys) => {
            let mut stderr = io::stderr().lock();
            for skipped in keys.skipped() {
                let _ = writeln!(stderr, "warning: {origin}: {skipped}");
            }
            Ok(keys)
        }
        Err(error) => {
            explain_entries(&bytes, options, &origin);
            Err(config(error.code(), format!("{origin}: {error}")))
        }
    }
}

/// Writes why each entry of a rejected key set cannot verify signatures, so that the
/// operator sees the reasons behind "no usable signature key".
fn explain_entries(bytes: &[u8], options: KeySetOptions, origin: &str) {
    let Ok(Value::Object(document)) = serde_json::from_slice::<Value>(bytes) else { return };
    let Some(Value::Array(entries)) = document.get("keys") else { return };
    let mut stderr = io::stderr().lock();
    for (index, entry) in entries.iter().enumerate() {
        let kid = entry.get("kid").and_then(Value::as_str).map(String::from);
        let reason = match entry {
            Value::Object(members) => match import(members, options) {
                Ok(jwk) if jwk.may_verify() => continue,
                Ok(_) => String::from("`use` or `key_ops` excludes signature verification"),
                Err(reason) => reason,
            },
            _ => String::from("entry is not an object"),
        };
        let _ = writeln!(stderr, "warning: {origin}: {}", SkippedKey { index, kid, reason });
    }
}

/// Host, port and path of an `http://host[:port]/path` URL.
struct HttpUrl<'a> {
    host: &'a str,
    port: u16,
    path: &'a str,
}

fn parse_http_url(url: &str) -> Option<HttpUrl<'_>> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(index) => rest.split_at(index),
        None => (rest, "/"),
    };
    // `[::1]:8080` and `[::1]` name IPv6 hosts. Anything else splits at its last colon.
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(text) => text.parse().ok()?,
        None => 80,
    };
    let path = if path.starts_with('/') { path } else { return None };
    let valid_host = !host.is_empty() && !host.contains(['@', '/', ' ']);
    let valid_path = !path.bytes().any(|byte| byte.is_ascii_whitespace() || byte.is_ascii_control() || byte == b'#');
    (valid_host && valid_path).then_some(HttpUrl { host, port, path })
}

/// Fetches a key set with one HTTP/1.1 GET; only status 200 is accepted.
fn fetch(url: &str) -> Result<Vec<u8>, Failure> {
    let unavailable = |message: String| config(ErrorCode::JwksUnavailable, format!("fetching {url} failed: {message}"));
    let target = parse_http_url(url).ok_or_else(|| Failure::Usage(format!("{url:?} is not a valid http:// URL")))?;
    let address = (target.host, target.port)
        .to_socket_addrs()
        .map_err(|error| unavailable(format!("cannot resolve {}: {error}", target.host)))?
        .next()
        .ok_or_else(|| unavailable(format!("{} has no address", target.host)))?;
    let mut stream = TcpStream::connect_timeout(&address, FETCH_TIMEOUT).map_err(|error| unavailable(error.to_string()))?;
    stream.set_read_timeout(Some(FETCH_TIMEOUT)).map_err(|error| unavailable(error.to_string()))?;
    stream.set_write_timeout(Some(FETCH_TIMEOUT)).map_err(|error| unavailable(error.to_string()))?;
    let host_header = if target.port == 80 { target.host.to_string() } else { format!("{}:{}", target.host, target.port) };
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {host_header}\r\nAccept: application/jwk-set+json, application/json\r\nUser-Agent: portcullis/{}\r\nConnection: close\r\n\r\n",
        target.path,
        env!("CARGO_PKG_VERSION")
    );
    stream.write_all(request.as_bytes()).map_err(|error| unavailable(error.to_string()))?;

    let body_limit = u64::try_from(MAX_JWKS_BYTES).unwrap_or(u64::MAX);
    let mut reader = BufReader::new(stream.take(MAX_RESPONSE_HEAD_BYTES + body_limit + 1));
    let head = read_head(&mut reader).map_err(unavailable)?;
    let mut body = Vec::new();
    if head.chunked {
        read_chunked(&mut reader, &mut body).map_err(unavailable)?;
    } else {
        let limit = head.content_length.map_or(body_limit + 1, |length| length.min(body_limit + 1));
        (&mut reader).take(limit).read_to_end(&mut body).map_err(|error| unavailable(error.to_string()))?;
        if head.content_length.is_some_and(|length| u64::try_from(body.len()).unwrap_or(u64::MAX) < length) {
            return Err(unavailable(String::from("the response ended before Content-Length bytes")));
        }
    }
    if head.status != 200 {
        return Err(unavailable(format!("the server answered with status {}", head.status)));
    }
    if body.len() > MAX_JWKS_BYTES {
        return Err(config(ErrorCode::JwksInvalid, format!("{url}: the key set is larger than {MAX_JWKS_BYTES} bytes")));
    }
    Ok(body)
}

struct ResponseHead {
    status: u16,
    content_length: Option<u64>,
    chunked: bool,
}

fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line).map_err(|error| error.to_string())?;
    if line.last() != Some(&b'\n') {
        return Err(String::from("the response ended early"));
    }
    String::from_utf8(line).map(|text| text.trim_end_matches(['\r', '\n']).to_string()).map_err(|_| String::from("the response head is not text"))
}

fn read_head(reader: &mut impl BufRead) -> Result<ResponseHead, String> {
    let status_line = read_line(reader)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|code| code.parse::<u16>().ok());
    let status = match (version.starts_with("HTTP/1."), status) {
        (true, Some(status)) => status,
        _ => return Err(format!("the response does not start with an HTTP/1.x status line: {status_line:?}")),
    };
    let mut head = ResponseHead { status, content_length: None, chunked: false };
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            return Ok(head);
        }
        let Some((name, value)) = line.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(value.parse().map_err(|_| format!("invalid Content-Length {value:?}"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.to_ascii_lowercase().split(',').any(|coding| coding.trim() == "chunked");
        }
    }
}

fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Result<(), String> {
    loop {
        let line = read_line(reader)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| format!("invalid chunk size {size_text:?}"))?;
        if size == 0 {
            return Ok(());
        }
        if body.len().saturating_add(size) > MAX_JWKS_BYTES {
            return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        let chunk = body.get_mut(start..).unwrap_or_default();
        reader.read_exact(chunk).map_err(|error| error.to_string())?;
        read_line(reader)?;
    }
}

fn inspect(args: &[String]) -> Result<String, Failure> {
    let options = Options::parse(args, &[])?;
    let token = options.token()?;
    let inspected = inspect_token(&token, MAX_TOKEN_BYTES_LIMIT)
        .map_err(|error| Failure::Token { code: error.code(), message: error.to_string() })?;
    let _ = writeln!(
        io::stderr().lock(),
        "warning: nothing was verified: not the signature, the issuer, the audience or the expiry; never authorize with this output"
    );
    to_json(&json!({ "header": inspected.header, "claims": inspected.claims }))
}

fn pkce(args: &[String]) -> Result<String, Failure> {
    let options = Options::parse(args, &["--length"])?;
    if let Some(extra) = options.positional.first() {
        return Err(Failure::Usage(format!("pkce takes no argument, got {extra:?}")));
    }
    let length = match options.get("--length") {
        Some(text) => text.parse::<usize>().map_err(|_| Failure::Usage(format!("--length must be a number, got {text:?}")))?,
        None => DEFAULT_VERIFIER_LENGTH,
    };
    let mut random = [0u8; MAX_VERIFIER_LENGTH];
    getrandom::getrandom(&mut random)
        .map_err(|error| config(ErrorCode::ConfigInvalid, format!("the operating system's random source failed: {error}")))?;
    let created = create_pkce(&random, length).map_err(|error| Failure::Usage(error.to_string()))?;
    to_json(&json!({
        "code_verifier": created.code_verifier,
        "code_challenge": created.code_challenge,
        "code_challenge_method": CHALLENGE_METHOD,
    }))
}

fn to_json(value: &Value) -> Result<String, Failure> {
    serde_json::to_string_pretty(value).map_err(|error| config(ErrorCode::ConfigInvalid, format!("cannot write JSON: {error}")))
}
