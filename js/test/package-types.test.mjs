// Compiles the type tests in test/types/ against the hand-written declarations of the npm
// package (js/package/*.d.ts) with `tsc --noEmit`. An unneeded @ts-expect-error fails too.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const JS_DIR = fileURLToPath(new URL('..', import.meta.url));

test('declarations pass the type tests', () => {
  const result = spawnSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '-p', 'test/types'], {
    cwd: JS_DIR,
    encoding: 'utf8',
  });
  assert.equal(result.status, 0, `tsc failed:\n${result.stdout}${result.stderr}`);
});
