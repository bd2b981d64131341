// The NFS target. A real NFS round trip needs the kernel's NFS client and server (nfs4/nfsd in
// /proc/filesystems, nfs-kernel-server); where they exist this test exports a temp dir, mounts it,
// writes and reads through the mount (never run on our build machines, so unproven); where not (as on our build machines, whose kernel has neither),
// it says so and skips. The mount planning and the "no NFS client" error are tested everywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { nfsMountAttempts, nfsMountDir, NfsTarget } from '../../src/backup/nfs-target.ts';
import { openBackupTarget } from '../../src/backup/open-backup-target.ts';
import { isBackupError } from '../../src/format/backup/backup-error.ts';
import { DirectoryTarget } from '../../src/backup/directory-target.ts';

const filesystems = readFileSync('/proc/filesystems', 'utf8');
const kernelNfs = /\bnfs4\b/.test(filesystems) && /\bnfsd\b/.test(filesystems);
const nfsTools = existsSync('/sbin/mount.nfs4') && existsSync('/usr/sbin/exportfs');

test('NFS mount planning follows Longhorn (mount dir per server and export, 4.2 → 4.1 → 4.0)', () => {
  const url = { server: '10.0.0.5', exportPath: '/exports/backups', options: [] };
  assert.equal(nfsMountDir(url, '/mnt/x'), '/mnt/x/10_0_0_5/exports/backups');
  assert.deepEqual(nfsMountAttempts(url), [
    'nfsvers=4.2,actimeo=1,soft,timeo=300,retry=2',
    'nfsvers=4.1,actimeo=1,soft,timeo=300,retry=2',
    'nfsvers=4.0,actimeo=1,soft,timeo=300,retry=2',
  ]);
  assert.deepEqual(nfsMountAttempts({ ...url, options: ['nfsvers=4.1', 'hard'] }), ['nfsvers=4.1,hard']);
});

test('openBackupTarget picks the driver from the URL', async () => {
  const target = await openBackupTarget('vfs:///tmp/shorthorn-open-target-test');
  assert.ok(target instanceof DirectoryTarget);
  assert.equal(target.url, 'vfs:///tmp/shorthorn-open-target-test');
  await assert.rejects(openBackupTarget('ftp://x/y'), (e) => isBackupError(e, 'invalid_argument'));
});

test('an NFS target on a host without a working NFS client fails with a clear error', { skip: kernelNfs && nfsTools ? 'this host has NFS; the round trip below covers it' : false }, async () => {
  const error = await NfsTarget.mount({ server: '127.0.0.1', exportPath: '/nonexistent', options: ['nfsvers=4.2', 'soft', 'timeo=10', 'retry=0'] }, { mountRoot: '/tmp/shorthorn-nfs-mounts', timeoutMs: 20_000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(isBackupError(error, 'not_supported') || isBackupError(error, 'io'), String(error));
  assert.match(String(error), /nfs:\/\/127\.0\.0\.1:\/nonexistent/);
});

test('NFS round trip through the kernel client', {
  skip: kernelNfs && nfsTools ? false : `no kernel NFS here (nfs4/nfsd in /proc/filesystems: ${/\bnfs4\b/.test(filesystems)}/${/\bnfsd\b/.test(filesystems)}; nfs-common and nfs-kernel-server tools: ${nfsTools}), so nfs:// cannot be mounted on this host`,
}, async () => {
  // Reached only on hosts with kernel NFS: export a temp dir to 127.0.0.1 and use it.
  const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { execFileSync } = await import('node:child_process');
  const exported = await mkdtemp('/tmp/shorthorn-nfs-export-');
  const mountRoot = await mkdtemp('/tmp/shorthorn-nfs-mounts-');
  execFileSync('exportfs', ['-o', 'rw,no_root_squash,fsid=0,insecure', `127.0.0.1:${exported}`]);
  try {
    const target = await NfsTarget.mount({ server: '127.0.0.1', exportPath: exported, options: [] }, { mountRoot });
    try {
      await target.write('backupstore/x', new TextEncoder().encode('over nfs'));
      await writeFile(`${exported}/probe`, 'y');
      assert.deepEqual(await target.read('backupstore/x', 100), new TextEncoder().encode('over nfs'));
    } finally {
      await target.unmount();
    }
  } finally {
    execFileSync('exportfs', ['-u', `127.0.0.1:${exported}`]);
    await rm(exported, { recursive: true, force: true });
    await rm(mountRoot, { recursive: true, force: true });
  }
});
