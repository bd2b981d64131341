// `shorthorn up` as a process: a manager, two node agents and the API come up on one data
// directory; the nodes register, a volume is placed on them; attached through the API in
// maintenance mode (disableFrontend) its engine has no NBD socket (nbdinfo fails), and the same
// ticket with the frontend restarts the engine with one that serves; SIGTERM stops every daemon.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Engine } from '../../src/control/resources/engine.ts';
import type { Node } from '../../src/control/resources/node.ts';
import { apiVersion } from '../../src/control/resources/object-meta.ts';
import type { Replica } from '../../src/control/resources/replica.ts';
import { validateResource, withDefaults } from '../../src/control/resources/validate-resource.ts';
import type { Volume } from '../../src/control/resources/volume.ts';
import { SqliteStore } from '../../src/control/store/sqlite-store.ts';
import { run, startDaemon, stopAll, waitFor, withTempDir } from '../harness/daemon.ts';

after(stopAll);

/** Live processes whose command line mentions `dir` (the daemons `up` started from it). */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2))) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(dir)) pids.push(Number(entry));
    } catch {
      // Ended while we looked.
    }
  }
  return pids;
}

test('shorthorn up runs a manager, node agents and the API; SIGTERM stops them', async () => {
  await withTempDir('up', async (dir) => {
    const up = await startDaemon({ args: ['up', '--data', dir, '--nodes', '2', '--port', '0'], readyPattern: /2 node\(s\), manager and API running/, timeoutMs: 60_000 });
    assert.match(up.output(), /\[api\] .*listening on http:\/\/127\.0\.0\.1:\d+/);
    const store = new SqliteStore({ dataDir: join(dir, 'store'), pollIntervalMs: 10 });
    try {
      await waitFor('both nodes ready', async () => {
        const nodes = (await store.list('Node')).items as Node[];
        const ready = nodes.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
        return ready.length === 2 ? true : undefined;
      });
      const volume = validateResource('Volume', withDefaults('Volume', {
        apiVersion, kind: 'Volume', metadata: { name: 'vol-up' }, spec: { size: 1024 * 1024, numberOfReplicas: 2 },
      }));
      assert.ok(volume.ok);
      await store.create(volume.value);
      await waitFor('the volume placed on both nodes', async () => {
        const v = (await store.get('Volume', 'vol-up')) as Volume;
        const replicas = ((await store.list('Replica')).items as Replica[]).map((r) => r.spec.nodeID).sort();
        return v.status?.state === 'detached' && replicas.join() === 'node-1,node-2' ? true : undefined;
      });
      assert.ok(processesUsing(dir).length >= 4, 'manager, two agents and the API run');

      // Maintenance mode through the API, then the same ticket with the frontend.
      const apiUrl = /API (http:\/\/127\.0\.0\.1:\d+)/.exec(up.output())?.[1];
      assert.ok(apiUrl !== undefined, up.output());
      const token = readFileSync(join(dir, 'api-token'), 'utf8').trim();
      const attach = async (disableFrontend: boolean): Promise<void> => {
        const response = await fetch(`${apiUrl}/v1/volumes/vol-up?action=attach`, {
          method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ hostId: 'node-1', disableFrontend }),
        });
        assert.equal(response.status, 200, await response.text());
      };
      const socket = join(dir, 'node-1', 'sockets', 'vol-up-e-0.sock');
      const attachedEngine = (frontendDisabled: boolean): Promise<Engine> =>
        waitFor(`the volume attached with the frontend ${frontendDisabled ? 'disabled' : 'enabled'}`, async () => {
          const v = (await store.get('Volume', 'vol-up')) as Volume;
          const e = (await store.get('Engine', 'vol-up-e-0')) as Engine;
          const reported = e.status?.currentState === 'running' && e.status.endpoint !== undefined && (e.status.endpoint === '') === frontendDisabled;
          return v.status?.state === 'attached' && (v.status.frontendDisabled === true) === frontendDisabled && reported ? e : undefined;
        }, 60_000);
      await attach(true);
      const maintenance = await attachedEngine(true);
      assert.equal(maintenance.spec.disableFrontend, true);
      assert.equal(existsSync(socket), false, 'no NBD socket');
      const refused = await run('nbdinfo', ['--size', `nbd+unix:///vol-up?socket=${socket}`], { allowFailure: true });
      assert.notEqual(refused.code, 0, `nbdinfo on a maintenance-mode engine: ${refused.stdout}`);
      await attach(false);
      const normal = await attachedEngine(false);
      assert.ok(normal.spec.disableFrontend === undefined && normal.spec.epoch > maintenance.spec.epoch, 'a fresh engine with the frontend');
      assert.equal(normal.status?.endpoint, `nbd+unix:///vol-up?socket=${socket}`);
      assert.equal((await run('nbdinfo', ['--size', normal.status?.endpoint ?? ''])).stdout.trim(), String(1024 * 1024));
      // Detach: the agents leave the processes they run behind when they stop (a restarted agent adopts them).
      const detached = await fetch(`${apiUrl}/v1/volumes/vol-up?action=detach`, {
        method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}',
      });
      assert.equal(detached.status, 200, await detached.text());
      await waitFor('the volume detached', async () => (((await store.get('Volume', 'vol-up')) as Volume).status?.state === 'detached' ? true : undefined), 60_000);
      await up.stop();
      await waitFor('every daemon ended', () => (processesUsing(dir).length === 0 ? true : undefined));
    } finally {
      for (const pid of processesUsing(dir)) process.kill(pid, 'SIGKILL');
      await store.close();
    }
  });
});
