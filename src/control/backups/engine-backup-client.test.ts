// The backup client over a real HTTP server standing in for an engine that answers badly: the
// shared control transport bounds and checks every answer, and its errors come out in this
// client's codes (a 404 status is "the engine does not know the backup").
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EngineBackupError, httpEngineBackupApi } from './engine-backup-client.ts';

let server: Server;
let address = '';
const answers = new Map<string, { status: number; body: string; claimBytes?: number }>();

before(async () => {
  server = createServer((request, response) => {
    const answer = answers.get(`${request.method ?? ''} ${request.url ?? ''}`) ?? { status: 500, body: '{"message":"unexpected"}' };
    response.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': answer.claimBytes ?? Buffer.byteLength(answer.body) });
    // A claimed length beyond the body: the client must refuse on the header, before reading.
    if (answer.claimBytes === undefined) response.end(answer.body);
    else response.write('{'); // and never more: the client must not wait for the rest
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

const codeOf = (code: string) => (error: unknown) => error instanceof EngineBackupError && error.code === code;

test('a backup the engine does not know is undefined; a known one is parsed', async () => {
  answers.set('GET /v1/backups/b1', { status: 404, body: '{"code":"not_found","message":"no backup b1"}' });
  assert.equal(await httpEngineBackupApi.backupStatus(address, 'b1'), undefined);
  answers.set('GET /v1/backups/b2', { status: 200, body: '{"backupName":"b2","state":"completed","progressPercent":100}' });
  assert.deepEqual(await httpEngineBackupApi.backupStatus(address, 'b2'), { backupName: 'b2', state: 'completed', progressPercent: 100 });
});

test('refusals, nonsense and oversized answers are typed errors', async () => {
  answers.set('POST /v1/backups', { status: 409, body: '{"code":"conflict","message":"backup b1 is running"}' });
  await assert.rejects(httpEngineBackupApi.startBackup(address, { backupName: 'b1', snapshotName: 's1', targetURL: 'vfs:///x' }), (e) => codeOf('refused')(e) && /backup b1 is running/.test((e as Error).message));
  answers.set('GET /v1/restore', { status: 200, body: 'not json' });
  await assert.rejects(httpEngineBackupApi.restoreStatus(address), codeOf('bad_response'));
  answers.set('GET /v1/restore', { status: 200, body: '{}', claimBytes: 1024 ** 3 });
  await assert.rejects(httpEngineBackupApi.restoreStatus(address), codeOf('bad_response'));
  answers.set('GET /v1/restore', { status: 200, body: '{"state":"sleeping","progressPercent":0}' });
  await assert.rejects(httpEngineBackupApi.restoreStatus(address), codeOf('bad_response'));
  answers.set('GET /v1/restore', { status: 200, body: '{"state":"completed","progressPercent":100,"backupName":"b2","mode":"sideways"}' });
  await assert.rejects(httpEngineBackupApi.restoreStatus(address), codeOf('bad_response'));
  answers.set('GET /v1/restore', { status: 200, body: '{"state":"completed","progressPercent":100,"backupName":"b2","fromBackupName":"b1","mode":"incremental","blocksFetched":3,"blocksZeroed":1}' });
  assert.deepEqual(await httpEngineBackupApi.restoreStatus(address), { state: 'completed', progressPercent: 100, backupName: 'b2', fromBackupName: 'b1', mode: 'incremental', blocksFetched: 3, blocksZeroed: 1 });
});

test('an engine that is not there is unreachable', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const gone = `127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  await assert.rejects(httpEngineBackupApi.restoreStatus(gone), codeOf('unreachable'));
});
