//! The Envoy stand-in: VMs per worker, HTTP streams through the filter, and the event loop
//! that delivers callout responses, ticks and queue notifications.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use wasmtime::{Engine, Module};

use crate::abi::{MetricKind, Status};
use crate::callout::{self, TIMEOUT_BODY, router_reply};
use crate::headers::HeaderMap;
use crate::http::HttpResponse;
use crate::options::{
    CalloutFault, CalloutRecord, HostOptions, LogRecord, Outcome, Request, Response, StartError,
};
use crate::state::{
    Action, CallResponse, CalloutDone, LocalReplyRequest, RandomSource, Shared, SharedOptions,
    Stream, lock,
};
use crate::vm::{self, Called, Vm, len_arg};

/// Most compiled modules kept for reuse by later `Envoy::start` calls in this process.
const COMPILED_CACHE_SIZE: usize = 8;

/// Compiled modules by their bytes and optimization setting. Compiling a 955 KB filter
/// took about 10 s with a debug build of this crate on a 2-core machine, so tests that
/// start many hosts with one module compile it once.
#[allow(clippy::type_complexity)]
static COMPILED: Mutex<Vec<(Vec<u8>, bool, Engine, Module)>> = Mutex::new(Vec::new());

/// Compiles `wasm`, or returns the engine and module compiled earlier for the same bytes.
///
/// Without `optimize`, Cranelift runs without optimizations: the guest was optimized by
/// its own compiler, and this halves the compile time of a debug build. With it, Cranelift
/// optimizes for speed as Envoy's wasmtime runtime does.
fn compile(wasm: &[u8], optimize: bool) -> Result<(Engine, Module), StartError> {
    let mut cache = lock(&COMPILED);
    if let Some((_, _, engine, module)) = cache
        .iter()
        .find(|(bytes, optimized, _, _)| *optimized == optimize && bytes == wasm)
    {
        return Ok((engine.clone(), module.clone()));
    }
    let mut config = wasmtime::Config::new();
    config.cranelift_opt_level(if optimize {
        wasmtime::OptLevel::Speed
    } else {
        wasmtime::OptLevel::None
    });
    let invalid = |e: wasmtime::Error| StartError::InvalidModule {
        message: format!("{e:#}"),
    };
    let engine = Engine::new(&config).map_err(invalid)?;
    let module = Module::new(&engine, wasm).map_err(invalid)?;
    if cache.len() >= COMPILED_CACHE_SIZE {
        cache.remove(0);
    }
    cache.push((wasm.to_vec(), optimize, engine.clone(), module.clone()));
    Ok((engine, module))
}

/// Handle of one HTTP stream started with `Envoy::start_request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(u64);

/// The state of a stream between callbacks.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    /// `proxy_on_request_headers` or `proxy_on_request_body` paused the request;
    /// `body_pending` means the body has not been delivered yet.
    RequestPaused { body_pending: bool },
    /// The request phase is over (see `StreamRecord::outcome`).
    RequestDone,
    /// The response phase paused; `local_details` is set when the response is a local reply.
    ResponsePaused {
        body_pending: bool,
        local_details: Option<String>,
    },
    /// The response phase is over (see `StreamRecord::response`).
    ResponseDone,
}

struct StreamRecord {
    worker: usize,
    /// Context id in the worker's VM; 0 if the stream never reached a VM.
    context: u32,
    phase: Phase,
    outcome: Option<Outcome>,
    /// Result of the response phase: `Some(None)` means the filter reset the stream.
    response: Option<Option<Response>>,
    local_reply_started: bool,
}

/// An Envoy stand-in running a proxy-wasm filter on `workers` VMs.
///
/// All VMs run on the caller's thread; only callouts run on background threads. Nothing
/// happens between calls: callout responses, ticks and queue notifications are delivered
/// by `poll`, `advance`, `run_until_idle`, `wait` and `send`.
pub struct Envoy {
    vms: Vec<Vm>,
    shared: Arc<Shared>,
    callout_results: mpsc::Receiver<CalloutDone>,
    streams: BTreeMap<RequestId, StreamRecord>,
    by_context: BTreeMap<(usize, u32), RequestId>,
    next_request_id: u64,
    pump_limit: Duration,
}

impl Envoy {
    /// Compiles the module, checks its imports and exports, and starts one VM per worker:
    /// `_initialize` (or `_start`), `proxy_on_context_create(root, 0)`,
    /// `proxy_on_vm_start(root, vm_config_size)` and
    /// `proxy_on_configure(root, plugin_config_size)`.
    ///
    /// # Errors
    ///
    /// Returns a `StartError` naming the first problem: a forbidden import, a missing
    /// export, an unsupported ABI version, a trap, or a callback that returned false.
    pub fn start(options: HostOptions) -> Result<Envoy, StartError> {
        if options.workers == 0 {
            return Err(StartError::NoWorkers);
        }
        for (cluster, address) in &options.clusters {
            if !address.ip().is_loopback() {
                return Err(StartError::ClusterNotLoopback {
                    cluster: cluster.clone(),
                    address: *address,
                });
            }
        }
        let (engine, module) = compile(&options.wasm, options.optimize_guest)?;
        let abi = vm::abi_version(&module)?;
        vm::check_imports(&module, abi)?;

        let callout_faults = options.callout_faults;
        let (sender, receiver) = mpsc::channel();
        let shared = Arc::new(Shared::new(
            SharedOptions {
                root_id: options.root_id,
                plugin_name: options.plugin_name,
                vm_id: options.vm_id,
                plugin_config: options.plugin_config,
                vm_config: options.vm_config,
                clusters: options.clusters,
                log_level: options.log_level,
                time_host_calls: options.time_host_calls,
            },
            options.clock,
            RandomSource::new(options.random_seed),
            sender,
        ));
        lock(&shared.state).callout_faults = callout_faults;
        let mut vms = Vec::with_capacity(options.workers);
        for worker in 0..options.workers {
            let mut vm = Vm::instantiate(&engine, &module, abi, worker, shared.clone())?;
            vm.start_root()?;
            vms.push(vm);
        }
        Ok(Envoy {
            vms,
            shared,
            callout_results: receiver,
            streams: BTreeMap::new(),
            by_context: BTreeMap::new(),
            next_request_id: 1,
            pump_limit: options.pump_limit,
        })
    }

    /// Runs one request through the filter on `worker` and ends the stream.
    ///
    /// Calls `proxy_on_request_headers` (and `proxy_on_request_body` if there is a body);
    /// while the filter keeps the request paused, delivers callout responses, ticks and
    /// queue notifications until it continues, sends a local reply, or the pump limit passes. Then
    /// calls `proxy_on_log`, `proxy_on_done` and `proxy_on_delete`.
    pub fn send(&mut self, worker: usize, request: Request) -> Outcome {
        let id = self.start_request(worker, request);
        self.wait(id);
        self.finish(id).unwrap_or_else(|| Outcome::Trapped {
            message: "the stream disappeared".to_string(),
        })
    }

    /// Starts a request on `worker` and returns at once; the filter may leave it paused.
    /// Read the result with `outcome`, drive it with `poll`, `advance` or `wait`, and end
    /// the stream with `finish`.
    pub fn start_request(&mut self, worker: usize, request: Request) -> RequestId {
        let id = RequestId(self.next_request_id);
        self.next_request_id += 1;
        let mut record = StreamRecord {
            worker,
            context: 0,
            phase: Phase::RequestDone,
            outcome: None,
            response: None,
            local_reply_started: false,
        };
        let Some(vm) = self.vms.get_mut(worker) else {
            record.outcome = Some(Outcome::Trapped {
                message: format!(
                    "worker {worker} does not exist; this host has {} workers",
                    self.vms.len()
                ),
            });
            self.streams.insert(id, record);
            return id;
        };
        if let Some(failure) = &vm.failure {
            record.outcome = Some(Outcome::Trapped {
                message: failure.clone(),
            });
            self.streams.insert(id, record);
            return id;
        }

        let state = vm.store.data_mut();
        let context = state.next_context_id;
        state.next_context_id += 1;
        let root = state.root_context_id;
        let headers = HeaderMap::from_pairs(request.headers.iter().map(|(k, v)| (k, v)));
        let header_count = len_arg(headers.len());
        let end_of_stream = i32::from(request.body.is_empty());
        state.streams.insert(
            context,
            Stream {
                request_headers: headers,
                request_headers_live: true,
                request_body: request.body,
                ..Stream::default()
            },
        );
        record.context = context;
        self.streams.insert(id, record);
        self.by_context.insert((worker, context), id);

        let create = vm.callbacks.on_context_create.clone();
        let created = vm.call(
            "proxy_on_context_create",
            context,
            create,
            (context as i32, root as i32),
        );
        self.after_callback(worker, created.actions);
        if self.decided(id) {
            return id;
        }
        let Some(vm) = self.vms.get_mut(worker) else {
            return id;
        };
        let on_headers = vm.callbacks.on_request_headers.clone();
        let called = vm.call(
            "proxy_on_request_headers",
            context,
            on_headers,
            (context as i32, header_count, end_of_stream),
        );
        self.after_request_callback(id, called, true);
        id
    }

    /// Returns the request-phase outcome, or `None` while the filter keeps the request
    /// paused.
    pub fn outcome(&self, id: RequestId) -> Option<Outcome> {
        self.streams.get(&id).and_then(|r| r.outcome.clone())
    }

    /// Pumps events until the request is decided or the pump limit passes, then returns the
    /// outcome (`TimedOut` in the second case). The stream stays open.
    pub fn wait(&mut self, id: RequestId) -> Outcome {
        let started = Instant::now();
        loop {
            if let Some(outcome) = self.outcome(id) {
                return outcome;
            }
            let Some(record) = self.streams.get_mut(&id) else {
                return Outcome::TimedOut;
            };
            let elapsed = started.elapsed();
            if elapsed >= self.pump_limit {
                record.outcome = Some(Outcome::TimedOut);
                return Outcome::TimedOut;
            }
            self.poll((self.pump_limit - elapsed).min(Duration::from_millis(20)));
        }
    }

    /// Passes an upstream response through the filter (`proxy_on_response_headers`, then
    /// `proxy_on_response_body` if there is a body) for a forwarded request, pumping events
    /// while the filter pauses it. Returns the response as the filter left it (or its local
    /// reply), or `None` if the filter reset the stream or the pump limit passed.
    pub fn respond(&mut self, id: RequestId, response: Response) -> Option<Response> {
        let record = self.streams.get(&id)?;
        if !matches!(record.outcome, Some(Outcome::Forwarded { .. })) || record.response.is_some() {
            return None;
        }
        let mut headers = HeaderMap::from_pairs([(":status", response.status.to_string())]);
        for (name, value) in &response.headers {
            headers.add(name, value);
        }
        self.run_response(id, headers, response.body, None);
        let started = Instant::now();
        while self.streams.get(&id).is_some_and(|r| r.response.is_none()) {
            let elapsed = started.elapsed();
            if elapsed >= self.pump_limit {
                return None;
            }
            self.poll((self.pump_limit - elapsed).min(Duration::from_millis(20)));
        }
        self.streams
            .get(&id)
            .and_then(|r| r.response.clone())
            .flatten()
    }

    /// Ends the stream: `proxy_on_log` (with the final headers readable), then
    /// `proxy_on_done` and `proxy_on_delete`, in the order current Envoy calls them (its
    /// access log runs before the filter's `onDestroy`). Returns the request outcome.
    pub fn finish(&mut self, id: RequestId) -> Option<Outcome> {
        let record = self.streams.remove(&id)?;
        self.by_context.remove(&(record.worker, record.context));
        if record.context == 0 {
            return record.outcome;
        }
        let Some(vm) = self.vms.get_mut(record.worker) else {
            return record.outcome;
        };
        let context = record.context;
        if let Some(stream) = vm.store.data_mut().streams.get_mut(&context) {
            stream.access_log_phase = true;
            stream.request_headers_live = false;
            stream.request_body_live = false;
            stream.response_headers_live = false;
            stream.response_body_live = false;
        }
        let on_log = vm.callbacks.on_log.clone();
        vm.call("proxy_on_log", context, on_log, context as i32);
        if let Some(stream) = vm.store.data_mut().streams.get_mut(&context) {
            stream.access_log_phase = false;
        }
        let on_done = vm.callbacks.on_done.clone();
        vm.call("proxy_on_done", context, on_done, context as i32);
        let on_delete = vm.callbacks.on_delete.clone();
        vm.call("proxy_on_delete", context, on_delete, context as i32);
        vm.store.data_mut().streams.remove(&context);
        self.fail_streams();
        record.outcome
    }

    /// Delivers everything that is due: queue notifications, ticks and callout timeouts by
    /// the host clock, and finished callouts. Waits up to `max_wait` (real time) for a
    /// callout to finish if nothing else was delivered. Returns whether anything was
    /// delivered.
    pub fn poll(&mut self, max_wait: Duration) -> bool {
        let mut delivered = self.deliver_queue_events();
        let now = self.shared.clock.elapsed();
        delivered |= self.deliver_due(now);
        while let Ok(done) = self.callout_results.try_recv() {
            delivered |= self.deliver_callout(done);
        }
        if delivered || max_wait.is_zero() {
            return delivered;
        }
        let mut wait = max_wait;
        if let (false, Some(next)) = (self.shared.clock.is_manual(), self.next_due()) {
            wait = wait.min(next.saturating_sub(self.shared.clock.elapsed()));
        }
        match self.callout_results.recv_timeout(wait) {
            Ok(done) => self.deliver_callout(done),
            Err(_) => {
                let now = self.shared.clock.elapsed();
                self.deliver_due(now)
            }
        }
    }

    /// Moves a manual clock forward by `step`, delivering ticks and callout timeouts at the
    /// times they fall due, and any callout responses that have arrived. With the system
    /// clock, pumps events for `step` of real time instead.
    pub fn advance(&mut self, step: Duration) {
        if !self.shared.clock.is_manual() {
            let started = Instant::now();
            while started.elapsed() < step {
                let remaining = step.saturating_sub(started.elapsed());
                self.poll(remaining.min(Duration::from_millis(20)));
            }
            return;
        }
        let target = self.shared.clock.elapsed() + step;
        loop {
            self.poll(Duration::ZERO);
            match self.next_due() {
                Some(due) if due <= target => {
                    self.shared.clock.set_manual(due);
                    self.deliver_due(due);
                }
                _ => break,
            }
        }
        self.shared.clock.set_manual(target);
        self.poll(Duration::ZERO);
    }

    /// Pumps events until no callout waits for its server and no queue notification is
    /// waiting, or `max` of real time passes. A callout whose response is known but held
    /// for the host clock (`CalloutFault::Delay`, or an injected response not delivered
    /// yet) does not count, because only `advance` or `poll` can deliver it. Ticks are
    /// delivered meanwhile only with the system clock.
    pub fn run_until_idle(&mut self, max: Duration) {
        let started = Instant::now();
        loop {
            self.poll(Duration::ZERO);
            let pending = self.vms.iter().any(|vm| {
                vm.failure.is_none()
                    && vm
                        .store
                        .data()
                        .pending_callouts
                        .values()
                        .any(|p| p.held.is_none())
            });
            let queued = !lock(&self.shared.state).queue_events.is_empty();
            if !pending && !queued {
                return;
            }
            let elapsed = started.elapsed();
            if elapsed >= max {
                return;
            }
            self.poll((max - elapsed).min(Duration::from_millis(20)));
        }
    }

    /// Returns every recorded log line.
    pub fn logs(&self) -> Vec<LogRecord> {
        lock(&self.shared.state).logs.clone()
    }

    /// Removes and returns the recorded log lines.
    pub fn drain_logs(&mut self) -> Vec<LogRecord> {
        std::mem::take(&mut lock(&self.shared.state).logs)
    }

    /// Counters and gauges by name, summed over all workers as Envoy's stats store does.
    pub fn metrics(&self) -> BTreeMap<String, u64> {
        lock(&self.shared.state)
            .metrics
            .iter()
            .filter(|((kind, _), _)| *kind != MetricKind::Histogram)
            .map(|((_, name), metric)| (name.clone(), metric.value))
            .collect()
    }

    /// Histogram samples by name, in recording order, across all workers.
    pub fn histograms(&self) -> BTreeMap<String, Vec<u64>> {
        lock(&self.shared.state)
            .metrics
            .iter()
            .filter(|((kind, _), _)| *kind == MetricKind::Histogram)
            .map(|((_, name), metric)| (name.clone(), metric.samples.clone()))
            .collect()
    }

    /// Returns a shared-data value and its compare-and-swap number.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        lock(&self.shared.state)
            .data
            .get(key)
            .map(|v| (v.value.clone(), v.cas))
    }

    /// Size of the worker's guest linear memory in bytes (0 for an unknown worker).
    pub fn memory_bytes(&self, worker: usize) -> usize {
        self.vms
            .get(worker)
            .map(Vm::memory_bytes)
            .unwrap_or_default()
    }

    /// Returns every callout the filter made, in order.
    pub fn callouts(&self) -> Vec<CalloutRecord> {
        lock(&self.shared.state).callouts.clone()
    }

    /// Why the worker's VM failed, if it did.
    pub fn failure(&self, worker: usize) -> Option<String> {
        self.vms.get(worker).and_then(|vm| vm.failure.clone())
    }

    /// Number of workers (VMs).
    pub fn workers(&self) -> usize {
        self.vms.len()
    }

    /// Host clock time since start: manual time, or real time.
    pub fn now(&self) -> Duration {
        self.shared.clock.elapsed()
    }

    /// Returns the wall time the guest reads now, in seconds since the Unix epoch.
    pub fn wall_seconds(&self) -> u64 {
        self.shared.clock.wall_nanos() / 1_000_000_000
    }

    fn decided(&self, id: RequestId) -> bool {
        self.streams.get(&id).is_none_or(|r| r.outcome.is_some())
    }

    fn set_outcome(&mut self, id: RequestId, outcome: Outcome) {
        if let Some(record) = self.streams.get_mut(&id)
            && record.outcome.is_none()
        {
            record.outcome = Some(outcome);
        }
    }

    fn stream_mut(&mut self, id: RequestId) -> Option<&mut Stream> {
        let record = self.streams.get(&id)?;
        self.vms
            .get_mut(record.worker)?
            .store
            .data_mut()
            .streams
            .get_mut(&record.context)
    }

    /// Handles the return of `proxy_on_request_headers` (`headers` true) or
    /// `proxy_on_request_body`.
    fn after_request_callback(&mut self, id: RequestId, called: Called<i32>, headers: bool) {
        // A missing callback continues; StopIteration and every other non-zero value
        // pause (ABI 0.2 turns StopIteration on headers into StopAllIterationAndWatermark).
        let stop = called.stop || called.value.unwrap_or(0) != 0;
        let Some(worker) = self.streams.get(&id).map(|r| r.worker) else {
            return;
        };
        self.after_callback(worker, called.actions);
        if self.decided(id) {
            return;
        }
        let has_body = self
            .stream_mut(id)
            .is_some_and(|s| !s.request_body.is_empty());
        if stop {
            if let Some(record) = self.streams.get_mut(&id) {
                record.phase = Phase::RequestPaused {
                    body_pending: headers && has_body,
                };
            }
            return;
        }
        if let Some(stream) = self.stream_mut(id) {
            stream.request_headers_live = false;
            stream.request_body_live = false;
        }
        if headers && has_body {
            self.deliver_request_body(id);
        } else {
            self.forward(id);
        }
    }

    fn deliver_request_body(&mut self, id: RequestId) {
        let Some(record) = self.streams.get_mut(&id) else {
            return;
        };
        record.phase = Phase::RequestDone;
        let (worker, context) = (record.worker, record.context);
        let Some(stream) = self.stream_mut(id) else {
            return;
        };
        stream.request_body_live = true;
        let body_len = len_arg(stream.request_body.len());
        let Some(vm) = self.vms.get_mut(worker) else {
            return;
        };
        let on_body = vm.callbacks.on_request_body.clone();
        let called = vm.call(
            "proxy_on_request_body",
            context,
            on_body,
            (context as i32, body_len, 1),
        );
        self.after_request_callback(id, called, false);
    }

    fn forward(&mut self, id: RequestId) {
        let Some(stream) = self.stream_mut(id) else {
            return;
        };
        let outcome = Outcome::Forwarded {
            headers: stream.request_headers.pairs().to_vec(),
            body: stream.request_body.clone(),
        };
        if let Some(record) = self.streams.get_mut(&id) {
            record.phase = Phase::RequestDone;
        }
        self.set_outcome(id, outcome);
    }

    /// Applies deferred actions and fails the streams of failed VMs.
    fn after_callback(&mut self, worker: usize, actions: Vec<Action>) {
        for action in actions {
            let context = match &action {
                Action::ContinueRequest { context }
                | Action::ContinueResponse { context }
                | Action::CloseStream { context }
                | Action::LocalReply { context, .. } => *context,
            };
            let Some(id) = self.by_context.get(&(worker, context)).copied() else {
                continue;
            };
            match action {
                Action::ContinueRequest { .. } => self.continue_request(id),
                Action::ContinueResponse { .. } => self.continue_response(id),
                Action::CloseStream { .. } => self.reset(id),
                Action::LocalReply { reply, .. } => self.local_reply(id, reply),
            }
        }
        self.fail_streams();
    }

    /// Ends every undecided stream of a failed VM with `Outcome::Trapped`.
    fn fail_streams(&mut self) {
        for record in self.streams.values_mut() {
            let Some(failure) = self
                .vms
                .get(record.worker)
                .and_then(|vm| vm.failure.as_ref())
            else {
                continue;
            };
            if record.outcome.is_none() {
                record.outcome = Some(Outcome::Trapped {
                    message: failure.clone(),
                });
            } else if record.response.is_none()
                && matches!(record.phase, Phase::ResponsePaused { .. })
            {
                // Envoy's failStream sends a local reply 503 when the response has not started.
                record.response = Some(Some(Response {
                    status: 503,
                    headers: Vec::new(),
                    body: Vec::new(),
                }));
            }
        }
    }

    /// `proxy_continue_stream(HttpRequest)` for a paused request; Envoy ignores a
    /// continue for a request that is not paused or already has a local reply.
    fn continue_request(&mut self, id: RequestId) {
        let Some(record) = self.streams.get(&id) else {
            return;
        };
        if record.outcome.is_some() {
            return;
        }
        match record.phase {
            Phase::RequestPaused { body_pending: true } => self.deliver_request_body(id),
            Phase::RequestPaused {
                body_pending: false,
            } => self.forward(id),
            _ => {}
        }
    }

    fn continue_response(&mut self, id: RequestId) {
        let Some(record) = self.streams.get(&id) else {
            return;
        };
        if let Phase::ResponsePaused {
            body_pending,
            local_details,
        } = record.phase.clone()
        {
            if body_pending {
                self.deliver_response_body(id, local_details);
            } else {
                self.complete_response(id, local_details);
            }
        }
    }

    fn reset(&mut self, id: RequestId) {
        let Some(record) = self.streams.get_mut(&id) else {
            return;
        };
        if record.outcome.is_none() {
            record.outcome = Some(Outcome::Reset);
        } else if record.response.is_none() {
            record.response = Some(None);
        }
        record.phase = Phase::ResponseDone;
    }

    /// Sends a local reply as Envoy's `Utility::sendLocalReply` builds it, then passes it
    /// through the filter's response callbacks, as Envoy encodes local replies through the
    /// whole filter chain.
    fn local_reply(&mut self, id: RequestId, reply: LocalReplyRequest) {
        let Some(record) = self.streams.get_mut(&id) else {
            return;
        };
        let in_request_phase = record.outcome.is_none();
        let in_response_phase =
            matches!(record.outcome, Some(Outcome::Forwarded { .. })) && record.response.is_none();
        if record.local_reply_started || !(in_request_phase || in_response_phase) {
            return;
        }
        record.local_reply_started = true;

        let mut headers = HeaderMap::from_pairs([(":status", reply.status.to_string())]);
        for (name, value) in &reply.headers {
            headers.add(name, value);
        }
        if reply.body.is_empty() {
            headers.remove("content-length");
            headers.remove("content-type");
        } else {
            headers.set("content-length", &reply.body.len().to_string());
            if headers.get("content-type").is_none() {
                headers.set("content-type", "text/plain");
            }
        }
        // NOTE: for gRPC requests Envoy turns a local reply into a trailers-only response
        // with grpc-status (from `grpc_status` when it is 0..=16); this host does not.
        let _ = reply.grpc_status;
        let details: String = reply
            .details
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        let local_details = in_request_phase.then_some(details);
        self.run_response(id, headers, reply.body, local_details);
    }

    /// Runs the response callbacks; `local_details` is set for a local reply sent in the
    /// request phase, whose result becomes the request outcome.
    fn run_response(
        &mut self,
        id: RequestId,
        headers: HeaderMap,
        body: Vec<u8>,
        local_details: Option<String>,
    ) {
        let Some(record) = self.streams.get(&id) else {
            return;
        };
        let (worker, context) = (record.worker, record.context);
        let has_body = !body.is_empty();
        let header_count = len_arg(headers.len());
        let Some(stream) = self.stream_mut(id) else {
            return;
        };
        stream.response_headers = headers;
        stream.response_headers_live = true;
        stream.has_response = true;
        stream.response_body = body;
        let Some(vm) = self.vms.get_mut(worker) else {
            return;
        };
        let on_headers = vm.callbacks.on_response_headers.clone();
        let called = vm.call(
            "proxy_on_response_headers",
            context,
            on_headers,
            (context as i32, header_count, i32::from(!has_body)),
        );
        self.after_response_callback(id, called, has_body, local_details);
    }

    fn after_response_callback(
        &mut self,
        id: RequestId,
        called: Called<i32>,
        body_pending: bool,
        local_details: Option<String>,
    ) {
        let stop = called.stop || called.value.unwrap_or(0) != 0;
        let Some(worker) = self.streams.get(&id).map(|r| r.worker) else {
            return;
        };
        self.after_callback(worker, called.actions);
        if let Some(failure) = self.vms.get(worker).and_then(|vm| vm.failure.clone()) {
            if local_details.is_some() {
                self.set_outcome(id, Outcome::Trapped { message: failure });
            }
            return;
        }
        let finished = self.streams.get(&id).is_none_or(|r| {
            r.response.is_some() || (local_details.is_some() && r.outcome.is_some())
        });
        if finished {
            return;
        }
        if stop {
            if let Some(record) = self.streams.get_mut(&id) {
                record.phase = Phase::ResponsePaused {
                    body_pending,
                    local_details,
                };
            }
            return;
        }
        if let Some(stream) = self.stream_mut(id) {
            stream.response_headers_live = false;
        }
        if body_pending {
            self.deliver_response_body(id, local_details);
        } else {
            self.complete_response(id, local_details);
        }
    }

    fn deliver_response_body(&mut self, id: RequestId, local_details: Option<String>) {
        let Some(record) = self.streams.get_mut(&id) else {
            return;
        };
        record.phase = Phase::ResponseDone;
        let (worker, context) = (record.worker, record.context);
        let Some(stream) = self.stream_mut(id) else {
            return;
        };
        stream.response_headers_live = false;
        stream.response_body_live = true;
        let body_len = len_arg(stream.response_body.len());
        let Some(vm) = self.vms.get_mut(worker) else {
            return;
        };
        let on_body = vm.callbacks.on_response_body.clone();
        let called = vm.call(
            "proxy_on_response_body",
            context,
            on_body,
            (context as i32, body_len, 1),
        );
        self.after_response_callback(id, called, false, local_details);
    }

    fn complete_response(&mut self, id: RequestId, local_details: Option<String>) {
        let Some(stream) = self.stream_mut(id) else {
            return;
        };
        stream.response_headers_live = false;
        stream.response_body_live = false;
        let status = stream
            .response_headers
            .get(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = stream
            .response_headers
            .pairs()
            .iter()
            .filter(|(k, _)| k != ":status")
            .cloned()
            .collect();
        let body = stream.response_body.clone();
        let Some(record) = self.streams.get_mut(&id) else {
            return;
        };
        record.phase = Phase::ResponseDone;
        match local_details {
            Some(details) => {
                record.outcome = Some(Outcome::LocalReply {
                    status,
                    headers,
                    body,
                    details,
                });
            }
            None => {
                record.response = Some(Some(Response {
                    status,
                    headers,
                    body,
                }));
            }
        }
    }

    fn deliver_queue_events(&mut self) -> bool {
        let events: Vec<_> = lock(&self.shared.state).queue_events.drain(..).collect();
        let delivered = !events.is_empty();
        for event in events {
            let Some(vm) = self.vms.get_mut(event.worker) else {
                continue;
            };
            let on_ready = vm.callbacks.on_queue_ready.clone();
            let called = vm.call(
                "proxy_on_queue_ready",
                event.context_id,
                on_ready,
                (event.context_id as i32, event.token as i32),
            );
            self.after_callback(event.worker, called.actions);
        }
        delivered
    }

    /// Earliest time at which a tick or a callout timeout falls due.
    fn next_due(&self) -> Option<Duration> {
        self.vms
            .iter()
            .filter(|vm| vm.failure.is_none())
            .flat_map(|vm| {
                let state = vm.store.data();
                let tick = state.tick.map(|t| t.next_due);
                let deadlines = state.pending_callouts.values().filter_map(|p| p.deadline);
                let held = state
                    .pending_callouts
                    .values()
                    .filter(|p| p.held.is_some())
                    .map(|p| p.ready_at);
                tick.into_iter().chain(deadlines).chain(held)
            })
            .min()
    }

    /// Delivers the ticks and callout timeouts due at `now`.
    fn deliver_due(&mut self, now: Duration) -> bool {
        let mut delivered = false;
        for worker in 0..self.vms.len() {
            let Some(vm) = self.vms.get_mut(worker) else {
                continue;
            };
            // A callout ends at its deadline (504) or, if its response is known and due
            // earlier, with that response.
            let due: Vec<(u32, bool)> = vm
                .store
                .data()
                .pending_callouts
                .iter()
                .filter_map(|(token, p)| {
                    let timed_out = p.deadline.is_some_and(|d| {
                        d <= now && (p.held.is_none() || d < p.ready_at)
                    });
                    let ready = p.held.is_some() && p.ready_at <= now;
                    (timed_out || ready).then_some((*token, timed_out))
                })
                .collect();
            for (token, timed_out) in due {
                let Some(pending) = self
                    .vms
                    .get_mut(worker)
                    .and_then(|vm| vm.store.data_mut().pending_callouts.remove(&token))
                else {
                    continue;
                };
                let response = if timed_out {
                    Some(router_reply(504, TIMEOUT_BODY))
                } else {
                    pending.held.flatten()
                };
                self.call_http_response(worker, token, response);
                delivered = true;
            }

            let Some(vm) = self.vms.get_mut(worker) else {
                continue;
            };
            let state = vm.store.data();
            let Some(tick) = state.tick.filter(|t| t.next_due <= now) else {
                continue;
            };
            if vm.failure.is_some() {
                continue;
            }
            let root = state.root_context_id;
            let on_tick = vm.callbacks.on_tick.clone();
            let called = vm.call("proxy_on_tick", root, on_tick, root as i32);
            // Envoy re-arms the timer after the tick, from the current time, unless the
            // tick set a new period (which re-armed it already).
            let state = vm.store.data_mut();
            if state.tick == Some(tick) {
                state.tick = Some(crate::state::Tick {
                    period: tick.period,
                    next_due: now + tick.period,
                });
            }
            self.after_callback(worker, called.actions);
            delivered = true;
        }
        delivered
    }

    fn deliver_callout(&mut self, done: CalloutDone) -> bool {
        let now = self.shared.clock.elapsed();
        let Some(vm) = self.vms.get_mut(done.worker) else {
            return false;
        };
        let pending = &mut vm.store.data_mut().pending_callouts;
        let Some(callout) = pending.get_mut(&done.token) else {
            // The timeout already completed this callout.
            return false;
        };
        if callout.ready_at > now {
            // `CalloutFault::Delay`: hold the response until the host clock reaches it.
            callout.held = Some(done.response);
            return false;
        }
        pending.remove(&done.token);
        self.call_http_response(done.worker, done.token, done.response);
        true
    }

    /// Injects `fault` into every later callout to `cluster`; `None` removes it.
    pub fn set_callout_fault(&mut self, cluster: &str, fault: Option<CalloutFault>) {
        let mut state = lock(&self.shared.state);
        match fault {
            Some(fault) => state.callout_faults.insert(cluster.to_string(), fault),
            None => state.callout_faults.remove(cluster),
        };
    }

    /// Time spent inside the worker's guest callbacks since start, host calls made by the
    /// guest included.
    pub fn guest_time(&self, worker: usize) -> Duration {
        self.vms
            .get(worker)
            .map(|vm| vm.guest_time)
            .unwrap_or_default()
    }

    /// Time spent inside the host calls of the worker's guest since start, without the
    /// guest allocator run from inside them. It stays zero unless
    /// [`HostOptions::time_host_calls`](crate::HostOptions::time_host_calls) is set.
    /// [`Envoy::guest_time`] minus this time is the time of the guest's own code.
    pub fn host_call_time(&self, worker: usize) -> Duration {
        self.vms
            .get(worker)
            .map(|vm| vm.store.data().host_calls.host_only())
            .unwrap_or_default()
    }

    /// Calls `proxy_on_http_call_response` on the root context, which owns every callout in
    /// Envoy. `None` is a failure: no headers, no body, and `proxy_get_status` returns
    /// `BrokenConnection` with message "reset" during the call.
    fn call_http_response(&mut self, worker: usize, token: u32, response: Option<HttpResponse>) {
        let Some(vm) = self.vms.get_mut(worker) else {
            return;
        };
        let state = vm.store.data_mut();
        let root = state.root_context_id;
        let (header_count, body_len) = match &response {
            Some(response) => {
                let headers = callout::response_pairs(response);
                let counts = (len_arg(headers.len()), len_arg(response.body.len()));
                state.call_response = Some(CallResponse {
                    headers,
                    body: response.body.clone(),
                });
                counts
            }
            None => {
                state.status = (Status::BrokenConnection.code() as u32, "reset".to_string());
                (0, 0)
            }
        };
        let on_response = vm.callbacks.on_http_call_response.clone();
        let called = vm.call(
            "proxy_on_http_call_response",
            root,
            on_response,
            (root as i32, token as i32, header_count, body_len, 0),
        );
        let state = vm.store.data_mut();
        state.call_response = None;
        state.status.1.clear();
        self.after_callback(worker, called.actions);
    }
}
