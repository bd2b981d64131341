// Rebuild, receiving side: sealed layers arrive from the engine (which reads them from a healthy
// replica) into staging files that no metadata refers to, then one commit installs them as the
// head's ancestry (install-plan.ts). A crash before the commit leaves unreferenced files that the
// next open removes: the replica is simply rebuilt again. The head is never touched, so writes
// that reach this replica during the rebuild (new data, trims as zero ranges) always win over the
// older layers copied underneath them.
import { blockSizeBytes, requestSizeMaxBytes, snapshotCountMax } from '../lib/limits.ts';
import type { LayerExtent, ReceivedLayerSpec, StagedExtentSource } from './replica-store.ts';
import type { ReplicaFile, ReplicaFiles } from './replica-files.ts';
import { joinPath } from './replica-files.ts';
import { ReplicaError, ioFailure } from './replica-error.ts';
import { ExtentMap } from './extent-map.ts';
import { layerFileName, writeExtents } from './replica-dir.ts';
import type { LayerRange } from './layer-codec.ts';
import type { InstallLayer } from './install-plan.ts';
import { checkLabels, isValidName } from './replica-meta.ts';

/** What the receiver needs from its store. */
export interface ReceivingStore {
  sizeBytes(): number;
  layerExtents(layerName: string | null, range: LayerExtent): Promise<LayerExtent[]>;
  readLayer(layerName: string | null, offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  installReceived(layers: readonly InstallLayer[]): Promise<void>;
}

interface Staged {
  readonly spec: ReceivedLayerSpec;
  readonly dataFile: string | null;
  readonly file: ReplicaFile | null;
  /** Blocks received: 1 data, 2 zero. */
  readonly map: ExtentMap;
}

const dataMark = 1;
const zeroMark = 2;

export class LayerReceiver {
  private readonly store: ReceivingStore;
  private readonly files: ReplicaFiles;
  private readonly dir: string;
  private readonly allocateFileId: () => number;
  private staged: Staged[] = [];
  private installing = false;

  constructor(store: ReceivingStore, options: { files: ReplicaFiles; dir: string; allocateFileId: () => number }) {
    this.store = store;
    this.allocateFileId = options.allocateFileId;
    this.files = options.files;
    this.dir = options.dir;
  }

  /** Drop whatever is staged (a new rebuild, or a retry, starts here). */
  async reset(): Promise<void> {
    this.checkNotInstalling();
    const staged = this.staged;
    this.staged = [];
    for (const s of staged) {
      await s.file?.close();
      if (s.dataFile !== null) await this.files.remove(joinPath(this.dir, s.dataFile));
    }
  }

  /** Stage the next layer of the chain (oldest first). `reuse`: keep this replica's own layer of that name. */
  async stageLayer(spec: ReceivedLayerSpec): Promise<void> {
    this.checkNotInstalling();
    if (!isValidName(spec.name)) throw new ReplicaError('invalid_argument', `Invalid layer name ${JSON.stringify(spec.name).slice(0, 80)}`);
    if (spec.parent !== null && !isValidName(spec.parent)) throw new ReplicaError('invalid_argument', 'Invalid parent name');
    if (!Number.isSafeInteger(spec.createdMs) || spec.createdMs < 0) throw new ReplicaError('invalid_argument', `Invalid createdMs ${spec.createdMs}`);
    checkLabels(spec.labels, `layer ${spec.name}`);
    if (this.staged.length >= snapshotCountMax) throw new ReplicaError('too_many_snapshots', `${this.staged.length} layers already staged`);
    const previous = this.staged.at(-1)?.spec.name ?? null;
    if (spec.parent !== previous) {
      throw new ReplicaError('invalid_argument', `Layer ${spec.name} names parent ${String(spec.parent)}; the last staged layer is ${String(previous)}`);
    }
    if (this.staged.some((s) => s.spec.name === spec.name)) throw new ReplicaError('already_exists', `Layer ${spec.name} is already staged`);
    if (spec.reuse) {
      this.staged.push({ spec, dataFile: null, file: null, map: new ExtentMap() });
      return;
    }
    const dataFile = layerFileName(this.allocateFileId(), 'data');
    try {
      const file = await this.files.open(joinPath(this.dir, dataFile), 'create');
      this.staged.push({ spec, dataFile, file, map: new ExtentMap() });
      await file.truncate(this.store.sizeBytes());
    } catch (error) {
      throw ioFailure(`Cannot create staging file ${dataFile}`, error);
    }
  }

  /** Write received data (whole blocks) into a staged layer. */
  async write(layerName: string, offsetBytes: number, data: Uint8Array): Promise<void> {
    const staged = this.receiving(layerName, offsetBytes, data.length);
    try {
      await staged.file!.write(data, offsetBytes);
    } catch (error) {
      throw ioFailure(`Cannot write ${data.length} bytes at ${offsetBytes} of staged layer ${layerName}`, error);
    }
    staged.map.set(offsetBytes / blockSizeBytes, data.length / blockSizeBytes, dataMark);
  }

  /**
   * Record a range of a staged layer without its bytes crossing the network: 'zero' (the source
   * layer records zeros there) or 'local' (copy this replica's own layer of the same name there,
   * whose checksums matched the source's).
   */
  async extent(layerName: string, range: LayerExtent, source: StagedExtentSource): Promise<void> {
    const staged = this.receiving(layerName, range.offsetBytes, range.lengthBytes);
    const b0 = range.offsetBytes / blockSizeBytes;
    if (source === 'zero') {
      staged.map.set(b0, range.lengthBytes / blockSizeBytes, zeroMark);
      return;
    }
    for (const extent of await this.store.layerExtents(layerName, range)) {
      const start = extent.offsetBytes / blockSizeBytes;
      if (extent.kind === 'zero') {
        staged.map.set(start, extent.lengthBytes / blockSizeBytes, zeroMark);
        continue;
      }
      for (let done = 0; done < extent.lengthBytes; done += requestSizeMaxBytes) {
        const length = Math.min(requestSizeMaxBytes, extent.lengthBytes - done);
        await this.write(layerName, extent.offsetBytes + done, await this.store.readLayer(layerName, extent.offsetBytes + done, length));
      }
    }
  }

  /** Make every staged layer durable and install them all with one metadata commit. */
  async install(): Promise<void> {
    this.checkNotInstalling();
    this.installing = true;
    try {
      const layers: InstallLayer[] = [];
      for (const s of this.staged) {
        const { spec } = s;
        const base = { name: spec.name, parent: spec.parent, createdMs: spec.createdMs, kind: spec.kind, labels: spec.labels, removed: spec.removed };
        if (s.file === null || s.dataFile === null) {
          layers.push({ ...base, files: null });
          continue;
        }
        const ranges: LayerRange[] = [];
        s.map.forEach((startBlock, blockCount, value) => ranges.push({ startBlock, blockCount, kind: value === dataMark ? 'data' : 'zero' }));
        const extentFile = layerFileName(this.allocateFileId(), 'extents');
        try {
          await s.file.sync();
          await writeExtents({ files: this.files, dir: this.dir }, extentFile, ranges, blockSizeBytes);
        } catch (error) {
          throw ioFailure(`Cannot seal staged layer ${spec.name}`, error);
        }
        layers.push({ ...base, files: { dataFile: s.dataFile, extentFile, dataBlocks: s.map.blocksWithValue(dataMark) } });
      }
      await this.files.syncDir(this.dir);
      await this.store.installReceived(layers);
      // Installed: the files belong to the chain now.
      for (const s of this.staged) await s.file?.close();
      this.staged = [];
    } finally {
      this.installing = false;
    }
  }

  private receiving(layerName: string, offsetBytes: number, lengthBytes: number): Staged {
    this.checkNotInstalling();
    const staged = this.staged.find((s) => s.spec.name === layerName);
    if (staged === undefined) throw new ReplicaError('not_found', `Layer ${JSON.stringify(layerName).slice(0, 80)} is not staged`);
    if (staged.file === null) throw new ReplicaError('conflict', `Layer ${layerName} is staged for reuse; it receives nothing`);
    const aligned = offsetBytes % blockSizeBytes === 0 && lengthBytes % blockSizeBytes === 0 && lengthBytes > 0;
    if (!Number.isSafeInteger(offsetBytes) || !Number.isSafeInteger(lengthBytes) || offsetBytes < 0 || !aligned) {
      throw new ReplicaError('invalid_argument', `Staged ranges are whole blocks: offset ${offsetBytes}, length ${lengthBytes}`);
    }
    if (offsetBytes + lengthBytes > this.store.sizeBytes()) {
      throw new ReplicaError('out_of_range', `Range ${offsetBytes}+${lengthBytes} exceeds the volume size ${this.store.sizeBytes()}`);
    }
    return staged;
  }

  private checkNotInstalling(): void {
    if (this.installing) throw new ReplicaError('conflict', 'Staged layers are being installed');
  }
}
