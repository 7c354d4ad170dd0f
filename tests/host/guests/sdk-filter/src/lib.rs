//! Test filter for the Envoy stand-in, written against the proxy-wasm Rust SDK.
//!
//! Request headers select the behaviour. With `x-call` it calls cluster `upstream` and
//! copies the response status into `x-called` before resuming. With `x-deny` it replies
//! 403. Otherwise it adds `x-sdk: 1` and continues. A plugin configuration of `reject` makes
//! `on_configure` fail.

use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root) });
}}

struct Root;

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        config != b"reject"
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Filter;

impl Context for Filter {
    fn on_http_call_response(&mut self, _token: u32, _headers: usize, body_size: usize, _trailers: usize) {
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_else(|| "none".to_string());
        let body = self.get_http_call_response_body(0, body_size).unwrap_or_default();
        self.set_http_request_header("x-called", Some(&status));
        self.set_http_request_header("x-body-length", Some(&body.len().to_string()));
        self.resume_http_request();
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        if self.get_http_request_header("x-call").is_some() {
            let headers = vec![(":method", "GET"), (":path", "/keys"), (":authority", "idp.test")];
            return match self.dispatch_http_call("upstream", headers, None, vec![], Duration::from_secs(5)) {
                Ok(_) => Action::Pause,
                Err(status) => {
                    let body = format!("dispatch failed: {status:?}");
                    self.send_http_response(500, vec![], Some(body.as_bytes()));
                    Action::Pause
                }
            };
        }
        if self.get_http_request_header("x-deny").is_some() {
            self.send_http_response(403, vec![("x-reason", "denied")], Some(b"forbidden"));
            return Action::Pause;
        }
        self.set_http_request_header("x-sdk", Some("1"));
        Action::Continue
    }
}
