//! DPoP proof verification (feature `web-verify`): the core's checks of one proof against
//! one request ([RFC 9449 §4.3](https://www.rfc-editor.org/rfc/rfc9449#section-4.3)).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::convert;
use crate::alg::Algorithm;
use crate::dpop::{self, DpopPolicy, ProofRequest};

/// Reads the `algorithms` option: registered names of asymmetric algorithms.
fn algorithms(value: &JsValue) -> Result<Vec<Algorithm>, JsValue> {
    convert::string_list(value, "algorithms")?
        .iter()
        .map(|name| match Algorithm::from_name(name) {
            Some(algorithm) if !algorithm.is_symmetric() => Ok(algorithm),
            Some(_) => Err(convert::type_error(&format!("algorithms: {name} is symmetric; DPoP proofs need an asymmetric algorithm"))),
            None => Err(convert::type_error(&format!("algorithms: unknown algorithm {name}"))),
        })
        .collect()
}

/// `verifyDpopProof(proof, request, options?)`: checks a proof against the request
/// `{ method, url, accessToken?, nonces? }` with `{ algorithms?, maxAge?, requireNonce?,
/// now? }` and returns `{ jkt, jti, iat }`.
///
/// It does NOT check replay (`jti` uniqueness) or the access token's `cnf.jkt`.
#[wasm_bindgen(js_name = verifyDpopProof)]
pub fn verify_dpop_proof(proof: JsValue, request: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let proof = convert::string(&proof, "proof")?;
    let request = convert::required_options(&request, "request")?;
    let method = convert::required_string_property(&request, "method")?;
    let url = convert::string_or_url(&convert::property(&request, "url")?, "url")?;
    let access_token = convert::optional_string_property(&request, "accessToken")?;
    let nonces = convert::string_list(&convert::property(&request, "nonces")?, "nonces")?;

    let mut policy = DpopPolicy::default();
    let mut now = JsValue::UNDEFINED;
    if let Some(options) = convert::options(&options, "options")? {
        let names = convert::property(&options, "algorithms")?;
        if !names.is_undefined() {
            policy.algorithms = algorithms(&names)?;
        }
        if let Some(max_age) = convert::optional_non_negative(&convert::property(&options, "maxAge")?, "maxAge")? {
            policy.max_age_seconds = max_age;
        }
        let require_nonce = convert::property(&options, "requireNonce")?;
        if !require_nonce.is_undefined() {
            policy.require_nonce = require_nonce.as_bool().ok_or_else(|| convert::type_error("requireNonce must be a boolean"))?;
        }
        now = convert::property(&options, "now")?;
    }
    let now = convert::now_or_clock(&now)?;

    let nonces: Vec<&str> = nonces.iter().map(String::as_str).collect();
    let request = ProofRequest { method: &method, url: &url, access_token: access_token.as_deref(), nonces: &nonces };
    let verified = dpop::verify_proof(&proof, &request, &policy, now)?;
    convert::plain_object(&[
        ("jkt", JsValue::from_str(&verified.jkt)),
        ("jti", JsValue::from_str(&verified.jti)),
        ("iat", convert::seconds_or_null(Some(verified.iat))),
    ])
}
