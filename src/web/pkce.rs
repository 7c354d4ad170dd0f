//! PKCE and random `state`/`nonce` values.

use alloc::string::String;

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;
use zeroize::Zeroize;

use super::convert;
use crate::authorization::{self, RANDOM_VALUE_BYTES};
use crate::pkce::{self, DEFAULT_VERIFIER_LENGTH, MAX_VERIFIER_LENGTH};

#[wasm_bindgen]
extern "C" {
    /// `globalThis.crypto.getRandomValues`, present in browsers, workers and Node.js 19+.
    /// It writes into a view of the module's memory, which is never shared between threads.
    #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
    fn get_random_values(buffer: &mut [u8]) -> Result<JsValue, JsValue>;
}

/// Fills `buffer` (at most 65536 bytes, the Web Crypto limit) from the platform CSPRNG.
fn fill_random(buffer: &mut [u8]) -> Result<(), JsValue> {
    get_random_values(buffer).map(|_| ())
}

/// `createPkce(options?)`: a new code verifier from the platform CSPRNG and its S256
/// challenge. `options.verifierLength` is 43 to 128 characters, default 43.
#[wasm_bindgen(js_name = createPkce)]
pub fn create_pkce(options: JsValue) -> Result<JsValue, JsValue> {
    let length = match convert::options(&options, "options")? {
        Some(options) => convert::optional_integer(&convert::property(&options, "verifierLength")?, "verifierLength")?,
        None => None,
    };
    let length = length.map_or(DEFAULT_VERIFIER_LENGTH, |length| usize::try_from(length).unwrap_or(usize::MAX));

    // The core takes one byte per character and checks the length itself.
    let mut random = [0u8; MAX_VERIFIER_LENGTH];
    fill_random(&mut random)?;
    let created = pkce::create_pkce(&random, length);
    random.zeroize();
    let created = created?;

    convert::plain_object(&[
        ("codeVerifier", JsValue::from_str(&created.code_verifier)),
        ("codeChallenge", JsValue::from_str(&created.code_challenge)),
        ("codeChallengeMethod", JsValue::from_str(pkce::CHALLENGE_METHOD)),
    ])
}

/// `pkceChallenge(verifier)`: the S256 challenge of a verifier of 43 to 128 unreserved
/// characters.
#[wasm_bindgen(js_name = pkceChallenge)]
pub fn pkce_challenge(verifier: JsValue) -> Result<String, JsValue> {
    let verifier = convert::string(&verifier, "verifier")?;
    Ok(pkce::code_challenge(&verifier)?)
}

/// `verifyPkce(verifier, challenge)`: whether the challenge is the S256 challenge of the
/// verifier, compared in constant time.
#[wasm_bindgen(js_name = verifyPkce)]
pub fn verify_pkce(verifier: JsValue, challenge: JsValue) -> Result<bool, JsValue> {
    let verifier = convert::string(&verifier, "verifier")?;
    let challenge = convert::string(&challenge, "challenge")?;
    Ok(pkce::verify_pkce(&verifier, &challenge))
}

fn random_value() -> Result<String, JsValue> {
    let mut random = [0u8; RANDOM_VALUE_BYTES];
    fill_random(&mut random)?;
    let value = authorization::random_value(&random);
    random.zeroize();
    Ok(value)
}

/// `randomState()`: 32 bytes from the platform CSPRNG as 43 characters of base64url.
#[wasm_bindgen(js_name = randomState)]
pub fn random_state() -> Result<String, JsValue> {
    random_value()
}

/// `randomNonce()`: 32 bytes from the platform CSPRNG as 43 characters of base64url.
#[wasm_bindgen(js_name = randomNonce)]
pub fn random_nonce() -> Result<String, JsValue> {
    random_value()
}
