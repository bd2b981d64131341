// The replica directory's instance id (format/replica-identity.ts): 32 hex digits in
// `replica.id`, made once when a directory first serves and kept for its life, so that an engine
// can tell this replica from another one that later listens on the same address. A separate file
// (not a field of replica.meta): the metadata format and the store stay as they are, and a
// directory from before instance ids gets one the first time a daemon opens it.
import { isInstanceId } from '../format/replica-identity.ts';
import { joinPath } from './replica-files.ts';
import { readWholeFile, writeNewFile, type DirContext } from './replica-dir.ts';
import { ReplicaError, ioFailure } from './replica-error.ts';

export const instanceIdFileName = 'replica.id';
/** Ends in .tmp: a leftover of a crash is removed at the next open (replica-dir.ts). */
const instanceIdTempName = 'replica.id.tmp';

/**
 * Read this directory's instance id; if it has none yet, make one with `newId` and make it
 * durable (written, synced, renamed into place, directory synced) before returning it.
 * A file that holds anything but one id is `corrupt`: guessing a new identity would hide it.
 */
export async function loadOrCreateInstanceId(ctx: DirContext, newId: () => string): Promise<{ instanceId: string; created: boolean }> {
  const present = (await ctx.files.list(ctx.dir)).includes(instanceIdFileName);
  if (present) {
    const text = new TextDecoder().decode(await readWholeFile(ctx, instanceIdFileName, 64)).trim();
    if (!isInstanceId(text)) throw new ReplicaError('corrupt', `${joinPath(ctx.dir, instanceIdFileName)} does not hold an instance id`);
    return { instanceId: text, created: false };
  }
  const instanceId = newId();
  if (!isInstanceId(instanceId)) throw new ReplicaError('invalid_argument', `${JSON.stringify(instanceId)} is not an instance id`);
  try {
    await writeNewFile(ctx, instanceIdTempName, new TextEncoder().encode(`${instanceId}\n`));
    await ctx.files.rename(joinPath(ctx.dir, instanceIdTempName), joinPath(ctx.dir, instanceIdFileName));
    await ctx.files.syncDir(ctx.dir);
  } catch (error) {
    throw ioFailure(`Cannot write ${instanceIdFileName} in ${ctx.dir}`, error);
  }
  return { instanceId, created: true };
}
