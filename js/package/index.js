// The small entry point `portcullis`. The build copies this file next to a target's
// `light-loader.js`, which instantiates the WebAssembly module. Each export is a function of
// this module, so a bundler that honours `"sideEffects": false` keeps this module, and with it
// the loader, whenever an export is used. Types and docs: index.d.ts.

import { bindings } from './light-loader.js';

export { AuthorizationResponseError, TokenError } from '../errors.js';

export function createPkce(options) {
  return bindings.createPkce(options);
}

export function pkceChallenge(verifier) {
  return bindings.pkceChallenge(verifier);
}

export function verifyPkce(verifier, challenge) {
  return bindings.verifyPkce(verifier, challenge);
}

export function randomState() {
  return bindings.randomState();
}

export function randomNonce() {
  return bindings.randomNonce();
}

export function buildAuthorizationUrl(options) {
  return bindings.buildAuthorizationUrl(options);
}

export function parseAuthorizationResponse(url, options) {
  return bindings.parseAuthorizationResponse(url, options);
}

export function inspectToken(token) {
  return bindings.inspectToken(token);
}

export function expiresIn(token, now) {
  return bindings.expiresIn(token, now);
}

export function isExpired(token, options) {
  return bindings.isExpired(token, options);
}
