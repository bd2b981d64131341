// filesystem-trim for the manager: fstrim of a volume's filesystem when it is mounted on this host
// by `shorthorn volume attach --mount` (whose record in RUN/attachments/<volume>.json names the
// mount point). A volume mounted on another host, or by other means, is reported as not mounted
// here: the manager has no agent on that host to ask yet (docs/recurring-jobs.md).
import type { Volume } from '../control/resources/volume.ts';
import { attachmentsDir, mountOf, readAttachmentState } from '../cli/attachment-state.ts';
import { mountPoints, runTool } from '../cli/host-tools.ts';

export async function trimLocalFilesystem(volume: Volume): Promise<string> {
  const name = volume.metadata.name;
  const state = readAttachmentState(name);
  const dir = state === undefined ? undefined : mountOf(state);
  if (dir === undefined) {
    return `skipped: volume ${name} is not mounted on this host (no \`shorthorn volume attach --mount\` record in ${attachmentsDir()})`;
  }
  if (!mountPoints().has(dir)) return `skipped: ${dir} is recorded as the mount of volume ${name}, but nothing is mounted there`;
  const result = await runTool('fstrim', ['--verbose', dir]);
  if (result.code !== 0) {
    throw new Error(`fstrim ${dir} failed: ${(result.stderr.trim() || result.stdout.trim() || `exit code ${result.code}`).split('\n')[0] ?? ''}`);
  }
  return `fstrim ${result.stdout.trim() || dir}`;
}
