//! Conversions between JavaScript values and Rust values for the exports.
//!
//! Arguments of the wrong JavaScript type raise `TypeError` and numbers out of range raise
//! `RangeError`, as the platform's own functions do; nothing is coerced.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use js_sys::{Array, Object, Reflect};
use serde_json::{Map, Value};
use wasm_bindgen::{JsCast, JsValue};

pub(crate) fn type_error(message: &str) -> JsValue {
    js_sys::TypeError::new(message).into()
}

pub(crate) fn range_error(message: &str) -> JsValue {
    js_sys::RangeError::new(message).into()
}

/// Reads a string argument.
pub(crate) fn string(value: &JsValue, name: &str) -> Result<String, JsValue> {
    value.as_string().ok_or_else(|| type_error(&format!("{name} must be a string")))
}

/// Reads a string or a `URL` object (through its `href`).
pub(crate) fn string_or_url(value: &JsValue, name: &str) -> Result<String, JsValue> {
    if let Some(text) = value.as_string() {
        return Ok(text);
    }
    if value.is_object() {
        if let Some(href) = Reflect::get(value, &JsValue::from_str("href"))?.as_string() {
            return Ok(href);
        }
    }
    Err(type_error(&format!("{name} must be a string or a URL")))
}

/// Reads an options object; `undefined` and `null` mean no options.
pub(crate) fn options(value: &JsValue, name: &str) -> Result<Option<Object>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    if !value.is_object() {
        return Err(type_error(&format!("{name} must be an object")));
    }
    Ok(Some(value.clone().unchecked_into()))
}

/// Reads an options object that must be present.
pub(crate) fn required_options(value: &JsValue, name: &str) -> Result<Object, JsValue> {
    options(value, name)?.ok_or_else(|| type_error(&format!("{name} must be an object")))
}

/// Reads a property; an absent property and `undefined` are both `undefined`.
pub(crate) fn property(object: &Object, key: &str) -> Result<JsValue, JsValue> {
    Reflect::get(object, &JsValue::from_str(key))
}

pub(crate) fn optional_string_property(object: &Object, key: &str) -> Result<Option<String>, JsValue> {
    let value = property(object, key)?;
    if value.is_undefined() {
        return Ok(None);
    }
    string(&value, key).map(Some)
}

pub(crate) fn required_string_property(object: &Object, key: &str) -> Result<String, JsValue> {
    string(&property(object, key)?, key)
}

/// Reads one string or an array of strings; `undefined` is an empty list.
pub(crate) fn string_list(value: &JsValue, name: &str) -> Result<Vec<String>, JsValue> {
    if value.is_undefined() {
        return Ok(Vec::new());
    }
    if let Some(text) = value.as_string() {
        return Ok(alloc::vec![text]);
    }
    if !Array::is_array(value) {
        return Err(type_error(&format!("{name} must be a string or an array of strings")));
    }
    let array: &Array = value.unchecked_ref();
    array
        .iter()
        .map(|item| item.as_string().ok_or_else(|| type_error(&format!("{name} must contain only strings"))))
        .collect()
}

/// Reads a plain object of string values as name-value pairs, in property order.
pub(crate) fn string_record(value: &JsValue, name: &str) -> Result<Vec<(String, String)>, JsValue> {
    let Some(object) = options(value, name)? else { return Ok(Vec::new()) };
    let mut pairs = Vec::new();
    for entry in Object::entries(&object).iter() {
        let entry: &Array = entry.unchecked_ref();
        let key = entry.get(0).as_string().unwrap_or_default();
        let value = entry
            .get(1)
            .as_string()
            .ok_or_else(|| type_error(&format!("{name}.{key} must be a string")))?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// Reads a count of seconds (or characters): a non-negative number, fractions rounded
/// down. `undefined` is `None`.
pub(crate) fn optional_non_negative(value: &JsValue, name: &str) -> Result<Option<u64>, JsValue> {
    if value.is_undefined() {
        return Ok(None);
    }
    let number = value.as_f64().ok_or_else(|| type_error(&format!("{name} must be a number")))?;
    if !number.is_finite() || number < 0.0 {
        return Err(range_error(&format!("{name} must be a finite number of at least 0")));
    }
    // Saturates at u64::MAX; every caller bounds the value further.
    Ok(Some(number as u64))
}

/// Reads a non-negative integer such as a length. `undefined` is `None`.
pub(crate) fn optional_integer(value: &JsValue, name: &str) -> Result<Option<u64>, JsValue> {
    let number = optional_non_negative(value, name)?;
    // Every double from 2^53 up is an integer; below, the cast back must round-trip.
    let fractional = value.as_f64().is_some_and(|raw| raw < 9_007_199_254_740_992.0 && (raw as u64) as f64 != raw);
    if fractional {
        return Err(range_error(&format!("{name} must be an integer")));
    }
    Ok(number)
}

/// Reads `now` in seconds since the Unix epoch, or the current time when it is omitted.
pub(crate) fn now_or_clock(value: &JsValue) -> Result<u64, JsValue> {
    match optional_non_negative(value, "now")? {
        Some(now) => Ok(now),
        None => Ok((js_sys::Date::now() / 1000.0) as u64),
    }
}

/// Reads a JSON document given as text or as a value for `JSON.stringify`.
#[cfg(feature = "web-verify")]
pub(crate) fn json_document(value: &JsValue, name: &str) -> Result<String, JsValue> {
    if let Some(text) = value.as_string() {
        return Ok(text);
    }
    if !value.is_object() {
        return Err(type_error(&format!("{name} must be a JSON string or an object")));
    }
    let text: String = js_sys::JSON::stringify(value)?.into();
    Ok(text)
}

/// Converts a JSON value to JavaScript the way `JSON.parse` builds it: numbers become the
/// nearest double, and members are data properties, so a member named `__proto__` is an
/// own property and never changes the prototype.
pub(crate) fn json_value(value: &Value) -> Result<JsValue, JsValue> {
    Ok(match value {
        Value::Null => JsValue::NULL,
        Value::Bool(flag) => JsValue::from_bool(*flag),
        // Integers beyond 2^53 round to the nearest double, as in `JSON.parse`.
        Value::Number(number) => JsValue::from_f64(number.as_f64().unwrap_or(f64::NAN)),
        Value::String(text) => JsValue::from_str(text),
        Value::Array(items) => {
            let array = Array::new();
            for item in items {
                array.push(&json_value(item)?);
            }
            array.into()
        }
        Value::Object(members) => json_object(members)?,
    })
}

/// Converts a JSON object; see [`json_value`].
pub(crate) fn json_object(members: &Map<String, Value>) -> Result<JsValue, JsValue> {
    let object = Object::new();
    let descriptor = Object::new();
    for flag in ["writable", "enumerable", "configurable"] {
        Reflect::set(&descriptor, &JsValue::from_str(flag), &JsValue::TRUE)?;
    }
    let value_key = JsValue::from_str("value");
    for (name, value) in members {
        Reflect::set(&descriptor, &value_key, &json_value(value)?)?;
        Object::define_property(&object, &JsValue::from_str(name), &descriptor);
    }
    Ok(object.into())
}

/// Builds a plain object from name-value pairs.
pub(crate) fn plain_object(entries: &[(&str, JsValue)]) -> Result<JsValue, JsValue> {
    let object = Object::new();
    for (key, value) in entries {
        Reflect::set(&object, &JsValue::from_str(key), value)?;
    }
    Ok(object.into())
}

/// Converts an optional count of seconds to a number or `null`.
pub(crate) fn seconds_or_null(value: Option<i64>) -> JsValue {
    // NumericDates are bounded by the core to year 9999, far inside 2^53.
    value.map_or(JsValue::NULL, |seconds| JsValue::from_f64(seconds as f64))
}

/// Converts a list of strings to an array.
pub(crate) fn string_array(values: &[String]) -> JsValue {
    values.iter().map(|value| JsValue::from_str(value)).collect::<Array>().into()
}
