// What `volume attach --device|--mount` set up on this host, in a small JSON file per volume
// (RUN/attachments/<volume>.json, RUN = $SHORTHORN_RUN_DIR or /run/shorthorn), so that a later
// `volume detach` — another process — can undo it in reverse order. The file is rewritten after
// every step, so an attach that fails half-way, or a detach that is interrupted, leaves a record
// of exactly what is still set up. /run is a tmpfs: the record goes with a reboot, as do the
// loop devices and FUSE mounts it describes.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { HostError } from './host-error.ts';

export type AttachStep =
  /** nbdfuse serving the volume as the file `<fuseDir>/nbd`; identified by pid and start time. */
  | { readonly kind: 'nbdfuse'; readonly pid: number; readonly startTime: string; readonly fuseDir: string }
  /** A loop device over that file. */
  | { readonly kind: 'loop'; readonly device: string; readonly backingFile: string }
  /** The kernel NBD client on /dev/nbdN. */
  | { readonly kind: 'nbd-client'; readonly device: string }
  /** The device mounted on `dir`. */
  | { readonly kind: 'mount'; readonly device: string; readonly dir: string };

export interface AttachmentState {
  readonly version: 1;
  readonly volume: string;
  readonly node: string;
  readonly uri: string;
  readonly createdAt: string;
  /** In the order they were done; detach undoes them from the last. */
  readonly steps: readonly AttachStep[];
}

export function runDir(): string {
  return resolve(process.env['SHORTHORN_RUN_DIR'] ?? '/run/shorthorn');
}

export function attachmentsDir(): string {
  return join(runDir(), 'attachments');
}

/** The directory that holds a volume's FUSE mount point and nbdfuse's pid file and log. */
export function volumeWorkDir(volume: string): string {
  return join(attachmentsDir(), volume);
}

function statePath(volume: string): string {
  return join(attachmentsDir(), `${volume}.json`);
}

/** The device the state exposes: the last step that made one. */
export function deviceOf(state: AttachmentState): string | undefined {
  for (const step of [...state.steps].reverse()) {
    if (step.kind === 'loop' || step.kind === 'nbd-client') return step.device;
  }
  return undefined;
}

export function mountOf(state: AttachmentState): string | undefined {
  const step = state.steps.find((s) => s.kind === 'mount');
  return step?.kind === 'mount' ? step.dir : undefined;
}

function isStep(value: unknown): value is AttachStep {
  if (typeof value !== 'object' || value === null) return false;
  const step = value as Record<string, unknown>;
  switch (step['kind']) {
    case 'nbdfuse':
      return Number.isSafeInteger(step['pid']) && typeof step['startTime'] === 'string' && typeof step['fuseDir'] === 'string';
    case 'loop':
      return typeof step['device'] === 'string' && typeof step['backingFile'] === 'string';
    case 'nbd-client':
      return typeof step['device'] === 'string';
    case 'mount':
      return typeof step['device'] === 'string' && typeof step['dir'] === 'string';
    default:
      return false;
  }
}

/** The record for `volume`, or undefined when nothing is set up for it on this host. */
export function readAttachmentState(volume: string): AttachmentState | undefined {
  const path = statePath(volume);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new HostError('bad_state', `${path} is not JSON`, { hint: `look at it, undo what it lists by hand, then remove it`, cause: error });
  }
  const state = parsed as Partial<AttachmentState>;
  if (state.version !== 1 || state.volume !== volume || typeof state.uri !== 'string' || !Array.isArray(state.steps) || !state.steps.every(isStep)) {
    throw new HostError('bad_state', `${path} is not a Shorthorn attachment record for volume ${volume}`, {
      hint: 'look at it, undo what it lists by hand, then remove it',
    });
  }
  return state as AttachmentState;
}

/** Write the record atomically (temp file, then rename): a reader sees the old or the new one. */
export function writeAttachmentState(state: AttachmentState): void {
  mkdirSync(attachmentsDir(), { recursive: true, mode: 0o700 });
  const path = statePath(state.volume);
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, path);
}

/** Drop the record; the caller has undone every step (and removed the work directory). */
export function removeAttachmentState(volume: string): void {
  rmSync(statePath(volume), { force: true });
}
