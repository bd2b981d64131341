// The BlockDevice conformance suite: every implementation (memory, sparse file, the engine) runs
// it. A seeded model test drives random reads, writes, zeroes and trims against a flat array and
// compares every read; SEED=<n> replays a failure.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BlockDevice } from '../block-device.ts';
import { IoError } from '../errors.ts';
import { SeededRandom } from '../random.ts';

export interface BlockDeviceConformanceOptions {
  /** Name shown in test titles. */
  readonly name: string;
  /** A fresh, all-zero device of exactly `sizeBytes`. */
  readonly create: (sizeBytes: number) => Promise<BlockDevice>;
  readonly dispose?: (device: BlockDevice) => Promise<void>;
  /** Seed for the model test: tests pass SEED from the environment, else a fresh one. */
  readonly seed: number;
  /**
   * Sizes this device accepts are multiples of this (the engine and replicas: 4096). The model
   * test uses an odd size (a 512-byte tail) only where the granularity allows it.
   */
  readonly sizeGranularityBytes?: number;
}

export function runBlockDeviceConformance(options: BlockDeviceConformanceOptions): void {
  const withDevice = async (sizeBytes: number, body: (device: BlockDevice) => Promise<void>): Promise<void> => {
    const device = await options.create(sizeBytes);
    try {
      await body(device);
    } finally {
      await options.dispose?.(device);
    }
  };

  test(`${options.name}: a fresh device reads as zeros and reports its size`, () =>
    withDevice(1 << 20, async (device) => {
      assert.equal(device.sizeBytes(), 1 << 20);
      const data = await device.read(12345, 70000);
      assert.equal(data.length, 70000);
      assert.ok(data.every((b) => b === 0));
    }));

  test(`${options.name}: unaligned writes read back, neighbours untouched`, () =>
    withDevice(1 << 20, async (device) => {
      const data = new SeededRandom(5).fill(new Uint8Array(5000));
      await device.write(4095, data);
      assert.deepEqual(await device.read(4095, 5000), data);
      const around = await device.read(0, 12000);
      assert.equal(around[4094], 0);
      assert.equal(around[4095 + 5000], 0);
    }));

  test(`${options.name}: ranges past the end are refused with a typed error`, () =>
    withDevice(1 << 20, async (device) => {
      const size = device.sizeBytes();
      const refused = (e: unknown): boolean => e instanceof IoError && typeof e.code === 'string';
      await assert.rejects(device.read(size - 10, 11), refused);
      await assert.rejects(device.write(size, new Uint8Array(1)), refused);
      await assert.rejects(device.writeZeroes(size - 1, 2), refused);
      await assert.rejects(device.trim(size + 4096, 4096), refused);
      await assert.rejects(device.read(-1, 1), refused);
      // The last byte itself is fine.
      await device.write(size - 1, new Uint8Array([7]));
      assert.deepEqual(await device.read(size - 1, 1), new Uint8Array([7]));
    }));

  test(`${options.name}: block status covers the range exactly and holes read as zeros`, () =>
    withDevice(1 << 20, async (device) => {
      await device.write(8192, new Uint8Array(4096).fill(1));
      await device.write(65536 + 100, new Uint8Array(10).fill(2));
      const extents = await device.blockStatus(1000, 200_000);
      let at = 1000;
      for (const e of extents) {
        assert.equal(e.offsetBytes, at);
        assert.ok(e.lengthBytes > 0);
        if (!e.allocated) {
          const zeros = await device.read(e.offsetBytes, e.lengthBytes);
          assert.ok(zeros.every((b) => b === 0), `hole at ${e.offsetBytes} reads zeros`);
        }
        at += e.lengthBytes;
      }
      assert.equal(at, 201_000);
      const covers = (offset: number): boolean =>
        extents.some((e) => e.allocated && e.offsetBytes <= offset && offset < e.offsetBytes + e.lengthBytes);
      assert.ok(covers(8192) && covers(65536 + 105), 'written data is reported allocated');
    }));

  test(`${options.name}: seeded model test of reads, writes, zeroes and trims`, async () => {
    const seed = options.seed;
    const random = new SeededRandom(seed);
    const granularity = options.sizeGranularityBytes ?? 512;
    const sizeBytes = 256 * 1024 + Math.max(512, granularity);
    const model = new Uint8Array(sizeBytes);
    try {
      await withDevice(sizeBytes, async (device) => {
        for (let i = 0; i < 400; i++) {
          const offset = random.int(sizeBytes);
          const length = Math.min(random.int(random.next() < 0.2 ? 40_000 : 9000) + 1, sizeBytes - offset);
          const op = random.int(10);
          if (op < 4) {
            const data = random.fill(new Uint8Array(length));
            await device.write(offset, data, { fua: random.next() < 0.1 });
            model.set(data, offset);
          } else if (op < 5) {
            await device.writeZeroes(offset, length);
            model.fill(0, offset, offset + length);
          } else if (op < 6 && device.capabilities.canTrim) {
            // After a trim the contents are unspecified; overwrite so the model stays exact.
            await device.trim(offset, length);
            const data = random.fill(new Uint8Array(length));
            await device.write(offset, data);
            model.set(data, offset);
          } else if (op < 7) {
            await device.flush();
          } else {
            const got = await device.read(offset, length);
            assert.deepEqual(got, model.subarray(offset, offset + length), `read ${length} at ${offset}`);
          }
        }
        assert.deepEqual(await device.read(0, sizeBytes), model);
      });
    } catch (error) {
      throw new Error(`${options.name} model test failed; replay with SEED=${seed}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  });
}
