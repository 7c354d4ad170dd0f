//! Authorization requests and responses.

use alloc::string::String;
use alloc::vec::Vec;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::convert;
use crate::authorization::{self, AuthorizationRequest, ResponseExpectations};

/// Splits a space-delimited scope string; array entries are taken as single scope tokens,
/// so the core rejects an entry that contains a space.
fn scope_tokens(value: &JsValue) -> Result<Vec<String>, JsValue> {
    if let Some(text) = value.as_string() {
        return Ok(text.split(' ').filter(|token| !token.is_empty()).map(String::from).collect());
    }
    if value.is_undefined() {
        return Err(convert::type_error("scope must be a string or an array of strings"));
    }
    convert::string_list(value, "scope")
}

/// `buildAuthorizationUrl(options)`: the authorization request URL with
/// `response_type=code` and `code_challenge_method=S256`.
#[wasm_bindgen(js_name = buildAuthorizationUrl)]
pub fn build_authorization_url(options: JsValue) -> Result<String, JsValue> {
    let options = convert::required_options(&options, "options")?;
    let request = AuthorizationRequest {
        authorization_endpoint: convert::string_or_url(
            &convert::property(&options, "authorizationEndpoint")?,
            "authorizationEndpoint",
        )?,
        client_id: convert::required_string_property(&options, "clientId")?,
        redirect_uri: convert::string_or_url(&convert::property(&options, "redirectUri")?, "redirectUri")?,
        scopes: scope_tokens(&convert::property(&options, "scope")?)?,
        state: convert::required_string_property(&options, "state")?,
        code_challenge: convert::required_string_property(&options, "codeChallenge")?,
        resources: convert::string_list(&convert::property(&options, "resource")?, "resource")?,
        extra_params: convert::string_record(&convert::property(&options, "extraParams")?, "extraParams")?,
    };
    Ok(request.to_url()?)
}

/// `parseAuthorizationResponse(url, { expectedState, expectedIssuer? })`: the code of a
/// successful response, after the core's `iss` and `state` checks.
#[wasm_bindgen(js_name = parseAuthorizationResponse)]
pub fn parse_authorization_response(url: JsValue, options: JsValue) -> Result<JsValue, JsValue> {
    let url = convert::string_or_url(&url, "url")?;
    let options = convert::required_options(&options, "options")?;
    let expected_state = convert::required_string_property(&options, "expectedState")?;
    let expected_issuer = convert::optional_string_property(&options, "expectedIssuer")?;
    let expectations = ResponseExpectations { state: &expected_state, issuer: expected_issuer.as_deref() };
    let response = authorization::parse_authorization_response(&url, expectations)?;
    convert::plain_object(&[("code", JsValue::from_str(&response.code))])
}
