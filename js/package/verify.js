// The verifying entry point `portcullis/verify`. The build copies this file next to a
// target's `verify-loader.js`; see index.js for why the export is a local function.
// Types and docs: verify.d.ts.

import { bindings } from './verify-loader.js';

export { TokenError } from '../errors.js';

export function verifyToken(token, jwks, policy, now) {
  return bindings.verifyToken(token, jwks, policy, now);
}

export function verifyDpopProof(proof, request, options) {
  return bindings.verifyDpopProof(proof, request, options);
}
