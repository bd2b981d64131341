import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesLabels, parseLabelSelector } from './label-selector.ts';
import { isStoreError } from './resource-store.ts';

const objects: Record<string, Record<string, string> | undefined> = {
  a: { app: 'web', tier: 'front', zone: 'z1' },
  b: { app: 'db', tier: 'back' },
  c: { app: 'web', tier: 'back', 'shorthorn.io/node': 'n1' },
  d: {},
  e: undefined,
  f: { app: '' },
};

function select(selector: string): string[] {
  const parsed = parseLabelSelector(selector);
  return Object.entries(objects)
    .filter(([, labels]) => matchesLabels(parsed, labels))
    .map(([name]) => name);
}

test('label selectors select like Kubernetes', () => {
  const cases: [string, string[]][] = [
    ['', ['a', 'b', 'c', 'd', 'e', 'f']],
    ['app=web', ['a', 'c']],
    ['app==web', ['a', 'c']],
    ['app = web , tier=back', ['c']],
    ['app!=web', ['b', 'd', 'e', 'f']],
    ['app in (web,db)', ['a', 'b', 'c']],
    ['app in (web, db),tier notin (front)', ['b', 'c']],
    ['tier notin (front,back)', ['d', 'e', 'f']],
    ['zone', ['a']],
    ['!zone', ['b', 'c', 'd', 'e', 'f']],
    ['shorthorn.io/node=n1', ['c']],
    ['app=', ['f']],
    ['app in (,db)', ['b', 'f']],
    ['app,!tier', ['f']],
  ];
  for (const [selector, expected] of cases) assert.deepEqual(select(selector), expected, selector);
});

test('bad label selectors are refused with a clear invalid error', () => {
  const bad = ['=x', 'a=b=c', 'a in b', 'a in (b', 'a in (b c)', 'a,', ',a', 'a b', 'a=(', 'a=b;c', '-a=b', 'a=-b',
    `${'k'.repeat(64)}=v`, `k=${'v'.repeat(64)}`, '!', 'a!b', 'x'.repeat(5000), 'app=web,,tier'];
  for (const selector of bad) {
    assert.throws(() => parseLabelSelector(selector), (e: unknown) => isStoreError(e, 'invalid'), selector);
  }
});

test('a key with the word in or notin is still a key', () => {
  assert.deepEqual(parseLabelSelector('in=notin'), [{ op: 'eq', key: 'in', value: 'notin' }]);
  assert.deepEqual(parseLabelSelector('notin'), [{ op: 'exists', key: 'notin' }]);
});
