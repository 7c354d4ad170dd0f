//! The claims set ([RFC 7519 §4](https://www.rfc-editor.org/rfc/rfc7519#section-4)) with
//! strictly typed registered claims, and the claim checks of a [`Policy`].
//!
//! "Present with the wrong type" is never treated as "absent": a string `nbf` or a numeric
//! `aud` fails the token (the class of CVE-2026-25537).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde_json::{Map, Value};

use crate::error::{ParseError, VerifyError};
use crate::json;
use crate::policy::{IssuerMatcher, Policy};

/// Latest NumericDate accepted: 9999-12-31T23:59:59Z. Larger values are errors, so no
/// arithmetic on them can overflow.
pub const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// Registered claims, typed, plus the whole claims object.
#[derive(Clone, Debug, PartialEq)]
pub struct Claims {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud` as a list (a string `aud` becomes one entry); `None` when absent.
    pub aud: Option<Vec<String>>,
    /// `exp`, rounded down to whole seconds.
    pub exp: Option<i64>,
    /// `nbf`, rounded up to whole seconds.
    pub nbf: Option<i64>,
    /// `iat`, rounded up to whole seconds.
    pub iat: Option<i64>,
    /// `jti`.
    pub jti: Option<String>,
    /// `client_id` ([RFC 9068 §2.2](https://www.rfc-editor.org/rfc/rfc9068#section-2.2)).
    pub client_id: Option<String>,
    /// `azp` (OpenID Connect authorized party).
    pub azp: Option<String>,
    /// Scopes from `scope` (space-delimited) and `scp` (string or array of strings).
    pub scopes: Vec<String>,
    /// The whole claims object.
    pub all: Map<String, Value>,
}

/// Rounding for fractional NumericDates: the direction that makes the check stricter.
#[derive(Clone, Copy)]
enum Round {
    Down,
    Up,
}

fn malformed(reason: String) -> ParseError {
    ParseError::Claims { reason }
}

fn numeric_date(map: &Map<String, Value>, name: &str, round: Round) -> Result<Option<i64>, ParseError> {
    let value = match map.get(name) {
        None => return Ok(None),
        Some(value) => value,
    };
    let out_of_range = || malformed(alloc::format!("`{name}` is outside 0..={MAX_NUMERIC_DATE}"));
    let seconds = match value {
        Value::Number(number) => {
            if let Some(integer) = number.as_i64() {
                integer
            } else if number.is_u64() {
                return Err(out_of_range());
            } else {
                let float = number.as_f64().ok_or_else(out_of_range)?;
                if !float.is_finite() || float < 0.0 || float > MAX_NUMERIC_DATE as f64 {
                    return Err(out_of_range());
                }
                let whole = float as i64;
                match round {
                    Round::Down => whole,
                    Round::Up if (whole as f64) < float => whole + 1,
                    Round::Up => whole,
                }
            }
        }
        other => {
            return Err(malformed(alloc::format!(
                "`{name}` must be a number (NumericDate), found {}",
                json::kind(other)
            )));
        }
    };
    if !(0..=MAX_NUMERIC_DATE).contains(&seconds) {
        return Err(out_of_range());
    }
    Ok(Some(seconds))
}

fn string_claim(map: &Map<String, Value>, name: &str) -> Result<Option<String>, ParseError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(other) => Err(malformed(alloc::format!("`{name}` must be a string, found {}", json::kind(other)))),
    }
}

fn string_list(value: &Value, name: &str, split_strings: bool) -> Result<Vec<String>, ParseError> {
    match value {
        Value::String(text) if split_strings => Ok(text.split(' ').filter(|part| !part.is_empty()).map(ToString::to_string).collect()),
        Value::String(text) => Ok(alloc::vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(text) => Ok(text.clone()),
                other => Err(malformed(alloc::format!(
                    "`{name}` must contain only strings, found {}",
                    json::kind(other)
                ))),
            })
            .collect(),
        other => Err(malformed(alloc::format!(
            "`{name}` must be a string or an array of strings, found {}",
            json::kind(other)
        ))),
    }
}

impl Claims {
    /// Parses decoded claims JSON.
    ///
    /// # Errors
    ///
    /// [`ParseError::Claims`] for invalid JSON, duplicate members, or a registered claim of
    /// the wrong type or range.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ParseError> {
        let map = json::parse_object(bytes).map_err(malformed)?;
        Self::from_map(map)
    }

    /// Types the registered claims of a parsed object.
    ///
    /// # Errors
    ///
    /// As [`Claims::from_json`].
    pub fn from_map(map: Map<String, Value>) -> Result<Self, ParseError> {
        let aud = match map.get("aud") {
            None => None,
            // `aud` is one string or an array; a string is never split on spaces.
            Some(value) => Some(string_list(value, "aud", false)?),
        };
        let mut scopes = match map.get("scope") {
            None => Vec::new(),
            Some(Value::String(text)) => text.split(' ').filter(|part| !part.is_empty()).map(ToString::to_string).collect(),
            Some(other) => {
                return Err(malformed(alloc::format!("`scope` must be a string, found {}", json::kind(other))));
            }
        };
        if let Some(scp) = map.get("scp") {
            for scope in string_list(scp, "scp", true)? {
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
        Ok(Self {
            iss: string_claim(&map, "iss")?,
            sub: string_claim(&map, "sub")?,
            aud,
            exp: numeric_date(&map, "exp", Round::Down)?,
            nbf: numeric_date(&map, "nbf", Round::Up)?,
            iat: numeric_date(&map, "iat", Round::Up)?,
            jti: string_claim(&map, "jti")?,
            client_id: string_claim(&map, "client_id")?,
            azp: string_claim(&map, "azp")?,
            scopes,
            all: map,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.all.contains_key(name)
    }
}

/// Checks `exp`, `nbf`, `iat`, the maximum age and the maximum lifetime at `now`.
///
/// A token is expired when `now >= exp + leeway`, not yet valid when `now < nbf - leeway`,
/// and issued in the future when `iat > now + leeway`. A token whose `nbf` is not before
/// its `exp` is never valid.
///
/// # Errors
///
/// The first failing check as a [`VerifyError`].
pub fn check_time(claims: &Claims, policy: &Policy, now: i64) -> Result<(), VerifyError> {
    let leeway = i64::try_from(policy.leeway).unwrap_or(i64::MAX);
    match claims.exp {
        None if policy.require_expiration => {
            return Err(VerifyError::MissingClaim { claim: String::from("exp") });
        }
        Some(exp) if now >= exp.saturating_add(leeway) => {
            return Err(VerifyError::Expired { exp, now });
        }
        None | Some(_) => {}
    }
    if let Some(nbf) = claims.nbf {
        if claims.exp.is_some_and(|exp| nbf >= exp) {
            return Err(VerifyError::NotYetValid { claim: "nbf", value: nbf, now });
        }
        if now < nbf.saturating_sub(leeway) {
            return Err(VerifyError::NotYetValid { claim: "nbf", value: nbf, now });
        }
    }
    if let Some(iat) = claims.iat {
        if iat > now.saturating_add(leeway) {
            return Err(VerifyError::NotYetValid { claim: "iat", value: iat, now });
        }
    }
    if let Some(max_age) = policy.max_token_age {
        let iat = claims.iat.ok_or_else(|| VerifyError::MissingClaim { claim: String::from("iat") })?;
        let age = now.saturating_sub(iat);
        if age > i64::try_from(max_age).unwrap_or(i64::MAX).saturating_add(leeway) {
            return Err(VerifyError::TooOld { iat, max_age });
        }
    }
    if let (Some(max), Some(exp)) = (policy.max_lifetime, claims.exp) {
        // With `iat` the lifetime is what the issuer granted; without it, what remains.
        let lifetime = exp.saturating_sub(claims.iat.unwrap_or(now));
        if lifetime > i64::try_from(max).unwrap_or(i64::MAX).saturating_add(leeway) {
            return Err(VerifyError::LifetimeTooLong { lifetime, max });
        }
    }
    if policy.max_lifetime.is_some() && claims.exp.is_none() {
        return Err(VerifyError::MissingClaim { claim: String::from("exp") });
    }
    Ok(())
}

/// Checks `iss` against the accepted issuers and tenants.
///
/// # Errors
///
/// [`VerifyError::MissingClaim`] or [`VerifyError::Issuer`].
pub fn check_issuer(claims: &Claims, policy: &Policy) -> Result<(), VerifyError> {
    if policy.issuers.is_empty() {
        return Ok(());
    }
    let iss = claims.iss.as_deref().ok_or_else(|| VerifyError::MissingClaim { claim: String::from("iss") })?;
    let rejected = || VerifyError::Issuer { actual: iss.to_string() };
    for matcher in &policy.issuers {
        let Some(tenant) = matcher.matches(iss) else { continue };
        if let IssuerMatcher::Template { .. } = matcher {
            if let Some(tenants) = &policy.tenants {
                if !tenants.iter().any(|allowed| allowed == tenant) {
                    return Err(rejected());
                }
            }
            if let Some(claim) = &policy.tenant_claim {
                match claims.all.get(claim) {
                    Some(Value::String(value)) if value == tenant => {}
                    Some(Value::String(_)) | None => return Err(rejected()),
                    Some(other) => {
                        return Err(ParseError::Claims {
                            reason: alloc::format!("`{claim}` must be a string, found {}", json::kind(other)),
                        }
                        .into());
                    }
                }
            }
        }
        return Ok(());
    }
    Err(rejected())
}

/// Checks `aud`: any of the token's audiences must be accepted. Exact, case-sensitive.
///
/// # Errors
///
/// [`VerifyError::MissingClaim`] or [`VerifyError::Audience`].
pub fn check_audience(claims: &Claims, policy: &Policy) -> Result<(), VerifyError> {
    if policy.audiences.is_empty() {
        return Ok(());
    }
    let aud = claims.aud.as_ref().ok_or_else(|| VerifyError::MissingClaim { claim: String::from("aud") })?;
    if aud.iter().any(|value| policy.audiences.contains(value)) {
        Ok(())
    } else {
        Err(VerifyError::Audience { actual: aud.clone() })
    }
}

/// Checks the policy's token-type claim, such as Cognito's `token_use` or Keycloak's
/// payload `typ`.
///
/// The verifier runs it right after parsing the claims, before the time, issuer and
/// audience checks, because it plays the role of the header `typ`. A token of another kind
/// (an ID token, a refresh token) is then reported as such, not as the first claim that
/// happens to differ between the kinds.
///
/// # Errors
///
/// [`VerifyError::TokenType`] when the claim is absent, not a string or another value.
pub fn check_token_type_claim(claims: &Claims, policy: &Policy) -> Result<(), VerifyError> {
    let Some(type_claim) = &policy.token_type_claim else { return Ok(()) };
    let expected = &type_claim.value;
    match type_claim.claim.lookup(&claims.all) {
        Some(Value::String(actual)) if actual == expected => Ok(()),
        Some(Value::String(actual)) => {
            Err(VerifyError::TokenType { expected: expected.clone(), actual: Some(actual.clone()) })
        }
        Some(other) => Err(VerifyError::TokenType {
            expected: expected.clone(),
            actual: Some(alloc::format!("<{}>", json::kind(other))),
        }),
        None => Err(VerifyError::TokenType { expected: expected.clone(), actual: None }),
    }
}

/// Checks the RFC 9068 required claims, `sub`, the client and the further required claims,
/// in that order.
///
/// # Errors
///
/// The first failing check as a [`VerifyError`].
pub fn check_identity(claims: &Claims, policy: &Policy) -> Result<(), VerifyError> {
    for name in &policy.required_registered {
        if !claims.has(name) {
            return Err(VerifyError::MissingClaim { claim: (*name).to_string() });
        }
    }
    if !policy.subjects.is_empty() {
        let sub = claims.sub.as_deref().ok_or_else(|| VerifyError::MissingClaim { claim: String::from("sub") })?;
        if !policy.subjects.iter().any(|matcher| matcher.matches(sub)) {
            return Err(VerifyError::Subject { actual: sub.to_string() });
        }
    }
    if !policy.client_ids.is_empty() {
        let client = claims
            .client_id
            .as_deref()
            .or(claims.azp.as_deref())
            .ok_or_else(|| VerifyError::MissingClaim { claim: String::from("client_id") })?;
        if !policy.client_ids.iter().any(|allowed| allowed == client) {
            return Err(VerifyError::ClientNotAllowed { actual: client.to_string() });
        }
    }
    for requirement in &policy.required_claims {
        let claim = || requirement.claim.to_string();
        let value = requirement
            .claim
            .lookup(&claims.all)
            .ok_or_else(|| VerifyError::MissingClaim { claim: claim() })?;
        if let Some(expected) = &requirement.equals {
            if value != expected {
                return Err(VerifyError::ClaimValue { claim: claim() });
            }
        }
        if let Some(allowed) = &requirement.one_of {
            if !allowed.contains(value) {
                return Err(VerifyError::ClaimValue { claim: claim() });
            }
        }
    }
    Ok(())
}

/// Checks the scope and role requirements.
///
/// # Errors
///
/// [`VerifyError::InsufficientScope`] or [`VerifyError::InsufficientRole`] naming what is
/// missing; [`ParseError::Claims`] when the role claim has the wrong type.
pub fn check_authorization(claims: &Claims, policy: &Policy) -> Result<(), VerifyError> {
    // Most policies require no scope; they skip listing the token's.
    let scopes_required = !policy.scopes.all_of.is_empty() || !policy.scopes.any_of.is_empty();
    if scopes_required {
        let scopes: Vec<&str> = claims.scopes.iter().map(String::as_str).collect();
        if let Some(missing) = policy.scopes.missing(&scopes) {
            return Err(VerifyError::InsufficientScope { missing });
        }
    }
    if let Some(roles) = &policy.roles {
        let present = match roles.claim.lookup(&claims.all) {
            None => Vec::new(),
            Some(value) => string_list(value, &roles.claim.to_string(), true)?,
        };
        let present: Vec<&str> = present.iter().map(String::as_str).collect();
        if let Some(missing) = roles.requirement.missing(&present) {
            return Err(VerifyError::InsufficientRole { missing });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Result<Claims, ParseError> {
        Claims::from_json(json.as_bytes())
    }

    #[test]
    fn numeric_date_forms() {
        assert_eq!(claims(r#"{"exp":1700003600.75}"#).unwrap().exp, Some(1_700_003_600));
        assert_eq!(claims(r#"{"exp":1.7000036e9}"#).unwrap().exp, Some(1_700_003_600));
        assert_eq!(claims(r#"{"nbf":1700000000.1}"#).unwrap().nbf, Some(1_700_000_001));
        assert_eq!(claims(r#"{"exp":0}"#).unwrap().exp, Some(0));
    }

    #[test]
    fn numeric_date_wrong_types_rejected() {
        for json in [
            r#"{"exp":"1700003600"}"#,
            r#"{"exp":true}"#,
            r#"{"exp":[]}"#,
            r#"{"exp":{}}"#,
            r#"{"exp":null}"#,
            r#"{"exp":1e20}"#,
            r#"{"exp":-1e20}"#,
            r#"{"exp":-1}"#,
            r#"{"exp":9007199254740993}"#,
            r#"{"exp":18446744073709551615}"#,
            r#"{"nbf":"1800000000"}"#,
            r#"{"iat":{}}"#,
        ] {
            assert!(matches!(claims(json), Err(ParseError::Claims { .. })), "{json}");
        }
    }

    #[test]
    fn registered_string_claims_typed() {
        for json in [r#"{"aud":123}"#, r#"{"aud":["a",42]}"#, r#"{"iss":["x"]}"#, r#"{"sub":1}"#, r#"{"scope":["a"]}"#, r#"{"scp":[1]}"#] {
            assert!(matches!(claims(json), Err(ParseError::Claims { .. })), "{json}");
        }
    }

    #[test]
    fn scopes_from_scope_and_scp() {
        let parsed = claims(r#"{"scope":"a  b","scp":["b","c"]}"#).unwrap();
        assert_eq!(parsed.scopes, ["a", "b", "c"]);
        let parsed = claims(r#"{"scp":"read write"}"#).unwrap();
        assert_eq!(parsed.scopes, ["read", "write"]);
    }

    #[test]
    fn audience_string_not_split() {
        let parsed = claims(r#"{"aud":"api://a api://b"}"#).unwrap();
        assert_eq!(parsed.aud, Some(alloc::vec![String::from("api://a api://b")]));
    }
}
