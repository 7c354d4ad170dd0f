// The edge worker in workerd (through miniflare), bundled as wrangler bundles it, against a
// real authorization server and a key server the tests control. Build the package first
// with `make pkg`.

import { defineWorkerTests } from '../worker/harness.mjs';
import { startWorkerInWorkerd } from '../worker/workerd.mjs';

defineWorkerTests('workerd', ({ policy, originUrl }) =>
  startWorkerInWorkerd({
    bindings: {
      PORTCULLIS_POLICY: JSON.stringify(policy),
      ORIGIN_URL: originUrl,
      PORTCULLIS_LOG_LEVEL: 'error',
    },
  }));
