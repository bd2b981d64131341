// One request and one reply of every operation, for the codec tests.
import type { ChainInfo } from '../../replica-chain.ts';
import type { ReplicaRequest } from '../replica-request.ts';
import type { ReplicaReplyBody } from '../replica-reply.ts';

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

export const sampleRequests: readonly ReplicaRequest[] = [
  { op: 'read', offsetBytes: 4096, lengthBytes: 8192 },
  { op: 'write', offsetBytes: 2 ** 40, data: bytes(19, 1) },
  { op: 'write_zeroes', offsetBytes: 512, lengthBytes: 4096 },
  { op: 'trim', offsetBytes: 0, lengthBytes: 1 << 20 },
  { op: 'flush' },
  { op: 'ping' },
  { op: 'open' },
  { op: 'set_membership', generation: 7, members: ['10.0.0.1:9502', '/run/shorthorn/r2.sock'] },
  { op: 'snapshot', options: { name: 'snap-1', kind: 'user', labels: { app: 'db', 'x.y/z': '' }, createdMs: 1_700_000_000_123 } },
  { op: 'snapshot', options: { name: 'sys.2', kind: 'system', labels: {} } },
  { op: 'chain_info' },
  { op: 'mark_removed', name: 'snap-1' },
  { op: 'purge' },
  { op: 'revert', name: 'snap_0' },
  { op: 'expand', sizeBytes: 64 * 1024 ** 4 },
  { op: 'checksums', snapshotName: 'snap-1', range: { offsetBytes: 0, lengthBytes: 8 << 20 } },
  { op: 'layer_extents', layerName: null, range: { offsetBytes: 4096, lengthBytes: 2 ** 44 } },
  { op: 'layer_extents', layerName: 'snap-1', range: { offsetBytes: 0, lengthBytes: 0 } },
  { op: 'read_layer', layerName: 'snap-1', offsetBytes: 8192, lengthBytes: 4096 },
  { op: 'read_layer', layerName: null, offsetBytes: 0, lengthBytes: 512 },
];

export const sampleChain: ChainInfo = {
  volumeName: 'vol-a',
  sizeBytes: 1 << 30,
  blockSizeBytes: 4096,
  snapshots: [
    {
      name: 's1',
      parent: null,
      createdMs: 1_700_000_000_000,
      kind: 'user',
      labels: { k: 'v' },
      removed: false,
      sizeBytes: 8192,
      checksumState: 'computed',
    },
    {
      name: 's2',
      parent: 's1',
      createdMs: 1_700_000_000_500,
      kind: 'system',
      labels: {},
      removed: true,
      sizeBytes: 0,
      checksumState: 'pending',
    },
  ],
  headSizeBytes: 4096,
  headParent: 's2',
  membership: { epoch: 3, generation: 9, members: ['a:1', 'b:2'] },
};

export const sampleReplies: readonly ReplicaReplyBody[] = [
  { op: 'read', data: bytes(8192, 2) },
  { op: 'read_layer', data: bytes(7, 3) },
  { op: 'write' },
  { op: 'write_zeroes' },
  { op: 'trim' },
  { op: 'flush' },
  { op: 'ping' },
  { op: 'set_membership' },
  { op: 'snapshot' },
  { op: 'mark_removed' },
  { op: 'revert' },
  { op: 'expand' },
  { op: 'open', chain: sampleChain },
  { op: 'chain_info', chain: { ...sampleChain, snapshots: [], headParent: null } },
  { op: 'purge', purged: ['s2'] },
  { op: 'checksums', checksums: [{ offsetBytes: 0, lengthBytes: 2 << 20, digest: 'ab'.repeat(32) }] },
  { op: 'layer_extents', extents: [{ offsetBytes: 0, lengthBytes: 4096 }], endOffsetBytes: 1 << 30 },
];
