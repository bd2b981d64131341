// Waiting for and watching a volume through the API: until it is attached (with its NBD URI),
// detached, gone, healed or expanded. On a terminal the lines are redrawn in place (progress
// bars); otherwise a line set is printed only when it changes, so logs and scripts stay readable.
import type { ShorthornClient } from '../api/client.ts';
import { ApiClientError } from '../api/client.ts';
import type { EngineSpec, EngineStatus } from '../control/resources/engine.ts';
import type { VolumeStatus } from '../control/resources/volume.ts';
import { ShorthornError } from '../lib/errors.ts';
import { healthLines, volumeHealth, type VolumeHealth, type VolumeParts } from './volume-health.ts';

/** A wait that ran out of time; exit code 6. */
export class WaitTimeoutError extends ShorthornError<'timeout'> {
  readonly hint: string;
  constructor(message: string, hint: string) {
    super('timeout', message);
    this.hint = hint;
  }
}

/** How often the API is asked: often enough for a progress bar, little load on the API. */
const pollMs = 500;

async function delay(ms: number): Promise<void> {
  await new Promise((resolveDelay) => setTimeout(resolveDelay, ms));
}

export async function volumeParts(client: ShorthornClient, name: string): Promise<VolumeParts> {
  const [volume, engines, replicas] = await Promise.all([client.getVolume(name), client.listEngines(name), client.listReplicas(name)]);
  return { volume, engines: engines.data, replicas: replicas.data };
}

/** Poll `check` until it returns a value; throw WaitTimeoutError after `timeoutMs`. */
export async function pollUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, hint: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new WaitTimeoutError(`${what}: not done after ${Math.round(timeoutMs / 1000)} s`, hint);
    await delay(pollMs);
  }
}

export interface Attached {
  readonly node: string;
  /** The NBD URI; undefined in maintenance mode (no frontend). */
  readonly uri: string | undefined;
}

/** Wait until the volume is attached to `node` and, unless in maintenance, its engine serves NBD. */
export async function waitAttached(client: ShorthornClient, name: string, node: string, options: { timeoutMs: number; maintenance: boolean }): Promise<Attached> {
  return pollUntil(
    `volume ${name} attaching to ${node}`,
    options.timeoutMs,
    async () => {
      const parts = await volumeParts(client, name);
      const status = (parts.volume.status ?? {}) as VolumeStatus;
      if (status.state !== 'attached' || status.currentNodeID !== node) return undefined;
      // Until the engine has reported its replicas the robustness is unknown (or, for a moment,
      // faulted): wait for at least one RW replica, so what follows sees a working volume.
      if (status.robustness !== 'healthy' && status.robustness !== 'degraded') return undefined;
      if (options.maintenance) return { node, uri: undefined };
      const engine = parts.engines.find((e) => (e.spec as EngineSpec).nodeID === node && (e.status as EngineStatus | undefined)?.currentState === 'running');
      const uri = (engine?.status as EngineStatus | undefined)?.endpoint;
      // An empty endpoint is a maintenance-mode engine's (no NBD): the new engine has not reported yet.
      return uri === undefined || uri === '' ? undefined : { node, uri };
    },
    `\`shorthorn volume get ${name}\` shows its state and replicas; are the nodes ready (\`shorthorn node list\`)?`,
  );
}

export async function waitDetached(client: ShorthornClient, name: string, timeoutMs: number): Promise<void> {
  await pollUntil(
    `volume ${name} detaching`,
    timeoutMs,
    async () => (((await client.getVolume(name)).status as VolumeStatus | undefined)?.state === 'detached' ? true : undefined),
    `\`shorthorn volume get ${name}\` shows its state`,
  );
}

export async function waitDeleted(client: ShorthornClient, name: string, timeoutMs: number): Promise<void> {
  await pollUntil(
    `volume ${name} being deleted`,
    timeoutMs,
    async () => {
      try {
        await client.getVolume(name);
        return undefined;
      } catch (error) {
        if (error instanceof ApiClientError && error.code === 'not_found') return true;
        throw error;
      }
    },
    `the node agents remove the replicas' data first: \`shorthorn volume get ${name}\``,
  );
}

/** Draws line sets: in place on a terminal, as new lines (only when changed) elsewhere. */
class LiveLines {
  private shown: readonly string[] = [];
  private readonly tty = process.stdout.isTTY;
  show(lines: readonly string[]): void {
    if (lines.join('\n') === this.shown.join('\n')) return;
    if (this.tty && this.shown.length > 0) process.stdout.write(`\x1b[${this.shown.length}F\x1b[J`);
    const stamp = this.tty ? '' : `${new Date().toISOString().slice(11, 19)} `;
    process.stdout.write(lines.map((line, i) => `${i === 0 ? stamp : ' '.repeat(stamp.length)}${line}\n`).join(''));
    this.shown = lines;
  }
}

/**
 * Show the volume's health until `done` says so (never, for a plain --watch: Ctrl-C ends it) or
 * the deadline passes. Returns the last health seen.
 */
export async function watchVolume(
  client: ShorthornClient,
  name: string,
  options: { timeoutMs: number; done?: (health: VolumeHealth) => boolean; what: string },
): Promise<VolumeHealth> {
  const live = new LiveLines();
  return pollUntil(
    options.what,
    options.timeoutMs,
    async () => {
      const health = volumeHealth(await volumeParts(client, name));
      live.show(healthLines(health));
      return options.done?.(health) === true ? health : undefined;
    },
    `\`shorthorn volume get ${name}\` shows its replicas; the node agents' logs are in DATA/node-*/logs`,
  );
}
