// Listener ownership: the /proc/net/tcp parsing, and on real processes that a port another process
// listens on does not count for a process that does not (what a connect probe cannot tell apart).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { holdsListener, listeningInodes, socketInode } from './listen-owner.ts';

const table = [
  '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 0100007F:7531 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0',
  '   1: 0100007F:7531 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 20 4 30 10 -1',
  '   2: 00000000:7532 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 333 1 0000000000000000 100 0 0 10 0',
  '   3: 0100007F:7533 00000000:0000 06 00000000:00000000 03:00000DE6 00000000     0        0 0 3 0000000000000000',
  '',
].join('\n');
const table6 = [
  '  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
  '   0: 00000000000000000000000001000000:7531 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 444 1 0000000000000000 100 0 0 10 0',
].join('\n');

test('LISTEN sockets by port from /proc/net/tcp and tcp6; connections and time-wait do not count', () => {
  assert.deepEqual([...listeningInodes(table, 0x7531)], ['111']);
  assert.deepEqual([...listeningInodes(table, 0x7532)], ['333']);
  assert.deepEqual([...listeningInodes(table, 0x7533)], [], 'TIME_WAIT (06), inode 0');
  assert.deepEqual([...listeningInodes(table, 0x9c40)], [], 'a remote port is not a local one');
  assert.deepEqual([...listeningInodes(table6, 0x7531)], ['444']);
  assert.deepEqual([...listeningInodes('', 1)], []);
  assert.equal(socketInode('socket:[12345]'), '12345');
  assert.equal(socketInode('pipe:[12345]'), undefined);
  assert.equal(socketInode('/tmp/socket:[1]'), undefined);
});

test('a process listening on a port holds it; another process does not, though the port answers', async () => {
  // The child listens on a port of its own; this process listens on another one.
  const child = spawn(process.execPath, ['-e', `
    const s = require('node:net').createServer();
    s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
    setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  const here = createServer();
  try {
    const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
    const childPort = Number(chunk.toString().trim());
    assert.ok(childPort > 0);
    here.listen(0, '127.0.0.1');
    await once(here, 'listening');
    const herePort = (here.address() as AddressInfo).port;
    const pid = child.pid!;
    assert.equal(await holdsListener(pid, childPort), true);
    assert.equal(await holdsListener(process.pid, herePort), true);
    assert.equal(await holdsListener(pid, herePort), false, 'a port someone else listens on');
    assert.equal(await holdsListener(process.pid, childPort), false);
    child.kill('SIGKILL');
    await once(child, 'exit');
    assert.equal(await holdsListener(pid, childPort), false, 'a process that is gone');
  } finally {
    child.kill('SIGKILL');
    here.close();
  }
});
