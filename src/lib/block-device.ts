// The one interface where frontends (NBD, later iSCSI) meet whatever serves a volume (the engine,
// a memory device in tests). Offsets and lengths are bytes; implementations check ranges.

export interface BlockDeviceCapabilities {
  readonly canTrim: boolean;
  readonly canZeroFast: boolean;
  readonly canFua: boolean;
  readonly canFlush: boolean;
  /** Whether flush on one connection covers writes made on every other (NBD multi-conn). */
  readonly canMultiConn: boolean;
  readonly canBlockStatus: boolean;
}

export interface WriteOptions {
  /** Force unit access: the write is durable when the promise resolves. */
  readonly fua?: boolean;
}

/** One run of the allocation map: `allocated` false means reads return zeros (a hole). */
export interface BlockExtent {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly allocated: boolean;
}

export interface BlockDevice {
  readonly capabilities: BlockDeviceCapabilities;
  sizeBytes(): number;
  read(offsetBytes: number, lengthBytes: number): Promise<Uint8Array>;
  write(offsetBytes: number, data: Uint8Array, options?: WriteOptions): Promise<void>;
  writeZeroes(offsetBytes: number, lengthBytes: number, options?: WriteOptions): Promise<void>;
  trim(offsetBytes: number, lengthBytes: number): Promise<void>;
  flush(): Promise<void>;
  /** Allocation map of a range, in order, covering it exactly. */
  blockStatus(offsetBytes: number, lengthBytes: number): Promise<BlockExtent[]>;
}
