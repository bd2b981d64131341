// What the engine status shows of the comparison and repair of its replicas after a start
// (start-repair.ts, DESIGN §2.8 rule 7).

export interface StartRepairProgress {
  /**
   * comparing: reads go to the source only while the heads are compared and repaired; done:
   * every rw replica equals the source, reads use them all; failed: reads stay on the source
   * (`error` says why); not_supported: a replica link cannot report its head's checksums, reads
   * stay on the source.
   */
  state: 'comparing' | 'done' | 'failed' | 'not_supported';
  /** The replica whose data wins (the read source). */
  source: string | null;
  /** The replicas compared with it. */
  replicas: string[];
  /** How far the pass over the volume has gone (bytes of volume address space), of sizeBytes. */
  scannedBytes: number;
  sizeBytes: number;
  /** Chunks (checksumChunkSizeBytes) some head holds anything in, compared; those that differed and were rewritten. */
  chunksCompared: number;
  chunksRepaired: number;
  /** Bytes rewritten from the source to every replica. */
  bytesRepaired: number;
  /** Passes started: one more each time a replica failed and the pass began again without it. */
  passes: number;
  startedMs: number;
  finishedMs: number | null;
  error: string | null;
}
