// Compatibility with Longhorn's backup store, judged by code written here from the layout notes
// (DESIGN §2.6, longhorn-dataplane §7), not by our codecs: a store laid out by hand as Longhorn
// writes it (Go's double-encoded `,string` fields and the plain form, lz4 frames made by the
// reference `lz4` tool, gzip streams from zlib) restores bit for bit; and what Shorthorn writes
// is read back by an independent reader of that documentation.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { SeededRandom } from '../../src/lib/random.ts';
import { MemoryBlockDevice } from '../../src/lib/memory-block-device.ts';
import { BackupStore } from '../../src/backup/backup-store.ts';
import { DirectoryTarget } from '../../src/backup/directory-target.ts';
import { createBackup } from '../../src/backup/create-backup.ts';
import { restoreBackup } from '../../src/backup/restore-backup.ts';
import { verifyBackup } from '../../src/backup/verify-backup.ts';
import { MemorySnapshotVolume } from '../../src/backup/testing/memory-snapshot-volume.ts';

const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);
const MiB2 = 2 * 1024 * 1024;
const roots: string[] = [];
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

const sha512hex = (data: Uint8Array | string): string => createHash('sha512').update(data).digest('hex');
/** backupstore/volumes/<h0-2>/<h2-4>/<volume>, h = hex(SHA-512(name)). */
const volumeDir = (root: string, name: string): string => {
  const h = sha512hex(name);
  return join(root, 'backupstore', 'volumes', h.slice(0, 2), h.slice(2, 4), name);
};
const lz4Tool = (args: string[], input: Uint8Array): Uint8Array => {
  const result = spawnSync('lz4', args, { input, maxBuffer: 64 << 20 });
  assert.equal(result.status, 0, `lz4 ${args.join(' ')}: ${result.stderr?.toString()}`);
  return new Uint8Array(result.stdout);
};
const put = (path: string, data: Uint8Array | string): void => {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, data);
};

function randomBlock(random: SeededRandom): Uint8Array {
  const block = new Uint8Array(MiB2);
  const word = new TextEncoder().encode(`longhorn-${random.int(1000)} `);
  for (let i = 0; i < MiB2; i++) block[i] = i % 3 === 0 ? random.int(256) : word[i % word.length]!;
  return block;
}

/** Lay out a backup volume as Longhorn does; returns the image each backup holds. */
function writeLonghornStore(root: string, volume: string, options: { compression: 'lz4' | 'gzip'; goEncoding: boolean; random: SeededRandom }): Map<string, Uint8Array> {
  const dir = volumeDir(root, volume);
  const blocks = 6;
  const image = new Uint8Array(blocks * MiB2);
  const images = new Map<string, Uint8Array>();
  const compress = (data: Uint8Array): Uint8Array => (options.compression === 'lz4' ? lz4Tool(['-c', '-z'], data) : new Uint8Array(gzipSync(data)));
  const tagged = (value: string): string => (options.goEncoding ? JSON.stringify(value) : value);
  let mapped: { Offset: number; BlockChecksum: string }[] = [];
  for (const [n, changed] of [[1, [0, 1, 3, 4]], [2, [1, 5]]] as const) {
    for (const b of changed) {
      const block = randomBlock(options.random);
      image.set(block, b * MiB2);
      const checksum = sha512hex(block).slice(0, 64);
      put(join(dir, 'blocks', checksum.slice(0, 2), checksum.slice(2, 4), `${checksum}.blk`), compress(block));
      mapped = mapped.filter((m) => m.Offset !== b * MiB2).concat({ Offset: b * MiB2, BlockChecksum: checksum });
    }
    mapped.sort((x, y) => x.Offset - y.Offset);
    const name = `backup-00000000000000${n}${n}`;
    images.set(name, image.slice());
    put(join(dir, 'backups', `backup_${name}.cfg`), JSON.stringify({
      Name: name, VolumeName: volume, SnapshotName: `snap-${n}`, SnapshotCreatedAt: `2024-05-0${n}T00:00:00Z`, CreatedTime: `2024-05-0${n}T00:01:00Z`,
      Size: String(mapped.length * MiB2), Labels: null, Parameters: n === 1 ? null : { 'backup-mode': 'incremental', 'backup-block-size': '2Mi' },
      IsIncremental: n > 1, CompressionMethod: options.compression, NewlyUploadedDataSize: '1000', ReUploadedDataSize: '0',
      ProcessingBlocks: n === 1 ? null : {}, Blocks: mapped, SingleFile: { FilePath: '' },
    }));
  }
  put(join(dir, 'volume.cfg'), JSON.stringify({
    Name: volume, Size: String(blocks * MiB2), Labels: { 'longhorn.io/x': 'y' }, CreatedTime: '2024-05-01T00:00:00Z',
    LastBackupName: 'backup-0000000000000022', LastBackupAt: '2024-05-02T00:00:00Z', BlockCount: '6',
    BackingImageName: tagged(''), BackingImageChecksum: tagged(''), CompressionMethod: tagged(options.compression),
    StorageClassName: tagged('longhorn'), DataEngine: tagged('v1'),
  }));
  put(join(dir, 'locks', 'lock-0123456789abcdef.lck'), '{"Name":"lock-0123456789abcdef","Type":1,"Acquired":false}');
  return images;
}

for (const compression of ['lz4', 'gzip'] as const) {
  for (const goEncoding of [true, false]) {
    test(`a Longhorn store (${compression} blocks, ${goEncoding ? 'Go double-encoded' : 'plain'} volume.cfg) restores bit for bit (seed ${seed})`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'shorthorn-lhcompat-'));
      roots.push(root);
      const images = writeLonghornStore(join(root, 'store'), 'pvc-compat', { compression, goEncoding, random: new SeededRandom(seed) });
      // The stale lock is older than Longhorn's 150 s expiry: make its file old.
      const store = new BackupStore(new DirectoryTarget(join(root, 'store')), { clock: { nowMs: () => Date.now() + 200_000, monotonicMs: () => performance.now() } });
      assert.deepEqual(await store.listVolumes(), ['pvc-compat']);
      const paths = await store.paths('pvc-compat');
      assert.equal((await store.loadVolumeConfig(paths)).compressionMethod, compression);
      for (const [name, expected] of images) {
        const device = new MemoryBlockDevice(expected.length);
        await device.write(0, new Uint8Array(expected.length).fill(0x5a));
        await restoreBackup(store, device, { volumeName: 'pvc-compat', backupName: name, lock: { settleMs: 20 } });
        assert.ok(Buffer.compare(await device.read(0, expected.length), expected) === 0, `${name} restores bit for bit (seed ${seed})`);
        assert.equal((await verifyBackup(store, { volumeName: 'pvc-compat', backupName: name })).ok, true);
      }
      // A Shorthorn backup on top of the Longhorn volume keeps its compression and extends it.
      const volume = new MemorySnapshotVolume(6 * MiB2);
      volume.write(0, randomBlock(new SeededRandom(seed + 1)));
      volume.snapshot('snap-3');
      const result = await createBackup(store, volume.reader('snap-3'), { volumeName: 'pvc-compat', compression: 'none', lock: { settleMs: 20 } });
      assert.equal(result.compression, compression);
      assert.equal(result.mode, 'full', 'snap-2 is not in this volume: full');
    });
  }
}

/** An independent reader of the documentation: parse, decompress and hash, rebuild the image. */
function readAsDocumented(root: string, volume: string, backupName: string): Uint8Array {
  const dir = volumeDir(root, volume);
  const cfg = JSON.parse(readFileSync(join(dir, 'volume.cfg'), 'utf8')) as Record<string, unknown>;
  // Go's ,string fields must be a JSON string holding a quoted string, or Longhorn fails to load.
  for (const field of ['BackingImageName', 'BackingImageChecksum', 'CompressionMethod', 'StorageClassName', 'DataEngine']) {
    assert.equal(typeof cfg[field], 'string', field);
    assert.equal(typeof JSON.parse(cfg[field] as string), 'string', `${field} is double encoded`);
  }
  assert.match(cfg['Size'] as string, /^[0-9]+$/);
  assert.match(cfg['BlockCount'] as string, /^[0-9]+$/);
  assert.equal(cfg['Name'], volume);
  const size = Number(cfg['Size']);
  const method = JSON.parse(cfg['CompressionMethod'] as string) as string;
  const backup = JSON.parse(readFileSync(join(dir, 'backups', `backup_${backupName}.cfg`), 'utf8')) as Record<string, unknown>;
  for (const field of ['Name', 'VolumeName', 'SnapshotName', 'SnapshotCreatedAt', 'CreatedTime', 'CompressionMethod']) assert.equal(typeof backup[field], 'string', field);
  assert.match(backup['CreatedTime'] as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(backup['Size'] as string, /^[0-9]+$/);
  assert.equal(backup['CompressionMethod'], method);
  assert.equal(typeof backup['IsIncremental'], 'boolean');
  assert.equal((backup['Parameters'] as Record<string, string>)['backup-block-size'], '2Mi');
  const blocks = (backup['Blocks'] ?? []) as { Offset: number; BlockChecksum: string }[];
  assert.equal(Number(backup['Size']), blocks.length * MiB2);
  const image = new Uint8Array(size);
  let previous = -1;
  for (const { Offset, BlockChecksum } of blocks) {
    assert.equal(typeof Offset, 'number');
    assert.ok(Offset > previous, 'sorted by offset');
    previous = Offset;
    const stored = new Uint8Array(readFileSync(join(dir, 'blocks', BlockChecksum.slice(0, 2), BlockChecksum.slice(2, 4), `${BlockChecksum}.blk`)));
    const data = method === 'lz4' ? lz4Tool(['-d', '-c'], stored) : method === 'gzip' ? new Uint8Array(gunzipSync(stored)) : stored;
    assert.equal(data.length, MiB2);
    assert.equal(sha512hex(data).slice(0, 64), BlockChecksum);
    image.set(data, Offset);
  }
  return image;
}

for (const compression of ['lz4', 'gzip', 'none'] as const) {
  test(`what Shorthorn writes (${compression}) reads back under the Longhorn documentation (seed ${seed})`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'shorthorn-lhcompat-'));
    roots.push(root);
    const store = new BackupStore(new DirectoryTarget(root));
    const random = new SeededRandom(seed + 2);
    const volume = new MemorySnapshotVolume(8 * MiB2);
    for (const b of [0, 2, 3, 7]) volume.write(b * MiB2, randomBlock(random));
    volume.snapshot('s1');
    await createBackup(store, volume.reader('s1'), { volumeName: 'pvc-out', backupName: 'backup-a', compression, lock: { settleMs: 20 } });
    volume.write(3 * MiB2, randomBlock(random));
    volume.write(7 * MiB2, new Uint8Array(MiB2));
    volume.snapshot('s2');
    await createBackup(store, volume.reader('s2'), { volumeName: 'pvc-out', backupName: 'backup-b', lock: { settleMs: 20 } });
    for (const [name, snapshot] of [['backup-a', 's1'], ['backup-b', 's2']] as const) {
      assert.ok(Buffer.compare(readAsDocumented(root, 'pvc-out', name), volume.image(snapshot)) === 0, `${name} as documented (seed ${seed})`);
    }
    // Nothing but the documented layout is left on the target (no temp files, no locks).
    const files: string[] = [];
    const walk = (at: string): void => {
      for (const entry of readdirSync(at, { withFileTypes: true })) (entry.isDirectory() ? walk : (p: string) => files.push(p))(join(at, entry.name));
    };
    walk(root);
    for (const file of files) assert.match(file.slice(root.length + 1), /^backupstore\/volumes\/[0-9a-f]{2}\/[0-9a-f]{2}\/pvc-out\/(volume\.cfg|backups\/backup_[a-z0-9-]+\.cfg|blocks\/[0-9a-f]{2}\/[0-9a-f]{2}\/[0-9a-f]{64}\.blk)$/);
  });
}
