// The manager's client of an engine's control API (src/engine/control-server.ts): the snapshot
// tree, snapshot create / mark removed / purge / revert, expansion and the scrub. The control folder may not
// import the engine's code, so the shapes it relies on are declared here and every answer is
// checked before use: an engine is another process, and what it sends is input.
import { ShorthornError, toError } from '../../lib/errors.ts';
import { labelCountMax, labelLengthMax, nameLengthMax, snapshotCountMax } from '../../lib/limits.ts';

export type EngineControlErrorCode =
  /** Not listening, connection reset, or no answer in time: try again later. */
  | 'unreachable'
  /** The engine refused the request (4xx): its state or our input is wrong; `status` says which. */
  | 'refused'
  /** The engine failed (5xx), e.g. replicas failed. */
  | 'failed'
  /** The answer is not what the control API promises. */
  | 'bad_answer';

export class EngineControlError extends ShorthornError<EngineControlErrorCode> {
  readonly status: number | undefined;
  /** The engine's own error code (`conflict`, `invalid_argument`, …) when it sent one. */
  readonly engineCode: string | undefined;
  constructor(code: EngineControlErrorCode, message: string, options: { status?: number; engineCode?: string; cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.engineCode = options.engineCode;
  }
}

export interface EngineSnapshot {
  readonly name: string;
  readonly parent: string | null;
  /** Child snapshot names; the live head shows as `volume-head`. */
  readonly children: readonly string[];
  readonly createdMs: number;
  readonly sizeBytes: number;
  readonly removed: boolean;
  readonly userCreated: boolean;
  readonly labels: Readonly<Record<string, string>>;
  /** The read source's background hashing of this snapshot (docs/engine.md "Snapshot hashing"). */
  readonly checksumState: EngineChecksumState;
  /** When its checksums were computed (Unix ms), or null. */
  readonly checksumComputedMs: number | null;
}

export const engineChecksumStates = ['none', 'pending', 'computing', 'computed', 'corrupt'] as const;
export type EngineChecksumState = (typeof engineChecksumStates)[number];

export interface EngineSnapshotTree {
  readonly snapshots: readonly EngineSnapshot[];
  readonly head: { readonly parent: string | null; readonly sizeBytes: number };
}

/** Largest control answer read: a tree of snapshotCountMax snapshots with their labels fits. */
const answerBytesMax = 64 * 1024 * 1024;
const quickTimeoutMs = 10_000;
/** Purge and revert touch every replica's files; expansion too. They may take a while. */
const slowTimeoutMs = 10 * 60_000;

/** A data check reads every sealed layer of every rw replica: hours for a large volume. */
const scrubTimeoutMs = 6 * 60 * 60_000;

export interface EngineScrubRequest {
  /** Fail the replicas that disagree with a majority (the engine never marks without one). */
  readonly markErr: boolean;
  /** Also read each replica's data against its own stored checksums (false: compare stored sums only). */
  readonly verifyData: boolean;
  /** Pace of the data reads, all replicas together; 0 or absent: unpaced. */
  readonly bandwidthBytesPerSecond?: number;
}

/** The engine's scrub report (src/engine/volume-chain.ts ScrubReport), as the manager uses it. */
export interface EngineScrubReport {
  /** Addresses of the rw replicas compared. */
  readonly replicas: readonly string[];
  readonly layersChecked: number;
  readonly chunksChecked: number;
  /** How many chunks disagree; the list itself is cut to scrubListMax entries. */
  readonly mismatchCount: number;
  readonly mismatches: readonly { readonly layer: string; readonly offsetBytes: number; readonly replicas: readonly string[]; readonly majority: boolean }[];
  readonly disagreeing: readonly string[];
  readonly markedErr: readonly string[];
  readonly comparable: boolean;
  readonly corruptCount: number;
  readonly corrupt: readonly { readonly layer: string; readonly offsetBytes: number; readonly replica: string; readonly healthyElsewhere: boolean }[];
  readonly bytesVerified: number;
  readonly storedChecksumErrors: readonly { readonly layer: string; readonly replica: string; readonly message: string }[];
}

/** Entries kept of each of a scrub report's lists (a rotten disk may yield one per chunk). */
export const scrubListMax = 1000;

/** One kind of I/O since the engine started: what /v1/status reports per read, write and flush. */
export interface EngineIoCounter {
  readonly count: number;
  readonly bytes: number;
  readonly errors: number;
  readonly latencyMsTotal: number;
}

export interface EngineIoCounters {
  readonly read: EngineIoCounter;
  readonly write: EngineIoCounter;
  readonly flush: EngineIoCounter;
}

export class EngineControlClient {
  private readonly base: string;

  /** `address` is `host:port` of the engine's control listener (Engine status ip and port). */
  constructor(address: string) {
    this.base = `http://${address}`;
  }

  /** The engine's I/O counters since it started (GET /v1/status), checked. */
  async ioCounters(timeoutMs = 1000): Promise<EngineIoCounters> {
    return parseIoCounters(await this.call('GET', '/v1/status', undefined, timeoutMs));
  }

  async snapshots(): Promise<EngineSnapshotTree> {
    return parseTree(await this.call('GET', '/v1/snapshots', undefined, quickTimeoutMs));
  }

  async createSnapshot(name: string, labels: Readonly<Record<string, string>>): Promise<void> {
    await this.call('POST', '/v1/snapshots', { name, labels }, slowTimeoutMs);
  }

  async markRemoved(name: string): Promise<void> {
    await this.call('DELETE', `/v1/snapshots/${encodeURIComponent(name)}`, undefined, slowTimeoutMs);
  }

  async purge(): Promise<void> {
    await this.call('POST', '/v1/snapshots/purge', {}, slowTimeoutMs);
  }

  async revert(name: string): Promise<void> {
    await this.call('POST', '/v1/snapshots/revert', { name }, slowTimeoutMs);
  }

  async expand(sizeBytes: number): Promise<void> {
    await this.call('POST', '/v1/expand', { sizeBytes }, slowTimeoutMs);
  }

  /**
   * Compare the sealed layers' checksums across the rw replicas and, with verifyData, each
   * replica's data with its own stored sums (POST /v1/scrub); the answer is checked. A full check
   * reads every layer of every replica, so the default wait is long (scrubTimeoutMs).
   */
  async scrub(request: EngineScrubRequest, timeoutMs = scrubTimeoutMs): Promise<EngineScrubReport> {
    return parseScrubReport(await this.call('POST', '/v1/scrub', request, timeoutMs));
  }

  /**
   * One request to the engine's control API: the answer is bounded (answerBytesMax), parsed as
   * JSON, and a 4xx/5xx becomes a typed error with the status. The request body never appears in
   * an error (backup requests carry credentials). Also used by the backup client.
   */
  async call(method: string, path: string, body: unknown, timeoutMs: number): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(`${this.base}${path}`, {
        method,
        ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (error) {
      throw new EngineControlError('unreachable', `engine at ${this.base}: ${method} ${path}: ${toError(error).message}`, { cause: error });
    }
    const length = Number(response.headers.get('content-length') ?? '0');
    if (length > answerBytesMax) {
      await response.body?.cancel();
      throw new EngineControlError('bad_answer', `engine at ${this.base}: ${method} ${path}: answer of ${length} bytes is over ${answerBytesMax}`);
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw new EngineControlError('unreachable', `engine at ${this.base}: ${method} ${path}: reading the answer: ${toError(error).message}`, { cause: error });
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new EngineControlError('bad_answer', `engine at ${this.base}: ${method} ${path}: answer is not JSON (${response.status})`, { cause: error });
    }
    if (!response.ok) {
      const record = isRecord(value) ? value : {};
      const message = typeof record['message'] === 'string' ? record['message'].slice(0, 1000) : text.slice(0, 300);
      const engineCode = typeof record['code'] === 'string' ? record['code'].slice(0, 64) : undefined;
      throw new EngineControlError(response.status >= 500 ? 'failed' : 'refused', message, {
        status: response.status,
        ...(engineCode === undefined ? {} : { engineCode }),
      });
    }
    return value;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bad(why: string): never {
  throw new EngineControlError('bad_answer', `engine snapshot tree: ${why}`);
}

function nameOf(value: unknown, where: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > nameLengthMax) bad(`${where} is not a name`);
  return value;
}

function bytesOf(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) bad(`${where} is not a byte count`);
  return value;
}

function labelsOf(value: unknown, where: string): Record<string, string> {
  if (!isRecord(value)) bad(`${where} is not an object`);
  const entries = Object.entries(value);
  if (entries.length > labelCountMax) bad(`${where} has ${entries.length} labels; at most ${labelCountMax}`);
  for (const [key, text] of entries) {
    if (typeof text !== 'string' || key.length > labelLengthMax || text.length > labelLengthMax) bad(`${where}.${key.slice(0, 40)} is not a label`);
  }
  return value as Record<string, string>;
}

/** An engine from before snapshot hashing reports no state: 'none'. Anything else unknown is refused. */
function checksumStateOf(value: unknown, where: string): EngineChecksumState {
  if (value === undefined) return 'none';
  const found = engineChecksumStates.find((state) => state === value);
  if (found === undefined) bad(`${where} is not one of ${engineChecksumStates.join(', ')}`);
  return found;
}

/** Check an answer of GET /v1/snapshots (exported for tests). */
export function parseTree(value: unknown): EngineSnapshotTree {
  if (!isRecord(value) || !Array.isArray(value['snapshots']) || !isRecord(value['head'])) bad('not {snapshots, head}');
  const list = value['snapshots'] as unknown[];
  if (list.length > snapshotCountMax) bad(`${list.length} snapshots; at most ${snapshotCountMax}`);
  const snapshots = list.map((item, i): EngineSnapshot => {
    if (!isRecord(item)) bad(`snapshots[${i}] is not an object`);
    const where = `snapshots[${i}]`;
    const children = item['children'];
    if (!Array.isArray(children) || children.length > snapshotCountMax + 1) bad(`${where}.children is not a list`);
    return {
      name: nameOf(item['name'], `${where}.name`),
      parent: item['parent'] === null ? null : nameOf(item['parent'], `${where}.parent`),
      children: children.map((c, j) => nameOf(c, `${where}.children[${j}]`)),
      createdMs: bytesOf(item['createdMs'], `${where}.createdMs`),
      sizeBytes: bytesOf(item['sizeBytes'], `${where}.sizeBytes`),
      removed: item['removed'] === true,
      userCreated: item['userCreated'] === true,
      labels: labelsOf(item['labels'] ?? {}, `${where}.labels`),
      checksumState: checksumStateOf(item['checksumState'], `${where}.checksumState`),
      checksumComputedMs: item['checksumComputedMs'] === null || item['checksumComputedMs'] === undefined ? null : bytesOf(item['checksumComputedMs'], `${where}.checksumComputedMs`),
    };
  });
  const head = value['head'];
  return {
    snapshots,
    head: {
      parent: head['parent'] === null || head['parent'] === undefined ? null : nameOf(head['parent'], 'head.parent'),
      sizeBytes: bytesOf(head['sizeBytes'], 'head.sizeBytes'),
    },
  };
}

/** Check the I/O counters in an answer of GET /v1/status (exported for tests). */
export function parseIoCounters(value: unknown): EngineIoCounters {
  if (!isRecord(value)) throw new EngineControlError('bad_answer', 'engine status: not an object');
  const counter = (kind: string): EngineIoCounter => {
    const entry = value[kind];
    if (!isRecord(entry)) throw new EngineControlError('bad_answer', `engine status: ${kind} is not an object`);
    const field = (name: string): number => {
      const n = entry[name];
      if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) {
        throw new EngineControlError('bad_answer', `engine status: ${kind}.${name} is not a non-negative number`);
      }
      return n;
    };
    return { count: field('count'), bytes: field('bytes'), errors: field('errors'), latencyMsTotal: field('latencyMsTotal') };
  };
  return { read: counter('read'), write: counter('write'), flush: counter('flush') };
}

function scrubBad(why: string): never {
  throw new EngineControlError('bad_answer', `engine scrub report: ${why}`);
}

function scrubText(value: unknown, where: string, max = 256): string {
  if (typeof value !== 'string' || value.length > max) scrubBad(`${where} is not a string of at most ${max} characters`);
  return value;
}

function scrubCount(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) scrubBad(`${where} is not a count`);
  return value;
}

function scrubFlag(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') scrubBad(`${where} is not a boolean`);
  return value;
}

/** A list of the answer, each entry checked; only the first scrubListMax are kept (the count is returned). */
function scrubList<T>(value: unknown, where: string, item: (entry: Record<string, unknown>, at: string) => T): { items: T[]; count: number } {
  if (!Array.isArray(value)) scrubBad(`${where} is not a list`);
  const items = value.slice(0, scrubListMax).map((entry: unknown, i) => {
    if (!isRecord(entry)) scrubBad(`${where}[${i}] is not an object`);
    return item(entry, `${where}[${i}]`);
  });
  return { items, count: value.length };
}

function addresses(value: unknown, where: string): string[] {
  if (!Array.isArray(value) || value.length > 64) scrubBad(`${where} is not a list of at most 64 addresses`);
  return value.map((a, i) => scrubText(a, `${where}[${i}]`));
}

/** Check an answer of POST /v1/scrub (exported for tests). */
export function parseScrubReport(value: unknown): EngineScrubReport {
  if (!isRecord(value)) scrubBad('not an object');
  const mismatches = scrubList(value['mismatches'], 'mismatches', (m, at) => ({
    layer: scrubText(m['layer'], `${at}.layer`),
    offsetBytes: scrubCount(m['offsetBytes'], `${at}.offsetBytes`),
    replicas: addresses(m['replicas'], `${at}.replicas`),
    majority: scrubFlag(m['majority'], `${at}.majority`),
  }));
  const corrupt = scrubList(value['corrupt'] ?? [], 'corrupt', (c, at) => ({
    layer: scrubText(c['layer'], `${at}.layer`),
    offsetBytes: scrubCount(c['offsetBytes'], `${at}.offsetBytes`),
    replica: scrubText(c['replica'], `${at}.replica`),
    healthyElsewhere: scrubFlag(c['healthyElsewhere'], `${at}.healthyElsewhere`),
  }));
  const storedChecksumErrors = scrubList(value['storedChecksumErrors'] ?? [], 'storedChecksumErrors', (e, at) => ({
    layer: scrubText(e['layer'], `${at}.layer`),
    replica: scrubText(e['replica'], `${at}.replica`),
    message: scrubText(e['message'], `${at}.message`, 4096),
  }));
  return {
    replicas: addresses(value['replicas'], 'replicas'),
    layersChecked: scrubCount(value['layersChecked'], 'layersChecked'),
    chunksChecked: scrubCount(value['chunksChecked'], 'chunksChecked'),
    mismatchCount: mismatches.count,
    mismatches: mismatches.items,
    disagreeing: addresses(value['disagreeing'], 'disagreeing'),
    markedErr: addresses(value['markedErr'], 'markedErr'),
    comparable: scrubFlag(value['comparable'], 'comparable'),
    corruptCount: corrupt.count,
    corrupt: corrupt.items,
    bytesVerified: scrubCount(value['bytesVerified'] ?? 0, 'bytesVerified'),
    storedChecksumErrors: storedChecksumErrors.items,
  };
}
