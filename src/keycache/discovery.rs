//! The key set's URL from an OpenID Connect discovery document
//! ([OpenID Connect Discovery 1.0 §4](https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderConfig))
//! or an OAuth 2.0 authorization server metadata document
//! ([RFC 8414 §3](https://www.rfc-editor.org/rfc/rfc8414#section-3)).
//!
//! The document's `issuer` must be the issuer the document was fetched for (Discovery
//! §4.3, RFC 8414 §3.3). Otherwise an attacker who controls the document could hand out
//! another issuer's keys. `jwks_uri` must be an absolute `https` URL, or `http` when the
//! document itself came over `http`.

use alloc::string::{String, ToString};
use core::fmt;

use serde_json::Value;

use crate::error::Quoted;
use crate::json;
use crate::policy::IssuerMatcher;

/// Largest discovery document read, in bytes. Real documents are 1 to 10 KB
/// (Keycloak's, with every supported algorithm listed, is about 6 KB).
pub const MAX_DISCOVERY_BYTES: usize = 64 * 1024;

/// The well-known path of OpenID Connect discovery, appended to the issuer.
pub const OIDC_WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// The well-known path of RFC 8414, inserted between the issuer's host and path.
pub const OAUTH_WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// Reasons a discovery document cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The document is larger than [`MAX_DISCOVERY_BYTES`]; nothing was parsed.
    TooLarge {
        /// Size in bytes.
        actual: usize,
    },
    /// The document is not a JSON object.
    Malformed {
        /// The JSON parser's message.
        reason: String,
    },
    /// `issuer` is missing or is not the issuer the document was fetched for.
    IssuerMismatch {
        /// The expected issuer: the one derived from the URL, or the configured issuers.
        expected: String,
        /// The document's `issuer`, if it has a string one.
        actual: Option<String>,
    },
    /// `jwks_uri` is missing or not a string.
    MissingJwksUri,
    /// `jwks_uri` is not an absolute URL with an allowed scheme.
    InvalidJwksUri {
        /// The value.
        uri: String,
    },
}

impl fmt::Display for DiscoveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { actual } => write!(
                f,
                "discovery document is {actual} bytes, more than the maximum of {MAX_DISCOVERY_BYTES}"
            ),
            Self::Malformed { reason } => write!(f, "discovery document is invalid: {reason}"),
            Self::IssuerMismatch { expected, actual: Some(actual) } => write!(
                f,
                "discovery document names issuer {}, expected {expected}",
                Quoted(actual)
            ),
            Self::IssuerMismatch { expected, actual: None } => {
                write!(f, "discovery document has no string `issuer`, expected {expected}")
            }
            Self::MissingJwksUri => f.write_str("discovery document has no string `jwks_uri`"),
            Self::InvalidJwksUri { uri } => write!(
                f,
                "discovery document's `jwks_uri` {} is not an absolute https URL (http only when discovery used http)",
                Quoted(uri)
            ),
        }
    }
}

/// Returns the issuer whose metadata lives at `discovery_uri`, when the URL has one of the
/// two well-known forms: `<issuer>/.well-known/openid-configuration`, or
/// `https://host/.well-known/oauth-authorization-server<issuer path>`.
pub fn issuer_of_discovery_uri(discovery_uri: &str) -> Option<String> {
    if let Some(issuer) = discovery_uri.strip_suffix(OIDC_WELL_KNOWN) {
        return (!issuer.is_empty()).then(|| issuer.to_string());
    }
    let (before, after) = discovery_uri.split_once(OAUTH_WELL_KNOWN)?;
    if before.is_empty() || !(after.is_empty() || after.starts_with('/')) {
        return None;
    }
    Some(alloc::format!("{before}{after}"))
}

/// Reads `jwks_uri` from a discovery document fetched from `discovery_uri`.
///
/// With `issuers` configured, the document's `issuer` must match one of them; without,
/// it must equal the issuer derived from `discovery_uri` by
/// [`issuer_of_discovery_uri`].
///
/// # Errors
///
/// [`DiscoveryError`] for an oversized or malformed document, an issuer mismatch, or a
/// missing or invalid `jwks_uri`.
pub fn jwks_uri_from_discovery(document: &[u8], discovery_uri: &str, issuers: &[IssuerMatcher]) -> Result<String, DiscoveryError> {
    if document.len() > MAX_DISCOVERY_BYTES {
        return Err(DiscoveryError::TooLarge { actual: document.len() });
    }
    let metadata = json::parse_object(document).map_err(|reason| DiscoveryError::Malformed { reason })?;
    let issuer = metadata.get("issuer").and_then(Value::as_str);
    let issuer_ok = match (issuers.is_empty(), issuer) {
        (_, None) => false,
        (false, Some(issuer)) => issuers.iter().any(|matcher| matcher.matches(issuer).is_some()),
        (true, Some(issuer)) => issuer_of_discovery_uri(discovery_uri).is_some_and(|expected| expected == issuer),
    };
    if !issuer_ok {
        let expected = if issuers.is_empty() {
            issuer_of_discovery_uri(discovery_uri).map_or_else(
                || String::from("an issuer configured with `issuer`"),
                |expected| alloc::format!("{}", Quoted(&expected)),
            )
        } else {
            String::from("one of the configured issuers")
        };
        return Err(DiscoveryError::IssuerMismatch { expected, actual: issuer.map(ToString::to_string) });
    }
    let uri = metadata.get("jwks_uri").and_then(Value::as_str).ok_or(DiscoveryError::MissingJwksUri)?;
    let allowed = uri.starts_with("https://") || (uri.starts_with("http://") && discovery_uri.starts_with("http://"));
    let has_host = uri.split_once("://").is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    if !allowed || !has_host || uri.bytes().any(|byte| byte.is_ascii_control() || byte == b' ') {
        return Err(DiscoveryError::InvalidJwksUri { uri: uri.to_string() });
    }
    Ok(uri.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "https://idp.example.com/realms/a/.well-known/openid-configuration";

    #[test]
    fn issuer_from_well_known_forms() {
        assert_eq!(issuer_of_discovery_uri(URI).as_deref(), Some("https://idp.example.com/realms/a"));
        assert_eq!(
            issuer_of_discovery_uri("https://as.example.com/.well-known/oauth-authorization-server/tenant1").as_deref(),
            Some("https://as.example.com/tenant1")
        );
        assert_eq!(issuer_of_discovery_uri("https://as.example.com/.well-known/oauth-authorization-server").as_deref(), Some("https://as.example.com"));
        assert_eq!(issuer_of_discovery_uri("https://idp.example.com/metadata.json"), None);
    }

    #[test]
    fn jwks_uri_read() {
        let document = br#"{"issuer":"https://idp.example.com/realms/a","jwks_uri":"https://idp.example.com/realms/a/certs"}"#;
        assert_eq!(jwks_uri_from_discovery(document, URI, &[]).unwrap(), "https://idp.example.com/realms/a/certs");
    }

    #[test]
    fn issuer_mismatch_rejected() {
        let document = br#"{"issuer":"https://evil.example.com","jwks_uri":"https://evil.example.com/certs"}"#;
        let error = jwks_uri_from_discovery(document, URI, &[]).unwrap_err();
        assert!(matches!(error, DiscoveryError::IssuerMismatch { .. }), "{error}");
        let configured = [IssuerMatcher::Exact(String::from("https://idp.example.com/realms/a"))];
        assert!(jwks_uri_from_discovery(document, URI, &configured).is_err());
        let missing = br#"{"jwks_uri":"https://idp.example.com/certs"}"#;
        assert!(jwks_uri_from_discovery(missing, URI, &[]).is_err());
    }

    #[test]
    fn configured_issuer_wins_over_url() {
        let document = br#"{"issuer":"https://login.example.com/t1/v2.0","jwks_uri":"https://login.example.com/keys"}"#;
        let configured = [IssuerMatcher::Template { prefix: String::from("https://login.example.com/"), suffix: String::from("/v2.0") }];
        assert!(jwks_uri_from_discovery(document, URI, &configured).is_ok());
    }

    #[test]
    fn bad_jwks_uri_rejected() {
        for uri in ["", "/certs", "ftp://idp.example.com/certs", "http://idp.example.com/certs", "https:///certs", "https://idp.example.com/a b"] {
            let document = alloc::format!(r#"{{"issuer":"https://idp.example.com/realms/a","jwks_uri":"{uri}"}}"#);
            assert!(jwks_uri_from_discovery(document.as_bytes(), URI, &[]).is_err(), "{uri}");
        }
        let document = br#"{"issuer":"https://idp.example.com/realms/a","jwks_uri":7}"#;
        assert_eq!(jwks_uri_from_discovery(document, URI, &[]), Err(DiscoveryError::MissingJwksUri));
    }

    #[test]
    fn http_allowed_only_after_http_discovery() {
        let uri = "http://127.0.0.1:8080/.well-known/openid-configuration";
        let document = br#"{"issuer":"http://127.0.0.1:8080","jwks_uri":"http://127.0.0.1:8080/jwks"}"#;
        assert_eq!(jwks_uri_from_discovery(document, uri, &[]).unwrap(), "http://127.0.0.1:8080/jwks");
    }

    #[test]
    fn garbage_and_oversized_rejected() {
        assert!(matches!(jwks_uri_from_discovery(b"not json", URI, &[]), Err(DiscoveryError::Malformed { .. })));
        let huge = alloc::vec![b' '; MAX_DISCOVERY_BYTES + 1];
        assert!(matches!(jwks_uri_from_discovery(&huge, URI, &[]), Err(DiscoveryError::TooLarge { .. })));
    }
}
