//! Numeric values of the proxy-wasm ABI and the list of imports Envoy links.
//!
//! Values come from the ABI 0.2.1 specification (proxy-wasm/spec,
//! `abi-versions/v0.2.1/README.md`). The import list copies what
//! proxy-wasm-cpp-host registers in `WasmBase::registerCallbacks` (`src/wasm.cc`) from the
//! `FOR_ALL_HOST_FUNCTIONS`, `FOR_ALL_HOST_FUNCTIONS_ABI_SPECIFIC` and `FOR_ALL_WASI_FUNCTIONS`
//! lists in `include/proxy-wasm/exports.h`, at commit f2db56a, the commit Envoy pins in
//! `bazel/repository_locations.bzl` in mid-2026.

/// `proxy_status_t`, plus `BrokenConnection`, which Envoy reports through `proxy_get_status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub(crate) enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    BrokenConnection = 11,
    Unimplemented = 12,
}

impl Status {
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

/// WASI `errno` values that the cpp-host returns.
pub(crate) mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const NOTDIR: i32 = 20;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const NOENT: i32 = 44;
    pub const NOSYS: i32 = 52;
    pub const NOTSUP: i32 = 58;
}

/// `proxy_buffer_type_t`.
pub(crate) mod buffer {
    pub const HTTP_REQUEST_BODY: u32 = 0;
    pub const HTTP_RESPONSE_BODY: u32 = 1;
    pub const DOWNSTREAM_DATA: u32 = 2;
    pub const UPSTREAM_DATA: u32 = 3;
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    pub const GRPC_RECEIVE_BUFFER: u32 = 5;
    pub const VM_CONFIGURATION: u32 = 6;
    pub const PLUGIN_CONFIGURATION: u32 = 7;
    pub const CALL_DATA: u32 = 8;
}

/// `proxy_map_type_t`. Trailer and gRPC maps are never available in this host.
#[allow(dead_code)]
pub(crate) mod map {
    pub const REQUEST_HEADERS: u32 = 0;
    pub const REQUEST_TRAILERS: u32 = 1;
    pub const RESPONSE_HEADERS: u32 = 2;
    pub const RESPONSE_TRAILERS: u32 = 3;
    pub const GRPC_INITIAL_METADATA: u32 = 4;
    pub const GRPC_TRAILING_METADATA: u32 = 5;
    pub const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
    pub const HTTP_CALL_RESPONSE_TRAILERS: u32 = 7;
}

/// `proxy_stream_type_t`.
pub(crate) mod stream {
    pub const HTTP_REQUEST: u32 = 0;
    pub const HTTP_RESPONSE: u32 = 1;
    pub const DOWNSTREAM: u32 = 2;
    pub const UPSTREAM: u32 = 3;
}

/// `proxy_metric_type_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricKind {
    pub(crate) fn from_code(code: u32) -> Option<MetricKind> {
        match code {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Histogram),
            _ => None,
        }
    }

    /// Returns the low two bits of a metric id, from which Envoy reads the metric's kind.
    pub(crate) fn tag(self) -> u32 {
        match self {
            MetricKind::Counter => 0,
            MetricKind::Gauge => 1,
            MetricKind::Histogram => 2,
        }
    }
}

/// The ABI version a module declares through its `proxy_abi_version_*` export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AbiVersion {
    V0_2_0,
    V0_2_1,
}

/// The `env` functions Envoy links for every ABI version (cpp-host `FOR_ALL_HOST_FUNCTIONS`,
/// plus `pthread_equal` and `emscripten_notify_memory_growth`).
pub(crate) const ENV_FUNCTIONS: &[&str] = &[
    "proxy_log",
    "proxy_get_status",
    "proxy_set_property",
    "proxy_get_property",
    "proxy_send_local_response",
    "proxy_get_shared_data",
    "proxy_set_shared_data",
    "proxy_register_shared_queue",
    "proxy_resolve_shared_queue",
    "proxy_dequeue_shared_queue",
    "proxy_enqueue_shared_queue",
    "proxy_get_header_map_value",
    "proxy_add_header_map_value",
    "proxy_replace_header_map_value",
    "proxy_remove_header_map_value",
    "proxy_get_header_map_pairs",
    "proxy_set_header_map_pairs",
    "proxy_get_header_map_size",
    "proxy_get_buffer_status",
    "proxy_get_buffer_bytes",
    "proxy_set_buffer_bytes",
    "proxy_http_call",
    "proxy_grpc_call",
    "proxy_grpc_stream",
    "proxy_grpc_close",
    "proxy_grpc_cancel",
    "proxy_grpc_send",
    "proxy_set_tick_period_milliseconds",
    "proxy_get_current_time_nanoseconds",
    "proxy_define_metric",
    "proxy_increment_metric",
    "proxy_record_metric",
    "proxy_get_metric",
    "proxy_set_effective_context",
    "proxy_done",
    "proxy_call_foreign_function",
    "pthread_equal",
    "emscripten_notify_memory_growth",
];

/// The `env` functions Envoy links only for ABI 0.2.0 and 0.2.1.
pub(crate) const ENV_FUNCTIONS_0_2_X: &[&str] = &["proxy_continue_stream", "proxy_close_stream"];

/// The `env` function Envoy links only for ABI 0.2.1.
pub(crate) const ENV_FUNCTIONS_0_2_1: &[&str] = &["proxy_get_log_level"];

/// The WASI functions Envoy links, each under both `wasi_snapshot_preview1` and
/// `wasi_unstable`.
pub(crate) const WASI_FUNCTIONS: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_fdstat_set_rights",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "clock_res_get",
    "fd_advise",
    "fd_allocate",
    "fd_datasync",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_pwrite",
    "fd_readdir",
    "fd_renumber",
    "fd_sync",
    "fd_tell",
    "path_create_directory",
    "path_filestat_set_times",
    "path_link",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
    "random_get",
    "sched_yield",
    "poll_oneoff",
    "proc_exit",
    "path_open",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "path_filestat_get",
    "fd_filestat_get",
];

/// The module names under which the WASI functions are linked.
pub(crate) const WASI_MODULES: &[&str] = &["wasi_snapshot_preview1", "wasi_unstable"];

/// Lists every import, as `(module, name)`, that the host links for a module of `abi`.
pub fn provided_imports(abi: AbiVersion) -> Vec<(String, String)> {
    let mut imports: Vec<(String, String)> = ENV_FUNCTIONS
        .iter()
        .chain(ENV_FUNCTIONS_0_2_X)
        .map(|name| ("env".to_string(), name.to_string()))
        .collect();
    if abi == AbiVersion::V0_2_1 {
        imports.extend(
            ENV_FUNCTIONS_0_2_1
                .iter()
                .map(|name| ("env".to_string(), name.to_string())),
        );
    }
    for module in WASI_MODULES {
        imports.extend(
            WASI_FUNCTIONS
                .iter()
                .map(|name| (module.to_string(), name.to_string())),
        );
    }
    imports
}

/// Host calls that a module may make while `_initialize` (or `_start`) runs; any other call
/// traps (cpp-host `WasmBase::startVm`).
pub(crate) const ALLOWED_DURING_START: &[&str] = &[
    "env.emscripten_notify_memory_growth",
    "env.proxy_log",
    "fd_write",
    "args_sizes_get",
    "args_get",
    "environ_sizes_get",
    "environ_get",
    "clock_time_get",
    "clock_res_get",
    "random_get",
    "poll_oneoff",
    "fd_fdstat_get",
    "fd_fdstat_set_flags",
    "fd_advise",
    "fd_allocate",
    "fd_datasync",
    "fd_fdstat_set_rights",
    "fd_filestat_get",
    "fd_filestat_set_size",
    "fd_filestat_set_times",
    "fd_pread",
    "fd_prestat_dir_name",
    "fd_prestat_get",
    "fd_pwrite",
    "fd_readdir",
    "fd_renumber",
    "fd_sync",
    "fd_tell",
    "path_create_directory",
    "path_filestat_get",
    "path_filestat_set_times",
    "path_link",
    "path_readlink",
    "path_remove_directory",
    "path_rename",
    "path_symlink",
    "path_unlink_file",
    "sock_accept",
    "sock_recv",
    "sock_send",
    "sock_shutdown",
];

/// Host calls that a module may make from its allocator while the host copies a value
/// into guest memory; any other call traps (cpp-host `WasmBase::allocMemory`).
pub(crate) const ALLOWED_DURING_ALLOCATION: &[&str] =
    &["env.proxy_log", "fd_write", "clock_time_get", "poll_oneoff"];
