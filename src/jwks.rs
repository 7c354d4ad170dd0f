//! JSON Web Key Sets ([RFC 7517 §5](https://www.rfc-editor.org/rfc/rfc7517#section-5)),
//! key import with strict checks, key selection and RFC 7638 thumbprints.
//!
//! A set is parsed once and reused for many tokens. An entry that cannot be used (unknown
//! `kty`, bad members, a weak or private key) is recorded as a [`SkippedKey`] and the rest
//! of the set stays usable, as RFC 7517 §5 asks; a set with no usable key is an error.
//! Keys are only ever taken from a configured set, never from a token header.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::alg::{self, Algorithm};
use crate::error::{KeySetError, Quoted, VerifyError};
use crate::json;
use crate::token::{Header, MAX_KID_BYTES};

/// Largest JWKS document accepted, in bytes. Issuers' sets with `x5c` chains are tens of
/// KiB; the limit bounds parsing work on a document fetched from the network.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Most entries accepted in one set.
pub const MAX_KEYS: usize = 64;

/// Ed25519 keys per set that get verification tables (crate feature `ed25519-tables`):
/// 110 KiB each, plus 110 KiB for the set. Identity providers publish one to three keys
/// at a time; keys after these verify without tables.
pub const MAX_ED25519_TABLES: usize = 4;

/// Smallest RSA modulus accepted, in bits ([RFC 7518 §3.3](https://www.rfc-editor.org/rfc/rfc7518#section-3.3)).
pub const MIN_RSA_BITS: usize = 2048;

/// Largest RSA modulus accepted, in bits; larger moduli make each verification costly.
pub const MAX_RSA_BITS: usize = 4096;

// The RSA arithmetic sizes its buffers for this limit.
const _: () = assert!(MAX_RSA_BITS <= alg::rsa::MAX_RSA_BITS);

/// Most keys tried for one token. More fitting keys make the token ambiguous, and every
/// candidate costs a signature check that an anonymous caller can trigger.
pub const MAX_CANDIDATES: usize = 8;

/// Options for reading a key set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeySetOptions {
    /// Accept `kty: oct` secrets. Only for sets from local configuration: a secret in a
    /// set fetched over the network lets every reader of that set forge tokens.
    pub allow_symmetric: bool,
}

/// Public (or, for `oct`, secret) key material of one JWK.
#[derive(Clone)]
#[non_exhaustive]
pub enum PublicKey {
    /// An RSA public key.
    Rsa(RsaKey),
    /// A P-256 point, with its verification tables.
    P256(alg::weierstrass::P256VerifyingKey),
    /// A P-384 point, with its verification tables.
    P384(alg::weierstrass::P384VerifyingKey),
    /// A P-521 point, with its verification tables.
    P521(alg::weierstrass::P521VerifyingKey),
    /// A secp256k1 point.
    #[cfg(feature = "es256k")]
    Secp256k1(k256::ecdsa::VerifyingKey),
    /// An Ed25519 public key, with a verification table in key sets when the crate
    /// feature `ed25519-tables` is on.
    Ed25519(alg::eddsa::Ed25519VerifyingKey),
    /// An HMAC secret.
    Oct(Secret),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl PublicKey {
    /// Returns the `crv` of an EC or OKP key.
    pub fn curve(&self) -> Option<&'static str> {
        match self {
            Self::P256(_) => Some("P-256"),
            Self::P384(_) => Some("P-384"),
            Self::P521(_) => Some("P-521"),
            #[cfg(feature = "es256k")]
            Self::Secp256k1(_) => Some("secp256k1"),
            Self::Ed25519(_) => Some("Ed25519"),
            Self::Rsa(_) | Self::Oct(_) => None,
        }
    }

    /// Describes the key type for messages, e.g. `an RSA key of 2048 bits`.
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa(key) => alloc::format!("an RSA key of {} bits", key.bits()),
            Self::Oct(secret) => alloc::format!("an oct key of {} bytes", secret.len()),
            Self::Ed25519(_) => String::from("an OKP key on Ed25519"),
            other => alloc::format!("an EC key on {}", other.curve().unwrap_or("?")),
        }
    }
}

/// An RSA public key with its modulus size.
#[derive(Clone, Debug)]
pub struct RsaKey {
    key: alg::rsa::RsaVerifyingKey,
    modulus: Vec<u8>,
    exponent: Vec<u8>,
}

impl RsaKey {
    /// The key prepared for verification (limbs of `n`, `R² mod n`), computed once at import.
    pub fn key(&self) -> &alg::rsa::RsaVerifyingKey {
        &self.key
    }

    /// Modulus length in bytes: the length of every signature.
    pub fn modulus_bytes(&self) -> usize {
        self.modulus.len()
    }

    /// Modulus length in bits.
    pub fn bits(&self) -> usize {
        bit_length(&self.modulus)
    }

    /// Big-endian modulus without leading zero bytes.
    pub fn modulus(&self) -> &[u8] {
        &self.modulus
    }

    /// Big-endian public exponent without leading zero bytes.
    pub fn exponent(&self) -> &[u8] {
        &self.exponent
    }
}

/// An HMAC secret with its HMAC states prepared at import, zeroed on drop and never printed.
#[derive(Clone)]
pub struct Secret(Vec<u8>, alg::hmac::HmacKey);

impl Secret {
    /// The key prepared for HMAC verification.
    pub fn hmac_key(&self) -> &alg::hmac::HmacKey {
        &self.1
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty (never true for a parsed key).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<[u8]> for Secret {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// One usable JWK.
#[derive(Clone, Debug)]
pub struct Jwk {
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `alg`, if present (may name an algorithm this crate does not implement).
    pub alg: Option<String>,
    /// `use`, if present.
    pub key_use: Option<String>,
    /// `key_ops`, if present.
    pub key_ops: Option<Vec<String>>,
    /// The key material.
    pub key: PublicKey,
    thumbprint: [u8; 32],
}

impl Jwk {
    /// The RFC 7638 SHA-256 thumbprint of the key.
    pub fn thumbprint(&self) -> &[u8; 32] {
        &self.thumbprint
    }

    /// The thumbprint as unpadded base64url, the form used in `cnf.jkt` (RFC 9449 §6.1).
    pub fn thumbprint_b64(&self) -> String {
        Base64UrlUnpadded::encode_string(&self.thumbprint)
    }

    /// Returns whether `use` and `key_ops` allow signature verification at all.
    pub fn may_verify(&self) -> bool {
        self.key_use.as_deref().is_none_or(|key_use| key_use == "sig")
            && self.key_ops.as_ref().is_none_or(|ops| ops.iter().any(|op| op == "verify"))
    }

    /// Explains why this key may not verify `alg`, or returns `None` when it may.
    ///
    /// Checks `use` (only `sig`), `key_ops` (must contain `verify`), the JWK's `alg`, and
    /// that the key type and curve fit the algorithm.
    pub fn ineligibility(&self, alg: Algorithm) -> Option<String> {
        if let Some(key_use) = &self.key_use {
            if key_use != "sig" {
                return Some(alloc::format!("the key is for use {}, not signatures", Quoted(key_use)));
            }
        }
        if let Some(ops) = &self.key_ops {
            if !ops.iter().any(|op| op == "verify") {
                return Some(String::from("the key's key_ops do not include `verify`"));
            }
        }
        if let Some(key_alg) = &self.alg {
            if key_alg != alg.name() {
                return Some(alloc::format!(
                    "the key is for alg {}, the token uses {}",
                    Quoted(key_alg),
                    alg.name()
                ));
            }
        }
        alg::key_mismatch(alg, &self.key)
    }
}

/// An entry of the set that cannot be used, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedKey {
    /// Position in the `keys` array.
    pub index: usize,
    /// `kid`, if the entry had a string one.
    pub kid: Option<String>,
    /// Why the entry was skipped.
    pub reason: String,
}

impl fmt::Display for SkippedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kid {
            Some(kid) => write!(f, "key {} (entry {}) skipped: {}", Quoted(kid), self.index, self.reason),
            None => write!(f, "entry {} skipped: {}", self.index, self.reason),
        }
    }
}

/// A parsed key set.
#[derive(Clone, Debug)]
pub struct KeySet {
    keys: Vec<Jwk>,
    skipped: Vec<SkippedKey>,
}

impl KeySet {
    /// Parses a JWKS document.
    ///
    /// # Errors
    ///
    /// [`KeySetError`] when the document is too large, not a JSON object with a `keys`
    /// array, has too many entries, or has no usable signature key.
    pub fn from_json(bytes: &[u8], options: KeySetOptions) -> Result<Self, KeySetError> {
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(KeySetError::TooLarge { actual: bytes.len(), max: MAX_JWKS_BYTES });
        }
        let mut document = json::parse_object(bytes).map_err(|reason| KeySetError::Malformed { reason })?;
        let entries = match document.remove("keys") {
            Some(Value::Array(entries)) => entries,
            Some(other) => {
                return Err(KeySetError::Malformed {
                    reason: alloc::format!("`keys` must be an array, found {}", json::kind(&other)),
                });
            }
            None => return Err(KeySetError::Malformed { reason: String::from("`keys` is missing") }),
        };
        if entries.len() > MAX_KEYS {
            return Err(KeySetError::TooManyKeys { actual: entries.len(), max: MAX_KEYS });
        }
        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for (index, entry) in entries.into_iter().enumerate() {
            match entry {
                Value::Object(members) => match import(&members, options) {
                    Ok(jwk) => keys.push(jwk),
                    Err(reason) => skipped.push(SkippedKey { index, kid: string_member(&members, "kid"), reason }),
                },
                other => skipped.push(SkippedKey {
                    index,
                    kid: None,
                    reason: alloc::format!("entry is {}, not an object", json::kind(&other)),
                }),
            }
        }
        let usable = keys.iter().any(Jwk::may_verify);
        if !usable {
            return Err(KeySetError::NoUsableKey { skipped: skipped.len() + keys.len() });
        }
        Ok(Self::prepared(keys, skipped))
    }

    /// Builds a set from keys already imported.
    pub fn from_keys(keys: Vec<Jwk>) -> Self {
        Self::prepared(keys, Vec::new())
    }

    /// Builds a set, with the verification tables that only pay off for keys kept for
    /// many tokens (see [`alg::eddsa`]).
    fn prepared(mut keys: Vec<Jwk>, skipped: Vec<SkippedKey>) -> Self {
        // The first Ed25519 key's basepoint table serves the others. Only the first
        // MAX_ED25519_TABLES keys get tables, which bounds the memory and the time a set
        // takes to prepare; the others verify without.
        let mut first_ed25519: Option<alg::eddsa::Ed25519VerifyingKey> = None;
        let mut prepared = 0;
        for jwk in &mut keys {
            if let PublicKey::Ed25519(key) = &mut jwk.key {
                if prepared == MAX_ED25519_TABLES {
                    break;
                }
                key.precompute(first_ed25519.as_ref());
                prepared += 1;
                first_ed25519.get_or_insert_with(|| key.clone());
            }
        }
        Self { keys, skipped }
    }

    /// The usable keys, in document order.
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// The entries that were skipped, with reasons.
    pub fn skipped(&self) -> &[SkippedKey] {
        &self.skipped
    }

    /// Chooses the keys that may verify a token with this header and algorithm.
    ///
    /// Candidates must pass [`Jwk::ineligibility`]. For a token with `kid`, the eligible
    /// keys with the same `kid` (exact, byte for byte) are the candidates. Eligible keys
    /// without `kid` are tried only when no key carries the token's `kid`. For a token
    /// without `kid`, every eligible key is a candidate. Document order never changes the
    /// outcome: every candidate is returned, and more than [`MAX_CANDIDATES`] is an error.
    ///
    /// # Errors
    ///
    /// [`VerifyError::KeyNotFound`] when nothing matches the `kid`, or when more than
    /// [`MAX_CANDIDATES`] keys fit; [`VerifyError::KeyUnusable`] when keys match but none
    /// may verify `alg`, with the reason of the first such key (or of a skipped entry with
    /// that `kid`).
    pub fn select(&self, header: &Header, alg: Algorithm) -> Result<Vec<&Jwk>, VerifyError> {
        let kid = header.kid.as_deref();
        if kid.is_some_and(|kid| kid.len() > MAX_KID_BYTES) {
            return Err(VerifyError::KeyNotFound { kid: kid.map(|kid| truncate(kid, 64)) });
        }
        // Keys that carry the token's kid are preferred to keys matched without one, and
        // their reasons explain a failure better, so the two are kept apart.
        let mut named_eligible = Vec::new();
        let mut other_eligible = Vec::new();
        let mut named_reason: Option<String> = None;
        let mut other_reason: Option<String> = None;
        for jwk in &self.keys {
            let named = match (kid, jwk.kid.as_deref()) {
                (Some(wanted), Some(have)) if wanted != have => continue,
                (Some(_), Some(_)) => true,
                _ => false,
            };
            match jwk.ineligibility(alg) {
                None if named => named_eligible.push(jwk),
                None => other_eligible.push(jwk),
                Some(reason) if named => {
                    named_reason.get_or_insert(reason);
                }
                Some(reason) => {
                    other_reason.get_or_insert(reason);
                }
            }
        }
        let eligible = if named_eligible.is_empty() { other_eligible } else { named_eligible };
        if eligible.len() > MAX_CANDIDATES {
            return Err(VerifyError::KeyNotFound { kid: kid.map(ToString::to_string) });
        }
        if !eligible.is_empty() {
            return Ok(eligible);
        }
        let owned_kid = kid.map(ToString::to_string);
        if let Some(reason) = named_reason {
            return Err(VerifyError::KeyUnusable { kid: owned_kid, reason });
        }
        if let Some(wanted) = kid {
            if let Some(entry) = self.skipped.iter().find(|entry| entry.kid.as_deref() == Some(wanted)) {
                return Err(VerifyError::KeyUnusable { kid: owned_kid, reason: entry.reason.clone() });
            }
        }
        if let Some(reason) = other_reason {
            return Err(VerifyError::KeyUnusable { kid: owned_kid, reason });
        }
        Err(VerifyError::KeyNotFound { kid: kid.map(ToString::to_string) })
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

fn string_member(members: &Map<String, Value>, name: &str) -> Option<String> {
    members.get(name).and_then(Value::as_str).map(ToString::to_string)
}

/// Reads a required base64url member; the reason names the member.
fn bytes_member(members: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    match members.get(name) {
        None => Err(alloc::format!("member `{name}` is missing")),
        Some(Value::String(text)) => Base64UrlUnpadded::decode_vec(text)
            .map_err(|_| alloc::format!("member `{name}` is not canonical unpadded base64url")),
        Some(other) => Err(alloc::format!("member `{name}` must be a string, found {}", json::kind(other))),
    }
}

fn optional_string(members: &Map<String, Value>, name: &str) -> Result<Option<String>, String> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(other) => Err(alloc::format!("member `{name}` must be a string, found {}", json::kind(other))),
    }
}

/// Imports one JWK, or explains why it cannot be used.
pub fn import(members: &Map<String, Value>, options: KeySetOptions) -> Result<Jwk, String> {
    let kty = match members.get("kty") {
        Some(Value::String(kty)) => kty.as_str(),
        Some(other) => return Err(alloc::format!("member `kty` must be a string, found {}", json::kind(other))),
        None => return Err(String::from("member `kty` is missing")),
    };
    let kid = optional_string(members, "kid")?;
    let alg = optional_string(members, "alg")?;
    let key_use = optional_string(members, "use")?;
    let key_ops = match members.get("key_ops") {
        None => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| item.as_str().map(ToString::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| String::from("member `key_ops` must be an array of strings"))?,
        ),
        Some(other) => return Err(alloc::format!("member `key_ops` must be an array, found {}", json::kind(other))),
    };
    if kty != "oct" {
        for private in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
            if members.contains_key(private) {
                return Err(alloc::format!("the key contains the private member `{private}`; publish public keys only"));
            }
        }
    }
    let (key, thumbprint_input) = match kty {
        "RSA" => import_rsa(members)?,
        "EC" => import_ec(members)?,
        "OKP" => import_okp(members)?,
        "oct" => {
            if !options.allow_symmetric {
                return Err(String::from("symmetric (`oct`) keys are only accepted from local configuration"));
            }
            let secret = bytes_member(members, "k")?;
            if secret.is_empty() {
                return Err(String::from("member `k` is empty"));
            }
            let input = alloc::format!(r#"{{"k":"{}","kty":"oct"}}"#, Base64UrlUnpadded::encode_string(&secret));
            (PublicKey::Oct(Secret(secret.clone(), alg::hmac::HmacKey::new(&secret))), input)
        }
        other => return Err(alloc::format!("key type {} is not supported", Quoted(other))),
    };
    let thumbprint: [u8; 32] = Sha256::digest(thumbprint_input.as_bytes()).into();
    Ok(Jwk { kid, alg, key_use, key_ops, key, thumbprint })
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&byte| byte != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn bit_length(big_endian: &[u8]) -> usize {
    match big_endian.first() {
        None => 0,
        Some(&first) => big_endian.len() * 8 - first.leading_zeros() as usize,
    }
}

fn import_rsa(members: &Map<String, Value>) -> Result<(PublicKey, String), String> {
    let modulus_raw = bytes_member(members, "n")?;
    let exponent_raw = bytes_member(members, "e")?;
    let modulus = strip_leading_zeros(&modulus_raw).to_vec();
    let exponent = strip_leading_zeros(&exponent_raw).to_vec();
    let bits = bit_length(&modulus);
    if modulus.last().is_none_or(|last| last & 1 == 0) {
        return Err(String::from("the RSA modulus is empty or even"));
    }
    if bits < MIN_RSA_BITS {
        return Err(alloc::format!("the RSA modulus has {bits} bits, fewer than the minimum of {MIN_RSA_BITS}"));
    }
    if bits > MAX_RSA_BITS {
        return Err(alloc::format!("the RSA modulus has {bits} bits, more than the maximum of {MAX_RSA_BITS}"));
    }
    // e = 1 makes every message its own signature; even exponents are not RSA. Small odd
    // exponents such as 3 and 35 are legitimate and verify correctly with strict padding checks.
    let exponent_value = match exponent.len() {
        1..=4 => exponent.iter().fold(0u64, |value, &byte| (value << 8) | u64::from(byte)),
        _ => return Err(String::from("the RSA exponent is empty or longer than 32 bits")),
    };
    if exponent_value < 3 || exponent_value % 2 == 0 {
        return Err(alloc::format!("the RSA exponent {exponent_value} is not allowed; it must be odd and at least 3"));
    }
    let exponent_value = u32::try_from(exponent_value).map_err(|_| String::from("the RSA exponent is longer than 32 bits"))?;
    let key = alg::rsa::RsaVerifyingKey::new(&modulus, exponent_value)
        .map_err(|error| alloc::format!("the RSA key is invalid: {error}"))?;
    let input = alloc::format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        Base64UrlUnpadded::encode_string(&exponent),
        Base64UrlUnpadded::encode_string(&modulus)
    );
    Ok((PublicKey::Rsa(RsaKey { key, modulus, exponent }), input))
}

fn import_ec(members: &Map<String, Value>) -> Result<(PublicKey, String), String> {
    let crv = match members.get("crv") {
        Some(Value::String(crv)) => crv.as_str(),
        Some(other) => return Err(alloc::format!("member `crv` must be a string, found {}", json::kind(other))),
        None => return Err(String::from("member `crv` is missing")),
    };
    let x = bytes_member(members, "x")?;
    let y = bytes_member(members, "y")?;
    let size = match crv {
        "P-256" | "secp256k1" => 32,
        "P-384" => 48,
        "P-521" => 66,
        other => return Err(alloc::format!("curve {} is not supported", Quoted(other))),
    };
    if x.len() != size || y.len() != size {
        return Err(alloc::format!(
            "coordinates on {crv} must be {size} bytes each, found {} and {}",
            x.len(),
            y.len()
        ));
    }
    let not_on_curve = || alloc::format!("the point is not on {crv}");
    let key = match crv {
        "P-256" => PublicKey::P256(alg::weierstrass::P256VerifyingKey::p256(&x, &y).map_err(|_| not_on_curve())?),
        "P-384" => PublicKey::P384(alg::weierstrass::P384VerifyingKey::p384(&x, &y).map_err(|_| not_on_curve())?),
        "P-521" => PublicKey::P521(alg::weierstrass::P521VerifyingKey::p521(&x, &y).map_err(|_| not_on_curve())?),
        #[cfg(feature = "es256k")]
        "secp256k1" => {
            let sec1 = [&[0x04][..], &x, &y].concat();
            PublicKey::Secp256k1(k256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| not_on_curve())?)
        }
        _ => return Err(alloc::format!("curve {} is not supported by this build", Quoted(crv))),
    };
    let input = alloc::format!(
        r#"{{"crv":"{crv}","kty":"EC","x":"{}","y":"{}"}}"#,
        Base64UrlUnpadded::encode_string(&x),
        Base64UrlUnpadded::encode_string(&y)
    );
    Ok((key, input))
}

fn import_okp(members: &Map<String, Value>) -> Result<(PublicKey, String), String> {
    match members.get("crv") {
        Some(Value::String(crv)) if crv == "Ed25519" => {}
        Some(Value::String(crv)) => return Err(alloc::format!("OKP curve {} is not supported", Quoted(crv))),
        Some(other) => return Err(alloc::format!("member `crv` must be a string, found {}", json::kind(other))),
        None => return Err(String::from("member `crv` is missing")),
    }
    let x = bytes_member(members, "x")?;
    let bytes: [u8; 32] = x
        .as_slice()
        .try_into()
        .map_err(|_| alloc::format!("Ed25519 keys are 32 bytes, found {}", x.len()))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| String::from("the point is not on Ed25519"))?;
    if key.is_weak() {
        return Err(String::from("the Ed25519 key is a point of small order"));
    }
    let input = alloc::format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#, Base64UrlUnpadded::encode_string(&x));
    Ok((PublicKey::Ed25519(alg::eddsa::Ed25519VerifyingKey::new(key)), input))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7638 §3.1 example key and its thumbprint.
    const RFC7638_KEY: &str = r#"{"keys":[{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}]}"#;

    #[test]
    fn thumbprint_rfc7638_3_1() {
        let set = KeySet::from_json(RFC7638_KEY.as_bytes(), KeySetOptions::default()).unwrap();
        assert_eq!(set.keys()[0].thumbprint_b64(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn malformed_documents_rejected() {
        for document in [&b"not json"[..], b"{}", b"{\"keys\":{}}", b"[]", b"{\"keys\":[]}"] {
            assert!(KeySet::from_json(document, KeySetOptions::default()).is_err());
        }
    }

    #[test]
    fn oct_keys_need_local_configuration() {
        let document = br#"{"keys":[{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}]}"#;
        assert!(matches!(
            KeySet::from_json(document, KeySetOptions::default()),
            Err(KeySetError::NoUsableKey { .. })
        ));
        let set = KeySet::from_json(document, KeySetOptions { allow_symmetric: true }).unwrap();
        assert_eq!(set.keys().len(), 1);
    }

    #[test]
    fn too_large_rejected_before_parsing() {
        let document = alloc::vec![b' '; MAX_JWKS_BYTES + 1];
        assert!(matches!(
            KeySet::from_json(&document, KeySetOptions::default()),
            Err(KeySetError::TooLarge { .. })
        ));
    }
}
