//! Reading configuration documents into their typed structs ([`crate::config::GateConfig`],
//! [`crate::policy::ProviderConfig`] and their parts).
//!
//! The document is first parsed by [`crate::json::parse_value`], which rejects duplicate
//! member names, and each struct then reads its members through [`Object`]. This takes
//! the place of serde's derived deserialisers, which are compiled separately for every
//! struct and field type. Without them the Envoy filter went from 777,792 to 727,618
//! bytes, and the npm verify module from 119,456 to 105,766 bytes gzipped (`make filter`,
//! `make pkg`). A configuration is read once per load, so the reading speed does not
//! matter. The rules follow serde's: unknown members are errors, a missing optional
//! member or `null` is unset, and a missing member with a default takes it. Unlike
//! serde, an array is never read as a struct.
//!
//! Every error names the path of the value at fault (`providers.idp.audience`,
//! `rules[0].requires`) and never quotes a value, which may be a secret. An error at the
//! top level of the document is a [`ConfigError::Syntax`].

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde_json::{Map, Value};

use crate::error::ConfigError;

/// The location of a value in the document: a chain of member names and array indexes,
/// written as `providers.idp.algorithms[0]`. It is built on the stack while reading and
/// turned into text only for an error.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    /// The document itself.
    Root,
    /// A member of an object.
    Member(&'a Path<'a>, &'a str),
    /// An element of an array.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// Returns the path of member `name` of the object at this path.
    pub(crate) fn member(&'a self, name: &'a str) -> Self {
        Path::Member(self, name)
    }

    fn is_root(&self) -> bool {
        matches!(self, Path::Root)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Member(parent, name) => {
                if parent.is_root() {
                    f.write_str(name)
                } else {
                    write!(f, "{parent}.{name}")
                }
            }
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Builds the error for the value at `path`: [`ConfigError::InvalidValue`] with the path,
/// or [`ConfigError::Syntax`] for the document itself.
#[cold]
#[inline(never)]
pub(crate) fn error(path: &Path<'_>, message: String) -> ConfigError {
    if path.is_root() {
        ConfigError::Syntax { message }
    } else {
        ConfigError::InvalidValue {
            field: format!("{path}"),
            message,
        }
    }
}

/// Builds the error for a value of the wrong JSON type, in JSON's words: `invalid type:
/// string, expected a boolean`.
#[cold]
#[inline(never)]
pub(crate) fn invalid_type(value: &Value, path: &Path<'_>, expected: &str) -> ConfigError {
    error(
        path,
        format!("invalid type: {}, expected {expected}", kind(value)),
    )
}

/// Names the JSON type of `value`.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_f64() => "floating-point number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A type read from a configuration value.
pub(crate) trait FromJson: Sized {
    /// Reads `value`, found at `path`.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `path` (or a path below it) and what is expected.
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError>;
}

/// The members of a JSON object that a struct reads, with every other member rejected.
pub(crate) struct Object<'a> {
    members: &'a Map<String, Value>,
    path: &'a Path<'a>,
}

impl<'a> Object<'a> {
    /// Checks that `value` is an object whose members are all in `fields`. `expected`
    /// describes the value for the type error (`an object`).
    ///
    /// # Errors
    ///
    /// An invalid type for anything but an object, or `unknown field` for the first
    /// member not in `fields`, at that member's path.
    pub(crate) fn new(
        value: &'a Value,
        path: &'a Path<'a>,
        expected: &str,
        fields: &[&str],
    ) -> Result<Self, ConfigError> {
        let Value::Object(members) = value else {
            return Err(invalid_type(value, path, expected));
        };
        if let Some(unknown) = members.keys().find(|name| !fields.contains(&name.as_str())) {
            return Err(error(&path.member(unknown), unknown_field(unknown, fields)));
        }
        Ok(Self { members, path })
    }

    /// Reads member `name`; absent or `null` is `None`.
    ///
    /// # Errors
    ///
    /// As `T` reports them, at the member's path.
    pub(crate) fn optional<T: FromJson>(&self, name: &str) -> Result<Option<T>, ConfigError> {
        match self.members.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => T::from_json(value, &self.path.member(name)).map(Some),
        }
    }

    /// Reads member `name`, or returns `T::default()` when it is absent. `null` is read
    /// as a value, so it is an error for the types that take a default here (lists).
    ///
    /// # Errors
    ///
    /// As `T` reports them, at the member's path.
    pub(crate) fn or_default<T: FromJson + Default>(&self, name: &str) -> Result<T, ConfigError> {
        match self.members.get(name) {
            None => Ok(T::default()),
            Some(value) => T::from_json(value, &self.path.member(name)),
        }
    }

    /// Reads member `name`, which must be present.
    ///
    /// # Errors
    ///
    /// `missing field` at the object's path, or as `T` reports them at the member's.
    pub(crate) fn required<T: FromJson>(&self, name: &str) -> Result<T, ConfigError> {
        match self.members.get(name) {
            None => Err(error(self.path, format!("missing field `{name}`"))),
            Some(value) => T::from_json(value, &self.path.member(name)),
        }
    }
}

/// Implements [`FromJson`] for a struct whose members are read by field name, each with
/// one of [`Object`]'s methods: `required`, `optional` or `or_default`. A field read
/// from a member of another name says so with `= "name"`. The list of known members
/// comes from the same list, so the two cannot disagree.
///
/// ```text
/// from_json_struct!(HttpUri { uri: required, cluster: optional, timeout: optional });
/// from_json_struct!(RuleConfig { route: required = "match", requires: optional });
/// ```
macro_rules! from_json_struct {
    ($type:ident { $($field:ident: $read:ident $(= $name:literal)?),* $(,)? }) => {
        impl $crate::schema::FromJson for $type {
            fn from_json(
                value: &serde_json::Value,
                path: &$crate::schema::Path<'_>,
            ) -> Result<Self, $crate::error::ConfigError> {
                #[allow(unused_variables)]
                let object = $crate::schema::Object::new(
                    value,
                    path,
                    "an object",
                    &[$(from_json_struct!(@name $field $($name)?)),*],
                )?;
                Ok(Self { $($field: object.$read(from_json_struct!(@name $field $($name)?))?),* })
            }
        }
    };
    (@name $field:ident $name:literal) => {
        $name
    };
    (@name $field:ident) => {
        stringify!($field)
    };
}

pub(crate) use from_json_struct;

/// Writes the message for an unknown member, in serde's words.
#[cold]
#[inline(never)]
fn unknown_field(name: &str, fields: &[&str]) -> String {
    let mut message = format!("unknown field `{name}`, ");
    match fields {
        [] => message.push_str("there are no fields"),
        [only] => message.push_str(&format!("expected `{only}`")),
        [first, second] => message.push_str(&format!("expected `{first}` or `{second}`")),
        _ => {
            message.push_str("expected one of ");
            let quoted: Vec<String> = fields.iter().map(|field| format!("`{field}`")).collect();
            message.push_str(&quoted.join(", "));
        }
    }
    message
}

impl FromJson for String {
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
        match value {
            Value::String(text) => Ok(text.clone()),
            other => Err(invalid_type(other, path, "a string")),
        }
    }
}

impl FromJson for bool {
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
        match value {
            Value::Bool(flag) => Ok(*flag),
            other => Err(invalid_type(other, path, "a boolean")),
        }
    }
}

/// The expected type of [`u64`] members, in an operator's words.
const NON_NEGATIVE: &str = "a non-negative integer";

impl FromJson for u64 {
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
        match value {
            Value::Number(number) if number.is_u64() => number
                .as_u64()
                .ok_or_else(|| invalid_type(value, path, NON_NEGATIVE)),
            Value::Number(number) if number.is_i64() => Err(error(
                path,
                String::from("invalid value: negative integer, expected a non-negative integer"),
            )),
            other => Err(invalid_type(other, path, NON_NEGATIVE)),
        }
    }
}

/// Any JSON value, kept as it is (`required_claims[].equals`, `local_jwks.inline`).
impl FromJson for Value {
    fn from_json(value: &Value, _path: &Path<'_>) -> Result<Self, ConfigError> {
        Ok(value.clone())
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
        let Value::Array(items) = value else {
            return Err(invalid_type(value, path, "an array"));
        };
        let mut list = Vec::with_capacity(items.len());
        for (index, item) in items.iter().enumerate() {
            list.push(T::from_json(item, &Path::Index(path, index))?);
        }
        Ok(list)
    }
}

/// An object read as a map from member name to value (`providers`).
impl<T: FromJson> FromJson for BTreeMap<String, T> {
    fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
        let Value::Object(members) = value else {
            return Err(invalid_type(value, path, "an object"));
        };
        // One insert per member: collecting into a B-tree would sort first and compile a
        // sort for the type, where the members come in order already.
        let mut map = BTreeMap::new();
        for (name, member) in members {
            map.insert(name.clone(), T::from_json(member, &path.member(name))?);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Pair {
        name: String,
        size: Option<u64>,
        tags: Vec<String>,
    }

    impl FromJson for Pair {
        fn from_json(value: &Value, path: &Path<'_>) -> Result<Self, ConfigError> {
            let object = Object::new(value, path, "an object", &["name", "size", "tags"])?;
            Ok(Self {
                name: object.required("name")?,
                size: object.optional("size")?,
                tags: object.or_default("tags")?,
            })
        }
    }

    fn read(value: Value) -> Result<BTreeMap<String, Vec<Pair>>, ConfigError> {
        FromJson::from_json(&value, &Path::Root)
    }

    fn invalid(value: Value) -> (String, String) {
        match read(value) {
            Err(ConfigError::InvalidValue { field, message }) => (field, message),
            Err(other) => panic!("expected an invalid value, got {other:?}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn reads_members_and_defaults() {
        let map = read(
            json!({"a": [{"name": "x", "size": 3, "tags": ["t"]}, {"name": "y", "size": null}]}),
        )
        .expect("valid");
        let pairs = map.get("a").expect("member a");
        assert_eq!(pairs.len(), 2);
        assert_eq!(
            (pairs[0].name.as_str(), pairs[0].size, pairs[0].tags.len()),
            ("x", Some(3), 1)
        );
        assert_eq!(
            (pairs[1].name.as_str(), pairs[1].size, pairs[1].tags.len()),
            ("y", None, 0)
        );
    }

    #[test]
    fn errors_name_the_path() {
        let (field, message) = invalid(json!({"a": [{"name": "x"}, {"name": "y", "colour": 1}]}));
        assert_eq!(field, "a[1].colour");
        assert_eq!(
            message,
            "unknown field `colour`, expected one of `name`, `size`, `tags`"
        );

        let (field, message) = invalid(json!({"a": [{"size": 1}]}));
        assert_eq!(field, "a[0]");
        assert_eq!(message, "missing field `name`");

        let (field, message) = invalid(json!({"a": [{"name": "x", "size": -1}]}));
        assert_eq!(field, "a[0].size");
        assert_eq!(message, "invalid value: negative integer, expected a non-negative integer");

        let (field, message) = invalid(json!({"a": [{"name": "x", "size": 1.5}]}));
        assert_eq!(field, "a[0].size");
        assert_eq!(message, "invalid type: floating-point number, expected a non-negative integer");

        let (field, message) = invalid(json!({"a": [{"name": "x", "tags": null}]}));
        assert_eq!(field, "a[0].tags");
        assert_eq!(message, "invalid type: null, expected an array");

        let (field, message) = invalid(json!({"a": [{"name": "secret-value-9", "tags": [7]}]}));
        assert_eq!(field, "a[0].tags[0]");
        assert_eq!(message, "invalid type: integer, expected a string");
    }

    #[test]
    fn top_level_errors_are_syntax_errors() {
        assert!(
            matches!(read(json!([])), Err(ConfigError::Syntax { message }) if message == "invalid type: array, expected an object")
        );
    }

    #[test]
    fn unknown_field_messages() {
        assert_eq!(
            unknown_field("x", &[]),
            "unknown field `x`, there are no fields"
        );
        assert_eq!(
            unknown_field("x", &["a"]),
            "unknown field `x`, expected `a`"
        );
        assert_eq!(
            unknown_field("x", &["a", "b"]),
            "unknown field `x`, expected `a` or `b`"
        );
        assert_eq!(
            unknown_field("x", &["a", "b", "c"]),
            "unknown field `x`, expected one of `a`, `b`, `c`"
        );
    }
}
