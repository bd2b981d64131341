import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSameProcess, loadProcessTable, processTableFileName, readProc, saveProcessTable } from './process-table.ts';

test('the process table round-trips and refuses a corrupt file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shorthorn-ptable-'));
  try {
    assert.deepEqual(await loadProcessTable(dir), []);
    const entries = [{ name: 'r1', kind: 'replica' as const, port: 10000, pid: 5, startTime: '77', argv: ['node', 'x'] }, { name: 'e1', kind: 'engine' as const, port: 10001 }];
    await saveProcessTable(dir, entries);
    assert.deepEqual(await loadProcessTable(dir), entries);
    await writeFile(join(dir, processTableFileName), '{"entries":[{"name":1}]}');
    await assert.rejects(loadProcessTable(dir), { code: 'corrupt' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a process is the same only with the same pid, start time and command line', async () => {
  const info = await readProc(process.pid);
  assert.ok(info !== undefined);
  const entry = { name: 'me', kind: 'replica' as const, port: 1, pid: process.pid, startTime: info.startTime, argv: info.argv };
  assert.ok(isSameProcess(entry, info));
  assert.ok(!isSameProcess({ ...entry, startTime: '1' }, info), 'a reused pid has another start time');
  assert.ok(!isSameProcess({ ...entry, argv: [...info.argv, 'extra'] }, info));
  assert.ok(!isSameProcess(entry, { ...info, state: 'Z' }), 'a zombie is not running');
  assert.equal(await readProc(2 ** 22 + 1), undefined);
});
