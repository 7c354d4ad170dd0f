//! Filter state: root contexts and HTTP streams, and the glue between host calls and the
//! gate.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

use super::abi::{self, BufferType, LogLevel, MapType, MetricType};
use super::keys::{FetchResult, RemoteKeys};
use crate::config::{Gate, KeySource};
use crate::gate::{Decision, KeyLookup, KeyProvider, RequestParts};

/// Tick period while requests wait or fetches run, in milliseconds.
const BUSY_TICK_MS: u32 = 100;

/// Tick period otherwise.
const IDLE_TICK_MS: u32 = 1_000;

/// Largest plugin configuration read, in bytes.
const MAX_CONFIG_BYTES: usize = 1 << 20;

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
    roots: BTreeMap<u32, Root>,
    streams: BTreeMap<u32, Stream>,
}

struct Root {
    gate: Option<Rc<Gate>>,
    remote: Vec<Option<RemoteKeys>>,
    callouts: BTreeMap<u32, usize>,
    waiting: Vec<u32>,
    metrics: BTreeMap<String, Option<u32>>,
    vm_id: u32,
    log_level: LogLevel,
    tick_ms: u32,
}

struct Stream {
    root_id: u32,
    request: Option<StoredRequest>,
    waiting_since_ms: Option<u64>,
    decided: bool,
}

struct StoredRequest {
    method: String,
    path: String,
    scheme: String,
    authority: String,
    headers: Vec<(String, String)>,
}

/// Keys of one root at one instant, for the gate.
struct Keys<'a> {
    remote: &'a mut [Option<RemoteKeys>],
    now_ms: u64,
}

impl KeyProvider for Keys<'_> {
    fn lookup(&mut self, index: usize) -> KeyLookup<'_> {
        let now_ms = self.now_ms;
        match self.remote.get_mut(index).and_then(Option::as_mut) {
            Some(keys) => {
                if !matches!(keys.lookup(now_ms), KeyLookup::Ready(_)) {
                    keys.sync_shared(now_ms);
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
        keys.sync_shared(now_ms) || keys.request_kid_refetch(now_ms)
    }
}

fn now_ms() -> u64 {
    abi::now_nanos().map_or(0, |nanos| nanos / 1_000_000)
}

fn log(level: LogLevel, current: LogLevel, message: &str) {
    if level >= current {
        let _ = abi::log(level, message);
    }
}

/// Strips the query, which may carry a token, from a path for logs.
fn path_for_log(path: &str) -> &str {
    path.split_once('?').map_or(path, |(path, _)| path)
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
                    callouts: BTreeMap::new(),
                    waiting: Vec::new(),
                    metrics: BTreeMap::new(),
                    vm_id: random_u32(),
                    log_level: abi::log_level(),
                    tick_ms: 0,
                },
            );
        } else {
            self.streams.insert(context_id, Stream { root_id: parent_id, request: None, waiting_since_ms: None, decided: false });
        }
    }

    pub fn configure(&mut self, root_id: u32, size: usize) -> bool {
        let Some(root) = self.roots.get_mut(&root_id) else { return false };
        root.log_level = abi::log_level();
        let bytes = match abi::buffer(BufferType::PluginConfiguration, size.min(MAX_CONFIG_BYTES)) {
            Ok(bytes) => bytes,
            Err(error) => {
                log(LogLevel::Error, LogLevel::Trace, &alloc::format!("portcullis: could not read the plugin configuration: {}", error.name()));
                return false;
            }
        };
        let gate = match Gate::from_json(&bytes) {
            Ok(gate) => gate,
            Err(error) => {
                log(LogLevel::Error, LogLevel::Trace, &alloc::format!("portcullis: {error}"));
                return false;
            }
        };
        let root_name = alloc::format!("{root_id}");
        let mut remote = Vec::new();
        for provider in &gate.providers {
            match &provider.keys {
                KeySource::Local(_) => remote.push(None),
                KeySource::Remote(config) => match RemoteKeys::new(&root_name, &provider.name, config) {
                    Ok(keys) => remote.push(Some(keys)),
                    Err(message) => {
                        log(
                            LogLevel::Error,
                            LogLevel::Trace,
                            &alloc::format!("portcullis: configuration field `providers.{}` is invalid: {message}", provider.name),
                        );
                        return false;
                    }
                },
            }
        }
        root.gate = Some(Rc::new(gate));
        root.remote = remote;
        root.callouts.clear();
        log(LogLevel::Info, root.log_level, &alloc::format!("portcullis: configured {} providers", root.remote.len()));
        root.start_fetches(now_ms());
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
        root.start_fetches(now);
        let waiting = root.waiting.clone();
        let mut expired = Vec::new();
        for stream_id in waiting {
            let timed_out = self.streams.get(&stream_id).and_then(|stream| stream.waiting_since_ms).is_some_and(|since| {
                let limit = root.pending_timeout_ms();
                now.saturating_sub(since) >= limit
            });
            if timed_out || changed {
                expired.push((stream_id, timed_out));
            }
        }
        for (stream_id, final_attempt) in expired {
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
        let headers = match abi::header_pairs(MapType::HttpRequestHeaders) {
            Ok(headers) => headers,
            Err(_) => Vec::new(),
        };
        let take = |name: &str| headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone()).unwrap_or_default();
        let request = StoredRequest {
            method: take(":method"),
            path: take(":path"),
            scheme: take(":scheme"),
            authority: take(":authority"),
            headers: headers.iter().filter(|(name, _)| !name.starts_with(':')).map(|(name, value)| (name.to_ascii_lowercase(), value.clone())).collect(),
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
        let Some(index) = root.callouts.remove(&token) else { return };
        let Some(Some(keys)) = root.remote.get_mut(index) else { return };
        let name = keys.name.clone();
        match keys.finish_fetch(header_count, body_size, now) {
            FetchResult::Stored { keys: count, skipped } => {
                root.count(&alloc::format!("portcullis.provider.{name}.jwks_fetch_success"));
                log(LogLevel::Info, root.log_level, &alloc::format!("portcullis: provider {name}: fetched {count} keys"));
                for reason in skipped {
                    log(LogLevel::Warn, root.log_level, &alloc::format!("portcullis: provider {name}: {reason}"));
                }
            }
            FetchResult::Failed(reason) => {
                root.count(&alloc::format!("portcullis.provider.{name}.jwks_fetch_failed"));
                log(LogLevel::Warn, root.log_level, &alloc::format!("portcullis: provider {name}: key set fetch failed: {reason}"));
            }
        }
        let waiting = root.waiting.clone();
        for stream_id in waiting {
            self.resume(context_id, stream_id, false);
        }
    }

    pub fn done(&mut self, context_id: u32) {
        self.forget_waiting(context_id);
    }

    pub fn delete(&mut self, context_id: u32) {
        self.forget_waiting(context_id);
        self.streams.remove(&context_id);
        self.roots.remove(&context_id);
    }

    fn forget_waiting(&mut self, context_id: u32) {
        if let Some(stream) = self.streams.get(&context_id) {
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
        let parts = RequestParts {
            method: &request.method,
            path: &request.path,
            scheme: &request.scheme,
            authority: &request.authority,
            headers: &request.headers,
        };
        let mut keys = Keys { remote: &mut root.remote, now_ms: now };
        let decision = gate.decide(parts, &mut keys, now / 1000, final_attempt);
        let path = path_for_log(&request.path).to_string();
        match decision {
            Decision::Allow(allowed) => {
                stream.decided = true;
                root.waiting.retain(|id| *id != stream_id);
                for name in &allowed.remove_headers {
                    let _ = abi::remove_header(MapType::HttpRequestHeaders, name);
                }
                for (name, value) in &allowed.set_headers {
                    let _ = abi::replace_header(MapType::HttpRequestHeaders, name, value);
                }
                let providers: Vec<&str> = allowed.verified.iter().filter_map(|index| gate.providers.get(*index)).map(|provider| provider.name.as_str()).collect();
                root.count("portcullis.allowed");
                for name in &providers {
                    root.count(&alloc::format!("portcullis.provider.{name}.allowed"));
                }
                let stale: Vec<String> = root
                    .remote
                    .iter()
                    .enumerate()
                    .filter_map(|(index, keys)| keys.as_ref().filter(|keys| allowed.verified.contains(&index) && keys.is_stale(now)))
                    .map(|keys| alloc::format!("portcullis.provider.{}.jwks_stale_in_use", keys.name))
                    .collect();
                for name in stale {
                    root.count(&name);
                }
                log(LogLevel::Debug, root.log_level, &alloc::format!("portcullis: allowed providers={} path={path}", providers.join(",")));
                Verdict::Continue
            }
            Decision::Deny(denial) => {
                stream.decided = true;
                root.waiting.retain(|id| *id != stream_id);
                let provider = denial.provider.and_then(|index| gate.providers.get(index)).map(|provider| provider.name.clone());
                root.count("portcullis.denied");
                root.count(&alloc::format!("portcullis.denied.{}", denial.code.as_str()));
                if let Some(name) = &provider {
                    root.count(&alloc::format!("portcullis.provider.{name}.denied.{}", denial.code.as_str()));
                }
                log(
                    LogLevel::Debug,
                    root.log_level,
                    &alloc::format!(
                        "portcullis: denied status={} code={} provider={} path={path}: {}",
                        denial.status,
                        denial.code,
                        provider.as_deref().unwrap_or("-"),
                        denial.message
                    ),
                );
                let headers: Vec<(&str, &str)> = denial.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
                let details = alloc::format!("portcullis_denied{{{}}}", denial.code.as_str());
                if abi::send_local_response(denial.status, &details, denial.body.as_bytes(), &headers).is_err() {
                    log(LogLevel::Error, root.log_level, "portcullis: the host refused the local reply");
                }
                Verdict::Answered
            }
            Decision::Pending { providers } => {
                if final_attempt {
                    // The gate turns pending keys into failures on the final attempt.
                    return Verdict::Continue;
                }
                if stream.waiting_since_ms.is_none() {
                    stream.waiting_since_ms = Some(now);
                }
                if !root.waiting.contains(&stream_id) {
                    root.waiting.push(stream_id);
                }
                root.start_fetches(now);
                for index in providers {
                    if let Some(Some(keys)) = root.remote.get(index) {
                        log(LogLevel::Debug, root.log_level, &alloc::format!("portcullis: waiting for keys of provider {} path={path}", keys.name));
                    }
                }
                root.set_tick(BUSY_TICK_MS);
                Verdict::Waiting
            }
        }
    }
}

enum Verdict {
    Continue,
    Answered,
    Waiting,
}

impl Root {
    fn start_fetches(&mut self, now: u64) {
        let vm_id = self.vm_id;
        let level = self.log_level;
        let mut started = Vec::new();
        for (index, keys) in self.remote.iter_mut().enumerate() {
            let Some(keys) = keys else { continue };
            if !keys.wants_fetch(now) {
                continue;
            }
            match keys.start_fetch(now, vm_id) {
                Ok(Some(token)) => started.push((token, index)),
                Ok(None) => {}
                Err(reason) => log(LogLevel::Warn, level, &alloc::format!("portcullis: provider {}: key set fetch failed: {reason}", keys.name)),
            }
        }
        for (token, index) in started {
            self.callouts.insert(token, index);
        }
    }

    fn pending_timeout_ms(&self) -> u64 {
        self.remote.iter().flatten().map(|keys| keys.timing().pending_timeout_ms).max().unwrap_or(5_000)
    }

    fn set_tick(&mut self, period: u32) {
        if self.tick_ms != period && abi::set_tick_period(period).is_ok() {
            self.tick_ms = period;
        }
    }

    /// Adds one to a counter, defining it on first use. Hosts without metrics are ignored.
    fn count(&mut self, name: &str) {
        let id = match self.metrics.get(name) {
            Some(id) => *id,
            None => {
                let id = abi::define_metric(MetricType::Counter, name).ok();
                self.metrics.insert(name.to_string(), id);
                id
            }
        };
        if let Some(id) = id {
            let _ = abi::increment_metric(id, 1);
        }
    }
}
