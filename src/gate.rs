//! The request-level decision shared by the Envoy filter and the edge worker: which
//! providers a request needs, where its tokens are, whether they verify, and what to
//! forward or answer.
//!
//! The gate does no I/O. Keys come through [`KeyProvider`]; when a provider's keys are
//! not in hand yet the decision is [`Decision::Pending`] and the adapter fetches them and
//! asks again. Verified tokens may be kept in a [`TokenCache`].
//!
//! Rules for tokens in a request:
//! - a provider reads its token from its configured headers, query parameters and cookies;
//!   more than one token for one provider is `token_multiple` (400), as RFC 6750 §2 allows
//!   one method per request, and two `Authorization` headers count as two tokens;
//! - `requires_all` needs every listed provider to verify its own token, which is how
//!   Envoy's `jwt_authn` treats several tokens; `requires_any` passes when one of them
//!   verifies, and reports the first failure otherwise;
//! - a token in a place that no provider of the matched rule reads is ignored and
//!   forwarded unchanged;
//! - each provider verifies at most once per decision.
//!
//! Headers the gate writes (`claim_to_headers`, `forward_payload_header`) are removed from
//! every request first, whatever the decision, so a client cannot set them itself.

pub mod cache;

use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::Value;

use crate::bearer::{self, Challenge, Credential};
use crate::claims;
use crate::config::{Gate, KeySource, Provider, Requirement};
use crate::error::{ErrorCode, VerifyError};
use crate::jwks::KeySet;
use crate::verify::{verify_token, VerifiedToken};

pub use cache::TokenCache;

/// The parts of a request the gate reads.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`, with the query string.
    pub path: &'a str,
    /// `:scheme`.
    pub scheme: &'a str,
    /// `:authority`.
    pub authority: &'a str,
    /// Headers with lower-case names, repeated names kept in order.
    pub headers: &'a [(String, String)],
}

/// The state of a remote provider's keys.
#[derive(Debug)]
pub enum KeyLookup<'a> {
    /// Keys to verify with (possibly stale within the stale-if-error window).
    Ready {
        /// The key set.
        keys: &'a KeySet,
        /// Identifier of the set's content. Cached tokens verified with another version are
        /// verified again.
        version: u64,
    },
    /// No keys yet; a fetch is under way or will start.
    Pending,
    /// No keys and none expected soon.
    Unavailable(String),
}

/// Access to remote keys.
pub trait KeyProvider {
    /// Returns the keys of provider `index` as of now.
    fn lookup(&mut self, index: usize) -> KeyLookup<'_>;

    /// Records that a token named a `kid` the keys lack. Returns true when a refetch will
    /// run (at most once per cooldown), so the decision waits for it.
    fn refetch_for_unknown_kid(&mut self, index: usize) -> bool;
}

/// Keys for a gate whose providers all have local keys.
pub struct NoRemoteKeys;

impl KeyProvider for NoRemoteKeys {
    fn lookup(&mut self, _index: usize) -> KeyLookup<'_> {
        KeyLookup::Unavailable(String::from("remote keys are not available here"))
    }

    fn refetch_for_unknown_kid(&mut self, _index: usize) -> bool {
        false
    }
}

/// What to do with the request.
#[derive(Debug)]
pub enum Decision {
    /// Forward it, after changing these headers.
    Allow(Allowed),
    /// Answer it.
    Deny(Denial),
    /// Wait for keys of these providers, then decide again.
    Pending {
        /// Provider indices.
        providers: Vec<usize>,
    },
}

/// Header changes for an allowed request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Allowed {
    /// Headers to remove first (lower case).
    pub remove_headers: Vec<String>,
    /// Headers to set afterwards (`:path` may be among them when a query token is removed).
    pub set_headers: Vec<(String, String)>,
    /// Providers whose tokens verified.
    pub verified: Vec<usize>,
    /// The request is a CORS preflight let through by `bypass_cors_preflight`.
    pub cors_preflight: bool,
}

/// A reply for a rejected request.
#[derive(Debug, PartialEq, Eq)]
pub struct Denial {
    /// HTTP status.
    pub status: u16,
    /// Stable code.
    pub code: ErrorCode,
    /// The provider whose failure is reported.
    pub provider: Option<usize>,
    /// Reply headers, `www-authenticate` among them.
    pub headers: Vec<(String, String)>,
    /// Reply body.
    pub body: String,
    /// The failure, for logs; never contains the token.
    pub message: String,
}

#[derive(Debug)]
enum Found {
    Header(String),
    Param(String),
    Cookie(String),
}

#[derive(Debug)]
enum Outcome {
    Missing,
    Verified(Arc<VerifiedToken>, Found),
    Failed(VerifyError),
    Pending,
}

enum Evaluation {
    Pass(Vec<usize>),
    Fail(usize, VerifyError),
    Missing(Option<usize>),
    Pending(Vec<usize>),
}

struct Evaluator<'g, 'r, K: KeyProvider> {
    gate: &'g Gate,
    request: RequestParts<'r>,
    keys: &'r mut K,
    cache: &'r mut TokenCache,
    now: u64,
    final_attempt: bool,
    outcomes: Vec<Option<Outcome>>,
}

impl Gate {
    /// Decides a request at `now` (seconds since the Unix epoch) without a token cache.
    ///
    /// With `final_attempt`, pending keys count as unavailable: adapters pass true once a
    /// request has waited for keys as long as the configuration allows. A final attempt
    /// never returns [`Decision::Pending`].
    pub fn decide<K: KeyProvider>(&self, request: RequestParts<'_>, keys: &mut K, now: u64, final_attempt: bool) -> Decision {
        self.decide_with_cache(request, keys, &mut TokenCache::disabled(), now, final_attempt)
    }

    /// Decides a request as [`Gate::decide`] does, looking tokens up in `cache` first and
    /// storing the ones that verify.
    ///
    /// A cached token still passes the provider's time checks at `now` and the matched
    /// rule's requirement. It is used only while the key set that verified it is served.
    pub fn decide_with_cache<K: KeyProvider>(
        &self,
        request: RequestParts<'_>,
        keys: &mut K,
        cache: &mut TokenCache,
        now: u64,
        final_attempt: bool,
    ) -> Decision {
        let mut allowed = Allowed { remove_headers: self.output_headers.clone(), ..Allowed::default() };
        if self.bypass_cors_preflight && is_cors_preflight(&request) {
            allowed.cors_preflight = true;
            return Decision::Allow(allowed);
        }
        let requirement = match &self.rules {
            None => Some(Requirement::Any((0..self.providers.len()).map(Requirement::Provider).collect())),
            Some(rules) => rules
                .iter()
                .find(|rule| rule.matches(request.method, request.path))
                .and_then(|rule| rule.requires.clone()),
        };
        let Some(requirement) = requirement else { return Decision::Allow(allowed) };
        let mut evaluator = Evaluator {
            gate: self,
            request,
            keys,
            cache,
            now,
            final_attempt,
            outcomes: (0..self.providers.len()).map(|_| None).collect(),
        };
        match evaluator.evaluate(&requirement) {
            Evaluation::Pass(verified) => {
                evaluator.apply_outputs(&verified, &mut allowed);
                allowed.verified = verified;
                Decision::Allow(allowed)
            }
            // The evaluator turns pending keys into failures on a final attempt. Should a
            // provider still be pending, the request fails closed.
            Evaluation::Pending(providers) if final_attempt => {
                let error = VerifyError::JwksUnavailable { reason: String::from("timed out waiting for the key set") };
                Decision::Deny(self.deny(&request, providers.first().copied(), &error))
            }
            Evaluation::Pending(providers) => Decision::Pending { providers },
            Evaluation::Fail(provider, error) => Decision::Deny(self.deny(&request, Some(provider), &error)),
            Evaluation::Missing(provider) => Decision::Deny(self.deny(&request, provider, &VerifyError::Missing)),
        }
    }

    fn deny(&self, request: &RequestParts<'_>, provider: Option<usize>, error: &VerifyError) -> Denial {
        let code = error.code();
        let message = error.to_string();
        let realm = self.realm.clone().unwrap_or_else(|| {
            let path = request.path.split_once('?').map_or(request.path, |(path, _)| path);
            alloc::format!("{}://{}{}", request.scheme, request.authority, path)
        });
        let mut challenge = Challenge::bearer(Some(&realm), Some(code));
        if !self.strip_details {
            challenge.description = Some(message.clone());
            challenge.scope = error.required_scope();
        }
        let status = challenge.status();
        let mut headers = alloc::vec![(String::from("www-authenticate"), challenge.render())];
        let body = if self.strip_details {
            String::new()
        } else if self.json_body {
            headers.push((String::from("content-type"), String::from("application/json")));
            let mut object = serde_json::Map::new();
            let error_name = code.bearer_error().map_or("unauthorized", |error| error.as_str());
            object.insert(String::from("error"), Value::from(error_name));
            object.insert(String::from("error_description"), Value::from(message.clone()));
            object.insert(String::from("code"), Value::from(code.as_str()));
            Value::Object(object).to_string()
        } else {
            headers.push((String::from("content-type"), String::from("text/plain; charset=utf-8")));
            alloc::format!("{code}: {message}\n")
        };
        Denial { status, code, provider, headers, body, message }
    }
}

fn is_cors_preflight(request: &RequestParts<'_>) -> bool {
    request.method.eq_ignore_ascii_case("OPTIONS")
        && header(request, "origin").is_some()
        && header(request, "access-control-request-method").is_some()
}

fn header<'a>(request: &RequestParts<'a>, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

impl<K: KeyProvider> Evaluator<'_, '_, K> {
    fn evaluate(&mut self, requirement: &Requirement) -> Evaluation {
        match requirement {
            Requirement::Provider(index) => match self.outcome(*index) {
                Outcome::Missing => Evaluation::Missing(Some(*index)),
                Outcome::Verified(..) => Evaluation::Pass(alloc::vec![*index]),
                Outcome::Failed(error) => Evaluation::Fail(*index, error.clone()),
                Outcome::Pending => Evaluation::Pending(alloc::vec![*index]),
            },
            Requirement::Any(list) => {
                let mut pending = Vec::new();
                let mut failure = None;
                let mut missing = None;
                for item in list {
                    match self.evaluate(item) {
                        Evaluation::Pass(verified) => return Evaluation::Pass(verified),
                        Evaluation::Pending(providers) => pending.extend(providers),
                        Evaluation::Fail(index, error) => {
                            failure.get_or_insert((index, error));
                        }
                        Evaluation::Missing(index) => {
                            missing.get_or_insert(index);
                        }
                    }
                }
                // A token that was present and failed says more than an absent one.
                if !pending.is_empty() {
                    Evaluation::Pending(pending)
                } else if let Some((index, error)) = failure {
                    Evaluation::Fail(index, error)
                } else {
                    Evaluation::Missing(missing.flatten())
                }
            }
            Requirement::All(list) => {
                let mut verified = Vec::new();
                let mut pending = Vec::new();
                for item in list {
                    match self.evaluate(item) {
                        Evaluation::Pass(providers) => verified.extend(providers),
                        Evaluation::Pending(providers) => pending.extend(providers),
                        failed @ (Evaluation::Fail(..) | Evaluation::Missing(_)) => return failed,
                    }
                }
                if pending.is_empty() { Evaluation::Pass(verified) } else { Evaluation::Pending(pending) }
            }
            Requirement::AllowMissing | Requirement::AllowMissingOrFailed => {
                let tolerant = matches!(requirement, Requirement::AllowMissingOrFailed);
                let mut pending = Vec::new();
                let mut failure = None;
                for index in 0..self.gate.providers.len() {
                    match self.outcome(index) {
                        Outcome::Missing => {}
                        Outcome::Verified(..) => return Evaluation::Pass(alloc::vec![index]),
                        Outcome::Pending => pending.push(index),
                        Outcome::Failed(error) => {
                            failure.get_or_insert((index, error.clone()));
                        }
                    }
                }
                if !pending.is_empty() {
                    Evaluation::Pending(pending)
                } else if let (Some((index, error)), false) = (failure, tolerant) {
                    Evaluation::Fail(index, error)
                } else {
                    Evaluation::Pass(Vec::new())
                }
            }
        }
    }

    fn outcome(&mut self, index: usize) -> &Outcome {
        if self.outcomes.get(index).is_some_and(Option::is_none) {
            let outcome = self.verify_provider(index);
            if let Some(slot) = self.outcomes.get_mut(index) {
                *slot = Some(outcome);
            }
        }
        match self.outcomes.get(index) {
            Some(Some(outcome)) => outcome,
            _ => &Outcome::Missing,
        }
    }

    fn verify_provider(&mut self, index: usize) -> Outcome {
        let Some(provider) = self.gate.providers.get(index) else { return Outcome::Missing };
        let (token, found) = match extract(provider, &self.request) {
            Ok(None) => return Outcome::Missing,
            Ok(Some(found)) => found,
            Err(error) => return Outcome::Failed(error),
        };
        let now = self.now;
        let result = match &provider.keys {
            // Local keys never change while the gate lives: version 0.
            KeySource::Local(set) => verify_cached(self.cache, provider, index, &token, set, 0, now),
            KeySource::Remote(_) => {
                let final_attempt = self.final_attempt;
                let result = match self.keys.lookup(index) {
                    KeyLookup::Ready { keys, version } => verify_cached(self.cache, provider, index, &token, keys, version, now),
                    KeyLookup::Pending if !final_attempt => return Outcome::Pending,
                    KeyLookup::Pending => Err(VerifyError::JwksUnavailable {
                        reason: String::from("timed out waiting for the key set"),
                    }),
                    KeyLookup::Unavailable(reason) => Err(VerifyError::JwksUnavailable { reason }),
                };
                if matches!(result, Err(VerifyError::KeyNotFound { .. }))
                    && !final_attempt
                    && self.keys.refetch_for_unknown_kid(index)
                {
                    return Outcome::Pending;
                }
                result
            }
        };
        match result {
            Ok(verified) => Outcome::Verified(verified, found),
            Err(error) => Outcome::Failed(error),
        }
    }

    fn apply_outputs(&self, verified: &[usize], allowed: &mut Allowed) {
        let mut path = String::from(self.request.path);
        let mut cookie_header: Option<String> = None;
        for &index in verified {
            let (Some(provider), Some(Some(Outcome::Verified(token, found)))) =
                (self.gate.providers.get(index), self.outcomes.get(index))
            else {
                continue;
            };
            for output in &provider.claim_headers {
                if let Some(value) = output.claim.lookup(token.claims_map()).and_then(header_value) {
                    allowed.set_headers.push((output.header.clone(), value));
                }
            }
            if let Some(name) = &provider.payload_header {
                let json = Value::Object(token.claims_map().clone()).to_string();
                allowed.set_headers.push((name.clone(), Base64UrlUnpadded::encode_string(json.as_bytes())));
            }
            if provider.forward {
                continue;
            }
            match found {
                Found::Header(name) => {
                    if !allowed.remove_headers.contains(name) {
                        allowed.remove_headers.push(name.clone());
                    }
                }
                Found::Param(name) => path = remove_query_param(&path, name),
                Found::Cookie(name) => {
                    let current = cookie_header.take().unwrap_or_else(|| cookies_joined(&self.request));
                    cookie_header = Some(remove_cookie(&current, name));
                }
            }
        }
        if path != self.request.path {
            allowed.set_headers.push((String::from(":path"), path));
        }
        if let Some(cookies) = cookie_header {
            allowed.remove_headers.push(String::from("cookie"));
            if !cookies.is_empty() {
                allowed.set_headers.push((String::from("cookie"), cookies));
            }
        }
    }
}

/// Verifies a token, or takes it from the cache when `keys` (version `key_version`)
/// verified it before. On a hit the policy's time checks run again at `now`.
fn verify_cached(
    cache: &mut TokenCache,
    provider: &Provider,
    index: usize,
    token: &str,
    keys: &KeySet,
    key_version: u64,
    now: u64,
) -> Result<Arc<VerifiedToken>, VerifyError> {
    if !cache.is_enabled() {
        return verify_token(token, keys, &provider.policy, now).map(Arc::new);
    }
    let now_seconds = i64::try_from(now).unwrap_or(i64::MAX);
    let digest = TokenCache::digest(token);
    if let Some(hit) = cache.get(index, &digest, key_version, now_seconds) {
        claims::check_time(hit.claims(), &provider.policy, now_seconds)?;
        return Ok(hit);
    }
    let verified = Arc::new(verify_token(token, keys, &provider.policy, now)?);
    cache.insert(index, digest, key_version, Arc::clone(&verified), claims_bytes(token), now_seconds);
    Ok(verified)
}

/// Size of a token's decoded claims: three bytes per four base64url characters of the
/// second segment.
fn claims_bytes(token: &str) -> usize {
    token.split('.').nth(1).map_or(0, |segment| segment.len() / 4 * 3 + segment.len() % 4)
}

/// Formats a claim for a header: strings as they are, arrays joined with commas, other
/// values as JSON. Control characters become spaces so no value can split a header.
fn header_value(value: &Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    Some(text.chars().map(|character| if character.is_control() { ' ' } else { character }).collect())
}

/// Finds the provider's token; more than one is an error.
fn extract(provider: &Provider, request: &RequestParts<'_>) -> Result<Option<(String, Found)>, VerifyError> {
    let mut found: Option<(String, Found)> = None;
    let mut record = |token: &str, location: Found| -> Result<(), VerifyError> {
        if found.is_some() {
            return Err(VerifyError::MultipleTokens);
        }
        found = Some((token.to_string(), location));
        Ok(())
    };
    for source in &provider.sources.headers {
        let prefix = source.value_prefix.as_deref().unwrap_or("");
        for (name, value) in request.headers.iter().filter(|(name, _)| *name == source.name) {
            match bearer::parse_with_prefix(value, prefix) {
                Credential::Absent => {}
                Credential::Token(token) => record(token, Found::Header(name.clone()))?,
                Credential::Malformed => return Err(VerifyError::MalformedCredential { location: name.clone() }),
            }
        }
    }
    if !provider.sources.params.is_empty() {
        if let Some((_, query)) = request.path.split_once('?') {
            for pair in query.split('&') {
                let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
                if provider.sources.params.iter().any(|wanted| wanted == name) {
                    let token = percent_decode(value)
                        .filter(|token| bearer::is_b64token(token))
                        .ok_or_else(|| VerifyError::MalformedCredential { location: name.to_string() })?;
                    record(&token, Found::Param(name.to_string()))?;
                }
            }
        }
    }
    if !provider.sources.cookies.is_empty() {
        for (_, value) in request.headers.iter().filter(|(name, _)| name == "cookie") {
            for pair in value.split(';') {
                let (name, token) = pair.trim().split_once('=').unwrap_or((pair.trim(), ""));
                if provider.sources.cookies.iter().any(|wanted| wanted == name) {
                    let token = token.trim_matches('"');
                    if !bearer::is_b64token(token) {
                        return Err(VerifyError::MalformedCredential { location: name.to_string() });
                    }
                    record(token, Found::Cookie(name.to_string()))?;
                }
            }
        }
    }
    Ok(found)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        if byte == b'%' {
            let high = bytes.get(index + 1).and_then(|digit| char::from(*digit).to_digit(16))?;
            let low = bytes.get(index + 2).and_then(|digit| char::from(*digit).to_digit(16))?;
            out.push(u8::try_from(high * 16 + low).ok()?);
            index += 3;
        } else {
            out.push(if byte == b'+' { b' ' } else { byte });
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn remove_query_param(path: &str, name: &str) -> String {
    let Some((base, query)) = path.split_once('?') else { return path.to_string() };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split_once('=').map_or(*pair, |(key, _)| key) != name)
        .collect();
    if kept.is_empty() { base.to_string() } else { alloc::format!("{base}?{}", kept.join("&")) }
}

fn cookies_joined(request: &RequestParts<'_>) -> String {
    request
        .headers
        .iter()
        .filter(|(name, _)| name == "cookie")
        .map(|(_, value)| value.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn remove_cookie(cookies: &str, name: &str) -> String {
    cookies
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split_once('=').map_or(*pair, |(key, _)| key) != name)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn hs256(claims: &str) -> String {
        let input = alloc::format!(
            "{}.{}",
            Base64UrlUnpadded::encode_string(br#"{"alg":"HS256"}"#),
            Base64UrlUnpadded::encode_string(claims.as_bytes())
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(input.as_bytes());
        alloc::format!("{input}.{}", Base64UrlUnpadded::encode_string(&mac.finalize().into_bytes()))
    }

    /// Builds a gate with one remote provider `idp` whose keys come from [`TestKeys`].
    fn remote_gate() -> Gate {
        Gate::from_json(br#"{"providers":{"idp":{"algorithms":["HS256"],
            "remote_jwks":{"http_uri":{"uri":"https://idp.example/jwks","cluster":"idp"}}}}}"#)
        .unwrap()
    }

    /// Keys for the test gate: the HMAC secret (allowed here because the test builds the
    /// set itself), or none yet.
    struct TestKeys {
        keys: Option<KeySet>,
        version: u64,
    }

    impl KeyProvider for TestKeys {
        fn lookup(&mut self, _index: usize) -> KeyLookup<'_> {
            match &self.keys {
                Some(keys) => KeyLookup::Ready { keys, version: self.version },
                None => KeyLookup::Pending,
            }
        }

        fn refetch_for_unknown_kid(&mut self, _index: usize) -> bool {
            false
        }
    }

    fn secret_set() -> KeySet {
        let jwks = alloc::format!(r#"{{"keys":[{{"kty":"oct","k":"{}"}}]}}"#, Base64UrlUnpadded::encode_string(SECRET));
        KeySet::from_json(jwks.as_bytes(), crate::jwks::KeySetOptions { allow_symmetric: true }).unwrap()
    }

    fn bearer(token: &str) -> [(String, String); 1] {
        [(String::from("authorization"), alloc::format!("Bearer {token}"))]
    }

    fn parts(headers: &[(String, String)]) -> RequestParts<'_> {
        RequestParts { method: "GET", path: "/a", scheme: "https", authority: "api.example", headers }
    }

    #[test]
    fn final_attempt_never_pending() {
        let gate = remote_gate();
        let headers = bearer(&hs256(r#"{"exp":2000}"#));
        let mut keys = TestKeys { keys: None, version: 0 };
        assert!(matches!(gate.decide(parts(&headers), &mut keys, 1000, false), Decision::Pending { .. }));
        match gate.decide(parts(&headers), &mut keys, 1000, true) {
            Decision::Deny(denial) => {
                assert_eq!(denial.code, ErrorCode::JwksUnavailable);
                assert_eq!(denial.status, 401);
            }
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn cache_hit_rechecks_time_and_key_version() {
        let gate = remote_gate();
        let headers = bearer(&hs256(r#"{"exp":2000}"#));
        let mut keys = TestKeys { keys: Some(secret_set()), version: 1 };
        let mut cache = TokenCache::new(gate.cache_limits);
        assert!(matches!(gate.decide_with_cache(parts(&headers), &mut keys, &mut cache, 1000, false), Decision::Allow(_)));
        assert!(matches!(gate.decide_with_cache(parts(&headers), &mut keys, &mut cache, 1001, false), Decision::Allow(_)));
        assert_eq!(cache.take_stats(), cache::CacheStats { hits: 1, misses: 1 });

        // Another key-set version verifies again.
        keys.version = 2;
        assert!(matches!(gate.decide_with_cache(parts(&headers), &mut keys, &mut cache, 1002, false), Decision::Allow(_)));
        assert_eq!(cache.take_stats(), cache::CacheStats { hits: 0, misses: 1 });

        // Past `exp` plus the 60 s leeway the entry is gone and the token fails in full.
        match gate.decide_with_cache(parts(&headers), &mut keys, &mut cache, 2060, false) {
            Decision::Deny(denial) => assert_eq!(denial.code, ErrorCode::TokenExpired),
            other => panic!("expected a denial, got {other:?}"),
        }
        assert_eq!(cache.take_stats(), cache::CacheStats { hits: 0, misses: 1 });
        assert!(cache.is_empty());
    }

    #[test]
    fn outputs_removed_on_every_decision() {
        let gate = Gate::from_json(br#"{"providers":{"idp":{"algorithms":["HS256"],
            "local_jwks":{"inline":{"keys":[{"kty":"oct","k":"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"}]}},
            "claim_to_headers":[{"header_name":"X-Sub","claim_name":"sub"}]}},
            "rules":[{"match":{"prefix":"/a"}}],"bypass_cors_preflight":true}"#)
        .unwrap();
        let headers = [(String::from("x-sub"), String::from("spoofed"))];
        let Decision::Allow(allowed) = gate.decide(parts(&headers), &mut NoRemoteKeys, 1000, false) else {
            panic!("expected the unprotected path to pass");
        };
        assert_eq!(allowed.remove_headers, [String::from("x-sub")]);
        assert!(!allowed.cors_preflight);
    }

    #[test]
    fn query_param_removed() {
        assert_eq!(remove_query_param("/a?access_token=x&b=1", "access_token"), "/a?b=1");
        assert_eq!(remove_query_param("/a?access_token=x", "access_token"), "/a");
        assert_eq!(remove_query_param("/a", "access_token"), "/a");
    }

    #[test]
    fn cookie_removed() {
        assert_eq!(remove_cookie("a=1; token=x; b=2", "token"), "a=1; b=2");
        assert_eq!(remove_cookie("token=x", "token"), "");
    }

    #[test]
    fn header_values_flattened() {
        assert_eq!(header_value(&serde_json::json!(["a", "b", 3])), Some(String::from("a,b,3")));
        assert_eq!(header_value(&serde_json::json!({"k": 1})), Some(String::from("{\"k\":1}")));
        assert_eq!(header_value(&serde_json::json!("line\r\nbreak")), Some(String::from("line  break")));
        assert_eq!(header_value(&Value::Null), None);
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Eb"), Some(String::from("a.b")));
        assert_eq!(percent_decode("a%2"), None);
        assert_eq!(percent_decode("%ff"), None);
    }
}
