// A one-node Ceph for tests and benchmarks: a monitor, one bluestore OSD on a sparse file and a
// radosgw (S3) on 127.0.0.1, everything under a temp dir, started by the caller and stopped by
// PID. Authentication is off (with crc message modes, without which radosgw hangs on
// "get_initial_auth_request returned -13"), pools have one replica. ~20 s from nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.ts';
import { run } from './daemon.ts';

export interface CephRgw {
  /** http://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly dir: string;
  rgwPid(): number | undefined;
  /** SIGKILL radosgw only (the S3 endpoint goes away; the cluster stays). */
  killRgw(): Promise<void>;
  /** Start radosgw again on the same port and wait until it answers. */
  startRgw(): Promise<void>;
  /** Stop every daemon by PID and remove the temp dir. */
  stop(): Promise<void>;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, logs: () => string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(delay * 2, 500)) {
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`Ceph: timed out after ${timeoutMs} ms waiting for ${what}\n${logs()}`);
    await new Promise((resolve) => setTimeout(resolve, delay)); // poll interval, not a stand-in for a condition
  }
}

export async function startCephRgw(options: { timeoutMs?: number } = {}): Promise<CephRgw> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const dir = mkdtempSync(join(tmpdir(), 'shorthorn-ceph-'));
  const [monPort, rgwPort] = [await freePort(), await freePort()];
  const fsid = randomUUID();
  const conf = join(dir, 'ceph.conf');
  for (const sub of ['run', 'log', 'mon/ceph-a', 'osd/ceph-0', 'rgw']) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(conf, [
    '[global]',
    `fsid = ${fsid}`,
    `mon host = v2:127.0.0.1:${monPort}`,
    'mon initial members = a',
    'public addr = 127.0.0.1',
    'cluster addr = 127.0.0.1',
    'auth cluster required = none',
    'auth service required = none',
    'auth client required = none',
    'ms mon client mode = crc',
    'ms client mode = crc',
    'osd pool default size = 1',
    'osd pool default min size = 1',
    'osd pool default pg num = 8',
    'osd pool default pgp num = 8',
    'osd pool default pg autoscale mode = off',
    'mon allow pool size one = true',
    'mon warn on pool no redundancy = false',
    'mon max pg per osd = 1000',
    'osd crush chooseleaf type = 0',
    'osd objectstore = bluestore',
    'bluestore block create = true',
    'bluestore block size = 4294967296',
    'bluestore cache size = 134217728',
    'osd memory target = 939524096',
    `run dir = ${dir}/run`,
    `admin socket = ${dir}/run/$name.asok`,
    `log file = ${dir}/log/$name.log`,
    `keyring = ${dir}/keyring`,
    `mon data = ${dir}/mon/$cluster-$id`,
    `osd data = ${dir}/osd/$cluster-$id`,
    'osd max object name len = 460',
    'osd max object namespace len = 64',
    '[client.rgw.a]',
    `rgw frontends = beast endpoint=127.0.0.1:${rgwPort}`,
    `rgw data = ${dir}/rgw`,
    'rgw dns name = 127.0.0.1',
    '',
  ].join('\n'));
  const children: ChildProcess[] = [];
  let rgw: ChildProcess | undefined;
  const logs = (): string => {
    const out: string[] = [];
    for (const name of ['mon.a', 'osd.0', 'client.rgw.a']) {
      const path = join(dir, 'log', `${name}.log`);
      if (existsSync(path)) out.push(`--- ${name}\n${readFileSync(path, 'utf8').split('\n').slice(-15).join('\n')}`);
    }
    return out.join('\n');
  };
  const daemon = (command: string, args: string[]): ChildProcess => {
    const log = openSync(join(dir, 'log', `${command}.out`), 'a');
    const child = spawn(command, ['-f', '-c', conf, ...args], { stdio: ['ignore', log, log] });
    closeSync(log);
    children.push(child);
    return child;
  };
  const ceph = async (args: string[]): Promise<{ code: number | null; stdout: string }> =>
    run('ceph', ['-c', conf, '--connect-timeout', '5', ...args], { allowFailure: true });
  const stopAll = async (): Promise<void> => {
    for (const child of children.reverse()) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill('SIGKILL');
      await exited(child);
    }
  };
  const accessKeyId = 'SHORTHORNTESTKEY';
  const secretAccessKey = 'shorthorn-test-secret-not-a-real-one';
  const rgwUp = async (): Promise<boolean> => {
    try {
      const response = await fetch(`http://127.0.0.1:${rgwPort}/`, { signal: AbortSignal.timeout(2000) });
      await response.arrayBuffer();
      return true;
    } catch (error) {
      if (error instanceof Error) return false; // not listening yet
      throw error;
    }
  };
  const startRgw = async (): Promise<void> => {
    rgw = daemon('radosgw', ['-n', 'client.rgw.a']);
    await until('radosgw', rgwUp, timeoutMs, logs);
  };
  try {
    await run('monmaptool', ['--create', '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, '--fsid', fsid, join(dir, 'monmap')]);
    await run('ceph-authtool', ['--create-keyring', join(dir, 'keyring'), '--gen-key', '-n', 'mon.', '--cap', 'mon', 'allow *']);
    await run('ceph-mon', ['-c', conf, '--mkfs', '-i', 'a', '--monmap', join(dir, 'monmap'), '--keyring', join(dir, 'keyring')]);
    daemon('ceph-mon', ['-i', 'a']);
    await until('the monitor', async () => (await ceph(['mon', 'stat'])).code === 0, timeoutMs, logs);
    const osdUuid = randomUUID();
    const created = await ceph(['osd', 'new', osdUuid]);
    if (created.code !== 0 || created.stdout.trim() !== '0') throw new Error(`ceph osd new: ${created.stdout}\n${logs()}`);
    await run('ceph-osd', ['-c', conf, '-i', '0', '--mkfs', '--osd-uuid', osdUuid]);
    daemon('ceph-osd', ['-i', '0']);
    await until('the OSD', async () => /1 up/.test((await ceph(['osd', 'stat'])).stdout), timeoutMs, logs);
    await startRgw();
    await run('radosgw-admin', ['-c', conf, 'user', 'create', '--uid', 'shorthorn', '--display-name', 'shorthorn tests', '--access-key', accessKeyId, '--secret', secretAccessKey]);
  } catch (error) {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    endpoint: `http://127.0.0.1:${rgwPort}`,
    accessKeyId,
    secretAccessKey,
    dir,
    rgwPid: () => rgw?.pid,
    async killRgw() {
      if (rgw !== undefined && rgw.exitCode === null && rgw.signalCode === null) rgw.kill('SIGKILL');
      if (rgw !== undefined) await exited(rgw);
    },
    startRgw,
    async stop() {
      await stopAll();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
