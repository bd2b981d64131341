import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ownedInstanceKind } from './stray-processes.ts';

const scope = { launcher: ['/usr/bin/node', '--enable-source-maps', '/app/dist/src/bin/shorthorn.js'], diskPaths: ['/data/node-1/disk'], socketDir: '/data/node-1/sockets' };
const replica = (dir: string): string[] => [...scope.launcher, 'replica', '--dir', dir, '--size', '1048576', '--volume', 'v', '--listen', '127.0.0.1:10001'];
const engine = (socket: string): string[] => [...scope.launcher, 'engine', '--name', 'v', '--size', '1048576', '--nbd-socket', socket, '--replica', '127.0.0.1:10001'];

test('an unrecorded process is ours only with our launcher and a directory of ours', () => {
  assert.equal(ownedInstanceKind(replica('/data/node-1/disk/replicas/v-0000000a'), scope), 'replica');
  assert.equal(ownedInstanceKind(engine('/data/node-1/sockets/v-e-0.sock'), scope), 'engine');
  // Another node's disk or socket directory on the same host (tests run several agents per host).
  assert.equal(ownedInstanceKind(replica('/data/node-2/disk/replicas/v-0000000a'), scope), undefined);
  assert.equal(ownedInstanceKind(replica('/data/node-1/disk-2/replicas/v'), scope), undefined);
  assert.equal(ownedInstanceKind(replica('/data/node-1/disk/replicas/../../../node-2/disk/replicas/v'), scope), undefined);
  assert.equal(ownedInstanceKind(engine('/data/node-1/sockets-old/v.sock'), scope), undefined);
  // Another launcher (another build, another node binary), another command, no --dir.
  assert.equal(ownedInstanceKind(['/usr/bin/node', '/other/shorthorn.js', ...replica('/data/node-1/disk/replicas/v').slice(3)], scope), undefined);
  assert.equal(ownedInstanceKind([...scope.launcher, 'manager', '--store', 'embedded:/data/node-1/disk/replicas/x'], scope), undefined);
  assert.equal(ownedInstanceKind([...scope.launcher, 'replica', '--size', '1'], scope), undefined);
  assert.equal(ownedInstanceKind(scope.launcher, scope), undefined);
});
