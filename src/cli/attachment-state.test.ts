import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HostError } from './host-error.ts';
import { parseNbdUnixUri } from './local-device.ts';

const dir = mkdtempSync(join(tmpdir(), 'shorthorn-attachment-state-'));
process.env['SHORTHORN_RUN_DIR'] = dir;
after(() => rmSync(dir, { recursive: true, force: true }));

// Imported after SHORTHORN_RUN_DIR is set: runDir() reads it at each call anyway.
const state = await import('./attachment-state.ts');

test('a record round-trips, names its device and mount, and is gone after remove', () => {
  assert.equal(state.readAttachmentState('vol-a'), undefined);
  const record = {
    version: 1 as const, volume: 'vol-a', node: 'node-1', uri: 'nbd+unix:///vol-a?socket=/s', createdAt: '2026-01-01T00:00:00Z',
    steps: [
      { kind: 'nbdfuse' as const, pid: 10, startTime: '99', fuseDir: '/run/x/fuse' },
      { kind: 'loop' as const, device: '/dev/loop3', backingFile: '/run/x/fuse/nbd' },
      { kind: 'mount' as const, device: '/dev/loop3', dir: '/mnt/a' },
    ],
  };
  state.writeAttachmentState(record);
  const read = state.readAttachmentState('vol-a');
  assert.deepEqual(read, record);
  assert.equal(state.deviceOf(record), '/dev/loop3');
  assert.equal(state.mountOf(record), '/mnt/a');
  state.removeAttachmentState('vol-a');
  assert.equal(state.readAttachmentState('vol-a'), undefined);
});

test('a damaged or foreign record is a typed error, never guessed at', () => {
  mkdirSync(state.attachmentsDir(), { recursive: true });
  const cases: Record<string, string> = {
    'not-json': '{',
    'other-volume': JSON.stringify({ version: 1, volume: 'someone-else', uri: 'u', steps: [] }),
    'bad-step': JSON.stringify({ version: 1, volume: 'bad-step', uri: 'u', steps: [{ kind: 'rm -rf', path: '/' }] }),
    'bad-pid': JSON.stringify({ version: 1, volume: 'bad-pid', uri: 'u', steps: [{ kind: 'nbdfuse', pid: 'x', startTime: '1', fuseDir: '/f' }] }),
    'version-2': JSON.stringify({ version: 2, volume: 'version-2', uri: 'u', steps: [] }),
  };
  for (const [volume, text] of Object.entries(cases)) {
    writeFileSync(join(state.attachmentsDir(), `${volume}.json`), text);
    assert.throws(() => state.readAttachmentState(volume), (error: unknown) => error instanceof HostError && error.code === 'bad_state', volume);
  }
});

test('only nbd+unix URIs with an absolute socket are made devices', () => {
  assert.deepEqual(parseNbdUnixUri('nbd+unix:///demo?socket=/run/a.sock'), { exportName: 'demo', socket: '/run/a.sock' });
  assert.equal(parseNbdUnixUri('nbd://127.0.0.1:10809/demo'), undefined);
  assert.equal(parseNbdUnixUri('nbd+unix:///demo?socket=relative.sock'), undefined);
  assert.equal(parseNbdUnixUri('nbd+unix:///demo'), undefined);
  assert.equal(parseNbdUnixUri('not a uri'), undefined);
});
