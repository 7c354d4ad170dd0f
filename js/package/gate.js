// The edge-worker entry point `portcullis/gate`. The build copies this file next to a
// target's `gate-loader.js`. Types and docs: gate.d.ts.

import { bindings } from './gate-loader.js';

export { TokenError } from '../errors.js';

export const Gate = bindings.Gate;
