// The README's five-minute walkthrough, performed literally: every ```sh block marked
// `<!-- walkthrough:NAME -->` in README.md is run as written, in order, by bash in a fresh
// directory, with `shorthorn` on PATH (what `npm link` gives a reader). The environment only
// isolates the run from the machine: SHORTHORN_API picks a free port instead of 9500, and
// SHORTHORN_RUN_DIR keeps the attachment records in the test's directory instead of /run/shorthorn.
// Between blocks the test checks what the README promises (nodes up, volume mounted, files there,
// the killed replica restarted and rebuilt, the revert undone, nothing left behind), polling where
// the cluster works in the background. Cleanup in `after` undoes mounts, loop devices and
// processes of this run even when a step failed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShorthornClient } from '../../src/api/client.ts';
import type { EngineStatus } from '../../src/control/resources/engine.ts';
import type { ReplicaSpec, ReplicaStatus } from '../../src/control/resources/replica.ts';
import { repoRoot, run, shorthornBin, waitFor } from '../harness/daemon.ts';
import { freePort } from '../harness/free-port.ts';

interface Block {
  readonly name: string;
  readonly script: string;
}

/** The marked blocks of the README, in order. */
function walkthroughBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  for (const match of markdown.matchAll(/<!-- walkthrough:([a-z0-9-]+) -->\n```sh\n([\s\S]*?)```/g)) {
    blocks.push({ name: match[1] ?? '', script: match[2] ?? '' });
  }
  return blocks;
}

const dir = mkdtempSync(join(tmpdir(), 'shorthorn-walkthrough-'));
const work = join(dir, 'demo');
const bin = join(dir, 'bin');
const runDir = join(dir, 'run');
const dataDir = join(work, 'shorthorn-data');
const mountDir = join(work, 'mnt');

/** Live processes whose command line mentions this run's directory: all started by this test. */
function processesOfThisRun(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // It ended while we looked.
    }
  }
  return pids;
}

function mountsUnderRun(): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => (line.split(' ')[4] ?? '').replace(/\\040/g, ' '))
    .filter((point) => point.startsWith(dir));
}

function loopDevicesOfRun(): string[] {
  if (!existsSync('/sys/block')) return [];
  return readdirSync('/sys/block').filter((name) => {
    try {
      return name.startsWith('loop') && readFileSync(`/sys/block/${name}/loop/backing_file`, 'utf8').startsWith(dir);
    } catch {
      // Not bound to a file.
      return false;
    }
  });
}

after(async () => {
  // Undo whatever a failed step left: mounts (deepest first), loop devices, then our processes.
  for (const point of mountsUnderRun().sort().reverse()) await run('umount', ['-l', point], { allowFailure: true });
  for (const loop of loopDevicesOfRun()) await run('losetup', ['-d', `/dev/${loop}`], { allowFailure: true });
  for (const pid of processesOfThisRun()) process.kill(pid, 'SIGKILL');
  await waitFor('the processes of this run ended', () => (processesOfThisRun().length === 0 ? true : undefined), 10_000).catch(() => undefined);
  for (const point of mountsUnderRun().sort().reverse()) await run('umount', ['-l', point], { allowFailure: true });
  if (mountsUnderRun().length === 0) rmSync(dir, { recursive: true, force: true });
  else process.stderr.write(`walkthrough: left ${dir} in place: still mounted: ${mountsUnderRun().join(', ')}\n`);
});

test('the README walkthrough, literally, from a fresh directory', { timeout: 15 * 60_000 }, async () => {
  const blocks = walkthroughBlocks(readFileSync(join(repoRoot, 'README.md'), 'utf8'));
  assert.deepEqual(blocks.map((b) => b.name), ['up', 'attach', 'snapshot', 'heal', 'revert', 'cleanup'], 'the README has the walkthrough blocks');
  mkdirSync(work, { recursive: true });
  mkdirSync(bin, { recursive: true });
  // What `npm link` does: a `shorthorn` command on PATH.
  writeFileSync(join(bin, 'shorthorn'), `#!/bin/sh\nexec "${process.execPath}" "${shorthornBin}" "$@"\n`);
  chmodSync(join(bin, 'shorthorn'), 0o755);
  const port = await freePort();
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !key.startsWith('SHORTHORN_')) env[key] = value;
  Object.assign(env, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, SHORTHORN_API: `http://127.0.0.1:${port}`, SHORTHORN_RUN_DIR: runDir });

  const step = async (name: string): Promise<string> => {
    const block = blocks.find((b) => b.name === name);
    assert.ok(block !== undefined);
    process.stdout.write(`--- walkthrough:${name}\n${block.script}`);
    const result = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
      const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', block.script], { cwd: work, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
      child.once('error', reject);
      child.once('close', (code) => resolve({ code, output }));
    });
    process.stdout.write(result.output.replace(/^/gm, '    | '));
    const log = existsSync(join(dataDir, 'up.log')) ? readFileSync(join(dataDir, 'up.log'), 'utf8').split('\n').slice(-60).join('\n') : '(no up.log)';
    assert.equal(result.code, 0, `walkthrough:${name} failed (exit ${result.code}):\n${result.output}\nend of up.log:\n${log}`);
    return result.output;
  };

  const upOutput = await step('up');
  assert.match(upOutput, /3 node\(s\), manager and API running/);
  assert.match(upOutput, /node-1\s+yes\s+yes/);
  assert.ok(existsSync(join(dataDir, 'api-token')), 'the token is where the CLI looks by default');
  const client = new ShorthornClient({ baseUrl: env['SHORTHORN_API'] ?? '', token: readFileSync(join(dataDir, 'api-token'), 'utf8').trim() });

  const attachOutput = await step('attach');
  assert.match(attachOutput, /making ext4/);
  assert.ok(mountsUnderRun().includes(mountDir), `${mountDir} is mounted`);
  assert.ok(existsSync(join(runDir, 'attachments', 'demo.json')), 'attach recorded what it set up');
  assert.match(attachOutput, /Robustness:\s+healthy/);

  const snapshotOutput = await step('snapshot');
  assert.match(snapshotOutput, /snapshot first of volume demo taken/);
  assert.match(snapshotOutput, /^first\s.*\byes\b/m);
  const numbers = readFileSync(join(mountDir, 'numbers.txt'), 'utf8');

  // The replica the README kills, and its process, before the block runs.
  const replicas = (await client.listReplicas('demo')).data;
  const victim = replicas.find((r) => (r.spec as ReplicaSpec).nodeID === 'node-2');
  assert.ok(victim !== undefined, 'a replica on node-2');
  const victimPid = (victim.status as ReplicaStatus).pid;
  assert.ok(victimPid !== undefined);
  const healOutput = await step('heal');
  assert.match(healOutput, /hello from shorthorn\nwritten while a replica was down/);
  // The watch may end on a status written before the kill was noticed: check the heal itself.
  await waitFor('the killed replica restarted, rebuilt and RW again', async () => {
    const replica = (await client.listReplicas('demo')).data.find((r) => r.id === victim.id);
    const engine = (await client.listEngines('demo')).data.find((e) => (e.status as EngineStatus | undefined)?.currentState === 'running');
    const status = (engine?.status ?? {}) as EngineStatus;
    const modes = Object.values(status.replicaModeMap ?? {});
    const pid = (replica?.status as ReplicaStatus | undefined)?.pid;
    const rebuilt = status.rebuildStatus?.[victim.id]?.state === 'done';
    return pid !== undefined && pid !== victimPid && rebuilt && modes.length === 3 && modes.every((m) => m === 'RW') ? true : undefined;
  }, 120_000);

  const revertOutput = await step('revert');
  assert.match(revertOutput, /reverted to first/);
  assert.match(revertOutput, /hello from shorthorn/);
  assert.ok(!existsSync(join(mountDir, 'during.txt')), 'the file written after the snapshot is gone');
  assert.equal(readFileSync(join(mountDir, 'numbers.txt'), 'utf8'), numbers, 'the snapshot data is intact');

  await step('cleanup');
  assert.deepEqual(mountsUnderRun(), [], 'nothing mounted');
  assert.deepEqual(loopDevicesOfRun(), [], 'no loop device left');
  assert.deepEqual(readdirSync(join(runDir, 'attachments')), [], 'no attachment record left');
  await waitFor('every process of the cluster ended', () => (processesOfThisRun().length === 0 ? true : undefined), 60_000);
  assert.ok(!existsSync(join(dataDir, 'up.pid')), 'up removed its pid file');
});
