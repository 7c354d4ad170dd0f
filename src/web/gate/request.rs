//! The request a worker hands to the gate, and the decisions it gets back, as JavaScript
//! values.

use alloc::string::String;
use alloc::vec::Vec;

use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};

use super::super::convert;
use crate::config::Gate;
use crate::gate::{Allowed, Denial, RequestParts};

/// A request as the gate reads it.
pub struct Request {
    method: String,
    scheme: String,
    authority: String,
    /// Path with query, without fragment.
    path: String,
    /// Lower-case names, in the order given.
    headers: Vec<(String, String)>,
}

/// Splits an absolute URL into scheme, authority and path with query; the fragment is
/// dropped. Returns `None` unless the URL has a scheme and a non-empty authority.
fn split_url(url: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (authority, path) = match rest.find(['/', '?']) {
        Some(index) => rest.split_at(index),
        None => (rest, "/"),
    };
    if scheme.is_empty() || authority.is_empty() {
        return None;
    }
    let path = if path.starts_with('?') { alloc::format!("/{path}") } else { String::from(path) };
    Some((scheme.to_ascii_lowercase(), String::from(authority), path))
}

/// Reads headers from a `Headers` object or another iterable of `[name, value]` pairs,
/// or from a plain object of strings.
fn read_headers(value: &JsValue) -> Result<Vec<(String, String)>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(Vec::new());
    }
    let pairs = match js_sys::try_iter(value)? {
        Some(iterator) => {
            let mut pairs = Vec::new();
            for entry in iterator {
                let entry = entry?;
                let pair = entry
                    .dyn_ref::<Array>()
                    .filter(|pair| pair.length() == 2)
                    .ok_or_else(|| convert::type_error("request.headers must yield [name, value] pairs"))?;
                let name = convert::string(&pair.get(0), "a header name")?;
                let value = convert::string(&pair.get(1), "a header value")?;
                pairs.push((name, value));
            }
            pairs
        }
        None => convert::string_record(value, "request.headers")?,
    };
    Ok(pairs
        .into_iter()
        .filter(|(name, _)| !name.starts_with(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect())
}

impl Request {
    /// Reads `{method, url, headers}`.
    pub fn from_js(value: &JsValue) -> Result<Self, JsValue> {
        let object: Object = convert::required_options(value, "request")?;
        let method = convert::required_string_property(&object, "method")?;
        let url = convert::string_or_url(&convert::property(&object, "url")?, "request.url")?;
        let (scheme, authority, path) =
            split_url(&url).ok_or_else(|| convert::type_error(&alloc::format!("request.url {url:?} is not an absolute URL")))?;
        let headers = read_headers(&convert::property(&object, "headers")?)?;
        Ok(Self { method, scheme, authority, path, headers })
    }

    /// Returns the headers as borrowed pairs, for [`Request::parts`].
    pub fn header_pairs(&self) -> Vec<(&str, &str)> {
        self.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect()
    }

    /// Returns the parts the core's gate reads, with `headers` from
    /// [`Request::header_pairs`].
    pub fn parts<'a>(&'a self, headers: &'a [(&'a str, &'a str)]) -> RequestParts<'a> {
        RequestParts { method: &self.method, path: &self.path, scheme: &self.scheme, authority: &self.authority, headers }
    }
}

fn pairs(values: &[(String, String)]) -> JsValue {
    values
        .iter()
        .map(|(name, value)| -> JsValue { Array::of2(&JsValue::from_str(name), &JsValue::from_str(value)).into() })
        .collect::<Array>()
        .into()
}

fn provider_names(gate: &Gate, indices: &[usize]) -> Vec<String> {
    indices.iter().filter_map(|index| gate.providers.get(*index)).map(|provider| provider.name.clone()).collect()
}

/// Builds `{action: 'allow', removeHeaders, setHeaders, responseHeaders, url, providers,
/// corsPreflight, warnings}`.
pub fn allow_object(gate: &Gate, request: &Request, allowed: &Allowed, warnings: &[String]) -> Result<JsValue, JsValue> {
    let mut path = &request.path;
    let mut set_headers = Vec::new();
    for (name, value) in &allowed.set_headers {
        // The core rewrites `:path` when it removes a token from the query.
        if name == ":path" {
            path = value;
        } else {
            set_headers.push((name.clone(), value.clone()));
        }
    }
    let url = alloc::format!("{}://{}{}", request.scheme, request.authority, path);
    convert::plain_object(&[
        ("action", JsValue::from_str("allow")),
        ("removeHeaders", convert::string_array(&allowed.remove_headers)),
        ("setHeaders", pairs(&set_headers)),
        ("responseHeaders", pairs(&allowed.response_headers)),
        ("url", JsValue::from_str(&url)),
        ("providers", convert::string_array(&provider_names(gate, &allowed.verified))),
        ("corsPreflight", JsValue::from_bool(allowed.cors_preflight)),
        ("warnings", convert::string_array(warnings)),
    ])
}

/// Builds `{action: 'deny', status, code, headers, body, message, provider}`.
pub fn deny_object(gate: &Gate, denial: &Denial) -> Result<JsValue, JsValue> {
    let provider = denial.provider.and_then(|index| gate.providers.get(index));
    convert::plain_object(&[
        ("action", JsValue::from_str("deny")),
        ("status", JsValue::from_f64(f64::from(denial.status))),
        ("code", JsValue::from_str(denial.code.as_str())),
        ("headers", pairs(&denial.headers)),
        ("body", JsValue::from_str(&denial.body)),
        ("message", JsValue::from_str(&denial.message)),
        ("provider", provider.map_or(JsValue::NULL, |provider| JsValue::from_str(&provider.name))),
    ])
}

/// Builds `{action: 'pending', providers}`.
pub fn pending_object(gate: &Gate, providers: &[usize]) -> Result<JsValue, JsValue> {
    convert::plain_object(&[
        ("action", JsValue::from_str("pending")),
        ("providers", convert::string_array(&provider_names(gate, providers))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_split() {
        let split = |url| split_url(url).map(|(scheme, authority, path)| [scheme, authority, path]);
        assert_eq!(split("https://api.example.com/a?b=1#c").unwrap(), ["https", "api.example.com", "/a?b=1"]);
        assert_eq!(split("HTTP://127.0.0.1:8080").unwrap(), ["http", "127.0.0.1:8080", "/"]);
        assert_eq!(split("https://api.example.com?x=1").unwrap(), ["https", "api.example.com", "/?x=1"]);
        assert!(split("/relative").is_none());
        assert!(split("https:///path").is_none());
    }
}
