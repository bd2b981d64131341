// A node whose agent stopped renewing its lease (node-<name>) is not Ready: the scheduler then
// places nothing there, and the volume controller treats its replicas as failed. The agent sets
// Ready=True again when it comes back. Pure decision plus a small polling driver in the manager.
import type { Clock } from '../../lib/clock.ts';
import { toError } from '../../lib/errors.ts';
import type { Node, NodeStatus } from '../resources/node.ts';
import type { Timers } from '../runtime/timers.ts';
import { isStoreError, type ResourceStore } from '../store/resource-store.ts';

export const nodeAgentDownReason = 'NodeAgentDown';

export function nodeLeaseName(nodeName: string): string {
  return `node-${nodeName}`;
}

/** The node with Ready=False when its agent's lease is gone and it still says otherwise; else undefined. */
export function markNodeDown(node: Node, leaseHeld: boolean, nowMs: number): Node | undefined {
  if (leaseHeld) return undefined;
  const conditions = node.status?.conditions ?? [];
  const ready = conditions.find((c) => c.type === 'Ready');
  if (ready?.status === 'False' && ready.reason === nodeAgentDownReason) return undefined;
  const now = new Date(nowMs).toISOString();
  const status: NodeStatus = {
    ...node.status,
    conditions: [
      ...conditions.filter((c) => c.type !== 'Ready'),
      { type: 'Ready', status: 'False', reason: nodeAgentDownReason, message: `The node agent's lease ${nodeLeaseName(node.metadata.name)} expired`, lastTransitionTime: now },
    ],
  };
  return { ...node, status };
}

export interface NodeLivenessOptions {
  readonly store: ResourceStore;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log: (message: string) => void;
  readonly intervalMs?: number;
}

/** Polls the node leases; marks nodes whose agent is gone as not Ready (logged with the reason). */
export class NodeLivenessMonitor {
  private readonly options: NodeLivenessOptions;
  private cancel: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(options: NodeLivenessOptions) {
    this.options = options;
  }

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.cancel = this.options.timers.after(this.options.intervalMs ?? 2000, () => {
      this.running = this.check()
        .catch((error: unknown) => this.options.log(`node liveness check failed (retrying): ${toError(error).message}`))
        .finally(() => this.schedule());
    });
  }

  async check(): Promise<void> {
    const { store, clock, log } = this.options;
    for (const object of (await store.list('Node')).items) {
      const node = object as Node;
      const held = (await store.getLease(nodeLeaseName(node.metadata.name))) !== null;
      const down = markNodeDown(node, held, clock.nowMs());
      if (down === undefined) continue;
      try {
        await store.updateStatus(down);
        log(`node ${node.metadata.name} is not ready: its agent's lease expired`);
      } catch (error) {
        // The agent (or another manager) wrote first; the next check decides again.
        if (!isStoreError(error, 'conflict')) throw error;
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancel?.();
    await this.running;
  }
}
