// The tidy check (run as a test): which src/ folder may import which, no import cycles, Node's
// modules only where I/O is allowed, and no oversized files. STYLE.md "Shape" as code.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/** What each top-level folder of src/ may import from src/ (itself is always allowed). */
export const allowedImports: Readonly<Record<string, readonly string[]>> = {
  lib: [],
  format: ['lib'],
  replica: ['lib', 'format'],
  engine: ['lib', 'format'],
  frontend: ['lib', 'format'],
  backup: ['lib', 'format'],
  control: ['lib'],
  agent: ['lib', 'format', 'control'],
  api: ['lib', 'control'],
  cli: ['lib', 'api', 'control', 'format'],
  k8s: ['lib', 'control', 'api'],
  bin: ['*'],
};

/** Folders whose code must stay pure: no node:* imports anywhere in them. */
const pureFolders = new Set(['lib', 'format']);
const fileLinesMax = 800;

export interface TidyViolation {
  readonly file: string;
  readonly message: string;
}

export interface SourceFile {
  /** Path relative to the repository root, with forward slashes. */
  readonly path: string;
  readonly text: string;
}

const importPattern = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;

export function importsOf(text: string): string[] {
  const found: string[] = [];
  for (const match of text.matchAll(importPattern)) {
    const spec = match[1] ?? match[2] ?? match[3];
    if (spec !== undefined) found.push(spec);
  }
  return found;
}

function topFolder(path: string): string | undefined {
  const parts = path.split('/');
  return parts[0] === 'src' ? parts[1] : undefined;
}

function isTestFile(path: string): boolean {
  return path.endsWith('.test.ts') || path.includes('/testing/');
}

function resolveRelative(from: string, spec: string): string {
  return join(dirname(from), spec).split(sep).join('/');
}

export function checkSources(files: readonly SourceFile[]): TidyViolation[] {
  const violations: TidyViolation[] = [];
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const lines = file.text.split('\n').length;
    if (lines > fileLinesMax) {
      violations.push({ file: file.path, message: `${lines} lines; split it (limit ${fileLinesMax})` });
    }
    const from = topFolder(file.path);
    const edges: string[] = [];
    for (const spec of importsOf(file.text)) {
      if (spec.startsWith('node:') && from !== undefined && pureFolders.has(from) && !isTestFile(file.path)) {
        violations.push({ file: file.path, message: `imports ${spec}, but src/${from} is pure` });
      }
      if (!spec.startsWith('.')) continue;
      const target = resolveRelative(file.path, spec);
      edges.push(target);
      const to = topFolder(target);
      // Tests (beside the code or under test/), tools and benchmarks may import anything in src.
      if (from === undefined || isTestFile(file.path)) continue;
      if (to === undefined) {
        violations.push({ file: file.path, message: `src/ imports ${target} from outside src/` });
        continue;
      }
      if (to === from) continue;
      const allowed = allowedImports[from];
      if (allowed === undefined) {
        violations.push({ file: file.path, message: `src/${from} is not a known folder; add it to tools/tidy.ts` });
      } else if (!allowed.includes('*') && !allowed.includes(to)) {
        violations.push({ file: file.path, message: `src/${from} may not import src/${to} (${target})` });
      } else if (to === 'bin') {
        violations.push({ file: file.path, message: `nothing imports src/bin (${target})` });
      }
      if (to !== undefined && isTestFile(target) && !isTestFile(file.path)) {
        violations.push({ file: file.path, message: `production code imports a test file ${target}` });
      }
    }
    graph.set(file.path, edges);
  }
  violations.push(...findCycles(graph));
  return violations;
}

function findCycles(graph: ReadonlyMap<string, readonly string[]>): TidyViolation[] {
  const state = new Map<string, 'visiting' | 'done'>();
  const violations: TidyViolation[] = [];
  const stack: string[] = [];
  const visit = (node: string): void => {
    const seen = state.get(node);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = stack.slice(stack.indexOf(node)).concat(node);
      violations.push({ file: node, message: `import cycle: ${cycle.join(' -> ')}` });
      return;
    }
    state.set(node, 'visiting');
    stack.push(node);
    for (const next of graph.get(node) ?? []) if (graph.has(next)) visit(next);
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of graph.keys()) visit(node);
  return violations;
}

function listTs(root: string, dir: string, out: SourceFile[]): void {
  for (const name of readdirSync(join(root, dir))) {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue;
    const path = dir === '' ? name : `${dir}/${name}`;
    const full = join(root, path);
    if (statSync(full).isDirectory()) listTs(root, path, out);
    else if (name.endsWith('.ts')) out.push({ path, text: readFileSync(full, 'utf8') });
  }
}

export function loadSources(root: string): SourceFile[] {
  const out: SourceFile[] = [];
  for (const top of ['src', 'test', 'bench', 'tools']) {
    try {
      listTs(root, top, out);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return out;
}

export function repoRoot(fromDir: string): string {
  // Compiled to dist/tools/, the sources are two folders up; run from sources, one.
  const up = resolve(fromDir, '..');
  return relative(up, fromDir) === 'tools' && up.endsWith(`${sep}dist`) ? resolve(up, '..') : up;
}
