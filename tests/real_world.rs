//! The core's share of the real-world cases: one test (or a few) per case ID, plus siblings
//! of the same kind.
//!
//! Each case comes from a public bug report or advisory about another JWT stack. The test
//! names the case ID and states the outcome portcullis pins. Where portcullis decides
//! differently from the outcome the case proposes, a comment states that and why. Cases that
//! need the Envoy filter or JWKS fetching (retries, outbound-call counts, several headers)
//! are tested with the filter, not here.
//!
//! Unless a test says otherwise it runs with policy `P0` (issuer `https://idp.example.com/`,
//! audience `api://example-api`, algorithms RS256 and ES256, leeway 60 s, `exp` required,
//! 16 KiB token limit), key set `JWKS_A` and `now` = 1700000000.

mod common;

use base64ct::{Base64, Encoding};
use common::*;
use portcullis::alg::Algorithm;
use portcullis::bearer::{parse_authorization, Challenge, Credential};
use portcullis::error::{ErrorCode, KeySetError};
use portcullis::jwks::{KeySet, KeySetOptions};
use portcullis::pkce::{check_verifier, code_challenge, create_pkce, verify_pkce, PkceError};
use portcullis::policy::Policy;
use portcullis::VerifyError;
use serde_json::{json, Value};

fn hmac_token(secret: &[u8], header: &Value, claims: &Value) -> String {
    sign_json(Algorithm::HS256, &json!({ "kty": "oct", "k": b64(secret) }), header, claims)
}

fn key_unusable_reason(result: &Result<portcullis::VerifiedToken, VerifyError>) -> String {
    match result {
        Err(VerifyError::KeyUnusable { reason, .. }) => reason.clone(),
        other => panic!("expected key_unusable, got {other:?}"),
    }
}

fn skipped_reason(keys: &KeySet, kid: &str) -> String {
    keys.skipped()
        .iter()
        .find(|entry| entry.kid.as_deref() == Some(kid))
        .map(|entry| entry.reason.clone())
        .unwrap_or_else(|| panic!("no skipped entry with kid {kid}; skipped: {:?}", keys.skipped()))
}

// ---------------------------------------------------------------------------------------
// C001: HS256 token "signed" with the RSA public key.
// ---------------------------------------------------------------------------------------

/// Returns every byte form of `K_RSA_A`'s public key that an attacker might use as the HMAC secret.
fn c001_secrets() -> Vec<(&'static str, Vec<u8>)> {
    let forms = &fixtures()["key_forms"]["K_RSA_A"];
    let pem = forms["spki_pem"].as_str().expect("spki_pem").to_string();
    let der = Base64::decode_vec(forms["spki_der"].as_str().expect("spki_der")).expect("standard base64");
    vec![
        ("SPKI PEM as served", pem.clone().into_bytes()),
        ("newline + PEM", format!("\n{pem}").into_bytes()),
        ("two spaces + PEM", format!("  {pem}").into_bytes()),
        ("PEM without trailing newline", pem.trim_end().as_bytes().to_vec()),
        ("PKCS#1 PEM", forms["pkcs1_pem"].as_str().expect("pkcs1_pem").as_bytes().to_vec()),
        ("JWK JSON text", public_jwk("K_RSA_A").to_string().into_bytes()),
        ("OpenSSH line", forms["openssh"].as_str().expect("openssh").as_bytes().to_vec()),
        ("SPKI DER", der),
    ]
}

#[test]
fn c001_hs256_with_public_key_rejected_by_allowlist() {
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-a"});
    let claims = claims_with(&json!({"role": "admin"}));
    for (form, secret) in c001_secrets() {
        let token = hmac_token(&secret, &header, &claims);
        assert_code(&verify(&token, &jwks_a(), &p0()), "algorithm_not_allowed", form);
    }
}

/// With HS256 wrongly allowed, an RSA or EC key still never verifies an HMAC token.
#[test]
fn c001_hs256_misconfigured_allowlist_key_unusable() {
    let policy = p0_with(&json!({"algorithms": ["RS256", "HS256"]}));
    let claims = claims_with(&json!({"role": "admin"}));
    // JWKS_A binds each key to its `alg`; the same keys without `alg` still refuse HS256
    // by their type.
    let unbound = key_set(&[public_jwk("K_RSA_A"), public_jwk("K_EC_A")]);
    for (form, secret) in c001_secrets() {
        for header in [json!({"alg": "HS256", "typ": "JWT", "kid": "rsa-a"}), json!({"alg": "HS256", "typ": "JWT"})] {
            let token = hmac_token(&secret, &header, &claims);
            let case = format!("{form}, header {header}");
            assert_code(&verify(&token, &jwks_a(), &policy), "key_unusable", &case);
            let result = verify(&token, &unbound, &policy);
            assert_code(&result, "key_unusable", &case);
        }
    }
    let token = hmac_token(b"x", &json!({"alg": "HS256", "kid": "rsa-a"}), &claims);
    let reason = key_unusable_reason(&verify(&token, &key_set(&[public_jwk("K_RSA_A")]), &policy));
    assert!(reason.contains("HS256 needs an oct key"), "{reason}");
}

/// Sibling: an `oct` entry in a fetched key set is skipped, so publishing the public key as
/// an HMAC secret in a JWKS does not create one.
#[test]
fn c001_oct_key_in_fetched_set_skipped() {
    let pem = fixtures()["key_forms"]["K_RSA_A"]["spki_pem"].as_str().expect("pem");
    let oct = json!({"kty": "oct", "kid": "rsa-a", "k": b64(pem)});
    let keys = key_set(&[oct, public_jwk("K_RSA_A")]);
    assert_eq!(keys.keys().len(), 1);
    assert!(skipped_reason(&keys, "rsa-a").contains("local configuration"));
    let policy = p0_with(&json!({"algorithms": ["RS256", "HS256"]}));
    let token = hmac_token(pem.as_bytes(), &json!({"alg": "HS256", "kid": "rsa-a"}), &valid_claims());
    assert_code(&verify(&token, &keys, &policy), "key_unusable", "oct entry skipped, RSA key left");
}

/// Sibling: the same confusion between the asymmetric families.
#[test]
fn c001_cross_family_headers_key_unusable() {
    let policy = p0_with(&json!({"algorithms": ["RS256", "ES256", "PS256", "EdDSA"]}));
    let cases = [
        (Algorithm::ES256, "K_EC_A", "rsa-a"),
        (Algorithm::RS256, "K_RSA_A", "ec-a"),
        (Algorithm::PS256, "K_RSA_A", "rsa-a"),
    ];
    for (alg, signer, kid) in cases {
        let token = sign_json(alg, &private_jwk(signer), &json!({"alg": alg.name(), "kid": kid}), &valid_claims());
        assert_code(&verify(&token, &jwks_a(), &policy), "key_unusable", &format!("{alg} with kid {kid}"));
    }
}

// ---------------------------------------------------------------------------------------
// C002: `alg: none` and its spelling variants.
// ---------------------------------------------------------------------------------------

#[test]
fn c002_alg_none_variants_rejected() {
    let payload = b64(valid_claims().to_string());
    let headers = [
        json!({"alg": "none"}),
        json!({"alg": "None"}),
        json!({"alg": "NONE"}),
        json!({"alg": "nOnE"}),
        json!({"alg": ""}),
        json!({"alg": "none", "kid": "rsa-a"}),
    ];
    // Every algorithm this build supports is allowed here, so `none` fails on its own.
    let open = p0_with(&json!({"algorithms": ["HS256", "RS256", "PS256", "ES256", "ES384", "ES512", "EdDSA", "Ed25519"]}));
    for header in headers {
        let head = b64(header.to_string());
        for signature in ["", "AAAA"] {
            let token = format!("{head}.{payload}.{signature}");
            let case = format!("{header} with signature {signature:?}");
            assert_code(&verify(&token, &jwks_a(), &p0()), "algorithm_not_allowed", &case);
            assert_code(&verify(&token, &jwks_a(), &open), "algorithm_not_allowed", &case);
        }
        let two_segments = format!("{head}.{payload}");
        assert_code(&verify(&two_segments, &jwks_a(), &p0()), "token_malformed", &format!("{header}, two segments"));
    }
}

/// No key, or an empty key, is a configuration error and never means "unsigned is fine".
#[test]
fn c002_empty_key_is_configuration_error() {
    for document in [r#"{"keys":[]}"#, r#"{"keys":[{"kty":"oct","k":""}]}"#, r#"{"keys":[{"kty":"oct","kid":"hs-1","k":""}]}"#] {
        let error = KeySet::from_json(document.as_bytes(), KeySetOptions { allow_symmetric: true })
            .expect_err("no usable key");
        assert!(matches!(error, KeySetError::NoUsableKey { .. }), "{document}: {error}");
        assert_eq!(error.code(), ErrorCode::JwksInvalid);
    }
    for document in [r#"{"algorithms":["none"]}"#, r#"{"algorithms":["None"]}"#, r#"{"algorithms":[]}"#] {
        let error = Policy::from_json(document.as_bytes()).expect_err("invalid policy");
        assert_eq!(error.code(), ErrorCode::ConfigInvalid, "{document}");
    }
    // A set built in code with no keys finds no key for a signed token.
    let empty = KeySet::from_keys(Vec::new());
    assert_code(&verify(&rs256(&valid_claims()), &empty, &p0()), "key_not_found", "empty key set");
}

// ---------------------------------------------------------------------------------------
// C004: ECDSA "psychic signatures" (CVE-2022-21449).
// ---------------------------------------------------------------------------------------

fn p256_order() -> Vec<u8> {
    use p256::elliptic_curve::bigint::ArrayEncoding;
    use p256::elliptic_curve::Curve;
    p256::NistP256::ORDER.to_be_byte_array().to_vec()
}

fn p384_order() -> Vec<u8> {
    use p384::elliptic_curve::bigint::ArrayEncoding;
    use p384::elliptic_curve::Curve;
    p384::NistP384::ORDER.to_be_byte_array().to_vec()
}

fn p521_order() -> Vec<u8> {
    use p521::elliptic_curve::bigint::Encoding;
    use p521::elliptic_curve::Curve;
    // The order is held in 576 bits; JWS scalars on P-521 are 66 bytes.
    let bytes = p521::NistP521::ORDER.to_be_bytes();
    bytes[bytes.len() - 66..].to_vec()
}

#[test]
fn c004_psychic_signatures_es256() {
    let token = es256(&claims_with(&json!({"role": "admin"})));
    let order = p256_order();
    let case_s2 = "_____wAAAAD__________7zm-q2nF56E87nKwvxjJVH_____AAAAAP__________vOb6racXnoTzucrC_GMlUQ";
    assert_eq!(b64([order.clone(), order.clone()].concat()), case_s2, "the case's S2 is r = s = n");

    let mut r_zero = vec![0u8; 32];
    r_zero.extend_from_slice(&[0x5a; 32]);
    let mut s_zero = vec![0x5a; 32];
    s_zero.extend_from_slice(&[0u8; 32]);
    let mut r_above = order.clone();
    r_above[31] = r_above[31].wrapping_add(1);
    r_above.extend_from_slice(&[0x5a; 32]);
    let cases = [
        ("S1 r = s = 0", b64([0u8; 64]), "signature_invalid"),
        ("S2 r = s = n", case_s2.to_string(), "signature_invalid"),
        ("S3 r = 0, s random", b64(&r_zero), "signature_invalid"),
        ("s = 0, r random", b64(&s_zero), "signature_invalid"),
        ("r = n + 1", b64(&r_above), "signature_invalid"),
        ("r = s = 0xff..ff", b64([0xffu8; 64]), "signature_invalid"),
        ("S4 DER-encoded zeros", "MAYCAQACAQA".to_string(), "signature_length_invalid"),
        ("S5 empty signature", String::new(), "signature_length_invalid"),
    ];
    for (case, signature, expected) in cases {
        assert_code(&verify(&with_signature(&token, &signature), &jwks_a(), &p0()), expected, case);
    }
}

/// Sibling: the same scalars on P-384 and P-521, whose ECDSA is this crate's own code.
#[test]
fn c004_psychic_signatures_es384_es512() {
    for (alg, key_name, order, size) in [(Algorithm::ES384, "K_P384", p384_order(), 48), (Algorithm::ES512, "K_P521", p521_order(), 66)] {
        assert_eq!(order.len(), size);
        let keys = key_set(&[public_jwk(key_name)]);
        let policy = p0_with(&json!({"algorithms": [alg.name()]}));
        let token = token(key_name, alg, &valid_claims());
        assert_accepted(&verify(&token, &keys, &policy), &format!("{alg} control"));
        let mut r_zero = vec![0u8; size];
        r_zero.extend(std::iter::repeat_n(0x01, size));
        for (case, signature) in [
            ("r = s = 0", vec![0u8; 2 * size]),
            ("r = s = n", [order.clone(), order.clone()].concat()),
            ("r = 0", r_zero),
        ] {
            assert_code(&verify(&with_signature(&token, &b64(&signature)), &keys, &policy), "signature_invalid", &format!("{alg} {case}"));
        }
        assert_code(&verify(&with_signature(&token, "MAYCAQACAQA"), &keys, &policy), "signature_length_invalid", &format!("{alg} DER"));
    }
}

// ---------------------------------------------------------------------------------------
// C006: RSA JWK with e=1, unusual exponents, short or oversized modulus.
// ---------------------------------------------------------------------------------------

/// Returns the EMSA-PKCS1-v1_5 encoding of SHA-256(`message`) for a 2048-bit modulus.
/// With e = 1 it is its own RSA signature.
fn emsa_pkcs1_sha256(message: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let digest_info: [u8; 19] = [0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20];
    let mut encoded = vec![0x00, 0x01];
    encoded.extend(std::iter::repeat_n(0xff, 256 - 3 - digest_info.len() - 32));
    encoded.push(0x00);
    encoded.extend_from_slice(&digest_info);
    encoded.extend_from_slice(&sha2::Sha256::digest(message));
    encoded
}

#[test]
fn c006_rsa_exponent_one_never_accepted() {
    let n = public_jwk("K_RSA_A")["n"].clone();
    let entry = json!({"kty": "RSA", "kid": "rsa-e1", "n": n, "e": "AQ"});
    let keys = key_set(&[entry, public_jwk("K_RSA_B")]);
    assert!(skipped_reason(&keys, "rsa-e1").contains("exponent 1"), "{:?}", keys.skipped());

    let header = b64(json!({"alg": "RS256", "kid": "rsa-e1"}).to_string());
    let payload = b64(claims_with(&json!({"role": "admin"})).to_string());
    let signing_input = format!("{header}.{payload}");
    let forged = format!("{signing_input}.{}", b64(emsa_pkcs1_sha256(signing_input.as_bytes())));
    let policy = p0_with(&json!({"algorithms": ["RS256"]}));
    // The case allows key_not_found or key_unusable; portcullis reports the skipped entry's
    // reason as key_unusable so that operators see why their key is ignored.
    let result = verify(&forged, &keys, &policy);
    assert_code(&result, "key_unusable", "J1 e = 1");
    assert!(key_unusable_reason(&result).contains("exponent"));
}

#[test]
fn c006_rsa_small_and_unusual_exponents_accepted() {
    // J2 e = 3 and J3 e = 35 (the exponent jwt_verify_lib rejected behind Envoy): both
    // verify, because the rsa crate checks PKCS#1 v1.5 padding strictly.
    let policy = p0_with(&json!({"algorithms": ["RS256"]}));
    for (key_name, e) in [("K_RSA_E3", "Aw"), ("K_RSA_E35", "Iw")] {
        let public = public_jwk(key_name);
        assert_eq!(public["e"], e);
        let keys = key_set(&[public]);
        assert_accepted(&verify(&token(key_name, Algorithm::RS256, &valid_claims()), &keys, &policy), key_name);
    }
}

#[test]
fn c006_rsa_modulus_checks() {
    let policy = p0_with(&json!({"algorithms": ["RS256"]}));
    let modulus = unb64(public_jwk("K_RSA_A")["n"].as_str().expect("n"));

    // J5: a leading zero byte (257 bytes) is the same unsigned number.
    let padded = [vec![0u8], modulus.clone()].concat();
    let keys = key_set(&[with(&public_jwk("K_RSA_A"), &json!({"n": b64(&padded)}))]);
    assert_accepted(&verify(&rs256(&valid_claims()), &keys, &policy), "J5 leading zero byte");

    // J4, J6, J7 and siblings: each entry is skipped with a reason, and a token naming it
    // gets key_unusable with that reason.
    let mut even = modulus.clone();
    *even.last_mut().expect("non-empty") &= 0xfe;
    let short_2047 = {
        let mut short = modulus.clone();
        short[0] = 0x7f;
        short
    };
    let huge = [vec![0xc5u8], vec![0x5a; 2046], vec![0x01]].concat();
    let entries = [
        ("J4 1024-bit modulus", with(&public_jwk("K_RSA_1024"), &json!({"kid": "bad"})), "fewer than the minimum"),
        ("2047-bit modulus", json!({"kty": "RSA", "kid": "bad", "n": b64(&short_2047), "e": "AQAB"}), "fewer than the minimum"),
        ("J6 even modulus", json!({"kty": "RSA", "kid": "bad", "n": b64(&even), "e": "AQAB"}), "even"),
        ("J6 n empty", json!({"kty": "RSA", "kid": "bad", "n": "", "e": "AQAB"}), "empty or even"),
        ("J6 n = 0", json!({"kty": "RSA", "kid": "bad", "n": "AA", "e": "AQAB"}), "empty or even"),
        ("J7 16384-bit modulus", json!({"kty": "RSA", "kid": "bad", "n": b64(&huge), "e": "AQAB"}), "more than the maximum"),
        ("even exponent", with(&public_jwk("K_RSA_A"), &json!({"kid": "bad", "e": "AQAA"})), "must be odd"),
        ("exponent of 33 bits", with(&public_jwk("K_RSA_A"), &json!({"kid": "bad", "e": "AQAAAAE"})), "longer than 32 bits"),
        ("empty exponent", with(&public_jwk("K_RSA_A"), &json!({"kid": "bad", "e": ""})), "empty"),
        ("padded base64 modulus", with(&public_jwk("K_RSA_A"), &json!({"kid": "bad", "n": format!("{}==", public_jwk("K_RSA_A")["n"].as_str().expect("n"))})), "base64url"),
        ("numeric modulus", json!({"kty": "RSA", "kid": "bad", "n": 12345, "e": "AQAB"}), "must be a string"),
        ("private key published", with(&private_jwk("K_RSA_A"), &json!({"kid": "bad"})), "private member"),
    ];
    for (case, entry, reason) in entries {
        let keys = key_set(&[entry, public_jwk("K_RSA_B")]);
        let skipped = skipped_reason(&keys, "bad");
        assert!(skipped.contains(reason), "{case}: {skipped}");
        let token = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &json!({"alg": "RS256", "kid": "bad"}), &valid_claims());
        let result = verify(&token, &keys, &policy);
        assert_code(&result, "key_unusable", case);
        assert!(key_unusable_reason(&result).contains(reason), "{case}");
    }

    // An exponent with leading zero bytes is the same number.
    let keys = key_set(&[with(&public_jwk("K_RSA_A"), &json!({"e": "AAEAAQ"}))]);
    assert_accepted(&verify(&rs256(&valid_claims()), &keys, &policy), "e with leading zero bytes");
}

// ---------------------------------------------------------------------------------------
// C007: EC JWK point not on the curve, identity, wrong coordinate length.
// ---------------------------------------------------------------------------------------

#[test]
fn c007_ec_points_checked_on_import() {
    let ec = public_jwk("K_EC_A");
    let x = unb64(ec["x"].as_str().expect("x"));
    let entries = [
        ("E1 (0, 0)", json!({"kty": "EC", "crv": "P-256", "kid": "bad", "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "y": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}), "not on P-256"),
        ("E2 generator x, y + 1", json!({"kty": "EC", "crv": "P-256", "kid": "bad", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY", "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfY"}), "not on P-256"),
        ("E4 31-byte x", with(&ec, &json!({"kid": "bad", "x": b64(&x[1..])})), "must be 32 bytes"),
        ("E4 33-byte x", with(&ec, &json!({"kid": "bad", "x": b64([vec![0u8], x.clone()].concat())})), "must be 32 bytes"),
        ("E5 P-384 with 32-byte coordinates", with(&ec, &json!({"kid": "bad", "crv": "P-384"})), "must be 48 bytes"),
        ("P-256 with P-384 coordinates", with(&public_jwk("K_P384"), &json!({"kid": "bad", "crv": "P-256"})), "must be 32 bytes"),
        ("missing crv", with(&ec, &json!({"kid": "bad", "crv": null})), "`crv` is missing"),
        ("unknown crv", with(&ec, &json!({"kid": "bad", "crv": "P-192"})), "not supported"),
        ("x coordinate = p", with(&ec, &json!({"kid": "bad", "x": "_____wAAAAEAAAAAAAAAAAAAAAD_______________8"})), "not on P-256"),
        ("private key published", with(&private_jwk("K_EC_A"), &json!({"kid": "bad"})), "private member"),
    ];
    let policy = p0();
    for (case, entry, reason) in entries {
        let keys = key_set(&[entry, public_jwk("K_RSA_A")]);
        let skipped = skipped_reason(&keys, "bad");
        assert!(skipped.contains(reason), "{case}: {skipped}");
        let token = sign_json(Algorithm::ES256, &private_jwk("K_EC_A"), &json!({"alg": "ES256", "kid": "bad"}), &valid_claims());
        assert_code(&verify(&token, &keys, &policy), "key_unusable", case);
    }

    // E3: the generator itself is a valid point (its private key is 1), so it imports, and
    // a token signed by K_EC_A does not verify with it.
    let generator = json!({"kty": "EC", "crv": "P-256", "kid": "gen", "x": "axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY", "y": "T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU"});
    let keys = key_set(&[generator]);
    assert_eq!(keys.skipped(), &[]);
    let token = sign_json(Algorithm::ES256, &private_jwk("K_EC_A"), &json!({"alg": "ES256", "kid": "gen"}), &valid_claims());
    assert_code(&verify(&token, &keys, &p0()), "signature_invalid", "E3 generator");
    // Signed with private key 1, the generator verifies.
    let one = json!({"kty": "EC", "crv": "P-256", "d": b64([vec![0u8; 31], vec![1u8]].concat())});
    let token = sign_json(Algorithm::ES256, &one, &json!({"alg": "ES256", "kid": "gen"}), &valid_claims());
    assert_accepted(&verify(&token, &keys, &p0()), "E3 signed with d = 1");
}

/// E5: a secp256k1 key never verifies ES256. Without the `es256k` feature the curve is not
/// supported and the entry is skipped. With it, the key imports and is unusable for ES256.
#[test]
fn c007_secp256k1_key_with_es256_header() {
    let entry = with(&public_jwk("K_SECP256K1"), &json!({"kid": "k1"}));
    let keys = key_set(&[entry, public_jwk("K_RSA_A")]);
    if cfg!(feature = "es256k") {
        assert_eq!(keys.skipped(), &[]);
    } else {
        assert!(skipped_reason(&keys, "k1").contains("not supported by this build"));
    }
    let token = sign_json(Algorithm::ES256, &private_jwk("K_EC_A"), &json!({"alg": "ES256", "kid": "k1"}), &valid_claims());
    assert_code(&verify(&token, &keys, &p0()), "key_unusable", "E5 secp256k1 with ES256");
}

// ---------------------------------------------------------------------------------------
// C008: key material supplied by the token. The core has no network access at all, so
// "0 outbound requests" is true by construction. The filter tests count its callouts.
// ---------------------------------------------------------------------------------------

#[test]
fn c008_header_keys_never_used() {
    let attacker = private_jwk("K_ATK_RSA");
    let claims = claims_with(&json!({"role": "admin"}));
    let certificate = &fixtures()["certificates"]["K_ATK_RSA"];
    let cases = [
        ("H1 jwk header, kid rsa-a", json!({"alg": "RS256", "kid": "rsa-a", "jwk": public_jwk("K_ATK_RSA")}), "signature_invalid"),
        ("jwk header without kid", json!({"alg": "RS256", "jwk": public_jwk("K_ATK_RSA")}), "signature_invalid"),
        ("H2 jku", json!({"alg": "RS256", "kid": "att-1", "jku": "https://attacker.example/jwks.json"}), "key_not_found"),
        ("H3 x5u", json!({"alg": "RS256", "kid": "att-1", "x5u": "http://169.254.169.254/latest/meta-data/"}), "key_not_found"),
        ("H4 x5c, no kid", json!({"alg": "RS256", "x5c": certificate["x5c"]}), "signature_invalid"),
        ("x5c with x5t", json!({"alg": "RS256", "x5c": certificate["x5c"], "x5t": certificate["x5t"]}), "signature_invalid"),
        ("x5t#S256 of the attacker", json!({"alg": "RS256", "x5t#S256": certificate["x5t#S256"]}), "signature_invalid"),
    ];
    for (case, header, expected) in cases {
        let token = sign_json(Algorithm::RS256, &attacker, &header, &claims);
        assert_code(&verify(&token, &jwks_a(), &p0()), expected, case);
    }
}

/// H5: a token from an issuer we do not trust is refused on `iss`, and no key discovery
/// depends on `iss` (the key set is an argument).
#[test]
fn c008_foreign_issuer_rejected() {
    let token = rs256(&claims_with(&json!({"iss": "https://attacker.example/"})));
    assert_code(&verify(&token, &jwks_a(), &p0()), "issuer_invalid", "H5");
    let token = token_signed_by_attacker_for_issuer();
    assert_code(&verify(&token, &jwks_a(), &p0()), "key_not_found", "H5 signed by the attacker");
}

fn token_signed_by_attacker_for_issuer() -> String {
    token("K_ATK_RSA", Algorithm::RS256, &claims_with(&json!({"iss": "https://attacker.example/"})))
}

// ---------------------------------------------------------------------------------------
// C009: `kid` path traversal, SQL injection, non-string `kid`.
// ---------------------------------------------------------------------------------------

#[test]
fn c009_kid_injection() {
    let hs_policy = p0_with(&json!({"algorithms": ["HS256"]}));
    let hs_keys = local_key_set(&[public_jwk("K_HS")]);
    let claims = valid_claims();
    let injections: [(&str, &[u8]); 2] = [("../../../../../../dev/null", b""), ("x' UNION SELECT 'secret123' -- ", b"secret123")];
    for (kid, secret) in injections {
        let token = hmac_token(secret, &json!({"alg": "HS256", "kid": kid}), &claims);
        assert_code(&verify(&token, &jwks_a(), &p0()), "algorithm_not_allowed", kid);
        assert_code(&verify(&token, &hs_keys, &hs_policy), "key_not_found", kid);
        // A kid-less secret matches any kid, and the attacker's secret still fails.
        let kidless = local_key_set(&[with(&public_jwk("K_HS"), &json!({"kid": null}))]);
        assert_code(&verify(&token, &kidless, &hs_policy), "signature_invalid", kid);
    }

    let rsa = private_jwk("K_RSA_A");
    let kid_token = |kid: &Value| sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": kid}), &claims);
    assert_code(&verify(&kid_token(&json!("rsa-a\u{0}.pem")), &jwks_a(), &p0()), "key_not_found", "NUL in kid");
    assert_code(&verify(&kid_token(&json!("RSA-A")), &jwks_a(), &p0()), "key_not_found", "kid case differs");
    assert_code(&verify(&kid_token(&json!("rsa-a ")), &jwks_a(), &p0()), "key_not_found", "kid with trailing space");
    assert_code(&verify(&kid_token(&json!("k".repeat(2000))), &jwks_a(), &p0()), "key_not_found", "kid of 2000 bytes");
    let huge = kid_token(&json!("k".repeat(64 * 1024)));
    assert_code(&verify(&huge, &jwks_a(), &p0()), "token_too_large", "kid of 64 KiB");
    assert_code(&verify(&huge, &jwks_a(), &p0_with(&json!({"max_token_bytes": 65536}))), "token_too_large", "kid of 64 KiB, 64 KiB limit");
    for kid in [json!(123), json!(null), json!(["rsa-a"]), json!({"$ne": ""}), json!(true)] {
        assert_code(&verify(&kid_token(&kid), &jwks_a(), &p0()), "header_malformed", &format!("kid {kid}"));
    }
    assert_accepted(&verify(&kid_token(&json!("rsa-a")), &jwks_a(), &p0()), "control");
}

// ---------------------------------------------------------------------------------------
// C010: unknown `crit` header extensions.
// ---------------------------------------------------------------------------------------

#[test]
fn c010_crit_always_rejected() {
    let rsa = private_jwk("K_RSA_A");
    let claims = valid_claims();
    let headers = [
        ("K1", json!({"alg": "RS256", "kid": "rsa-a", "crit": ["exp-policy"], "exp-policy": "mfa"})),
        ("K3 empty list", json!({"alg": "RS256", "kid": "rsa-a", "crit": []})),
        ("K4 registered name", json!({"alg": "RS256", "kid": "rsa-a", "crit": ["alg"]})),
        ("K5 absent member", json!({"alg": "RS256", "kid": "rsa-a", "crit": ["foo"]})),
        ("K6 not a list", json!({"alg": "RS256", "kid": "rsa-a", "crit": "foo"})),
        ("K7 duplicate names", json!({"alg": "RS256", "kid": "rsa-a", "crit": ["foo", "foo"]})),
        ("non-string entries", json!({"alg": "RS256", "kid": "rsa-a", "crit": [1, null]})),
        ("crit null", json!({"alg": "RS256", "kid": "rsa-a", "crit": null})),
        ("b64 false without crit", json!({"alg": "RS256", "kid": "rsa-a", "b64": false})),
    ];
    for (case, header) in headers {
        let token = sign_json(Algorithm::RS256, &rsa, &header, &claims);
        assert_code(&verify(&token, &jwks_a(), &p0()), "unsupported_critical", case);
    }

    // K2: RFC 7797 unencoded payload, signed over the raw payload bytes.
    let header = b64(json!({"alg": "RS256", "kid": "rsa-a", "crit": ["b64"], "b64": false}).to_string());
    let payload = "eyJzdWIiOiJ1c2VyLTEyMyJ9";
    let signing_input = format!("{header}.{payload}");
    let signature = sign_bytes(Algorithm::RS256, &rsa, signing_input.as_bytes());
    let token = format!("{signing_input}.{}", b64(signature));
    assert_code(&verify(&token, &jwks_a(), &p0()), "unsupported_critical", "K2 b64 false");

    // `b64: true` is the default encoding and changes nothing.
    let token = sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": "rsa-a", "b64": true}), &claims);
    assert_accepted(&verify(&token, &jwks_a(), &p0()), "b64 true");
    let token = sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": "rsa-a"}), &claims);
    assert_accepted(&verify(&token, &jwks_a(), &p0()), "control without crit");
}

// ---------------------------------------------------------------------------------------
// C012: non-canonical base64url, reproduced from RFC 7515 Appendix A.1.
// ---------------------------------------------------------------------------------------

const RFC7515_A1: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

#[test]
fn c012_non_canonical_base64_rejected() {
    let keys = local_key_set(&[json!({"kty": "oct", "k": "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"})]);
    let policy = policy(&json!({"algorithms": ["HS256"]}));
    let at = |token: &str| portcullis::verify::verify_token(token, &keys, &policy, 1_300_819_000);
    assert_accepted(&at(RFC7515_A1), "canonical token");

    let parts: Vec<&str> = RFC7515_A1.split('.').collect();
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let mut variants = vec![
        (String::from("B1 trailing bits"), format!("{header}.{payload}.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl")),
        (String::from("B2 padding"), format!("{header}.{payload}.{signature}=")),
        (String::from("B3 standard alphabet"), format!("{header}.{payload}.dBjftJeZ4CVP+mB92K27uhbUJU1p1r/wW1gFWFOEjXk")),
    ];
    for (name, insert) in [("newline", "\n"), ("space", " "), ("%3D", "%3D"), ("tab", "\t"), ("CR", "\r")] {
        for (segment, text) in [("header", header), ("payload", payload), ("signature", signature)] {
            let damaged = format!("{}{insert}{}", &text[..8], &text[8..]);
            let token = match segment {
                "header" => format!("{damaged}.{payload}.{signature}"),
                "payload" => format!("{header}.{damaged}.{signature}"),
                _ => format!("{header}.{payload}.{damaged}"),
            };
            variants.push((format!("B4 {name} in the {segment}"), token));
        }
    }
    // B5: a segment whose length is 1 (mod 4) cannot be base64 at all.
    for (segment, text) in [("header", header), ("payload", payload), ("signature", signature)] {
        let mut extended = text.to_string();
        while extended.len() % 4 != 1 {
            extended.push('A');
        }
        let token = match segment {
            "header" => format!("{extended}.{payload}.{signature}"),
            "payload" => format!("{header}.{extended}.{signature}"),
            _ => format!("{header}.{payload}.{extended}"),
        };
        variants.push((format!("B5 {segment} length 1 mod 4"), token));
    }
    for (case, token) in variants {
        assert_code(&at(&token), "invalid_base64", &format!("{case}: {token:?}"));
    }
}

/// Related to C012: ECDSA signatures are malleable. `(r, n - s)` verifies whenever `(r, s)`
/// does, so even strict base64url leaves two valid ES256 strings per token. Replay caches
/// and deny lists must key on `jti` or on the decoded header and payload, never on the raw
/// token string. This test pins the behaviour of the `p256` backend.
#[test]
fn c012_es256_signature_malleability_pinned() {
    use p256::ecdsa::Signature;
    let token = es256(&valid_claims());
    let signature = Signature::from_slice(&unb64(token.rsplit_once('.').expect("signature").1)).expect("signature");
    let (r, s) = signature.split_scalars();
    let twin = Signature::from_scalars(r, -s).expect("valid scalars");
    let twin_token = with_signature(&token, &b64(twin.to_bytes()));
    assert_ne!(twin_token, token);
    assert_accepted(&verify(&token, &jwks_a(), &p0()), "original");
    assert_accepted(&verify(&twin_token, &jwks_a(), &p0()), "(r, n - s) twin");
}

// ---------------------------------------------------------------------------------------
// C014: `exp`/`nbf`/`iat` as float, string, bool, huge.
// ---------------------------------------------------------------------------------------

/// Signs the valid claims with `member` set to the raw JSON text `value`, so that number
/// forms such as `1.7000036e9` reach the verifier exactly as written.
fn raw_claim_token(member: &str, value: &str) -> String {
    let mut claims = valid_claims();
    claims.as_object_mut().expect("object").remove(member);
    let text = claims.to_string();
    let raw = format!("{},\"{member}\":{value}}}", &text[..text.len() - 1]);
    sign_raw(Algorithm::RS256, &private_jwk("K_RSA_A"), br#"{"alg":"RS256","kid":"rsa-a"}"#, raw.as_bytes())
}

#[test]
fn c014_numeric_date_forms() {
    let cases = [
        ("T1 fractional exp", "exp", "1700003600.75", None),
        ("T2 exponent notation", "exp", "1.7000036e9", None),
        ("T2 exponent notation, capital E", "exp", "17000036E2", None),
        ("integer written with .0", "exp", "1700003600.0", None),
        ("T3 fractional, expired", "exp", "1699990000.5", Some("token_expired")),
        ("T4 string", "exp", "\"1700003600\"", Some("claims_malformed")),
        ("T5 true", "exp", "true", Some("claims_malformed")),
        ("T5 []", "exp", "[]", Some("claims_malformed")),
        ("T5 {}", "exp", "{}", Some("claims_malformed")),
        ("T5 null", "exp", "null", Some("claims_malformed")),
        ("T6 1e20", "exp", "1e20", Some("claims_malformed")),
        ("T6 -1e20", "exp", "-1e20", Some("claims_malformed")),
        ("negative", "exp", "-1", Some("claims_malformed")),
        ("u64 max", "exp", "18446744073709551615", Some("claims_malformed")),
        ("i64 max", "exp", "9223372036854775807", Some("claims_malformed")),
        // T8: 2^53 + 1 is outside the accepted range (0..=253402300799), so no reader ever
        // sees a rounded form of it as a valid date.
        ("T8 2^53 + 1", "exp", "9007199254740993", Some("claims_malformed")),
        ("last accepted second", "exp", "253402300799", None),
        ("one past the last second", "exp", "253402300800", Some("claims_malformed")),
        ("nbf as string", "nbf", "\"1699999000\"", Some("claims_malformed")),
        ("iat as bool", "iat", "false", Some("claims_malformed")),
        ("nbf fractional", "nbf", "1699999999.5", None),
        ("iat 1e300", "iat", "1e300", Some("claims_malformed")),
    ];
    for (case, member, value, expected) in cases {
        let result = verify(&raw_claim_token(member, value), &jwks_a(), &p0());
        match expected {
            None => assert_accepted(&result, case),
            Some(code) => assert_code(&result, code, case),
        }
    }
}

/// T7: fractional `exp` rounds down, so `exp: 1700000000.9` with leeway 0 at now
/// 1700000000 is already expired (`now >= exp`).
#[test]
fn c014_fractional_exp_boundary() {
    let policy = p0_with(&json!({"clock_skew_seconds": 0}));
    assert_code(&verify(&raw_claim_token("exp", "1700000000.9"), &jwks_a(), &policy), "token_expired", "T7");
    assert_accepted(&verify(&raw_claim_token("exp", "1700000001.1"), &jwks_a(), &policy), "one second later");
    // `nbf` rounds up: 1700000000.1 counts as 1700000001, not yet valid at leeway 0.
    assert_code(&verify(&raw_claim_token("nbf", "1700000000.1"), &jwks_a(), &policy), "token_not_yet_valid", "nbf rounds up");
    assert_code(&verify(&raw_claim_token("iat", "1700000000.1"), &jwks_a(), &policy), "token_not_yet_valid", "iat rounds up");
}

// ---------------------------------------------------------------------------------------
// C015: a wrong-typed claim is never treated as absent (CVE-2026-25537).
// ---------------------------------------------------------------------------------------

#[test]
fn c015_wrong_type_is_not_absent() {
    let cases = [
        ("nbf string", claims_with(&json!({"nbf": "1800000000"}))),
        ("aud number", claims_with(&json!({"aud": 123}))),
        ("iss list", claims_with(&json!({"iss": [ISSUER]}))),
        ("iat object", claims_with(&json!({"iat": {}}))),
        ("sub number", claims_with(&json!({"sub": 123}))),
        ("jti number", claims_with(&json!({"jti": 1}))),
        ("client_id list", claims_with(&json!({"client_id": ["a"]}))),
        ("scope list", claims_with(&json!({"scope": ["read"]}))),
        ("scp number", claims_with(&json!({"scp": 1}))),
    ];
    for (case, claims) in cases {
        assert_code(&verify(&rs256(&claims), &jwks_a(), &p0()), "claims_malformed", case);
    }
    // `null` is a value too, not an absent claim.
    for member in ["exp", "nbf", "iat", "iss", "aud", "sub", "azp", "client_id", "scope"] {
        assert_code(&verify(&raw_claim_token(member, "null"), &jwks_a(), &p0()), "claims_malformed", &format!("{member}: null"));
    }
    // `exp` checked but not required: a string `exp` still fails instead of being skipped.
    let policy = p0_with(&json!({"require_expiration": false}));
    assert_code(&verify(&rs256(&claims_with(&json!({"exp": "1600000000"}))), &jwks_a(), &policy), "claims_malformed", "exp string, exp optional");
    // A policy that checks nothing about `aud` still refuses a malformed `aud`.
    let policy = p0_with(&json!({"audiences": null}));
    assert_code(&verify(&rs256(&claims_with(&json!({"aud": 123}))), &jwks_a(), &policy), "claims_malformed", "aud unchecked but malformed");
}

// ---------------------------------------------------------------------------------------
// C017: missing `exp` vs `exp: 0`; maximum lifetime.
// ---------------------------------------------------------------------------------------

#[test]
fn c017_missing_exp_and_lifetime() {
    let no_exp = rs256(&claims_with(&json!({"exp": null})));
    let result = verify(&no_exp, &jwks_a(), &p0());
    assert_code(&result, "claim_missing", "M1");
    assert!(matches!(result, Err(VerifyError::MissingClaim { ref claim }) if claim == "exp"));

    let optional = p0_with(&json!({"require_expiration": false}));
    assert_accepted(&verify(&no_exp, &jwks_a(), &optional), "M2 opt-in");

    let zero = rs256(&claims_with(&json!({"exp": 0})));
    assert_code(&verify(&zero, &jwks_a(), &p0()), "token_expired", "M3 under P0");
    assert_code(&verify(&zero, &jwks_a(), &optional), "token_expired", "M3 exp optional");

    // M4: the case names the outcome PolicyReject(lifetime); portcullis has the code
    // `lifetime_too_long` for it.
    let capped = p0_with(&json!({"max_lifetime": 3600}));
    let ten_years = rs256(&claims_with(&json!({"exp": NOW + 315_360_000})));
    assert_code(&verify(&ten_years, &jwks_a(), &capped), "lifetime_too_long", "M4");
    let ten_years_no_iat = rs256(&claims_with(&json!({"exp": NOW + 315_360_000, "iat": null})));
    assert_code(&verify(&ten_years_no_iat, &jwks_a(), &capped), "lifetime_too_long", "M4 without iat");
    // The leeway applies to the lifetime too: 3600 + 60 passes, one second more fails.
    assert_accepted(&verify(&rs256(&claims_with(&json!({"exp": NOW + 3660}))), &jwks_a(), &capped), "lifetime 3660");
    assert_code(&verify(&rs256(&claims_with(&json!({"exp": NOW + 3661}))), &jwks_a(), &capped), "lifetime_too_long", "lifetime 3661");
    // A lifetime cap makes `exp` required even when require_expiration is false.
    let capped_optional = p0_with(&json!({"max_lifetime": 3600, "require_expiration": false}));
    assert_code(&verify(&no_exp, &jwks_a(), &capped_optional), "claim_missing", "max_lifetime without exp");

    // M5: no `iat`, valid `exp`.
    assert_accepted(&verify(&rs256(&claims_with(&json!({"iat": null}))), &jwks_a(), &p0()), "M5");
}

// ---------------------------------------------------------------------------------------
// C018: clock-skew boundaries and `iat` in the future.
// ---------------------------------------------------------------------------------------

#[test]
fn c018_clock_skew_boundaries() {
    let at = |claims: Value, policy: &Policy| verify(&rs256(&claims), &jwks_a(), policy);
    let p0 = p0();
    let strict = p0_with(&json!({"clock_skew_seconds": 0}));

    // The case proposes Accept for exp = now - leeway. portcullis treats a token as expired
    // at `now >= exp + leeway`: the leeway widens RFC 7519's "now before exp" by exactly
    // its length, and the boundary second is outside, as it is with zero leeway.
    assert_code(&at(claims_with(&json!({"exp": 1_699_999_940})), &p0), "token_expired", "exp = now - 60");
    assert_accepted(&at(claims_with(&json!({"exp": 1_699_999_941, "iat": 1_699_999_000})), &p0), "exp = now - 59");
    assert_code(&at(claims_with(&json!({"exp": 1_699_999_939})), &p0), "token_expired", "exp = now - 61");

    assert_code(&at(claims_with(&json!({"exp": 1_700_000_000})), &strict), "token_expired", "exp = now, leeway 0");
    assert_accepted(&at(claims_with(&json!({"exp": 1_700_000_001})), &strict), "exp = now + 1, leeway 0");

    assert_accepted(&at(claims_with(&json!({"nbf": 1_700_000_060})), &p0), "nbf = now + 60");
    assert_code(&at(claims_with(&json!({"nbf": 1_700_000_061})), &p0), "token_not_yet_valid", "nbf = now + 61");
    assert_accepted(&at(claims_with(&json!({"nbf": 1_700_000_000})), &strict), "nbf = now, leeway 0");
    assert_code(&at(claims_with(&json!({"nbf": 1_700_000_001})), &strict), "token_not_yet_valid", "nbf = now + 1, leeway 0");

    assert_accepted(&at(claims_with(&json!({"iat": 1_700_000_005})), &p0), "iat = now + 5");
    assert_accepted(&at(claims_with(&json!({"iat": 1_700_000_060})), &p0), "iat = now + 60");
    assert_code(&at(claims_with(&json!({"iat": 1_700_000_061})), &p0), "token_not_yet_valid", "iat = now + 61");
    assert_code(&at(claims_with(&json!({"iat": 1_700_003_600})), &p0), "token_not_yet_valid", "iat = exp");

    // nbf at or after exp: never valid, at any time.
    for now in [1_699_000_000u64, NOW, 1_700_003_650, 1_800_000_000] {
        let token = rs256(&claims_with(&json!({"nbf": 1_700_003_600, "iat": null})));
        let result = portcullis::verify::verify_token(&token, &jwks_a(), &p0, now);
        assert!(result.is_err(), "nbf = exp accepted at {now}");
        let token = rs256(&claims_with(&json!({"nbf": 1_700_003_700, "iat": null})));
        let result = portcullis::verify::verify_token(&token, &jwks_a(), &p0, now);
        assert!(result.is_err(), "nbf > exp accepted at {now}");
    }
    assert_code(&at(claims_with(&json!({"nbf": 1_700_003_700})), &p0), "token_not_yet_valid", "nbf > exp at now");

    // Leeway 0 does not skip the expiry check.
    assert_code(&at(claims_with(&json!({"exp": 1_600_000_000})), &strict), "token_expired", "expired, leeway 0");
}

/// Sibling: extreme clocks and dates never overflow.
#[test]
fn c018_extreme_times() {
    let token = rs256(&claims_with(&json!({"exp": 253_402_300_799u64, "nbf": 0, "iat": 0})));
    for now in [0u64, 1, NOW, 253_402_300_798, i64::MAX as u64, u64::MAX] {
        let _ = portcullis::verify::verify_token(&token, &jwks_a(), &p0(), now);
    }
    let result = portcullis::verify::verify_token(&token, &jwks_a(), &p0(), u64::MAX);
    assert_code(&result, "token_expired", "now = u64::MAX");
    let result = portcullis::verify::verify_token(&token, &jwks_a(), &p0(), 0);
    assert_accepted(&result, "now = 0 with nbf = iat = 0");
}

// ---------------------------------------------------------------------------------------
// C019: `aud` string vs array and provider shapes.
// ---------------------------------------------------------------------------------------

#[test]
fn c019_audience_shapes() {
    let cases = [
        ("A1 string", json!(AUDIENCE), None),
        ("A2 list with userinfo", json!([AUDIENCE, "https://tenant.example.com/userinfo"]), None),
        ("A2 ours second", json!(["https://tenant.example.com/userinfo", AUDIENCE]), None),
        ("A3 neither", json!(["https://other.example.com", "https://tenant.example.com/userinfo"]), Some("audience_invalid")),
        ("A4 empty list", json!([]), Some("audience_invalid")),
        ("A6 space separated", json!("api://example-api api://other"), Some("audience_invalid")),
        ("A7 non-string entry", json!([AUDIENCE, 42]), Some("claims_malformed")),
        ("A8 upper case", json!("API://EXAMPLE-API"), Some("audience_invalid")),
        ("A8 trailing slash", json!("api://example-api/"), Some("audience_invalid")),
        ("A9 Okta org", json!("https://tenant.okta.example.com"), Some("audience_invalid")),
        ("empty string", json!(""), Some("audience_invalid")),
        ("object", json!({"aud": AUDIENCE}), Some("claims_malformed")),
        ("null", json!(null), Some("claims_malformed")),
    ];
    for (case, aud, expected) in cases {
        let mut claims = valid_claims();
        claims["aud"] = aud;
        let result = verify(&rs256(&claims), &jwks_a(), &p0());
        match expected {
            None => assert_accepted(&result, case),
            Some(code) => assert_code(&result, code, case),
        }
    }
    let result = verify(&rs256(&claims_with(&json!({"aud": null}))), &jwks_a(), &p0());
    assert!(matches!(result, Err(VerifyError::MissingClaim { ref claim }) if claim == "aud"), "A5 {result:?}");
}

// ---------------------------------------------------------------------------------------
// C020: issuer must match exactly.
// ---------------------------------------------------------------------------------------

#[test]
fn c020_issuer_exact_match() {
    let policy = p0_with(&json!({"issuer": "https://idp.example.com/tenant-a"}));
    let cases = [
        ("I1 exact", json!("https://idp.example.com/tenant-a"), None),
        ("I2 substring", json!("https://idp.example.com/tenant"), Some("issuer_invalid")),
        ("I3 prefix extension", json!("https://idp.example.com/tenant-ab"), Some("issuer_invalid")),
        ("I4 trailing slash", json!("https://idp.example.com/tenant-a/"), Some("issuer_invalid")),
        ("I5 no scheme", json!("idp.example.com/tenant-a"), Some("issuer_invalid")),
        ("I5 upper case", json!("HTTPS://IDP.EXAMPLE.COM/tenant-a"), Some("issuer_invalid")),
        ("http scheme", json!("http://idp.example.com/tenant-a"), Some("issuer_invalid")),
        ("trailing NUL", json!("https://idp.example.com/tenant-a\u{0}"), Some("issuer_invalid")),
        ("I6 list", json!(["https://idp.example.com/tenant-a"]), Some("claims_malformed")),
    ];
    for (case, iss, expected) in cases {
        let mut claims = valid_claims();
        claims["iss"] = iss;
        let result = verify(&rs256(&claims), &jwks_a(), &policy);
        match expected {
            None => assert_accepted(&result, case),
            Some(code) => assert_code(&result, code, case),
        }
    }
    assert_code(&verify(&rs256(&claims_with(&json!({"iss": null}))), &jwks_a(), &policy), "claim_missing", "no iss");
}

#[test]
fn c020_google_issuer_forms() {
    let both = p0_with(&json!({"issuer": ["https://accounts.google.com", "accounts.google.com"]}));
    let https_only = p0_with(&json!({"issuer": "https://accounts.google.com"}));
    let https = rs256(&claims_with(&json!({"iss": "https://accounts.google.com"})));
    let bare = rs256(&claims_with(&json!({"iss": "accounts.google.com"})));
    assert_accepted(&verify(&https, &jwks_a(), &both), "I7 https form");
    assert_accepted(&verify(&bare, &jwks_a(), &both), "I7 bare form");
    assert_accepted(&verify(&https, &jwks_a(), &https_only), "I7 https only");
    assert_code(&verify(&bare, &jwks_a(), &https_only), "issuer_invalid", "I7 bare form not configured");
}

#[test]
fn c020_multi_tenant_template() {
    let policy = p0_with(&json!({
        "issuer": "https://login.microsoftonline.com/{tenant}/v2.0",
        "tenants": ["T1"],
        "tenant_claim": "tid"
    }));
    let at = |iss: &str, tid: Value| verify(&rs256(&claims_with(&json!({"iss": iss, "tid": tid}))), &jwks_a(), &policy);
    assert_accepted(&at("https://login.microsoftonline.com/T1/v2.0", json!("T1")), "tenant T1");
    assert_code(&at("https://login.microsoftonline.com/T2/v2.0", json!("T1")), "issuer_invalid", "I8 tid T1, iss T2");
    assert_code(&at("https://login.microsoftonline.com/T2/v2.0", json!("T2")), "issuer_invalid", "I8 tenant not allowed");
    assert_code(&at("https://login.microsoftonline.com/T1/v2.0", json!(null)), "issuer_invalid", "no tid");
    assert_code(&at("https://login.microsoftonline.com/T1/v2.0", json!(["T1"])), "claims_malformed", "tid list");
    assert_code(&at("https://login.microsoftonline.com/T1/x/v2.0", json!("T1")), "issuer_invalid", "two segments");
    assert_code(&at("https://login.microsoftonline.com//v2.0", json!("")), "issuer_invalid", "empty tenant");
    assert_code(&at("https://login.microsoftonline.com/T1/v2.0/", json!("T1")), "issuer_invalid", "trailing slash");
}

// ---------------------------------------------------------------------------------------
// C021: Azure AD / Entra v1 and v2 shapes.
// ---------------------------------------------------------------------------------------

const TENANT: &str = "00000000-0000-0000-0000-00000000000a";
const API_APP: &str = "11111111-1111-1111-1111-111111111111";
const CLIENT_APP: &str = "22222222-2222-2222-2222-222222222222";

fn entra_token(claims: &Value) -> String {
    let certificate = &fixtures()["certificates"]["K_RSA_A"];
    let thumbprint = certificate["x5t"].clone();
    let header = json!({"typ": "JWT", "alg": "RS256", "x5t": thumbprint, "kid": thumbprint});
    sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &header, claims)
}

fn entra_keys() -> KeySet {
    let certificate = &fixtures()["certificates"]["K_RSA_A"];
    let thumbprint = certificate["x5t"].clone();
    // Entra's JWKS entries carry the certificate and its thumbprint as `kid` and `x5t`.
    let entry = with(&public_jwk("K_RSA_A"), &json!({"kid": thumbprint, "x5t": thumbprint, "use": "sig", "x5c": certificate["x5c"]}));
    key_set(&[entry])
}

fn entra_v1(tenant: &str) -> Value {
    json!({"ver": "1.0", "iss": format!("https://sts.windows.net/{tenant}/"), "aud": format!("api://{API_APP}"), "appid": CLIENT_APP, "tid": tenant, "sub": "user-123", "iat": 1_700_000_000, "exp": 1_700_003_600})
}

fn entra_v2(tenant: &str) -> Value {
    json!({"ver": "2.0", "iss": format!("https://login.microsoftonline.com/{tenant}/v2.0"), "aud": API_APP, "azp": CLIENT_APP, "tid": tenant, "sub": "user-123", "iat": 1_700_000_000, "exp": 1_700_003_600})
}

#[test]
fn c021_entra_v1_and_v2() {
    let keys = entra_keys();
    let v2_only = policy(&json!({"issuer": format!("https://login.microsoftonline.com/{TENANT}/v2.0"), "audiences": [API_APP], "algorithms": ["RS256"]}));
    let both = policy(&json!({
        "issuer": [format!("https://sts.windows.net/{TENANT}/"), format!("https://login.microsoftonline.com/{TENANT}/v2.0")],
        "audiences": [format!("api://{API_APP}"), API_APP],
        "algorithms": ["RS256"]
    }));
    let v1 = entra_token(&entra_v1(TENANT));
    let v2 = entra_token(&entra_v2(TENANT));
    assert_accepted(&verify(&v2, &keys, &v2_only), "V2 under entra-v2");
    assert_code(&verify(&v1, &keys, &v2_only), "issuer_invalid", "V1 under entra-v2");
    assert_accepted(&verify(&v1, &keys, &both), "V1 under entra-both");
    assert_accepted(&verify(&v2, &keys, &both), "V2 under entra-both");

    let other_tenant = "00000000-0000-0000-0000-00000000000b";
    assert_code(&verify(&entra_token(&entra_v2(other_tenant)), &keys, &v2_only), "issuer_invalid", "V2 of tenant T2");
    assert_code(&verify(&entra_token(&entra_v2(other_tenant)), &keys, &both), "issuer_invalid", "V2 of tenant T2, both");

    // The template form accepts either tenant's shape only for the listed tenant.
    let template = policy(&json!({
        "issuer": ["https://sts.windows.net/{tenant}/", "https://login.microsoftonline.com/{tenant}/v2.0"],
        "tenants": [TENANT],
        "tenant_claim": "tid",
        "audiences": [format!("api://{API_APP}"), API_APP],
        "algorithms": ["RS256"]
    }));
    assert_accepted(&verify(&v1, &keys, &template), "V1 under template");
    assert_accepted(&verify(&v2, &keys, &template), "V2 under template");
    assert_code(&verify(&entra_token(&entra_v2(other_tenant)), &keys, &template), "issuer_invalid", "T2 under template");

    let verified = verify(&v2, &keys, &v2_only).expect("verified");
    assert_eq!(verified.key_id(), fixtures()["certificates"]["K_RSA_A"]["x5t"].as_str());
}

// ---------------------------------------------------------------------------------------
// C023: AWS Cognito access tokens.
// ---------------------------------------------------------------------------------------

const COGNITO_ISSUER: &str = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EXAMPLE";

fn cognito_access() -> Value {
    json!({
        "sub": "user-123", "cognito:groups": ["admins"], "iss": COGNITO_ISSUER, "version": 2,
        "client_id": "exampleclientid123", "token_use": "access", "scope": "openid email",
        "auth_time": 1_699_999_000, "iat": 1_700_000_000, "exp": 1_700_003_600, "jti": "jti-1",
        "username": "user-123"
    })
}

fn cognito_policy() -> Policy {
    policy(&json!({
        "issuer": COGNITO_ISSUER,
        "algorithms": ["RS256"],
        "token_type_claim": {"claim": "token_use", "value": "access"},
        "client_ids": ["exampleclientid123"]
    }))
}

#[test]
fn c023_cognito_access_tokens() {
    let policy = cognito_policy();
    assert_accepted(&verify(&rs256(&cognito_access()), &jwks_a(), &policy), "access token");

    // The case proposes audience_invalid; portcullis reports `client_not_allowed`, the code
    // for a `client_id` (or `azp`) outside the policy's list, so the two checks stay apart.
    let other = with(&cognito_access(), &json!({"client_id": "otherclient999"}));
    assert_code(&verify(&rs256(&other), &jwks_a(), &policy), "client_not_allowed", "other client");

    let id_token = json!({
        "sub": "user-123", "aud": "exampleclientid123", "token_use": "id", "email": "user@example.com",
        "iss": COGNITO_ISSUER, "auth_time": 1_699_999_000, "iat": 1_700_000_000, "exp": 1_700_003_600
    });
    assert_code(&verify(&rs256(&id_token), &jwks_a(), &policy), "token_type_invalid", "ID token");
    // The token-type claim is checked before time and identity: an expired ID token is
    // still reported as the wrong kind of token.
    let expired_id = with(&id_token, &json!({"exp": 1_600_000_000}));
    assert_code(&verify(&rs256(&expired_id), &jwks_a(), &policy), "token_type_invalid", "expired ID token");

    let no_client = with(&cognito_access(), &json!({"client_id": null}));
    let result = verify(&rs256(&no_client), &jwks_a(), &policy);
    assert!(matches!(result, Err(VerifyError::MissingClaim { ref claim }) if claim == "client_id"), "{result:?}");

    for (case, token_use) in [("missing", json!(null)), ("number", json!(1)), ("upper case", json!("ACCESS"))] {
        let claims = with(&cognito_access(), &json!({"token_use": token_use}));
        assert_code(&verify(&rs256(&claims), &jwks_a(), &policy), "token_type_invalid", &format!("token_use {case}"));
    }

    // The generic policy with Cognito's issuer requires `aud`, which access tokens lack.
    // That is the interop complaint, and the fix is the profile above.
    let generic = p0_with(&json!({"issuer": COGNITO_ISSUER}));
    let result = verify(&rs256(&cognito_access()), &jwks_a(), &generic);
    assert!(matches!(result, Err(VerifyError::MissingClaim { ref claim }) if claim == "aud"), "{result:?}");
}

// ---------------------------------------------------------------------------------------
// C024: Keycloak shapes.
// ---------------------------------------------------------------------------------------

const KEYCLOAK_ISSUER: &str = "https://kc.example.com/realms/demo";

fn keycloak_access() -> Value {
    json!({
        "iss": KEYCLOAK_ISSUER, "aud": "account", "azp": "other-client", "typ": "Bearer",
        "realm_access": {"roles": ["offline_access", "uma_authorization"]},
        "resource_access": {"account": {"roles": ["manage-account"]}},
        "scope": "openid profile", "sub": "user-123", "iat": 1_700_000_000, "exp": 1_700_003_600
    })
}

#[test]
fn c024_keycloak_shapes() {
    let kc_policy = policy(&json!({"issuer": KEYCLOAK_ISSUER, "audiences": ["example-api"], "algorithms": ["RS256"]}));
    assert_code(&verify(&rs256(&keycloak_access()), &jwks_a(), &kc_policy), "audience_invalid", "K1 aud account");
    let ours = with(&keycloak_access(), &json!({"aud": ["example-api", "account"], "azp": "web-client"}));
    assert_accepted(&verify(&rs256(&ours), &jwks_a(), &kc_policy), "K2");

    // K3: an HS512 refresh token is refused on its algorithm before any key lookup.
    let header = json!({"alg": "HS512", "typ": "JWT", "kid": "5e1f0000-0000-4000-8000-000000000000"});
    let refresh = with(&keycloak_access(), &json!({"typ": "Refresh"}));
    let token = sign_json(Algorithm::HS512, &private_jwk("K_HS_512"), &header, &refresh);
    assert_code(&verify(&token, &jwks_a(), &kc_policy), "algorithm_not_allowed", "K3");

    let id_token = with(&keycloak_access(), &json!({"typ": "ID", "aud": "web-client", "nonce": "n-1", "azp": "web-client"}));
    assert_code(&verify(&rs256(&id_token), &jwks_a(), &kc_policy), "audience_invalid", "K4");
    let typed = policy_with_type_claim();
    assert_code(&verify(&rs256(&id_token), &jwks_a(), &typed), "token_type_invalid", "K4 with typ claim Bearer");
    assert_accepted(&verify(&rs256(&ours), &jwks_a(), &typed), "K2 with typ claim Bearer");
    // The payload `typ` claim has nothing to do with the JOSE header `typ`.
    let header_typed = policy(&json!({"issuer": KEYCLOAK_ISSUER, "audiences": ["example-api"], "algorithms": ["RS256"], "token_type": "at+jwt"}));
    assert_code(&verify(&rs256(&ours), &jwks_a(), &header_typed), "token_type_invalid", "payload typ is not header typ");

    // Roles from Keycloak's nested claims.
    let roles = policy(&json!({"issuer": KEYCLOAK_ISSUER, "audiences": ["example-api"], "algorithms": ["RS256"], "roles": {"preset": "keycloak_realm", "all_of": ["uma_authorization"]}}));
    assert_accepted(&verify(&rs256(&ours), &jwks_a(), &roles), "realm role");
    let admin = policy(&json!({"issuer": KEYCLOAK_ISSUER, "audiences": ["example-api"], "algorithms": ["RS256"], "roles": {"preset": "keycloak_client:account", "all_of": ["admin"]}}));
    assert_code(&verify(&rs256(&ours), &jwks_a(), &admin), "insufficient_role", "client role missing");
}

fn policy_with_type_claim() -> Policy {
    policy(&json!({
        "issuer": KEYCLOAK_ISSUER,
        "audiences": ["example-api"],
        "algorithms": ["RS256"],
        "token_type_claim": {"claim": "typ", "value": "Bearer"}
    }))
}

// ---------------------------------------------------------------------------------------
// C026: JWKS with unknown `kty`, malformed members, keys without `alg`.
// ---------------------------------------------------------------------------------------

fn c026_document() -> String {
    let a = public_jwk("K_RSA_A");
    let b = public_jwk("K_RSA_B");
    let c = public_jwk("K_RSA_C");
    let ec = public_jwk("K_EC_A");
    json!({"keys": [
        {"kty": "RSA", "kid": "rsa-a", "use": "sig", "alg": "RS256", "n": a["n"], "e": "AQAB"},
        {"kty": "EC", "kid": "ec-a", "use": "sig", "crv": "P-256", "x": ec["x"], "y": ec["y"]},
        {"kty": "AKP", "kid": "pq-1", "alg": "ML-DSA-65", "pub": "AAAA"},
        {"kty": "OKP", "kid": "x-1", "crv": "X25519", "x": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        {"kty": "RSA", "kid": "rsa-pad", "n": format!("{}==", b["n"].as_str().expect("n")), "e": "AQAB"},
        {"kty": "EC", "kid": "ec-nox", "crv": "P-256", "y": ec["y"]},
        {"kty": "RSA", "kid": "rsa-enc", "use": "enc", "alg": "RSA-OAEP", "n": c["n"], "e": "AQAB"},
        {"kid": "no-kty"}
    ]})
    .to_string()
}

#[test]
fn c026_mixed_key_set() {
    let keys = KeySet::from_json(c026_document().as_bytes(), KeySetOptions::default()).expect("the set loads");
    let usable: Vec<Option<&str>> = keys.keys().iter().map(|jwk| jwk.kid.as_deref()).collect();
    // `rsa-enc` imports as a key but is never eligible for a signature (see below).
    assert_eq!(usable, [Some("rsa-a"), Some("ec-a"), Some("rsa-enc")]);
    let skipped: Vec<Option<&str>> = keys.skipped().iter().map(|entry| entry.kid.as_deref()).collect();
    assert_eq!(skipped, [Some("pq-1"), Some("x-1"), Some("rsa-pad"), Some("ec-nox"), Some("no-kty")]);
    for entry in keys.skipped() {
        assert!(!entry.reason.is_empty(), "{entry}");
    }

    assert_accepted(&verify(&rs256(&valid_claims()), &keys, &p0()), "RS256 rsa-a");
    assert_accepted(&verify(&es256(&valid_claims()), &keys, &p0()), "ES256 ec-a without alg in the JWK");

    // The case proposes key_not_found for pq-1, rsa-pad and ec-nox. portcullis reports
    // key_unusable with the skip reason, so an operator sees why a published key is ignored
    // instead of hunting for a missing one. The token is rejected either way.
    for (kid, reason) in [("pq-1", "not supported"), ("rsa-pad", "base64url"), ("ec-nox", "`x` is missing"), ("x-1", "X25519")] {
        let token = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &json!({"alg": "RS256", "kid": kid}), &valid_claims());
        let result = verify(&token, &keys, &p0());
        assert_code(&result, "key_unusable", kid);
        assert!(key_unusable_reason(&result).contains(reason), "{kid}: {result:?}");
    }
    let token = sign_json(Algorithm::RS256, &private_jwk("K_RSA_C"), &json!({"alg": "RS256", "kid": "rsa-enc"}), &valid_claims());
    let result = verify(&token, &keys, &p0());
    assert_code(&result, "key_unusable", "rsa-enc");
    assert!(key_unusable_reason(&result).contains("use `enc`"), "{result:?}");

    for document in ["not json", "{}", r#"{"keys":{}}"#, r#"{"keys":"x"}"#, "[]", r#"{"keys":[]}"#, r#"{"keys":[{"kid":"no-kty"}]}"#] {
        let error = KeySet::from_json(document.as_bytes(), KeySetOptions::default()).expect_err(document);
        assert_eq!(error.code(), ErrorCode::JwksInvalid, "{document}");
    }
}

/// Sibling: limits on the document itself.
#[test]
fn c026_key_set_limits() {
    let entry = public_jwk("K_EC_A");
    let many: Vec<Value> = (0..=portcullis::jwks::MAX_KEYS).map(|index| with(&entry, &json!({"kid": format!("k{index}")}))).collect();
    let error = KeySet::from_json(jwks_json(&many).as_bytes(), KeySetOptions::default()).expect_err("too many keys");
    assert!(matches!(error, KeySetError::TooManyKeys { .. }), "{error}");
    let enough = &many[..portcullis::jwks::MAX_KEYS];
    assert!(KeySet::from_json(jwks_json(enough).as_bytes(), KeySetOptions::default()).is_ok());

    let duplicate = format!(r#"{{"keys":[{}],"keys":[]}}"#, public_jwk("K_EC_A"));
    assert!(KeySet::from_json(duplicate.as_bytes(), KeySetOptions::default()).is_err(), "duplicate keys member");
    let duplicate_member = r#"{"keys":[{"kty":"EC","kty":"RSA"}]}"#;
    assert!(KeySet::from_json(duplicate_member.as_bytes(), KeySetOptions::default()).is_err(), "duplicate JWK member");
}

// ---------------------------------------------------------------------------------------
// C027: `use: enc` keys and several keys sharing one `kid`.
// ---------------------------------------------------------------------------------------

#[test]
fn c027_shared_kid_selection() {
    let enc = with(&public_jwk("K_RSA_C"), &json!({"kid": "k1", "use": "enc", "alg": "RSA-OAEP"}));
    let sig = with(&public_jwk("K_RSA_A"), &json!({"kid": "k1", "use": "sig", "alg": "RS256"}));
    let header = json!({"alg": "RS256", "kid": "k1"});
    let by_a = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &header, &valid_claims());
    let by_c = sign_json(Algorithm::RS256, &private_jwk("K_RSA_C"), &header, &valid_claims());
    let no_kid_a = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &json!({"alg": "RS256"}), &valid_claims());
    let no_kid_c = sign_json(Algorithm::RS256, &private_jwk("K_RSA_C"), &json!({"alg": "RS256"}), &valid_claims());
    for order in [vec![enc.clone(), sig.clone()], vec![sig.clone(), enc.clone()]] {
        let keys = key_set(&order);
        assert_accepted(&verify(&by_a, &keys, &p0()), "JWKS1 signed by K_RSA_A");
        assert_code(&verify(&by_c, &keys, &p0()), "signature_invalid", "JWKS1 signed by K_RSA_C");
        assert_accepted(&verify(&no_kid_a, &keys, &p0()), "no kid, K_RSA_A");
        assert_code(&verify(&no_kid_c, &keys, &p0()), "signature_invalid", "no kid never selects the enc key");
    }

    // JWKS2: kid k2 three times with different `alg` and different keys, in every order.
    let entries = [
        with(&public_jwk("K_RSA_A"), &json!({"kid": "k2", "alg": "RS256"})),
        with(&public_jwk("K_RSA_B"), &json!({"kid": "k2", "alg": "RS384"})),
        with(&public_jwk("K_RSA_C"), &json!({"kid": "k2", "alg": "RS512"})),
    ];
    let policy = p0_with(&json!({"algorithms": ["RS256", "RS384", "RS512"]}));
    let orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]];
    let tokens = [
        (Algorithm::RS256, "K_RSA_A"),
        (Algorithm::RS384, "K_RSA_B"),
        (Algorithm::RS512, "K_RSA_C"),
    ];
    for order in orders {
        let keys = key_set(&order.map(|index| entries[index].clone()));
        for (alg, signer) in tokens {
            let token = sign_json(alg, &private_jwk(signer), &json!({"alg": alg.name(), "kid": "k2"}), &valid_claims());
            assert_accepted(&verify(&token, &keys, &policy), &format!("{alg} in order {order:?}"));
        }
        // RS384 signed by the RS256 entry's key: the RS384 entry is the only candidate.
        let token = sign_json(Algorithm::RS384, &private_jwk("K_RSA_A"), &json!({"alg": "RS384", "kid": "k2"}), &valid_claims());
        assert_code(&verify(&token, &keys, &policy), "signature_invalid", &format!("crossed keys in order {order:?}"));
    }

    // key_ops: only entries that list `verify` (or have no key_ops) are eligible.
    let cases = [
        (json!({"key_ops": ["encrypt"]}), Some("key_unusable")),
        (json!({"key_ops": ["sign"]}), Some("key_unusable")),
        (json!({"key_ops": []}), Some("key_unusable")),
        (json!({"key_ops": ["sign", "verify"]}), None),
        (json!({}), None),
        (json!({"use": "sig"}), None),
        (json!({"use": "SIG"}), Some("key_unusable")),
    ];
    for (members, expected) in cases {
        // K_EC_A keeps each set loadable: a set whose only key can never verify is invalid.
        let keys = key_set(&[with(&public_jwk("K_RSA_A"), &members), public_jwk("K_EC_A")]);
        let result = verify(&rs256(&valid_claims()), &keys, &p0());
        match expected {
            None => assert_accepted(&result, &members.to_string()),
            Some(code) => assert_code(&result, code, &members.to_string()),
        }
    }
    let keys = KeySet::from_json(jwks_json(&[with(&public_jwk("K_RSA_A"), &json!({"key_ops": "verify"}))]).as_bytes(), KeySetOptions::default());
    assert!(keys.is_err(), "key_ops as a string is malformed");
    // A set whose keys are all for encryption, by `use` or by `key_ops`, has no usable key.
    for members in [json!({"use": "enc"}), json!({"key_ops": ["encrypt"]}), json!({"use": "SIG"})] {
        let document = jwks_json(&[with(&public_jwk("K_RSA_A"), &members)]);
        let error = KeySet::from_json(document.as_bytes(), KeySetOptions::default()).expect_err("no signature key");
        assert!(matches!(error, KeySetError::NoUsableKey { .. }), "{members}: {error}");
    }
}

/// Sibling: one token tries at most `MAX_CANDIDATES` keys, and a key named by the token's
/// `kid` is preferred to keys without `kid`.
#[test]
fn c027_candidates_bounded() {
    let limit = portcullis::jwks::MAX_CANDIDATES;
    let rsa_keys = ["K_RSA_B", "K_RSA_C", "K_ATK_RSA", "K_RSA_E3", "K_RSA_E35", "K_RSA_3072", "K_RSA_4096", "K_RSA_A"];
    assert_eq!(rsa_keys.len(), limit);
    let entries: Vec<Value> = rsa_keys.iter().map(|name| public_jwk(name)).collect();
    let no_kid = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &json!({"alg": "RS256"}), &valid_claims());
    assert_accepted(&verify(&no_kid, &key_set(&entries), &p0()), "eight candidates");
    let mut more = entries.clone();
    more.push(with(&public_jwk("K_RSA_A"), &json!({"kid": "copy"})));
    assert_code(&verify(&no_kid, &key_set(&more), &p0()), "key_not_found", "nine candidates");

    // Without `kid` in the set, a token's kid matches nothing by name, and the kid-less
    // keys are the candidates, under the same bound.
    let kidless: Vec<Value> = more.iter().map(|entry| with(entry, &json!({"kid": null}))).collect();
    let named = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &json!({"alg": "RS256", "kid": "x"}), &valid_claims());
    assert_code(&verify(&named, &key_set(&kidless), &p0()), "key_not_found", "nine kid-less candidates");
    assert_accepted(&verify(&named, &key_set(&kidless[..limit]), &p0()), "eight kid-less candidates");

    // A key with the token's kid wins over kid-less keys: the kid-less K_RSA_A is not
    // tried when `k1` names K_RSA_B.
    let keys = key_set(&[with(&public_jwk("K_RSA_B"), &json!({"kid": "k1"})), with(&public_jwk("K_RSA_A"), &json!({"kid": null}))]);
    let by_a = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &json!({"alg": "RS256", "kid": "k1"}), &valid_claims());
    assert_code(&verify(&by_a, &keys, &p0()), "signature_invalid", "named key preferred");
    let by_b = sign_json(Algorithm::RS256, &private_jwk("K_RSA_B"), &json!({"alg": "RS256", "kid": "k1"}), &valid_claims());
    assert_accepted(&verify(&by_b, &keys, &p0()), "named key verifies");
    let other_kid = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &json!({"alg": "RS256", "kid": "k2"}), &valid_claims());
    assert_accepted(&verify(&other_kid, &keys, &p0()), "unknown kid falls back to the kid-less key");
}

// ---------------------------------------------------------------------------------------
// C029 R6: Istio's placeholder JWKS. R1-R5 (refetch, cooldown, stale sets) belong to the
// key cache and the filter.
// ---------------------------------------------------------------------------------------

#[test]
fn c029_r6_istio_placeholder_key() {
    let placeholder = r#"{"keys":[{"e":"AQAB","kid":"abc","kty":"RSA","n":"RXJyb3ItSXN0aW9kRmFpbGVkVG9GZXRjaEp3a3NVcmk"}]}"#;
    let error = KeySet::from_json(placeholder.as_bytes(), KeySetOptions::default()).expect_err("no usable key");
    assert!(matches!(error, KeySetError::NoUsableKey { skipped: 1 }), "{error}");
    assert_eq!(error.code(), ErrorCode::JwksInvalid);
    assert_eq!(error.code().http_status(), 401);

    // Next to a real key the placeholder is skipped, and a token naming it learns why.
    let mixed = format!(r#"{{"keys":[{},{}]}}"#, &placeholder[9..placeholder.len() - 2], public_jwk("K_RSA_A"));
    let keys = KeySet::from_json(mixed.as_bytes(), KeySetOptions::default()).expect("loads");
    assert!(skipped_reason(&keys, "abc").contains("fewer than the minimum"));
    let token = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &json!({"alg": "RS256", "kid": "abc"}), &valid_claims());
    assert_code(&verify(&token, &keys, &p0()), "key_unusable", "kid abc");
}

// ---------------------------------------------------------------------------------------
// C030: `Authorization` header parsing (the core's parser). W8 with two header lines and
// W10 (header plus query parameter) need the request, so the filter tests them.
// ---------------------------------------------------------------------------------------

#[test]
fn c030_authorization_header_parsing() {
    let token = rs256(&valid_claims());
    let accepted = [
        ("W1", format!("Bearer {token}")),
        ("W2", format!("bearer {token}")),
        ("W3", format!("BEARER {token}")),
        ("W4 two spaces", format!("Bearer  {token}")),
        ("mixed case", format!("bEaReR {token}")),
        ("surrounding spaces", format!("  Bearer {token}  ")),
    ];
    for (case, value) in accepted {
        match parse_authorization(&value, "Bearer") {
            Credential::Token(found) => {
                assert_eq!(found, token, "{case}");
                assert_accepted(&verify(found, &jwks_a(), &p0()), case);
            }
            other => panic!("{case}: {other:?}"),
        }
    }

    let malformed = [
        ("W5 trailing junk", format!("Bearer {token} .jjjj")),
        ("W7 tab", format!("Bearer\t{token}")),
        ("W8 two credentials", format!("Bearer {token}, Bearer {token}")),
        ("comma", format!("Bearer {token},")),
        ("CRLF", format!("Bearer {token}\r\n")),
        ("quote", format!("Bearer \"{token}\"")),
        ("space before comma", format!("Bearer ,{token}")),
    ];
    for (case, value) in malformed {
        assert_eq!(parse_authorization(&value, "Bearer"), Credential::Malformed, "{case}");
    }

    // W6: the appended text becomes part of the signature segment. With `junk` the
    // 90-character segment ends in `k`, whose unused low bits are not zero, so it is not
    // canonical base64url. With `AAAA` it decodes to 67 bytes, the wrong ES256 length.
    let es = es256(&valid_claims());
    for (junk, expected) in [("junk", "invalid_base64"), ("AAAA", "signature_length_invalid")] {
        match parse_authorization(&format!("Bearer {es}{junk}"), "Bearer") {
            Credential::Token(found) => assert_code(&verify(found, &jwks_a(), &p0()), expected, &format!("W6 {junk}")),
            other => panic!("W6 {junk}: {other:?}"),
        }
    }
    // Padding is allowed by the b64token grammar but not by JWS.
    match parse_authorization(&format!("Bearer {token}="), "Bearer") {
        Credential::Token(found) => assert_code(&verify(found, &jwks_a(), &p0()), "invalid_base64", "padding"),
        other => panic!("padding: {other:?}"),
    }

    // W9 and W11: no bearer credential. The challenge then has no `error` attribute.
    // A non-ASCII byte right after the scheme name makes it another scheme, as `Bearerx`
    // would be; HTTP field values are ASCII, so such a header never carries our token.
    let nbsp = format!("Bearer\u{a0}{token}");
    for value in ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "", "Bearerx abc", "Token abc", nbsp.as_str()] {
        assert_eq!(parse_authorization(value, "Bearer"), Credential::Absent, "{value:?}");
    }
    let challenge = Challenge::bearer(Some("api"), Some(ErrorCode::TokenMissing));
    assert_eq!(challenge.render(), r#"Bearer realm="api""#);
    assert_eq!(challenge.status(), 401);
    assert_eq!(ErrorCode::AuthorizationMalformed.http_status(), 400, "a malformed header is invalid_request");
}

// ---------------------------------------------------------------------------------------
// C031: huge tokens, many dots, oversized signature segments.
// ---------------------------------------------------------------------------------------

#[test]
fn c031_size_limits() {
    let dots = "a.".repeat(1_000_000) + "b";
    assert_code(&verify(&dots, &jwks_a(), &p0()), "token_too_large", "D1");

    let header = "e".repeat(8 * 1024 * 1024);
    let huge_header = format!("{header}.e30.AA");
    assert_code(&verify(&huge_header, &jwks_a(), &p0()), "token_too_large", "D2");
    assert_code(&verify(&huge_header, &jwks_a(), &p0_with(&json!({"max_token_bytes": 65536}))), "token_too_large", "D2, 64 KiB limit");

    let es = es256(&valid_claims());
    let long_signature = with_signature(&es, &"A".repeat(21_830));
    assert_code(&verify(&long_signature, &jwks_a(), &p0()), "token_too_large", "D3");
    let large = p0_with(&json!({"max_token_bytes": 65536}));
    assert_code(&verify(&long_signature, &jwks_a(), &large), "signature_length_invalid", "D3, 64 KiB limit");

    // The limit is inclusive: a token of exactly max_token_bytes is parsed. The padding
    // claim is sized so that header, payload and the 342-character RS256 signature add up
    // to the limit. Some lengths are not reachable with base64url, so a header with one
    // more space is tried too.
    let limit = 16 * 1024;
    let unpadded_length = |bytes: usize| (bytes * 4).div_ceil(3);
    let exact = [r#"{"alg":"RS256","kid":"rsa-a"}"#, r#"{"alg":"RS256", "kid":"rsa-a"}"#]
        .iter()
        .find_map(|header| {
            let fixed = unpadded_length(header.len()) + 2 + 342;
            (0..limit).find_map(|extra| {
                let claims = claims_with(&json!({"pad": "x".repeat(extra)})).to_string();
                (fixed + unpadded_length(claims.len()) == limit)
                    .then(|| sign_raw(Algorithm::RS256, &private_jwk("K_RSA_A"), header.as_bytes(), claims.as_bytes()))
            })
        })
        .expect("a padding that reaches the limit");
    assert_eq!(exact.len(), limit);
    assert_accepted(&verify(&exact, &jwks_a(), &p0()), "token of exactly 16 KiB");
    let over = format!("{exact}A");
    assert_code(&verify(&over, &jwks_a(), &p0()), "token_too_large", "one byte over");
}

#[test]
fn c031_large_legitimate_tokens() {
    // D4: an x5c chain makes the header about 8.5 KB; that still fits the 16 KiB default.
    let certificate = fixtures()["certificates"]["K_RSA_A"]["x5c"][0].clone();
    let chain: Vec<Value> = std::iter::repeat_n(certificate, 6).collect();
    let header = json!({"alg": "RS256", "kid": "rsa-a", "x5c": chain});
    let token = sign_json(Algorithm::RS256, &private_jwk("K_RSA_A"), &header, &valid_claims());
    let header_length = token.split('.').next().expect("header").len();
    assert!((7_000..=10_000).contains(&header_length), "header of {header_length} bytes");
    assert_accepted(&verify(&token, &jwks_a(), &p0()), "D4 x5c chain");

    // D5: a 4096-bit key's 512-byte signature.
    let keys = key_set(&[public_jwk("K_RSA_4096")]);
    assert_accepted(&verify(&token_for("K_RSA_4096"), &keys, &p0()), "D5 RSA 4096");
    let keys = key_set(&[public_jwk("K_RSA_3072")]);
    assert_accepted(&verify(&token_for("K_RSA_3072"), &keys, &p0()), "RSA 3072");
}

fn token_for(key_name: &str) -> String {
    token(key_name, Algorithm::RS256, &valid_claims())
}

// ---------------------------------------------------------------------------------------
// C032: deeply nested or malformed JSON in header or claims.
// ---------------------------------------------------------------------------------------

fn nested_array(depth: usize) -> String {
    format!("{}0{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn c032_deep_nesting() {
    let rsa = private_jwk("K_RSA_A");
    let large = p0_with(&json!({"max_token_bytes": 65536}));

    // N1: 14 KB of nesting grows to about 19 KB of base64url, over the 16 KiB default, so
    // under P0 it never reaches a JSON parser. With a 64 KiB limit the claims parser stops
    // at the depth limit.
    let deep_claims = format!(r#"{{"sub":"user-123","x":{}}}"#, nested_array(7000));
    let token = sign_raw(Algorithm::RS256, &rsa, br#"{"alg":"RS256","kid":"rsa-a"}"#, deep_claims.as_bytes());
    assert_code(&verify(&token, &jwks_a(), &p0()), "token_too_large", "N1 under P0");
    assert_code(&verify(&token, &jwks_a(), &large), "claims_malformed", "N1 with 64 KiB");

    // N2: the header is parsed before the signature check, still without overflow.
    let deep_header = format!(r#"{{"alg":"RS256","kid":{}1{}}}"#, r#"{"a":"#.repeat(3000), "}".repeat(3000));
    let token = format!("{}.{}.AA", b64(&deep_header), b64(valid_claims().to_string()));
    assert_code(&verify(&token, &jwks_a(), &p0()), "token_too_large", "N2 under P0");
    assert_code(&verify(&token, &jwks_a(), &large), "header_malformed", "N2 with 64 KiB");

    // N3: the limit counts the claims object as level 1, so a claim value may nest 99
    // levels (json::MAX_DEPTH = 100); one more level fails.
    let max = portcullis::json::MAX_DEPTH;
    for (depth, expected) in [(max - 1, None), (max, Some("claims_malformed"))] {
        let mut claims = valid_claims().to_string();
        claims.pop();
        let text = format!(r#"{claims},"x":{}}}"#, nested_array(depth));
        let token = sign_raw(Algorithm::RS256, &rsa, br#"{"alg":"RS256","kid":"rsa-a"}"#, text.as_bytes());
        let result = verify(&token, &jwks_a(), &p0());
        match expected {
            None => assert_accepted(&result, &format!("claim nested {depth} levels")),
            Some(code) => assert_code(&result, code, &format!("claim nested {depth} levels")),
        }
    }
}

#[test]
fn c032_malformed_json() {
    let rsa = private_jwk("K_RSA_A");
    let payloads: [&[u8]; 12] = [
        b"not json",
        br#"["a"]"#,
        br#""x""#,
        br#"{"sub":"u"}xyz"#,
        b"\xef\xbb\xbf{}",
        b" ",
        b"null",
        br#"{"exp":1700003600,"exp":1700003600}"#,
        br#"{"a":"\ud800"}"#,
        b"{\"a\":\"\xff\"}",
        br#"{"a":1,}"#,
        br#"{'a':1}"#,
    ];
    for payload in payloads {
        let token = sign_raw(Algorithm::RS256, &rsa, br#"{"alg":"RS256","kid":"rsa-a"}"#, payload);
        assert_code(&verify(&token, &jwks_a(), &p0()), "claims_malformed", &String::from_utf8_lossy(payload));
    }
    // An empty payload leaves an empty segment, which is a structural error.
    let token = sign_raw(Algorithm::RS256, &rsa, br#"{"alg":"RS256","kid":"rsa-a"}"#, b"");
    assert_code(&verify(&token, &jwks_a(), &p0()), "token_malformed", "empty payload");
    let headers: [&[u8]; 7] = [
        b"not json",
        br#"{"alg":"RS256","alg":"none"}"#,
        br#"{"alg":"RS256","kid":"rsa-a"}x"#,
        br#"["RS256"]"#,
        b"\xef\xbb\xbf{\"alg\":\"RS256\"}",
        br#"{"kid":"rsa-a"}"#,
        br#"{"alg":"RS256","cty":"JWT"}"#,
    ];
    for header in headers {
        let token = sign_raw(Algorithm::RS256, &rsa, header, valid_claims().to_string().as_bytes());
        assert_code(&verify(&token, &jwks_a(), &p0()), "header_malformed", &String::from_utf8_lossy(header));
    }
}

// ---------------------------------------------------------------------------------------
// C034 and C035: PKCE. The authorization-server side (invalid_request vs invalid_grant, a
// code unusable after a failure) and C036 belong to the server, not the core.
// ---------------------------------------------------------------------------------------

#[test]
fn c034_pkce_rfc7636_appendix_b() {
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    assert_eq!(code_challenge(verifier).expect("valid verifier"), challenge);
    assert!(verify_pkce(verifier, challenge));
    let wrong = [
        ("padded", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM="),
        ("standard base64", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM="),
        ("hex", "13d31e961a1ad8ec2f16b10c4c982e0876a878ad6df144566ee1894acb70f9c3"),
        ("base64url of hex", "MTNkMzFlOTYxYTFhZDhlYzJmMTZiMTBjNGM5ODJlMDg3NmE4NzhhZDZkZjE0NDU2NmVlMTg5NGFjYjcwZjljMw"),
        ("hash of the decoded verifier", "38v3YOi6zQgk1xkqk6Y5dvSDoBHqZrTh3mmWHxxWvyk"),
        ("plain", verifier),
        ("empty", ""),
        ("upper case", "E9MELHOA2OWVFREMTJGUCHAOEK1T8URWBUGJSSTW-CM"),
    ];
    for (case, value) in wrong {
        assert!(!verify_pkce(verifier, value), "{case}");
    }
}

#[test]
fn c035_pkce_verifier_length_and_charset() {
    assert!(matches!(check_verifier(&"a".repeat(42)), Err(PkceError::VerifierLength { actual: 42 })));
    assert!(check_verifier(&"a".repeat(43)).is_ok());
    assert!(check_verifier(&"a".repeat(128)).is_ok());
    assert!(matches!(check_verifier(&"a".repeat(129)), Err(PkceError::VerifierLength { actual: 129 })));
    for bad in ["+", "/", "=", " ", "%", "\u{e9}", "\n", "\0"] {
        let verifier = format!("{}{bad}", "a".repeat(43));
        assert!(matches!(check_verifier(&verifier), Err(PkceError::VerifierCharacter { position: 43 })), "{bad:?}");
    }
    assert!(check_verifier(&format!("{}-._~", "a".repeat(40))).is_ok());
    // The error code of every PKCE failure.
    assert_eq!(PkceError::VerifierLength { actual: 1 }.code(), ErrorCode::PkceInvalid);

    // The generator takes one random byte per character, so every length in 43..=128 is
    // reachable and nothing outside it is: 43 from 32 bytes of entropy and up.
    let random: Vec<u8> = (0..=255u8).cycle().take(200).collect();
    for length in 43..=128 {
        let pkce = create_pkce(&random, length).expect("length in range");
        assert_eq!(pkce.code_verifier.len(), length);
        assert!(check_verifier(&pkce.code_verifier).is_ok());
        assert!(verify_pkce(&pkce.code_verifier, &pkce.code_challenge));
    }
    for length in [0, 32, 42, 129, 134, 171] {
        assert_eq!(create_pkce(&random, length), Err(PkceError::RequestedLength { requested: length }));
    }
    assert_eq!(create_pkce(&random[..42], 43), Err(PkceError::NotEnoughRandomness { needed: 43 }));
}

// ---------------------------------------------------------------------------------------
// C037: token-type confusion, `typ: at+jwt` vs ID tokens.
// ---------------------------------------------------------------------------------------

#[test]
fn c037_token_type() {
    let typed = p0_with(&json!({"token_type": "at+jwt"}));
    let rsa = private_jwk("K_RSA_A");
    let with_typ = |typ: Value| {
        let mut header = json!({"alg": "RS256", "kid": "rsa-a"});
        if !typ.is_null() {
            header["typ"] = typ;
        }
        sign_json(Algorithm::RS256, &rsa, &header, &valid_claims())
    };
    let cases = [
        ("Y1", json!("at+jwt"), None),
        ("Y2", json!("application/at+jwt"), None),
        ("Y3", json!("AT+JWT"), None),
        ("mixed case with prefix", json!("Application/At+Jwt"), None),
        ("Y4", json!("JWT"), Some("token_type_invalid")),
        ("Y5 no typ", json!(null), Some("token_type_invalid")),
        ("Y6", json!("logout+jwt"), Some("token_type_invalid")),
        ("other prefix", json!("text/at+jwt"), Some("token_type_invalid")),
        ("at+jwt with parameters", json!("at+jwt; charset=utf-8"), Some("token_type_invalid")),
        ("typ not a string", json!(1), Some("header_malformed")),
    ];
    for (case, typ, expected) in cases {
        let result = verify(&with_typ(typ), &jwks_a(), &typed);
        match expected {
            None => assert_accepted(&result, case),
            Some(code) => assert_code(&result, code, case),
        }
    }

    // Y7: an ID token signed by the same key.
    let id_claims = claims_with(&json!({"aud": "web-client", "nonce": "n-1", "auth_time": 1_699_999_000}));
    let id_token = sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": "rsa-a", "typ": "JWT"}), &id_claims);
    assert_code(&verify(&id_token, &jwks_a(), &typed), "token_type_invalid", "Y7 with typ enforcement");
    assert_code(&verify(&id_token, &jwks_a(), &p0()), "audience_invalid", "Y7 without typ enforcement");

    // The RFC 9068 profile requires at+jwt and its claims.
    let profile = p0_with(&json!({"profile": "rfc9068"}));
    let access = claims_with(&json!({"client_id": "web-client", "jti": "jti-1"}));
    let token = sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": "rsa-a", "typ": "at+jwt"}), &access);
    assert_accepted(&verify(&token, &jwks_a(), &profile), "rfc9068 profile");
    assert_code(&verify(&id_token, &jwks_a(), &profile), "token_type_invalid", "ID token under rfc9068");
    let no_jti = sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": "rsa-a", "typ": "at+jwt"}), &claims_with(&json!({"client_id": "web-client"})));
    let result = verify(&no_jti, &jwks_a(), &profile);
    assert!(matches!(result, Err(VerifyError::MissingClaim { ref claim }) if claim == "jti"), "{result:?}");
}

// ---------------------------------------------------------------------------------------
// The check order: the first failure in the documented order wins.
// ---------------------------------------------------------------------------------------

#[test]
fn check_order_first_failure_wins() {
    let typed = p0_with(&json!({"token_type": "at+jwt", "scopes": {"all_of": ["read"]}}));
    let rsa = private_jwk("K_RSA_A");
    let everything_wrong = claims_with(&json!({"exp": 1, "iss": "x", "aud": "y"}));
    // A token with a wrong signature and every claim wrong reports the signature.
    let token = sign_json(Algorithm::RS256, &rsa, &json!({"alg": "RS256", "kid": "rsa-a", "typ": "JWT"}), &everything_wrong);
    let bad_signature = with_signature(&token, &b64([7u8; 256]));
    assert_code(&verify(&bad_signature, &jwks_a(), &typed), "signature_invalid", "signature before typ");
    // Correctly signed: typ, then exp, then iss, then aud, then scope.
    assert_code(&verify(&token, &jwks_a(), &typed), "token_type_invalid", "typ before exp");
    let header = json!({"alg": "RS256", "kid": "rsa-a", "typ": "at+jwt"});
    let steps = [
        (json!({"exp": 1, "iss": "x", "aud": "y"}), "token_expired"),
        (json!({"iss": "x", "aud": "y"}), "issuer_invalid"),
        (json!({"aud": "y"}), "audience_invalid"),
        (json!({}), "insufficient_scope"),
        (json!({"scope": "read"}), ""),
    ];
    for (changes, expected) in steps {
        let token = sign_json(Algorithm::RS256, &rsa, &header, &claims_with(&changes));
        let result = verify(&token, &jwks_a(), &typed);
        if expected.is_empty() {
            assert_accepted(&result, "all fixed");
        } else {
            assert_code(&result, expected, &changes.to_string());
        }
    }
}
