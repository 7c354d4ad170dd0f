//! HTTP callouts (`proxy_http_call`) run on background threads, and the responses Envoy's
//! router makes up when an upstream fails.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::headers::HeaderMap;
use crate::http::{self, FetchError, HttpRequest, HttpResponse};
use crate::options::LogLevel;
use crate::state::{CalloutDone, Shared, lock};

/// Body of the 504 Envoy's router returns when a callout times out.
pub(crate) const TIMEOUT_BODY: &str = "upstream request timeout";
/// Body of the 503 Envoy's router returns when the connection cannot be opened.
const CONNECT_FAILURE_BODY: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
/// Body of the 503 Envoy's router returns when the connection closes before headers.
const TERMINATION_BODY: &str = "upstream connect error or disconnect/reset before headers. reset reason: connection termination";

/// Builds the response Envoy's router sends for a failed upstream request: a local
/// reply with `content-length` and `content-type: text/plain` (`Utility::sendLocalReply` in
/// Envoy's `source/common/http/utility.cc`). Envoy's `AsyncStreamImpl::sendLocalReply`
/// hands such a reply to the caller as a normal response, so the guest receives a 503 or 504,
/// not a failure.
// NOTE: the body texts are those of Envoy 1.2x-1.3x; newer releases append details such as
// "transport failure reason". Tests should check the status, not the body.
pub(crate) fn router_reply(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![
            ("content-length".to_string(), body.len().to_string()),
            ("content-type".to_string(), "text/plain".to_string()),
        ],
        body: body.as_bytes().to_vec(),
    }
}

/// Builds the 503 Envoy's router sends when the connection to the cluster is refused.
pub(crate) fn connect_failure_reply() -> HttpResponse {
    router_reply(503, CONNECT_FAILURE_BODY)
}

/// Returns the header pairs the guest reads for a callout response: `:status` first, then
/// the response headers.
pub(crate) fn response_pairs(response: &HttpResponse) -> Vec<(String, String)> {
    let mut map = HeaderMap::from_pairs([(":status", response.status.to_string())]);
    for (name, value) in &response.headers {
        map.add(name, value);
    }
    map.pairs().to_vec()
}

/// Starts a callout on a new thread; its result goes to the event loop. Returns false if
/// the thread could not be started.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    worker: usize,
    token: u32,
    address: SocketAddr,
    headers: &HeaderMap,
    body: Vec<u8>,
    timeout: Option<Duration>,
) -> bool {
    let request = HttpRequest {
        method: headers.get(":method").unwrap_or_default().to_string(),
        path: headers.get(":path").unwrap_or_default().to_string(),
        authority: headers.get(":authority").unwrap_or_default().to_string(),
        headers: headers
            .pairs()
            .iter()
            .filter(|(name, _)| !name.starts_with(':'))
            .cloned()
            .collect(),
        body,
    };
    // The host's event loop enforces the guest's timeout; the socket timeout only makes
    // sure the thread ends eventually.
    let read_timeout = timeout.map(|t| t + Duration::from_secs(1));
    let sender = lock(&shared.callout_results).clone();
    let spawned = thread::Builder::new()
        .name(format!("callout-{worker}-{token}"))
        .spawn(move || {
            let response = match http::fetch(address, &request, read_timeout) {
                Ok(response) => Some(response),
                Err(FetchError::Connect(_)) => Some(connect_failure_reply()),
                Err(FetchError::ResetBeforeHeaders) => Some(router_reply(503, TERMINATION_BODY)),
                // Envoy's async client reports a reset after the response started, and a
                // body over its buffer limit, through onFailure: no headers, no body.
                Err(FetchError::ResetAfterHeaders | FetchError::TooLarge) => None,
                // The event loop has delivered (or will deliver) the 504 by now.
                Err(FetchError::Timeout { .. }) => return,
            };
            let _ = sender.send(CalloutDone {
                worker,
                token,
                response,
            });
        });
    match spawned {
        Ok(_) => true,
        Err(error) => {
            shared.log(
                worker,
                LogLevel::Error,
                format!("failed to start the thread for callout {token}: {error}"),
            );
            false
        }
    }
}
