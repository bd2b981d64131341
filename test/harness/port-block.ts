// A block of TCP ports private to this test process, for the node agents a test starts. Test files
// run two at a time; a block picked from the pid alone (pid % blocks) is shared by two files now
// and then, and then one file's agent takes a port the other's agent just freed (CI seed 721317 of
// volume-control-crash: a replica of the self-heal test's vol-heal took node-3's 127.0.0.1:29681
// while the crash test's agent restarted its replica there; that replica died with EADDRINUSE).
//
// Each block is claimed by listening on an abstract Unix socket named after it: the kernel allows
// one listener per name, and frees the name when the process ends, however it ends, so there is no
// lock file to go stale. Abstract names are per network namespace, as TCP ports are, so two test
// runs in different namespaces do not block each other needlessly.
import { createServer, type Server } from 'node:net';

export interface PortBlock {
  readonly first: number;
  readonly size: number;
}

/** 90 blocks of 80 from 25000: 25000-32199, below Linux's ephemeral range (32768+). */
const base = 25_000;
const blockSize = 80;
const blockCount = 90;

export interface ClaimedBlock {
  readonly block: PortBlock;
  /** Give the block back (the process's exit does too). */
  release(): void;
}

function listenAbstract(name: string): Promise<Server | undefined> {
  return new Promise((resolveClaim, reject) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolveClaim(undefined);
      else reject(error);
    });
    server.listen(`\0${name}`, () => {
      // Held until released or the process exits; it must not keep the process alive.
      server.unref();
      resolveClaim(server);
    });
  });
}

/**
 * The first block not held by anyone, from block `startIndex` on (wrapping). `namespace` names the
 * set of blocks (tests of this file use their own). Throws when all are held.
 */
export async function claimPortBlock(startIndex: number, namespace = 'shorthorn-test-ports'): Promise<ClaimedBlock> {
  for (let i = 0; i < blockCount; i++) {
    const index = (startIndex + i) % blockCount;
    const server = await listenAbstract(`${namespace}-${base}-${blockSize}-${index}`);
    if (server !== undefined) return { block: { first: base + index * blockSize, size: blockSize }, release: () => server.close() };
  }
  throw new Error(`all ${blockCount} port blocks ${base}-${base + blockCount * blockSize - 1} (${namespace}) are held by other processes`);
}

let claimed: Promise<ClaimedBlock> | undefined;

/**
 * This process's block, the same one on every call and held until the process ends: the first
 * free one from pid % 90 on.
 */
export async function portBlock(): Promise<PortBlock> {
  claimed ??= claimPortBlock(process.pid % blockCount);
  return (await claimed).block;
}
