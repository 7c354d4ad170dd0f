//! Strict JSON for untrusted input: duplicate member names and deep nesting are errors.
//!
//! `serde_json::Value` keeps the last of two members with the same name, so two parsers
//! can read different claims from one token. [RFC 7515 §5.2](https://www.rfc-editor.org/rfc/rfc7515#section-5.2)
//! allows a JWS to be rejected for duplicate header names, and this crate does so for the
//! header, the claims and JWKS documents alike.
//!
//! The parser is written here instead of using serde_json's deserializer: the Envoy filter
//! built at opt-level `z` went from 421,282 to 405,436 bytes after `wasm-opt -Oz`.
//! It accepts exactly the grammar of [RFC 8259](https://www.rfc-editor.org/rfc/rfc8259):
//! no comments, trailing commas, leading zeros, byte order mark, unescaped control
//! characters, lone surrogates or invalid UTF-8. Numbers take the kinds serde_json gives them: an integer is a `u64`, a
//! negative one an `i64`, and anything else, including `-0` and integers outside both
//! ranges, an `f64`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cmp::Ordering;
use core::fmt;

use serde_json::{Map, Number, Value};

use crate::error::Quoted;

/// Deepest nesting of arrays and objects accepted, counting the outermost object as 1.
///
/// Real claims nest two or three levels (`resource_access.client.roles`). The parser
/// recurses once per level, so the limit keeps it far inside the 1 MiB stack of a Rust
/// wasm module.
pub const MAX_DEPTH: usize = 100;

/// Parses `bytes` as a JSON object with no duplicate member names and at most
/// [`MAX_DEPTH`] levels of nesting.
///
/// # Errors
///
/// Returns a short lowercase message for invalid JSON, a value that is not an object,
/// a duplicate name or too deep nesting.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, String> {
    match parse_value(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!("expected a JSON object, found {}", kind(&other))),
        Err(error) => Err(format!("{error}")),
    }
}

/// Parses `bytes` as one JSON value with no duplicate member names and at most
/// [`MAX_DEPTH`] levels of nesting.
///
/// # Errors
///
/// [`JsonError`] with the reason and the position where parsing stopped.
pub fn parse_value(bytes: &[u8]) -> Result<Value, JsonError> {
    let mut parser = Parser { bytes, index: 0 };
    let value = parser.value(1)?;
    parser.skip_whitespace();
    if parser.index < bytes.len() {
        return Err(parser.fail(JsonErrorKind::TrailingCharacters));
    }
    Ok(value)
}

/// Reason for which [`parse_value`] rejected a document.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JsonErrorKind {
    /// The input ended where a value should start.
    EofInValue,
    /// The input ended inside a string.
    EofInString,
    /// The input ended inside an array.
    EofInArray,
    /// The input ended inside an object.
    EofInObject,
    /// A byte that cannot start a value.
    ExpectedValue,
    /// A word starting with `t`, `f` or `n` other than `true`, `false` or `null`.
    InvalidLiteral,
    /// A member name is not followed by `:`.
    ExpectedColon,
    /// An array element is followed by something other than `,` or `]`.
    ExpectedCommaOrBracket,
    /// An object member is followed by something other than `,` or `}`.
    ExpectedCommaOrBrace,
    /// A comma right before `]` or `}`.
    TrailingComma,
    /// An object member name that is not a string.
    KeyMustBeString,
    /// A number outside the grammar: a leading zero, or no digit after `-`, `.` or the
    /// exponent marker.
    InvalidNumber,
    /// A number too large for an `f64`, such as `1e400`.
    NumberOutOfRange,
    /// A backslash not followed by one of `"\/bfnrtu`, or `\u` not followed by four
    /// hex digits.
    InvalidEscape,
    /// A `\u` escape of a UTF-16 surrogate that is not half of a pair.
    LoneSurrogate,
    /// A byte below 0x20 inside a string.
    ControlCharacter,
    /// Bytes inside a string that are not UTF-8.
    InvalidUtf8,
    /// Something other than whitespace after the value.
    TrailingCharacters,
    /// An object has two members with this name.
    DuplicateMember(String),
    /// Arrays and objects are nested more than [`MAX_DEPTH`] levels deep.
    TooDeep,
}

impl fmt::Display for JsonErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EofInValue => "EOF while parsing a value",
            Self::EofInString => "EOF while parsing a string",
            Self::EofInArray => "EOF while parsing an array",
            Self::EofInObject => "EOF while parsing an object",
            Self::ExpectedValue => "expected value",
            Self::InvalidLiteral => "invalid literal, expected `true`, `false` or `null`",
            Self::ExpectedColon => "expected `:`",
            Self::ExpectedCommaOrBracket => "expected `,` or `]`",
            Self::ExpectedCommaOrBrace => "expected `,` or `}`",
            Self::TrailingComma => "trailing comma",
            Self::KeyMustBeString => "expected a member name in double quotes",
            Self::InvalidNumber => "invalid number",
            Self::NumberOutOfRange => "number out of range",
            Self::InvalidEscape => "invalid escape",
            Self::LoneSurrogate => "lone surrogate in \\u escape",
            Self::ControlCharacter => "control character in string",
            Self::InvalidUtf8 => "invalid UTF-8 in string",
            Self::TrailingCharacters => "trailing characters",
            Self::DuplicateMember(name) => return write!(f, "duplicate member {}", Quoted(name)),
            Self::TooDeep => return write!(f, "JSON is nested more than {MAX_DEPTH} levels deep"),
        })
    }
}

/// A document that [`parse_value`] rejected: the reason and where parsing stopped.
///
/// `Display` writes the reason and ` at line L column C`. The message quotes no value of
/// the document, only the name of a duplicate member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    kind: JsonErrorKind,
    offset: usize,
    line: usize,
    column: usize,
}

impl JsonError {
    /// The reason.
    pub fn kind(&self) -> &JsonErrorKind {
        &self.kind
    }

    /// Byte offset of the byte at fault, or the input's length when it ended too early.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Line of [`JsonError::offset`], counting from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Column of [`JsonError::offset`] in bytes, counting from 1 as serde_json does. At
    /// the end of the input it is one past the last byte.
    pub fn column(&self) -> usize {
        self.column
    }

    /// Returns whether the document breaks the JSON grammar. A grammatically valid document can
    /// still be rejected for a duplicate member name or too deep nesting, and then
    /// [`path_at`] at [`JsonError::line`] and [`JsonError::column`] names the member or
    /// element at fault.
    pub fn is_syntax(&self) -> bool {
        !matches!(self.kind, JsonErrorKind::DuplicateMember(_) | JsonErrorKind::TooDeep)
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {} column {}", self.kind, self.line, self.column)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for JsonError {}

/// A recursive-descent parser over a byte slice. It recurses once per level of nesting
/// and checks the depth before each step, so no input takes it deeper than [`MAX_DEPTH`].
struct Parser<'a> {
    bytes: &'a [u8],
    index: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.index).copied()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.index += 1;
        Some(byte)
    }

    /// Consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.index += 1;
        }
        found
    }

    /// Skips the four whitespace characters of RFC 8259: space, tab, line feed and
    /// carriage return.
    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.index += 1;
        }
    }

    /// Consumes ASCII digits and returns whether there was at least one.
    fn digits(&mut self) -> bool {
        let start = self.index;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.index += 1;
        }
        self.index > start
    }

    /// Builds an error at the next byte, or at the end of the input.
    fn fail(&self, kind: JsonErrorKind) -> JsonError {
        self.fail_at(self.index, kind)
    }

    #[cold]
    fn fail_at(&self, offset: usize, kind: JsonErrorKind) -> JsonError {
        let before = self.bytes.get(..offset).unwrap_or(self.bytes);
        let line_start = before.iter().rposition(|&byte| byte == b'\n').map_or(0, |at| at + 1);
        JsonError {
            kind,
            offset,
            line: 1 + before.iter().filter(|&&byte| byte == b'\n').count(),
            column: 1 + offset.saturating_sub(line_start),
        }
    }

    /// Parses the value that starts after any whitespace, at nesting level `depth`.
    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.fail(JsonErrorKind::EofInValue)),
            Some(b'[' | b'{') if depth > MAX_DEPTH => Err(self.fail(JsonErrorKind::TooDeep)),
            Some(b'[') => {
                self.index += 1;
                self.array(depth)
            }
            Some(b'{') => {
                self.index += 1;
                self.object(depth)
            }
            Some(b'"') => {
                self.index += 1;
                self.string().map(Value::String)
            }
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.fail(JsonErrorKind::ExpectedValue)),
        }
    }

    fn literal(&mut self, word: &[u8], value: Value) -> Result<Value, JsonError> {
        let end = self.index + word.len();
        if self.bytes.get(self.index..end) != Some(word) {
            return Err(self.fail(JsonErrorKind::InvalidLiteral));
        }
        self.index = end;
        Ok(value)
    }

    /// Parses the elements of an array whose `[` has been read.
    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.eat(b']') {
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b']') => {
                    self.index += 1;
                    return Ok(Value::Array(items));
                }
                Some(b',') => self.index += 1,
                Some(_) => return Err(self.fail(JsonErrorKind::ExpectedCommaOrBracket)),
                None => return Err(self.fail(JsonErrorKind::EofInArray)),
            }
            self.skip_whitespace();
            if self.peek() == Some(b']') {
                return Err(self.fail(JsonErrorKind::TrailingComma));
            }
        }
    }

    /// Parses the members of an object whose `{` has been read.
    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        let mut map = Map::new();
        self.skip_whitespace();
        if self.eat(b'}') {
            return Ok(Value::Object(map));
        }
        loop {
            // `{` or `,` and whitespace have been read, so a member name comes next.
            match self.peek() {
                Some(b'"') => self.index += 1,
                // Only after a comma: an empty object returned above.
                Some(b'}') => return Err(self.fail(JsonErrorKind::TrailingComma)),
                Some(_) => return Err(self.fail(JsonErrorKind::KeyMustBeString)),
                None => return Err(self.fail(JsonErrorKind::EofInObject)),
            }
            let name = self.string()?;
            // The closing quote of the name, so that `path_at` there names this member.
            let name_end = self.index - 1;
            self.skip_whitespace();
            match self.next_byte() {
                Some(b':') => {}
                Some(_) => return Err(self.fail_at(self.index - 1, JsonErrorKind::ExpectedColon)),
                None => return Err(self.fail(JsonErrorKind::EofInObject)),
            }
            if map.contains_key(&name) {
                return Err(self.fail_at(name_end, JsonErrorKind::DuplicateMember(name)));
            }
            let value = self.value(depth + 1)?;
            map.insert(name, value);
            self.skip_whitespace();
            match self.next_byte() {
                Some(b'}') => return Ok(Value::Object(map)),
                Some(b',') => {}
                Some(_) => return Err(self.fail_at(self.index - 1, JsonErrorKind::ExpectedCommaOrBrace)),
                None => return Err(self.fail(JsonErrorKind::EofInObject)),
            }
            self.skip_whitespace();
        }
    }

    /// Parses the rest of a string whose opening quote has been read.
    fn string(&mut self) -> Result<String, JsonError> {
        let mut text = String::new();
        loop {
            // Copy the run up to the next quote, backslash or control character. These
            // are ASCII, so a run never splits a UTF-8 sequence.
            let start = self.index;
            while matches!(self.peek(), Some(byte) if byte != b'"' && byte != b'\\' && byte >= 0x20) {
                self.index += 1;
            }
            let run = self.bytes.get(start..self.index).unwrap_or_default();
            match core::str::from_utf8(run) {
                Ok(run) => text.push_str(run),
                Err(error) => return Err(self.fail_at(start + error.valid_up_to(), JsonErrorKind::InvalidUtf8)),
            }

            match self.next_byte() {
                Some(b'"') => return Ok(text),
                Some(b'\\') => {
                    let escaped = match self.next_byte() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        Some(_) => return Err(self.fail_at(self.index - 1, JsonErrorKind::InvalidEscape)),
                        None => return Err(self.fail(JsonErrorKind::EofInString)),
                    };
                    text.push(escaped);
                }
                Some(_) => return Err(self.fail_at(self.index - 1, JsonErrorKind::ControlCharacter)),
                None => return Err(self.fail(JsonErrorKind::EofInString)),
            }
        }
    }

    /// Parses the rest of a `\u` escape whose `u` has been read, with the second half of
    /// a surrogate pair.
    fn unicode_escape(&mut self) -> Result<char, JsonError> {
        let escape_start = self.index - 2;
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first) {
            if !(self.eat(b'\\') && self.eat(b'u')) {
                return Err(self.fail_at(escape_start, JsonErrorKind::LoneSurrogate));
            }
            let second = self.hex4()?;
            if !(0xDC00..0xE000).contains(&second) {
                return Err(self.fail_at(escape_start, JsonErrorKind::LoneSurrogate));
            }
            0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
        } else {
            first
        };
        // An unpaired second half (U+DC00 to U+DFFF) is not a character.
        char::from_u32(code).ok_or_else(|| self.fail_at(escape_start, JsonErrorKind::LoneSurrogate))
    }

    /// Parses the four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(byte) => char::from(byte).to_digit(16).ok_or_else(|| self.fail(JsonErrorKind::InvalidEscape))?,
                None => return Err(self.fail(JsonErrorKind::EofInString)),
            };
            code = code * 16 + digit;
            self.index += 1;
        }
        Ok(code)
    }

    /// Parses a number, which starts with `-` or a digit.
    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.index;
        self.eat(b'-');
        if self.eat(b'0') {
            if matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.fail(JsonErrorKind::InvalidNumber));
            }
        } else if !self.digits() {
            return Err(self.fail(JsonErrorKind::InvalidNumber));
        }
        let mut integral = true;
        if self.eat(b'.') {
            integral = false;
            if !self.digits() {
                return Err(self.fail(JsonErrorKind::InvalidNumber));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integral = false;
            self.index += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.index += 1;
            }
            if !self.digits() {
                return Err(self.fail(JsonErrorKind::InvalidNumber));
            }
        }
        let text = self.bytes.get(start..self.index).unwrap_or_default();
        number_value(text, integral).map(Value::Number).ok_or_else(|| self.fail_at(start, JsonErrorKind::NumberOutOfRange))
    }
}

/// Returns the value of `text`, a number that [`Parser::number`] has checked against the
/// grammar, or `None` when it is too large for an `f64`. `integral` is true when it has
/// no fraction and no exponent.
fn number_value(text: &[u8], integral: bool) -> Option<Number> {
    let (negative, text) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    // After the sign, a `-` can only be the exponent's.
    let mut digits = Vec::new();
    let mut exponent: i64 = 0;
    let mut written_exponent: i64 = 0;
    let (mut in_fraction, mut in_exponent, mut negative_exponent) = (false, false, false);
    for &byte in text {
        match byte {
            b'.' => in_fraction = true,
            b'e' | b'E' => in_exponent = true,
            b'-' => negative_exponent = true,
            // Saturates: an exponent this large gives infinity or zero either way.
            b'0'..=b'9' if in_exponent => written_exponent = written_exponent.saturating_mul(10).saturating_add(i64::from(byte - b'0')),
            b'0'..=b'9' => {
                digits.push(byte - b'0');
                if in_fraction {
                    exponent -= 1;
                }
            }
            _ => {}
        }
    }
    if integral {
        if let Some(number) = integer(&digits, negative) {
            return Some(number);
        }
    }
    let exponent = exponent.saturating_add(if negative_exponent { -written_exponent } else { written_exponent });
    let magnitude = decimal_to_f64(digits, exponent)?;
    Number::from_f64(if negative { -magnitude } else { magnitude })
}

/// Returns the integer of the decimal digit values `digits` as a `u64`, or a negative one
/// as an `i64`, or `None` for `-0` and integers outside both ranges, which are `f64` in
/// serde_json.
fn integer(digits: &[u8], negative: bool) -> Option<Number> {
    let mut magnitude: u64 = 0;
    for &digit in digits {
        magnitude = magnitude.checked_mul(10)?.checked_add(u64::from(digit))?;
    }
    if !negative {
        return Some(magnitude.into());
    }
    if magnitude == 0 {
        return None;
    }
    0i64.checked_sub_unsigned(magnitude).map(Number::from)
}

/// Significant digits kept of a long number. Every midpoint between two adjacent `f64`
/// values has at most 767 significant digits, so digits after the 800th can only tell
/// whether the number lies above such a midpoint. One nonzero digit in their place has
/// the same effect.
const MAX_SIGNIFICANT_DIGITS: usize = 800;

/// Returns the `f64` nearest to `digits × 10^exponent` (ties to even), where `digits`
/// contains decimal digit values (0 to 9), or `None` when it is too large for an `f64`.
///
/// `core`'s `f64::from_str` does the same, but its tables and fallback cost about 17 KB of
/// the Envoy filter at opt-level `z`. Here an approximation in floating point is moved
/// one step at a time to the correctly rounded value, by comparing the exact decimal
/// with the midpoints between neighbouring `f64` values in integer arithmetic. For up to
/// 15 digits and an exponent of at most 22 in magnitude, the approximation is exact, so no
/// comparison is needed. Other numbers are rare in tokens and configuration.
fn decimal_to_f64(mut digits: Vec<u8>, mut exponent: i64) -> Option<f64> {
    let leading_zeros = digits.iter().take_while(|&&digit| digit == 0).count();
    digits.drain(..leading_zeros);
    while digits.last() == Some(&0) {
        digits.pop();
        exponent = exponent.saturating_add(1);
    }
    if digits.is_empty() {
        return Some(0.0);
    }
    if digits.len() > MAX_SIGNIFICANT_DIGITS {
        // The last digit is nonzero, so the digits dropped are not all zero.
        let dropped = i64::try_from(digits.len() - MAX_SIGNIFICANT_DIGITS - 1).unwrap_or(i64::MAX);
        exponent = exponent.saturating_add(dropped);
        digits.truncate(MAX_SIGNIFICANT_DIGITS);
        digits.push(1);
    }

    // The number lies in [10^(magnitude - 1), 10^magnitude). f64::MAX is about
    // 1.8 × 10^308, and anything below half the smallest subnormal, about 2.5 × 10^-324,
    // rounds to zero. After these checks `exponent` lies within ±1200.
    let count = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let magnitude = count.saturating_add(exponent);
    if magnitude > 309 {
        return None;
    }
    if magnitude < -323 {
        return Some(0.0);
    }

    // The first 19 digits fit a u64. Each step below rounds once, so the approximation
    // is within a few units in the last place.
    let mut leading: u64 = 0;
    for &digit in digits.iter().take(19) {
        leading = leading * 10 + u64::from(digit);
    }
    let mut scale = exponent + (count - count.min(19));
    let mut value = leading as f64;
    while scale > 0 {
        let step = scale.min(22);
        value *= power_of_ten(step);
        scale -= step;
    }
    while scale < 0 {
        let step = (-scale).min(22);
        value /= power_of_ten(step);
        scale += step;
    }
    if count <= 15 && (-22..=22).contains(&exponent) {
        // One rounding of two exact operands: already the nearest f64.
        return Some(value);
    }

    let decimal = Big::from_digits(&digits);
    let mut value = value.min(f64::MAX);
    loop {
        let bits = value.to_bits();
        let odd = bits & 1 == 1;
        let above = compare_with_midpoint(&decimal, exponent, bits);
        if above == Ordering::Greater || (above == Ordering::Equal && odd) {
            value = f64::from_bits(bits + 1);
            if value.is_infinite() {
                return None;
            }
            continue;
        }
        if bits > 0 {
            let below = compare_with_midpoint(&decimal, exponent, bits - 1);
            if below == Ordering::Less || (below == Ordering::Equal && odd) {
                value = f64::from_bits(bits - 1);
                continue;
            }
        }
        return Some(value);
    }
}

/// Returns 10^`power` for `power` from 0 to 22, which are exact in an f64.
fn power_of_ten(power: i64) -> f64 {
    let mut value = 1.0;
    for _ in 0..power {
        value *= 10.0;
    }
    value
}

/// Compares `decimal × 10^exponent` with the midpoint between the positive finite f64
/// whose bits are `bits` and the next larger f64.
fn compare_with_midpoint(decimal: &Big, exponent: i64, bits: u64) -> Ordering {
    let biased_exponent = (bits >> 52) & 0x7ff;
    let fraction = bits & ((1 << 52) - 1);
    // value = mantissa × 2^binary_exponent; subnormals have the exponent of the smallest
    // normal numbers and no implicit leading bit.
    let (mantissa, binary_exponent) = if biased_exponent == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), i64::try_from(biased_exponent).unwrap_or_default() - 1075)
    };
    // midpoint = (2 × mantissa + 1) × 2^(binary_exponent - 1)
    let mut left = decimal.clone();
    let mut right = Big::from_u64(2 * mantissa + 1);
    if exponent >= 0 {
        left.multiply_by_power_of_five(exponent);
    } else {
        right.multiply_by_power_of_five(-exponent);
    }
    let shift = exponent - (binary_exponent - 1);
    if shift >= 0 {
        left.shift_left(shift);
    } else {
        right.shift_left(-shift);
    }
    left.compare(&right)
}

/// An unsigned integer of any size, as 32-bit limbs with the least significant first.
#[derive(Clone)]
struct Big(Vec<u32>);

impl Big {
    fn from_u64(value: u64) -> Self {
        Self(alloc::vec![value as u32, (value >> 32) as u32])
    }

    fn from_digits(digits: &[u8]) -> Self {
        let mut big = Self(Vec::new());
        for &digit in digits {
            big.multiply_add(10, u32::from(digit));
        }
        big
    }

    /// Sets `self` to `self × factor + addend`.
    fn multiply_add(&mut self, factor: u32, addend: u32) {
        let mut carry = u64::from(addend);
        for limb in &mut self.0 {
            let product = u64::from(*limb) * u64::from(factor) + carry;
            *limb = product as u32;
            carry = product >> 32;
        }
        if carry > 0 {
            self.0.push(carry as u32);
        }
    }

    /// Sets `self` to `self × base^power`, multiplying by `base^max_step` at a time, which
    /// must fit a `u32`.
    fn multiply_by_power(&mut self, base: u32, max_step: i64, mut power: i64) {
        while power > 0 {
            let step = power.min(max_step);
            self.multiply_add(base.pow(u32::try_from(step).unwrap_or_default()), 0);
            power -= step;
        }
    }

    fn multiply_by_power_of_five(&mut self, power: i64) {
        // 5^13 is the largest power of five below 2^32.
        self.multiply_by_power(5, 13, power);
    }

    fn shift_left(&mut self, bits: i64) {
        self.multiply_by_power(2, 31, bits);
    }

    /// Returns the limbs without the high zero limbs.
    fn significant(&self) -> &[u32] {
        let length = self.0.iter().rposition(|&limb| limb != 0).map_or(0, |at| at + 1);
        self.0.get(..length).unwrap_or_default()
    }

    fn compare(&self, other: &Self) -> Ordering {
        let (left, right) = (self.significant(), other.significant());
        left.len().cmp(&right.len()).then_with(|| left.iter().rev().cmp(right.iter().rev()))
    }
}

/// Returns the path (`providers.idp.audience`, `rules[0].requires`) of the member or
/// element that a parser at `line` and `column` was reading, or an empty string at the top
/// level. [`JsonError::line`] and [`JsonError::column`] give that position: the scan reads
/// the line up to and including the byte at `column`, counted from 1.
///
/// The scan follows only brackets, commas, colons and strings, so it gives a path for any
/// prefix of a document, valid or not. Escapes in member names are left as written.
pub fn path_at(bytes: &[u8], line: usize, column: usize) -> String {
    let line_start = bytes
        .iter()
        .enumerate()
        .filter(|(_, byte)| **byte == b'\n')
        .nth(line.saturating_sub(2))
        .map_or(0, |(index, _)| index + 1);
    let end = if line <= 1 { column } else { line_start.saturating_add(column) }.min(bytes.len());

    let mut stack: Vec<PathFrame> = Vec::new();
    let mut index = 0;
    while index < end {
        match bytes.get(index).copied().unwrap_or_default() {
            b'{' => stack.push(PathFrame::Object { key: None, expecting_key: true }),
            b'[' => stack.push(PathFrame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(PathFrame::Object { expecting_key, .. }) => *expecting_key = true,
                Some(PathFrame::Array { index }) => *index += 1,
                None => {}
            },
            b':' => {
                if let Some(PathFrame::Object { expecting_key, .. }) = stack.last_mut() {
                    *expecting_key = false;
                }
            }
            b'"' => {
                let start = index + 1;
                index += 1;
                while index < end && bytes.get(index) != Some(&b'"') {
                    // Skip the escaped character, which may be a quote.
                    index += if bytes.get(index) == Some(&b'\\') { 2 } else { 1 };
                }
                if let Some(PathFrame::Object { key, expecting_key: true }) = stack.last_mut() {
                    let name = bytes.get(start..index.min(end)).unwrap_or_default();
                    *key = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            _ => {}
        }
        index += 1;
    }

    let mut path = String::new();
    for frame in &stack {
        match frame {
            PathFrame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            PathFrame::Object { key: None, .. } => {}
            PathFrame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// One open object or array while [`path_at`] scans.
enum PathFrame {
    /// The member name read last, and whether the next string is a member name.
    Object { key: Option<String>, expecting_key: bool },
    /// The index of the current element.
    Array { index: usize },
}

/// Returns the JSON kind of a value, for messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    fn nested(depth: usize) -> String {
        // depth 1 is `{"x":0}`; each further level wraps the value in an array.
        let mut text = String::from("{\"x\":");
        for _ in 1..depth {
            text.push('[');
        }
        text.push('0');
        for _ in 1..depth {
            text.push(']');
        }
        text.push('}');
        text
    }

    #[test]
    fn path_at_follows_members_and_elements() {
        let document = br#"{"providers": {"idp": {"algorithms": ["RS256", "x"], "audience": 1}}, "rules": [{}, {"requires": 2}]}"#;
        let position = |needle: &str| {
            let text = core::str::from_utf8(document).unwrap();
            text.find(needle).unwrap() + needle.len()
        };
        assert_eq!(path_at(document, 1, 0), "");
        assert_eq!(path_at(document, 1, position(r#""x""#)), "providers.idp.algorithms[1]");
        assert_eq!(path_at(document, 1, position(r#""audience""#)), "providers.idp.audience");
        assert_eq!(path_at(document, 1, position(r#""requires": 2"#)), "rules[1].requires");
        assert_eq!(path_at(document, 1, document.len()), "");
        assert_eq!(path_at(document, 1, 10_000), "", "a column past the end stops at the end");
    }

    #[test]
    fn path_at_counts_lines_and_escapes() {
        let document = b"{\n  \"a\\\"b\": {\n    \"c\": [1,\n 2]}}";
        assert_eq!(path_at(document, 3, 10), "a\\\"b.c[0]");
        assert_eq!(path_at(document, 4, 2), "a\\\"b.c[1]");
    }

    #[test]
    fn duplicate_member_rejected() {
        let error = parse_object(br#"{"alg":"RS256","alg":"none"}"#).unwrap_err();
        assert!(error.contains("duplicate member `alg`"), "{error}");
    }

    #[test]
    fn duplicate_member_in_nested_object_rejected() {
        let error = parse_object(br#"{"a":{"b":1,"b":2}}"#).unwrap_err();
        assert!(error.contains("duplicate member `b`"), "{error}");
    }

    #[test]
    fn depth_limit_is_exact() {
        assert!(parse_object(nested(MAX_DEPTH).as_bytes()).is_ok());
        let error = parse_object(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err();
        assert!(error.contains("nested more than"), "{error}");
    }

    #[test]
    fn very_deep_nesting_fails_without_overflow() {
        let error = parse_object(nested(7000).as_bytes()).unwrap_err();
        assert!(error.contains("nested more than"), "{error}");
    }

    #[test]
    fn non_objects_rejected() {
        for input in [&b"[\"a\"]"[..], b"\"x\"", b"1", b"null", b"not json", b"{\"sub\":\"u\"}xyz"] {
            assert!(parse_object(input).is_err(), "{:?}", core::str::from_utf8(input));
        }
    }

    #[test]
    fn byte_order_mark_rejected() {
        assert!(parse_object(b"\xef\xbb\xbf{}").is_err());
    }

    #[test]
    fn lone_surrogate_rejected() {
        assert!(parse_object(br#"{"a":"\ud800"}"#).is_err());
    }

    #[test]
    fn numbers_keep_their_kind() {
        let map = parse_object(br#"{"i":9007199254740993,"f":1.5,"n":-3}"#).unwrap();
        assert_eq!(map["i"].as_u64(), Some(9_007_199_254_740_993));
        assert_eq!(map["f"].as_f64(), Some(1.5));
        assert_eq!(map["n"].as_i64(), Some(-3));
    }

    fn error_kind(input: &[u8]) -> JsonErrorKind {
        match parse_value(input) {
            Ok(value) => panic!("{:?} parsed as {value}", String::from_utf8_lossy(input)),
            Err(error) => error.kind,
        }
    }

    #[test]
    fn each_error_kind() {
        use JsonErrorKind::*;
        let cases: [(&[u8], JsonErrorKind); 38] = [
            (b"", EofInValue),
            (b"  ", EofInValue),
            (b"[1,", EofInValue),
            (b"\"abc", EofInString),
            (b"\"ab\\", EofInString),
            (b"\"\\u12", EofInString),
            (b"[1", EofInArray),
            (b"[", EofInValue),
            (b"{", EofInObject),
            (b"{\"a\"", EofInObject),
            (b"{\"a\":1", EofInObject),
            (b"{\"a\":1,", EofInObject),
            (b"x", ExpectedValue),
            (b"[1,,2]", ExpectedValue),
            (b"{\"a\":}", ExpectedValue),
            (b"tru", InvalidLiteral),
            (b"nul1", InvalidLiteral),
            (b"True", ExpectedValue),
            (b"{\"a\" 1}", ExpectedColon),
            (b"[1 2]", ExpectedCommaOrBracket),
            (b"{\"a\":1 \"b\":2}", ExpectedCommaOrBrace),
            (b"[1,]", TrailingComma),
            (b"{\"a\":1,}", TrailingComma),
            (b"{a:1}", KeyMustBeString),
            (b"{1:1}", KeyMustBeString),
            (b"01", InvalidNumber),
            (b"-", InvalidNumber),
            (b"1.", InvalidNumber),
            (b"1.e5", InvalidNumber),
            (b"1e", InvalidNumber),
            (b"1e+", InvalidNumber),
            (b"1e400", NumberOutOfRange),
            (b"\"\\x\"", InvalidEscape),
            (b"\"\\u12g4\"", InvalidEscape),
            (b"\"\\ud800\"", LoneSurrogate),
            (b"\"a\tb\"", ControlCharacter),
            (b"\"\xff\"", InvalidUtf8),
            (b"{} x", TrailingCharacters),
        ];
        for (input, kind) in cases {
            assert_eq!(error_kind(input), kind, "{:?}", String::from_utf8_lossy(input));
        }
        assert_eq!(error_kind(br#"{"a":1,"a":2}"#), DuplicateMember(String::from("a")));
        assert_eq!(error_kind(nested(MAX_DEPTH + 1).as_bytes()), TooDeep);
    }

    #[test]
    fn error_messages_name_the_position() {
        let error = parse_value(b"{\"a\": 1,\n  \"b\": x}").unwrap_err();
        assert_eq!(error.to_string(), "expected value at line 2 column 8");
        assert_eq!((error.offset(), error.line(), error.column()), (16, 2, 8));
        assert!(error.is_syntax());

        let error = parse_value(b"[1").unwrap_err();
        assert_eq!(error.to_string(), "EOF while parsing an array at line 1 column 3");

        let error = parse_value(b"\"\\ud800x\"").unwrap_err();
        assert_eq!(error.to_string(), "lone surrogate in \\u escape at line 1 column 2");

        let error = parse_value(b"\"a\x01\"").unwrap_err();
        assert_eq!(error.to_string(), "control character in string at line 1 column 3");

        let error = parse_value(b"\"\xc3\x28\"").unwrap_err();
        assert_eq!(error.to_string(), "invalid UTF-8 in string at line 1 column 2");
    }

    #[test]
    fn data_errors_point_path_at_member() {
        let document = b"{\"providers\": {\"idp\": {\"issuer\": \"a\",\n \"issuer\": \"b\"}}}";
        let error = parse_value(document).unwrap_err();
        assert!(!error.is_syntax());
        assert_eq!(error.to_string(), "duplicate member `issuer` at line 2 column 9");
        assert_eq!(path_at(document, error.line(), error.column()), "providers.idp.issuer");

        let document = nested(MAX_DEPTH + 1);
        let error = parse_value(document.as_bytes()).unwrap_err();
        assert!(!error.is_syntax());
        assert!(path_at(document.as_bytes(), error.line(), error.column()).starts_with("x[0]"));
    }

    #[test]
    fn duplicate_member_message_quotes_name_short() {
        let name = "n".repeat(200);
        let document = format!("{{\"{name}\":1,\"{name}\":2}}");
        let error = parse_object(document.as_bytes()).unwrap_err();
        assert!(error.starts_with(&format!("duplicate member `{}…`", "n".repeat(64))), "{error}");
    }

    #[test]
    fn escapes_decode() {
        let value = parse_value(br#""\"\\\/\b\f\n\r\t\u0041\u00e9\u20ac\u0000""#).unwrap();
        assert_eq!(value, Value::String(String::from("\"\\/\u{8}\u{c}\n\r\tA\u{e9}\u{20ac}\u{0}")));
        let value = parse_value(br#""\u00E9\u00e9""#).unwrap();
        assert_eq!(value, Value::String(String::from("\u{e9}\u{e9}")));
    }

    #[test]
    fn surrogate_pairs_decode() {
        let value = parse_value(br#""\ud83d\ude00 \uD834\uDD1E \udbff\udfff""#).unwrap();
        assert_eq!(value, Value::String(String::from("\u{1f600} \u{1d11e} \u{10ffff}")));
        let value = parse_value("\"\u{1f600}é\"".as_bytes()).unwrap();
        assert_eq!(value, Value::String(String::from("\u{1f600}é")));
    }

    #[test]
    fn lone_surrogates_rejected() {
        for input in [r#""\ud800""#, r#""\ud800\u0041""#, r#""\ud800\ud800""#, r#""\udc00""#, r#""\udfff\ud800""#, r#""\ud800\n""#, r#""\ud800x""#] {
            assert_eq!(error_kind(input.as_bytes()), JsonErrorKind::LoneSurrogate, "{input}");
        }
    }

    #[test]
    fn invalid_utf8_rejected() {
        // Overlong, surrogate, too large, truncated and stray continuation bytes.
        for input in [&b"\"\xc0\x80\""[..], b"\"\xed\xa0\x80\"", b"\"\xf4\x90\x80\x80\"", b"\"\xe2\x82\"", b"\"\x80\"", b"\"\xe2\x82"] {
            assert!(parse_value(input).is_err(), "{input:?}");
        }
        assert_eq!(error_kind(b"\"ok\xe2\x82\""), JsonErrorKind::InvalidUtf8);
        // Outside strings only ASCII is valid JSON.
        assert_eq!(error_kind("\u{a0}1".as_bytes()), JsonErrorKind::ExpectedValue);
    }

    #[test]
    fn whitespace_rules() {
        assert_eq!(parse_value(b" \t\n\r[ \t\n\r1 \t\n\r, \t\n\r{ \"a\" \t\n\r: \t\n\rnull \t\n\r} \t\n\r] \t\n\r").unwrap(), serde_json::json!([1, {"a": null}]));
        for input in [&b"\x0c1"[..], b"1\x0c", b"\x0b1", b"[1,\x002]", b"\xef\xbb\xbf1", "\u{a0}1".as_bytes(), "1\u{2028}".as_bytes()] {
            assert!(parse_value(input).is_err(), "{input:?}");
        }
    }

    #[test]
    fn literals_and_scalars_at_top_level() {
        assert_eq!(parse_value(b"true").unwrap(), Value::Bool(true));
        assert_eq!(parse_value(b"false").unwrap(), Value::Bool(false));
        assert_eq!(parse_value(b"null").unwrap(), Value::Null);
        assert_eq!(parse_value(b" \"s\" ").unwrap(), Value::String(String::from("s")));
        assert_eq!(parse_value(b"[]").unwrap(), Value::Array(Vec::new()));
        assert_eq!(parse_value(b"{ }").unwrap(), Value::Object(Map::new()));
        assert!(parse_value(b"truefalse").is_err());
        assert!(parse_value(b"1 2").is_err());
    }

    #[test]
    fn big_integers_keep_kind() {
        let value = parse_value(b"[18446744073709551615, 18446744073709551616, -9223372036854775808, -9223372036854775809, 0, -1, 9223372036854775808]").unwrap();
        let items = value.as_array().unwrap();
        assert_eq!(items[0].as_u64(), Some(u64::MAX));
        assert!(items[1].is_f64());
        assert_eq!(items[1].as_f64(), Some(18_446_744_073_709_551_616.0));
        assert_eq!(items[2].as_i64(), Some(i64::MIN));
        assert!(items[2].is_i64());
        assert!(items[3].is_f64());
        assert_eq!(items[3].as_f64(), Some(-9_223_372_036_854_775_809.0));
        assert!(items[4].is_u64());
        assert!(items[5].is_i64());
        assert_eq!(items[6].as_u64(), Some(9_223_372_036_854_775_808));
        let long = "9".repeat(400);
        assert_eq!(error_kind(long.as_bytes()), JsonErrorKind::NumberOutOfRange);
        assert_eq!(parse_value(format!("{long}e-100").as_bytes()).unwrap().as_f64(), Some(1e300));
    }

    #[test]
    fn negative_zero_is_float_as_in_serde_json() {
        for input in ["-0", "-0.0", "-0e5", "0.0", "0e-5"] {
            let ours = parse_value(input.as_bytes()).unwrap();
            let reference: Value = serde_json::from_str(input).unwrap();
            assert!(ours.is_f64(), "{input}");
            assert_eq!(ours.as_f64().map(f64::to_bits), reference.as_f64().map(f64::to_bits), "{input}");
        }
        assert!(parse_value(b"0").unwrap().is_u64());
    }

    /// A small deterministic generator (xorshift64*), so the tests need no dependency.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    /// Checks that `text` parses to the f64 that `str::parse` gives, which rounds
    /// correctly, or fails as out of range where that gives infinity.
    fn assert_float(text: &str) {
        let expected: f64 = text.parse().unwrap();
        match parse_value(text.as_bytes()) {
            Ok(value) => {
                let ours = value.as_f64().unwrap_or_else(|| panic!("{text} is not a number: {value}"));
                assert_eq!(ours.to_bits(), expected.to_bits(), "{text}: {ours:e} instead of {expected:e}");
            }
            Err(error) => {
                assert!(expected.is_infinite(), "{text}: {error}");
                assert_eq!(error.kind, JsonErrorKind::NumberOutOfRange, "{text}");
            }
        }
    }

    #[test]
    fn floats_match_reference_at_edges() {
        let cases = [
            "0.1", "0.2", "0.3", "1.5", "3.141592653589793", "2.718281828459045e0", "1e22", "1e23", "9007199254740993",
            "9007199254740995", "9007199254740992.5", "1.7976931348623157e308", "1.7976931348623158e308",
            "1.7976931348623159e308", "1.797693134862315807e308", "2.2250738585072014e-308", "2.2250738585072011e-308",
            "4.9406564584124654e-324", "5e-324", "2.4703282292062327e-324", "2.4703282292062328e-324", "3e-324", "1e-400",
            "-1e-400", "123456789012345678901234567890", "0.000001", "1e-7", "123.456e-2", "-2.5E+3", "1E0",
            "0.30000000000000004", "100000000000000000000000", "7.2057594037927933e16",
        ];
        for text in cases {
            assert_float(text);
        }
    }

    #[test]
    fn floats_match_reference_random() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let value = f64::from_bits(random.next());
            if !value.is_finite() {
                continue;
            }
            assert_float(&format!("{value}"));
            assert_float(&format!("{value:e}"));
            let precision = usize::try_from(random.below(20)).unwrap();
            assert_float(&format!("{value:.precision$e}"));
        }
        // Random digit strings with exponents around the whole range.
        for _ in 0..20_000 {
            let length = 1 + random.below(40);
            let mut text: String = (0..length).map(|_| char::from(b'0' + u8::try_from(random.below(10)).unwrap())).collect();
            if text.len() > 1 && random.below(2) == 0 {
                let at = 1 + usize::try_from(random.below(length - 1)).unwrap();
                text.insert(at, '.');
            }
            let text = text.trim_start_matches('0');
            let text = if text.is_empty() || text.starts_with('.') { format!("0.{}", text.trim_start_matches('.')) } else { String::from(text) };
            let text = text.trim_end_matches('.');
            let exponent = i64::try_from(random.below(700)).unwrap() - 350;
            assert_float(&format!("{text}e{exponent}"));
        }
    }

    #[test]
    fn floats_round_halfway_cases_to_even() {
        let mut random = Random(0x1234_5678_9abc_def1);
        for _ in 0..5_000 {
            // An odd integer in [2^53, 2^54) is exactly halfway between two f64 values,
            // and so is that integer times a power of two or divided by one.
            let odd = (1u128 << 53) | u128::from(random.next() & ((1 << 53) - 1)) | 1;
            let shift = random.below(70);
            let halfway = (odd << shift).to_string();
            assert_float(&halfway);
            assert_float(&format!("{halfway}.000000000000000000000000000001"));
            assert_float(&format!("{}.999999999999999999999999999999", (odd << shift) - 1));
            assert_float(&format!("{halfway}{}e-901", "0".repeat(900)));
            assert_float(&format!("{halfway}{}1e-901", "0".repeat(900)));
            assert_float(&format!("{}{}9e-901", (odd << shift) - 1, "9".repeat(900)));

            // odd × 5^power × 10^-power is odd / 2^power, also halfway.
            let power = u32::try_from(random.below(31)).unwrap();
            let scaled = (odd * 5u128.pow(power)).to_string();
            assert_float(&format!("{scaled}e-{power}"));
            let exponent = i64::try_from(random.below(600)).unwrap() - 300;
            assert_float(&format!("{scaled}e{exponent}"));
        }
    }

    /// Writes a random JSON value of at most `depth` more levels.
    fn random_json(random: &mut Random, depth: u32, out: &mut String) {
        const STRINGS: [&str; 8] = ["", "a", "alg", "\\u00e9", "\\ud83d\\ude00", "\\n\\\"\\\\", "é€😀", "sub"];
        const NUMBERS: [&str; 14] = [
            "0", "-0", "1", "-1", "1.5", "-2.5e-3", "1e308", "18446744073709551615", "18446744073709551616",
            "-9223372036854775808", "-9223372036854775809", "0.1e1", "123456789.123456789e-30", "5e-324",
        ];
        let choice = if depth == 0 { random.below(5) } else { random.below(7) };
        match choice {
            0 => out.push_str(["true", "false", "null"][usize::try_from(random.below(3)).unwrap()]),
            1 => out.push_str(NUMBERS[usize::try_from(random.below(14)).unwrap()]),
            2 => out.push_str(&format!("{}", random.next() >> random.below(64))),
            3 => out.push_str(&format!("{:e}", f64::from_bits(random.next() >> 2))),
            4 => out.push_str(&format!("\"{}\"", STRINGS[usize::try_from(random.below(8)).unwrap()])),
            5 => {
                out.push('[');
                for index in 0..random.below(4) {
                    if index > 0 {
                        out.push(',');
                    }
                    random_json(random, depth - 1, out);
                }
                out.push(']');
            }
            _ => {
                out.push('{');
                for index in 0..random.below(4) {
                    if index > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&format!("\"{}\": ", STRINGS[usize::try_from(random.below(8)).unwrap()]));
                    random_json(random, depth - 1, out);
                }
                out.push('}');
            }
        }
    }

    /// Compares two values, allowing floats to differ in the last place: without
    /// its `float_roundtrip` feature serde_json does not always round correctly.
    fn same_value(ours: &Value, reference: &Value) -> bool {
        match (ours, reference) {
            (Value::Number(a), Value::Number(b)) if a.is_f64() && b.is_f64() => {
                let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
                a.to_bits().abs_diff(b.to_bits()) <= 1 || (a == 0.0 && b == 0.0 && a.is_sign_negative() == b.is_sign_negative())
            }
            (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_value(a, b)),
            (Value::Object(a), Value::Object(b)) => a.len() == b.len() && a.iter().zip(b).all(|((ka, a), (kb, b))| ka == kb && same_value(a, b)),
            _ => ours == reference,
        }
    }

    #[test]
    fn differential_against_serde_json() {
        const MUTATIONS: &[u8] = b" \t\n\r{}[]:,\"\\-+.eE0123456789abcdefnrtu\x00\x1f\x7f\xc3\xa9\xff";
        let mut random = Random(0x0bad_cafe_dead_beef);
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..6_000 {
            let mut text = String::new();
            random_json(&mut random, 4, &mut text);
            let mut bytes = text.into_bytes();
            for _ in 0..random.below(4) {
                let at = usize::try_from(random.below(u64::try_from(bytes.len()).unwrap() + 1)).unwrap();
                let byte = MUTATIONS[usize::try_from(random.below(u64::try_from(MUTATIONS.len()).unwrap())).unwrap()];
                match random.below(3) {
                    0 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    1 if at < bytes.len() => bytes[at] = byte,
                    _ => bytes.insert(at, byte),
                }
            }
            let reference = serde_json::from_slice::<Value>(&bytes);
            match (parse_value(&bytes), reference) {
                (Ok(ours), Ok(reference)) => {
                    assert!(same_value(&ours, &reference), "{:?}: {ours} but serde_json {reference}", String::from_utf8_lossy(&bytes));
                    accepted += 1;
                }
                // Both reject, and a duplicate name may come before the syntax error.
                (Err(_), Err(_)) => rejected += 1,
                (Err(ours), Ok(_)) => {
                    assert!(matches!(ours.kind, JsonErrorKind::DuplicateMember(_)), "{:?}: {ours}", String::from_utf8_lossy(&bytes));
                }
                (Ok(ours), Err(reference)) => panic!("{:?}: {ours} but serde_json: {reference}", String::from_utf8_lossy(&bytes)),
            }
        }
        // Both outcomes are common enough for the comparison to mean something.
        assert!(accepted > 1_000, "{accepted} accepted");
        assert!(rejected > 1_000, "{rejected} rejected");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        const ALPHABET: &[u8] = b"{}[]:,\"\\ -.eE019tfnrulsu\x00\x80\xc3\xed\xf4";
        let mut random = Random(42);
        for _ in 0..20_000 {
            let length = random.below(24);
            let bytes: Vec<u8> = (0..length).map(|_| ALPHABET[usize::try_from(random.below(u64::try_from(ALPHABET.len()).unwrap())).unwrap()]).collect();
            let _ = parse_value(&bytes);
        }
    }
}
