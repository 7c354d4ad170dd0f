//! Token inspection WITHOUT verification, for display and refresh timing only.
//!
//! Dates come from the core's NumericDate rules ([`Claims::from_map`]), the same values the
//! verifier compares, so the inspector never reports an `exp` the verifier would read
//! differently. A registered claim the verifier would reject (a string `exp`, an `exp`
//! beyond year 9999, a numeric `aud`) makes inspection fail with `claims_malformed` too.

use alloc::string::String;

use serde_json::{Map, Value};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::convert;
use crate::claims::Claims;
use crate::token::{self, InspectedToken, DEFAULT_MAX_TOKEN_BYTES};

/// Decodes the token and types its registered claims; `Claims::all` keeps the whole
/// claims object.
fn inspect(token: &JsValue) -> Result<(Map<String, Value>, Claims), JsValue> {
    let token = convert::string(token, "token")?;
    let InspectedToken { header, claims } = token::inspect_token(&token, DEFAULT_MAX_TOKEN_BYTES)?;
    Ok((header, Claims::from_map(claims)?))
}

/// `inspectToken(token)`: header, claims, dates and scopes, decoded without any check of
/// the signature, algorithm, issuer, audience or time.
#[wasm_bindgen(js_name = inspectToken)]
pub fn inspect_token(token: JsValue) -> Result<JsValue, JsValue> {
    let (header, claims) = inspect(&token)?;
    convert::plain_object(&[
        ("header", convert::json_object(&header)?),
        ("claims", convert::json_object(&claims.all)?),
        ("issuedAt", convert::seconds_or_null(claims.iat)),
        ("expiresAt", convert::seconds_or_null(claims.exp)),
        ("notBefore", convert::seconds_or_null(claims.nbf)),
        ("scopes", convert::string_array(&claims.scopes)),
    ])
}

/// `expiresIn(token, now?)`: seconds from `now` until `exp` (negative once it has
/// passed), or `null` without `exp`.
#[wasm_bindgen(js_name = expiresIn)]
pub fn expires_in(token: JsValue, now: JsValue) -> Result<JsValue, JsValue> {
    let (_, claims) = inspect(&token)?;
    let now = i64::try_from(convert::now_or_clock(&now)?).unwrap_or(i64::MAX);
    Ok(convert::seconds_or_null(claims.exp.map(|exp| exp.saturating_sub(now))))
}

/// `isExpired(token, { minValidity?, clockSkew?, now? })`: whether `exp` is at or before
/// `now + clockSkew + minValidity`; false without `exp`.
#[wasm_bindgen(js_name = isExpired)]
pub fn is_expired(token: JsValue, options: JsValue) -> Result<bool, JsValue> {
    let (_, claims) = inspect(&token)?;
    let options = convert::options(&options, "options")?;
    let read = |key: &str| -> Result<Option<u64>, JsValue> {
        match &options {
            Some(options) => convert::optional_non_negative(&convert::property(options, key)?, key),
            None => Ok(None),
        }
    };
    let min_validity = read("minValidity")?.unwrap_or(0);
    let clock_skew = read("clockSkew")?.unwrap_or(0);
    let now = match &options {
        Some(options) => convert::now_or_clock(&convert::property(options, "now")?)?,
        None => convert::now_or_clock(&JsValue::UNDEFINED)?,
    };
    let deadline = now.saturating_add(clock_skew).saturating_add(min_validity);
    let deadline = i64::try_from(deadline).unwrap_or(i64::MAX);
    Ok(claims.exp.is_some_and(|exp| exp <= deadline))
}
