// Which NBD error value a typed error code becomes on the wire. The codes are IoErrorCode values
// (lib/errors.ts) plus the few that only a frontend raises; anything unknown is an I/O error.
import { NbdErrno } from './nbd-constants.ts';

const errnoByCode: Readonly<Record<string, NbdErrno>> = {
  io: NbdErrno.eio,
  no_space: NbdErrno.enospc,
  // The session checks ranges before submitting, so a device saying "out of range" means its size
  // changed under us (a shrink) or a bug: either way the request was invalid for the device.
  out_of_range: NbdErrno.einval,
  invalid_argument: NbdErrno.einval,
  // ESHUTDOWN tells a client to disconnect softly: right when the volume behind us is going away.
  closed: NbdErrno.eshutdown,
  timeout: NbdErrno.eio,
  not_supported: NbdErrno.enotsup,
  read_only: NbdErrno.eperm,
  permission_denied: NbdErrno.eperm,
  overflow: NbdErrno.eoverflow,
};

export function nbdErrnoForCode(code: string): NbdErrno {
  return errnoByCode[code] ?? NbdErrno.eio;
}
