//! The request gate for edge workers (feature `web-gate`): the Envoy filter's gate, with
//! the same configuration JSON, driven from JavaScript.
//!
//! JavaScript does the I/O and this class decides. A worker lists the key-set fetches that are
//! due ([`WebGate::fetches_due`]), performs them and reports each result
//! ([`WebGate::fetch_succeeded`], [`WebGate::fetch_failed`]). It may hand over key sets from
//! a shared cache ([`WebGate::adopt_keys`]), and it requests a decision per request
//! ([`WebGate::decide`]). Every rule is the core's: token location, verification, claim
//! headers, RFC 6750 replies ([`crate::gate`]), and fetch timing, rotation, stale-if-error
//! and backoff ([`crate::keycache`]). Times are arguments, in milliseconds since the Unix
//! epoch, so the class never reads a clock.

mod keys;
mod request;

use alloc::string::String;
use alloc::vec::Vec;

use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use self::keys::{FetchDue, FetchOutcome, RemoteKeys};
use super::{convert, errors};
use crate::config::{Gate, KeySource};
use crate::error::ErrorCode;
use crate::gate::{Decision, KeyLookup, KeyProvider, TokenCache};
use crate::keycache::Served;

/// A configured gate with its key caches and verified-token cache, exported to
/// JavaScript as `Gate`.
#[wasm_bindgen(js_name = Gate)]
pub struct WebGate {
    gate: Gate,
    /// One entry per provider, `None` for providers with local keys.
    remote: Vec<Option<RemoteKeys>>,
    cache: TokenCache,
}

/// The remote keys of all providers at one instant, for the core's gate.
struct Keys<'a> {
    remote: &'a mut [Option<RemoteKeys>],
    now_ms: u64,
}

impl KeyProvider for Keys<'_> {
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

fn fetch_object(name: &str, due: &FetchDue) -> Result<JsValue, JsValue> {
    convert::plain_object(&[
        ("provider", JsValue::from_str(name)),
        ("kind", JsValue::from_str(due.step.as_str())),
        ("url", JsValue::from_str(&due.url)),
        ("timeoutMs", number(due.timeout_ms)),
        ("maxBytes", number(due.step.max_bytes() as u64)),
    ])
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
                KeySource::Local(_) => remote.push(None),
                KeySource::Remote(config) => {
                    let keys = RemoteKeys::new(provider, config).map_err(|message| {
                        let message = alloc::format!("configuration field `providers.{}` is invalid: {message}", provider.name);
                        errors::token_error(ErrorCode::ConfigInvalid, &message)
                    })?;
                    remote.push(Some(keys));
                }
            }
        }
        let cache = TokenCache::new(gate.cache_limits);
        Ok(Self { gate, remote, cache })
    }

    /// `gate.providers`: one entry per provider, in name order, with where its keys come
    /// from and its timing settings in milliseconds.
    #[wasm_bindgen(getter)]
    pub fn providers(&self) -> Result<JsValue, JsValue> {
        let list = Array::new();
        for (provider, remote) in self.gate.providers.iter().zip(&self.remote) {
            let mut entries = alloc::vec![("name", JsValue::from_str(&provider.name))];
            match remote {
                None => entries.push(("keys", JsValue::from_str("local"))),
                Some(keys) => {
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
                        ("pendingTimeoutMs", number(timing.pending_timeout_ms)),
                    ]);
                }
            }
            list.push(&convert::plain_object(&entries)?);
        }
        Ok(list.into())
    }

    /// `gate.fetchesDue(nowMs)`: the fetches to start now, as
    /// `[{provider, kind, url, timeoutMs, maxBytes}]`, and records them as started.
    ///
    /// A provider is listed when it has no keys, its refresh window has begun, or a token
    /// with an unknown `kid` was granted a refetch, and no fetch of it is in flight and its
    /// retry backoff has passed. Report each fetch's result exactly once.
    #[wasm_bindgen(js_name = fetchesDue)]
    pub fn fetches_due(&mut self, now_ms: JsValue) -> Result<JsValue, JsValue> {
        let now_ms = time_ms(&now_ms, "nowMs")?;
        let list = Array::new();
        for (provider, remote) in self.gate.providers.iter().zip(self.remote.iter_mut()) {
            if let Some(due) = remote.as_mut().and_then(|keys| keys.start_due_fetch(now_ms)) {
                list.push(&fetch_object(&provider.name, &due)?);
            }
        }
        Ok(list.into())
    }

    /// `gate.fetchSucceeded(provider, body, nowMs)`: reports the body of a 200 response to
    /// the provider's fetch in flight.
    ///
    /// Returns `{outcome: 'stored', keys, skipped}` when a key set was stored,
    /// `{outcome: 'next', fetch}` when a discovery document named the key set to fetch now
    /// as part of the same fetch, `{outcome: 'failed', reason}` when the body was unusable
    /// (recorded as a failed fetch), or `{outcome: 'ignored'}` when no fetch was in flight.
    ///
    /// # Errors
    ///
    /// `RangeError` for an unknown or local provider.
    #[wasm_bindgen(js_name = fetchSucceeded)]
    pub fn fetch_succeeded(&mut self, provider: JsValue, body: JsValue, now_ms: JsValue) -> Result<JsValue, JsValue> {
        let now_ms = time_ms(&now_ms, "nowMs")?;
        let body = body_bytes(&body)?;
        let (name, keys) = self.remote_keys(&provider)?;
        match keys.fetch_succeeded(&body, now_ms) {
            FetchOutcome::Stored { keys, skipped } => convert::plain_object(&[
                ("outcome", JsValue::from_str("stored")),
                ("keys", number(keys as u64)),
                ("skipped", convert::string_array(&skipped)),
            ]),
            FetchOutcome::Next(due) => {
                convert::plain_object(&[("outcome", JsValue::from_str("next")), ("fetch", fetch_object(&name, &due)?)])
            }
            FetchOutcome::Failed(reason) => {
                convert::plain_object(&[("outcome", JsValue::from_str("failed")), ("reason", JsValue::from_str(&reason))])
            }
            FetchOutcome::Ignored => convert::plain_object(&[("outcome", JsValue::from_str("ignored"))]),
        }
    }

    /// `gate.fetchFailed(provider, reason, nowMs)`: reports that the provider's fetch in
    /// flight failed, and schedules the retry. Returns false when no fetch was in flight.
    ///
    /// # Errors
    ///
    /// `RangeError` for an unknown or local provider.
    #[wasm_bindgen(js_name = fetchFailed)]
    pub fn fetch_failed(&mut self, provider: JsValue, reason: JsValue, now_ms: JsValue) -> Result<bool, JsValue> {
        let now_ms = time_ms(&now_ms, "nowMs")?;
        let reason = convert::string(&reason, "reason")?;
        let (_, keys) = self.remote_keys(&provider)?;
        Ok(keys.fetch_failed(reason, now_ms))
    }

    /// `gate.adoptKeys(provider, body, fetchedAtMs)`: takes a key-set document fetched at
    /// `fetchedAtMs`, e.g. by another isolate through the Cache API. Returns whether it was
    /// adopted: only a set fetched later than the current one is. Its age counts from
    /// `fetchedAtMs`, so a persisted set is no fresher than when it was fetched.
    ///
    /// # Errors
    ///
    /// `RangeError` for an unknown or local provider; `TokenError` with code
    /// `jwks_invalid` when the body is not a valid key set.
    #[wasm_bindgen(js_name = adoptKeys)]
    pub fn adopt_keys(&mut self, provider: JsValue, body: JsValue, fetched_at_ms: JsValue) -> Result<bool, JsValue> {
        let fetched_at_ms = time_ms(&fetched_at_ms, "fetchedAtMs")?;
        let body = body_bytes(&body)?;
        let (_, keys) = self.remote_keys(&provider)?;
        keys.adopt(&body, fetched_at_ms).map_err(|reason| errors::token_error(ErrorCode::JwksInvalid, &reason))
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
        let decision = {
            let mut keys = Keys { remote: &mut self.remote, now_ms };
            self.gate.decide_with_cache(request.parts(), &mut keys, &mut self.cache, now_s, final_attempt)
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
