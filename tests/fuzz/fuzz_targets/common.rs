//! Known-good inputs shared by the fuzz targets: the RFC vectors of `tests/vectors/rfc.json`
//! with their keys, and policies that accept them. Targets splice fuzzer bytes into these so
//! that mutations start from inputs that reach the signature and claim checks.

use std::sync::OnceLock;

use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::policy::Policy;
use serde_json::{json, Value};

const RFC_VECTORS: &str = include_str!("../../vectors/rfc.json");

pub struct Known {
    pub tokens: Vec<String>,
    pub jwks: Vec<String>,
    pub policies: Vec<String>,
    pub key_sets: Vec<KeySet>,
    pub compiled: Vec<Policy>,
    /// Verification times: before the RFC 7515 tokens expire, and a current one.
    pub times: [u64; 3],
}

pub fn known() -> &'static Known {
    static KNOWN: OnceLock<Known> = OnceLock::new();
    KNOWN.get_or_init(|| {
        let vectors: Value = serde_json::from_str(RFC_VECTORS).unwrap_or(Value::Null);
        let entries = vectors["signatures"].as_array().cloned().unwrap_or_default();
        let mut tokens = Vec::new();
        let mut jwks = Vec::new();
        let mut algorithms = Vec::new();
        for entry in &entries {
            tokens.push(entry["token"].as_str().unwrap_or_default().to_string());
            let mut key = entry["key"].clone();
            if let Some(members) = key.as_object_mut() {
                for private in ["d", "p", "q", "dp", "dq", "qi"] {
                    members.remove(private);
                }
            }
            jwks.push(json!({ "keys": [key] }).to_string());
            algorithms.push(entry["alg"].clone());
        }
        let policies = vec![
            json!({ "algorithms": algorithms }).to_string(),
            json!({ "algorithms": ["HS256"], "issuer": "joe", "require_expiration": false }).to_string(),
            json!({
                "algorithms": ["RS256", "ES256", "HS256"],
                "issuer": ["joe", "https://login.example.com/{tenant}/v2.0"],
                "audiences": ["api://example-api"],
                "token_type": "at+jwt",
                "token_type_claim": { "claim": "http://example.com/is_root", "value": "yes" },
                "max_lifetime": "1h",
                "scopes": { "any_of": ["read"] },
                "roles": { "preset": "keycloak_realm", "all_of": ["admin"] }
            })
            .to_string(),
        ];
        let options = KeySetOptions { allow_symmetric: true };
        let key_sets = jwks.iter().filter_map(|document| KeySet::from_json(document.as_bytes(), options).ok()).collect();
        let compiled = policies.iter().filter_map(|document| Policy::from_json(document.as_bytes()).ok()).collect();
        Known { tokens, jwks, policies, key_sets, compiled, times: [1_300_819_000, 1_700_000_000, u64::MAX] }
    })
}
