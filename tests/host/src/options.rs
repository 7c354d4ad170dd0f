//! Start-up options, request and outcome types, and start errors.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

/// Configuration of one Envoy stand-in: the filter module, its configuration and the
/// clusters it may call.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// The module bytes (binary WebAssembly).
    pub wasm: Vec<u8>,
    /// Bytes returned for `BufferType::PluginConfiguration` during `proxy_on_configure`.
    pub plugin_config: Vec<u8>,
    /// Bytes returned for `BufferType::VmConfiguration`.
    pub vm_config: Vec<u8>,
    /// Envoy's `root_id`, returned for the `plugin_root_id` property.
    pub root_id: String,
    /// Envoy's plugin `name`, returned for the `plugin_name` property.
    pub plugin_name: String,
    /// Envoy's `vm_id`; shared data and queues are scoped to it.
    pub vm_id: String,
    /// Cluster name to loopback address for `proxy_http_call`. Only loopback addresses are
    /// accepted.
    pub clusters: BTreeMap<String, SocketAddr>,
    /// Number of VMs (Envoy: one per worker thread). They share shared data, queues and
    /// metrics.
    pub workers: usize,
    /// Source of wall and monotonic time for the guest, ticks and callout timeouts.
    pub clock: Clock,
    /// Envoy's log level: `proxy_log` messages below it are dropped, and
    /// `proxy_get_log_level` returns it.
    pub log_level: LogLevel,
    /// How long `send` waits for a paused request to be resumed or replied to, in real time,
    /// before it returns `Outcome::TimedOut`.
    pub pump_limit: Duration,
    /// Faults injected into callouts from the start, by cluster, so that the fetches a
    /// filter starts in `proxy_on_configure` see them too (`Envoy::set_callout_fault`
    /// changes them later).
    pub callout_faults: BTreeMap<String, CalloutFault>,
    /// Compile the module with Cranelift's `speed` optimizations, as Envoy's wasmtime
    /// runtime does. Off by default: compiling takes several times longer, which only
    /// benchmarks of the guest's speed need.
    pub optimize_guest: bool,
    /// Measure the time spent in the host calls the guest makes
    /// ([`crate::Envoy::host_call_time`]). Off by default: two clock reads per host call
    /// add to the guest time.
    pub time_host_calls: bool,
    /// Seed of the bytes `random_get` returns. `None` (the default) reads the operating
    /// system's random source, as Envoy does. A seed makes a run repeatable, for tests
    /// whose outcome depends on the guest's random choices, such as its memory use.
    pub random_seed: Option<u64>,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            wasm: Vec::new(),
            plugin_config: Vec::new(),
            vm_config: Vec::new(),
            root_id: String::new(),
            plugin_name: "portcullis".to_string(),
            vm_id: String::new(),
            clusters: BTreeMap::new(),
            workers: 1,
            clock: Clock::System,
            log_level: LogLevel::Info,
            pump_limit: Duration::from_secs(30),
            callout_faults: BTreeMap::new(),
            optimize_guest: false,
            time_host_calls: false,
            random_seed: None,
        }
    }
}

/// A fault injected into every callout to one cluster (`Envoy::set_callout_fault`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CalloutFault {
    /// Do not contact the cluster; respond with the 503 Envoy's router sends when the
    /// connection is refused.
    ConnectFailure,
    /// Do not contact the cluster; fail the call as Envoy's async client reports a reset
    /// after the response started: no headers and no body.
    Reset,
    /// Do not contact the cluster; respond with this response.
    Respond(Response),
    /// Contact the cluster, but deliver its response only once this much host-clock time
    /// has passed since the call. With a timeout shorter than the delay, the router's 504
    /// arrives first; with a manual clock, `advance` moves time past the delay.
    Delay(Duration),
}

/// Where the host reads time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// Real wall time and real monotonic time.
    System,
    /// Time that starts at the given wall time and moves only through `Envoy::advance`.
    Manual(SystemTime),
}

/// Envoy's log levels, in the numbering of `proxy_log_level_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub(crate) fn from_code(code: u32) -> Option<LogLevel> {
        match code {
            0 => Some(LogLevel::Trace),
            1 => Some(LogLevel::Debug),
            2 => Some(LogLevel::Info),
            3 => Some(LogLevel::Warn),
            4 => Some(LogLevel::Error),
            5 => Some(LogLevel::Critical),
            _ => None,
        }
    }

    /// Parses a level name as Envoy's `--log-level` option spells it.
    pub fn parse(name: &str) -> Option<LogLevel> {
        match name {
            "trace" => Some(LogLevel::Trace),
            "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            "critical" => Some(LogLevel::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        };
        f.write_str(name)
    }
}

/// One log line, from the guest (`proxy_log`, stdout, stderr) or from the host itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub level: LogLevel,
    pub worker: usize,
    pub message: String,
}

/// One `proxy_http_call` that the host accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalloutRecord {
    pub worker: usize,
    pub cluster: String,
    /// Request headers as the guest serialized them, pseudo-headers included.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The timeout the guest asked for; zero means none.
    pub timeout: Duration,
    /// Host clock time of the call, measured from `Envoy::start`.
    pub time: Duration,
}

/// An HTTP request entering the filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Header pairs, including `:method`, `:path`, `:authority` and `:scheme`. Names are
    /// lower-cased on entry.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// Builds a body-less request with the four pseudo-headers and `scheme` `http`.
    pub fn get(authority: &str, path: &str) -> Request {
        Request {
            headers: vec![
                (":method".to_string(), "GET".to_string()),
                (":path".to_string(), path.to_string()),
                (":authority".to_string(), authority.to_string()),
                (":scheme".to_string(), "http".to_string()),
            ],
            body: Vec::new(),
        }
    }

    /// Appends a header and returns the request.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

/// An HTTP response passing back through the filter (`Envoy::respond`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Header pairs without `:status`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the filter did with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The filter let the request through; `headers` and `body` are as it left them.
    Forwarded {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The filter replied with `proxy_send_local_response`. `headers` exclude `:status`
    /// and include the `content-length` and `content-type` Envoy adds.
    LocalReply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// Response code details, with whitespace replaced by `_` as Envoy does.
        details: String,
    },
    /// The filter reset the stream with `proxy_close_stream`.
    Reset,
    /// The VM trapped, now or on an earlier call; that VM stays failed and every request on
    /// its worker ends here. Envoy would send a local reply 503 with details
    /// `wasm_fail_stream` (fail closed).
    Trapped { message: String },
    /// The request was still paused when the pump limit passed.
    TimedOut,
}

/// Why `Envoy::start` failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// `workers` was zero.
    NoWorkers,
    /// A cluster address is not a loopback address.
    ClusterNotLoopback {
        cluster: String,
        address: SocketAddr,
    },
    /// wasmtime could not compile the module.
    InvalidModule { message: String },
    /// The module has no `proxy_abi_version_*` export that the host supports.
    UnsupportedAbi { message: String },
    /// The module imports something Envoy does not provide.
    ForbiddenImport { module: String, name: String },
    /// A required export is missing or has the wrong type.
    MissingExport { name: String },
    /// Instantiation failed, for example because an import has the wrong signature.
    Link { message: String },
    /// The module trapped during start-up.
    Trap { worker: usize, message: String },
    /// `proxy_on_vm_start` or `proxy_on_configure` returned false.
    ConfigRejected {
        worker: usize,
        callback: String,
        /// Everything logged up to the rejection, so tests can check the reason the filter gave.
        logs: Vec<LogRecord>,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NoWorkers => write!(f, "workers must be at least 1"),
            StartError::ClusterNotLoopback { cluster, address } => write!(
                f,
                "cluster {cluster} points at {address}, which is not a loopback address"
            ),
            StartError::InvalidModule { message } => {
                write!(f, "failed to compile the module: {message}")
            }
            StartError::UnsupportedAbi { message } => write!(f, "{message}"),
            StartError::ForbiddenImport { module, name } => write!(
                f,
                "the module imports {module}.{name}, which Envoy does not provide"
            ),
            StartError::MissingExport { name } => {
                write!(f, "the module does not export {name}")
            }
            StartError::Link { message } => {
                write!(f, "failed to instantiate the module: {message}")
            }
            StartError::Trap { worker, message } => {
                write!(
                    f,
                    "the module trapped during start-up on worker {worker}: {message}"
                )
            }
            StartError::ConfigRejected { worker, callback, .. } => {
                write!(f, "{callback} returned false on worker {worker}")
            }
        }
    }
}

impl std::error::Error for StartError {}
