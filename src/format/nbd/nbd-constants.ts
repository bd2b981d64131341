// Numbers of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md), as const objects. Magic
// numbers wider than 32 bits are kept as byte strings so that no bigint is needed to compare them.

/** "NBDMAGIC": the first 8 bytes the server sends. */
export const nbdMagicBytes = new Uint8Array([0x4e, 0x42, 0x44, 0x4d, 0x41, 0x47, 0x49, 0x43]);
/** "IHAVEOPT": starts the server greeting's second word and every option request. */
export const optionMagicBytes = new Uint8Array([0x49, 0x48, 0x41, 0x56, 0x45, 0x4f, 0x50, 0x54]);
/** 0x0003e889045565a9: starts every option reply. */
export const optionReplyMagicBytes = new Uint8Array([0x00, 0x03, 0xe8, 0x89, 0x04, 0x55, 0x65, 0xa9]);

export const requestMagic = 0x25609513;
export const simpleReplyMagic = 0x67446698;
export const structuredReplyMagic = 0x668e33ef;

/** Sizes of fixed parts on the wire. */
export const greetingSizeBytes = 18;
export const clientFlagsSizeBytes = 4;
export const optionHeaderSizeBytes = 16;
export const requestHeaderSizeBytes = 28;
export const simpleReplyHeaderSizeBytes = 16;
export const structuredReplyHeaderSizeBytes = 20;
/** Zero padding after the NBD_OPT_EXPORT_NAME reply unless both sides agreed on NO_ZEROES. */
export const exportNameZeroPadBytes = 124;
/** The protocol caps every string (export names, messages, context names) at 4096 bytes. */
export const stringLengthMaxBytes = 4096;

export const HandshakeFlag = {
  fixedNewstyle: 1 << 0,
  noZeroes: 1 << 1,
} as const;

export const ClientFlag = {
  fixedNewstyle: 1 << 0,
  noZeroes: 1 << 1,
} as const;
export const clientFlagsKnown = ClientFlag.fixedNewstyle | ClientFlag.noZeroes;

export const TransmissionFlag = {
  hasFlags: 1 << 0,
  readOnly: 1 << 1,
  sendFlush: 1 << 2,
  sendFua: 1 << 3,
  rotational: 1 << 4,
  sendTrim: 1 << 5,
  sendWriteZeroes: 1 << 6,
  sendDf: 1 << 7,
  canMultiConn: 1 << 8,
  sendResize: 1 << 9,
  sendCache: 1 << 10,
  sendFastZero: 1 << 11,
} as const;

export const Option = {
  exportName: 1,
  abort: 2,
  list: 3,
  peekExport: 4,
  startTls: 5,
  info: 6,
  go: 7,
  structuredReply: 8,
  listMetaContext: 9,
  setMetaContext: 10,
  extendedHeaders: 11,
} as const;

const repError = 0x80000000;
export const OptionReply = {
  ack: 1,
  server: 2,
  info: 3,
  metaContext: 4,
  errUnsup: repError + 1,
  errPolicy: repError + 2,
  errInvalid: repError + 3,
  errPlatform: repError + 4,
  errTlsRequired: repError + 5,
  errUnknown: repError + 6,
  errShutdown: repError + 7,
  errBlockSizeRequired: repError + 8,
  errTooBig: repError + 9,
} as const;
export type OptionReplyType = (typeof OptionReply)[keyof typeof OptionReply];

export const Info = {
  export: 0,
  name: 1,
  description: 2,
  blockSize: 3,
} as const;

export const Command = {
  read: 0,
  write: 1,
  disc: 2,
  flush: 3,
  trim: 4,
  cache: 5,
  writeZeroes: 6,
  blockStatus: 7,
  resize: 8,
} as const;

export const CommandFlag = {
  fua: 1 << 0,
  noHole: 1 << 1,
  df: 1 << 2,
  reqOne: 1 << 3,
  fastZero: 1 << 4,
  payloadLen: 1 << 5,
} as const;

export const ReplyFlag = {
  done: 1 << 0,
} as const;

export const ReplyType = {
  none: 0,
  offsetData: 1,
  offsetHole: 2,
  blockStatus: 5,
  error: (1 << 15) + 1,
  errorOffset: (1 << 15) + 2,
} as const;

/** Error values allowed on the wire. They equal Linux errno numbers, but are protocol constants. */
export const NbdErrno = {
  eperm: 1,
  eio: 5,
  enomem: 12,
  einval: 22,
  enospc: 28,
  eoverflow: 75,
  enotsup: 95,
  eshutdown: 108,
} as const;
export type NbdErrno = (typeof NbdErrno)[keyof typeof NbdErrno];

/** base:allocation status flags. */
export const AllocationState = {
  hole: 1 << 0,
  zero: 1 << 1,
} as const;

export const baseAllocationContext = 'base:allocation';
/** The id we give base:allocation when a client selects it (any non-zero id would do). */
export const baseAllocationContextId = 1;
