//! The gate configuration shared by the Envoy filter and the edge worker: named
//! providers (each a [`ProviderConfig`]), rules that say which requests need which
//! providers, and how failures are answered.
//!
//! Field names follow Envoy's `jwt_authn` filter (`providers`, `rules`, `requires`,
//! `provider_name`, `requires_any`, `requires_all`, `allow_missing`,
//! `allow_missing_or_failed`, `bypass_cors_preflight`).

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use zeroize::Zeroizing;

use crate::alg::Algorithm;
use crate::dpop::nonce::{DEFAULT_NONCE_LIFETIME_SECONDS, MIN_SECRET_BYTES};
use crate::dpop::DpopPolicy;
use crate::error::ConfigError;
use crate::gate::cache::{CacheLimits, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES};
use crate::introspection::{self, IntrospectionMode, IntrospectionSettings};
use crate::jwks::{KeySet, KeySetOptions};
use crate::policy::{
    is_token_char, size_in_range, ClaimPath, DpopConfig, DurationMs, HeaderSource, HttpUri, IntrospectionConfig, Policy,
    ProviderConfig, RemoteJwks, RevocationListConfig,
};
use crate::revocation;
use crate::schema::from_json_struct;

/// Most providers in one configuration.
pub const MAX_PROVIDERS: usize = 64;

/// Deepest nesting of `requires_any` / `requires_all`.
pub const MAX_REQUIREMENT_DEPTH: usize = 8;

/// The configuration document.
#[derive(Clone, Debug, PartialEq)]
pub struct GateConfig {
    /// Providers by name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Rules, first match wins. Unset: every request requires one of the providers.
    pub rules: Option<Vec<RuleConfig>>,
    /// Let CORS preflight requests (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) through without a token; default false.
    pub bypass_cors_preflight: Option<bool>,
    /// How failures are answered.
    pub failure: Option<FailureConfig>,
    /// The verified-token cache.
    pub jwt_cache_config: Option<JwtCacheConfig>,
}

/// Bounds of the verified-token cache (Envoy's `jwt_cache_config`, here one cache for all
/// providers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JwtCacheConfig {
    /// Maximum number of cached tokens; 0 turns the cache off. Default 1000. Read as `u64`
    /// so that a number too large for a 32-bit `usize` fails the range check, with the same
    /// message on every target.
    pub jwt_cache_size: Option<u64>,
    /// Maximum estimated bytes of cached tokens and their claims. Default 1 MiB.
    pub max_bytes: Option<u64>,
}

/// Largest `jwt_cache_config.jwt_cache_size`.
pub const MAX_JWT_CACHE_SIZE: usize = 100_000;

/// Largest `jwt_cache_config.max_bytes`: 64 MiB.
pub const MAX_JWT_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleConfig {
    /// Which requests the rule applies to.
    pub route: RouteMatch,
    /// What they need. Unset: nothing (the request passes without a token).
    pub requires: Option<RequirementConfig>,
}

/// A request matcher: path prefix or exact path, and optionally methods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMatch {
    /// Path prefix (the query string is not part of the path).
    pub prefix: Option<String>,
    /// Exact path.
    pub path: Option<String>,
    /// Methods; unset: any.
    pub methods: Option<Vec<String>>,
}

/// A requirement as written; exactly one field must be set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequirementConfig {
    /// A token verified by this provider.
    pub provider_name: Option<String>,
    /// A token verified by any of these.
    pub requires_any: Option<RequirementList>,
    /// Tokens verified by all of these.
    pub requires_all: Option<RequirementList>,
    /// No token is fine; a token that is present must verify with some provider.
    pub allow_missing: Option<Empty>,
    /// Anything passes; a token that verifies still produces its outputs.
    pub allow_missing_or_failed: Option<Empty>,
}

/// The list inside `requires_any` / `requires_all`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequirementList {
    /// The requirements.
    pub requirements: Vec<RequirementConfig>,
}

/// An empty JSON object, as Envoy writes marker messages (`"allow_missing": {}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Empty {}

/// How failures are answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailureConfig {
    /// `realm` of the challenge; default: the request URL without its query.
    pub realm: Option<String>,
    /// Answer with a JSON body `{"error", "error_description", "code"}`; default plain text.
    pub json_body: Option<bool>,
    /// Leave out `error_description` and the body (Envoy's `strip_failure_response`).
    pub strip_details: Option<bool>,
}

from_json_struct!(GateConfig {
    providers: required,
    rules: optional,
    bypass_cors_preflight: optional,
    failure: optional,
    jwt_cache_config: optional,
});
from_json_struct!(JwtCacheConfig { jwt_cache_size: optional, max_bytes: optional });
from_json_struct!(RuleConfig { route: required = "match", requires: optional });
from_json_struct!(RouteMatch { prefix: optional, path: optional, methods: optional });
from_json_struct!(RequirementConfig {
    provider_name: optional,
    requires_any: optional,
    requires_all: optional,
    allow_missing: optional,
    allow_missing_or_failed: optional,
});
from_json_struct!(RequirementList { requirements: required });
from_json_struct!(Empty {});
from_json_struct!(FailureConfig { realm: optional, json_body: optional, strip_details: optional });

/// A checked requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// One provider, by index.
    Provider(usize),
    /// Any of.
    Any(Vec<Requirement>),
    /// All of.
    All(Vec<Requirement>),
    /// Missing tokens pass; present ones must verify.
    AllowMissing,
    /// Everything passes.
    AllowMissingOrFailed,
}

/// A checked rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Path prefix.
    pub prefix: Option<String>,
    /// Exact path.
    pub path: Option<String>,
    /// Methods, upper case; empty: any.
    pub methods: Vec<String>,
    /// `None`: no token needed.
    pub requires: Option<Requirement>,
}

impl Rule {
    /// Whether the rule applies to a request.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        let path = path.split_once('?').map_or(path, |(path, _)| path);
        let path_ok = match (&self.path, &self.prefix) {
            (Some(exact), _) => path == exact,
            (None, Some(prefix)) => path.starts_with(prefix.as_str()),
            (None, None) => true,
        };
        path_ok && (self.methods.is_empty() || self.methods.iter().any(|allowed| allowed.eq_ignore_ascii_case(method)))
    }
}

/// Where a provider takes its keys from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// Keys parsed from the configuration.
    Local(KeySet),
    /// Keys fetched over HTTP.
    Remote(RemoteJwks),
    /// No keys: the provider only introspects tokens.
    IntrospectionOnly,
}

/// Whether a provider accepts DPoP-bound tokens only, or bearer tokens too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DpopMode {
    /// `Authorization: DPoP` with a proof, or `Bearer` for tokens not bound to a key.
    Allowed,
    /// Only `Authorization: DPoP` with a proof.
    Required,
}

/// A provider's DPoP settings, checked.
#[derive(Clone)]
pub struct DpopSettings {
    /// Allowed or required.
    pub mode: DpopMode,
    /// What proofs must satisfy; `require_nonce` is set when nonces are enabled.
    pub policy: DpopPolicy,
    /// How long one nonce is issued, in seconds; `None` when nonces are off.
    pub nonce_lifetime_seconds: Option<u64>,
    /// The configured nonce secret; `None`: the adapter supplies one.
    pub nonce_secret: Option<Zeroizing<Vec<u8>>>,
    /// Scheme and authority that replace the request's for the `htu` check.
    pub origin: Option<String>,
}

impl core::fmt::Debug for DpopSettings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DpopSettings")
            .field("mode", &self.mode)
            .field("policy", &self.policy)
            .field("nonce_lifetime_seconds", &self.nonce_lifetime_seconds)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl DpopSettings {
    /// Returns the `algs` attribute of a DPoP challenge: the allowed proof algorithms,
    /// space-separated ([RFC 9449 §7.1](https://www.rfc-editor.org/rfc/rfc9449#section-7.1)).
    pub fn algs(&self) -> String {
        self.policy.algorithms.iter().map(|alg| alg.name()).collect::<Vec<_>>().join(" ")
    }
}

/// A provider's revocation list settings, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationListSettings {
    /// The list's URL.
    pub uri: String,
    /// Envoy cluster that reaches it.
    pub cluster: Option<String>,
    /// Fetch timing with defaults filled in; `refetch_cooldown_ms` is unused.
    pub timing: RemoteTiming,
}

/// Token locations of a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSources {
    /// Headers with their prefixes.
    pub headers: Vec<HeaderSource>,
    /// Query parameters.
    pub params: Vec<String>,
    /// Cookies.
    pub cookies: Vec<String>,
}

/// A claim copied to a header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimOutput {
    /// Lower-case header name.
    pub header: String,
    /// Claim path.
    pub claim: ClaimPath,
}

/// A checked provider.
#[derive(Clone, Debug)]
pub struct Provider {
    /// Its name in the configuration.
    pub name: String,
    /// The verification policy.
    pub policy: Policy,
    /// Where keys come from.
    pub keys: KeySource,
    /// Where tokens come from.
    pub sources: TokenSources,
    /// Keep the credential in the forwarded request.
    pub forward: bool,
    /// Header for the verified payload.
    pub payload_header: Option<String>,
    /// Claims to headers.
    pub claim_headers: Vec<ClaimOutput>,
    /// DPoP settings; `None`: tokens bound to a key are rejected.
    pub dpop: Option<DpopSettings>,
    /// Token introspection.
    pub introspection: Option<IntrospectionSettings>,
    /// Revocation list.
    pub revocation_list: Option<RevocationListSettings>,
}

/// A checked configuration.
#[derive(Clone, Debug)]
pub struct Gate {
    /// Providers, in name order.
    pub providers: Vec<Provider>,
    /// Rules; `None`: every request requires any provider.
    pub rules: Option<Vec<Rule>>,
    /// Whether CORS preflights pass.
    pub bypass_cors_preflight: bool,
    /// Realm; `None`: the request URL.
    pub realm: Option<String>,
    /// JSON bodies.
    pub json_body: bool,
    /// No details in replies.
    pub strip_details: bool,
    /// Every header the gate writes, lower case; removed from every incoming request.
    pub output_headers: Vec<String>,
    /// Bounds of the verified-token cache.
    pub cache_limits: CacheLimits,
}

impl Gate {
    /// Parses and checks a configuration document.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first unknown field or invalid value, with its path
    /// (e.g. `providers.idp.algorithms[0]`).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        let config: GateConfig = crate::policy::parse_document(bytes)?;
        Self::compile(&config)
    }

    /// Checks a parsed configuration.
    ///
    /// # Errors
    ///
    /// As [`Gate::from_json`].
    pub fn compile(config: &GateConfig) -> Result<Self, ConfigError> {
        if config.providers.is_empty() {
            return Err(ConfigError::invalid("providers", "configure at least one provider"));
        }
        if config.providers.len() > MAX_PROVIDERS {
            return Err(ConfigError::invalid("providers", alloc::format!("at most {MAX_PROVIDERS} providers are allowed")));
        }
        let mut providers = Vec::new();
        for (name, provider) in &config.providers {
            providers.push(compile_provider(name, provider)?);
        }
        let names: Vec<&str> = providers.iter().map(|provider| provider.name.as_str()).collect();
        let rules = match &config.rules {
            None => None,
            Some(rules) => {
                let mut compiled = Vec::new();
                for (index, rule) in rules.iter().enumerate() {
                    compiled.push(compile_rule(&alloc::format!("rules[{index}]"), rule, &names)?);
                }
                Some(compiled)
            }
        };
        let failure = config.failure.clone().unwrap_or_default();
        let mut output_headers: Vec<String> = Vec::new();
        for provider in &providers {
            for name in provider.claim_headers.iter().map(|output| &output.header).chain(&provider.payload_header) {
                if !output_headers.contains(name) {
                    output_headers.push(name.clone());
                }
            }
        }
        for provider in &providers {
            for source in &provider.sources.headers {
                if output_headers.contains(&source.name.to_ascii_lowercase()) {
                    return Err(ConfigError::invalid(
                        alloc::format!("providers.{}.from_headers", provider.name),
                        alloc::format!("{:?} is also an output header; outputs are removed from every request", source.name),
                    ));
                }
            }
        }
        Ok(Self {
            providers,
            rules,
            bypass_cors_preflight: config.bypass_cors_preflight.unwrap_or(false),
            realm: failure.realm,
            json_body: failure.json_body.unwrap_or(false),
            strip_details: failure.strip_details.unwrap_or(false),
            output_headers,
            cache_limits: compile_cache(config.jwt_cache_config.unwrap_or_default())?,
        })
    }

    /// Finds a provider's index by name.
    pub fn provider_index(&self, name: &str) -> Option<usize> {
        self.providers.iter().position(|provider| provider.name == name)
    }
}

fn compile_cache(config: JwtCacheConfig) -> Result<CacheLimits, ConfigError> {
    let Some(max_entries) = size_in_range(config.jwt_cache_size, DEFAULT_MAX_ENTRIES, 0..=MAX_JWT_CACHE_SIZE) else {
        let size = config.jwt_cache_size.unwrap_or_default();
        return Err(ConfigError::invalid(
            "jwt_cache_config.jwt_cache_size",
            alloc::format!("{size} is more than the maximum of {MAX_JWT_CACHE_SIZE}; 0 turns the cache off"),
        ));
    };
    let Some(max_bytes) = size_in_range(config.max_bytes, DEFAULT_MAX_BYTES, 4096..=MAX_JWT_CACHE_BYTES) else {
        let bytes = config.max_bytes.unwrap_or_default();
        return Err(ConfigError::invalid(
            "jwt_cache_config.max_bytes",
            alloc::format!("{bytes} is outside the allowed range 4096 to {MAX_JWT_CACHE_BYTES}"),
        ));
    };
    Ok(CacheLimits { max_entries, max_bytes })
}

fn compile_provider(name: &str, config: &ProviderConfig) -> Result<Provider, ConfigError> {
    let prefix = alloc::format!("providers.{name}");
    if name.is_empty() || !name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.')) {
        return Err(ConfigError::invalid(prefix, "provider names use letters, digits, `-`, `_` and `.` only"));
    }
    // Introspection first: its mode decides whether `algorithms` may be empty.
    let introspection = config.introspection.as_ref().map(|introspection| compile_introspection(&prefix, introspection)).transpose()?;
    let introspection_only = introspection.as_ref().is_some_and(|settings| settings.mode == IntrospectionMode::Only);
    if introspection_only {
        reject_jwt_only_checks(&prefix, config)?;
    }
    let policy = config.compile(&prefix)?;
    let keys = match (&config.local_jwks, &config.remote_jwks) {
        (None, None) if introspection_only => KeySource::IntrospectionOnly,
        (Some(_), _) | (_, Some(_)) if introspection_only => {
            return Err(ConfigError::invalid(
                prefix,
                "a provider with `introspection.mode` \"only\" verifies no JWT: remove `local_jwks` and `remote_jwks`, or use mode \"after_jwt\"",
            ));
        }
        (Some(local), None) => {
            let document = match (&local.inline_string, &local.inline) {
                (Some(text), _) => text.clone().into_bytes(),
                (None, Some(value)) => value.to_string().into_bytes(),
                (None, None) => Vec::new(),
            };
            let set = KeySet::from_json(&document, KeySetOptions { allow_symmetric: true })
                .map_err(|error| ConfigError::invalid(alloc::format!("{prefix}.local_jwks"), error.to_string()))?;
            KeySource::Local(set)
        }
        (None, Some(remote)) => KeySource::Remote(remote.clone()),
        _ => {
            return Err(ConfigError::invalid(prefix, "set exactly one of `local_jwks` and `remote_jwks`"));
        }
    };
    let headers = match &config.from_headers {
        Some(headers) => headers
            .iter()
            .map(|source| HeaderSource { name: source.name.to_ascii_lowercase(), value_prefix: source.value_prefix.clone() })
            .collect(),
        None if config.from_params.is_some() || config.from_cookies.is_some() => Vec::new(),
        None => alloc::vec![HeaderSource { name: String::from("authorization"), value_prefix: Some(String::from("Bearer ")) }],
    };
    let params = config.from_params.clone().unwrap_or_default();
    let cookies = config.from_cookies.clone().unwrap_or_default();
    for (field, values) in [("from_params", &params), ("from_cookies", &cookies)] {
        if values.iter().any(|value| value.is_empty() || !value.bytes().all(is_token_char)) {
            return Err(ConfigError::invalid(alloc::format!("{prefix}.{field}"), "names must be non-empty tokens"));
        }
    }
    if headers.is_empty() && params.is_empty() && cookies.is_empty() && config.dpop.is_none() {
        return Err(ConfigError::invalid(prefix, "configure at least one token source"));
    }
    let claim_headers = config
        .claim_to_headers
        .iter()
        .flatten()
        .map(|output| ClaimOutput { header: output.header_name.to_ascii_lowercase(), claim: output.claim_name.clone() })
        .collect();
    Ok(Provider {
        name: name.to_string(),
        policy,
        keys,
        sources: TokenSources { headers, params, cookies },
        forward: config.forward.unwrap_or(false),
        payload_header: config.forward_payload_header.as_ref().map(|name| name.to_ascii_lowercase()),
        claim_headers,
        dpop: config.dpop.as_ref().map(|dpop| compile_dpop(&prefix, dpop)).transpose()?,
        introspection,
        revocation_list: config.revocation_list.as_ref().map(|list| compile_revocation_list(&prefix, list)).transpose()?,
    })
}

/// Rejects the fields that check what only a JWT has, for a provider that verifies no JWT
/// (`introspection.mode` "only"): an introspection answer has no JOSE header, so they would
/// be skipped without a word.
fn reject_jwt_only_checks(prefix: &str, config: &ProviderConfig) -> Result<(), ConfigError> {
    const ONLY: &str = "a provider with `introspection.mode` \"only\" verifies no JWT";
    if config.token_type.is_some() {
        return Err(ConfigError::invalid(
            alloc::format!("{prefix}.token_type"),
            alloc::format!("checks the `typ` header of a JWT, and {ONLY}: remove it, or use mode \"after_jwt\""),
        ));
    }
    if config.token_type_claim.is_some() {
        return Err(ConfigError::invalid(
            alloc::format!("{prefix}.token_type_claim"),
            alloc::format!("applies to JWTs only, and {ONLY}: require the answer's member with `required_claims` instead"),
        ));
    }
    if config.profile.is_some() {
        return Err(ConfigError::invalid(
            alloc::format!("{prefix}.profile"),
            alloc::format!(
                "requires the `typ` header `at+jwt` of an RFC 9068 JWT, and {ONLY}: remove it, and list the members the answer must have in `required_claims`"
            ),
        ));
    }
    Ok(())
}

/// Longest `dpop.max_age` and `dpop.nonce.lifetime`, in seconds.
pub const MAX_DPOP_WINDOW_SECONDS: u64 = 3_600;

fn seconds_in_range(field: String, value: Option<DurationMs>, default: u64, max: u64) -> Result<u64, ConfigError> {
    let Some(DurationMs(milliseconds)) = value else { return Ok(default) };
    if !(1_000..=max.saturating_mul(1000)).contains(&milliseconds) {
        return Err(ConfigError::invalid(field, alloc::format!("must be from 1 s to {max} s")));
    }
    Ok(milliseconds / 1000)
}

fn compile_dpop(prefix: &str, config: &DpopConfig) -> Result<DpopSettings, ConfigError> {
    let mode = match config.mode.as_deref() {
        None | Some("allowed") => DpopMode::Allowed,
        Some("required") => DpopMode::Required,
        Some(other) => {
            return Err(ConfigError::invalid(
                alloc::format!("{prefix}.dpop.mode"),
                alloc::format!("unknown mode {other:?}; allowed: \"allowed\", \"required\""),
            ));
        }
    };
    let mut policy = DpopPolicy::default();
    if let Some(names) = &config.algorithms {
        let field = alloc::format!("{prefix}.dpop.algorithms");
        if names.is_empty() {
            return Err(ConfigError::invalid(field, "list at least one algorithm, e.g. [\"ES256\"]"));
        }
        let mut algorithms = Vec::new();
        for (index, name) in names.iter().enumerate() {
            let algorithm = Algorithm::from_name(name)
                .filter(|alg| !alg.is_symmetric() && alg.is_supported())
                .ok_or_else(|| {
                    ConfigError::invalid(
                        alloc::format!("{field}[{index}]"),
                        alloc::format!("{name:?} is not an asymmetric algorithm this build supports, e.g. \"ES256\" or \"EdDSA\""),
                    )
                })?;
            if !algorithms.contains(&algorithm) {
                algorithms.push(algorithm);
            }
        }
        policy.algorithms = algorithms;
    }
    policy.max_age_seconds = seconds_in_range(
        alloc::format!("{prefix}.dpop.max_age"),
        config.max_age,
        crate::dpop::DEFAULT_PROOF_MAX_AGE_SECONDS,
        MAX_DPOP_WINDOW_SECONDS,
    )?;
    let nonce = config.nonce.clone().unwrap_or_default();
    let nonces_enabled = nonce.enabled.unwrap_or(false);
    policy.require_nonce = nonces_enabled;
    let lifetime = seconds_in_range(
        alloc::format!("{prefix}.dpop.nonce.lifetime"),
        nonce.lifetime,
        DEFAULT_NONCE_LIFETIME_SECONDS,
        MAX_DPOP_WINDOW_SECONDS,
    )?;
    let nonce_secret = match &nonce.secret {
        None => None,
        Some(text) => {
            let secret = Base64UrlUnpadded::decode_vec(text).ok().filter(|secret| secret.len() >= MIN_SECRET_BYTES).ok_or_else(|| {
                ConfigError::invalid(
                    alloc::format!("{prefix}.dpop.nonce.secret"),
                    alloc::format!("must be unpadded base64url of at least {MIN_SECRET_BYTES} random bytes"),
                )
            })?;
            Some(Zeroizing::new(secret))
        }
    };
    let origin = match &config.origin {
        None => None,
        Some(origin) => {
            let trimmed = origin.strip_suffix('/').unwrap_or(origin);
            let valid = trimmed
                .split_once("://")
                .is_some_and(|(scheme, authority)| matches!(scheme, "http" | "https") && !authority.is_empty() && !authority.contains(['/', '?', '#', '@', ' ']));
            if !valid {
                return Err(ConfigError::invalid(
                    alloc::format!("{prefix}.dpop.origin"),
                    "must be a scheme and authority only, such as \"https://api.example.com\"",
                ));
            }
            Some(trimmed.to_string())
        }
    };
    Ok(DpopSettings { mode, policy, nonce_lifetime_seconds: nonces_enabled.then_some(lifetime), nonce_secret, origin })
}

fn check_http_uri(field: String, uri: &HttpUri) -> Result<(), ConfigError> {
    let has_host = uri.uri.split_once("://").is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with(['/', '?', '#']));
    if !(uri.uri.starts_with("https://") || uri.uri.starts_with("http://")) || !has_host || uri.uri.bytes().any(|byte| byte.is_ascii_control() || byte == b' ') {
        return Err(ConfigError::invalid(alloc::format!("{field}.uri"), "must be an absolute http:// or https:// URL"));
    }
    Ok(())
}

fn compile_introspection(prefix: &str, config: &IntrospectionConfig) -> Result<IntrospectionSettings, ConfigError> {
    let field = alloc::format!("{prefix}.introspection");
    check_http_uri(alloc::format!("{field}.http_uri"), &config.http_uri)?;
    if config.client_id.is_empty() {
        return Err(ConfigError::invalid(alloc::format!("{field}.client_id"), "must not be empty"));
    }
    if config.client_secret.is_empty() {
        return Err(ConfigError::invalid(alloc::format!("{field}.client_secret"), "must not be empty"));
    }
    let mode = match config.mode.as_deref() {
        None | Some("only") => IntrospectionMode::Only,
        Some("after_jwt") => IntrospectionMode::AfterJwt,
        Some(other) => {
            return Err(ConfigError::invalid(
                alloc::format!("{field}.mode"),
                alloc::format!("unknown mode {other:?}; allowed: \"only\", \"after_jwt\""),
            ));
        }
    };
    let cache_duration_ms = config.cache_duration.map_or(introspection::DEFAULT_CACHE_DURATION_MS, |DurationMs(ms)| ms);
    if cache_duration_ms < 1000 {
        return Err(ConfigError::invalid(alloc::format!("{field}.cache_duration"), "must be at least one second"));
    }
    let timeout_ms = config.http_uri.timeout.map_or(crate::policy::DEFAULT_FETCH_TIMEOUT_MS, |DurationMs(ms)| ms.max(1));
    Ok(IntrospectionSettings::new(
        config.http_uri.uri.clone(),
        config.http_uri.cluster.clone(),
        timeout_ms,
        config.client_id.clone(),
        config.client_secret.clone(),
        mode,
        cache_duration_ms,
        config.stale_if_error.map_or(introspection::DEFAULT_STALE_IF_ERROR_MS, |DurationMs(ms)| ms),
    ))
}

fn compile_revocation_list(prefix: &str, config: &RevocationListConfig) -> Result<RevocationListSettings, ConfigError> {
    let field = alloc::format!("{prefix}.revocation_list");
    check_http_uri(alloc::format!("{field}.http_uri"), &config.http_uri)?;
    let cache_duration_ms = config.cache_duration.map_or(revocation::DEFAULT_CACHE_DURATION_MS, |DurationMs(ms)| ms);
    if cache_duration_ms < 1000 {
        return Err(ConfigError::invalid(alloc::format!("{field}.cache_duration"), "must be at least one second"));
    }
    let timeout_ms = config.http_uri.timeout.map_or(crate::policy::DEFAULT_FETCH_TIMEOUT_MS, |DurationMs(ms)| ms.max(1));
    Ok(RevocationListSettings {
        uri: config.http_uri.uri.clone(),
        cluster: config.http_uri.cluster.clone(),
        timing: RemoteTiming {
            timeout_ms,
            cache_duration_ms,
            refetch_cooldown_ms: 0,
            stale_if_error_ms: config.stale_if_error.map_or(revocation::DEFAULT_STALE_IF_ERROR_MS, |DurationMs(ms)| ms),
            pending_timeout_ms: config.pending_timeout.map_or(timeout_ms, |DurationMs(ms)| ms.max(1)),
        },
    })
}

fn compile_rule(path: &str, rule: &RuleConfig, names: &[&str]) -> Result<Rule, ConfigError> {
    let route = &rule.route;
    if route.prefix.is_some() && route.path.is_some() {
        return Err(ConfigError::invalid(alloc::format!("{path}.match"), "set `prefix` or `path`, not both"));
    }
    for value in route.prefix.iter().chain(&route.path) {
        if !value.starts_with('/') {
            return Err(ConfigError::invalid(alloc::format!("{path}.match"), "paths start with `/`"));
        }
    }
    let methods = route.methods.clone().unwrap_or_default();
    if methods.iter().any(|method| method.is_empty() || !method.bytes().all(is_token_char)) {
        return Err(ConfigError::invalid(alloc::format!("{path}.match.methods"), "methods must be HTTP method names"));
    }
    let requires = match &rule.requires {
        None => None,
        Some(requirement) => Some(compile_requirement(&alloc::format!("{path}.requires"), requirement, names, 0)?),
    };
    Ok(Rule {
        prefix: route.prefix.clone(),
        path: route.path.clone(),
        methods: methods.iter().map(|method| method.to_ascii_uppercase()).collect(),
        requires,
    })
}

fn compile_requirement(path: &str, config: &RequirementConfig, names: &[&str], depth: usize) -> Result<Requirement, ConfigError> {
    if depth > MAX_REQUIREMENT_DEPTH {
        return Err(ConfigError::invalid(path, alloc::format!("requirements nest at most {MAX_REQUIREMENT_DEPTH} levels")));
    }
    let set = [
        config.provider_name.is_some(),
        config.requires_any.is_some(),
        config.requires_all.is_some(),
        config.allow_missing.is_some(),
        config.allow_missing_or_failed.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if set != 1 {
        return Err(ConfigError::invalid(
            path,
            "set exactly one of `provider_name`, `requires_any`, `requires_all`, `allow_missing`, `allow_missing_or_failed`",
        ));
    }
    if let Some(name) = &config.provider_name {
        let index = names
            .iter()
            .position(|known| known == name)
            .ok_or_else(|| ConfigError::invalid(path, alloc::format!("unknown provider {name:?}; known: {}", names.join(", "))))?;
        return Ok(Requirement::Provider(index));
    }
    if config.allow_missing.is_some() {
        return Ok(Requirement::AllowMissing);
    }
    if config.allow_missing_or_failed.is_some() {
        return Ok(Requirement::AllowMissingOrFailed);
    }
    let (list, any) = match (&config.requires_any, &config.requires_all) {
        (Some(list), _) => (list, true),
        (None, Some(list)) => (list, false),
        (None, None) => return Err(ConfigError::invalid(path, "empty requirement")),
    };
    if list.requirements.is_empty() {
        return Err(ConfigError::invalid(path, "list at least one requirement"));
    }
    let mut compiled = Vec::new();
    for (index, requirement) in list.requirements.iter().enumerate() {
        let kind = if any { "requires_any" } else { "requires_all" };
        compiled.push(compile_requirement(&alloc::format!("{path}.{kind}.requirements[{index}]"), requirement, names, depth + 1)?);
    }
    Ok(if any { Requirement::Any(compiled) } else { Requirement::All(compiled) })
}

/// Settings of a remote key set with defaults filled in, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteTiming {
    /// Fetch timeout.
    pub timeout_ms: u64,
    /// Cache duration.
    pub cache_duration_ms: u64,
    /// Least time between refetches for unknown `kid`s.
    pub refetch_cooldown_ms: u64,
    /// How long stale keys serve after failed refreshes.
    pub stale_if_error_ms: u64,
    /// How long requests wait for a first key set.
    pub pending_timeout_ms: u64,
}

/// Default least time between refetches triggered by unknown `kid`s.
pub const DEFAULT_REFETCH_COOLDOWN_MS: u64 = 30_000;

/// Default time stale keys keep serving while refreshes fail.
pub const DEFAULT_STALE_IF_ERROR_MS: u64 = 24 * 3_600_000;

impl RemoteTiming {
    /// Fills in defaults.
    pub fn of(remote: &RemoteJwks) -> Self {
        let uri = remote.http_uri.as_ref().or(remote.discovery_uri.as_ref());
        let timeout_ms = uri
            .and_then(|uri| uri.timeout)
            .map_or(crate::policy::DEFAULT_FETCH_TIMEOUT_MS, |DurationMs(ms)| ms.max(1));
        Self {
            timeout_ms,
            cache_duration_ms: remote
                .cache_duration
                .map_or(crate::policy::DEFAULT_CACHE_DURATION_SECONDS * 1000, |DurationMs(ms)| ms),
            refetch_cooldown_ms: remote.refetch_cooldown.map_or(DEFAULT_REFETCH_COOLDOWN_MS, |DurationMs(ms)| ms),
            stale_if_error_ms: remote.stale_if_error.map_or(DEFAULT_STALE_IF_ERROR_MS, |DurationMs(ms)| ms),
            pending_timeout_ms: remote.pending_timeout.map_or(timeout_ms, |DurationMs(ms)| ms.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROVIDER: &str = r#"{"algorithms":["HS256"],"local_jwks":{"inline":{"keys":[{"kty":"oct","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}}}"#;

    fn gate(extra: &str) -> Result<Gate, ConfigError> {
        Gate::from_json(alloc::format!(r#"{{"providers":{{"p":{PROVIDER}}}{extra}}}"#).as_bytes())
    }

    #[test]
    fn cache_limits_default() {
        assert_eq!(gate("").unwrap().cache_limits, CacheLimits::default());
    }

    #[test]
    fn cache_limits_configured() {
        let limits = gate(r#","jwt_cache_config":{"jwt_cache_size":0,"max_bytes":4096}"#).unwrap().cache_limits;
        assert_eq!(limits, CacheLimits { max_entries: 0, max_bytes: 4096 });
    }

    #[test]
    fn cache_limits_out_of_range() {
        for (extra, field) in [
            (r#","jwt_cache_config":{"jwt_cache_size":100001}"#, "jwt_cache_config.jwt_cache_size"),
            (r#","jwt_cache_config":{"max_bytes":100}"#, "jwt_cache_config.max_bytes"),
            (r#","jwt_cache_config":{"max_bytes":1000000000}"#, "jwt_cache_config.max_bytes"),
        ] {
            let error = gate(extra).unwrap_err();
            assert!(error.to_string().contains(field), "{extra}: {error}");
        }
        let error = gate(r#","jwt_cache_config":{"size":1}"#).unwrap_err();
        assert!(error.to_string().contains("unknown field `size`"), "{error}");
    }
}
