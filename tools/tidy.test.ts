import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { dirname } from 'node:path';
import { checkSources, importsOf, loadSources, repoRoot } from './tidy.ts';

test('the repository keeps its dependency rules', () => {
  const root = repoRoot(dirname(fileURLToPath(import.meta.url)));
  const sources = loadSources(root);
  assert.ok(sources.length > 5, `expected sources under ${root}`);
  assert.deepEqual(checkSources(sources), []);
});

test('checkSources() reports a forbidden import', () => {
  const found = checkSources([
    { path: 'src/engine/a.ts', text: "import { x } from '../frontend/b.ts';\n" },
    { path: 'src/frontend/b.ts', text: 'export const x = 1;\n' },
  ]);
  assert.equal(found.length, 1);
  assert.match(found[0]?.message ?? '', /may not import src\/frontend/);
});

test('checkSources() reports node: imports in pure folders and cycles', () => {
  const found = checkSources([
    { path: 'src/lib/a.ts', text: "import { b } from './b.ts';\nimport fs from 'node:fs';\n" },
    { path: 'src/lib/b.ts', text: "import type { a } from './a.ts';\n" },
  ]);
  assert.ok(found.some((v) => v.message.includes('is pure')));
  assert.ok(found.some((v) => v.message.startsWith('import cycle')));
});

test('importsOf() finds static, type-only, side-effect and dynamic imports', () => {
  const text = [
    "import a from './a.ts';",
    "import type { B } from '../b.ts';",
    "export { c } from './c.ts';",
    "import './d.ts';",
    "const e = await import('./e.ts');",
    "import {\n  f,\n  g,\n} from './fg.ts';",
  ].join('\n');
  assert.deepEqual(importsOf(text).sort(), ['../b.ts', './a.ts', './c.ts', './d.ts', './e.ts', './fg.ts']);
});

test('checkSources() lets a test beside the code import across folders, but not production code', () => {
  const found = checkSources([
    { path: 'src/replica/a.test.ts', text: "import { c } from '../engine/c.ts';\n" },
    { path: 'src/replica/b.ts', text: "import { c } from '../engine/c.ts';\n" },
    { path: 'src/engine/c.ts', text: 'export const c = 1;\n' },
  ]);
  assert.deepEqual(found.map((v) => v.file), ['src/replica/b.ts']);
});
