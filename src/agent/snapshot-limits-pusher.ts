// The node agent's driver for live snapshot limits: when a running engine reports other limits in
// force than its Engine resource asks for (engine-snapshot-limits.ts decides), it sends
// `PUT /v1/snapshot-limits`. A restart would apply them too, but would cut the volume's I/O.
import type { Engine } from '../control/resources/engine.ts';
import { toError } from '../lib/errors.ts';
import { snapshotLimitsPush, type EngineSnapshotLimits } from './engine-snapshot-limits.ts';

/** A control API answer slower than this is given up on; the next pass asks again. */
const requestTimeoutMs = 10_000;

export class SnapshotLimitsPusher {
  private readonly log: (message: string) => void;
  /** The last failure by engine name (one entry per engine of this node at most): tried again every pass, logged once per distinct failure. */
  private readonly failures = new Map<string, string>();

  constructor(log: (message: string) => void) {
    this.log = log;
  }

  /** Change the limits of the engine at `controlUrl` if they differ from its resource's; true when a change was made. */
  async push(engine: Engine, controlUrl: string, reported: EngineSnapshotLimits | undefined): Promise<boolean> {
    const name = engine.metadata.name;
    const body = snapshotLimitsPush(engine.spec, reported);
    if (body === undefined) {
      this.failures.delete(name);
      return false;
    }
    let failure: string;
    try {
      const response = await fetch(`${controlUrl}/v1/snapshot-limits`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      const text = await response.text();
      if (response.ok) {
        this.failures.delete(name);
        this.log(`engine ${name}: snapshot limits now maxCount ${body.maxCount}, maxSizeBytes ${body.maxSizeBytes} (0: no limit; were ${reported?.maxCount ?? '?'}, ${reported?.maxSizeBytes ?? '?'})`);
        return true;
      }
      failure = `refused (${response.status}): ${text.slice(0, 300)}`;
    } catch (error) {
      // Refused connection, reset or timeout (the engine is going away): the next pass sees its
      // state and tries again. Anything else is a bug worth seeing.
      const e = toError(error);
      if (e.name !== 'TypeError' && e.name !== 'TimeoutError' && e.name !== 'AbortError') throw e;
      failure = `failed: ${e.message}`;
    }
    if (this.failures.get(name) !== failure) this.log(`engine ${name}: changing snapshot limits to ${JSON.stringify(body)} ${failure}`);
    this.failures.set(name, failure);
    return false;
  }
}
