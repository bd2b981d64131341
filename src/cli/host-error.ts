// Failures of the host-side half of `volume attach --device|--mount` and `volume detach`: a tool
// that is missing or failed, a device that is busy, data where a format was asked for. Each code
// maps to an exit code in cli-client.ts; the message says what to do next.
import { ShorthornError } from '../lib/errors.ts';

export const HostErrorCode = {
  /** A program we need is not installed. */
  toolMissing: 'tool_missing',
  /** A program ran and failed (mount, losetup, nbdfuse, mkfs). */
  toolFailed: 'tool_failed',
  /** The mount point or device is in use. */
  busy: 'busy',
  /** The request cannot be done as asked (no filesystem and no --format, not root, not local). */
  refused: 'refused',
  /** Something is already set up for this volume on this host. */
  alreadySetUp: 'already_set_up',
  /** A condition did not come true before the deadline. */
  timeout: 'timeout',
  /** The state file is not ours or is damaged. */
  badState: 'bad_state',
} as const;
export type HostErrorCode = (typeof HostErrorCode)[keyof typeof HostErrorCode];

export class HostError extends ShorthornError<HostErrorCode> {
  /** What the user can do about it, printed as `hint:`. */
  readonly hint: string | undefined;
  constructor(code: HostErrorCode, message: string, options: { hint?: string; cause?: unknown } = {}) {
    super(code, message, options.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options.hint;
  }
}
