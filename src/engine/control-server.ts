// The engine's control API, for the node agent and the manager: JSON over HTTP on a TCP port or a
// unix socket. Small on purpose: status, replicas in and out, snapshots, expansion.
//
//   GET    /v1/status                      → EngineStatus + snapshotLimits (the limits in force)
//   PUT    /v1/snapshot-limits {maxCount, maxSizeBytes} → change the snapshot limits live (0: no limit)
//   POST   /v1/replicas   {address}        → add a replica as wo
//   DELETE /v1/replicas?address=ADDR       → take a replica out of the write set
//   POST   /v1/snapshots  {name, kind?, labels?} → snapshot under the write barrier
//   POST   /v1/expand     {sizeBytes}      → online expansion
//   GET    /v1/snapshots                   → the snapshot tree (read source's chain)
//   DELETE /v1/snapshots/NAME              → mark removed on every replica
//   POST   /v1/snapshots/purge             → purge removed snapshots on every replica
//   POST   /v1/snapshots/revert {name}     → revert (refused while NBD clients are connected)
//   POST   /v1/rebuilds {address, bandwidthBytesPerSecond?} → add a replica and rebuild it (202)
//   GET    /v1/rebuilds                    → rebuild progress
//   POST   /v1/scrub {markErr?, verifyData?, bandwidthBytesPerSecond?} → compare sealed layers across replicas, and each replica's data with its own checksums
//   POST   /v1/backups {backupName, snapshotName, targetURL, …} → back up a snapshot (202)
//   GET    /v1/backups, /v1/backups/NAME   → backup jobs and their progress
//   POST   /v1/restore {targetURL, backupVolumeName, backupName, …} → restore into this volume (202)
//   GET    /v1/restore                     → restore progress
//
// Errors are {code, message} with 400 for bad input, 404 for unknown routes, 409 when the
// engine's state forbids the action, 503 when replicas failed.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { ShorthornError, toError } from '../lib/errors.ts';
import { labelCountMax, labelLengthMax, nameLengthMax, requestBodyDrainMaxBytes } from '../lib/limits.ts';
import { drainBody } from '../lib/drain-body.ts';
import type { Clock } from '../lib/clock.ts';
import type { Engine } from './engine.ts';
import { isChainLink, type ReplicaLink } from './replica-link.ts';
import { rebuildReplica } from './rebuild.ts';
import type { BackupJobs } from './backup-jobs.ts';
import { parseBackupRequest, parseRestoreRequest } from './backup-requests.ts';
import { isValidBackupStoreName } from '../format/backup/backup-names.ts';
import { deleteSnapshot, listSnapshots, purgeSnapshots, revertVolume, scrubVolume } from './volume-chain.ts';
import { checkSnapshotLimits, noSnapshotLimits, parseSnapshotLimits, type SnapshotLimits } from './snapshot-limits.ts';

const bodySizeMaxBytes = 64 * 1024;

export class ControlApiError extends ShorthornError<'bad_request' | 'not_found' | 'conflict' | 'too_large'> {}

export interface ControlServerOptions {
  readonly engine: Engine;
  /** Opens a link to a replica address given in an add request. */
  readonly connect: (address: string) => Promise<ReplicaLink>;
  readonly log: (message: string) => void;
  /** NBD clients connected now (revert is refused while there are any). */
  readonly clientCount?: () => number;
  readonly clock?: Clock;
  /** Backup and restore jobs (backup-jobs.ts); without it those routes answer 404. */
  readonly backups?: BackupJobs;
  /**
   * Longhorn's snapshotMaxCount/snapshotMaxSize at start (the engine's flags), checked on POST
   * /v1/snapshots (snapshot-limits.ts); PUT /v1/snapshot-limits replaces them for this process's life.
   */
  readonly snapshotLimits?: SnapshotLimits;
}

const snapshotNamePattern = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
let rebuildCounter = 0;

/** What the control API changes in a running engine (the limits are the server's, not the Engine's). */
interface ControlState {
  snapshotLimits: SnapshotLimits;
}

export function createControlServer(options: ControlServerOptions): Server {
  const state: ControlState = { snapshotLimits: options.snapshotLimits ?? noSnapshotLimits };
  return createServer((request, response) => {
    handle(options, state, request)
      .then((result) => reply(response, result instanceof Accepted ? 202 : 200, result instanceof Accepted ? result.body : result))
      .catch((error: unknown) => {
        const { status, code, message } = describeError(error);
        if (status >= 500) options.log(`control: ${request.method ?? '?'} ${request.url ?? '?'}: ${message}`);
        if (status === 413) response.setHeader('connection', 'close'); // the rest of the body is not wanted
        reply(response, status, { code, message });
      });
  });
}

async function handle(options: ControlServerOptions, state: ControlState, request: IncomingMessage): Promise<unknown> {
  const { engine } = options;
  const url = new URL(request.url ?? '/', 'http://engine');
  const route = `${request.method ?? 'GET'} ${url.pathname}`;
  // Every status answer says which snapshot limits are in force: the node agent compares them
  // with the Engine resource and changes them with PUT /v1/snapshot-limits, never by a restart.
  const status = (): unknown => ({ ...engine.status(), snapshotLimits: state.snapshotLimits });
  switch (route) {
    case 'GET /v1/status':
      return status();
    case 'PUT /v1/snapshot-limits': {
      const limits = parseSnapshotLimits(await readJson(request));
      if ('problem' in limits) throw new ControlApiError('bad_request', limits.problem);
      const before = state.snapshotLimits;
      state.snapshotLimits = limits;
      if (before.maxCount !== limits.maxCount || before.maxSizeBytes !== limits.maxSizeBytes) {
        options.log(`snapshot limits now maxCount ${limits.maxCount}, maxSizeBytes ${limits.maxSizeBytes} (were ${before.maxCount}, ${before.maxSizeBytes}; 0: no limit)`);
      }
      return status();
    }
    case 'POST /v1/replicas': {
      const address = stringField(await readJson(request), 'address', 256);
      const link = await options.connect(address);
      try {
        await engine.addReplica(link);
      } catch (error) {
        await link.close();
        throw error;
      }
      return status();
    }
    case 'DELETE /v1/replicas': {
      const address = url.searchParams.get('address');
      if (address === null || address === '') throw new ControlApiError('bad_request', 'address query parameter is required');
      await engine.removeReplica(address);
      return status();
    }
    case 'POST /v1/snapshots': {
      const body = await readJson(request);
      const name = stringField(body, 'name', nameLengthMax);
      if (!snapshotNamePattern.test(name)) {
        throw new ControlApiError('bad_request', `snapshot name ${JSON.stringify(name)} must be lowercase letters, digits, '-' and '.'`);
      }
      const kind = body['kind'] ?? 'user';
      if (kind !== 'user' && kind !== 'system') throw new ControlApiError('bad_request', 'kind must be "user" or "system"');
      const limits = state.snapshotLimits;
      if (limits.maxCount > 0 || limits.maxSizeBytes > 0) {
        const source = engine.rwLinks()[0];
        if (source !== undefined) checkSnapshotLimits(await source.chain(), limits, name);
      }
      await engine.snapshot({ name, kind, labels: labelsField(body) });
      return status();
    }
    case 'POST /v1/expand': {
      const sizeBytes = (await readJson(request))['sizeBytes'];
      if (typeof sizeBytes !== 'number' || !Number.isSafeInteger(sizeBytes)) {
        throw new ControlApiError('bad_request', 'sizeBytes must be an integer');
      }
      await engine.expand(sizeBytes);
      return status();
    }
    case 'GET /v1/snapshots':
      return listSnapshots(engine);
    case 'POST /v1/snapshots/purge':
      await purgeSnapshots(engine);
      return listSnapshots(engine);
    case 'POST /v1/snapshots/revert': {
      const name = snapshotName(await readJson(request));
      const clients = options.clientCount?.() ?? 0;
      if (clients > 0) throw new ControlApiError('conflict', `Cannot revert while ${clients} NBD clients are connected: detach them first`);
      await revertVolume(engine, name);
      return listSnapshots(engine);
    }
    case 'GET /v1/rebuilds':
      return { rebuilds: engine.status().rebuilds };
    case 'POST /v1/rebuilds': {
      const body = await readJson(request);
      const address = stringField(body, 'address', 256);
      const bandwidth = body['bandwidthBytesPerSecond'] ?? 0;
      if (typeof bandwidth !== 'number' || !Number.isSafeInteger(bandwidth) || bandwidth < 0) {
        throw new ControlApiError('bad_request', 'bandwidthBytesPerSecond must be a non-negative integer');
      }
      // A rebuild waits for the comparison of the replicas after start (start-repair.ts).
      await engine.whenStartRepairDone();
      if (engine.chainBusy !== null) throw new ControlApiError('conflict', `Cannot rebuild while ${engine.chainBusy} runs`);
      if (engine.modeOf(address) === 'rw' || engine.modeOf(address) === 'wo') throw new ControlApiError('conflict', `Replica ${address} is already in the write set`);
      const link = await options.connect(address);
      if (!isChainLink(link)) {
        await link.close();
        throw new ControlApiError('bad_request', `Replica ${address} cannot be rebuilt over this link`);
      }
      const clock = options.clock;
      if (clock === undefined) throw new ControlApiError('conflict', 'This engine has no clock for rebuilds');
      rebuildCounter += 1;
      const joinName = `rebuild-${clock.nowMs().toString(36)}-${rebuildCounter}`;
      // The rebuild outlives the request: its outcome is in GET /v1/rebuilds and the log.
      rebuildReplica({ engine, target: link, clock, log: options.log, joinName, bandwidthBytesPerSecond: bandwidth }).catch((error: unknown) => {
        options.log(`rebuild of ${address}: ${toError(error).message}`);
      });
      return new Accepted({ address, joinSnapshot: joinName });
    }
    case 'POST /v1/scrub': {
      const body = await readJson(request);
      const markErr = body['markErr'] ?? false;
      const verifyData = body['verifyData'] ?? true;
      if (typeof markErr !== 'boolean') throw new ControlApiError('bad_request', 'markErr must be a boolean');
      const bandwidth = body['bandwidthBytesPerSecond'] ?? 0;
      if (typeof verifyData !== 'boolean') throw new ControlApiError('bad_request', 'verifyData must be a boolean');
      if (typeof bandwidth !== 'number' || !Number.isSafeInteger(bandwidth) || bandwidth < 0) {
        throw new ControlApiError('bad_request', 'bandwidthBytesPerSecond must be a non-negative integer');
      }
      if (bandwidth > 0 && options.clock === undefined) throw new ControlApiError('conflict', 'This engine has no clock to pace a scrub');
      return scrubVolume(engine, { markErr, verifyData, bandwidthBytesPerSecond: bandwidth, ...(options.clock === undefined ? {} : { clock: options.clock }) });
    }
    case 'POST /v1/backups': {
      const job = await backups(options).startBackup(parseBackupRequest(await readJson(request)));
      return new Accepted({ backupName: job.backupName });
    }
    case 'GET /v1/backups':
      return { backups: backups(options).list() };
    case 'POST /v1/restore': {
      const status = backups(options).startRestore(parseRestoreRequest(await readJson(request)), options.clientCount?.() ?? 0);
      return new Accepted({ backupName: status.backupName, state: status.state });
    }
    case 'GET /v1/restore':
      return backups(options).restore();
    default:
      if (request.method === 'GET' && url.pathname.startsWith('/v1/backups/')) {
        return backups(options).get(pathName(url.pathname.slice('/v1/backups/'.length)));
      }
      if (request.method === 'DELETE' && url.pathname.startsWith('/v1/snapshots/')) {
        const name = decodeURIComponent(url.pathname.slice('/v1/snapshots/'.length));
        if (!snapshotNamePattern.test(name) || name.length > nameLengthMax) throw new ControlApiError('bad_request', `Invalid snapshot name ${JSON.stringify(name.slice(0, 80))}`);
        await deleteSnapshot(engine, name);
        return listSnapshots(engine);
      }
      throw new ControlApiError('not_found', `No route ${route}`);
  }
}

/** A result that is answered 202 Accepted: the work goes on after the reply. */
class Accepted {
  readonly body: unknown;
  constructor(body: unknown) {
    this.body = body;
  }
}

function backups(options: ControlServerOptions): BackupJobs {
  if (options.backups === undefined) throw new ControlApiError('not_found', 'This engine runs no backups');
  return options.backups;
}

/** A backup name from the path: decoded and checked like the names in requests. */
function pathName(encoded: string): string {
  let name: string;
  try {
    name = decodeURIComponent(encoded);
  } catch (error) {
    if (error instanceof URIError) throw new ControlApiError('bad_request', `Invalid name in path: ${error.message}`);
    throw error;
  }
  if (!isValidBackupStoreName(name)) throw new ControlApiError('bad_request', `Invalid backup name ${JSON.stringify(name.slice(0, 80))}`);
  return name;
}

function snapshotName(body: Record<string, unknown>): string {
  const name = stringField(body, 'name', nameLengthMax);
  // System snapshots (rebuild-…) are valid revert targets too; both fit this pattern.
  if (!snapshotNamePattern.test(name)) throw new ControlApiError('bad_request', `Invalid snapshot name ${JSON.stringify(name)}`);
  return name;
}

/** A "__proto__" key is never meant (the manager API refuses it too): refuse it, wherever it is. */
function refuseProtoKey(key: string, value: unknown): unknown {
  if (key === '__proto__') throw new ControlApiError('bad_request', 'Body has a "__proto__" key');
  return value;
}

/**
 * The body, at most bodySizeMaxBytes. Over the limit the rest is read and dropped (up to
 * requestBodyDrainMaxBytes) before the 413, so that the client gets its answer instead of a
 * reset (S31).
 */
function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total <= bodySizeMaxBytes) {
        chunks.push(chunk);
        return;
      }
      request.removeListener('data', onData);
      request.removeListener('end', onEnd);
      chunks.length = 0;
      const refusal = new ControlApiError('too_large', `Body over ${bodySizeMaxBytes} bytes`);
      drainBody(request, requestBodyDrainMaxBytes).then(() => reject(refusal), reject);
    };
    const onEnd = (): void => resolve(Buffer.concat(chunks));
    request.on('data', onData);
    request.on('end', onEnd);
    request.on('error', reject);
  });
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readBody(request);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'), refuseProtoKey);
  } catch (error) {
    if (error instanceof ControlApiError) throw error;
    throw new ControlApiError('bad_request', `Body is not JSON: ${toError(error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ControlApiError('bad_request', 'Body must be a JSON object');
  }
  return value as Record<string, unknown>;
}

function stringField(body: Record<string, unknown>, key: string, lengthMax: number): string {
  const value = body[key];
  if (typeof value !== 'string' || value.length === 0 || value.length > lengthMax) {
    throw new ControlApiError('bad_request', `${key} must be a string of 1 to ${lengthMax} characters`);
  }
  return value;
}

function labelsField(body: Record<string, unknown>): Record<string, string> {
  const labels = body['labels'] ?? {};
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    throw new ControlApiError('bad_request', 'labels must be an object of strings');
  }
  const entries = Object.entries(labels);
  if (entries.length > labelCountMax) throw new ControlApiError('bad_request', `at most ${labelCountMax} labels`);
  for (const [key, value] of entries) {
    if (typeof value !== 'string' || key.length > labelLengthMax || value.length > labelLengthMax) {
      throw new ControlApiError('bad_request', `label ${key.slice(0, 40)} must be a string of at most ${labelLengthMax} characters`);
    }
  }
  return labels as Record<string, string>;
}

function describeError(error: unknown): { status: number; code: string; message: string } {
  if (error instanceof ControlApiError) {
    const status = { bad_request: 400, not_found: 404, conflict: 409, too_large: 413 }[error.code];
    return { status, code: error.code, message: error.message };
  }
  if (error instanceof ShorthornError) {
    const code = String(error.code);
    if (code === 'invalid_argument' || code === 'out_of_range') return { status: 400, code, message: error.message };
    if (code === 'closed' || code === 'conflict') return { status: 409, code, message: error.message };
    if (code === 'not_found') return { status: 404, code, message: error.message };
    if (code === 'bad_request') return { status: 400, code, message: error.message };
    return { status: 503, code, message: error.message };
  }
  return { status: 500, code: 'internal', message: toError(error).message };
}

function reply(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  response.end(text);
}
