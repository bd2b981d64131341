// The web UI in Debian's Chromium (driven by playwright-core) against a real cluster: three node
// agents, the manager and the API as processes. Log in (a wrong token first), create a 3-replica
// volume, attach it, take a snapshot and see it in the tree, kill a replica process and watch the
// page go degraded → rebuilding with progress → healthy without a reload, give a setting a bad
// value and see the API's refusal, and visit every page. Screenshots of each page go to
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

async function shot(page: Page, name: string): Promise<void> {
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

test('web UI: log in, create and attach a volume, snapshot, watch a rebuild live, refuse a bad setting, every page', async () => {
  await mkdir(shotsDir, { recursive: true });
  await withTempDir('ui', async (dir) => {
    let cluster: LocalCluster | undefined;
    let browser: Browser | undefined;
    let failurePage: Page | undefined;
    const pageErrors: string[] = [];
    try {
      cluster = await startLocalCluster({ dir, nodes });
      const storeDir = join(dir, 'store');
      const api = await startDaemon({ args: ['api', '--store', `embedded:${storeDir}`, '--port', '0'], readyPattern: /listening on (http:\/\/127\.0\.0\.1:\d+)/ });
      const base = api.ready[1]!;
      const token = (await readFile(join(storeDir, 'api-token'), 'utf8')).trim();
      const apiGet = async <T>(path: string): Promise<T> => (await (await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } })).json()) as T;

      browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: chromiumArgs });
      const context = await browser.newContext({ viewport: { width: 1366, height: 768 } });
      const page = await context.newPage();
      failurePage = page;
      page.setDefaultTimeout(30_000);
      page.on('pageerror', (error) => pageErrors.push(error.message));
      page.on('dialog', (dialog) => void dialog.accept());

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
      await page.getByRole('link', { name: 'Volumes' }).click();
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

      // A snapshot, seen in the tree.
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
      const endpoint = (await apiGet<{ data: { status?: { endpoint?: string } }[] }>(`/v1/engines?volume=${volumeName}`)).data[0]?.status?.endpoint;
      assert.ok(endpoint?.startsWith('nbd+unix://') === true, `engine endpoint ${endpoint}`);
      await cluster.agents.get('node-2')!.kill9();
      process.kill(victim.status.pid, 'SIGKILL');
      await page.getByTestId('volume-headline').filter({ hasText: /^Degraded/ }).waitFor({ timeout: 30_000 });
      await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x6b 0 96M', '-c', 'flush', endpoint]);
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

      // A setting with a bad value: the API's refusal is shown beside the field.
      await page.getByRole('link', { name: 'Settings' }).click();
      const setting = page.getByTestId('setting-default-replica-count');
      await setting.getByRole('textbox').fill('lots');
      await setting.getByRole('button', { name: 'Save' }).click();
      const refusal = setting.getByRole('alert');
      await refusal.waitFor();
      assert.match((await refusal.textContent()) ?? '', /default-replica-count|integer|lots/i);
      await shot(page, 'settings');

      // Every other page renders; the ones whose routes are missing say so.
      await page.getByRole('link', { name: 'Dashboard' }).click();
      await page.getByRole('heading', { name: 'Volumes (1)' }).waitFor();
      await shot(page, 'dashboard');
      await page.getByRole('link', { name: 'Volumes' }).click();
      await page.getByTestId(`volume-row-${volumeName}`).waitFor();
      await shot(page, 'volumes');
      await page.getByRole('link', { name: 'Nodes' }).click();
      await page.getByTestId('node-node-3').waitFor();
      await shot(page, 'nodes');
      for (const [link, name] of [['Backups', 'backups'], ['Recurring jobs', 'recurring-jobs']] as const) {
        await page.getByRole('link', { name: link }).click();
        await page.getByRole('heading', { name: link }).waitFor();
        await page.locator('main').getByText(/not available yet|No backup target set|No recurring jobs|No backups|Backup volumes/).first().waitFor();
        await shot(page, name);
      }
      await page.getByRole('link', { name: 'Events' }).click();
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
