//! A small HTTP/1.1 client and server parser over std `TcpStream`, used for callouts and by
//! the `envoy-host` binary. One request per connection (`connection: close`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest response or request body read, in bytes. Bigger bodies fail the exchange.
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// Largest header section read, in bytes.
const MAX_HEADER_BYTES: usize = 1024 * 1024;
/// How long a connection attempt to a loopback address may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP request to send upstream.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    pub method: String,
    pub path: String,
    pub authority: String,
    /// Headers other than the pseudo-headers; `host`, `content-length`, `connection` and
    /// `transfer-encoding` are replaced by the client's own.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// An HTTP response; header names are lower-cased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why an exchange failed.
#[derive(Debug)]
pub enum FetchError {
    /// The TCP connection could not be opened.
    Connect(io::Error),
    /// The connection closed or broke before a complete status line and headers arrived.
    ResetBeforeHeaders,
    /// The connection closed or broke while the body was being read.
    ResetAfterHeaders,
    /// The body is larger than `MAX_BODY_BYTES`.
    TooLarge,
    /// No data arrived within the read timeout.
    Timeout { headers_received: bool },
}

/// Sends `request` to `address` and reads the whole response.
///
/// `read_timeout` bounds each socket read; `None` waits up to 10 minutes.
///
/// # Errors
///
/// Returns a `FetchError` for connect failures, resets, oversized bodies and timeouts.
pub fn fetch(
    address: SocketAddr,
    request: &HttpRequest,
    read_timeout: Option<Duration>,
) -> Result<HttpResponse, FetchError> {
    let mut stream =
        TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).map_err(FetchError::Connect)?;
    let timeout = read_timeout.unwrap_or(Duration::from_secs(600));
    // A zero timeout would mean "none" to std; the callers never pass one.
    let timeout = timeout.max(Duration::from_millis(1));
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let _ = stream.set_nodelay(true);

    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\n",
        request.method, request.path, request.authority
    );
    for (name, value) in &request.headers {
        if is_connection_header(name) || name.starts_with(':') {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !request.body.is_empty() || !matches!(request.method.as_str(), "GET" | "HEAD") {
        head.push_str(&format!("content-length: {}\r\n", request.body.len()));
    }
    head.push_str("connection: close\r\n\r\n");
    if stream.write_all(head.as_bytes()).is_err() || stream.write_all(&request.body).is_err() {
        return Err(FetchError::ResetBeforeHeaders);
    }

    let mut reader = BufReader::new(stream);
    let (status_line, headers) = read_head(&mut reader).map_err(|e| match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => FetchError::Timeout {
            headers_received: false,
        },
        _ => FetchError::ResetBeforeHeaders,
    })?;
    let status = parse_status_line(&status_line).ok_or(FetchError::ResetBeforeHeaders)?;
    let no_body = request.method == "HEAD" || status / 100 == 1 || status == 204 || status == 304;
    let body = if no_body {
        Vec::new()
    } else {
        read_body(&mut reader, &headers, true).map_err(|e| match e {
            BodyError::TooLarge => FetchError::TooLarge,
            BodyError::Io(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                FetchError::Timeout {
                    headers_received: true,
                }
            }
            BodyError::Io(_) => FetchError::ResetAfterHeaders,
        })?
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// A request read from a client connection.
#[derive(Clone, Debug)]
pub struct IncomingRequest {
    pub method: String,
    /// The request target, path and query.
    pub path: String,
    /// Headers with lower-cased names, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Reads one HTTP/1.1 request from `stream`.
///
/// # Errors
///
/// Returns an `io::Error` of kind `InvalidData` for a malformed request or a body larger
/// than `MAX_BODY_BYTES`, or the underlying I/O error.
pub fn read_request(stream: &mut TcpStream) -> io::Result<IncomingRequest> {
    let mut reader = BufReader::new(stream);
    let (request_line, headers) = read_head(&mut reader)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(format!("malformed request line {request_line:?}")));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!("unsupported HTTP version {version:?}")));
    }
    let body = read_body(&mut reader, &headers, false).map_err(|e| match e {
        BodyError::TooLarge => invalid("request body is larger than 64 MiB".to_string()),
        BodyError::Io(e) => e,
    })?;
    Ok(IncomingRequest {
        method: method.to_string(),
        path: path.to_string(),
        headers,
        body,
    })
}

/// Writes a complete response with `content-length` and `connection: close`.
///
/// # Errors
///
/// Returns the I/O error of the write.
pub fn write_response(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    for (name, value) in headers {
        if is_connection_header(name) || name.starts_with(':') {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()
}

fn is_connection_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "host" | "content-length" | "connection" | "transfer-encoding" | "keep-alive"
    )
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads the start line and the header section.
fn read_head<R: BufRead>(reader: &mut R) -> io::Result<(String, Vec<(String, String)>)> {
    let mut total = 0;
    let start_line = read_line(reader, &mut total)?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader, &mut total)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(format!("malformed header line {line:?}")));
        };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok((start_line, headers))
}

fn read_line<R: BufRead>(reader: &mut R, total: &mut usize) -> io::Result<String> {
    let mut line = Vec::new();
    let read = reader
        .by_ref()
        .take((MAX_HEADER_BYTES - *total) as u64)
        .read_until(b'\n', &mut line)?;
    *total += read;
    if read == 0 || line.last() != Some(&b'\n') {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed inside the header section",
        ));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn parse_status_line(line: &str) -> Option<u16> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

enum BodyError {
    TooLarge,
    Io(io::Error),
}

impl From<io::Error> for BodyError {
    fn from(error: io::Error) -> Self {
        BodyError::Io(error)
    }
}

/// Reads a body framed by `transfer-encoding: chunked` or `content-length`; without either,
/// a response body runs to the end of the connection and a request has none.
fn read_body<R: BufRead>(
    reader: &mut R,
    headers: &[(String, String)],
    until_close: bool,
) -> Result<Vec<u8>, BodyError> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return read_chunked(reader);
    }
    if let Some(length) = header("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| BodyError::Io(invalid(format!("invalid content-length {length:?}"))))?;
        if length > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    if until_close {
        let read = reader
            .take(MAX_BODY_BYTES as u64 + 1)
            .read_to_end(&mut body)?;
        if read > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
    }
    Ok(body)
}

fn read_chunked<R: BufRead>(reader: &mut R) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    let mut total = 0;
    loop {
        let line = read_line(reader, &mut total)?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| BodyError::Io(invalid(format!("invalid chunk size {size_text:?}"))))?;
        if size == 0 {
            // Trailer section, ended by an empty line.
            while !read_line(reader, &mut total)?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
        // Chunk lines do not count toward the header limit.
        total = 0;
    }
}

/// Returns the standard reason phrase of a status code, or an empty string.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}
