//! Token verification (feature `web-verify`): the core's pipeline with a policy in the
//! same JSON schema the Envoy filter reads.

use alloc::string::String;

use serde_json::{Map, Value};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::{convert, errors};
use crate::jwks::{KeySet, KeySetOptions};
use crate::policy::Policy;
use crate::token::Header;
use crate::verify;

/// Writes a parsed header back as one JSON object.
fn header_object(header: &Header) -> Map<String, Value> {
    let mut object = header.other.clone();
    object.insert("alg".into(), Value::String(header.alg.clone()));
    for (name, value) in [("kid", &header.kid), ("typ", &header.typ), ("cty", &header.cty)] {
        if let Some(value) = value {
            object.insert(name.into(), Value::String(value.clone()));
        }
    }
    object
}

/// `verifyToken(token, jwks, policy, now?)`: verifies the signature with a key of `jwks`
/// and every check of `policy` at `now` (seconds; default the current time).
///
/// Symmetric (`oct`) keys are never accepted here: a secret shipped to a browser lets
/// every visitor forge tokens.
#[wasm_bindgen(js_name = verifyToken)]
pub fn verify_token(token: JsValue, jwks: JsValue, policy: JsValue, now: JsValue) -> Result<JsValue, JsValue> {
    let token = convert::string(&token, "token")?;
    let jwks = convert::json_document(&jwks, "jwks")?;
    let policy = convert::json_document(&policy, "policy")?;
    let now = convert::now_or_clock(&now)?;

    let policy = Policy::from_json(policy.as_bytes()).map_err(|error| errors::token_error(error.code(), &error))?;
    let keys = KeySet::from_json(jwks.as_bytes(), KeySetOptions::default())
        .map_err(|error| errors::token_error(error.code(), &error))?;
    let verified = verify::verify_token(&token, &keys, &policy, now)?;

    convert::plain_object(&[
        ("header", convert::json_object(&header_object(verified.header()))?),
        ("claims", convert::json_object(verified.claims_map())?),
        ("scopes", convert::string_array(&verified.claims().scopes)),
        ("algorithm", JsValue::from_str(verified.algorithm().name())),
        ("keyId", verified.key_id().map_or(JsValue::NULL, JsValue::from_str)),
    ])
}
