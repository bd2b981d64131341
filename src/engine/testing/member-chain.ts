// A replica's chain as the start rules read it: no snapshots, an empty head, and the membership
// record {epoch, generation, members}; for the start, salvage and quorum choice tests.
import type { ChainInfo } from '../../format/replica-chain.ts';

export function memberChain(
  generation: number,
  members: readonly string[],
  options: { readonly epoch?: number; readonly instanceId?: string; readonly sizeBytes?: number } = {},
): ChainInfo {
  return {
    volumeName: 'v',
    sizeBytes: options.sizeBytes ?? 4096,
    blockSizeBytes: 4096,
    snapshots: [],
    headSizeBytes: 0,
    headParent: null,
    membership: { epoch: options.epoch ?? 3, generation, members: [...members] },
    ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId }),
  };
}
