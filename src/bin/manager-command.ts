// `shorthorn manager`: the control plane's controllers over the store. Today: the volume
// controller (placement, attach/detach through VolumeAttachment tickets, engine and replica
// desired states, robustness, replica reuse and replacement). It keeps the lease manager-<id>;
// volumes whose owner's lease expires move to a live manager.
import { randomBytes } from 'node:crypto';
import { writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { toError } from '../lib/errors.ts';
import { BackupController } from '../control/backups/backup-controller.ts';
import { httpEngineBackupApi } from '../control/backups/engine-backup-client.ts';
import { NodeLivenessMonitor } from '../control/controllers/node-liveness.ts';
import { DataIntegrityController } from '../control/controllers/data-integrity-controller.ts';
import { RecurringJobController } from '../control/controllers/recurring-job-controller.ts';
import { SnapshotController } from '../control/controllers/snapshot-controller.ts';
import { VolumeController } from '../control/controllers/volume-controller.ts';
import { armFaultPoints, crashAtEnv, faultTraceEnv, parseCrashAt } from '../control/runtime/fault-points.ts';
import { LeaseKeeper } from '../control/runtime/lease-keeper.ts';
import { managerLeaseName } from '../control/runtime/ownership.ts';
import { realTimers } from '../control/runtime/timers.ts';
import { openStore } from '../control/store/open-store.ts';
import { openLibraryBackupStore } from './backup-store-adapter.ts';
import { trimLocalFilesystem } from './local-fstrim.ts';
import { parseStoreSpec } from './node-command.ts';
import { systemClock } from './system-clock.ts';

interface ManagerCommandOptions {
  readonly store: string;
  readonly id?: string;
  readonly secretsDir?: string;
  readonly leaseTtlMs: string;
}

async function runManager(options: ManagerCommandOptions): Promise<void> {
  const id = options.id ?? hostname().toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63);
  const log = (message: string): void => {
    process.stdout.write(`shorthorn manager: ${id}: ${message}\n`);
  };
  const storeSpec = parseStoreSpec(options.store);
  if (typeof storeSpec === 'string') {
    process.stderr.write(`shorthorn manager: ${storeSpec}\n`);
    process.exit(2);
  }
  const leaseTtlMs = Number(options.leaseTtlMs);
  if (!Number.isSafeInteger(leaseTtlMs) || leaseTtlMs < 1000) {
    process.stderr.write(`shorthorn manager: --lease-ttl-ms must be an integer of at least 1000, not ${options.leaseTtlMs}\n`);
    process.exit(2);
  }
  // Tests only (scenario S26): crash at a named point of a reconcile loop (runtime/fault-points.ts).
  const crashAt = parseCrashAt(process.env[crashAtEnv] ?? '');
  if (typeof crashAt === 'string') {
    process.stderr.write(`shorthorn manager: ${crashAt}\n`);
    process.exit(2);
  }
  const faultPoints = armFaultPoints(crashAt, {
    trace: process.env[faultTraceEnv] === '1',
    // Written synchronously: the marker line must be out before the SIGKILL.
    log: (line) => writeSync(1, `shorthorn manager: ${id}: ${line}\n`),
    crash: () => process.kill(process.pid, 'SIGKILL'),
  });
  if (crashAt.length > 0) log(`fault points armed: ${crashAt.map((c) => `${c.point} (pass ${c.count})`).join(', ')}`);
  const store = openStore(storeSpec, { clock: systemClock, timers: realTimers });
  const lease = new LeaseKeeper(store, {
    name: managerLeaseName(id), holder: id, ttlMs: leaseTtlMs, timers: realTimers,
    onChange: (state) => log(`manager lease ${state}`),
    onError: (error) => log(`lease: ${error.message}`),
  });
  if ((await lease.start()) !== 'held') log('manager lease is held by another process; waiting for it');
  const volumes = new VolumeController({
    store, managerId: id, clock: systemClock, timers: realTimers, log,
    newId: () => randomBytes(4).toString('hex'), faultPoints,
  });
  await volumes.start();
  // Snapshots, purge, revert and expansion of the volumes this manager owns, through their engines.
  const snapshots = new SnapshotController({ store, managerId: id, clock: systemClock, timers: realTimers, log });
  await snapshots.start();
  // Named backup credentials live in the secrets directory (docs/manager.md "Backups").
  const secretsDir = options.secretsDir ?? (storeSpec.backend === 'embedded' ? join(storeSpec.dataDir, 'secrets') : undefined);
  const backups = new BackupController({
    store, managerId: id, clock: systemClock, timers: realTimers, log,
    openBackupStore: openLibraryBackupStore, engines: httpEngineBackupApi,
    credentials: { secretsDir, env: process.env },
  });
  await backups.start();
  // Recurring jobs: snapshots, backups, cleanup and trim on a cron schedule (docs/recurring-jobs.md).
  const recurringJobs = new RecurringJobController({
    store, managerId: id, clock: systemClock, timers: realTimers, log, trimFilesystem: trimLocalFilesystem,
  });
  await recurringJobs.start();
  // The periodic snapshot data check (snapshot-data-integrity-cronjob) and snapshotCheck requests.
  const dataIntegrity = new DataIntegrityController({ store, managerId: id, clock: systemClock, timers: realTimers, log });
  await dataIntegrity.start();
  const liveness = new NodeLivenessMonitor({ store, clock: systemClock, timers: realTimers, log });
  liveness.start();
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    liveness
      .stop()
      .then(() => snapshots.stop())
      .then(() => backups.stop())
      .then(() => recurringJobs.stop())
      .then(() => dataIntegrity.stop())
      .then(() => volumes.stop())
      .then(() => lease.stop())
      .then(() => store.close())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`shorthorn manager: shutdown failed: ${toError(error).stack ?? String(error)}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  log('manager running');
}

export function registerManagerCommand(program: Command): void {
  program
    .command('manager')
    .description('run the manager: the controllers that place, attach and heal volumes')
    .requiredOption('--store <spec>', 'embedded:PATH or etcd:URL[,URL]')
    .option('--id <name>', 'manager id (default: the host name); usually the node name')
    .option('--lease-ttl-ms <ms>', "manager lease time to live: this manager's volumes move to another manager this long after it stops renewing", '15000')
    .option('--secrets-dir <dir>', 'where backup-target-credential-secret names a KEY=VALUE file (default: STORE/secrets for the embedded store)')
    .action(async (options: ManagerCommandOptions) => {
      await runManager(options);
    });
}
