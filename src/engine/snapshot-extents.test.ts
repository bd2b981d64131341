// The snapshot map against a per-block model: random layers of data and zero extents, painted
// newest-wins; SEED=n replays a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../lib/random.ts';
import type { ChainInfo, LayerExtent, SnapshotInfo } from '../format/replica-chain.ts';
import { ancestryOf, clipResolved, overlay, resolveSnapshot, roundOutToBlocks, type LayerExtents, type ResolvedExtent } from './snapshot-extents.ts';

const seed = Number(process.env['SEED'] ?? Date.now() % 100000);
const block = 4096;

function randomLayer(random: SeededRandom, name: string, blocks: number): LayerExtents {
  const extents: LayerExtent[] = [];
  for (let at = random.int(4); at < blocks; ) {
    const length = 1 + random.int(6);
    const end = Math.min(blocks, at + length);
    extents.push({ offsetBytes: at * block, lengthBytes: (end - at) * block, kind: random.int(4) === 0 ? 'zero' : 'data' });
    at = end + random.int(8);
  }
  return { layer: name, extents };
}

/** Per block: which layer and kind a snapshot reads it from (undefined: a hole). */
function model(layersNewestFirst: readonly LayerExtents[], blocks: number): (string | undefined)[] {
  const out: (string | undefined)[] = new Array<string | undefined>(blocks).fill(undefined);
  for (let i = layersNewestFirst.length - 1; i >= 0; i--) {
    const l = layersNewestFirst[i]!;
    for (const e of l.extents) for (let b = e.offsetBytes / block; b < (e.offsetBytes + e.lengthBytes) / block; b++) out[b] = `${l.layer}:${e.kind ?? 'data'}`;
  }
  return out;
}

function flatten(map: readonly ResolvedExtent[], blocks: number): (string | undefined)[] {
  const out: (string | undefined)[] = new Array<string | undefined>(blocks).fill(undefined);
  let lastEnd = 0;
  for (const e of map) {
    assert.ok(e.offsetBytes >= lastEnd && e.lengthBytes > 0, `sorted, non-overlapping, non-empty (SEED=${seed})`);
    lastEnd = e.offsetBytes + e.lengthBytes;
    for (let b = e.offsetBytes / block; b < lastEnd / block; b++) out[b] = `${e.layer}:${e.kind}`;
  }
  return out;
}

test(`resolveSnapshot equals the per-block model (SEED=${seed})`, () => {
  const random = new SeededRandom(seed);
  for (let round = 0; round < 200; round++) {
    const blocks = 1 + random.int(200);
    const layers = Array.from({ length: random.int(6) }, (_, i) => randomLayer(random, `l${i}`, blocks));
    const map = resolveSnapshot(layers);
    assert.deepEqual(flatten(map, blocks), model(layers, blocks), `round ${round} (SEED=${seed})`);
    // Adjacent extents of the same layer and kind are merged.
    map.forEach((e, i) => {
      const next = map[i + 1];
      if (next !== undefined) assert.ok(!(next.offsetBytes === e.offsetBytes + e.lengthBytes && next.layer === e.layer && next.kind === e.kind), `merged (SEED=${seed})`);
    });
    // Clipping returns exactly the covered part of any window.
    const from = random.int(blocks);
    const length = 1 + random.int(blocks - from);
    const clipped = flatten(clipResolved(map, from * block, length * block), blocks);
    const expected = model(layers, blocks).map((v, b) => (b >= from && b < from + length ? v : undefined));
    assert.deepEqual(clipped, expected, `clip ${from}+${length} (SEED=${seed})`);
  }
});

test('overlay: top wins, base shows through the gaps', () => {
  const base: ResolvedExtent[] = [{ offsetBytes: 0, lengthBytes: 10 * block, layer: 'a', kind: 'data' }];
  const top: ResolvedExtent[] = [
    { offsetBytes: 2 * block, lengthBytes: block, layer: 'b', kind: 'zero' },
    { offsetBytes: 5 * block, lengthBytes: 7 * block, layer: 'b', kind: 'data' },
  ];
  assert.deepEqual(
    overlay(base, top).map((e) => [e.offsetBytes / block, e.lengthBytes / block, e.layer, e.kind]),
    [[0, 2, 'a', 'data'], [2, 1, 'b', 'zero'], [3, 2, 'a', 'data'], [5, 7, 'b', 'data']],
  );
});

test('roundOutToBlocks rounds out, merges, and stops at the volume size', () => {
  const mib = 1024 * 1024;
  assert.deepEqual(
    roundOutToBlocks(
      [
        { offsetBytes: 5 * mib, lengthBytes: 4096 },
        { offsetBytes: 0, lengthBytes: 4096 },
        { offsetBytes: 4 * mib - 4096, lengthBytes: 8192 },
        { offsetBytes: 9 * mib, lengthBytes: 0 },
        { offsetBytes: 11 * mib, lengthBytes: mib },
      ],
      2 * mib,
      11.5 * mib,
    ),
    [{ offsetBytes: 0, lengthBytes: 6 * mib }, { offsetBytes: 10 * mib, lengthBytes: 1.5 * mib }],
  );
});

test('ancestryOf follows parents from the snapshot down; unknown names give undefined', () => {
  const snap = (name: string, parent: string | null): SnapshotInfo => ({ name, parent, createdMs: 0, kind: 'user', labels: {}, removed: false, sizeBytes: 0, checksumState: 'none' });
  const chain: ChainInfo = {
    volumeName: 'v', sizeBytes: 0, blockSizeBytes: block, headSizeBytes: 0, headParent: 'c',
    snapshots: [snap('a', null), snap('b', 'a'), snap('x', 'a'), snap('c', 'x')],
    membership: { epoch: 0, generation: 0, members: [] },
  };
  assert.deepEqual(ancestryOf(chain, 'c')?.map((s) => s.name), ['c', 'x', 'a']);
  assert.deepEqual(ancestryOf(chain, 'b')?.map((s) => s.name), ['b', 'a']);
  assert.equal(ancestryOf(chain, 'nope'), undefined);
});
