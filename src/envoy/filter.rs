//! Filter state: root contexts and HTTP streams, and the glue between host calls and the
//! gate.
//!
//! A request whose keys, revocation list or introspection answer are not in hand yet is
//! paused. It is decided again when its worker's call returns, or when a tick finds keys,
//! a list or a failure another worker published. At the latest, when the provider's
//! pending timeout has passed, it gets a 401 `invalid_token` reply with code
//! `jwks_unavailable`, `revocation_list_unavailable` or `introspection_unavailable`.
//!
//! Headers the gate adds to responses (a fresh `DPoP-Nonce`) are kept with the stream and
//! written in `proxy_on_response_headers`.

use crate::idmap::IdMap;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::fmt;

use zeroize::Zeroizing;

use super::abi::{self, BufferType, HeaderMap, LogLevel, MapType};
use super::dpop::DpopState;
use super::introspection::{CallResult, Introspector};
use super::keys::{FetchResult, RemoteKeys};
use super::metrics::{self, Counter, Counters, DecisionCounters};
use super::revocation::RemoteList;
use crate::config::{Gate, KeySource};
use crate::dpop::replay::ReplayCheck;
use crate::dpop::VerifiedProof;
use crate::error::ConfigError;
use crate::gate::{
    Allowed, Decision, Denial, GateState, IntrospectionLookup, KeyLookup, ListLookup, RequestParts, TokenCache,
};
use crate::introspection::TokenDigest;
use crate::policy::MAX_CONFIG_BYTES;

/// Tick period while requests wait or fetches run, in milliseconds.
const BUSY_TICK_MS: u32 = 100;

/// Tick period otherwise.
const IDLE_TICK_MS: u32 = 1_000;

/// How long a request waits for keys when no provider sets `pending_timeout`.
const DEFAULT_PENDING_TIMEOUT_MS: u64 = 5_000;

std::thread_local! {
    static FILTER: RefCell<Filter> = RefCell::new(Filter::default());
}

/// Runs `body` with the filter state. Returns `None` if the state is already borrowed,
/// which only a host calling back into the module during a host call could cause.
pub fn with_filter<T>(body: impl FnOnce(&mut Filter) -> T) -> Option<T> {
    FILTER.with(|cell| cell.try_borrow_mut().ok().map(|mut filter| body(&mut filter)))
}

/// All contexts of this VM.
#[derive(Default)]
pub struct Filter {
    roots: IdMap<u32, Root>,
    streams: IdMap<u32, Stream>,
}

/// What a call in flight fetches.
#[derive(Clone, Copy)]
enum Callout {
    /// Provider `index`'s keys (or its discovery document).
    Keys(usize),
    /// Provider `index`'s revocation list.
    List(usize),
    /// Provider `index`'s introspection of the token with this digest.
    Introspection(usize, TokenDigest),
}

struct Root {
    gate: Option<Rc<Gate>>,
    remote: Vec<Option<RemoteKeys>>,
    lists: Vec<Option<RemoteList>>,
    introspectors: Vec<Option<Introspector>>,
    dpop: DpopState,
    cache: TokenCache,
    callouts: IdMap<u32, Callout>,
    waiting: Vec<u32>,
    counters: Counters,
    decision_counters: DecisionCounters,
    vm_id: u32,
    log_level: LogLevel,
    tick_ms: u32,
}

struct Stream {
    root_id: u32,
    request: Option<StoredRequest>,
    waiting_since_ms: Option<u64>,
    decided: bool,
    /// Headers to add to the response.
    response_headers: Vec<(String, String)>,
}

struct StoredRequest {
    /// Every request header, pseudo-headers (`:method`, `:path`, …) included.
    headers: HeaderMap,
    /// Whether `headers` is the whole map; false when the host could not give it.
    complete: bool,
    /// Positions in `headers` of `:method`, `:path`, `:scheme` and `:authority`.
    pseudo_headers: [Option<usize>; 4],
}

impl StoredRequest {
    fn new(headers: HeaderMap, complete: bool) -> Self {
        let pseudo_headers = headers.positions([":method", ":path", ":scheme", ":authority"]);
        Self { headers, complete, pseudo_headers }
    }

    fn pseudo_header(&self, which: usize) -> &str {
        let index = self.pseudo_headers.get(which).copied().flatten();
        index.and_then(|index| self.headers.value_at(index)).unwrap_or_default()
    }

    fn method(&self) -> &str {
        self.pseudo_header(0)
    }

    fn path(&self) -> &str {
        self.pseudo_header(1)
    }

    fn scheme(&self) -> &str {
        self.pseudo_header(2)
    }

    fn authority(&self) -> &str {
        self.pseudo_header(3)
    }
}

/// The state of one root at one instant, for the gate.
struct State<'a> {
    remote: &'a mut [Option<RemoteKeys>],
    lists: &'a mut [Option<RemoteList>],
    introspectors: &'a mut [Option<Introspector>],
    dpop: &'a mut DpopState,
    /// Introspection calls started during the decision: call token, provider, digest.
    started: Vec<(u32, usize, TokenDigest)>,
    now_ms: u64,
    /// Set when a lookup adopted keys or a list another worker published, so a pending
    /// decision can be retried at once.
    adopted: bool,
}

impl GateState for State<'_> {
    fn lookup(&mut self, index: usize) -> KeyLookup<'_> {
        let now_ms = self.now_ms;
        match self.remote.get_mut(index).and_then(Option::as_mut) {
            Some(keys) => {
                if !matches!(keys.lookup(now_ms), KeyLookup::Ready { .. }) {
                    self.adopted |= keys.sync_shared(now_ms);
                }
                keys.lookup(now_ms)
            }
            None => KeyLookup::Unavailable(String::from("no remote key set is configured")),
        }
    }

    fn refetch_for_unknown_kid(&mut self, index: usize) -> bool {
        let now_ms = self.now_ms;
        let Some(keys) = self.remote.get_mut(index).and_then(Option::as_mut) else { return false };
        // Another worker may already hold newer keys.
        if keys.sync_shared(now_ms) {
            self.adopted = true;
            return true;
        }
        keys.request_kid_refetch(now_ms)
    }

    fn revocation_list(&mut self, index: usize) -> ListLookup<'_> {
        let now_ms = self.now_ms;
        match self.lists.get_mut(index).and_then(Option::as_mut) {
            Some(list) => {
                if !matches!(list.lookup(now_ms), ListLookup::Ready(_)) {
                    self.adopted |= list.sync_shared(now_ms);
                }
                list.lookup(now_ms)
            }
            None => ListLookup::Unavailable(String::from("no revocation list is configured")),
        }
    }

    fn introspect(&mut self, index: usize, token: &str) -> IntrospectionLookup {
        let now_ms = self.now_ms;
        let Some(introspector) = self.introspectors.get_mut(index).and_then(Option::as_mut) else {
            return IntrospectionLookup::Unavailable(String::from("no introspection endpoint is configured"));
        };
        let mut started = Vec::new();
        let lookup = introspector.lookup(token, now_ms, &mut started);
        self.started.extend(started.into_iter().map(|(call, digest)| (call, index, digest)));
        lookup
    }

    fn record_proof(&mut self, _index: usize, proof: &VerifiedProof, max_age: u64, now: u64) -> ReplayCheck {
        self.dpop.record(proof, max_age, now)
    }

    fn nonce_secret(&mut self) -> Option<Zeroizing<Vec<u8>>> {
        self.dpop.nonce_secret()
    }
}

fn now_ms() -> u64 {
    abi::now_nanos().map_or(0, |nanos| nanos / 1_000_000)
}

/// Writes a log line when the host's level lets `level` through; the message is
/// formatted only then.
fn log(level: LogLevel, current: LogLevel, message: fmt::Arguments<'_>) {
    if level >= current {
        let _ = abi::log(level, &alloc::fmt::format(message));
    }
}

/// A request path for logs: displayed without its query, which may carry a token. The
/// query is found only when a line is written, not on every request.
#[derive(Clone, Copy)]
struct LogPath<'a>(&'a str);

impl fmt::Display for LogPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.split_once('?').map_or(self.0, |(path, _)| path))
    }
}

/// Creates the remote-key state of every provider: `None` for local keys.
///
/// # Errors
///
/// A log line naming the provider whose remote keys Envoy cannot fetch.
fn remote_keys(gate: &Gate, vm_id: u32) -> Result<Vec<Option<RemoteKeys>>, String> {
    let mut remote = Vec::new();
    for provider in &gate.providers {
        match &provider.keys {
            KeySource::Local(_) | KeySource::IntrospectionOnly => remote.push(None),
            KeySource::Remote(config) => {
                let keys = RemoteKeys::new(provider, config, vm_id).map_err(|message| {
                    alloc::format!("portcullis: configuration field `providers.{}` is invalid: {message}", provider.name)
                })?;
                remote.push(Some(keys));
            }
        }
    }
    Ok(remote)
}

/// Creates the revocation-list and introspection state of every provider.
///
/// # Errors
///
/// A log line naming the provider whose list or endpoint Envoy cannot call.
#[allow(clippy::type_complexity)]
fn lists_and_introspectors(gate: &Gate, vm_id: u32) -> Result<(Vec<Option<RemoteList>>, Vec<Option<Introspector>>), String> {
    let invalid = |name: &str, message: String| alloc::format!("portcullis: configuration field `providers.{name}` is invalid: {message}");
    let mut lists = Vec::new();
    let mut introspectors = Vec::new();
    for (index, provider) in gate.providers.iter().enumerate() {
        lists.push(match &provider.revocation_list {
            Some(settings) => Some(RemoteList::new(provider, settings, vm_id).map_err(|message| invalid(&provider.name, message))?),
            None => None,
        });
        introspectors.push(match &provider.introspection {
            Some(settings) => Some(Introspector::new(provider, index, settings).map_err(|message| invalid(&provider.name, message))?),
            None => None,
        });
    }
    Ok((lists, introspectors))
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    if getrandom::getrandom(&mut bytes).is_err() {
        return u32::try_from(now_ms() & 0xffff_ffff).unwrap_or(0);
    }
    u32::from_le_bytes(bytes)
}

impl Filter {
    pub fn create_context(&mut self, context_id: u32, parent_id: u32) {
        if parent_id == 0 {
            self.roots.insert(
                context_id,
                Root {
                    gate: None,
                    remote: Vec::new(),
                    lists: Vec::new(),
                    introspectors: Vec::new(),
                    dpop: DpopState::default(),
                    cache: TokenCache::disabled(),
                    callouts: IdMap::default(),
                    waiting: Vec::new(),
                    counters: Counters::default(),
                    decision_counters: DecisionCounters::default(),
                    vm_id: random_u32(),
                    log_level: abi::log_level(),
                    tick_ms: 0,
                },
            );
        } else {
            self.streams.insert(
                context_id,
                Stream { root_id: parent_id, request: None, waiting_since_ms: None, decided: false, response_headers: Vec::new() },
            );
        }
    }

    pub fn configure(&mut self, root_id: u32, size: usize) -> bool {
        let Some(root) = self.roots.get_mut(&root_id) else { return false };
        root.log_level = abi::log_level();
        if size > MAX_CONFIG_BYTES {
            // Rejected before the copy, with the message the core gives for the same document.
            log(LogLevel::Error, LogLevel::Trace, format_args!("portcullis: {}", ConfigError::too_large(size)));
            return false;
        }
        let bytes = match abi::buffer(BufferType::PluginConfiguration, size) {
            Ok(bytes) => bytes,
            Err(error) => {
                log(LogLevel::Error, LogLevel::Trace, format_args!("portcullis: could not read the plugin configuration: {}", error.name()));
                return false;
            }
        };
        let gate = match Gate::from_json(&bytes) {
            Ok(gate) => gate,
            Err(error) => {
                log(LogLevel::Error, LogLevel::Trace, format_args!("portcullis: {error}"));
                return false;
            }
        };
        let remote = match remote_keys(&gate, root.vm_id) {
            Ok(remote) => remote,
            Err(message) => {
                log(LogLevel::Error, LogLevel::Trace, format_args!("{message}"));
                return false;
            }
        };
        let (lists, introspectors) = match lists_and_introspectors(&gate, root.vm_id) {
            Ok(state) => state,
            Err(message) => {
                log(LogLevel::Error, LogLevel::Trace, format_args!("{message}"));
                return false;
            }
        };
        root.cache = TokenCache::new(gate.cache_limits);
        log(
            LogLevel::Info,
            root.log_level,
            format_args!("portcullis: configured {} providers ({} with remote keys)", gate.providers.len(), remote.iter().flatten().count()),
        );
        root.decision_counters.provider_allowed =
            gate.providers.iter().map(|provider| Counter::new(metrics::provider(&provider.name, "allowed"))).collect();
        root.gate = Some(Rc::new(gate));
        root.remote = remote;
        root.lists = lists;
        root.introspectors = introspectors;
        root.callouts.clear();
        let now = now_ms();
        for keys in root.remote.iter_mut().flatten() {
            keys.sync_shared(now);
        }
        for list in root.lists.iter_mut().flatten() {
            list.sync_shared(now);
        }
        root.start_fetches(now);
        root.set_tick(IDLE_TICK_MS);
        true
    }

    pub fn tick(&mut self, root_id: u32) {
        let now = now_ms();
        let Some(root) = self.roots.get_mut(&root_id) else { return };
        root.log_level = abi::log_level();
        let mut changed = false;
        for keys in root.remote.iter_mut().flatten() {
            changed |= keys.sync_shared(now);
        }
        for list in root.lists.iter_mut().flatten() {
            changed |= list.sync_shared(now);
        }
        root.start_fetches(now);
        root.cache.purge_expired(i64::try_from(now / 1000).unwrap_or(i64::MAX));
        for introspector in root.introspectors.iter_mut().flatten() {
            introspector.purge(now);
        }
        let limit = root.pending_timeout_ms();
        let mut resumed = Vec::new();
        for stream_id in root.waiting.clone() {
            let timed_out = self
                .streams
                .get(&stream_id)
                .and_then(|stream| stream.waiting_since_ms)
                .is_some_and(|since| now.saturating_sub(since) >= limit);
            if timed_out || changed {
                resumed.push((stream_id, timed_out));
            }
        }
        for (stream_id, final_attempt) in resumed {
            self.resume(root_id, stream_id, final_attempt);
        }
        if let Some(root) = self.roots.get_mut(&root_id) {
            let busy = !root.waiting.is_empty() || !root.callouts.is_empty();
            root.set_tick(if busy { BUSY_TICK_MS } else { IDLE_TICK_MS });
        }
    }

    pub fn request_headers(&mut self, context_id: u32) -> u32 {
        let Some(stream) = self.streams.get_mut(&context_id) else { return 0 };
        let root_id = stream.root_id;
        let request = match abi::header_map(MapType::HttpRequestHeaders) {
            Ok(headers) => StoredRequest::new(headers, true),
            Err(_) => StoredRequest::new(HeaderMap::default(), false),
        };
        stream.request = Some(request);
        match self.decide(root_id, context_id, false) {
            Verdict::Continue => 0,
            Verdict::Answered | Verdict::Waiting => 1,
        }
    }

    pub fn request_data(&mut self, context_id: u32) -> u32 {
        match self.streams.get(&context_id) {
            Some(stream) if !stream.decided => 1,
            _ => 0,
        }
    }

    pub fn http_call_response(&mut self, context_id: u32, token: u32, header_count: usize, body_size: usize) {
        let now = now_ms();
        let Some(root) = self.roots.get_mut(&context_id) else { return };
        let Some(callout) = root.callouts.remove(&token) else { return };
        let handled = match callout {
            Callout::Keys(index) => root.finish_key_fetch(index, token, header_count, body_size, now),
            Callout::List(index) => root.finish_list_fetch(index, token, header_count, body_size, now),
            Callout::Introspection(index, digest) => root.finish_introspection(index, &digest, token, header_count, body_size, now),
        };
        if !handled {
            return;
        }
        for stream_id in root.waiting.clone() {
            self.resume(context_id, stream_id, false);
        }
    }

    /// Adds the headers the gate asked for to the response of a stream.
    pub fn response_headers(&mut self, context_id: u32) -> u32 {
        if let Some(stream) = self.streams.get_mut(&context_id) {
            for (name, value) in core::mem::take(&mut stream.response_headers) {
                let _ = abi::replace_header(MapType::HttpResponseHeaders, &name, &value);
            }
        }
        0
    }

    pub fn done(&mut self, context_id: u32) {
        self.forget_waiting(context_id);
    }

    pub fn delete(&mut self, context_id: u32) {
        self.forget_waiting(context_id);
        if self.streams.remove(&context_id).is_none() {
            self.roots.remove(&context_id);
        }
    }

    fn forget_waiting(&mut self, context_id: u32) {
        // Only a stream that waited was ever in its root's list.
        if let Some(stream) = self.streams.get(&context_id).filter(|stream| stream.waiting_since_ms.is_some()) {
            if let Some(root) = self.roots.get_mut(&stream.root_id) {
                root.waiting.retain(|id| *id != context_id);
            }
        }
    }

    fn resume(&mut self, root_id: u32, stream_id: u32, final_attempt: bool) {
        if abi::set_effective_context(stream_id).is_err() {
            // The host no longer knows the stream: forget it.
            if let Some(root) = self.roots.get_mut(&root_id) {
                root.waiting.retain(|id| *id != stream_id);
            }
            return;
        }
        if let Verdict::Continue = self.decide(root_id, stream_id, final_attempt) {
            let _ = abi::continue_request();
        }
        let _ = abi::set_effective_context(root_id);
    }

    fn decide(&mut self, root_id: u32, stream_id: u32, final_attempt: bool) -> Verdict {
        let now = now_ms();
        let (Some(root), Some(stream)) = (self.roots.get_mut(&root_id), self.streams.get_mut(&stream_id)) else {
            return Verdict::Continue;
        };
        let Some(gate) = root.gate.clone() else {
            // Envoy does not send requests to a filter whose configuration failed; if a
            // host does, fail closed.
            let _ = abi::send_local_response(500, "portcullis_not_configured", b"", &[]);
            return Verdict::Answered;
        };
        let Some(request) = &stream.request else { return Verdict::Continue };
        let decision = root.decide(&gate, request, now, final_attempt);
        let path = LogPath(request.path());
        // Headers the request lacks need no removal. Only the first decision, taken in
        // `proxy_on_request_headers`, relies on the map read then.
        let present = (request.complete && stream.waiting_since_ms.is_none()).then_some(&request.headers);

        match decision {
            Some(Decision::Allow(mut allowed)) => {
                stream.decided = true;
                stream.response_headers = core::mem::take(&mut allowed.response_headers);
                root.allow(&gate, &allowed, stream_id, path, present, now);
                Verdict::Continue
            }
            Some(Decision::Deny(denial)) => {
                stream.decided = true;
                root.deny(&gate, &denial, stream_id, path);
                Verdict::Answered
            }
            Some(Decision::Pending { providers }) if !final_attempt => {
                stream.waiting_since_ms.get_or_insert(now);
                root.wait(stream_id, &providers, path, now);
                Verdict::Waiting
            }
            // The gate never returns Pending on a final attempt; fail closed if it did.
            Some(Decision::Pending { .. }) | None => {
                stream.decided = true;
                root.waiting.retain(|id| *id != stream_id);
                log(LogLevel::Error, root.log_level, format_args!("portcullis: no decision for path={path}; responding with status 500"));
                let _ = abi::send_local_response(500, "portcullis_no_decision", b"", &[]);
                Verdict::Answered
            }
        }
    }
}

enum Verdict {
    Continue,
    Answered,
    Waiting,
}

/// The names of the providers at `indices`, comma-separated when displayed; indices
/// past the gate's providers are skipped.
struct ProviderNames<'a> {
    gate: &'a Gate,
    indices: &'a [usize],
}

impl ProviderNames<'_> {
    fn names(&self) -> impl Iterator<Item = &str> {
        self.indices.iter().filter_map(|index| self.gate.providers.get(*index)).map(|provider| provider.name.as_str())
    }

    fn is_empty(&self) -> bool {
        self.names().next().is_none()
    }
}

impl fmt::Display for ProviderNames<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (position, name) in self.names().enumerate() {
            if position > 0 {
                f.write_str(",")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

impl Root {
    /// Asks the gate. A pending decision that adopted another worker's keys on the way is
    /// taken again at once; the second pass cannot adopt anything new.
    fn decide(&mut self, gate: &Gate, request: &StoredRequest, now: u64, final_attempt: bool) -> Option<Decision> {
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(request.headers.len());
        headers.extend(request.headers.pairs().filter(|(name, _)| !name.starts_with(':')));
        let parts = RequestParts {
            method: request.method(),
            path: request.path(),
            scheme: request.scheme(),
            authority: request.authority(),
            headers: &headers,
        };
        let mut decision = None;
        for _ in 0..2 {
            let mut state = State {
                remote: &mut self.remote,
                lists: &mut self.lists,
                introspectors: &mut self.introspectors,
                dpop: &mut self.dpop,
                started: Vec::new(),
                now_ms: now,
                adopted: false,
            };
            let current = gate.decide_with_cache(parts, &mut state, &mut self.cache, now / 1000, final_attempt);
            let retry = matches!(current, Decision::Pending { .. }) && state.adopted;
            let started = core::mem::take(&mut state.started);
            for (call, index, digest) in started {
                self.callouts.insert(call, Callout::Introspection(index, digest));
            }
            decision = Some(current);
            if !retry {
                break;
            }
        }
        let stats = self.cache.take_stats();
        self.decision_counters.jwt_cache_hit.add(stats.hits);
        self.decision_counters.jwt_cache_miss.add(stats.misses);
        decision
    }

    /// Applies the header changes of an allowed request, counts it and logs it.
    ///
    /// `present` is the request's whole header map when it is still current; headers
    /// missing from it are not removed.
    fn allow(&mut self, gate: &Gate, allowed: &Allowed, stream_id: u32, path: LogPath<'_>, present: Option<&HeaderMap>, now: u64) {
        self.waiting.retain(|id| *id != stream_id);
        for name in &allowed.remove_headers {
            if present.is_some_and(|headers| !headers.contains(name)) {
                continue;
            }
            let _ = abi::remove_header(MapType::HttpRequestHeaders, name);
        }
        for (name, value) in &allowed.set_headers {
            let _ = abi::replace_header(MapType::HttpRequestHeaders, name, value);
        }

        let providers = ProviderNames { gate, indices: &allowed.verified };
        self.decision_counters.allowed.increment();
        if allowed.cors_preflight {
            self.decision_counters.cors_preflight_bypassed.increment();
        }
        for &index in &allowed.verified {
            if let Some(counter) = self.decision_counters.provider_allowed.get_mut(index) {
                counter.increment();
            }
        }
        self.report_stale_keys(&allowed.verified, now);

        let reason = if allowed.cors_preflight {
            "cors_preflight"
        } else if providers.is_empty() {
            "no_token_required"
        } else {
            "verified"
        };
        log(LogLevel::Debug, self.log_level, format_args!("portcullis: allowed reason={reason} providers={providers} path={path}"));
    }

    /// Sends the denial as a local reply, counts it and logs it.
    fn deny(&mut self, gate: &Gate, denial: &Denial, stream_id: u32, path: LogPath<'_>) {
        self.waiting.retain(|id| *id != stream_id);
        let provider = denial.provider.and_then(|index| gate.providers.get(index)).map(|provider| provider.name.as_str());
        self.decision_counters.denied.increment();
        self.counters.increment(&metrics::denied_code(denial.code));
        if let Some(name) = provider {
            self.counters.increment(&metrics::provider(name, "denied"));
            self.counters.increment(&metrics::provider_denied_code(name, denial.code));
        }
        log(
            LogLevel::Debug,
            self.log_level,
            format_args!(
                "portcullis: denied status={} code={} provider={} path={path}: {}",
                denial.status,
                denial.code,
                provider.unwrap_or("-"),
                denial.message
            ),
        );

        let headers: Vec<(&str, &str)> = denial.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        let details = alloc::format!("portcullis_denied{{{}}}", denial.code.as_str());
        if abi::send_local_response(denial.status, &details, denial.body.as_bytes(), &headers).is_err() {
            log(LogLevel::Error, self.log_level, format_args!("portcullis: the host rejected the local reply"));
        }
    }

    /// Keeps a stream paused until keys arrive, and makes sure they are being fetched.
    fn wait(&mut self, stream_id: u32, providers: &[usize], path: LogPath<'_>, now: u64) {
        if !self.waiting.contains(&stream_id) {
            self.waiting.push(stream_id);
        }
        self.start_fetches(now);
        if let Some(gate) = &self.gate {
            let names = ProviderNames { gate, indices: providers };
            log(LogLevel::Debug, self.log_level, format_args!("portcullis: waiting for providers {names} path={path}"));
        }
        self.set_tick(BUSY_TICK_MS);
    }

    fn start_fetches(&mut self, now: u64) {
        let level = self.log_level;
        let mut started = Vec::new();
        let mut failed = Vec::new();
        for (index, keys) in self.remote.iter_mut().enumerate() {
            let Some(keys) = keys else { continue };
            if !keys.wants_fetch(now) {
                continue;
            }
            match keys.start_fetch(now) {
                Ok(Some(token)) => started.push((token, Callout::Keys(index))),
                Ok(None) => {}
                Err(reason) => {
                    log(LogLevel::Warn, level, format_args!("portcullis: provider {}: key set fetch failed: {reason}", keys.name));
                    failed.push(metrics::provider(&keys.name, "jwks_fetch_failed"));
                }
            }
        }
        for (index, list) in self.lists.iter_mut().enumerate() {
            let Some(list) = list else { continue };
            if !list.wants_fetch(now) {
                continue;
            }
            match list.start_fetch(now) {
                Ok(Some(token)) => started.push((token, Callout::List(index))),
                Ok(None) => {}
                Err(reason) => {
                    log(LogLevel::Warn, level, format_args!("portcullis: provider {}: revocation list fetch failed: {reason}", list.name));
                    failed.push(metrics::provider(&list.name, "revocation_list_fetch_failed"));
                }
            }
        }
        for (token, callout) in started {
            self.callouts.insert(token, callout);
        }
        for name in failed {
            self.counters.increment(&name);
        }
    }

    /// Handles the answer to a key-set fetch. Returns whether waiting requests should be
    /// decided again.
    fn finish_key_fetch(&mut self, index: usize, token: u32, header_count: usize, body_size: usize, now: u64) -> bool {
        let Some(Some(keys)) = self.remote.get_mut(index) else { return false };
        if !keys.owns_call(token) {
            // A response to a call this VM already gave up on (a newer fetch replaced it).
            return false;
        }
        let name = keys.name.clone();
        match keys.finish_fetch(header_count, body_size, now) {
            FetchResult::Stored { keys: count, skipped } => {
                self.counters.increment(&metrics::provider(&name, "jwks_fetch_success"));
                log(LogLevel::Info, self.log_level, format_args!("portcullis: provider {name}: fetched {count} keys"));
                for reason in skipped {
                    log(LogLevel::Warn, self.log_level, format_args!("portcullis: provider {name}: {reason}"));
                }
            }
            FetchResult::Continued(next) => {
                self.callouts.insert(next, Callout::Keys(index));
                log(LogLevel::Debug, self.log_level, format_args!("portcullis: provider {name}: discovery found the key set URL"));
                return false;
            }
            FetchResult::Failed(reason) => {
                self.counters.increment(&metrics::provider(&name, "jwks_fetch_failed"));
                log(LogLevel::Warn, self.log_level, format_args!("portcullis: provider {name}: key set fetch failed: {reason}"));
            }
        }
        true
    }

    /// Handles the answer to a revocation-list fetch.
    fn finish_list_fetch(&mut self, index: usize, token: u32, header_count: usize, body_size: usize, now: u64) -> bool {
        let Some(Some(list)) = self.lists.get_mut(index) else { return false };
        if !list.owns_call(token) {
            return false;
        }
        let name = list.name.clone();
        match list.finish_fetch(header_count, body_size, now) {
            Ok(entries) => {
                self.counters.increment(&metrics::provider(&name, "revocation_list_fetch_success"));
                log(LogLevel::Info, self.log_level, format_args!("portcullis: provider {name}: fetched a revocation list of {entries} entries"));
            }
            Err(reason) => {
                self.counters.increment(&metrics::provider(&name, "revocation_list_fetch_failed"));
                log(LogLevel::Warn, self.log_level, format_args!("portcullis: provider {name}: revocation list fetch failed: {reason}"));
            }
        }
        true
    }

    /// Handles the answer to an introspection call.
    fn finish_introspection(&mut self, index: usize, digest: &TokenDigest, token: u32, header_count: usize, body_size: usize, now: u64) -> bool {
        let Some(Some(introspector)) = self.introspectors.get_mut(index) else { return false };
        if !introspector.owns_call(token, digest) {
            return false;
        }
        let name = introspector.name.clone();
        match introspector.finish_call(digest, header_count, body_size, now) {
            CallResult::Answered { active } => {
                self.counters.increment(&metrics::provider(&name, "introspection_success"));
                let verdict = if active { "active" } else { "not active" };
                log(LogLevel::Debug, self.log_level, format_args!("portcullis: provider {name}: introspection answered {verdict}"));
            }
            CallResult::Failed(reason) => {
                self.counters.increment(&metrics::provider(&name, "introspection_failed"));
                log(LogLevel::Warn, self.log_level, format_args!("portcullis: provider {name}: introspection failed: {reason}"));
            }
        }
        true
    }

    /// Counts requests verified with stale keys, and warns once per stale period.
    fn report_stale_keys(&mut self, verified: &[usize], now: u64) {
        let level = self.log_level;
        let mut stale = Vec::new();
        for (index, keys) in self.remote.iter_mut().enumerate() {
            let Some(keys) = keys else { continue };
            if !verified.contains(&index) || !keys.is_stale(now) {
                continue;
            }
            if let Some(notice) = keys.stale_notice(now) {
                log(LogLevel::Warn, level, format_args!("portcullis: provider {}: {notice}", keys.name));
            }
            stale.push(metrics::provider(&keys.name, "jwks_stale_in_use"));
        }
        for name in stale {
            self.counters.increment(&name);
        }
    }

    fn pending_timeout_ms(&self) -> u64 {
        let keys = self.remote.iter().flatten().map(|keys| keys.timing().pending_timeout_ms);
        let lists = self.lists.iter().flatten().map(|list| list.timing().pending_timeout_ms);
        let introspection = self.introspectors.iter().flatten().map(Introspector::pending_timeout_ms);
        keys.chain(lists).chain(introspection).max().unwrap_or(DEFAULT_PENDING_TIMEOUT_MS)
    }

    fn set_tick(&mut self, period: u32) {
        if self.tick_ms != period && abi::set_tick_period(period).is_ok() {
            self.tick_ms = period;
        }
    }
}
