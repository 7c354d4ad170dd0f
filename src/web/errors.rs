//! Conversion of core failures to the JavaScript error classes of `js/package/errors.js`.
//!
//! The npm build script points the generated glue of both entry points at one shared copy of
//! that file, so `instanceof TokenError` holds for errors from either entry point.

use alloc::string::{String, ToString};
use core::fmt::Display;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use crate::authorization::{RequestError, ResponseError};
use crate::error::{ErrorCode, ParseError, VerifyError};
use crate::pkce::PkceError;

#[wasm_bindgen(module = "/js/package/errors.js")]
extern "C" {
    type TokenError;

    #[wasm_bindgen(constructor)]
    fn new(code: &str, status: u16, message: &str) -> TokenError;

    type AuthorizationResponseError;

    #[wasm_bindgen(constructor)]
    fn new(
        code: &str,
        message: &str,
        error: Option<String>,
        error_description: Option<String>,
        error_uri: Option<String>,
    ) -> AuthorizationResponseError;
}

/// Builds a `TokenError` with the code's string form and HTTP status.
pub(crate) fn token_error(code: ErrorCode, message: &dyn Display) -> JsValue {
    TokenError::new(code.as_str(), code.http_status(), &message.to_string()).into()
}

impl From<PkceError> for JsValue {
    fn from(error: PkceError) -> Self {
        token_error(error.code(), &error)
    }
}

impl From<ParseError> for JsValue {
    fn from(error: ParseError) -> Self {
        token_error(error.code(), &error)
    }
}

impl From<VerifyError> for JsValue {
    fn from(error: VerifyError) -> Self {
        token_error(error.code(), &error)
    }
}

impl From<ResponseError> for JsValue {
    fn from(error: ResponseError) -> Self {
        let message = error.to_string();
        let code = error.code().as_str();
        match error {
            ResponseError::ErrorResponse { error, error_description, error_uri } => {
                AuthorizationResponseError::new(code, &message, Some(error), error_description, error_uri).into()
            }
            _ => AuthorizationResponseError::new(code, &message, None, None, None).into(),
        }
    }
}

impl From<RequestError> for JsValue {
    /// Parameters that cannot be sent are a programming error, like an invalid `new URL()`.
    fn from(error: RequestError) -> Self {
        super::convert::type_error(&error.to_string())
    }
}
