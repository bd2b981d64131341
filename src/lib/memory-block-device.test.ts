import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IoError, IoErrorCode } from './errors.ts';
import { blockSizeBytes, requestSizeMaxBytes, volumeSizeMaxBytes } from './limits.ts';
import { MemoryBlockDevice } from './memory-block-device.ts';
import { runBlockDeviceConformance } from './testing/block-device-conformance.ts';

runBlockDeviceConformance({
  name: 'MemoryBlockDevice',
  create: (size) => Promise.resolve(new MemoryBlockDevice(size)),
  seed: Number(process.env['SEED'] ?? Date.now() % 1_000_000),
});

const code = (c: IoErrorCode) => (e: unknown) => e instanceof IoError && e.code === c;

test('MemoryBlockDevice refuses sizes outside 0..volumeSizeMaxBytes', () => {
  assert.throws(() => new MemoryBlockDevice(-1), code(IoErrorCode.invalidArgument));
  assert.throws(() => new MemoryBlockDevice(1.5), code(IoErrorCode.invalidArgument));
  assert.throws(() => new MemoryBlockDevice(volumeSizeMaxBytes + 1), code(IoErrorCode.invalidArgument));
  // The largest volume costs nothing until written.
  const huge = new MemoryBlockDevice(volumeSizeMaxBytes);
  assert.equal(huge.allocatedBytes(), 0);
});

test('MemoryBlockDevice allocates blocks on write only and frees them on whole-block zeroes', async () => {
  const device = new MemoryBlockDevice(1 << 20);
  await device.write(100, new Uint8Array(10).fill(9));
  assert.equal(device.allocatedBytes(), blockSizeBytes);
  await device.write(blockSizeBytes - 1, new Uint8Array(2).fill(9));
  assert.equal(device.allocatedBytes(), 2 * blockSizeBytes);
  // A partial zero keeps the block; a whole-block zero or trim frees it.
  await device.writeZeroes(0, 200);
  assert.equal(device.allocatedBytes(), 2 * blockSizeBytes);
  await device.trim(0, blockSizeBytes);
  assert.equal(device.allocatedBytes(), blockSizeBytes);
  await device.writeZeroes(0, 3 * blockSizeBytes);
  assert.equal(device.allocatedBytes(), 0);
  assert.deepEqual(await device.blockStatus(0, 1 << 20), [{ offsetBytes: 0, lengthBytes: 1 << 20, allocated: false }]);
});

test('MemoryBlockDevice reports block status at byte precision inside blocks', async () => {
  const device = new MemoryBlockDevice(1 << 20);
  await device.write(2 * blockSizeBytes, new Uint8Array(1));
  assert.deepEqual(await device.blockStatus(blockSizeBytes + 10, 2 * blockSizeBytes), [
    { offsetBytes: blockSizeBytes + 10, lengthBytes: blockSizeBytes - 10, allocated: false },
    { offsetBytes: 2 * blockSizeBytes, lengthBytes: blockSizeBytes, allocated: true },
    { offsetBytes: 3 * blockSizeBytes, lengthBytes: 10, allocated: false },
  ]);
  assert.deepEqual(await device.blockStatus(2 * blockSizeBytes + 5, 10), [
    { offsetBytes: 2 * blockSizeBytes + 5, lengthBytes: 10, allocated: true },
  ]);
});

test('MemoryBlockDevice block status of a huge sparse range costs what is allocated', async () => {
  const device = new MemoryBlockDevice(volumeSizeMaxBytes);
  await device.write(volumeSizeMaxBytes - blockSizeBytes, new Uint8Array(blockSizeBytes).fill(1));
  const extents = await device.blockStatus(0, volumeSizeMaxBytes);
  assert.deepEqual(extents, [
    { offsetBytes: 0, lengthBytes: volumeSizeMaxBytes - blockSizeBytes, allocated: false },
    { offsetBytes: volumeSizeMaxBytes - blockSizeBytes, lengthBytes: blockSizeBytes, allocated: true },
  ]);
});

test('MemoryBlockDevice refuses reads and writes over the request limit before allocating', async () => {
  const device = new MemoryBlockDevice(volumeSizeMaxBytes);
  await assert.rejects(device.read(0, requestSizeMaxBytes + 1), code(IoErrorCode.invalidArgument));
  await assert.rejects(device.read(0, Number.MAX_SAFE_INTEGER), code(IoErrorCode.invalidArgument));
});

test('MemoryBlockDevice fails a write past its allocation limit with no_space and changes nothing', async () => {
  const device = new MemoryBlockDevice(1 << 20, { allocatedMaxBytes: 2 * blockSizeBytes });
  await device.write(0, new Uint8Array(blockSizeBytes).fill(1));
  await assert.rejects(device.write(blockSizeBytes - 1, new Uint8Array(blockSizeBytes + 2).fill(2)), code(IoErrorCode.noSpace));
  const after = await device.read(0, 3 * blockSizeBytes);
  assert.ok(after.subarray(0, blockSizeBytes).every((b) => b === 1));
  assert.ok(after.subarray(blockSizeBytes).every((b) => b === 0));
  // Rewriting allocated blocks needs no new space.
  await device.write(0, new Uint8Array(blockSizeBytes).fill(3));
  assert.equal(device.allocatedBytes(), blockSizeBytes);
});
