//! The policy schema: one JSON document per provider, read by the Envoy filter, the edge
//! worker and the npm package alike.
//!
//! [`ProviderConfig`] is the document as written, with field names taken from Envoy's
//! `jwt_authn` filter where the concept exists there. [`ProviderConfig::compile`] checks
//! every value and produces a [`Policy`], the form the verifier uses. Unknown fields are
//! rejected with their name; every invalid value gets a message that says what is allowed.
//! The README documents each field with its default.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde_json::Value;

use crate::alg::Algorithm;
use crate::error::ConfigError;
use crate::schema::{self, from_json_struct, FromJson, Path};
use crate::token::{DEFAULT_MAX_TOKEN_BYTES, MAX_TOKEN_BYTES_LIMIT};

/// Default clock skew allowance in seconds, as in Envoy's `jwt_authn`.
pub const DEFAULT_CLOCK_SKEW_SECONDS: u64 = 60;

/// Largest clock skew a policy may allow, in seconds.
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 600;

/// Default JWKS cache duration in seconds, as in Envoy's `jwt_authn`.
pub const DEFAULT_CACHE_DURATION_SECONDS: u64 = 600;

/// Default timeout of a JWKS fetch in milliseconds.
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 5_000;

/// The placeholder for one path segment in an issuer template.
pub const TENANT_PLACEHOLDER: &str = "{tenant}";

/// A duration written as seconds (`600`) or as a string with a unit (`"600s"`, `"1.5s"`,
/// `"500ms"`, `"10m"`, `"1h"`), the last form as in Envoy's JSON for protobuf durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationMs(pub u64);

impl DurationMs {
    /// Whole seconds, rounded down.
    pub const fn seconds(self) -> u64 {
        self.0 / 1000
    }
}

impl FromJson for DurationMs {
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
        const EXPECTED: &str = "a duration: seconds as a number, or a string such as \"600s\", \"500ms\", \"10m\", \"1h\"";
        match value {
            Value::Number(number) if number.is_u64() => number
                .as_u64()
                .and_then(|seconds| seconds.checked_mul(1000))
                .map(DurationMs)
                .ok_or_else(|| schema::error(path, String::from("duration is too long"))),
            Value::Number(number) if number.is_i64() => Err(schema::error(path, String::from("duration must not be negative"))),
            // The message leaves the text out, as every configuration error does.
            Value::String(text) => parse_duration(text)
                .ok_or_else(|| schema::error(path, String::from("invalid duration: expected a number of seconds, or a string of a number followed by ms, s, m or h"))),
            other => Err(schema::invalid_type(other, path, EXPECTED)),
        }
    }
}

fn parse_duration(text: &str) -> Option<DurationMs> {
    let (number, unit_ms) = if let Some(number) = text.strip_suffix("ms") {
        (number, 1)
    } else if let Some(number) = text.strip_suffix('s') {
        (number, 1000)
    } else if let Some(number) = text.strip_suffix('m') {
        (number, 60_000)
    } else if let Some(number) = text.strip_suffix('h') {
        (number, 3_600_000)
    } else {
        return None;
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = whole.parse().ok()?;
    let mut total = whole.checked_mul(unit_ms)?;
    // Fractions count down to whole milliseconds.
    let mut scale = unit_ms;
    for digit in fraction.bytes().take(9) {
        scale /= 10;
        total = total.checked_add(u64::from(digit - b'0') * scale)?;
    }
    Some(DurationMs(total))
}

/// A string or a list of strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OneOrMany {
    /// A single value.
    One(String),
    /// Several values.
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(value) => alloc::vec![value],
            Self::Many(values) => values,
        }
    }
}

/// A claim path: a claim name, a dot-separated path (`realm_access.roles`), or a list of
/// segments for names that contain dots (`["resource_access", "my.app", "roles"]`).
///
/// A string is first looked up as one top-level name, so namespaced claims such as
/// `https://example.com/roles` work without the list form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClaimPath {
    /// A name or dot-separated path.
    Dotted(String),
    /// Explicit segments.
    Segments(Vec<String>),
}

impl ClaimPath {
    /// Looks the path up in a claims object.
    pub fn lookup<'a>(&self, claims: &'a serde_json::Map<String, Value>) -> Option<&'a Value> {
        match self {
            Self::Dotted(path) => claims.get(path).or_else(|| {
                if path.contains('.') {
                    lookup_segments(claims, path.split('.'))
                } else {
                    None
                }
            }),
            Self::Segments(segments) => lookup_segments(claims, segments.iter().map(String::as_str)),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Self::Dotted(path) => path.is_empty(),
            Self::Segments(segments) => segments.is_empty() || segments.iter().any(String::is_empty),
        }
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dotted(path) => f.write_str(path),
            Self::Segments(segments) => f.write_str(&segments.join(".")),
        }
    }
}

fn lookup_segments<'a, 'b>(
    claims: &'a serde_json::Map<String, Value>,
    mut segments: impl Iterator<Item = &'b str>,
) -> Option<&'a Value> {
    let mut current = claims.get(segments.next()?)?;
    for segment in segments {
        current = current.as_object()?.get(segment)?;
    }
    Some(current)
}

/// A string matcher for `sub`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StringMatcher {
    /// Equal, byte for byte.
    Exact(String),
    /// Starts with the value.
    Prefix(String),
    /// Ends with the value.
    Suffix(String),
    /// Contains the value.
    Contains(String),
}

impl StringMatcher {
    /// Whether `value` matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            Self::Exact(expected) => value == expected,
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Self::Suffix(suffix) => value.ends_with(suffix.as_str()),
            Self::Contains(part) => value.contains(part.as_str()),
        }
    }
}

/// A claim the policy requires, optionally with its value.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimRequirement {
    /// The claim's path.
    pub claim: ClaimPath,
    /// The value the claim must equal (any JSON value, compared exactly).
    pub equals: Option<Value>,
    /// Values the claim may take; any one matches.
    pub one_of: Option<Vec<Value>>,
}

/// A claim whose value names the kind of token, e.g. Cognito's `token_use` or Keycloak's
/// payload `typ`.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenTypeClaim {
    /// The claim's path.
    pub claim: ClaimPath,
    /// The value it must have.
    pub value: String,
}

/// All-of and any-of requirements on a set of strings (scopes or roles).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetRequirement {
    /// Every one of these must be present.
    pub all_of: Vec<String>,
    /// At least one of these must be present (ignored when empty).
    pub any_of: Vec<String>,
}

impl SetRequirement {
    fn is_empty(&self) -> bool {
        self.all_of.is_empty() && self.any_of.is_empty()
    }

    /// Returns the missing values: all absent `all_of` entries, or, when no `any_of` entry is
    /// present, the whole `any_of` list. `None` means satisfied.
    pub fn missing(&self, present: &[&str]) -> Option<Vec<String>> {
        let missing: Vec<String> = self
            .all_of
            .iter()
            .filter(|wanted| !present.contains(&wanted.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Some(missing);
        }
        if !self.any_of.is_empty() && !self.any_of.iter().any(|wanted| present.contains(&wanted.as_str())) {
            return Some(self.any_of.clone());
        }
        None
    }
}

/// Where roles are read from, and which are required.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleRequirement {
    /// A claim path holding an array of strings or a space-delimited string.
    pub claim: Option<ClaimPath>,
    /// A ready path: `roles`, `groups`, `keycloak_realm` (`realm_access.roles`),
    /// `keycloak_client:<client>` (`resource_access.<client>.roles`), `cognito`
    /// (`cognito:groups`), `entra` (`roles`).
    pub preset: Option<String>,
    /// Every one of these roles is required.
    pub all_of: Vec<String>,
    /// At least one of these roles is required.
    pub any_of: Vec<String>,
}

/// An inline key set (Envoy's `local_jwks` data source).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalJwks {
    /// The JWKS as a JSON string.
    pub inline_string: Option<String>,
    /// The JWKS as a JSON object.
    pub inline: Option<Value>,
}

/// The HTTP location of a key set or discovery document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUri {
    /// Full URL, e.g. `https://idp.example.com/.well-known/jwks.json`.
    pub uri: String,
    /// Envoy cluster that routes to the host (Envoy only; the edge worker fetches `uri`).
    pub cluster: Option<String>,
    /// Fetch timeout; default 5 s.
    pub timeout: Option<DurationMs>,
}

/// A key set fetched over HTTP and cached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteJwks {
    /// Where to fetch the JWKS. With `discovery`, the URL of the issuer's discovery document
    /// may be given instead through `discovery_uri`.
    pub http_uri: Option<HttpUri>,
    /// Find `jwks_uri` through OpenID Connect discovery at this location.
    pub discovery_uri: Option<HttpUri>,
    /// How long a fetched set is used before it is refreshed; default 600 s.
    pub cache_duration: Option<DurationMs>,
    /// Least time between two fetches triggered by an unknown `kid`; default 30 s.
    pub refetch_cooldown: Option<DurationMs>,
    /// How long the last good set keeps serving after its cache duration when refreshes
    /// fail; default 24 h.
    pub stale_if_error: Option<DurationMs>,
    /// How long a request may wait for the first key set; default the fetch timeout.
    pub pending_timeout: Option<DurationMs>,
}

/// Where a token is read from in a request header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderSource {
    /// Header name (case-insensitive).
    pub name: String,
    /// Text before the token, e.g. `Bearer ` (the scheme is compared case-insensitively).
    pub value_prefix: Option<String>,
}

/// A claim copied to a request header after successful verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimToHeader {
    /// Header to set; any incoming header of this name is removed first.
    pub header_name: String,
    /// Claim path; arrays are joined with commas, objects written as JSON.
    pub claim_name: ClaimPath,
}

/// DPoP settings of a provider ([RFC 9449](https://www.rfc-editor.org/rfc/rfc9449)), read by
/// the Envoy filter and the edge worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DpopConfig {
    /// `allowed` (default): tokens may come as `Authorization: DPoP` with a proof, and
    /// tokens not bound to a key also as bearer tokens. `required`: only as DPoP.
    pub mode: Option<String>,
    /// Allowed proof algorithms, asymmetric only; default `ES256`, `RS256`, `PS256`, `EdDSA`.
    pub algorithms: Option<Vec<String>>,
    /// How far a proof's `iat` may lie from now, either way; default 300 s.
    pub max_age: Option<DurationMs>,
    /// Server-issued nonces ([RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8)).
    pub nonce: Option<DpopNonceConfig>,
    /// The scheme and authority clients use to reach the API, e.g. `https://api.example.com`,
    /// for the `htu` check when TLS ends before the gate. Default: the request's own.
    pub origin: Option<String>,
}

/// Server-issued DPoP nonces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DpopNonceConfig {
    /// Require a nonce in every proof; default false.
    pub enabled: Option<bool>,
    /// How long one nonce is issued; it is accepted for up to twice this. Default 300 s.
    pub lifetime: Option<DurationMs>,
    /// HMAC key of the nonces as unpadded base64url, at least 32 bytes. Default: random at
    /// start, shared by the Envoy workers through shared data.
    pub secret: Option<String>,
}

/// Token introspection ([RFC 7662](https://www.rfc-editor.org/rfc/rfc7662)) of a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntrospectionConfig {
    /// The introspection endpoint; Envoy needs `cluster`.
    pub http_uri: HttpUri,
    /// The resource server's client identifier at the authorization server.
    pub client_id: String,
    /// Its secret, sent with HTTP Basic authentication.
    pub client_secret: String,
    /// `only` (default): tokens are opaque and only introspected. `after_jwt`: tokens are
    /// JWTs, verified locally first and then introspected.
    pub mode: Option<String>,
    /// Longest time an answer is reused; default 60 s. An answer is never reused past the
    /// token's `exp`.
    pub cache_duration: Option<DurationMs>,
    /// How long after `cache_duration` an answer keeps serving while the endpoint fails;
    /// default 0.
    pub stale_if_error: Option<DurationMs>,
}

/// A list of revoked token identifiers fetched over HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationListConfig {
    /// Where to fetch the list; Envoy needs `cluster`.
    pub http_uri: HttpUri,
    /// How long a fetched list is used before it is fetched again; default 60 s.
    pub cache_duration: Option<DurationMs>,
    /// How long the last list keeps serving after `cache_duration` while fetches fail;
    /// default 1 h.
    pub stale_if_error: Option<DurationMs>,
    /// How long a request may wait for the first list; default the fetch timeout.
    pub pending_timeout: Option<DurationMs>,
}

/// One provider as written in configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderConfig {
    /// Accepted `iss` values; a value may contain one `{tenant}` placeholder for one path
    /// segment. Unset: `iss` is not checked.
    pub issuer: Option<OneOrMany>,
    /// Tenants a `{tenant}` placeholder may take. Unset: any single path segment.
    pub tenants: Option<Vec<String>>,
    /// Claim that must equal the tenant taken from `iss` (e.g. `tid` for Entra ID).
    pub tenant_claim: Option<String>,
    /// Accepted audiences; the token passes when any of its `aud` values is listed.
    /// Unset: `aud` is not checked.
    pub audiences: Option<Vec<String>>,
    /// Allowed `alg` values; `none` is never allowed. Required, except for a provider
    /// that only introspects and verifies no JWT: there it may be left out (empty).
    pub algorithms: Vec<String>,
    /// Allowance for clock differences in `exp`, `nbf` and `iat`; default 60, at most 600.
    pub clock_skew_seconds: Option<u64>,
    /// Reject tokens without `exp`; default true.
    pub require_expiration: Option<bool>,
    /// Longest accepted lifetime: `exp - iat`, or `exp - now` without `iat`.
    pub max_lifetime: Option<DurationMs>,
    /// Oldest accepted `iat`; makes `iat` required.
    pub max_token_age: Option<DurationMs>,
    /// Required JOSE `typ`, compared as a media type (`at+jwt` also matches
    /// `application/at+jwt`, case-insensitively).
    pub token_type: Option<String>,
    /// A claim that names the token kind, such as Cognito's `token_use`.
    pub token_type_claim: Option<TokenTypeClaim>,
    /// `rfc9068`: require `typ` `at+jwt` and the claims `iss`, `exp`, `aud`, `sub`,
    /// `client_id`, `iat`, `jti` ([RFC 9068 §2](https://www.rfc-editor.org/rfc/rfc9068#section-2)).
    pub profile: Option<String>,
    /// `sub` must match one of these.
    pub subjects: Option<Vec<StringMatcher>>,
    /// Accepted `client_id` values (`azp` when `client_id` is absent).
    pub client_ids: Option<Vec<String>>,
    /// Further required claims, optionally with values.
    pub required_claims: Option<Vec<ClaimRequirement>>,
    /// Required scopes, read from `scope` (space-delimited) and `scp` (string or array).
    pub scopes: Option<SetRequirement>,
    /// Required roles.
    pub roles: Option<RoleRequirement>,
    /// Longest token accepted, in bytes; default 16384, maximum 65536. Read as `u64` so
    /// that a number too large for a 32-bit `usize` fails the range check on every target.
    pub max_token_bytes: Option<u64>,
    /// Inline keys.
    pub local_jwks: Option<LocalJwks>,
    /// Fetched keys.
    pub remote_jwks: Option<RemoteJwks>,
    /// Headers carrying the token; default `Authorization` with prefix `Bearer `.
    pub from_headers: Option<Vec<HeaderSource>>,
    /// Query parameters carrying the token.
    pub from_params: Option<Vec<String>>,
    /// Cookies carrying the token.
    pub from_cookies: Option<Vec<String>>,
    /// Keep the credential in the forwarded request; default false (removed).
    pub forward: Option<bool>,
    /// Header that receives the verified claims as unpadded base64url JSON.
    pub forward_payload_header: Option<String>,
    /// Claims copied to request headers.
    pub claim_to_headers: Option<Vec<ClaimToHeader>>,
    /// DPoP-bound tokens (gates only).
    pub dpop: Option<DpopConfig>,
    /// Token introspection (gates only).
    pub introspection: Option<IntrospectionConfig>,
    /// A revocation list (gates only).
    pub revocation_list: Option<RevocationListConfig>,
}

impl OneOrMany {
    /// Reads a string or an array of strings; `expected` describes both for a type error.
    fn read(value: &Value, path: &Path<'_>, expected: &str) -> Result<Self, ConfigError> {
        match value {
            Value::String(text) => Ok(Self::One(text.clone())),
            Value::Array(_) => Vec::from_json(value, path).map(Self::Many),
            other => Err(schema::invalid_type(other, path, expected)),
        }
    }
}

impl FromJson for OneOrMany {
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
        Self::read(value, path, "a string or an array of strings")
    }
}

impl FromJson for ClaimPath {
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
        Ok(match OneOrMany::read(value, path, "a claim name, or an array of path segments")? {
            OneOrMany::One(text) => Self::Dotted(text),
            OneOrMany::Many(segments) => Self::Segments(segments),
        })
    }
}

impl FromJson for StringMatcher {
    /// Reads an object with one member that names the kind of match: `{"prefix": "user:"}`.
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
        const VARIANTS: [&str; 4] = ["exact", "prefix", "suffix", "contains"];
        let Value::Object(members) = value else {
            return Err(schema::invalid_type(value, path, "an object with one of `exact`, `prefix`, `suffix`, `contains`"));
        };
        let mut entries = members.iter();
        let (Some((name, text)), None) = (entries.next(), entries.next()) else {
            return Err(schema::error(path, alloc::format!("expected an object with exactly one member, found {}", members.len())));
        };
        let member = path.member(name);
        let text = String::from_json(text, &member)?;
        match name.as_str() {
            "exact" => Ok(Self::Exact(text)),
            "prefix" => Ok(Self::Prefix(text)),
            "suffix" => Ok(Self::Suffix(text)),
            "contains" => Ok(Self::Contains(text)),
            _ => Err(schema::error(&member, alloc::format!("unknown variant `{name}`, expected one of `{}`", VARIANTS.join("`, `")))),
        }
    }
}

from_json_struct!(ClaimRequirement { claim: required, equals: optional, one_of: optional });
from_json_struct!(TokenTypeClaim { claim: required, value: required });
from_json_struct!(SetRequirement { all_of: or_default, any_of: or_default });
from_json_struct!(RoleRequirement { claim: optional, preset: optional, all_of: or_default, any_of: or_default });
from_json_struct!(LocalJwks { inline_string: optional, inline: optional });
from_json_struct!(HttpUri { uri: required, cluster: optional, timeout: optional });
from_json_struct!(RemoteJwks {
    http_uri: optional,
    discovery_uri: optional,
    cache_duration: optional,
    refetch_cooldown: optional,
    stale_if_error: optional,
    pending_timeout: optional,
});
from_json_struct!(HeaderSource { name: required, value_prefix: optional });
from_json_struct!(ClaimToHeader { header_name: required, claim_name: required });
from_json_struct!(DpopConfig { mode: optional, algorithms: optional, max_age: optional, nonce: optional, origin: optional });
from_json_struct!(DpopNonceConfig { enabled: optional, lifetime: optional, secret: optional });
from_json_struct!(IntrospectionConfig {
    http_uri: required,
    client_id: required,
    client_secret: required,
    mode: optional,
    cache_duration: optional,
    stale_if_error: optional,
});
from_json_struct!(RevocationListConfig { http_uri: required, cache_duration: optional, stale_if_error: optional, pending_timeout: optional });
from_json_struct!(ProviderConfig {
    issuer: optional,
    tenants: optional,
    tenant_claim: optional,
    audiences: optional,
    algorithms: or_default,
    clock_skew_seconds: optional,
    require_expiration: optional,
    max_lifetime: optional,
    max_token_age: optional,
    token_type: optional,
    token_type_claim: optional,
    profile: optional,
    subjects: optional,
    client_ids: optional,
    required_claims: optional,
    scopes: optional,
    roles: optional,
    max_token_bytes: optional,
    local_jwks: optional,
    remote_jwks: optional,
    from_headers: optional,
    from_params: optional,
    from_cookies: optional,
    forward: optional,
    forward_payload_header: optional,
    claim_to_headers: optional,
    dpop: optional,
    introspection: optional,
    revocation_list: optional,
});

/// An issuer pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IssuerMatcher {
    /// Exact, byte-for-byte equality.
    Exact(String),
    /// `prefix {tenant} suffix`, the tenant one non-empty path segment.
    Template {
        /// Text before `{tenant}`.
        prefix: String,
        /// Text after `{tenant}`.
        suffix: String,
    },
}

impl IssuerMatcher {
    /// Matches `iss`, returning the tenant for templates (empty for exact matches).
    pub fn matches<'a>(&self, iss: &'a str) -> Option<&'a str> {
        match self {
            Self::Exact(expected) => (iss == expected).then_some(""),
            Self::Template { prefix, suffix } => {
                let tenant = iss.strip_prefix(prefix.as_str())?.strip_suffix(suffix.as_str())?;
                let valid = !tenant.is_empty()
                    && !tenant.contains(['/', '?', '#'])
                    && tenant != "."
                    && tenant != "..";
                valid.then_some(tenant)
            }
        }
    }
}

/// Where roles come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Roles {
    /// The claim holding them.
    pub claim: ClaimPath,
    /// What is required.
    pub requirement: SetRequirement,
}

/// A checked policy, ready for the verifier.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// Allowed algorithms.
    pub algorithms: Vec<Algorithm>,
    /// Accepted issuers; empty: not checked.
    pub issuers: Vec<IssuerMatcher>,
    /// Allowed tenants for templates; `None`: any.
    pub tenants: Option<Vec<String>>,
    /// Claim that must equal the tenant.
    pub tenant_claim: Option<String>,
    /// Accepted audiences; empty: not checked.
    pub audiences: Vec<String>,
    /// Clock skew allowance in seconds.
    pub leeway: u64,
    /// Whether `exp` is required.
    pub require_expiration: bool,
    /// Longest lifetime in seconds.
    pub max_lifetime: Option<u64>,
    /// Oldest `iat` in seconds.
    pub max_token_age: Option<u64>,
    /// Required `typ`, lower case, without `application/`.
    pub token_type: Option<String>,
    /// Token kind claim.
    pub token_type_claim: Option<TokenTypeClaim>,
    /// Registered claims that must be present.
    pub required_registered: Vec<&'static str>,
    /// `sub` matchers; empty: not checked.
    pub subjects: Vec<StringMatcher>,
    /// Accepted clients; empty: not checked.
    pub client_ids: Vec<String>,
    /// Further claim requirements.
    pub required_claims: Vec<ClaimRequirement>,
    /// Scope requirement.
    pub scopes: SetRequirement,
    /// Role requirement.
    pub roles: Option<Roles>,
    /// Longest token in bytes.
    pub max_token_bytes: usize,
}

/// Claims RFC 9068 §2.2 requires in a JWT access token.
pub const RFC9068_REQUIRED_CLAIMS: &[&str] = &["iss", "exp", "aud", "sub", "client_id", "iat", "jti"];

impl Policy {
    /// Parses and checks a provider document.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first unknown field or invalid value.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        ProviderConfig::from_json(bytes)?.compile("")
    }

    /// A policy with the given algorithms and every other field at its default.
    pub fn with_algorithms(algorithms: Vec<Algorithm>) -> Self {
        Self {
            algorithms,
            issuers: Vec::new(),
            tenants: None,
            tenant_claim: None,
            audiences: Vec::new(),
            leeway: DEFAULT_CLOCK_SKEW_SECONDS,
            require_expiration: true,
            max_lifetime: None,
            max_token_age: None,
            token_type: None,
            token_type_claim: None,
            required_registered: Vec::new(),
            subjects: Vec::new(),
            client_ids: Vec::new(),
            required_claims: Vec::new(),
            scopes: SetRequirement::default(),
            roles: None,
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
        }
    }
}

/// Normalises a `typ` value as a media type: lower case, `application/` removed
/// ([RFC 7515 §4.1.9](https://www.rfc-editor.org/rfc/rfc7515#section-4.1.9)).
pub fn normalize_media_type(value: &str) -> String {
    let lower = value.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) if !rest.contains('/') => rest.to_string(),
        _ => lower,
    }
}

/// Returns a size setting as a `usize` when it lies in `range`, or `default` when it is
/// unset. A value too large for `usize` is out of range, on 32-bit targets as elsewhere.
pub(crate) fn size_in_range(value: Option<u64>, default: usize, range: core::ops::RangeInclusive<usize>) -> Option<usize> {
    let size = match value {
        None => default,
        Some(value) => usize::try_from(value).ok()?,
    };
    range.contains(&size).then_some(size)
}

/// Largest configuration document, in bytes. The Envoy filter checks the size before it
/// copies the document into the VM.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// Parses a configuration document into `T`. An unknown field, a wrong type or an invalid
/// duration is reported as [`ConfigError::InvalidValue`] at the path of the field at fault
/// (`providers.idp.audience`). JSON that does not parse at all, and a document over
/// [`MAX_CONFIG_BYTES`], is [`ConfigError::Syntax`]. Messages never quote the document's
/// values, which may be secrets.
///
/// # Errors
///
/// As described above.
pub(crate) fn parse_document<T: FromJson>(bytes: &[u8]) -> Result<T, ConfigError> {
    if bytes.len() > MAX_CONFIG_BYTES {
        return Err(ConfigError::too_large(bytes.len()));
    }
    let value = crate::json::parse_value(bytes).map_err(|error| {
        let path = if error.is_syntax() { String::new() } else { crate::json::path_at(bytes, error.line(), error.column()) };
        let message = error.to_string();
        if path.is_empty() {
            ConfigError::Syntax { message }
        } else {
            ConfigError::invalid(path, message)
        }
    })?;
    T::from_json(&value, &Path::Root)
}

fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        alloc::format!("{prefix}.{name}")
    }
}

impl ProviderConfig {
    /// Parses a provider document without checking values.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Syntax`] for invalid JSON; [`ConfigError::InvalidValue`] with the
    /// field's path for an unknown field, a wrong type or an invalid duration.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        parse_document(bytes)
    }

    /// Checks every value and builds the policy. `prefix` is this provider's path in a
    /// larger document, used in messages (e.g. `providers.idp`).
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] naming the field and what is allowed.
    pub fn compile(&self, prefix: &str) -> Result<Policy, ConfigError> {
        let mut policy = Policy::with_algorithms(self.compile_algorithms(prefix)?);
        self.compile_identity(prefix, &mut policy)?;
        self.compile_time(prefix, &mut policy)?;
        self.compile_claims(prefix, &mut policy)?;
        self.check_sources(prefix)?;
        Ok(policy)
    }

    /// Whether the provider only introspects tokens and verifies no JWT.
    pub fn introspection_only(&self) -> bool {
        self.introspection.as_ref().is_some_and(|introspection| introspection.mode.as_deref().is_none_or(|mode| mode == "only"))
    }

    fn compile_algorithms(&self, prefix: &str) -> Result<Vec<Algorithm>, ConfigError> {
        // An introspection-only provider verifies no signature, so it may list none.
        if self.algorithms.is_empty() && self.introspection_only() {
            return Ok(Vec::new());
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::invalid(field(prefix, "algorithms"), "list at least one algorithm, e.g. [\"RS256\"]"));
        }
        let mut algorithms = Vec::new();
        for (index, name) in self.algorithms.iter().enumerate() {
            let path = alloc::format!("{}[{index}]", field(prefix, "algorithms"));
            if name.eq_ignore_ascii_case("none") {
                return Err(ConfigError::invalid(path, "`none` is never allowed: unsecured tokens cannot be verified"));
            }
            let alg = Algorithm::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Algorithm::ALL.iter().map(|alg| alg.name()).collect();
                ConfigError::invalid(&path, alloc::format!("unknown algorithm {name:?}; allowed: {}", known.join(", ")))
            })?;
            if !alg.is_supported() {
                return Err(ConfigError::invalid(path, alloc::format!("{alg} needs the `es256k` cargo feature")));
            }
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        Ok(algorithms)
    }

    fn compile_identity(&self, prefix: &str, policy: &mut Policy) -> Result<(), ConfigError> {
        if let Some(issuer) = &self.issuer {
            let values = issuer.clone().into_vec();
            if values.is_empty() {
                return Err(ConfigError::invalid(field(prefix, "issuer"), "list at least one issuer or leave the field out"));
            }
            for (index, value) in values.into_iter().enumerate() {
                let path = alloc::format!("{}[{index}]", field(prefix, "issuer"));
                if value.is_empty() {
                    return Err(ConfigError::invalid(path, "an issuer must not be empty"));
                }
                policy.issuers.push(match value.split_once(TENANT_PLACEHOLDER) {
                    None => IssuerMatcher::Exact(value),
                    Some((before, after)) => {
                        if after.contains(TENANT_PLACEHOLDER) {
                            return Err(ConfigError::invalid(path, "an issuer template may contain `{tenant}` only once"));
                        }
                        if value.contains(['{', '}']) && (before.contains(['{', '}']) || after.contains(['{', '}'])) {
                            return Err(ConfigError::invalid(path, "the only placeholder allowed is `{tenant}`"));
                        }
                        IssuerMatcher::Template { prefix: before.to_string(), suffix: after.to_string() }
                    }
                });
            }
        }
        let has_template = policy.issuers.iter().any(|matcher| matches!(matcher, IssuerMatcher::Template { .. }));
        if let Some(tenants) = &self.tenants {
            if !has_template {
                return Err(ConfigError::invalid(field(prefix, "tenants"), "only used with an issuer containing `{tenant}`"));
            }
            if tenants.iter().any(|tenant| tenant.is_empty() || tenant.contains('/')) {
                return Err(ConfigError::invalid(field(prefix, "tenants"), "tenants must be non-empty and contain no `/`"));
            }
            policy.tenants = Some(tenants.clone());
        }
        if let Some(claim) = &self.tenant_claim {
            if !has_template {
                return Err(ConfigError::invalid(field(prefix, "tenant_claim"), "only used with an issuer containing `{tenant}`"));
            }
            policy.tenant_claim = Some(claim.clone());
        }
        if let Some(audiences) = &self.audiences {
            if audiences.is_empty() || audiences.iter().any(String::is_empty) {
                return Err(ConfigError::invalid(
                    field(prefix, "audiences"),
                    "list at least one non-empty audience or leave the field out",
                ));
            }
            policy.audiences = audiences.clone();
        }
        if let Some(subjects) = &self.subjects {
            policy.subjects = subjects.clone();
        }
        if let Some(client_ids) = &self.client_ids {
            if client_ids.is_empty() {
                return Err(ConfigError::invalid(field(prefix, "client_ids"), "list at least one client or leave the field out"));
            }
            policy.client_ids = client_ids.clone();
        }
        Ok(())
    }

    fn compile_time(&self, prefix: &str, policy: &mut Policy) -> Result<(), ConfigError> {
        let leeway = self.clock_skew_seconds.unwrap_or(DEFAULT_CLOCK_SKEW_SECONDS);
        if leeway > MAX_CLOCK_SKEW_SECONDS {
            return Err(ConfigError::invalid(
                field(prefix, "clock_skew_seconds"),
                alloc::format!("{leeway} is more than the maximum of {MAX_CLOCK_SKEW_SECONDS} seconds"),
            ));
        }
        policy.leeway = leeway;
        policy.require_expiration = self.require_expiration.unwrap_or(true);
        // Time claims are whole seconds, so a shorter limit would round down to zero.
        policy.max_lifetime = match self.max_lifetime {
            Some(DurationMs(milliseconds)) if milliseconds < 1000 => {
                return Err(ConfigError::invalid(field(prefix, "max_lifetime"), "must be at least one second"));
            }
            other => other.map(DurationMs::seconds),
        };
        policy.max_token_age = match self.max_token_age {
            Some(DurationMs(milliseconds)) if milliseconds < 1000 => {
                return Err(ConfigError::invalid(field(prefix, "max_token_age"), "must be at least one second"));
            }
            other => other.map(DurationMs::seconds),
        };
        let Some(max_bytes) = size_in_range(self.max_token_bytes, DEFAULT_MAX_TOKEN_BYTES, 256..=MAX_TOKEN_BYTES_LIMIT) else {
            let bytes = self.max_token_bytes.unwrap_or_default();
            return Err(ConfigError::invalid(
                field(prefix, "max_token_bytes"),
                alloc::format!("{bytes} is outside the allowed range 256 to {MAX_TOKEN_BYTES_LIMIT}"),
            ));
        };
        policy.max_token_bytes = max_bytes;
        Ok(())
    }

    fn compile_claims(&self, prefix: &str, policy: &mut Policy) -> Result<(), ConfigError> {
        match self.profile.as_deref() {
            None => {}
            Some("rfc9068") => {
                policy.token_type = Some(String::from("at+jwt"));
                policy.required_registered = RFC9068_REQUIRED_CLAIMS.to_vec();
            }
            Some(other) => {
                return Err(ConfigError::invalid(field(prefix, "profile"), alloc::format!("unknown profile {other:?}; allowed: \"rfc9068\"")));
            }
        }
        if let Some(token_type) = &self.token_type {
            if token_type.is_empty() {
                return Err(ConfigError::invalid(field(prefix, "token_type"), "must not be empty, e.g. \"at+jwt\""));
            }
            let normalized = normalize_media_type(token_type);
            if self.profile.is_some() && normalized != "at+jwt" {
                return Err(ConfigError::invalid(field(prefix, "token_type"), "the rfc9068 profile requires \"at+jwt\""));
            }
            policy.token_type = Some(normalized);
        }
        if let Some(type_claim) = &self.token_type_claim {
            if type_claim.claim.is_empty() {
                return Err(ConfigError::invalid(field(prefix, "token_type_claim.claim"), "must name a claim"));
            }
            policy.token_type_claim = Some(type_claim.clone());
        }
        if let Some(requirements) = &self.required_claims {
            for (index, requirement) in requirements.iter().enumerate() {
                let path = alloc::format!("{}[{index}]", field(prefix, "required_claims"));
                if requirement.claim.is_empty() {
                    return Err(ConfigError::invalid(path, "`claim` must name a claim"));
                }
                if requirement.equals.is_some() && requirement.one_of.is_some() {
                    return Err(ConfigError::invalid(path, "use either `equals` or `one_of`, not both"));
                }
                if requirement.one_of.as_ref().is_some_and(Vec::is_empty) {
                    return Err(ConfigError::invalid(path, "`one_of` must list at least one value"));
                }
            }
            policy.required_claims = requirements.clone();
        }
        if let Some(scopes) = &self.scopes {
            if scopes.is_empty() {
                return Err(ConfigError::invalid(field(prefix, "scopes"), "set `all_of` or `any_of`, or leave the field out"));
            }
            if scopes.all_of.iter().chain(&scopes.any_of).any(|scope| scope.is_empty() || scope.contains(' ')) {
                return Err(ConfigError::invalid(field(prefix, "scopes"), "each scope must be non-empty and contain no space"));
            }
            policy.scopes = scopes.clone();
        }
        if let Some(roles) = &self.roles {
            policy.roles = Some(compile_roles(&field(prefix, "roles"), roles)?);
        }
        Ok(())
    }

    fn check_sources(&self, prefix: &str) -> Result<(), ConfigError> {
        if self.local_jwks.is_some() && self.remote_jwks.is_some() {
            return Err(ConfigError::invalid(field(prefix, "remote_jwks"), "set exactly one of `local_jwks` and `remote_jwks`"));
        }
        // A fetched key set never supplies an `oct` key (`KeySetOptions::allow_symmetric`
        // is off for it), so an HMAC algorithm beside `remote_jwks` could never verify.
        if self.remote_jwks.is_some() {
            let symmetric = |name: &String| Algorithm::from_name(name).is_some_and(Algorithm::is_symmetric);
            if let Some(index) = self.algorithms.iter().position(symmetric) {
                return Err(ConfigError::invalid(
                    alloc::format!("{}[{index}]", field(prefix, "algorithms")),
                    "HMAC algorithms need the shared secret in `local_jwks`; a key set fetched with `remote_jwks` never supplies one",
                ));
            }
        }
        if let Some(local) = &self.local_jwks {
            if local.inline.is_some() == local.inline_string.is_some() {
                return Err(ConfigError::invalid(field(prefix, "local_jwks"), "set exactly one of `inline_string` and `inline`"));
            }
        }
        if let Some(remote) = &self.remote_jwks {
            if remote.http_uri.is_some() == remote.discovery_uri.is_some() {
                return Err(ConfigError::invalid(field(prefix, "remote_jwks"), "set exactly one of `http_uri` and `discovery_uri`"));
            }
            for (name, uri) in [("http_uri", &remote.http_uri), ("discovery_uri", &remote.discovery_uri)] {
                if let Some(uri) = uri {
                    let path = field(prefix, &alloc::format!("remote_jwks.{name}.uri"));
                    if !(uri.uri.starts_with("https://") || uri.uri.starts_with("http://")) {
                        return Err(ConfigError::invalid(path, "must be an http:// or https:// URL"));
                    }
                }
            }
            if remote.cache_duration.is_some_and(|duration| duration.0 < 1000) {
                return Err(ConfigError::invalid(field(prefix, "remote_jwks.cache_duration"), "must be at least one second"));
            }
        }
        if let Some(headers) = &self.from_headers {
            for (index, source) in headers.iter().enumerate() {
                if source.name.is_empty() || !source.name.bytes().all(is_token_char) {
                    return Err(ConfigError::invalid(
                        alloc::format!("{}[{index}].name", field(prefix, "from_headers")),
                        "must be a valid HTTP header name",
                    ));
                }
            }
        }
        let outputs = self
            .claim_to_headers
            .iter()
            .flatten()
            .map(|output| output.header_name.as_str())
            .chain(self.forward_payload_header.as_deref());
        for name in outputs {
            if name.is_empty() || !name.bytes().all(is_token_char) || name.starts_with(':') {
                return Err(ConfigError::invalid(
                    field(prefix, "claim_to_headers"),
                    alloc::format!("{name:?} is not a valid HTTP header name"),
                ));
            }
        }
        Ok(())
    }
}

/// Whether a byte may appear in an HTTP field name (RFC 9110 §5.6.2 `tchar`).
pub fn is_token_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn compile_roles(path: &str, roles: &RoleRequirement) -> Result<Roles, ConfigError> {
    let claim = match (&roles.claim, &roles.preset) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ConfigError::invalid(path, "set exactly one of `claim` and `preset`"));
        }
        (Some(claim), None) => {
            if claim.is_empty() {
                return Err(ConfigError::invalid(alloc::format!("{path}.claim"), "must name a claim"));
            }
            claim.clone()
        }
        (None, Some(preset)) => preset_path(preset).ok_or_else(|| {
            ConfigError::invalid(
                alloc::format!("{path}.preset"),
                alloc::format!(
                    "unknown preset {preset:?}; allowed: \"roles\", \"groups\", \"keycloak_realm\", \"keycloak_client:<client>\", \"cognito\", \"entra\""
                ),
            )
        })?,
    };
    let requirement = SetRequirement { all_of: roles.all_of.clone(), any_of: roles.any_of.clone() };
    if requirement.is_empty() {
        return Err(ConfigError::invalid(path, "set `all_of` or `any_of`"));
    }
    Ok(Roles { claim, requirement })
}

/// Returns the claim path of a role preset.
pub fn preset_path(preset: &str) -> Option<ClaimPath> {
    let segments: Vec<String> = match preset {
        "roles" | "entra" => alloc::vec![String::from("roles")],
        "groups" => alloc::vec![String::from("groups")],
        "keycloak_realm" => alloc::vec![String::from("realm_access"), String::from("roles")],
        "cognito" => alloc::vec![String::from("cognito:groups")],
        other => {
            let client = other.strip_prefix("keycloak_client:").filter(|client| !client.is_empty())?;
            alloc::vec![String::from("resource_access"), client.to_string(), String::from("roles")]
        }
    };
    Some(ClaimPath::Segments(segments))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(json: &str) -> Result<Policy, ConfigError> {
        Policy::from_json(json.as_bytes())
    }

    #[test]
    fn minimal_policy_defaults() {
        let policy = compile(r#"{"algorithms":["RS256"]}"#).unwrap();
        assert_eq!(policy.algorithms, [Algorithm::RS256]);
        assert_eq!(policy.leeway, 60);
        assert!(policy.require_expiration);
        assert_eq!(policy.max_token_bytes, 16 * 1024);
    }

    #[test]
    fn unknown_field_named() {
        let error = compile(r#"{"algorithms":["RS256"],"audience":"x"}"#).unwrap_err();
        assert!(error.to_string().contains("unknown field `audience`"), "{error}");
    }

    #[test]
    fn none_algorithm_rejected() {
        for name in ["none", "None", "NONE"] {
            let error = compile(&alloc::format!(r#"{{"algorithms":["{name}"]}}"#)).unwrap_err();
            assert!(error.to_string().contains("never allowed"), "{error}");
        }
    }

    #[test]
    fn unknown_algorithm_lists_allowed() {
        let error = compile(r#"{"algorithms":["RS256","rs512"]}"#).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("algorithms[1]"), "{message}");
        assert!(message.contains("allowed: HS256"), "{message}");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("600s"), Some(DurationMs(600_000)));
        assert_eq!(parse_duration("1.5s"), Some(DurationMs(1_500)));
        assert_eq!(parse_duration("250ms"), Some(DurationMs(250)));
        assert_eq!(parse_duration("10m"), Some(DurationMs(600_000)));
        assert_eq!(parse_duration("2h"), Some(DurationMs(7_200_000)));
        for bad in ["", "s", "10", "-1s", "1.s5", "1e3s", "99999999999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn issuer_template_matches_one_segment() {
        let policy = compile(r#"{"algorithms":["RS256"],"issuer":"https://login.example.com/{tenant}/v2.0"}"#).unwrap();
        let matcher = &policy.issuers[0];
        assert_eq!(matcher.matches("https://login.example.com/abc/v2.0"), Some("abc"));
        assert_eq!(matcher.matches("https://login.example.com//v2.0"), None);
        assert_eq!(matcher.matches("https://login.example.com/a/b/v2.0"), None);
        assert_eq!(matcher.matches("https://login.example.com/../v2.0"), None);
        assert_eq!(matcher.matches("https://login.example.com/abc/v2.0/"), None);
    }

    #[test]
    fn media_type_normalised() {
        assert_eq!(normalize_media_type("application/AT+JWT"), "at+jwt");
        assert_eq!(normalize_media_type("at+jwt"), "at+jwt");
        assert_eq!(normalize_media_type("JWT"), "jwt");
    }

    #[test]
    fn role_presets() {
        assert_eq!(
            preset_path("keycloak_client:my.app"),
            Some(ClaimPath::Segments(alloc::vec!["resource_access".into(), "my.app".into(), "roles".into()]))
        );
        assert!(preset_path("keycloak_client:").is_none());
        assert!(preset_path("unknown").is_none());
    }

    #[test]
    fn set_requirement_reports_missing() {
        let requirement = SetRequirement { all_of: alloc::vec!["a".into(), "b".into()], any_of: alloc::vec!["x".into(), "y".into()] };
        assert_eq!(requirement.missing(&["a"]), Some(alloc::vec![String::from("b")]));
        assert_eq!(requirement.missing(&["a", "b"]), Some(alloc::vec![String::from("x"), String::from("y")]));
        assert_eq!(requirement.missing(&["a", "b", "y"]), None);
    }
}
