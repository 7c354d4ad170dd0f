//! Host calls of the proxy-wasm ABI 0.2.1, with every status handled.
//!
//! The proxy-wasm Rust SDK panics on any status it does not expect, and a panic traps the
//! VM, so this filter declares the imports itself. Statuses and enums cross the boundary
//! as plain `u32`: an unknown value from a host is an error here, never undefined
//! behaviour. Buffers the host returns were allocated through
//! [`proxy_on_memory_allocate`](super::proxy_on_memory_allocate) and are taken back into
//! a `Vec` of the same capacity.
#![allow(unsafe_code)]

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;
use core::ptr::{null, null_mut};

/// A status other than `Ok` from a host call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostError(pub u32);

/// `NotFound`.
pub const NOT_FOUND: HostError = HostError(1);
/// `CasMismatch`.
pub const CAS_MISMATCH: HostError = HostError(8);

impl HostError {
    /// Returns the ABI name of the status, for logs.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            6 => "InvalidMemoryAccess",
            7 => "Empty",
            8 => "CasMismatch",
            10 => "InternalFailure",
            12 => "Unimplemented",
            _ => "UnknownStatus",
        }
    }
}

fn check(status: u32) -> Result<(), HostError> {
    if status == 0 { Ok(()) } else { Err(HostError(status)) }
}

/// Log levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum LogLevel {
    /// Trace.
    Trace = 0,
    /// Debug.
    Debug = 1,
    /// Info.
    Info = 2,
    /// Warn.
    Warn = 3,
    /// Error.
    Error = 4,
    /// Critical.
    Critical = 5,
}

/// Header maps.
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum MapType {
    /// Request headers of the current stream.
    HttpRequestHeaders = 0,
    /// Response headers of the current stream.
    HttpResponseHeaders = 2,
    /// Headers of an HTTP call response.
    HttpCallResponseHeaders = 6,
}

/// Buffers.
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum BufferType {
    /// Body of an HTTP call response.
    HttpCallResponseBody = 4,
    /// VM configuration.
    VmConfiguration = 6,
    /// Plugin configuration.
    PluginConfiguration = 7,
}

/// Metric kinds.
#[derive(Clone, Copy, Debug)]
#[repr(u32)]
pub enum MetricType {
    /// Counter.
    Counter = 0,
    /// Gauge.
    Gauge = 1,
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(buffer_type: u32, start: usize, max_size: usize, return_data: *mut *mut u8, return_size: *mut usize) -> u32;
    fn proxy_get_header_map_pairs(map_type: u32, return_data: *mut *mut u8, return_size: *mut usize) -> u32;
    fn proxy_replace_header_map_value(map_type: u32, key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_shared_data(key_data: *const u8, key_size: usize, return_data: *mut *mut u8, return_size: *mut usize, return_cas: *mut u32) -> u32;
    fn proxy_set_shared_data(key_data: *const u8, key_size: usize, value_data: *const u8, value_size: usize, cas: u32) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_http_call(
        upstream_data: *const u8,
        upstream_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        body_data: *const u8,
        body_size: usize,
        trailers_data: *const u8,
        trailers_size: usize,
        timeout_ms: u32,
        return_token: *mut u32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_define_metric(metric_type: u32, name_data: *const u8, name_size: usize, return_id: *mut u32) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
}

// Native builds (unit tests, `cargo check`) have no host: every call reports Unimplemented.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    #![allow(clippy::missing_safety_doc, clippy::too_many_arguments)]
    const UNIMPLEMENTED: u32 = 12;
    pub unsafe fn proxy_log(_: u32, _: *const u8, _: usize) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_get_log_level(_: *mut u32) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_get_current_time_nanoseconds(_: *mut u64) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_set_tick_period_milliseconds(_: u32) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_get_buffer_bytes(_: u32, _: usize, _: usize, _: *mut *mut u8, _: *mut usize) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_get_header_map_pairs(_: u32, _: *mut *mut u8, _: *mut usize) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_replace_header_map_value(_: u32, _: *const u8, _: usize, _: *const u8, _: usize) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_remove_header_map_value(_: u32, _: *const u8, _: usize) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_get_shared_data(_: *const u8, _: usize, _: *mut *mut u8, _: *mut usize, _: *mut u32) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_set_shared_data(_: *const u8, _: usize, _: *const u8, _: usize, _: u32) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_continue_stream(_: u32) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_send_local_response(_: u32, _: *const u8, _: usize, _: *const u8, _: usize, _: *const u8, _: usize, _: i32) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_http_call(_: *const u8, _: usize, _: *const u8, _: usize, _: *const u8, _: usize, _: *const u8, _: usize, _: u32, _: *mut u32) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_set_effective_context(_: u32) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_define_metric(_: u32, _: *const u8, _: usize, _: *mut u32) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_increment_metric(_: u32, _: i64) -> u32 { UNIMPLEMENTED }
    pub unsafe fn proxy_record_metric(_: u32, _: u64) -> u32 { UNIMPLEMENTED }
}
#[cfg(not(target_arch = "wasm32"))]
use native::*;

/// Takes ownership of a buffer the host allocated in guest memory.
///
/// # Safety
///
/// `data` must be null or point to `size` bytes allocated by
/// [`super::proxy_on_memory_allocate`] with exactly that size, and not used elsewhere.
unsafe fn take_buffer(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() || size == 0 {
        return Vec::new();
    }
    // SAFETY: the host filled a block that `proxy_on_memory_allocate(size)` returned; that
    // function allocates a `Vec<u8>` of capacity `size` and leaks it.
    unsafe { Vec::from_raw_parts(data, size, size) }
}

/// Writes a log line.
pub fn log(level: LogLevel, message: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length of a live str.
    check(unsafe { proxy_log(level as u32, message.as_ptr(), message.len()) })
}

/// Returns the host's log level, or `Info` when the host does not say.
pub fn log_level() -> LogLevel {
    let mut level = 2u32;
    // SAFETY: `level` is a valid out pointer.
    let status = unsafe { proxy_get_log_level(&mut level) };
    match (status, level) {
        (0, 0) => LogLevel::Trace,
        (0, 1) => LogLevel::Debug,
        (0, 3) => LogLevel::Warn,
        (0, 4) => LogLevel::Error,
        (0, 5) => LogLevel::Critical,
        _ => LogLevel::Info,
    }
}

/// Returns the wall-clock time in nanoseconds since the Unix epoch.
pub fn now_nanos() -> Result<u64, HostError> {
    let mut nanos = 0u64;
    // SAFETY: `nanos` is a valid out pointer.
    check(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(nanos)
}

/// Sets the tick period of the current root context.
pub fn set_tick_period(milliseconds: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_tick_period_milliseconds(milliseconds) })
}

/// Reads up to `max_size` bytes of a buffer; `Ok(empty)` when the host has none.
pub fn buffer(kind: BufferType, max_size: usize) -> Result<Vec<u8>, HostError> {
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: valid out pointers; the returned block is taken back below.
    let status = unsafe { proxy_get_buffer_bytes(kind as u32, 0, max_size, &mut data, &mut size) };
    match status {
        0 => Ok(unsafe { take_buffer(data, size) }),
        // Envoy answers NotFound for an absent configuration buffer.
        1 => Ok(Vec::new()),
        other => Err(HostError(other)),
    }
}

/// Reads a whole header map as (name, value) pairs.
///
/// Names and values that are not UTF-8 are converted lossily; the serialized form is
/// bounds-checked, so a malformed answer from a host gives an error, not a panic.
pub fn header_pairs(kind: MapType) -> Result<Vec<(String, String)>, HostError> {
    let bytes = header_map_bytes(kind)?;
    decode_pairs(&bytes).ok_or(HostError(3))
}

/// Reads a whole header map into a [`HeaderMap`], which keeps every name and value in
/// the host's buffer instead of two allocations per header.
pub fn header_map(kind: MapType) -> Result<HeaderMap, HostError> {
    HeaderMap::from_buffer(header_map_bytes(kind)?).ok_or(HostError(3))
}

fn header_map_bytes(kind: MapType) -> Result<Vec<u8>, HostError> {
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: valid out pointers; the returned block is taken back below.
    check(unsafe { proxy_get_header_map_pairs(kind as u32, &mut data, &mut size) })?;
    // SAFETY: as for `take_buffer`.
    Ok(unsafe { take_buffer(data, size) })
}

/// Decodes the proxy-wasm map format: a u32 count, then `count` pairs of u32 sizes, then
/// each name and value followed by a NUL byte. All integers little-endian.
pub fn decode_pairs(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for_each_pair(bytes, |name, value| {
        let lossy = |range: Range<usize>| String::from_utf8_lossy(bytes.get(range).unwrap_or_default()).into_owned();
        pairs.push((lossy(name), lossy(value)));
    })?;
    Some(pairs)
}

/// Calls `visit` with the byte ranges of each name and value of a map in the proxy-wasm
/// format, in order; every range is within `bytes`. Returns where the names and values
/// start, or `None` when the bytes are not that format.
fn for_each_pair(bytes: &[u8], mut visit: impl FnMut(Range<usize>, Range<usize>)) -> Option<usize> {
    if bytes.is_empty() {
        return Some(0);
    }
    let read_u32 = |offset: usize| -> Option<usize> {
        let chunk: [u8; 4] = bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(chunk)).ok()
    };
    let count = read_u32(0)?;
    let mut sizes_at = 4usize;
    let data_start = 4usize.checked_add(count.checked_mul(8)?)?;
    if data_start > bytes.len() {
        return None;
    }
    let mut data_at = data_start;
    for _ in 0..count {
        let name_size = read_u32(sizes_at)?;
        let value_size = read_u32(sizes_at + 4)?;
        sizes_at += 8;
        let name = data_at..data_at.checked_add(name_size)?;
        data_at = name.end.checked_add(1)?;
        let value = data_at..data_at.checked_add(value_size)?;
        data_at = value.end.checked_add(1)?;
        if value.end > bytes.len() {
            return None;
        }
        visit(name, value);
    }
    Some(data_start)
}

/// Returns whether every byte is below 0x80, checking eight bytes at a time. A header
/// map contains the token, so this reads most of a request's bytes.
fn is_ascii(bytes: &[u8]) -> bool {
    const HIGH_BITS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut high = 0;
    for word in words.by_ref() {
        high |= word.try_into().map_or(HIGH_BITS, u64::from_le_bytes);
    }
    high & HIGH_BITS == 0 && words.remainder().is_ascii()
}

fn on_char_boundaries(text: &str, range: &Range<usize>) -> bool {
    text.is_char_boundary(range.start) && text.is_char_boundary(range.end)
}

/// A header map read from the host, in order: pseudo-headers (`:path`) as sent, other
/// names in lower case, and names and values that are not UTF-8 converted lossily.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    /// The names and values; other bytes in between are not part of any.
    text: String,
    /// Byte ranges of each name and value in `text`.
    spans: Vec<(Range<usize>, Range<usize>)>,
}

impl HeaderMap {
    /// Decodes the proxy-wasm map format, as [`decode_pairs`] does.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        Self::from_buffer(bytes.to_vec())
    }

    /// Decodes the proxy-wasm map format in the buffer the host wrote. When every name
    /// and value is UTF-8, as they are from Envoy, the buffer becomes the map's text
    /// without a copy.
    pub fn from_buffer(mut bytes: Vec<u8>) -> Option<Self> {
        // The count is bounds-checked when the pairs are read; the capacity only saves
        // regrowing for the usual few dozen headers.
        let count = bytes.get(..4).and_then(|count| count.try_into().ok()).map_or(0, u32::from_le_bytes);
        let mut spans = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(bytes.len() / 10));
        let data_start = for_each_pair(&bytes, |name, value| spans.push((name, value)))?;
        // The count and sizes are read; NUL bytes in their place are valid UTF-8, so the
        // whole buffer is UTF-8 when the names, values and separators are.
        bytes.get_mut(..data_start)?.fill(0);
        if is_ascii(&bytes) {
            // SAFETY: ASCII is UTF-8, and every byte offset of ASCII text is a character
            // boundary, so the spans need no check either.
            let mut map = Self { text: unsafe { String::from_utf8_unchecked(bytes) }, spans };
            map.lowercase_names();
            return Some(map);
        }
        let mut map = match String::from_utf8(bytes) {
            Ok(text) if spans.iter().all(|(name, value)| on_char_boundaries(&text, name) && on_char_boundaries(&text, value)) => {
                Self { text, spans }
            }
            Ok(text) => Self::converted(text.as_bytes(), &spans),
            Err(error) => Self::converted(error.as_bytes(), &spans),
        };
        map.lowercase_names();
        Some(map)
    }

    /// Lower-cases every name but the pseudo-headers' (`:path`).
    fn lowercase_names(&mut self) {
        for (name, _) in &self.spans {
            if let Some(name) = self.text.get_mut(name.clone()).filter(|name| !name.starts_with(':')) {
                name.make_ascii_lowercase();
            }
        }
    }

    /// Copies each name and value at `spans` of `bytes`, converting the ones that are not
    /// UTF-8 on their own lossily.
    fn converted(bytes: &[u8], spans: &[(Range<usize>, Range<usize>)]) -> Self {
        let mut text = String::with_capacity(bytes.len());
        let mut copy = |range: &Range<usize>| {
            let start = text.len();
            text.push_str(&String::from_utf8_lossy(bytes.get(range.clone()).unwrap_or_default()));
            start..text.len()
        };
        let spans = spans.iter().map(|(name, value)| (copy(name), copy(value))).collect();
        Self { text, spans }
    }

    /// Returns the (name, value) pairs in order, repeated names included.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.spans.iter().map(|(name, value)| {
            (self.text.get(name.clone()).unwrap_or_default(), self.text.get(value.clone()).unwrap_or_default())
        })
    }

    /// Returns the first value of `name`, compared exactly.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.value_at(self.position(name)?)
    }

    /// Returns the index of the first pair named `name`, compared exactly.
    pub fn position(&self, name: &str) -> Option<usize> {
        let bytes = self.text.as_bytes();
        // Lengths first: most names differ in length, and that spares a `memcmp` call.
        self.spans.iter().position(|(key, _)| key.len() == name.len() && bytes.get(key.clone()) == Some(name.as_bytes()))
    }

    /// Returns the index of the first pair of each of `names`, compared exactly, in one
    /// pass over the map.
    pub fn positions<const N: usize>(&self, names: [&str; N]) -> [Option<usize>; N] {
        let bytes = self.text.as_bytes();
        let mut found = [None; N];
        for (index, (key, _)) in self.spans.iter().enumerate() {
            for (name, slot) in names.iter().zip(found.iter_mut()) {
                if slot.is_none() && key.len() == name.len() && bytes.get(key.clone()) == Some(name.as_bytes()) {
                    *slot = Some(index);
                }
            }
        }
        found
    }

    /// Returns the value of the pair at `index`.
    pub fn value_at(&self, index: usize) -> Option<&str> {
        let (_, value) = self.spans.get(index)?;
        self.text.get(value.clone())
    }

    /// Returns the number of pairs, repeated names counted each time.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Returns whether the map has no pairs.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Returns whether the map has a header `name`, compared exactly.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Encodes pairs in the proxy-wasm map format.
pub fn encode_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    let count = u32::try_from(pairs.len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&count.to_le_bytes());
    for (name, value) in pairs {
        bytes.extend_from_slice(&u32::try_from(name.len()).unwrap_or(u32::MAX).to_le_bytes());
        bytes.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes());
    }
    for (name, value) in pairs {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    bytes
}

/// Sets a header, replacing every value it had.
pub fn replace_header(kind: MapType, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live strs.
    check(unsafe { proxy_replace_header_map_value(kind as u32, name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// Removes every value of a header.
pub fn remove_header(kind: MapType, name: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length of a live str.
    match unsafe { proxy_remove_header_map_value(kind as u32, name.as_ptr(), name.len()) } {
        0 | 1 => Ok(()),
        other => Err(HostError(other)),
    }
}

/// Reads shared data: `Ok(None)` when the key is absent, else the value and its CAS.
pub fn shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let mut data = null_mut();
    let mut size = 0usize;
    let mut cas = 0u32;
    // SAFETY: valid out pointers; the returned block is taken back below.
    let status = unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        0 => Ok(Some((unsafe { take_buffer(data, size) }, cas))),
        1 => Ok(None),
        other => Err(HostError(other)),
    }
}

/// Writes shared data; `cas` 0 writes unconditionally, else only over that version.
pub fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live slices.
    check(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas) })
}

/// Resumes the current HTTP request.
pub fn continue_request() -> Result<(), HostError> {
    // SAFETY: no pointers. Stream type 0 is the HTTP request.
    check(unsafe { proxy_continue_stream(0) })
}

/// Answers the current request locally.
pub fn send_local_response(status: u16, details: &str, body: &[u8], headers: &[(&str, &str)]) -> Result<(), HostError> {
    let headers = encode_pairs(headers);
    // SAFETY: pointers and lengths of live buffers; -1 means no gRPC status.
    check(unsafe {
        proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            if body.is_empty() { null() } else { body.as_ptr() },
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Starts an HTTP call to a cluster with an optional body; returns its token.
pub fn http_call(cluster: &str, headers: &[(&str, &str)], body: &[u8], timeout_ms: u32) -> Result<u32, HostError> {
    let headers = encode_pairs(headers);
    let trailers = encode_pairs(&[]);
    let mut token = 0u32;
    // SAFETY: pointers and lengths of live buffers; `token` is a valid out pointer.
    check(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            if body.is_empty() { null() } else { body.as_ptr() },
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

/// Switches the context that following calls act on.
pub fn set_effective_context(context_id: u32) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_effective_context(context_id) })
}

/// Defines (or finds) a metric; returns its id.
pub fn define_metric(kind: MetricType, name: &str) -> Result<u32, HostError> {
    let mut id = 0u32;
    // SAFETY: pointer and length of a live str; `id` is a valid out pointer.
    check(unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds to a counter.
pub fn increment_metric(id: u32, offset: i64) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check(unsafe { proxy_increment_metric(id, offset) })
}

/// Sets a gauge.
pub fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: no pointers.
    check(unsafe { proxy_record_metric(id, value) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let encoded = encode_pairs(&[(":path", "/a"), ("x", "")]);
        let decoded = decode_pairs(&encoded).unwrap();
        assert_eq!(decoded, [(String::from(":path"), String::from("/a")), (String::from("x"), String::new())]);
    }

    #[test]
    fn header_map_matches_pairs() {
        let encoded = encode_pairs(&[(":path", "/a"), ("X-Token", "v1"), ("x-token", ""), (":Odd", "B")]);
        let map = HeaderMap::decode(&encoded).unwrap();
        let pairs: Vec<(&str, &str)> = map.pairs().collect();
        assert_eq!(pairs, [(":path", "/a"), ("x-token", "v1"), ("x-token", ""), (":Odd", "B")]);
        assert_eq!(map.get("x-token"), Some("v1"));
        assert_eq!(map.get(":odd"), None, "pseudo-header names are kept as sent");
        assert!(!map.contains("X-Token"), "other names are lower case");
        assert_eq!(HeaderMap::decode(&[]).unwrap(), HeaderMap::default());
    }

    #[test]
    fn header_map_converts_invalid_utf8_lossily() {
        let mut encoded = encode_pairs(&[("n\u{e9}", "v\u{e9}")]);
        // Cut the two-byte `é` of the name and of the value to their first byte.
        let name_at = 4 + 8;
        encoded[name_at + 2] = b'X';
        let value_at = name_at + 4;
        encoded[value_at + 2] = b'Y';
        let map = HeaderMap::decode(&encoded).unwrap();
        let pairs: Vec<(&str, &str)> = map.pairs().collect();
        assert_eq!(pairs, [("n\u{fffd}x", "v\u{fffd}Y")]);
        let lossy = decode_pairs(&encoded).unwrap();
        assert_eq!(lossy[0].0.to_ascii_lowercase(), pairs[0].0);
        assert_eq!(lossy[0].1, pairs[0].1);
    }

    #[test]
    fn ascii_check_finds_high_bytes() {
        for len in 0..40 {
            let mut bytes = alloc::vec![b'a'; len];
            assert!(is_ascii(&bytes), "{len}");
            for at in 0..len {
                for high in [0x80, 0xc3, 0xff] {
                    bytes[at] = high;
                    assert!(!is_ascii(&bytes), "{len} {at} {high}");
                    bytes[at] = 0x7f;
                    assert!(is_ascii(&bytes), "{len} {at}");
                }
            }
        }
    }

    #[test]
    fn ascii_map_lowercases_regular_names() {
        let encoded = encode_pairs(&[(":Path", "/A"), ("Authorization", "Bearer X"), ("x-ID", "V")]);
        let map = HeaderMap::decode(&encoded).unwrap();
        let pairs: Vec<(&str, &str)> = map.pairs().collect();
        assert_eq!(pairs, [(":Path", "/A"), ("authorization", "Bearer X"), ("x-id", "V")]);
        assert_eq!(map.position("x-id"), Some(2));
        assert_eq!(map.position("x-i"), None);
        assert_eq!(map.positions([":Path", "x-id", ":path"]), [Some(0), Some(2), None]);
        assert!(map.contains("authorization"));
        assert!(!map.contains("Authorization"));
    }

    #[test]
    fn truncated_pairs_rejected() {
        let encoded = encode_pairs(&[(":path", "/a")]);
        for end in 1..encoded.len() - 1 {
            assert!(decode_pairs(&encoded[..end]).is_none(), "{end}");
            assert!(HeaderMap::decode(&encoded[..end]).is_none(), "{end}");
        }
        let mut huge = encoded.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_pairs(&huge).is_none());
    }
}
