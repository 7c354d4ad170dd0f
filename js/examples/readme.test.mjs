// Type-checks the code blocks of the top-level README.md (section "Browser and npm") in the
// React and Angular projects: `tsc` for React, `ngc` (templates included) for Angular. Each
// block starts with a comment naming its file. Install both projects first (test.sh does).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';

const run = promisify(execFile);

const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const CODE_BLOCK = /^```tsx?\n\/\/ (\S+)\n([\s\S]*?)^```$/gm;

const PROJECTS = [
  {
    name: 'react',
    files: ['auth.ts', 'App.tsx'],
    directory: fileURLToPath(new URL('./react/', import.meta.url)),
    compiler: 'node_modules/.bin/tsc',
  },
  {
    name: 'angular',
    files: ['auth.ts', 'main.ts', 'app.ts'],
    directory: fileURLToPath(new URL('./angular/', import.meta.url)),
    compiler: 'node_modules/.bin/ngc',
  },
];

let snippets;

before(async () => {
  const markdown = await readFile(README, 'utf8');
  snippets = new Map();
  for (const [, name, code] of markdown.matchAll(CODE_BLOCK)) {
    assert.ok(!snippets.has(name), `README.md has two blocks named ${name}`);
    snippets.set(name, code);
  }
});

after(async () => {
  for (const project of PROJECTS) {
    await rm(`${project.directory}.readme-check`, { recursive: true, force: true });
  }
});

for (const project of PROJECTS) {
  test(`${project.name} snippets type-check`, { timeout: 120_000 }, async () => {
    const checkDirectory = `${project.directory}.readme-check/`;
    await rm(checkDirectory, { recursive: true, force: true });
    await mkdir(checkDirectory);

    for (const file of project.files) {
      assert.ok(snippets.has(file), `README.md has no block starting with "// ${file}"`);
      await writeFile(`${checkDirectory}${file}`, snippets.get(file));
    }
    // The project's own compiler options, for the snippet files only.
    await writeFile(
      `${checkDirectory}tsconfig.json`,
      JSON.stringify({ extends: '../tsconfig.json', compilerOptions: { noEmit: true }, files: project.files }, null, 2),
    );

    try {
      await run(project.compiler, ['-p', `${checkDirectory}tsconfig.json`], { cwd: project.directory });
    } catch (error) {
      assert.fail(`${project.name} snippets do not compile:\n${error.stdout}${error.stderr}`);
    }
  });
}
