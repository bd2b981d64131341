// An NBD server over a memory device (or a sparse file) in its own process, for tests whose
// clients must not share the test's event loop (nbdfuse + a mounted filesystem, sync fs calls).
//   node dist/test/harness/nbd-memory-server.js --socket S [--tcp 127.0.0.1:0] --size BYTES [--file PATH]
// Prints one line `nbd-ready {"endpoints":[...]}` when listening; SIGTERM stops it.
import { parseArgs } from 'node:util';
import { MemoryBlockDevice } from '../../src/lib/memory-block-device.ts';
import type { BlockDevice } from '../../src/lib/block-device.ts';
import { NbdServer, type NbdEndpoint } from '../../src/frontend/nbd-server.ts';
import { SparseFileBlockDevice } from './sparse-file-block-device.ts';

const { values } = parseArgs({
  options: {
    socket: { type: 'string' },
    tcp: { type: 'string' },
    size: { type: 'string', default: String(64 * 1024 * 1024) },
    file: { type: 'string' },
    export: { type: 'string', default: '' },
    verbose: { type: 'boolean', default: false },
  },
});

const sizeBytes = Number(values.size);
let device: BlockDevice;
if (values.file !== undefined) device = await SparseFileBlockDevice.open(values.file, sizeBytes);
else device = new MemoryBlockDevice(sizeBytes);

const server = new NbdServer(device, {
  exportName: values.export,
  log: (level, message) => {
    if (values.verbose || level === 'warn') process.stderr.write(`${level}: ${message}\n`);
  },
});
const endpoints: NbdEndpoint[] = [];
if (values.socket !== undefined) endpoints.push(await server.listen({ kind: 'unix', path: values.socket }));
if (values.tcp !== undefined) {
  const at = values.tcp.lastIndexOf(':');
  endpoints.push(await server.listen({ kind: 'tcp', host: values.tcp.slice(0, at), port: Number(values.tcp.slice(at + 1)) }));
}
process.stdout.write(`nbd-ready ${JSON.stringify({ endpoints })}\n`);

process.once('SIGTERM', () => {
  void server.close().then(async () => {
    if (device instanceof SparseFileBlockDevice) await device.close();
    process.exit(0);
  });
});
