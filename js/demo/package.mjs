/**
 * Loads the Node build of the portcullis npm package from pkg/, as an application that
 * installed it would, and fails with the command that builds it when it is missing.
 */

import { access } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const entry = new URL('../../pkg/dist/node/index.js', import.meta.url);

export async function loadPackage() {
  try {
    await access(fileURLToPath(entry));
  } catch {
    throw new Error('the npm package is not built: run `make pkg` first');
  }
  return import(entry.href);
}
