import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isBackupError } from './backup-error.ts';
import { decodeBackupConfig, encodeBackupConfig, type BackupConfig } from './backup-config.ts';
import { decodeBackupVolumeConfig, encodeBackupVolumeConfig, type BackupVolumeConfig } from './backup-volume-config.ts';
import { formatBlockSize, parseBlockSize } from './block-size.ts';
import { goTime } from './go-json.ts';

const enc = (text: string): Uint8Array => new TextEncoder().encode(text);
const checksum = 'ab'.repeat(32);

// As Go's json.Marshal writes a longhorn/backupstore Volume (the `,string` fields double encoded).
const goVolumeCfg = `{"Name":"pvc-x","Size":"10737418240","Labels":{"app":"db"},"CreatedTime":"2024-05-01T10:00:00Z","LastBackupName":"backup-0123456789abcdef","LastBackupAt":"2024-05-02T00:00:00Z","BlockCount":"1234","BackingImageName":"\\"\\"","BackingImageChecksum":"\\"\\"","CompressionMethod":"\\"lz4\\"","StorageClassName":"\\"longhorn\\"","DataEngine":"\\"v1\\""}`;

test('volume.cfg: Go double-encoded and plain forms decode the same; we write the Go form', () => {
  const go = decodeBackupVolumeConfig(enc(goVolumeCfg));
  const plain = decodeBackupVolumeConfig(enc(goVolumeCfg.replace(/"\\"([^"\\]*)\\""/g, '"$1"')));
  const expected: BackupVolumeConfig = {
    name: 'pvc-x', sizeBytes: 10737418240, labels: { app: 'db' }, createdTime: '2024-05-01T10:00:00Z',
    lastBackupName: 'backup-0123456789abcdef', lastBackupAt: '2024-05-02T00:00:00Z', blockCount: 1234,
    backingImageName: '', backingImageChecksum: '', compressionMethod: 'lz4', storageClassName: 'longhorn', dataEngine: 'v1',
  };
  assert.deepEqual(go, expected);
  assert.deepEqual(plain, expected);
  assert.equal(new TextDecoder().decode(encodeBackupVolumeConfig(expected)), goVolumeCfg);
  // Longhorn's defaults for configs from before the fields existed: gzip and v1.
  const old = decodeBackupVolumeConfig(enc('{"Name":"vol-1","Size":"4194304","Labels":null,"BlockCount":"2"}'));
  assert.equal(old.compressionMethod, 'gzip');
  assert.equal(old.dataEngine, 'v1');
  // Go matches keys case-insensitively.
  assert.equal(decodeBackupVolumeConfig(enc('{"name":"vol-1","size":"5"}')).sizeBytes, 5);
});

test('volume.cfg: hostile values are refused naming the field', () => {
  const cases: [string, RegExp][] = [
    ['{"Name":"../x"}', /field Name/],
    ['{"Name":"v1","Size":"-5"}', /field Size/],
    ['{"Name":"v1","Size":"1e400"}', /field Size/],
    ['{"Name":"v1","Size":"99999999999999999999"}', /field Size/],
    ['{"Name":"v1","Size":{}}', /field Size/],
    ['{"Name":"v1","CompressionMethod":"\\"zstd\\""}', /unknown compression method "zstd"/],
    ['{"Name":"v1","LastBackupName":"a/b"}', /field LastBackupName/],
    ['{"Name":"v1","Labels":{"a":1}}', /field Labels.a/],
    ['{"Name":"v1","CompressionMethod":"\\"lz4"}', /CompressionMethod/],
    ['[]', /not a JSON object/],
    ['{"Name":"v1"', /not JSON/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => decodeBackupVolumeConfig(enc(text)), (e) => isBackupError(e, 'corrupt') && message.test(e.message), text);
  }
  assert.throws(() => decodeBackupVolumeConfig(new Uint8Array(2 << 20)), (e) => isBackupError(e, 'too_large'));
  assert.throws(() => decodeBackupVolumeConfig(new Uint8Array([0xff, 0xfe])), /UTF-8/);
});

const backup: BackupConfig = {
  name: 'backup-0123456789abcdef', volumeName: 'pvc-x', snapshotName: 'snap-1', snapshotCreatedAt: '2024-05-02T00:00:00Z',
  createdTime: '2024-05-02T00:01:00Z', sizeBytes: 2 * 2097152, labels: {}, parameters: { 'backup-mode': 'incremental', 'backup-block-size': '2Mi' },
  isIncremental: true, compressionMethod: 'lz4', newlyUploadedDataSize: 100, reUploadedDataSize: 0,
  blocks: [{ offsetBytes: 0, checksum }, { offsetBytes: 4194304, checksum: 'cd'.repeat(32) }], blockSizeBytes: 2097152,
};

test('backup cfg: round trip, Go field names and order, Blocks omitted when empty', () => {
  const text = new TextDecoder().decode(encodeBackupConfig(backup));
  assert.equal(
    text,
    `{"Name":"backup-0123456789abcdef","VolumeName":"pvc-x","SnapshotName":"snap-1","SnapshotCreatedAt":"2024-05-02T00:00:00Z","CreatedTime":"2024-05-02T00:01:00Z","Size":"4194304","Labels":{},"Parameters":{"backup-mode":"incremental","backup-block-size":"2Mi"},"IsIncremental":true,"CompressionMethod":"lz4","NewlyUploadedDataSize":"100","ReUploadedDataSize":"0","ProcessingBlocks":null,"Blocks":[{"Offset":0,"BlockChecksum":"${checksum}"},{"Offset":4194304,"BlockChecksum":"${'cd'.repeat(32)}"}],"SingleFile":{"FilePath":""}}`,
  );
  assert.deepEqual(decodeBackupConfig(enc(text)), backup);
  const placeholder = { ...backup, createdTime: '', blocks: [], parameters: {} };
  assert.ok(!new TextDecoder().decode(encodeBackupConfig(placeholder)).includes('"Blocks"'));
  assert.deepEqual(decodeBackupConfig(encodeBackupConfig(placeholder)).blocks, []);
  // Longhorn serialises ProcessingBlocks as {} sometimes; unsorted maps are sorted.
  const loose = text.replace('"ProcessingBlocks":null', '"ProcessingBlocks":{}').replace(/"Blocks":\[(\{[^}]*\}),(\{[^}]*\})\]/, '"Blocks":[$2,$1]');
  assert.deepEqual(decodeBackupConfig(enc(loose)).blocks, backup.blocks);
});

test('backup cfg: hostile block maps and parameters are refused naming the field', () => {
  const base = JSON.parse(new TextDecoder().decode(encodeBackupConfig(backup))) as Record<string, unknown>;
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ Blocks: [{ Offset: 1, BlockChecksum: checksum }] }, /Blocks\[0\].Offset/],
    [{ Blocks: [{ Offset: 0, BlockChecksum: '../../etc/passwd' }] }, /Blocks\[0\].BlockChecksum/],
    [{ Blocks: [{ Offset: 0, BlockChecksum: checksum.toUpperCase() }] }, /BlockChecksum/],
    [{ Blocks: [{ Offset: 2097152, BlockChecksum: checksum }, { Offset: 2097152, BlockChecksum: checksum }] }, /twice/],
    [{ Blocks: [{ Offset: -2097152, BlockChecksum: checksum }] }, /Offset/],
    [{ Blocks: 'x' }, /field Blocks/],
    [{ Parameters: { 'backup-block-size': '3' } }, /block size/],
    [{ Parameters: { 'backup-block-size': '1Ti' } }, /block size/],
    [{ VolumeName: '' }, /VolumeName/],
    [{ IsIncremental: 'yes' }, /IsIncremental/],
    [{ ShorthornBlocksChecksum: 'x' }, /ShorthornBlocksChecksum/],
  ];
  for (const [patch, message] of cases) {
    const bytes = enc(JSON.stringify({ ...base, ...patch }));
    assert.throws(() => decodeBackupConfig(bytes), (e) => isBackupError(e, 'corrupt') && message.test(e.message), JSON.stringify(patch));
  }
});

test('block size quantities and Go times', () => {
  assert.equal(parseBlockSize(undefined, 'x'), 2 << 20);
  assert.equal(parseBlockSize('0', 'x'), 2 << 20);
  assert.equal(parseBlockSize('16Mi', 'x'), 16 << 20);
  assert.equal(parseBlockSize('2097152', 'x'), 2 << 20);
  assert.equal(parseBlockSize('4096k', 'x'), 4096000);
  assert.throws(() => parseBlockSize('2MiB', 'x'));
  assert.equal(formatBlockSize(2 << 20), '2Mi');
  assert.equal(goTime(Date.UTC(2024, 4, 1, 10, 0, 0, 999)), '2024-05-01T10:00:00Z');
});
