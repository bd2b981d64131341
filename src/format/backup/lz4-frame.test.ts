// The LZ4 frame codec against the reference `lz4` tool (Debian's lz4): frames it writes with
// every option we may meet decode to the same bytes, and frames we write decode with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { SeededRandom } from '../../lib/random.ts';
import { isBackupError } from './backup-error.ts';
import { decodeLz4Frame, encodeLz4Frame } from './lz4-frame.ts';

const seed = Number(process.env['SEED'] ?? Date.now() % 1_000_000);

function lz4Tool(args: string[], input: Uint8Array): Uint8Array {
  const result = spawnSync('lz4', args, { input, maxBuffer: 64 << 20 });
  if (result.error !== undefined) throw result.error;
  assert.equal(result.status, 0, `lz4 ${args.join(' ')} failed: ${result.stderr.toString()}`);
  return new Uint8Array(result.stdout);
}

/** Data with every kind of content: zeros, runs, text-like repeats, noise, short overlaps. */
function sample(random: SeededRandom, size: number): Uint8Array {
  const data = new Uint8Array(size);
  let at = 0;
  while (at < size) {
    const length = Math.min(size - at, 1 + random.int(70_000));
    switch (random.int(5)) {
      case 0:
        break; // zeros
      case 1:
        data.fill(random.int(256), at, at + length);
        break;
      case 2:
        for (let i = 0; i < length; i++) data[at + i] = random.int(256);
        break;
      case 3: {
        const period = 1 + random.int(20);
        for (let i = 0; i < length; i++) data[at + i] = i < period ? random.int(256) : data[at + i - period]!;
        break;
      }
      default: {
        const words = ['backup ', 'shorthorn ', 'longhorn ', 'block ', '\n', 'volume '];
        for (let i = 0; i < length; ) for (const c of new TextEncoder().encode(words[random.int(words.length)])) if (i < length) data[at + i++] = c;
      }
    }
    at += length;
  }
  return data;
}

const sizes = [0, 1, 5, 12, 13, 100, 4096, 65_536, 65_537, 2 * 1024 * 1024, 4 * 1024 * 1024 + 7];

test(`lz4 frames we write decode with the lz4 tool and with us (seed ${seed})`, () => {
  const random = new SeededRandom(seed);
  for (const size of sizes) {
    const data = sample(random, size);
    const frame = encodeLz4Frame(data);
    assert.deepEqual(lz4Tool(['-d', '-c'], frame), data, `size ${size} seed ${seed}`);
    assert.deepEqual(decodeLz4Frame(frame, Math.max(size, 1)), data, `size ${size} seed ${seed}`);
  }
  // Compressible data compresses; the header is what pierrec/lz4 writes (FLG 0x64, BD 0x70).
  const zeros = encodeLz4Frame(new Uint8Array(2 * 1024 * 1024));
  assert.ok(zeros.length < 20_000, `2 MiB of zeros took ${zeros.length} bytes`);
  assert.deepEqual([...zeros.subarray(0, 6)], [0x04, 0x22, 0x4d, 0x18, 0x64, 0x70]);
});

test(`lz4 frames the lz4 tool writes decode, with every frame option (seed ${seed})`, () => {
  const random = new SeededRandom(seed + 1);
  const optionSets = [[], ['-BD'], ['-BX'], ['--content-size'], ['-B4'], ['-B4', '-BD', '-BX'], ['--no-frame-crc'], ['-9'], ['-1', '-B5']];
  for (const options of optionSets) {
    for (const size of [0, 1, 300, 200_000, 2 * 1024 * 1024]) {
      const data = sample(random, size);
      const frame = lz4Tool(['-c', '-z', ...options], data);
      assert.deepEqual(decodeLz4Frame(frame, Math.max(size, 1)), data, `lz4 ${options.join(' ')} size ${size} seed ${seed}`);
    }
  }
  // Two frames back to back (as `cat a.lz4 b.lz4`), with a skippable frame between them.
  const a = sample(random, 1000);
  const b = sample(random, 3000);
  const skippable = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
  const joined = new Uint8Array([...lz4Tool(['-c'], a), ...skippable, ...encodeLz4Frame(b)]);
  assert.deepEqual(decodeLz4Frame(joined, 4000), new Uint8Array([...a, ...b]));
});

test(`damaged lz4 frames give a corrupt error or the same data, never other data (seed ${seed})`, () => {
  const random = new SeededRandom(seed + 2);
  const data = sample(random, 50_000);
  const frame = encodeLz4Frame(data);
  for (let cut = 0; cut < frame.length; cut += cut < 64 ? 1 : 97) {
    assert.throws(() => decodeLz4Frame(frame.subarray(0, cut), data.length), (e) => isBackupError(e, 'corrupt'), `cut at ${cut}`);
  }
  for (let i = 0; i < 300; i++) {
    const damaged = frame.slice();
    const at = random.int(damaged.length);
    damaged[at] = damaged[at]! ^ (1 + random.int(255));
    let decoded: Uint8Array | undefined;
    try {
      decoded = decodeLz4Frame(damaged, data.length);
    } catch (error) {
      assert.ok(isBackupError(error, 'corrupt'), `byte ${at}: ${String(error)}`);
    }
    // A flip can leave the same data (an offset to an equal earlier copy); the content checksum
    // guarantees it is never different data.
    if (decoded !== undefined) assert.deepEqual(decoded, data, `a flipped byte at ${at} decoded to other data (seed ${seed})`);
  }
  // Output past the caller's limit is refused before it is written.
  assert.throws(() => decodeLz4Frame(frame, data.length - 1), (e) => isBackupError(e, 'corrupt'));
  assert.throws(() => decodeLz4Frame(new TextEncoder().encode('gzip? no'), 10), /bad magic number/);
});
