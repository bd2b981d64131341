// Starting an engine on a set of replicas: ask each for its chain and membership record, keep
// only the members of the highest generation (start-choice.ts), fence every older engine by
// presenting a higher epoch, and record a new generation on the chosen replicas before serving
// any I/O. Stale replicas are closed and reported; they must be rebuilt.
import type { Clock } from '../lib/clock.ts';
import { IoError, toError } from '../lib/errors.ts';
import { memberId, parseMemberId } from '../format/replica-identity.ts';
import { Engine } from './engine.ts';
import { reconcileStart } from './start-reconcile-driver.ts';
import type { ChainInfo } from '../format/replica-chain.ts';
import type { ReplicaLink } from './replica-link.ts';
import { readLeaseWaitMs } from './read-lease.ts';
import { chooseSalvageReplicas } from './salvage-choice.ts';
import { chooseStartReplicas, type ReplicaReport } from './start-choice.ts';
import { repairAfterStart } from './start-repair.ts';

export interface EngineStartOptions {
  readonly volumeName: string;
  readonly sizeBytes: number;
  readonly links: readonly ReplicaLink[];
  readonly clock: Clock;
  readonly log: (message: string) => void;
  /**
   * The epoch the manager assigned (Engine spec.epoch, raised on every attach and stored before
   * the engine starts). Equal to the highest a replica has seen: a restart of the same attach's
   * engine (its node agent restarts it after a crash; the agent never runs two of one engine).
   * Lower: refused, a newer engine has fenced this one. By default one more than the highest
   * any replica has seen (engines started by hand).
   */
  readonly epoch?: number;
  readonly minimumWriteReplicas?: number;
  /**
   * Salvage (every replica failed, DESIGN §3.3): start even though members of the newest
   * generation are unreachable, from the newest members that are reachable (salvage-choice.ts),
   * and say which members' last writes may be lost.
   */
  readonly salvage?: boolean;
  /**
   * The read lease of this volume's engines (read-lease.ts), and how to wait. When the start goes
   * on by quorum with members missing, the old engine may still be alive beside them: the start
   * waits out its lease after the fence before serving anything. The engine gets the same lease.
   * Absent: the engine's default lease and no wait (unit tests and the simulator, whose engines
   * never outlive their replacement).
   */
  readonly readLease?: { readonly ms: number; readonly sleep: (ms: number) => Promise<void> };
}

export interface EngineStart {
  readonly engine: Engine;
  /** Replicas not used: older generation, dropped from the write set, or unreachable. */
  readonly stale: readonly string[];
  readonly unreachable: readonly string[];
  readonly reason: string;
  /** Salvage start only: recorded members not used, whose last acknowledged writes may be lost. */
  readonly possiblyLost: readonly string[];
}

export async function startEngine(options: EngineStartOptions): Promise<EngineStart> {
  const { links, log } = options;
  const chains = new Map<string, ChainInfo>();
  const reports: ReplicaReport[] = await Promise.all(
    links.map(async (link) => {
      try {
        const chain = await link.chain();
        chains.set(link.address, chain);
        // The choice ignores sizes: an expand cut short leaves replicas of one generation with
        // two sizes, and reconcileStart below settles them (never shrinking one).
        return { address: link.address, chain: { ...chain, sizeBytes: options.sizeBytes } };
      } catch (error) {
        return { address: link.address, chain: null, error: toError(error).message };
      }
    }),
  );
  const w = { minimumWriteReplicas: options.minimumWriteReplicas ?? 1 };
  const salvage = options.salvage === true ? chooseSalvageReplicas(reports, options.sizeBytes, w) : undefined;
  const choice = salvage ?? chooseStartReplicas(reports, options.sizeBytes, w);
  const possiblyLost = salvage?.kind === 'chosen' ? salvage.possiblyLost : [];
  if (choice.kind === 'none') {
    await Promise.allSettled(links.map((l) => l.close()));
    throw new IoError('io', `Cannot start volume ${options.volumeName}: ${choice.reason}`);
  }
  log(`start: ${choice.reason}`);
  const epoch = options.epoch ?? choice.epoch + 1;
  if (epoch < choice.epoch) {
    await Promise.allSettled(links.map((l) => l.close()));
    throw new IoError('invalid_argument', `Cannot start with epoch ${epoch}: replicas have seen epoch ${choice.epoch} (a newer engine fenced this one)`);
  }
  if (epoch === choice.epoch) log(`start: epoch ${epoch} already seen by the replicas: a restart of the same attach`);
  const chosen = choice.chosen.map((address) => {
    const link = links.find((l) => l.address === address);
    if (link === undefined) throw new IoError('io', `chosen replica ${address} has no link`);
    return link;
  });
  const unused = links.filter((l) => !choice.chosen.includes(l.address));
  // Fence first: once a replica has accepted our epoch, an older engine can no longer write to it.
  await Promise.all(chosen.map((l) => l.acceptEpoch(epoch)));
  await fenceUnused({ unused, chains, generation: choice.generation, epoch, abort: () => Promise.allSettled(links.map((l) => l.close())) });
  await Promise.allSettled(unused.map((l) => l.close()));
  const fencedAtMs = options.clock.monotonicMs();
  // An older engine still running may have recorded a new generation on a chosen replica between
  // our first read and the fence (it dropped a replica and acknowledged writes on the rest). The
  // choice was made on records that no longer hold: give up, the next attempt sees the new ones.
  await checkRecordsUnchanged(chosen, chains, async () => {
    await Promise.allSettled(links.map((l) => l.close()));
  });
  // An operation the last engine sent to every replica may have reached only some (start-reconcile.ts).
  const reconciled = await reconcileStart({ links: chosen, chains, requestedSizeBytes: options.sizeBytes, log });
  chosen.splice(0, chosen.length, ...reconciled.links);
  const generation = choice.recordAbove + 1;
  const members = chosen.map((l) => memberId({ address: l.address, instanceId: l.instanceId ?? null }));
  await Promise.all(chosen.map((l) => l.setMembership({ generation, members })));
  log(`start: epoch ${epoch}, generation ${generation}, members ${members.join(', ')}`);
  if (choice.missingByQuorum.length > 0 && options.readLease !== undefined) {
    await waitOutReadLease({ ...options.readLease, clock: options.clock, log, fencedAtMs, missing: choice.missingByQuorum });
  }
  const engine = new Engine({
    volumeName: options.volumeName,
    sizeBytes: reconciled.sizeBytes,
    epoch,
    generation,
    members: chosen,
    clock: options.clock,
    log,
    ...(options.minimumWriteReplicas === undefined ? {} : { minimumWriteReplicas: options.minimumWriteReplicas }),
    // A salvage is the operator's acceptance of loss: that engine may bring its write set back to
    // the minimum by promoting rebuilt replicas (start-choice.ts explains why others may not).
    ...(options.salvage === true ? { promoteBelowMinimum: true } : {}),
    ...(options.readLease === undefined ? {} : { readLeaseMs: options.readLease.ms }),
  });
  // The chosen replicas may differ where writes were in flight at an unclean stop: compare them
  // with the read source and repair them in the background (DESIGN §2.8 rule 7); reads stay on
  // the source until that is done.
  engine.runStartRepair(() => repairAfterStart({ engine, clock: options.clock, log }));
  return { engine, stale: choice.stale, unreachable: choice.unreachable, reason: choice.reason, possiblyLost };
}

/**
 * The old engine may still serve reads from the missing members until its read lease runs out,
 * at most the lease after our fence finished (read-lease.ts says why): serve nothing before then.
 */
async function waitOutReadLease(args: {
  ms: number;
  sleep: (ms: number) => Promise<void>;
  clock: Clock;
  log: (message: string) => void;
  fencedAtMs: number;
  missing: readonly string[];
}): Promise<void> {
  const untilMs = args.fencedAtMs + readLeaseWaitMs(args.ms);
  const leftMs = untilMs - args.clock.monotonicMs();
  const without = `start: by quorum without ${args.missing.join(', ')}:`;
  if (leftMs <= 0) {
    args.log(`${without} the old engine's read lease (${args.ms} ms) ran out during the start`);
    return;
  }
  args.log(`${without} waiting ${Math.ceil(leftMs)} ms for the old engine's read lease (${args.ms} ms) to run out before serving`);
  for (let remaining = leftMs; remaining > 0; remaining = untilMs - args.clock.monotonicMs()) await args.sleep(Math.ceil(remaining));
  args.log('start: the old engine\'s read lease has run out');
}

/**
 * Fence the replicas that answered but are not used too. A member of the newest generation that
 * still reported an older one (the old engine's record of that generation was on its way to it)
 * counts as stale here, but the old engine may go on with it: unfenced, it could give that engine
 * writes (with w = 1) or its read lease (read-lease.ts) beside us. Such a member must take our
 * epoch or the start gives up; for other unused replicas a failed fence changes nothing.
 */
async function fenceUnused(args: {
  unused: readonly ReplicaLink[];
  chains: ReadonlyMap<string, ChainInfo>;
  generation: number;
  epoch: number;
  abort: () => Promise<unknown>;
}): Promise<void> {
  const answered = args.unused.filter((l) => args.chains.has(l.address));
  const members = new Set(
    [...args.chains.values()].filter((c) => c.membership.generation === args.generation).flatMap((c) => c.membership.members.map((m) => parseMemberId(m).address)),
  );
  const results = await Promise.allSettled(answered.map((l) => l.acceptEpoch(args.epoch)));
  const unfenced = answered.flatMap((l, i) => {
    const r = results[i]!;
    return r.status === 'rejected' && members.has(l.address) ? [`${l.address}: ${toError(r.reason).message}`] : [];
  });
  if (unfenced.length === 0) return;
  await args.abort();
  throw new IoError('io', `Cannot start: member${unfenced.length > 1 ? 's' : ''} of generation ${args.generation} not used but not fenced either (${unfenced.join('; ')}); an older engine might go on with ${unfenced.length > 1 ? 'them' : 'it'}; start again`);
}

async function checkRecordsUnchanged(chosen: readonly ReplicaLink[], chains: ReadonlyMap<string, ChainInfo>, abort: () => Promise<void>): Promise<void> {
  const moved: string[] = [];
  try {
    await Promise.all(
      chosen.map(async (link) => {
        const before = chains.get(link.address)?.membership;
        const after = (await link.chain()).membership;
        if (before === undefined || before.generation !== after.generation || before.members.join() !== after.members.join()) {
          moved.push(`${link.address}: generation ${before?.generation ?? '?'} -> ${after.generation}`);
        }
      }),
    );
  } catch (error) {
    await abort();
    throw error;
  }
  if (moved.length > 0) {
    await abort();
    throw new IoError('io', `Cannot start: an older engine recorded a new write set before the fence (${moved.sort().join('; ')}); start again`);
  }
}
