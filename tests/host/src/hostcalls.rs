//! The `env` functions of the proxy-wasm ABI, with the argument checks and return statuses
//! of proxy-wasm-cpp-host `src/exports.cc` and Envoy's
//! `source/extensions/common/wasm/context.cc`.

use std::time::Duration;

use wasmtime::{Caller, Linker};

use crate::abi::{AbiVersion, MetricKind, Status, buffer, map, stream};
use crate::callout;
use crate::headers::{HeaderMap, parse_pairs, serialize_pairs};
use crate::memory::{copy_to_guest, read, write_u32, write_u64};
use crate::http::HttpResponse;
use crate::options::{CalloutFault, CalloutRecord, LogLevel};
use crate::state::{
    Action, HostState, LocalReplyRequest, PendingCallout, Queue, QueueEvent, Tick, lock,
};

/// Traps if a restricted phase (start-up, allocation) does not allow `name`. V8 in Envoy
/// traps with `restricted_callback` in the same case (cpp-host `src/v8/v8.cc`).
pub(crate) fn guard(caller: &Caller<'_, HostState>, name: &str) -> wasmtime::Result<()> {
    match caller.data().restricted {
        Some(allowed) if !allowed.contains(&name) => Err(wasmtime::Error::msg(format!(
            "restricted_callback: {name} may not be called at this point"
        ))),
        _ => Ok(()),
    }
}

fn status(status: Status) -> wasmtime::Result<i32> {
    Ok(status.code())
}

fn copied(done: bool) -> wasmtime::Result<i32> {
    status(if done {
        Status::Ok
    } else {
        Status::InvalidMemoryAccess
    })
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Converts bytes read from the guest to text, in place when they are UTF-8.
fn owned_text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|error| text(error.as_bytes()))
}

/// Defines an `env` function that returns a status; the closure gets the caller as
/// `&mut Caller` and is guarded against restricted phases.
macro_rules! define {
    ($linker:ident, $name:literal, |$caller:ident $(, $arg:ident : $ty:ty)*| $body:block) => {
        $linker.func_wrap(
            "env",
            $name,
            |mut caller: Caller<'_, HostState>, $($arg: $ty),*| -> wasmtime::Result<i32> {
                let started = caller.data().host_calls.enabled.then(std::time::Instant::now);
                #[allow(clippy::redundant_closure_call, reason = "the body may `return` early")]
                let result = (|| -> wasmtime::Result<i32> {
                    let $caller = &mut caller;
                    guard($caller, concat!("env.", $name))?;
                    $body
                })();
                if let Some(started) = started {
                    caller.data_mut().host_calls.within_calls += started.elapsed();
                }
                result
            },
        )?;
    };
}

/// Adds every `env` function Envoy links for `abi` to `linker`.
pub(crate) fn add_to_linker(
    linker: &mut Linker<HostState>,
    abi: AbiVersion,
) -> wasmtime::Result<()> {
    add_logging_and_time(linker, abi)?;
    add_buffers(linker)?;
    add_header_maps(linker)?;
    add_properties(linker)?;
    add_streams(linker)?;
    add_callouts(linker)?;
    add_shared_data(linker)?;
    add_metrics(linker)?;
    add_contexts(linker)?;
    Ok(())
}

fn add_logging_and_time(linker: &mut Linker<HostState>, abi: AbiVersion) -> wasmtime::Result<()> {
    define!(linker, "proxy_log", |c, level: i32, ptr: i32, len: i32| {
        let Some(level) = LogLevel::from_code(level as u32) else {
            return status(Status::BadArgument);
        };
        let Some(message) = read(c, ptr, len) else {
            return status(Status::InvalidMemoryAccess);
        };
        c.data().log(level, text(&message));
        status(Status::Ok)
    });

    if abi == AbiVersion::V0_2_1 {
        define!(linker, "proxy_get_log_level", |c, ptr: i32| {
            let level = c.data().shared.options.log_level as u32;
            copied(write_u32(c, ptr, level))
        });
    }

    define!(
        linker,
        "proxy_get_current_time_nanoseconds",
        |c, ptr: i32| {
            let now = c.data().shared.clock.wall_nanos();
            copied(write_u64(c, ptr, now))
        }
    );
    define!(
        linker,
        "proxy_set_tick_period_milliseconds",
        |c, period: i32| {
            let state = c.data_mut();
            let period = Duration::from_millis(u64::from(period as u32));
            // Envoy restarts the timer from now whenever the period is set
            // (`Wasm::setTickPeriod` in source/extensions/common/wasm/wasm.cc).
            state.tick = (!period.is_zero()).then(|| Tick {
                period,
                next_due: state.shared.clock.elapsed() + period,
            });
            status(Status::Ok)
        }
    );
    linker.func_wrap("env", "pthread_equal", |a: i32, b: i32| -> i32 {
        i32::from(a == b)
    })?;
    linker.func_wrap(
        "env",
        "emscripten_notify_memory_growth",
        |caller: Caller<'_, HostState>, _memory_index: i32| -> wasmtime::Result<()> {
            guard(&caller, "env.emscripten_notify_memory_growth")
        },
    )?;
    Ok(())
}

/// Returns the buffer `kind` as Envoy's `Context::getBuffer` would, or `None` where it
/// returns nullptr (`NotFound`). Body buffers outside their callbacks read as empty.
fn buffer_bytes(state: &HostState, kind: u32) -> Option<Vec<u8>> {
    match kind {
        buffer::HTTP_REQUEST_BODY => Some(
            state
                .stream()
                .filter(|s| s.request_body_live)
                .map(|s| s.request_body.clone())
                .unwrap_or_default(),
        ),
        buffer::HTTP_RESPONSE_BODY => Some(
            state
                .stream()
                .filter(|s| s.response_body_live)
                .map(|s| s.response_body.clone())
                .unwrap_or_default(),
        ),
        buffer::DOWNSTREAM_DATA | buffer::UPSTREAM_DATA | buffer::GRPC_RECEIVE_BUFFER => {
            Some(Vec::new())
        }
        buffer::HTTP_CALL_RESPONSE_BODY => state.call_response.as_ref().map(|r| r.body.clone()),
        buffer::VM_CONFIGURATION => Some(state.shared.options.vm_config.clone()),
        buffer::PLUGIN_CONFIGURATION => state
            .in_configure
            .then(|| state.shared.options.plugin_config.clone()),
        _ => Some(Vec::new()),
    }
}

/// Applies `proxy_set_buffer_bytes` to a body that Envoy exposes as a mutable buffer:
/// start 0 drains `size` bytes and prepends, a start at or past the end appends, anything
/// else is `BadArgument` (Envoy `Buffer::copyFrom`).
fn splice_body(body: &mut Vec<u8>, start: usize, size: usize, data: &[u8]) -> Status {
    if start == 0 {
        let drained = size.min(body.len());
        body.splice(0..drained, data.iter().copied());
        Status::Ok
    } else if start >= body.len() {
        body.extend_from_slice(data);
        Status::Ok
    } else {
        Status::BadArgument
    }
}

fn add_buffers(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(
        linker,
        "proxy_get_buffer_bytes",
        |c, kind: i32, start: i32, length: i32, ptr_ptr: i32, size_ptr: i32| {
            if kind as u32 > buffer::CALL_DATA {
                return status(Status::BadArgument);
            }
            let Some(bytes) = buffer_bytes(c.data(), kind as u32) else {
                return status(Status::NotFound);
            };
            let start = start as u32 as usize;
            let length = length as u32 as usize;
            let end = start.saturating_add(length).min(bytes.len());
            let slice = bytes.get(start..end).unwrap_or_default();
            copied(copy_to_guest(c, slice, ptr_ptr, size_ptr)?)
        }
    );
    define!(
        linker,
        "proxy_get_buffer_status",
        |c, kind: i32, length_ptr: i32, flags_ptr: i32| {
            if kind as u32 > buffer::CALL_DATA {
                return status(Status::BadArgument);
            }
            let Some(bytes) = buffer_bytes(c.data(), kind as u32) else {
                return status(Status::NotFound);
            };
            let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
            copied(write_u32(c, length_ptr, length) && write_u32(c, flags_ptr, 0))
        }
    );
    define!(
        linker,
        "proxy_set_buffer_bytes",
        |c, kind: i32, start: i32, size: i32, ptr: i32, len: i32| {
            let kind = kind as u32;
            if kind > buffer::CALL_DATA {
                return status(Status::BadArgument);
            }
            if buffer_bytes(c.data(), kind).is_none() {
                return status(Status::NotFound);
            }
            let Some(data) = read(c, ptr, len) else {
                return status(Status::InvalidMemoryAccess);
            };
            let (start, size) = (start as u32 as usize, size as u32 as usize);
            let result = match (kind, c.data_mut().stream_mut()) {
                (buffer::HTTP_REQUEST_BODY, Some(s)) if s.request_body_live => {
                    splice_body(&mut s.request_body, start, size, &data)
                }
                (buffer::HTTP_RESPONSE_BODY, Some(s)) if s.response_body_live => {
                    splice_body(&mut s.response_body, start, size, &data)
                }
                // Other buffers are read-only strings in Envoy (cpp-host `BufferBase::copyFrom`).
                _ => Status::BadArgument,
            };
            status(result)
        }
    );
    Ok(())
}

/// Calls `read` on a header map for reading, the one Envoy's `Context::getConstMap`
/// returns, without copying it.
fn with_const_map<T>(state: &HostState, kind: u32, read: impl FnOnce(&[(String, String)]) -> T) -> Option<T> {
    match kind {
        map::REQUEST_HEADERS => state
            .stream()
            .filter(|s| s.request_headers_live || s.access_log_phase)
            .map(|s| read(s.request_headers.pairs())),
        map::RESPONSE_HEADERS => state
            .stream()
            .filter(|s| s.response_headers_live || (s.access_log_phase && s.has_response))
            .map(|s| read(s.response_headers.pairs())),
        map::HTTP_CALL_RESPONSE_HEADERS => state.call_response.as_ref().map(|r| read(&r.headers)),
        _ => None,
    }
}

/// Returns a header map for writing, as Envoy's `Context::getMap` does: only request and
/// response headers, and only while they are live.
fn mutable_map(state: &mut HostState, kind: u32) -> Option<&mut HeaderMap> {
    let stream = state.stream_mut()?;
    match kind {
        map::REQUEST_HEADERS if stream.request_headers_live => Some(&mut stream.request_headers),
        map::RESPONSE_HEADERS if stream.response_headers_live => Some(&mut stream.response_headers),
        _ => None,
    }
}

fn in_access_log_phase(state: &HostState) -> bool {
    state.stream().is_some_and(|s| s.access_log_phase)
}

fn add_header_maps(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(
        linker,
        "proxy_get_header_map_pairs",
        |c, kind: i32, ptr_ptr: i32, size_ptr: i32| {
            if kind as u32 > map::HTTP_CALL_RESPONSE_TRAILERS {
                return status(Status::BadArgument);
            }
            // A map that is not available reads as empty (Envoy `headerMapToPairs(nullptr)`).
            let bytes = with_const_map(c.data(), kind as u32, |pairs| {
                if pairs.is_empty() {
                    Vec::new()
                } else {
                    serialize_pairs(pairs)
                }
            })
            .unwrap_or_default();
            copied(copy_to_guest(c, &bytes, ptr_ptr, size_ptr)?)
        }
    );
    define!(
        linker,
        "proxy_set_header_map_pairs",
        |c, kind: i32, ptr: i32, len: i32| {
            if kind as u32 > map::HTTP_CALL_RESPONSE_TRAILERS {
                return status(Status::BadArgument);
            }
            let Some(bytes) = read(c, ptr, len) else {
                return status(Status::InvalidMemoryAccess);
            };
            let Some(map) = mutable_map(c.data_mut(), kind as u32) else {
                return status(Status::BadArgument);
            };
            *map = HeaderMap::from_pairs(parse_pairs(&bytes));
            status(Status::Ok)
        }
    );
    define!(
        linker,
        "proxy_get_header_map_value",
        |c, kind: i32, key_ptr: i32, key_len: i32, ptr_ptr: i32, size_ptr: i32| {
            if kind as u32 > map::HTTP_CALL_RESPONSE_TRAILERS {
                return status(Status::BadArgument);
            }
            let Some(key) = read(c, key_ptr, key_len) else {
                return status(Status::InvalidMemoryAccess);
            };
            let key = text(&key).to_ascii_lowercase();
            let found = with_const_map(c.data(), kind as u32, |pairs| {
                pairs.iter().find(|(k, _)| *k == key).map(|(_, value)| value.clone().into_bytes())
            });
            let Some(found) = found else {
                // Envoy returns NotFound for maps missing in the access-log phase and
                // BadArgument for maps that are not available in the current callback.
                return status(if in_access_log_phase(c.data()) {
                    Status::NotFound
                } else {
                    Status::BadArgument
                });
            };
            let Some(value) = found else {
                return status(Status::NotFound);
            };
            copied(copy_to_guest(c, &value, ptr_ptr, size_ptr)?)
        }
    );
    define!(
        linker,
        "proxy_add_header_map_value",
        |c, kind: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            edit_map(
                c,
                kind,
                key_ptr,
                key_len,
                Some((value_ptr, value_len)),
                |map, key, value| {
                    map.add(key, value);
                },
            )
        }
    );
    define!(
        linker,
        "proxy_replace_header_map_value",
        |c, kind: i32, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32| {
            edit_map(
                c,
                kind,
                key_ptr,
                key_len,
                Some((value_ptr, value_len)),
                |map, key, value| {
                    map.set(key, value);
                },
            )
        }
    );
    define!(
        linker,
        "proxy_remove_header_map_value",
        |c, kind: i32, key_ptr: i32, key_len: i32| {
            // Removing an absent header is Ok, as the ABI specification states.
            edit_map(c, kind, key_ptr, key_len, None, |map, key, _| {
                map.remove(key)
            })
        }
    );
    define!(
        linker,
        "proxy_get_header_map_size",
        |c, kind: i32, ptr: i32| {
            if kind as u32 > map::HTTP_CALL_RESPONSE_TRAILERS {
                return status(Status::BadArgument);
            }
            // Envoy reads the size from the mutable map and returns its byte size, not the
            // number of headers.
            let Some(map) = mutable_map(c.data_mut(), kind as u32) else {
                return status(Status::BadArgument);
            };
            let size = u32::try_from(map.byte_size()).unwrap_or(u32::MAX);
            copied(write_u32(c, ptr, size))
        }
    );
    Ok(())
}

/// Reads key (and value) and applies `edit` to the mutable map `kind`.
fn edit_map(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    key_ptr: i32,
    key_len: i32,
    value: Option<(i32, i32)>,
    edit: impl FnOnce(&mut HeaderMap, &str, &str),
) -> wasmtime::Result<i32> {
    if kind as u32 > map::HTTP_CALL_RESPONSE_TRAILERS {
        return status(Status::BadArgument);
    }
    let key = read(caller, key_ptr, key_len);
    let value = match value {
        Some((ptr, len)) => read(caller, ptr, len),
        None => Some(Vec::new()),
    };
    let (Some(key), Some(value)) = (key, value) else {
        return status(Status::InvalidMemoryAccess);
    };
    let Some(map) = mutable_map(caller.data_mut(), kind as u32) else {
        return status(Status::BadArgument);
    };
    edit(map, &owned_text(key), &owned_text(value));
    status(Status::Ok)
}

/// Resolves a property path (parts separated by NUL bytes) for the acting context.
///
/// Supports Envoy's `plugin_name`, `plugin_root_id`, `plugin_vm_id`, the request
/// attributes `request.{path,url_path,host,scheme,method,protocol,query,id,useragent,
/// referer}`, `request.headers.<name>`, and values set with `proxy_set_property`.
fn property(state: &HostState, path: &[u8]) -> Option<Vec<u8>> {
    let options = &state.shared.options;
    let parts: Vec<&[u8]> = path.split(|b| *b == 0).collect();
    let part = |i: usize| {
        parts
            .get(i)
            .map(|p| String::from_utf8_lossy(p).into_owned())
    };
    let first = part(0)?;
    match (first.as_str(), parts.len()) {
        ("plugin_name", 1) => return Some(options.plugin_name.as_bytes().to_vec()),
        ("plugin_root_id", 1) => return Some(options.root_id.as_bytes().to_vec()),
        ("plugin_vm_id", 1) => return Some(options.vm_id.as_bytes().to_vec()),
        _ => {}
    }
    let stream = state.stream()?;
    if first == "request" && (stream.request_headers_live || stream.access_log_phase) {
        let headers = &stream.request_headers;
        let path_value = headers.get(":path").unwrap_or_default();
        let (url_path, query) = path_value.split_once('?').unwrap_or((path_value, ""));
        let value = match (part(1)?.as_str(), part(2)) {
            ("path", None) => path_value.to_string(),
            ("url_path", None) => url_path.to_string(),
            ("query", None) => query.to_string(),
            ("host", None) => headers.get(":authority")?.to_string(),
            ("scheme", None) => headers.get(":scheme")?.to_string(),
            ("method", None) => headers.get(":method")?.to_string(),
            ("protocol", None) => "HTTP/1.1".to_string(),
            ("id", None) => headers.get("x-request-id")?.to_string(),
            ("useragent", None) => headers.get("user-agent")?.to_string(),
            ("referer", None) => headers.get("referer")?.to_string(),
            ("headers", Some(name)) => headers.get(&name)?.to_string(),
            ("headers", None) => return Some(serialize_pairs(headers.pairs())),
            _ => return None,
        };
        return Some(value.into_bytes());
    }
    stream.filter_state.get(path).cloned()
}

fn add_properties(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(
        linker,
        "proxy_get_property",
        |c, path_ptr: i32, path_len: i32, ptr_ptr: i32, size_ptr: i32| {
            let Some(path) = read(c, path_ptr, path_len) else {
                return status(Status::InvalidMemoryAccess);
            };
            let Some(value) = property(c.data(), &path) else {
                return status(Status::NotFound);
            };
            copied(copy_to_guest(c, &value, ptr_ptr, size_ptr)?)
        }
    );
    define!(
        linker,
        "proxy_set_property",
        |c, path_ptr: i32, path_len: i32, value_ptr: i32, value_len: i32| {
            let path = read(c, path_ptr, path_len);
            let value = read(c, value_ptr, value_len);
            let (Some(path), Some(value)) = (path, value) else {
                return status(Status::InvalidMemoryAccess);
            };
            // Envoy stores properties in the stream's filter state; a root context has none.
            let Some(stream) = c.data_mut().stream_mut() else {
                return status(Status::NotFound);
            };
            stream.filter_state.insert(path, value);
            status(Status::Ok)
        }
    );
    Ok(())
}

fn add_streams(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(linker, "proxy_continue_stream", |c, kind: i32| {
        let kind = kind as u32;
        if kind > stream::UPSTREAM {
            return status(Status::BadArgument);
        }
        if kind == stream::DOWNSTREAM {
            return status(Status::Ok);
        }
        if kind == stream::UPSTREAM {
            return status(Status::Unimplemented);
        }
        let state = c.data_mut();
        let context = state.context_id();
        // A root context has no decoder or encoder callbacks, so continuing from it does
        // nothing; the guest must set the stream as effective context first.
        if let Some(stream) = state.stream_mut() {
            // Envoy clears the request pointers for both request and response continues.
            stream.request_headers_live = false;
            stream.request_body_live = false;
            state.actions.push(if kind == stream::HTTP_REQUEST {
                Action::ContinueRequest { context }
            } else {
                Action::ContinueResponse { context }
            });
        }
        status(Status::Ok)
    });

    define!(linker, "proxy_close_stream", |c, kind: i32| {
        let kind = kind as u32;
        if kind > stream::UPSTREAM {
            return status(Status::BadArgument);
        }
        let state = c.data_mut();
        let context = state.context_id();
        if kind <= stream::HTTP_RESPONSE && state.stream().is_some() {
            state.actions.push(Action::CloseStream { context });
        }
        status(Status::Ok)
    });

    define!(
        linker,
        "proxy_send_local_response",
        |c,
         code: i32,
         details_ptr: i32,
         details_len: i32,
         body_ptr: i32,
         body_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         grpc_status: i32| {
            let details = read(c, details_ptr, details_len);
            let body = read(c, body_ptr, body_len);
            let headers = read(c, headers_ptr, headers_len);
            let (Some(details), Some(body), Some(headers)) = (details, body, headers) else {
                return status(Status::InvalidMemoryAccess);
            };
            let state = c.data_mut();
            let context = state.context_id();
            if state.stream().is_some() {
                state.actions.push(Action::LocalReply {
                    context,
                    reply: LocalReplyRequest {
                        status: code as u32,
                        details: text(&details),
                        body,
                        headers: parse_pairs(&headers),
                        grpc_status,
                    },
                });
            }
            // The callback's return value is overridden with "stop" even from a root context.
            state.stop_next_iteration = true;
            status(Status::Ok)
        }
    );
    Ok(())
}

fn add_callouts(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(
        linker,
        "proxy_http_call",
        |c,
         upstream_ptr: i32,
         upstream_len: i32,
         headers_ptr: i32,
         headers_len: i32,
         body_ptr: i32,
         body_len: i32,
         trailers_ptr: i32,
         trailers_len: i32,
         timeout_ms: i32,
         token_ptr: i32| {
            let upstream = read(c, upstream_ptr, upstream_len);
            let body = read(c, body_ptr, body_len);
            let headers = read(c, headers_ptr, headers_len);
            let trailers = read(c, trailers_ptr, trailers_len);
            let (Some(upstream), Some(body), Some(headers), Some(_trailers)) =
                (upstream, body, headers, trailers)
            else {
                return status(Status::InvalidMemoryAccess);
            };
            // cpp-host writes a 0 token first so a bad pointer fails before any request starts.
            if !write_u32(c, token_ptr, 0) {
                return status(Status::InvalidMemoryAccess);
            }
            // Envoy takes the timeout as a signed int and rejects negative values.
            if timeout_ms < 0 {
                return status(Status::BadArgument);
            }
            let cluster = text(&upstream);
            let Some(address) = c.data().shared.options.clusters.get(&cluster).copied() else {
                return status(Status::BadArgument);
            };
            let header_pairs = parse_pairs(&headers);
            let mut header_map = HeaderMap::from_pairs(header_pairs.iter().map(|(k, v)| (k, v)));
            if [":path", ":method", ":authority"]
                .iter()
                .any(|name| header_map.get(name).is_none())
            {
                return status(Status::BadArgument);
            }
            if !body.is_empty() {
                header_map.set("content-length", &body.len().to_string());
            }
            let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));

            let state = c.data_mut();
            state.next_http_call_id = state.next_http_call_id.wrapping_add(4);
            let token = state.next_http_call_id;
            let now = state.shared.clock.elapsed();
            let cluster_name = cluster.clone();
            lock(&state.shared.state).callouts.push(CalloutRecord {
                worker: state.worker,
                cluster,
                headers: header_pairs,
                body: body.clone(),
                timeout: timeout.unwrap_or_default(),
                time: now,
            });
            let fault = lock(&state.shared.state)
                .callout_faults
                .get(&cluster_name)
                .cloned();
            let mut pending = PendingCallout {
                deadline: timeout.map(|t| now + t),
                ready_at: now,
                held: None,
            };
            match fault {
                Some(CalloutFault::ConnectFailure) => {
                    pending.held = Some(Some(callout::connect_failure_reply()));
                }
                Some(CalloutFault::Reset) => pending.held = Some(None),
                Some(CalloutFault::Respond(response)) => {
                    pending.held = Some(Some(HttpResponse {
                        status: response.status,
                        headers: response.headers,
                        body: response.body,
                    }));
                }
                Some(CalloutFault::Delay(_)) | None => {
                    if let Some(CalloutFault::Delay(delay)) = fault {
                        pending.ready_at = now + delay;
                    }
                    let shared = state.shared.clone();
                    if !callout::spawn(
                        shared,
                        state.worker,
                        token,
                        address,
                        &header_map,
                        body,
                        timeout,
                    ) {
                        return status(Status::InternalFailure);
                    }
                }
            }
            state.pending_callouts.insert(token, pending);
            // Like cpp-host, a failure to write the token back is ignored here.
            write_u32(c, token_ptr, token);
            status(Status::Ok)
        }
    );
    // gRPC calls are not implemented: an unknown cluster returns ParseFailure as in Envoy,
    // a known one InternalFailure ("failed to send").
    define!(
        linker,
        "proxy_grpc_call",
        |c,
         service_ptr: i32,
         service_len: i32,
         name_ptr: i32,
         name_len: i32,
         method_ptr: i32,
         method_len: i32,
         metadata_ptr: i32,
         metadata_len: i32,
         message_ptr: i32,
         message_len: i32,
         _timeout_ms: i32,
         _token_ptr: i32| {
            grpc_start(
                c,
                &[
                    (service_ptr, service_len),
                    (name_ptr, name_len),
                    (method_ptr, method_len),
                    (metadata_ptr, metadata_len),
                    (message_ptr, message_len),
                ],
            )
        }
    );
    define!(
        linker,
        "proxy_grpc_stream",
        |c,
         service_ptr: i32,
         service_len: i32,
         name_ptr: i32,
         name_len: i32,
         method_ptr: i32,
         method_len: i32,
         metadata_ptr: i32,
         metadata_len: i32,
         _token_ptr: i32| {
            grpc_start(
                c,
                &[
                    (service_ptr, service_len),
                    (name_ptr, name_len),
                    (method_ptr, method_len),
                    (metadata_ptr, metadata_len),
                ],
            )
        }
    );
    define!(
        linker,
        "proxy_grpc_send",
        |c, token: i32, message_ptr: i32, message_len: i32, _end_stream: i32| {
            if read(c, message_ptr, message_len).is_none() {
                return status(Status::InvalidMemoryAccess);
            }
            // Only stream ids (low bits 2) are valid here, and no stream is ever open.
            status(if token as u32 & 3 == 2 {
                Status::NotFound
            } else {
                Status::BadArgument
            })
        }
    );
    define!(linker, "proxy_grpc_cancel", |_c, token: i32| {
        status(grpc_token_status(token))
    });

    define!(linker, "proxy_grpc_close", |_c, token: i32| {
        status(grpc_token_status(token))
    });

    define!(
        linker,
        "proxy_get_status",
        |c, code_ptr: i32, ptr_ptr: i32, size_ptr: i32| {
            let (code, message) = c.data().status.clone();
            if !write_u32(c, code_ptr, code) {
                return status(Status::InvalidMemoryAccess);
            }
            copied(copy_to_guest(c, message.as_bytes(), ptr_ptr, size_ptr)?)
        }
    );
    Ok(())
}

fn grpc_start(caller: &mut Caller<'_, HostState>, ranges: &[(i32, i32)]) -> wasmtime::Result<i32> {
    let mut values = Vec::new();
    for (ptr, len) in ranges {
        match read(caller, *ptr, *len) {
            Some(value) => values.push(value),
            None => return status(Status::InvalidMemoryAccess),
        }
    }
    let service = values.first().map(|v| text(v)).unwrap_or_default();
    let state = caller.data();
    if !state.shared.options.clusters.contains_key(&service) {
        return status(Status::ParseFailure);
    }
    state.log(
        LogLevel::Warn,
        format!("gRPC call to cluster {service} failed: this host does not implement gRPC"),
    );
    status(Status::InternalFailure)
}

/// Envoy returns NotFound for an unknown gRPC call or stream id and BadArgument for an id
/// that is neither (low bits 1 for calls, 2 for streams).
fn grpc_token_status(token: i32) -> Status {
    match token as u32 & 3 {
        1 | 2 => Status::NotFound,
        _ => Status::BadArgument,
    }
}

fn add_shared_data(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(
        linker,
        "proxy_get_shared_data",
        |c, key_ptr: i32, key_len: i32, ptr_ptr: i32, size_ptr: i32, cas_ptr: i32| {
            let Some(key) = read(c, key_ptr, key_len) else {
                return status(Status::InvalidMemoryAccess);
            };
            let found = lock(&c.data().shared.state)
                .data
                .get(&text(&key))
                .map(|v| (v.value.clone(), v.cas));
            let Some((value, cas)) = found else {
                return status(Status::NotFound);
            };
            if !copy_to_guest(c, &value, ptr_ptr, size_ptr)? {
                return status(Status::InvalidMemoryAccess);
            }
            copied(write_u32(c, cas_ptr, cas))
        }
    );
    define!(
        linker,
        "proxy_set_shared_data",
        |c, key_ptr: i32, key_len: i32, value_ptr: i32, value_len: i32, cas: i32| {
            let key = read(c, key_ptr, key_len);
            let value = read(c, value_ptr, value_len);
            let (Some(key), Some(value)) = (key, value) else {
                return status(Status::InvalidMemoryAccess);
            };
            let mut shared = lock(&c.data().shared.state);
            let new_cas = shared.next_cas();
            let key = text(&key);
            // cpp-host `SharedData::set`: cas 0 writes unconditionally, a mismatch fails, and a
            // missing key is created whatever the cas value.
            match shared.data.get_mut(&key) {
                Some(existing) => {
                    if cas != 0 && cas as u32 != existing.cas {
                        return status(Status::CasMismatch);
                    }
                    existing.value = value;
                    existing.cas = new_cas;
                }
                None => {
                    shared.data.insert(
                        key,
                        crate::state::SharedValue {
                            value,
                            cas: new_cas,
                        },
                    );
                }
            }
            status(Status::Ok)
        }
    );
    define!(
        linker,
        "proxy_register_shared_queue",
        |c, name_ptr: i32, name_len: i32, token_ptr: i32| {
            let Some(name) = read(c, name_ptr, name_len) else {
                return status(Status::InvalidMemoryAccess);
            };
            let state = c.data();
            // onQueueReady goes to the root context even when a stream registers the queue.
            let (worker, context_id) = (state.worker, state.root_context_id);
            let key = (state.shared.options.vm_id.clone(), text(&name));
            let token = {
                let mut shared = lock(&state.shared.state);
                let token = match shared.queue_tokens.get(&key) {
                    Some(token) => *token,
                    None => {
                        let token = shared.next_queue_token;
                        shared.next_queue_token = shared.next_queue_token.wrapping_add(1).max(1);
                        shared.queue_tokens.insert(key, token);
                        token
                    }
                };
                let queue = shared.queues.entry(token).or_insert_with(|| Queue {
                    items: Default::default(),
                    worker,
                    context_id,
                });
                queue.worker = worker;
                queue.context_id = context_id;
                token
            };
            copied(write_u32(c, token_ptr, token))
        }
    );
    define!(
        linker,
        "proxy_resolve_shared_queue",
        |c, vm_id_ptr: i32, vm_id_len: i32, name_ptr: i32, name_len: i32, token_ptr: i32| {
            let vm_id = read(c, vm_id_ptr, vm_id_len);
            let name = read(c, name_ptr, name_len);
            let (Some(vm_id), Some(name)) = (vm_id, name) else {
                return status(Status::InvalidMemoryAccess);
            };
            let state = c.data();
            let vm_id = if vm_id.is_empty() {
                state.shared.options.vm_id.clone()
            } else {
                text(&vm_id)
            };
            let token = lock(&state.shared.state)
                .queue_tokens
                .get(&(vm_id, text(&name)))
                .copied();
            let Some(token) = token else {
                return status(Status::NotFound);
            };
            copied(write_u32(c, token_ptr, token))
        }
    );
    define!(
        linker,
        "proxy_dequeue_shared_queue",
        |c, token: i32, ptr_ptr: i32, size_ptr: i32| {
            let item = {
                let mut shared = lock(&c.data().shared.state);
                match shared.queues.get_mut(&(token as u32)) {
                    None => return status(Status::NotFound),
                    Some(queue) => queue.items.pop_front(),
                }
            };
            let Some(item) = item else {
                return status(Status::Empty);
            };
            copied(copy_to_guest(c, &item, ptr_ptr, size_ptr)?)
        }
    );
    define!(
        linker,
        "proxy_enqueue_shared_queue",
        |c, token: i32, ptr: i32, len: i32| {
            let Some(item) = read(c, ptr, len) else {
                return status(Status::InvalidMemoryAccess);
            };
            let mut shared = lock(&c.data().shared.state);
            let Some(queue) = shared.queues.get_mut(&(token as u32)) else {
                return status(Status::NotFound);
            };
            queue.items.push_back(item);
            let event = QueueEvent {
                worker: queue.worker,
                context_id: queue.context_id,
                token: token as u32,
            };
            // Envoy posts proxy_on_queue_ready to the registering VM's thread; it never runs
            // inside this call.
            shared.queue_events.push_back(event);
            status(Status::Ok)
        }
    );
    Ok(())
}

fn add_metrics(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(
        linker,
        "proxy_define_metric",
        |c, kind: i32, name_ptr: i32, name_len: i32, id_ptr: i32| {
            let Some(name) = read(c, name_ptr, name_len) else {
                return status(Status::InvalidMemoryAccess);
            };
            let Some(kind) = MetricKind::from_code(kind as u32) else {
                return status(Status::BadArgument);
            };
            let name = text(&name);
            let state = c.data_mut();
            // Every definition gets a new id whose low two bits name the kind. The same name
            // maps to one stat in the shared store, as in Envoy's stats scope.
            let slot = kind.tag() as usize;
            state.next_metric_ids[slot] = state.next_metric_ids[slot].wrapping_add(4);
            let id = state.next_metric_ids[slot];
            state.metric_ids.insert(id, (kind, name.clone()));
            lock(&state.shared.state)
                .metrics
                .entry((kind, name))
                .or_default();
            copied(write_u32(c, id_ptr, id))
        }
    );
    define!(
        linker,
        "proxy_increment_metric",
        |c, id: i32, offset: i64| {
            let state = c.data();
            let kind_bits = id as u32 & 3;
            if kind_bits != MetricKind::Counter.tag() && kind_bits != MetricKind::Gauge.tag() {
                return status(Status::BadArgument);
            }
            let Some(key) = state.metric_ids.get(&(id as u32)) else {
                return status(Status::NotFound);
            };
            let mut shared = lock(&state.shared.state);
            // `proxy_define_metric` created the stat; a lookup by reference spares the
            // copies of its name that an entry would make on every increment.
            let Some(metric) = shared.metrics.get_mut(key) else {
                return status(Status::NotFound);
            };
            match key.0 {
                MetricKind::Counter if offset > 0 => {
                    metric.value = metric.value.wrapping_add(offset as u64)
                }
                MetricKind::Counter => return status(Status::BadArgument),
                // NOTE: Envoy's gauge only asserts in debug builds that it does not go below
                // zero; release builds wrap around, and so does this host.
                _ if offset > 0 => metric.value = metric.value.wrapping_add(offset as u64),
                _ => metric.value = metric.value.wrapping_sub(offset.unsigned_abs()),
            }
            status(Status::Ok)
        }
    );
    define!(linker, "proxy_record_metric", |c, id: i32, value: i64| {
        let state = c.data();
        let Some(key) = state.metric_ids.get(&(id as u32)).cloned() else {
            return status(Status::NotFound);
        };
        let mut shared = lock(&state.shared.state);
        let metric = shared.metrics.entry(key.clone()).or_default();
        match key.0 {
            // Recording a counter adds to it in Envoy.
            MetricKind::Counter => metric.value = metric.value.wrapping_add(value as u64),
            MetricKind::Gauge => metric.value = value as u64,
            MetricKind::Histogram => metric.samples.push(value as u64),
        }
        status(Status::Ok)
    });

    define!(linker, "proxy_get_metric", |c, id: i32, ptr: i32| {
        let state = c.data();
        let kind_bits = id as u32 & 3;
        if kind_bits != MetricKind::Counter.tag() && kind_bits != MetricKind::Gauge.tag() {
            return status(Status::BadArgument);
        }
        let Some(key) = state.metric_ids.get(&(id as u32)).cloned() else {
            return status(Status::NotFound);
        };
        let value = lock(&state.shared.state)
            .metrics
            .get(&key)
            .map(|m| m.value)
            .unwrap_or_default();
        copied(write_u64(c, ptr, value))
    });
    Ok(())
}

fn add_contexts(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    define!(linker, "proxy_set_effective_context", |c, context: i32| {
        status(if c.data_mut().set_effective_context(context as u32) {
            Status::Ok
        } else {
            Status::BadArgument
        })
    });
    // The host never starts a plugin shutdown, so no context is ever pending `done`.
    define!(linker, "proxy_done", |_c| { status(Status::NotFound) });
    // Envoy registers a few foreign functions (compress, declare_property, ...); this host
    // implements none of them.
    define!(
        linker,
        "proxy_call_foreign_function",
        |c,
         name_ptr: i32,
         name_len: i32,
         args_ptr: i32,
         args_len: i32,
         _results_ptr: i32,
         _results_size_ptr: i32| {
            if read(c, name_ptr, name_len).is_none() || read(c, args_ptr, args_len).is_none() {
                return status(Status::InvalidMemoryAccess);
            }
            status(Status::NotFound)
        }
    );
    Ok(())
}
