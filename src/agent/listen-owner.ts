// Whether a process itself holds the listening socket of a TCP port: the node agent's readiness
// check for the daemons it starts. A connection to the port proves only that something listens
// there. The agent checks that a port is free before it spawns, but the daemon binds it a moment
// (on a loaded host, seconds) later; a program that takes the port in between (another agent's
// replica on a shared host, in CI session 5) answered the old connect probe, so a replica about to
// die with EADDRINUSE was reported running at an address where someone else served.
//
// Linux only, as the rest of the agent: /proc/PID/net/tcp{,6} lists the sockets of the process's
// network namespace with their inodes; /proc/PID/fd links a process's sockets as `socket:[inode]`.
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Open files looked at per process, at most: our daemons hold a few dozen. */
const fdScanMax = 65_536;

/** Inodes of the sockets in LISTEN state on `port` in a /proc/net/tcp or tcp6 table. Pure. */
export function listeningInodes(table: string, port: number): Set<string> {
  const inodes = new Set<string>();
  // Header, then: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 10) continue;
    const local = fields[1] ?? '';
    const localPort = Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
    // 0A is TCP_LISTEN.
    if (fields[3] === '0A' && localPort === port && fields[9] !== '0') inodes.add(fields[9] ?? '');
  }
  return inodes;
}

/** The inode of a /proc/PID/fd link to a socket (`socket:[12345]`), else undefined. Pure. */
export function socketInode(link: string): string | undefined {
  return /^socket:\[(\d+)\]$/.exec(link)?.[1];
}

async function readIfThere(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    // No such process, or no IPv6 in its namespace.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** True when process `pid` holds a socket listening on TCP `port` (IPv4 or IPv6); false if it is gone. */
export async function holdsListener(pid: number, port: number): Promise<boolean> {
  const inodes = new Set<string>();
  for (const table of ['tcp', 'tcp6']) {
    const text = await readIfThere(`/proc/${pid}/net/${table}`);
    if (text !== undefined) for (const inode of listeningInodes(text, port)) inodes.add(inode);
  }
  if (inodes.size === 0) return false;
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  for (const fd of fds.slice(0, fdScanMax)) {
    let link: string;
    try {
      link = await readlink(`/proc/${pid}/fd/${fd}`);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // closed meanwhile
      throw error;
    }
    const inode = socketInode(link);
    if (inode !== undefined && inodes.has(inode)) return true;
  }
  return false;
}
