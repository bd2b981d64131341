// The web UI in Debian's Chromium (driven by playwright-core) against a real cluster: three node
// agents, the manager and the API as processes. Log in (a wrong token first), create a 3-replica
// volume, attach it, see its live write IOPS above 0 while qemu-io writes, take a snapshot and
// see it in the tree, kill a replica process and watch the
// page go degraded → rebuilding with progress → healthy without a reload, give a setting a bad
// value and see the API's refusal, set a backup target, back up the snapshot, restore it into a
// new volume and read the data back, revert to the snapshot in maintenance mode, create a
// recurring job (a bad schedule first), and visit every page. Screenshots of each page go to
// test-artifacts/ui/ (SHORTHORN_UI_SCREENSHOTS=DIR to put them elsewhere).
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Replica } from '../../src/control/resources/replica.ts';
import { repoRoot, run, startDaemon, stopAll, withTempDir } from '../harness/daemon.ts';
import { startLocalCluster, type LocalCluster } from '../harness/local-cluster.ts';

after(stopAll);

const nodes = ['node-1', 'node-2', 'node-3'];
const volumeName = 'ui-vol';
const shotsDir = process.env['SHORTHORN_UI_SCREENSHOTS'] ?? join(repoRoot, 'test-artifacts/ui');
const chromiumArgs = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

// Form fields without an accessible name (no <label for>, no aria-label): none allowed.
const unlabelledScript = `[...document.querySelectorAll('input, select, textarea')]
  .filter((e) => e.labels.length === 0 && !e.getAttribute('aria-label') && !e.getAttribute('aria-labelledby'))
  .map((e) => e.outerHTML.slice(0, 120))`;

/** Save a screenshot of the page, after checking that every field on it has a label. */
async function shot(page: Page, name: string): Promise<void> {
  assert.deepEqual(await page.evaluate<string[]>(unlabelledScript), [], `unlabelled fields on the ${name} page`);
  await page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: true });
}

/** What the volume page showed, recorded in the page at every DOM change (a transient state is not missed between polls). */
interface Seen {
  readonly headline: string;
  readonly rebuilding: readonly string[];
}

// Runs in the page (a string: the test's tsconfig has no DOM types). Records each distinct
// (headline, rebuild cells) pair, and leaves a marker that a reload would erase.
const recorderScript = `(() => {
  window.seen = [];
  window.reloadMarker = 'still the same page';
  const record = () => {
    const headline = document.querySelector('[data-testid=volume-headline]')?.textContent ?? '';
    const rebuilding = [...document.querySelectorAll('[data-testid=rebuild-progress]')].map((e) => e.textContent ?? '');
    const last = window.seen[window.seen.length - 1];
    if (last === undefined || last.headline !== headline || JSON.stringify(last.rebuilding) !== JSON.stringify(rebuilding)) window.seen.push({ headline, rebuilding });
  };
  new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
  record();
})()`;

test('web UI: log in, create and attach a volume, snapshot, watch a rebuild live, refuse a bad setting, back up, restore, revert, every page', { timeout: 600_000 }, async () => {
  await mkdir(shotsDir, { recursive: true });
  await withTempDir('ui', async (dir) => {
    let cluster: LocalCluster | undefined;
    let browser: Browser | undefined;
    let failurePage: Page | undefined;
    const pageErrors: string[] = [];
    try {
      cluster = await startLocalCluster({ dir, nodes });
      const storeDir = join(dir, 'store');
      const api = await startDaemon({ args: ['api', '--store', `embedded:${storeDir}`, '--port', '0'], readyPattern: /listening on (http:\/\/127\.0\.0\.1:\d+)/, timeoutMs: 60_000 });
      const base = api.ready[1]!;
      const token = (await readFile(join(storeDir, 'api-token'), 'utf8')).trim();
      const apiCall = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
        const response = await fetch(`${base}${path}`, {
          method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        assert.ok(response.ok, `${method} ${path}: ${response.status} ${await response.clone().text()}`);
        return (await response.json()) as T;
      };
      const apiGet = <T>(path: string): Promise<T> => apiCall<T>('GET', path);
      const endpointOf = async (volume: string): Promise<string> => {
        const found = (await apiGet<{ data: { status?: { endpoint?: string } }[] }>(`/v1/engines?volume=${volume}`)).data.find((e) => e.status?.endpoint !== undefined);
        const uri = found?.status?.endpoint;
        assert.ok(uri?.startsWith('nbd+unix://') === true, `engine endpoint of ${volume}: ${uri}`);
        return uri;
      };
      let last = Date.now();
      const step = (what: string): void => {
        process.stdout.write(`${what}: ${Date.now() - last} ms\n`);
        last = Date.now();
      };

      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: chromiumArgs });
      const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
      const page = await context.newPage();
      failurePage = page;
      page.setDefaultTimeout(30_000);
      page.on('pageerror', (error) => pageErrors.push(error.message));
      page.on('dialog', (dialog) => void dialog.accept());
      const goTo = (name: string): Promise<void> => page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name, exact: true }).click();

      // Login: a wrong token is refused with the API's message; the right one opens the dashboard.
      await page.goto(`${base}/ui/`);
      await page.getByLabel('API token').fill('f'.repeat(64));
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('alert').filter({ hasText: 'wrong bearer token' }).waitFor();
      await shot(page, 'login');
      await page.getByLabel('API token').fill(token);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
      await page.getByTestId('stream-state').filter({ hasText: 'Live' }).waitFor();
      for (const node of nodes) await page.getByRole('region', { name: 'Storage by node' }).getByRole('cell', { name: node, exact: true }).waitFor();

      // Create a 3-replica volume from the volumes page; the manager places it (detached).
      await goTo('Volumes');
      await page.getByRole('button', { name: 'Create volume' }).click();
      await page.getByLabel('Name', { exact: true }).fill(volumeName);
      await page.getByLabel('Size').fill('256Mi');
      await page.getByLabel('Replicas').fill('3');
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      await page.getByRole('heading', { name: volumeName }).waitFor();
      await page.getByTestId('volume-headline').filter({ hasText: /^Detached/ }).waitFor({ timeout: 60_000 });

      // Attach to node-1 and wait for healthy, all three replicas RW.
      await page.getByLabel('Node', { exact: true }).selectOption('node-1');
      await page.getByRole('button', { name: 'Attach', exact: true }).click();
      await page.getByTestId('volume-headline').filter({ hasText: /^Healthy/ }).waitFor({ timeout: 60_000 });
      assert.equal(await page.getByTestId('replica-table').locator('tbody tr').count(), 3);

      step('created and attached');

      // Live I/O charts: qemu-io writes in a loop (past the data checked later) until the page,
      // which reads /metrics every 2 s, shows a write rate above 0; the loop ends either way.
      const endpoint = await endpointOf(volumeName);
      let writing = true;
      const writes = Array.from({ length: 16 }, (_, i) => ['-c', `write -P 0x33 ${200 * 1024 + i * 64}k 64k`]).flat();
      const writer = (async () => {
        const deadlineMs = Date.now() + 60_000;
        while (writing && Date.now() < deadlineMs) await run('qemu-io', ['-f', 'raw', ...writes, endpoint]);
      })();
      try {
        await page.getByTestId('io-write-iops').filter({ hasText: /[1-9]/ }).waitFor({ timeout: 60_000 });
        await page.getByTestId('io-write-mibps').filter({ hasText: /[1-9]/ }).waitFor();
        // A few more readings, so the screenshot shows lines rather than a dot.
        await page.getByTestId('io-chart-IOPS').locator('svg[data-rates="4"]').waitFor();
        await shot(page, 'volume-io');
      } finally {
        writing = false;
        await writer;
      }
      step('live I/O charts');

      // Data the snapshot (and later its backup) holds, then the snapshot, seen in the tree.
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 4M', '-c', 'flush', endpoint]);
      await page.getByLabel('New snapshot name (optional)').fill('snap-1');
      await page.getByRole('button', { name: 'Take snapshot' }).click();
      const snapshot = page.getByTestId('snapshot-snap-1');
      await snapshot.waitFor();
      // The snapshot controller marks it ready once the engine has taken it.
      await snapshot.locator('.badge', { hasText: 'ready' }).waitFor({ timeout: 30_000 });
      await shot(page, 'volume-detail');

      // Kill a replica that is not on the engine's node, with its node agent stopped first so it
      // stays down while 96 MiB are written; then start the agent again: the replica returns
      // and has that much to copy, slow enough to watch. The page must show it all without a reload.
      await page.evaluate(recorderScript);
      const replicas = (await apiGet<{ data: Replica[] }>(`/v1/replicas?volume=${volumeName}`)).data;
      const victim = replicas.find((r) => r.spec.nodeID === 'node-2');
      assert.ok(victim?.status?.pid !== undefined, `no running replica on node-2: ${JSON.stringify(replicas.map((r) => r.status))}`);
      step('snapshot');
      await cluster.agents.get('node-2')!.kill9();
      process.kill(victim.status.pid, 'SIGKILL');
      await page.getByTestId('volume-headline').filter({ hasText: /^Degraded/ }).waitFor({ timeout: 30_000 });
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x6b 8M 96M', '-c', 'flush', endpoint]);
      await cluster.startAgent('node-2');
      await page.getByTestId('rebuild-progress').first().waitFor({ timeout: 60_000 });
      await shot(page, 'volume-rebuilding');
      await page.getByTestId('volume-headline').filter({ hasText: /^Healthy/ }).waitFor({ timeout: 90_000 });
      const recorded = await page.evaluate<{ seen: Seen[]; reloadMarker?: string }>('({ seen: window.seen, reloadMarker: window.reloadMarker })');
      assert.equal(recorded.reloadMarker, 'still the same page', 'the page was reloaded');
      const states = recorded.seen;
      const firstDegraded = states.findIndex((s) => s.headline.startsWith('Degraded'));
      const firstRebuilding = states.findIndex((s) => s.rebuilding.length > 0);
      const lastHealthy = states.findLastIndex((s) => s.headline.startsWith('Healthy'));
      assert.ok(firstDegraded >= 0 && firstRebuilding > firstDegraded && lastHealthy > firstRebuilding, `states seen: ${JSON.stringify(states)}`);
      assert.ok(states.some((s) => s.rebuilding.some((text) => /\d+%/.test(text))), 'rebuild progress shown as a percentage');
      process.stdout.write(`volume page states: ${states.map((s) => `${s.headline.split(':')[0]}${s.rebuilding.length > 0 ? ` [${s.rebuilding.join(', ')}]` : ''}`).join(' → ')}\n`);

      step('replica killed, degraded, rebuilt, healthy');

      // A setting with a bad value: the API's refusal is shown beside the field.
      await goTo('Settings');
      const setting = page.getByTestId('setting-default-replica-count');
      await setting.getByRole('textbox').fill('lots');
      await setting.getByRole('button', { name: 'Save' }).click();
      const refusal = setting.getByRole('alert');
      await refusal.waitFor();
      assert.match((await refusal.textContent()) ?? '', /default-replica-count|integer|lots/i);
      await setting.scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(shotsDir, 'settings.png') });

      // A backup target (a directory) set from the settings page; the target is listed every 2 s.
      await apiCall('PUT', '/v1/settings/backupstore-poll-interval', { value: '2' });
      const target = page.getByTestId('setting-backup-target');
      await target.getByRole('textbox').fill(join(dir, 'backups'));
      await target.getByRole('button', { name: 'Save' }).click();
      await target.getByRole('status').filter({ hasText: 'Saved' }).waitFor();
      step('settings');

      // Back up snap-1 from the volume page and watch the backup complete there.
      await goTo('Volumes');
      await page.getByRole('link', { name: volumeName, exact: true }).click();
      await page.getByTestId('snapshot-snap-1').locator('> .snapshot').getByRole('button', { name: 'Back up' }).click();
      await page.getByTestId(`backups-of-${volumeName}`).locator('.badge', { hasText: 'Completed' }).waitFor({ timeout: 120_000 });
      step('backup');

      // Restore it from the backups page into a new volume, attach that, and read the data back.
      await goTo('Backups');
      const backupVolume = page.getByTestId(`backup-volume-${volumeName}`);
      await backupVolume.locator('.badge', { hasText: 'Completed' }).waitFor({ timeout: 60_000 });
      await shot(page, 'backups');
      await backupVolume.getByLabel(/Name of the volume to restore/).fill('ui-restored');
      await backupVolume.getByRole('button', { name: 'Restore', exact: true }).click();
      await page.getByRole('heading', { name: 'ui-restored' }).waitFor();
      await page.getByTestId('volume-headline').filter({ hasText: /^Restoring/ }).waitFor();
      await page.getByTestId('volume-headline').filter({ hasText: /^Detached/ }).waitFor({ timeout: 120_000 });
      await page.getByTestId('volume-conditions').getByRole('cell', { name: /^restored backup-/ }).waitFor();
      await page.getByLabel('Node', { exact: true }).selectOption('node-2');
      await page.getByRole('button', { name: 'Attach', exact: true }).click();
      await page.getByTestId('volume-headline').filter({ hasText: /^Healthy/ }).waitFor({ timeout: 60_000 });
      await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x5a 0 4M', '-c', 'read -P 0 4M 4M', await endpointOf('ui-restored')]);
      step('restored and read back');

      // Revert ui-vol to snap-1: detach, attach in maintenance mode (no NBD client may be connected
      // during a revert), revert; the outcome is shown in the volume's conditions.
      await goTo('Volumes');
      await page.getByRole('link', { name: volumeName, exact: true }).click();
      await page.getByRole('button', { name: 'Detach' }).click();
      await page.getByTestId('volume-headline').filter({ hasText: /^Detached/ }).waitFor({ timeout: 60_000 });
      await page.getByTestId('io-state').filter({ hasText: 'Not attached' }).waitFor();
      await page.getByLabel('Node', { exact: true }).selectOption('node-1');
      await page.getByRole('button', { name: 'Attach in maintenance mode' }).click();
      await page.getByTestId('volume-headline').filter({ hasText: /^Healthy/ }).waitFor({ timeout: 60_000 });
      await page.getByTestId('snapshot-snap-1').locator('> .snapshot').getByRole('button', { name: 'Revert' }).click();
      await page.getByTestId('volume-conditions').getByRole('cell', { name: 'Reverted to snap-1' }).waitFor({ timeout: 60_000 });
      await shot(page, 'volume-reverted');
      step('reverted');

      // Every other page renders; the ones whose routes are missing say so.
      await goTo('Dashboard');
      await page.getByRole('heading', { name: 'Volumes (2)' }).waitFor();
      await shot(page, 'dashboard');
      await goTo('Volumes');
      await page.getByTestId(`volume-row-${volumeName}`).waitFor();
      await shot(page, 'volumes');
      await goTo('Nodes');
      await page.getByTestId('node-node-3').waitFor();
      await shot(page, 'nodes');
      await goTo('Recurring jobs');
      await page.getByRole('heading', { name: 'Recurring jobs' }).waitFor();
      // A job with a bad schedule is refused with the API's reason; a good one is listed.
      await page.getByRole('button', { name: 'Create job' }).click();
      await page.getByLabel('Name', { exact: true }).fill('ui-snap');
      await page.getByLabel('Schedule (cron, UTC)').fill('every tuesday');
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      await page.getByRole('alert').filter({ hasText: /cron/ }).waitFor();
      await page.getByLabel('Schedule (cron, UTC)').fill('0 3 * * *');
      await page.getByRole('button', { name: 'Create', exact: true }).click();
      await page.getByRole('cell', { name: 'ui-snap', exact: true }).waitFor();
      await shot(page, 'recurring-jobs');
      await goTo('Events');
      await page.getByRole('cell', { name: volumeName }).first().waitFor();
      await shot(page, 'events');
      assert.deepEqual(pageErrors, [], 'no uncaught errors in the page');
    } catch (error) {
      await failurePage?.screenshot({ path: join(shotsDir, 'failure.png'), fullPage: true });
      process.stderr.write(`${cluster?.dump() ?? 'no cluster'}\n`);
      throw error;
    } finally {
      await browser?.close();
      await stopAll();
      cluster?.killInstances();
      await cluster?.store.close();
    }
  });
});
