// kill -9 through the engine: real `shorthorn engine` and `shorthorn replica` processes, and a
// crash at a seeded moment inside a snapshot, purge, revert, expand or rebuild requested through
// the control API. Four ways to crash, picked by the seed: the whole volume at once (engine and
// every replica: a power loss), the engine alone, the engine and one replica (one node of several
// loses power: the other replica finishes what it was sent), or replicas killing themselves at a
// named fault point of the operation (--fault-config, SHORTHORN_FAULT_INJECTION=1) followed by a
// power loss.
// Then everything restarts on the same directories and addresses and we check (TESTING.md 1, 5):
// every rw replica reports the same chain (snapshot names, head parent, size), that chain is the
// one from before the operation or the one after it, every flushed byte reads back (nbdcopy of the
// whole volume compared with the patterns qemu-io wrote and flushed), and a scrub of the rw
// replicas finds no difference. Seeds 1..ENGINE_CRASH_SEEDS (default 8) run in CI; SEED=n
// replays one. Category and mode cycle with the seed (5 and 4 of them), so 20 seeds cover every pair.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SeededRandom } from '../../src/lib/random.ts';
import { connectReplica } from '../../src/engine/replica-client.ts';
import type { ChainInfo } from '../../src/format/replica-chain.ts';
import { dataProcessEnv } from '../../src/lib/data-process-env.ts';
import { run, startDaemon, stopAll, waitFor, withTempDir, type Daemon } from '../harness/daemon.ts';
import { freePort } from '../harness/free-port.ts';
import { startEngineProcess, type EngineProcess } from '../harness/volume.ts';

const mib = 1024 * 1024;
const volume = 'crashvol';
const sizeBytes = 16 * mib;
const expandedBytes = 24 * mib;
const categories = ['snapshot', 'purge', 'revert', 'expand', 'rebuild'] as const;
type Category = (typeof categories)[number];
const modes = ['power', 'engine', 'fault-point', 'node'] as const;
type Mode = (typeof modes)[number];

/** The named fault points (layered-store.ts, purge-step.ts) each operation passes on a replica. */
const faultPoints: Record<Category, readonly string[]> = {
  snapshot: ['snapshot:flushed', 'snapshot:extents-written', 'snapshot:head-created', 'snapshot:committed'],
  purge: ['purge:deleted', 'purge:extents-written', 'purge:intent-recorded', 'purge:copied', 'purge:committed'],
  revert: ['revert:head-created', 'revert:committed'],
  expand: ['expand:head-extended', 'expand:committed'],
  // The join snapshot is the rebuild's only chain change on the replicas already in the volume.
  rebuild: ['snapshot:flushed', 'snapshot:head-created', 'snapshot:committed'],
};

after(stopAll);

interface Replica {
  readonly dir: string;
  readonly port: number;
  readonly address: string;
  daemon: Daemon;
}

async function startReplica(replica: { dir: string; port: number }, faultConfig?: string): Promise<Daemon> {
  const args = ['replica', '--dir', replica.dir, '--size', String(sizeBytes), '--volume', volume, '--listen', `127.0.0.1:${replica.port}`];
  if (faultConfig !== undefined) args.push('--fault-config', faultConfig);
  return startDaemon({
    args,
    readyPattern: /listening on (\S+)/,
    env: { ...dataProcessEnv(), ...(faultConfig === undefined ? {} : { SHORTHORN_FAULT_INJECTION: '1' }) },
  });
}

async function control(engine: EngineProcess, method: string, path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const response = await fetch(`${engine.controlUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  return { status: response.status, json: await response.json() };
}

async function ok(engine: EngineProcess, method: string, path: string, body?: unknown): Promise<unknown> {
  const { status, json } = await control(engine, method, path, body);
  assert.ok(status >= 200 && status < 300, `${method} ${path}: HTTP ${status} ${JSON.stringify(json)}`);
  return json;
}

/** A seeded set of pattern writes; applied to `image` (the expected content) as qemu-io applies them. */
function patternWrites(random: SeededRandom, image: Uint8Array, count: number): string[] {
  const commands: string[] = [];
  for (let i = 0; i < count; i++) {
    const lengthBytes = (1 + random.int(16)) * 64 * 1024;
    const offsetBytes = random.int((sizeBytes - lengthBytes) / 4096 + 1) * 4096;
    const pattern = 1 + random.int(254);
    image.fill(pattern, offsetBytes, offsetBytes + lengthBytes);
    commands.push('-c', `write -P ${pattern} ${offsetBytes} ${lengthBytes}`);
  }
  return commands;
}

/** qemu-io writes and flushes, then disconnects (revert needs no client connected). */
async function writeAndFlush(engine: EngineProcess, commands: readonly string[]): Promise<void> {
  await run('qemu-io', ['-f', 'raw', ...commands, '-c', 'flush', engine.uri]);
}

async function readVolume(engine: EngineProcess, dir: string): Promise<Uint8Array> {
  const file = join(dir, 'read-back.img');
  await writeFile(file, new Uint8Array(0));
  await run('nbdcopy', [engine.uri, file]);
  return new Uint8Array(await readFile(file));
}

function firstDifference(a: Uint8Array, b: Uint8Array): string | null {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return `byte ${i}: ${a[i]} vs ${b[i]}`;
  return null;
}

/** What identifies the state of a chain for "wholly done or wholly absent". */
interface ChainShape {
  readonly names: readonly string[];
  readonly live: readonly string[];
  readonly headParent: string | null;
  readonly sizeBytes: number;
}

function shapeOf(chain: ChainInfo): ChainShape {
  const userNames = (names: readonly string[]): string[] => names.filter((n) => !n.startsWith('rebuild-'));
  return {
    names: userNames(chain.snapshots.map((s) => s.name)),
    live: userNames(chain.snapshots.filter((s) => !s.removed).map((s) => s.name)),
    headParent: chain.headParent,
    sizeBytes: chain.sizeBytes,
  };
}

async function chainOf(address: string): Promise<ChainInfo> {
  // chain_info answers at any epoch, so this reads the record without fencing anyone.
  const client = await connectReplica(address, { volumeName: volume, epoch: 0 });
  try {
    return await client.chain();
  } finally {
    await client.close();
  }
}

interface Scenario {
  /** Expected volume contents: the operation absent, and wholly done. */
  readonly imageBefore: Uint8Array;
  readonly imageAfter: Uint8Array;
  readonly describe: string;
  /** Is this chain shape the state before the operation, or after it? */
  readonly shapeIs: (shape: ChainShape) => 'before' | 'after' | null;
  /** Request the operation from `engine` (and, for a rebuild, wait for its end). */
  readonly start: (engine: EngineProcess) => Promise<unknown>;
}

async function prepare(category: Category, engine: EngineProcess, random: SeededRandom, freshAddress: string): Promise<Scenario> {
  const image = new Uint8Array(sizeBytes);
  await writeAndFlush(engine, patternWrites(random, image, 6 + random.int(6)));
  switch (category) {
    case 'snapshot':
      return {
        imageBefore: image,
        imageAfter: image,
        describe: 'snapshot s1',
        shapeIs: (s) => (s.names.length === 0 && s.headParent === null ? 'before' : s.names.join() === 's1' && s.headParent === 's1' ? 'after' : null),
        start: (e) => ok(e, 'POST', '/v1/snapshots', { name: 's1' }),
      };
    case 'purge': {
      await ok(engine, 'POST', '/v1/snapshots', { name: 's1' });
      await writeAndFlush(engine, patternWrites(random, image, 4));
      await ok(engine, 'POST', '/v1/snapshots', { name: 's2' });
      await writeAndFlush(engine, patternWrites(random, image, 2));
      await ok(engine, 'DELETE', '/v1/snapshots/s1');
      return {
        imageBefore: image,
        imageAfter: image,
        describe: 'purge of s1 (coalesced into s2)',
        shapeIs: (s) => {
          if (s.live.join() !== 's2' || s.headParent !== 's2') return null;
          return s.names.join() === 's1,s2' ? 'before' : s.names.join() === 's2' ? 'after' : null;
        },
        start: (e) => ok(e, 'POST', '/v1/snapshots/purge'),
      };
    }
    case 'revert': {
      const base = image.slice();
      await ok(engine, 'POST', '/v1/snapshots', { name: 'base' });
      await writeAndFlush(engine, patternWrites(random, image, 4));
      return {
        imageBefore: image,
        imageAfter: base,
        describe: 'revert to base',
        // The head sits on base either way; what tells them apart is the data (checked apart).
        shapeIs: (s) => (s.names.join() === 'base' && s.headParent === 'base' ? 'after' : null),
        start: (e) => ok(e, 'POST', '/v1/snapshots/revert', { name: 'base' }),
      };
    }
    case 'expand': {
      const grown = new Uint8Array(expandedBytes);
      grown.set(image);
      return {
        imageBefore: image,
        imageAfter: grown,
        describe: `expand to ${expandedBytes}`,
        shapeIs: (s) => (s.names.length > 0 ? null : s.sizeBytes === sizeBytes ? 'before' : s.sizeBytes === expandedBytes ? 'after' : null),
        start: (e) => ok(e, 'POST', '/v1/expand', { sizeBytes: expandedBytes }),
      };
    }
    case 'rebuild':
      return {
        imageBefore: image,
        imageAfter: image,
        describe: `rebuild of ${freshAddress}`,
        shapeIs: (s) => (s.names.length === 0 ? 'after' : null),
        start: async (e) => {
          await ok(e, 'POST', '/v1/rebuilds', { address: freshAddress });
          return waitFor(
            'the rebuild to finish',
            async () => {
              const json = (await ok(e, 'GET', '/v1/rebuilds')) as { rebuilds: { address: string; state: string; error: string | null }[] };
              const r = json.rebuilds.find((x) => x.address === freshAddress);
              return r?.state === 'done' || r?.state === 'failed' ? r : undefined;
            },
            60_000,
          );
        },
      };
  }
}

async function runSeed(seed: number, note: (message: string) => void): Promise<void> {
  const random = new SeededRandom(seed);
  const category = categories[(seed - 1) % categories.length]!;
  const mode: Mode = modes[(seed - 1) % modes.length]!;
  await withTempDir(`engine-crash-${seed}`, async (dir) => {
    const replicas: Replica[] = [];
    const faulty = new Set<number>();
    let point = '';
    if (mode === 'fault-point' && category === 'rebuild' && random.int(2) === 0) {
      // The new replica dies inside its own part of the rebuild: at its k-th metadata commit
      // (epoch, membership, join snapshot, install, promotion) or its first data-file sync (the
      // staged layers' at install, or the head's at the join snapshot).
      const k = random.int(6);
      const rule = k < 5 ? { op: 'rename', type: 'crash', path: 'replica.meta', after: k } : { op: 'sync', type: 'crash', path: '.data' };
      point = k < 5 ? `the new replica's metadata commit ${k + 1}` : "the new replica's first data-file sync";
      faulty.add(2);
      await writeFile(join(dir, 'faults.json'), JSON.stringify({ seed, rules: [rule] }));
    } else if (mode === 'fault-point') {
      point = random.pick(faultPoints[category]);
      // One replica or both hit the point (for a rebuild: the replicas already in the volume).
      faulty.add(random.int(2));
      if (random.int(2) === 0) faulty.add(1 - [...faulty][0]!);
      await writeFile(join(dir, 'faults.json'), JSON.stringify({ seed, crashAtPoints: [point] }));
    }
    for (let i = 0; i < 3; i++) {
      const replicaDir = join(dir, `r${i}`);
      await mkdir(replicaDir);
      const port = await freePort();
      let daemon = await startReplica({ dir: replicaDir, port });
      if (faulty.has(i)) {
        // Created without faults first: the fault counts start with the operation, not the creation.
        await daemon.stop();
        daemon = await startReplica({ dir: replicaDir, port }, join(dir, 'faults.json'));
      }
      replicas.push({ dir: replicaDir, port, address: `127.0.0.1:${port}`, daemon });
    }
    // r0 and r1 make the volume; r2 is the fresh replica a rebuild adds.
    const members = replicas.slice(0, 2);
    const fresh = replicas[2]!;
    let socketCount = 0;
    const startEngine = (size: number, addresses: readonly string[]): Promise<EngineProcess> =>
      startEngineProcess({ volume, sizeBytes: size, replicas: addresses, socket: join(dir, `nbd-${++socketCount}.sock`) });
    let engine = await startEngine(sizeBytes, members.map((r) => r.address));
    const scenario = await prepare(category, engine, random, fresh.address);
    const crashAtMs = category === 'rebuild' ? random.int(400) : random.int(40);
    let outcome = 'in flight';
    const settled = scenario.start(engine).then(
      (result) => (outcome = `completed (${JSON.stringify(result).slice(0, 120)})`),
      (error: unknown) => (outcome = `failed (${String(error).slice(0, 200)})`),
    );
    const story = `seed ${seed}: ${scenario.describe}, crash by ${mode}${point === '' ? '' : ` at ${point} on r${[...faulty].join('+r')}`}`;
    const all = [engine.daemon, ...replicas.map((r) => r.daemon)];
    if (mode === 'fault-point') {
      // The replicas crash themselves; the power goes out once the request has its answer.
      await settled;
      await Promise.all(all.map((d) => d.kill9()));
    } else {
      // The seeded moment of the crash (not a wait for a condition).
      await new Promise((resolve) => setTimeout(resolve, crashAtMs));
      const victims = mode === 'power' ? all : mode === 'node' ? [engine.daemon, members[random.int(2)]!.daemon] : [engine.daemon];
      await Promise.all(victims.map((d) => d.kill9()));
      await settled;
    }
    note(`${story}: ${outcome} at the crash (${crashAtMs} ms)`);
    const fired = replicas.flatMap((r, i) => r.daemon.output().split('\n').filter((l) => l.includes('fault: ')).map((l) => `r${i}: ${l}`));
    if (fired.length > 0) note(`fault log: ${fired.join(' | ').slice(0, 400)}`);
    try {
      for (const r of replicas) if (r.daemon.child.exitCode !== null || r.daemon.child.signalCode !== null) r.daemon = await startReplica(r);
      // The control plane restarts the engine with the size it asked for: sometimes the old one,
      // sometimes the new one.
      const restartSize = category === 'expand' && random.int(2) === 0 ? expandedBytes : sizeBytes;
      engine = await startEngine(restartSize, replicas.map((r) => r.address));
      const status = (await ok(engine, 'GET', '/v1/status')) as { sizeBytes: number; replicas: { address: string; mode: string }[] };
      const rw = status.replicas.filter((r) => r.mode === 'rw').map((r) => r.address);
      assert.ok(rw.length >= 1, `no rw replica after the restart: ${JSON.stringify(status.replicas)}`);
      const shapes = await Promise.all(rw.map(async (address) => ({ address, shape: shapeOf(await chainOf(address)) })));
      for (const s of shapes.slice(1)) assert.deepEqual(s.shape, shapes[0]!.shape, `replicas ${shapes[0]!.address} and ${s.address} disagree on the chain`);
      const shape = shapes[0]!.shape;
      const state = scenario.shapeIs(shape);
      assert.ok(state !== null, `chain ${JSON.stringify(shape)} is neither the state before nor after`);
      assert.equal(status.sizeBytes, shape.sizeBytes, 'the engine serves another size than its replicas hold');
      const read = await readVolume(engine, dir);
      const expected = state === 'after' ? scenario.imageAfter : scenario.imageBefore;
      const diff = firstDifference(read, expected);
      if (category === 'revert') {
        // The chain looks the same before and after a revert: the data must be wholly one of them.
        const other = firstDifference(read, scenario.imageBefore);
        assert.ok(diff === null || other === null, `half a revert: vs reverted ${diff}; vs not reverted ${other}`);
      } else {
        assert.equal(diff, null, `flushed data lost or changed (${state} state)`);
      }
      if (category === 'rebuild' && !rw.includes(fresh.address)) {
        // A rebuild cut short leaves a replica that is simply rebuilt again.
        await scenario.start(engine);
        const again = (await ok(engine, 'GET', '/v1/rebuilds')) as { rebuilds: { address: string; state: string; error: string | null }[] };
        const r = again.rebuilds.find((x) => x.address === fresh.address);
        assert.equal(r?.state, 'done', `the second rebuild: ${JSON.stringify(r)}`);
        rw.push(fresh.address);
      }
      if (rw.length > 1) {
        const scrub = (await ok(engine, 'POST', '/v1/scrub', {})) as { mismatches: unknown[]; corrupt: unknown[] };
        assert.deepEqual(scrub.mismatches, [], 'rw replicas differ');
        assert.deepEqual(scrub.corrupt, [], 'a replica fails its own checksums');
      }
      const repairs = engine.daemon.output().split('\n').filter((line) => /start: (finishing|leaving|a replica already)/.test(line));
      note(`after restart: rw ${rw.join(', ')}; chain ${JSON.stringify(shape)} (${state})${repairs.length > 0 ? `; start reconcile: ${repairs.join(' | ')}` : ''}`);
      await engine.daemon.stop();
      for (const r of replicas) await r.daemon.stop();
    } catch (error) {
      throw new Error(`${story} (${outcome} at the crash): ${String(error)}\nreplay: SEED=${seed} node scripts/run-tests.mjs engine-op-crash`, { cause: error });
    }
  });
}

const seeds =
  process.env['SEED'] !== undefined
    ? [Number(process.env['SEED'])]
    : Array.from({ length: Number(process.env['ENGINE_CRASH_SEEDS'] ?? 8) }, (_, i) => i + 1);

for (const seed of seeds) {
  const category = categories[(seed - 1) % categories.length]!;
  const mode = modes[(seed - 1) % modes.length]!;
  test(`engine and replicas killed during ${category} (${mode}, seed ${seed})`, { timeout: 180_000 }, (t) => runSeed(seed, (m) => t.diagnostic(m)));
}
