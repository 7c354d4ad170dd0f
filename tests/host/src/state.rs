//! State shared by all VMs (shared data, queues, metrics, logs, clock) and the state of one
//! VM's contexts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wasmtime::{Memory, TypedFunc};

use crate::abi::MetricKind;
use crate::headers::HeaderMap;
use crate::http::HttpResponse;
use crate::options::{CalloutFault, CalloutRecord, Clock, LogLevel, LogRecord};

/// Locks a mutex, taking the data even if another thread panicked while holding it.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The host's clock: real time, or manual time moved by `Envoy::advance`.
pub(crate) struct HostClock {
    start: Instant,
    start_wall: SystemTime,
    manual: Option<Mutex<Duration>>,
}

impl HostClock {
    pub(crate) fn new(clock: Clock) -> HostClock {
        match clock {
            Clock::System => HostClock {
                start: Instant::now(),
                start_wall: SystemTime::now(),
                manual: None,
            },
            Clock::Manual(start_wall) => HostClock {
                start: Instant::now(),
                start_wall,
                manual: Some(Mutex::new(Duration::ZERO)),
            },
        }
    }

    pub(crate) fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Time since the host started, on this clock.
    pub(crate) fn elapsed(&self) -> Duration {
        match &self.manual {
            Some(offset) => *lock(offset),
            None => self.start.elapsed(),
        }
    }

    /// Moves manual time forward to `to`; real time is left alone.
    pub(crate) fn set_manual(&self, to: Duration) {
        if let Some(offset) = &self.manual {
            let mut offset = lock(offset);
            if to > *offset {
                *offset = to;
            }
        }
    }

    /// Wall time in nanoseconds since the Unix epoch.
    pub(crate) fn wall_nanos(&self) -> u64 {
        let wall = match &self.manual {
            Some(_) => self.start_wall + self.elapsed(),
            None => SystemTime::now(),
        };
        let since_epoch = wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Monotonic time in nanoseconds, counted from the host start.
    pub(crate) fn monotonic_nanos(&self) -> u64 {
        u64::try_from(self.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// Options every VM reads.
pub(crate) struct SharedOptions {
    pub root_id: String,
    pub plugin_name: String,
    pub vm_id: String,
    pub plugin_config: Vec<u8>,
    pub vm_config: Vec<u8>,
    pub clusters: BTreeMap<String, SocketAddr>,
    pub log_level: LogLevel,
    pub time_host_calls: bool,
}

/// Source of the bytes of `random_get`: the operating system, or a SplitMix64 sequence
/// that all VMs share. SplitMix64 is predictable, so it suits repeatable tests only.
pub(crate) enum RandomSource {
    System,
    Seeded(Mutex<u64>),
}

impl RandomSource {
    pub(crate) fn new(seed: Option<u64>) -> RandomSource {
        seed.map_or(RandomSource::System, |seed| RandomSource::Seeded(Mutex::new(seed)))
    }

    /// Fills `bytes`. Returns false when the operating system's source cannot be read.
    pub(crate) fn fill(&self, bytes: &mut [u8]) -> bool {
        match self {
            RandomSource::System => File::open("/dev/urandom").and_then(|mut file| file.read_exact(bytes)).is_ok(),
            RandomSource::Seeded(state) => {
                let mut state = lock(state);
                for chunk in bytes.chunks_mut(8) {
                    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let mut z = *state;
                    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                    z ^= z >> 31;
                    chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
                }
                true
            }
        }
    }
}

/// A value stored with `proxy_set_shared_data`, and its compare-and-swap number.
pub(crate) struct SharedValue {
    pub value: Vec<u8>,
    pub cas: u32,
}

/// A shared queue. Envoy delivers `proxy_on_queue_ready` to the context that registered
/// the queue last (cpp-host `SharedQueue::registerQueue` overwrites the target).
pub(crate) struct Queue {
    pub items: VecDeque<Vec<u8>>,
    pub worker: usize,
    pub context_id: u32,
}

/// A metric: counters and gauges keep a value, histograms keep every recorded sample.
#[derive(Default)]
pub(crate) struct Metric {
    pub value: u64,
    pub samples: Vec<u64>,
}

/// Mutable state shared by all VMs.
pub(crate) struct SharedState {
    /// Shared data by key, scoped to the single `vm_id` of this host.
    pub data: HashMap<String, SharedValue>,
    pub next_cas: u32,
    pub queue_tokens: HashMap<(String, String), u32>,
    pub queues: BTreeMap<u32, Queue>,
    pub next_queue_token: u32,
    pub metrics: BTreeMap<(MetricKind, String), Metric>,
    pub logs: Vec<LogRecord>,
    pub callouts: Vec<CalloutRecord>,
    /// Faults injected into callouts, by cluster.
    pub callout_faults: BTreeMap<String, CalloutFault>,
    /// `proxy_on_queue_ready` deliveries waiting for the event loop.
    pub queue_events: VecDeque<QueueEvent>,
}

impl SharedState {
    /// Returns the next compare-and-swap number; 0 is skipped because it means
    /// "unconditional" (cpp-host `SharedData::nextCas`).
    pub(crate) fn next_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }
}

/// A pending `proxy_on_queue_ready` call.
pub(crate) struct QueueEvent {
    pub worker: usize,
    pub context_id: u32,
    pub token: u32,
}

/// Everything all VMs share.
pub(crate) struct Shared {
    pub options: SharedOptions,
    pub clock: HostClock,
    pub random: RandomSource,
    pub state: Mutex<SharedState>,
    /// Callout threads send their results here.
    pub callout_results: Mutex<mpsc::Sender<CalloutDone>>,
}

impl Shared {
    pub(crate) fn new(
        options: SharedOptions,
        clock: Clock,
        random: RandomSource,
        callout_results: mpsc::Sender<CalloutDone>,
    ) -> Shared {
        Shared {
            options,
            clock: HostClock::new(clock),
            random,
            state: Mutex::new(SharedState {
                data: HashMap::new(),
                next_cas: 1,
                queue_tokens: HashMap::new(),
                queues: BTreeMap::new(),
                next_queue_token: 1,
                metrics: BTreeMap::new(),
                logs: Vec::new(),
                callouts: Vec::new(),
                callout_faults: BTreeMap::new(),
                queue_events: VecDeque::new(),
            }),
            callout_results: Mutex::new(callout_results),
        }
    }

    /// Records a log line if `level` is at or above the configured level.
    pub(crate) fn log(&self, worker: usize, level: LogLevel, message: String) {
        if level >= self.options.log_level {
            lock(&self.state).logs.push(LogRecord {
                level,
                worker,
                message,
            });
        }
    }
}

/// The result of a finished callout, sent from its thread to the event loop.
pub(crate) struct CalloutDone {
    pub worker: usize,
    pub token: u32,
    /// `None` when the stream was reset after the response started; Envoy then calls
    /// `proxy_on_http_call_response` with no headers.
    pub response: Option<HttpResponse>,
}

/// A `proxy_send_local_response` call, applied after the guest returns.
#[derive(Clone, Debug)]
pub(crate) struct LocalReplyRequest {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
    pub grpc_status: i32,
}

/// Work the guest asked for during a callback; Envoy defers these until the callback
/// returns (`addAfterVmCallAction` in Envoy's `context.cc`).
#[derive(Clone, Debug)]
pub(crate) enum Action {
    ContinueRequest {
        context: u32,
    },
    ContinueResponse {
        context: u32,
    },
    CloseStream {
        context: u32,
    },
    LocalReply {
        context: u32,
        reply: LocalReplyRequest,
    },
}

/// One HTTP stream's data as the guest reads and writes it.
///
/// The `*_live` flags mirror Envoy's pointers (`request_headers_`, `request_body_buffer_`,
/// ...), which are set while a callback runs or while the stream is paused from it, and
/// cleared when the filter continues.
#[derive(Default)]
pub(crate) struct Stream {
    pub request_headers: HeaderMap,
    pub request_headers_live: bool,
    pub request_body: Vec<u8>,
    pub request_body_live: bool,
    pub response_headers: HeaderMap,
    pub response_headers_live: bool,
    pub has_response: bool,
    pub response_body: Vec<u8>,
    pub response_body_live: bool,
    /// True during `proxy_on_log`, when the final headers are readable but not writable.
    pub access_log_phase: bool,
    /// Values set with `proxy_set_property`, by raw path.
    pub filter_state: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// The response of a callout while `proxy_on_http_call_response` runs.
pub(crate) struct CallResponse {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A callout waiting for its response.
pub(crate) struct PendingCallout {
    /// Host clock time after which Envoy's router replies 504; `None` for no timeout.
    pub deadline: Option<Duration>,
    /// Host clock time before which the response is not delivered (`CalloutFault::Delay`);
    /// the call time otherwise.
    pub ready_at: Duration,
    /// The response once known but not delivered yet: injected by a fault, or arrived
    /// before `ready_at`. `Some(None)` is a failure without headers.
    pub held: Option<Option<HttpResponse>>,
}

/// The tick timer of the root context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tick {
    pub period: Duration,
    pub next_due: Duration,
}

/// The state of one VM, stored in its wasmtime `Store`.
pub(crate) struct HostState {
    pub worker: usize,
    pub shared: Arc<Shared>,
    pub memory: Option<Memory>,
    pub allocator: Option<TypedFunc<i32, i32>>,
    /// While set, host calls not in the list trap (start-up and allocation).
    pub restricted: Option<&'static [&'static str]>,
    pub root_context_id: u32,
    pub next_context_id: u32,
    pub streams: BTreeMap<u32, Stream>,
    pub current_context: u32,
    pub effective_context: u32,
    /// True while `proxy_on_configure` runs, when the plugin configuration is readable.
    pub in_configure: bool,
    pub call_response: Option<CallResponse>,
    /// Status code and message returned by `proxy_get_status`.
    pub status: (u32, String),
    pub stop_next_iteration: bool,
    pub actions: Vec<Action>,
    pub next_http_call_id: u32,
    pub pending_callouts: BTreeMap<u32, PendingCallout>,
    pub tick: Option<Tick>,
    pub metric_ids: HashMap<u32, (MetricKind, String)>,
    pub next_metric_ids: [u32; 3],
    /// Host-call timing, kept only with [`crate::HostOptions::time_host_calls`].
    pub host_calls: HostCallTime,
}

/// Time spent in host calls, for telling the guest's own code apart from the stand-in's
/// implementation of the ABI.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HostCallTime {
    pub enabled: bool,
    /// Wall time of every timed host call, from entry to return.
    pub within_calls: Duration,
    /// Guest code run from inside a host call: the guest allocator, called while a value is
    /// copied into guest memory. It counts as guest time.
    pub nested_guest: Duration,
}

impl HostCallTime {
    /// Host-call time without the guest code they ran.
    pub(crate) fn host_only(&self) -> Duration {
        self.within_calls.saturating_sub(self.nested_guest)
    }
}

impl HostState {
    pub(crate) fn new(worker: usize, shared: Arc<Shared>) -> HostState {
        let host_calls = HostCallTime { enabled: shared.options.time_host_calls, ..HostCallTime::default() };
        HostState {
            worker,
            shared,
            memory: None,
            allocator: None,
            restricted: None,
            root_context_id: 1,
            next_context_id: 2,
            streams: BTreeMap::new(),
            current_context: 0,
            effective_context: 0,
            in_configure: false,
            call_response: None,
            status: (0, String::new()),
            stop_next_iteration: false,
            actions: Vec::new(),
            // Envoy numbers HTTP callouts 4, 8, 12, ...: the low two bits name the callout
            // type (cpp-host `WasmBase::nextHttpCallId`).
            next_http_call_id: 0,
            pending_callouts: BTreeMap::new(),
            tick: None,
            metric_ids: HashMap::new(),
            next_metric_ids: [0, 1, 2],
            host_calls,
        }
    }

    pub(crate) fn log(&self, level: LogLevel, message: String) {
        self.shared.log(self.worker, level, message);
    }

    fn context_exists(&self, id: u32) -> bool {
        id == self.root_context_id || self.streams.contains_key(&id)
    }

    /// The context a host call acts on: the effective context if the guest set one that
    /// still exists, else the context of the running callback (cpp-host
    /// `contextOrEffectiveContext`).
    pub(crate) fn context_id(&self) -> u32 {
        if self.effective_context != 0 && self.context_exists(self.effective_context) {
            self.effective_context
        } else {
            self.current_context
        }
    }

    pub(crate) fn set_effective_context(&mut self, id: u32) -> bool {
        if self.context_exists(id) {
            self.effective_context = id;
            true
        } else {
            false
        }
    }

    /// Returns the stream of the acting context, if that context is a stream.
    pub(crate) fn stream(&self) -> Option<&Stream> {
        self.streams.get(&self.context_id())
    }

    pub(crate) fn stream_mut(&mut self) -> Option<&mut Stream> {
        let id = self.context_id();
        self.streams.get_mut(&id)
    }
}
