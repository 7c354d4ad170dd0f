//! The request gate for edge workers (feature `web-gate`): the Envoy filter's gate, with
//! the same configuration JSON, driven from JavaScript.
//!
//! JavaScript does the I/O and this class decides. A worker lists the fetches that are due
//! ([`WebGate::fetches_due`]): key sets, revocation lists and introspection calls. It
//! performs them and reports each result ([`WebGate::fetch_succeeded`],
//! [`WebGate::fetch_failed`]). It may hand over key sets and lists from a shared cache
//! ([`WebGate::adopt_keys`]), and it requests a decision per request ([`WebGate::decide`]).
//! Every rule is the core's: token location, verification, DPoP, introspection, claim
//! headers, RFC 6750 replies ([`crate::gate`]), and fetch timing, rotation, stale-if-error
//! and backoff ([`crate::keycache`], [`crate::introspection`]). Times are arguments, in
//! milliseconds since the Unix epoch, so the class never reads a clock.
//!
//! DPoP proofs are remembered in a replay cache of this instance only, so in a Workers
//! deployment a proof replayed to another isolate is not detected. The nonce secret is the
//! configured one, or random per instance.

mod keys;
mod remote;
mod request;

use alloc::string::String;
use alloc::vec::Vec;

use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use zeroize::Zeroizing;

use self::keys::{FetchDue, FetchOutcome, RemoteKeys};
use self::remote::{WebIntrospector, WebList, INTROSPECTION_INFIX, LIST_SUFFIX};
use super::{convert, errors};
use crate::config::{Gate, KeySource};
use crate::dpop::nonce::MIN_SECRET_BYTES;
use crate::dpop::replay::{self, ReplayCache, ReplayCheck};
use crate::dpop::VerifiedProof;
use crate::error::ErrorCode;
use crate::gate::{Decision, GateState, IntrospectionLookup, KeyLookup, ListLookup, TokenCache};
use crate::introspection::{IntrospectionCache, MAX_RESPONSE_BYTES};
use crate::keycache::Served;
use crate::revocation::MAX_LIST_BYTES;

#[wasm_bindgen]
extern "C" {
    /// `crypto.getRandomValues`, for the nonce secret.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buffer: &mut [u8]) -> Result<JsValue, JsValue>;
}

/// A configured gate with its key caches, revocation lists, introspection answers,
/// DPoP replay cache and verified-token cache, exported to JavaScript as `Gate`.
#[wasm_bindgen(js_name = Gate)]
pub struct WebGate {
    gate: Gate,
    /// One entry per provider, `None` for providers without remote keys.
    remote: Vec<Option<RemoteKeys>>,
    /// One entry per provider, `None` for providers without a revocation list.
    lists: Vec<Option<WebList>>,
    /// One entry per provider, `None` for providers that do not introspect.
    introspectors: Vec<Option<WebIntrospector>>,
    answers: IntrospectionCache,
    replay: ReplayCache,
    nonce_secret: Zeroizing<Vec<u8>>,
    cache: TokenCache,
}

/// The state of all providers at one instant, for the core's gate.
struct State<'a> {
    remote: &'a mut [Option<RemoteKeys>],
    lists: &'a [Option<WebList>],
    introspectors: &'a mut [Option<WebIntrospector>],
    answers: &'a mut IntrospectionCache,
    replay: &'a mut ReplayCache,
    nonce_secret: &'a [u8],
    now_ms: u64,
}

impl GateState for State<'_> {
    fn lookup(&mut self, index: usize) -> KeyLookup<'_> {
        match self.remote.get(index).and_then(Option::as_ref) {
            Some(keys) => keys.lookup(self.now_ms),
            None => KeyLookup::Unavailable(String::from("no remote key set is configured")),
        }
    }

    fn refetch_for_unknown_kid(&mut self, index: usize) -> bool {
        let now_ms = self.now_ms;
        self.remote
            .get_mut(index)
            .and_then(Option::as_mut)
            .is_some_and(|keys| keys.request_kid_refetch(now_ms))
    }

    fn revocation_list(&mut self, index: usize) -> ListLookup<'_> {
        match self.lists.get(index).and_then(Option::as_ref) {
            Some(list) => list.lookup(self.now_ms),
            None => ListLookup::Unavailable(String::from("no revocation list is configured")),
        }
    }

    fn introspect(&mut self, index: usize, token: &str) -> IntrospectionLookup {
        match self.introspectors.get_mut(index).and_then(Option::as_mut) {
            Some(introspector) => introspector.lookup(self.answers, index, token, self.now_ms),
            None => IntrospectionLookup::Unavailable(String::from("no introspection endpoint is configured")),
        }
    }

    fn record_proof(&mut self, _index: usize, proof: &VerifiedProof, max_age: u64, now: u64) -> ReplayCheck {
        self.replay.record(replay::proof_digest(proof), proof.iat, max_age, now)
    }

    fn nonce_secret(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        (!self.nonce_secret.is_empty()).then(|| Zeroizing::new(self.nonce_secret.to_vec()))
    }
}

/// Jitter for retry backoff; it spreads the retries of isolates that failed together, so
/// it needs no cryptographic quality.
fn jitter() -> f32 {
    js_sys::Math::random() as f32
}

/// Reads a time in milliseconds since the Unix epoch.
fn time_ms(value: &JsValue, name: &str) -> Result<u64, JsValue> {
    convert::optional_non_negative(value, name)?.ok_or_else(|| convert::type_error(&alloc::format!("{name} must be a number")))
}

/// Reads a response body given as text, `Uint8Array` or `ArrayBuffer`.
fn body_bytes(value: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(text) = value.as_string() {
        return Ok(text.into_bytes());
    }
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Ok(bytes.to_vec());
    }
    if value.is_instance_of::<js_sys::ArrayBuffer>() {
        return Ok(Uint8Array::new(value).to_vec());
    }
    Err(convert::type_error("body must be a string, a Uint8Array or an ArrayBuffer"))
}

fn number(value: u64) -> JsValue {
    // Times and durations here stay far below 2^53.
    JsValue::from_f64(value as f64)
}

fn pairs(values: &[(&str, &str)]) -> JsValue {
    values
        .iter()
        .map(|(name, value)| -> JsValue { Array::of2(&JsValue::from_str(name), &JsValue::from_str(value)).into() })
        .collect::<Array>()
        .into()
}

/// A fetch for JavaScript to perform.
struct FetchObject<'a> {
    id: &'a str,
    provider: &'a str,
    kind: &'a str,
    url: &'a str,
    method: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: Option<&'a str>,
    timeout_ms: u64,
    max_bytes: usize,
}

impl FetchObject<'_> {
    fn to_js(&self) -> Result<JsValue, JsValue> {
        convert::plain_object(&[
            ("id", JsValue::from_str(self.id)),
            ("provider", JsValue::from_str(self.provider)),
            ("kind", JsValue::from_str(self.kind)),
            ("url", JsValue::from_str(self.url)),
            ("method", JsValue::from_str(self.method)),
            ("headers", pairs(self.headers)),
            ("body", self.body.map_or(JsValue::NULL, JsValue::from_str)),
            ("timeoutMs", number(self.timeout_ms)),
            ("maxBytes", number(self.max_bytes as u64)),
        ])
    }
}

fn fetch_object(name: &str, due: &FetchDue) -> Result<JsValue, JsValue> {
    let accept = match due.step.as_str() {
        "jwks" => "application/jwk-set+json, application/json",
        _ => "application/json",
    };
    FetchObject {
        id: name,
        provider: name,
        kind: due.step.as_str(),
        url: &due.url,
        method: "GET",
        headers: &[("accept", accept)],
        body: None,
        timeout_ms: due.timeout_ms,
        max_bytes: due.step.max_bytes(),
    }
    .to_js()
}

/// What a fetch identifier names.
enum FetchId {
    Keys(usize),
    List(usize),
    Introspection(usize, crate::introspection::TokenDigest),
}

#[wasm_bindgen(js_class = Gate)]
impl WebGate {
    /// `new Gate(config)`: checks a configuration document (the Envoy filter's schema)
    /// given as JSON text or as an object.
    ///
    /// # Errors
    ///
    /// `TokenError` with code `config_invalid`, naming the first invalid field.
    #[wasm_bindgen(constructor)]
    pub fn new(config: JsValue) -> Result<WebGate, JsValue> {
        let text = convert::json_document(&config, "config")?;
        let gate = Gate::from_json(text.as_bytes()).map_err(|error| errors::token_error(error.code(), &error))?;
        let mut remote = Vec::new();
        for provider in &gate.providers {
            match &provider.keys {
                KeySource::Local(_) | KeySource::IntrospectionOnly => remote.push(None),
                KeySource::Remote(config) => {
                    let keys = RemoteKeys::new(provider, config).map_err(|message| {
                        let message = alloc::format!("configuration field `providers.{}` is invalid: {message}", provider.name);
                        errors::token_error(ErrorCode::ConfigInvalid, &message)
                    })?;
                    remote.push(Some(keys));
                }
            }
        }
        let lists = gate.providers.iter().map(|provider| provider.revocation_list.as_ref().map(WebList::new)).collect();
        let introspectors = gate.providers.iter().map(|provider| provider.introspection.as_ref().map(WebIntrospector::new)).collect();
        let mut nonce_secret = Zeroizing::new(alloc::vec![0u8; MIN_SECRET_BYTES]);
        if get_random_values(&mut nonce_secret).is_err() {
            // Without randomness no nonce can be issued; providers with nonces fail closed.
            nonce_secret.clear();
        }
        let cache = TokenCache::new(gate.cache_limits);
        Ok(Self {
            gate,
            remote,
            lists,
            introspectors,
            answers: IntrospectionCache::default(),
            replay: ReplayCache::default(),
            nonce_secret,
            cache,
        })
    }

    /// `gate.providers`: one entry per provider, in name order, with where its keys come
    /// from, its timing settings in milliseconds, the URLs of its revocation list and
    /// introspection endpoint, and its DPoP mode.
    #[wasm_bindgen(getter)]
    pub fn providers(&self) -> Result<JsValue, JsValue> {
        let list = Array::new();
        for (index, (provider, remote)) in self.gate.providers.iter().zip(&self.remote).enumerate() {
            let mut entries = alloc::vec![("name", JsValue::from_str(&provider.name))];
            let list_state = self.lists.get(index).and_then(Option::as_ref);
            let introspector = self.introspectors.get(index).and_then(Option::as_ref);
            let mut pending_timeout_ms = 0;
            if let Some(list) = list_state {
                pending_timeout_ms = list.timing().pending_timeout_ms;
            }
            if let Some(introspector) = introspector {
                pending_timeout_ms = pending_timeout_ms.max(introspector.pending_timeout_ms());
            }
            match remote {
                None if matches!(provider.keys, KeySource::IntrospectionOnly) => entries.push(("keys", JsValue::from_str("none"))),
                None => entries.push(("keys", JsValue::from_str("local"))),
                Some(keys) => {
                    pending_timeout_ms = pending_timeout_ms.max(keys.timing().pending_timeout_ms);
                    let (url, step) = keys.configured_url();
                    let timing = keys.timing();
                    entries.extend([
                        ("keys", JsValue::from_str("remote")),
                        ("url", JsValue::from_str(url)),
                        ("kind", JsValue::from_str(step.as_str())),
                        ("timeoutMs", number(timing.timeout_ms)),
                        ("cacheDurationMs", number(timing.cache_duration_ms)),
                        ("refetchCooldownMs", number(timing.refetch_cooldown_ms)),
                        ("staleIfErrorMs", number(timing.stale_if_error_ms)),
                    ]);
                }
            }
            let dpop = provider.dpop.as_ref().map_or(JsValue::NULL, |dpop| {
                JsValue::from_str(if dpop.mode == crate::config::DpopMode::Required { "required" } else { "allowed" })
            });
            entries.extend([
                ("pendingTimeoutMs", number(pending_timeout_ms)),
                ("revocationListUrl", list_state.map_or(JsValue::NULL, |list| JsValue::from_str(list.uri()))),
                ("introspectionUrl", introspector.map_or(JsValue::NULL, |introspector| JsValue::from_str(introspector.uri()))),
                ("dpop", dpop),
            ]);
            list.push(&convert::plain_object(&entries)?);
        }
        Ok(list.into())
    }

    /// `gate.fetchesDue(nowMs)`: the fetches to start now, as `[{id, provider, kind, url,
    /// method, headers, body, timeoutMs, maxBytes}]`, and records them as started.
    ///
    /// Key sets (`kind` `jwks` or `discovery`, `id` the provider's name) are listed when a
    /// provider has no keys, its refresh window has begun, or a token with an unknown `kid`
    /// was granted a refetch. Revocation lists (`revocation_list`) follow the same timing.
    /// Introspection calls (`introspection`, `POST` with a form body that contains the
    /// token and an `authorization` header with the client secret) are listed once a
    /// decision asked for them. Nothing is listed while its fetch is in flight or its retry
    /// backoff lasts. Report each fetch's result exactly once, by `id`.
    #[wasm_bindgen(js_name = fetchesDue)]
    pub fn fetches_due(&mut self, now_ms: JsValue) -> Result<JsValue, JsValue> {
        let now_ms = time_ms(&now_ms, "nowMs")?;
        let list = Array::new();
        for (index, provider) in self.gate.providers.iter().enumerate() {
            if let Some(due) = self.remote.get_mut(index).and_then(Option::as_mut).and_then(|keys| keys.start_due_fetch(now_ms)) {
                list.push(&fetch_object(&provider.name, &due)?);
            }
            if let Some(remote_list) = self.lists.get_mut(index).and_then(Option::as_mut) {
                if remote_list.start_due_fetch(now_ms) {
                    let id = alloc::format!("{}{LIST_SUFFIX}", provider.name);
                    let object = FetchObject {
                        id: &id,
                        provider: &provider.name,
                        kind: "revocation_list",
                        url: remote_list.uri(),
                        method: "GET",
                        headers: &[("accept", "application/json")],
                        body: None,
                        timeout_ms: remote_list.timing().timeout_ms,
                        max_bytes: MAX_LIST_BYTES,
                    };
                    list.push(&object.to_js()?);
                }
            }
            if let Some(introspector) = self.introspectors.get_mut(index).and_then(Option::as_mut) {
                for call in introspector.take_due(now_ms) {
                    let id = remote::introspection_id(&provider.name, &call.digest);
                    let headers: Vec<(&str, &str)> = call.request.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
                    let object = FetchObject {
                        id: &id,
                        provider: &provider.name,
                        kind: "introspection",
                        url: &call.request.url,
                        method: "POST",
                        headers: &headers,
                        body: Some(&call.request.body),
                        timeout_ms: call.timeout_ms,
                        max_bytes: MAX_RESPONSE_BYTES,
                    };
                    list.push(&object.to_js()?);
                }
            }
        }
        Ok(list.into())
    }

    /// `gate.fetchSucceeded(id, body, nowMs)`: reports the body of a 200 response to the
    /// fetch `id` (for key sets, the provider's name).
    ///
    /// Returns `{outcome: 'stored', keys, skipped}` when a key set was stored,
    /// `{outcome: 'stored', entries}` for a revocation list, `{outcome: 'stored', active}`
    /// for an introspection answer, `{outcome: 'next', fetch}` when a discovery document
    /// named the key set to fetch now as part of the same fetch, `{outcome: 'failed',
    /// reason}` when the body was unusable (recorded as a failure), or `{outcome:
    /// 'ignored'}` when no such fetch was in flight.
    ///
    /// # Errors
    ///
    /// `RangeError` for an identifier that names no fetch of this gate.
    #[wasm_bindgen(js_name = fetchSucceeded)]
    pub fn fetch_succeeded(&mut self, id: JsValue, body: JsValue, now_ms: JsValue) -> Result<JsValue, JsValue> {
        let now_ms = time_ms(&now_ms, "nowMs")?;
        let body = body_bytes(&body)?;
        let id = convert::string(&id, "id")?;
        let failed = |reason: &str| convert::plain_object(&[("outcome", JsValue::from_str("failed")), ("reason", JsValue::from_str(reason))]);
        let ignored = || convert::plain_object(&[("outcome", JsValue::from_str("ignored"))]);
        match self.fetch_id(&id)? {
            FetchId::Keys(index) => {
                let Some(Some(keys)) = self.remote.get_mut(index) else { return Err(self.unknown_provider(&id)) };
                match keys.fetch_succeeded(&body, now_ms) {
                    FetchOutcome::Stored { keys, skipped } => convert::plain_object(&[
                        ("outcome", JsValue::from_str("stored")),
                        ("keys", number(keys as u64)),
                        ("skipped", convert::string_array(&skipped)),
                    ]),
                    FetchOutcome::Next(due) => {
                        convert::plain_object(&[("outcome", JsValue::from_str("next")), ("fetch", fetch_object(&id, &due)?)])
                    }
                    FetchOutcome::Failed(reason) => failed(&reason),
                    FetchOutcome::Ignored => ignored(),
                }
            }
            FetchId::List(index) => match self.lists.get_mut(index).and_then(Option::as_mut).and_then(|list| list.fetch_succeeded(&body, now_ms, jitter())) {
                Some(Ok(entries)) => convert::plain_object(&[("outcome", JsValue::from_str("stored")), ("entries", number(entries as u64))]),
                Some(Err(reason)) => failed(&reason),
                None => ignored(),
            },
            FetchId::Introspection(index, digest) => {
                let answers = &mut self.answers;
                let result = self
                    .introspectors
                    .get_mut(index)
                    .and_then(Option::as_mut)
                    .and_then(|introspector| introspector.call_succeeded(answers, index, &digest, &body, now_ms, jitter()));
                match result {
                    Some(Ok(active)) => convert::plain_object(&[("outcome", JsValue::from_str("stored")), ("active", JsValue::from_bool(active))]),
                    Some(Err(reason)) => failed(&reason),
                    None => ignored(),
                }
            }
        }
    }

    /// `gate.fetchFailed(id, reason, nowMs)`: reports that the fetch `id` failed, and
    /// schedules the retry. Returns false when no such fetch was in flight.
    ///
    /// # Errors
    ///
    /// `RangeError` for an identifier that names no fetch of this gate.
    #[wasm_bindgen(js_name = fetchFailed)]
    pub fn fetch_failed(&mut self, id: JsValue, reason: JsValue, now_ms: JsValue) -> Result<bool, JsValue> {
        let now_ms = time_ms(&now_ms, "nowMs")?;
        let reason = convert::string(&reason, "reason")?;
        let id = convert::string(&id, "id")?;
        Ok(match self.fetch_id(&id)? {
            FetchId::Keys(index) => self.remote.get_mut(index).and_then(Option::as_mut).is_some_and(|keys| keys.fetch_failed(reason, now_ms)),
            FetchId::List(index) => self.lists.get_mut(index).and_then(Option::as_mut).is_some_and(|list| list.fetch_failed(reason, now_ms, jitter())),
            FetchId::Introspection(index, digest) => self
                .introspectors
                .get_mut(index)
                .and_then(Option::as_mut)
                .is_some_and(|introspector| introspector.call_failed(&digest, reason, now_ms, jitter())),
        })
    }

    /// `gate.adoptKeys(id, body, fetchedAtMs)`: takes a key set (`id` the provider's
    /// name) or a revocation list (`id` `<provider>#revocation_list`) fetched at
    /// `fetchedAtMs`, e.g. by another isolate through the Cache API. Returns whether it was
    /// adopted: only a document fetched later than the current one is. Its age counts from
    /// `fetchedAtMs`, so a persisted document is no fresher than when it was fetched.
    ///
    /// # Errors
    ///
    /// `RangeError` for an identifier that names no key set or list; `TokenError` with
    /// code `jwks_invalid` when the body is not a valid key set, and
    /// `revocation_list_unavailable` when it is not a valid revocation list.
    #[wasm_bindgen(js_name = adoptKeys)]
    pub fn adopt_keys(&mut self, id: JsValue, body: JsValue, fetched_at_ms: JsValue) -> Result<bool, JsValue> {
        let fetched_at_ms = time_ms(&fetched_at_ms, "fetchedAtMs")?;
        let body = body_bytes(&body)?;
        let id = convert::string(&id, "id")?;
        // A key set that fails to parse is `jwks_invalid`. A list that fails to parse gives
        // the code requests get when a fetched list is unusable, with the parser's message,
        // which names the revocation list and what is wrong with it.
        match self.fetch_id(&id)? {
            FetchId::Keys(index) => match self.remote.get_mut(index).and_then(Option::as_mut) {
                Some(keys) => keys.adopt(&body, fetched_at_ms).map_err(|reason| errors::token_error(ErrorCode::JwksInvalid, &reason)),
                None => Err(self.unknown_provider(&id)),
            },
            FetchId::List(index) => match self.lists.get_mut(index).and_then(Option::as_mut) {
                Some(list) => list.adopt(&body, fetched_at_ms).map_err(|reason| errors::token_error(ErrorCode::RevocationListUnavailable, &reason)),
                None => Err(self.unknown_provider(&id)),
            },
            FetchId::Introspection(..) => Err(convert::range_error("introspection answers cannot be adopted")),
        }
    }

    /// `gate.keyStatus(provider, nowMs)`: the state of a remote provider's keys, for logs
    /// and health checks: `{state: 'fresh' | 'stale' | 'none', fetchedAtMs, expiresAtMs,
    /// fetching, failures, retryAtMs, lastError}`. Times are `null` before the first set.
    ///
    /// # Errors
    ///
    /// `RangeError` for an unknown or local provider.
    #[wasm_bindgen(js_name = keyStatus)]
    pub fn key_status(&mut self, provider: JsValue, now_ms: JsValue) -> Result<JsValue, JsValue> {
        let now_ms = time_ms(&now_ms, "nowMs")?;
        let (_, keys) = self.remote_keys(&provider)?;
        let cache = keys.cache();
        let state = match cache.served(now_ms) {
            Served::Fresh(_) => "fresh",
            Served::Stale(_) => "stale",
            Served::Nothing { .. } => "none",
        };
        let has_set = cache.current().is_some();
        let time_or_null = |value: u64| if has_set { number(value) } else { JsValue::NULL };
        convert::plain_object(&[
            ("state", JsValue::from_str(state)),
            ("fetchedAtMs", time_or_null(cache.fetched_at_ms())),
            ("expiresAtMs", time_or_null(cache.expires_at_ms())),
            ("fetching", JsValue::from_bool(cache.fetching())),
            ("failures", number(u64::from(cache.failures()))),
            ("retryAtMs", number(cache.retry_at_ms())),
            ("lastError", cache.last_error().map_or(JsValue::NULL, JsValue::from_str)),
        ])
    }

    /// `gate.decide({method, url, headers}, nowMs, finalAttempt)`: decides one request.
    ///
    /// `url` is the absolute request URL; `headers` a `Headers` object, an iterable of
    /// `[name, value]` pairs, or a plain object. The result is one of
    /// - `{action: 'allow', removeHeaders, setHeaders, url, providers, warnings}`: forward
    ///   the request after removing `removeHeaders` (lower case) and then setting
    ///   `setHeaders` (`[name, value]` pairs); `url` is the request URL, changed when a
    ///   token was removed from the query; `warnings` are log lines about stale keys;
    /// - `{action: 'deny', status, code, headers, body, message, provider}`: answer with
    ///   this RFC 6750 reply; `message` is for logs and never contains the token;
    /// - `{action: 'pending', providers}`: keys of these providers are being fetched; wait
    ///   for them and decide again.
    ///
    /// With `finalAttempt`, keys still missing count as unavailable and the result is
    /// never `pending`.
    ///
    /// # Errors
    ///
    /// `TypeError` for a request of the wrong shape or a URL that is not absolute.
    pub fn decide(&mut self, request: JsValue, now_ms: JsValue, final_attempt: JsValue) -> Result<JsValue, JsValue> {
        let now_ms = time_ms(&now_ms, "nowMs")?;
        let final_attempt = final_attempt.as_bool().unwrap_or(false);
        let request = request::Request::from_js(&request)?;
        let now_s = now_ms / 1000;
        self.cache.purge_expired(i64::try_from(now_s).unwrap_or(i64::MAX));
        self.answers.purge(now_ms);
        let decision = {
            let mut state = State {
                remote: &mut self.remote,
                lists: &self.lists,
                introspectors: &mut self.introspectors,
                answers: &mut self.answers,
                replay: &mut self.replay,
                nonce_secret: &self.nonce_secret,
                now_ms,
            };
            let headers = request.header_pairs();
            self.gate.decide_with_cache(request.parts(&headers), &mut state, &mut self.cache, now_s, final_attempt)
        };
        match decision {
            Decision::Allow(allowed) => {
                let mut warnings = Vec::new();
                for &index in &allowed.verified {
                    let notice = self.remote.get_mut(index).and_then(Option::as_mut).and_then(|keys| keys.stale_notice(now_ms));
                    if let (Some(notice), Some(provider)) = (notice, self.gate.providers.get(index)) {
                        warnings.push(alloc::format!("provider {}: {notice}", provider.name));
                    }
                }
                request::allow_object(&self.gate, &request, &allowed, &warnings)
            }
            Decision::Deny(denial) => request::deny_object(&self.gate, &denial),
            Decision::Pending { providers } => request::pending_object(&self.gate, &providers),
        }
    }

    /// `gate.takeCacheStats()`: verified-token cache hits and misses since the last call,
    /// as `{hits, misses, entries}`.
    #[wasm_bindgen(js_name = takeCacheStats)]
    pub fn take_cache_stats(&mut self) -> Result<JsValue, JsValue> {
        let stats = self.cache.take_stats();
        convert::plain_object(&[
            ("hits", number(stats.hits)),
            ("misses", number(stats.misses)),
            ("entries", number(self.cache.len() as u64)),
        ])
    }
}

impl WebGate {
    /// Reads a fetch identifier: a provider's name (its key set),
    /// `<provider>#revocation_list`, or `<provider>#introspection#<digest>`.
    fn fetch_id(&self, id: &str) -> Result<FetchId, JsValue> {
        let unknown = || convert::range_error(&alloc::format!("{id:?} names no fetch of this gate"));
        if let Some(name) = id.strip_suffix(LIST_SUFFIX) {
            let index = self.gate.provider_index(name).filter(|index| matches!(self.lists.get(*index), Some(Some(_)))).ok_or_else(unknown)?;
            return Ok(FetchId::List(index));
        }
        if let Some((name, hex)) = id.split_once(INTROSPECTION_INFIX) {
            let index = self
                .gate
                .provider_index(name)
                .filter(|index| matches!(self.introspectors.get(*index), Some(Some(_))))
                .ok_or_else(unknown)?;
            let digest = remote::parse_hex_digest(hex).ok_or_else(unknown)?;
            return Ok(FetchId::Introspection(index, digest));
        }
        match self.gate.provider_index(id).filter(|index| matches!(self.remote.get(*index), Some(Some(_)))) {
            Some(index) => Ok(FetchId::Keys(index)),
            None => Err(self.unknown_provider(id)),
        }
    }

    fn remote_keys(&mut self, provider: &JsValue) -> Result<(String, &mut RemoteKeys), JsValue> {
        let name = convert::string(provider, "provider")?;
        let index = self.gate.provider_index(&name).filter(|index| matches!(self.remote.get(*index), Some(Some(_))));
        let Some(index) = index else { return Err(self.unknown_provider(&name)) };
        match self.remote.get_mut(index) {
            Some(Some(keys)) => Ok((name, keys)),
            _ => Err(convert::range_error(&alloc::format!("{name:?} is not a provider with remote keys"))),
        }
    }

    fn unknown_provider(&self, name: &str) -> JsValue {
        let known: Vec<&str> = self
            .gate
            .providers
            .iter()
            .zip(&self.remote)
            .filter(|(_, remote)| remote.is_some())
            .map(|(provider, _)| provider.name.as_str())
            .collect();
        convert::range_error(&alloc::format!("{name:?} is not a provider with remote keys; those are: {}", known.join(", ")))
    }
}
