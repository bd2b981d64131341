import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { runBlockDeviceConformance } from '../../src/lib/testing/block-device-conformance.ts';
import { SparseFileBlockDevice } from './sparse-file-block-device.ts';

const dir = await mkdtemp(join(tmpdir(), 'shorthorn-sparse-'));
after(() => rm(dir, { recursive: true, force: true }));
let n = 0;

runBlockDeviceConformance({
  name: 'SparseFileBlockDevice',
  create: (size) => SparseFileBlockDevice.open(join(dir, `dev-${n++}`), size),
  dispose: (device) => (device as SparseFileBlockDevice).close(),
  seed: Number(process.env['SEED'] ?? Date.now() % 1_000_000),
});
