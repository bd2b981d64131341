// Replies of the replica protocol: success bodies per operation, error replies with a typed code,
// their encoding, and the checked decoding the engine does. A reply echoes the request id and op
// and carries the replica's own volume name and accepted epoch, so a fenced engine learns which
// epoch superseded it.
import {
  memberIdLengthMax,
  replicaControlReplySizeMaxBytes,
  replicaCountMax,
  replicaErrorMessageMaxBytes,
  replicaExtentsPerReplyMax,
  replicaChecksumChunksPerRequestMax,
  requestSizeMaxBytes,
  snapshotCountMax,
} from '../../lib/limits.ts';
import { isInstanceId } from '../replica-identity.ts';
import type { ChainInfo, ChecksumState, ChunkChecksum, LayerExtent, SnapshotInfo, SnapshotKind } from '../replica-chain.ts';
import {
  asArray,
  asBoolean,
  asCount,
  asLabels,
  asLayerName,
  asName,
  asObject,
  asString,
  encodeJson,
  field,
  FieldError,
  parseJsonObject,
} from './json-fields.ts';
import { encodeReplicaFrameParts, joinReplicaFrame, type ReplicaFrame, type ReplicaFrameParts, replicaFrameFlags, replicaProtocolVersion } from './replica-frame.ts';
import {
  type ReplicaErrorCode,
  replicaErrorCodes,
  replicaErrorFromCode,
  type ReplicaOp,
  replicaOpCodes,
  replicaOpFromCode,
} from './replica-ops.ts';

export type ReplicaReplyBody =
  | { readonly op: 'read' | 'read_layer'; readonly data: Uint8Array }
  | {
      readonly op:
        | 'write'
        | 'write_zeroes'
        | 'trim'
        | 'flush'
        | 'ping'
        | 'set_membership'
        | 'snapshot'
        | 'mark_removed'
        | 'revert'
        | 'expand'
        | 'stage_reset'
        | 'stage_layer'
        | 'stage_write'
        | 'stage_extent'
        | 'stage_install';
    }
  | { readonly op: 'open' | 'chain_info'; readonly chain: ChainInfo }
  | { readonly op: 'purge'; readonly purged: readonly string[] }
  | { readonly op: 'checksums'; readonly checksums: readonly ChunkChecksum[] }
  /**
   * Extents of the range from its start up to `endOffsetBytes`. A reply holds at most
   * replicaExtentsPerReplyMax extents; when `endOffsetBytes` is short of the range's end, ask
   * again from there.
   */
  | { readonly op: 'layer_extents'; readonly extents: readonly LayerExtent[]; readonly endOffsetBytes: number };

export type ReplicaReplyResult =
  | { readonly kind: 'ok'; readonly body: ReplicaReplyBody }
  | { readonly kind: 'error'; readonly opCode: number; readonly code: ReplicaErrorCode; readonly message: string };

export interface ReplicaReplyEnvelope {
  readonly requestId: number;
  /** The replica's volume name (may differ from the request's in a wrong_volume reply). */
  readonly volumeName: string;
  /** The replica's accepted epoch when it replied. */
  readonly epoch: number;
  readonly result: ReplicaReplyResult;
}

export type ReplyDecodeResult =
  | { readonly kind: 'reply'; readonly envelope: ReplicaReplyEnvelope }
  | { readonly kind: 'invalid'; readonly requestId: number; readonly message: string };

const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8', { fatal: true });
const empty = new Uint8Array(0);

/** Cut a message to the wire maximum without splitting a UTF-8 sequence. */
export function boundedMessage(message: string): Uint8Array {
  let bytes = encoder.encode(message);
  if (bytes.length <= replicaErrorMessageMaxBytes) return bytes;
  let end = replicaErrorMessageMaxBytes;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  bytes = bytes.subarray(0, end);
  return bytes;
}

const noPayload = { lengthBytes: 0, payload: empty } as const;

function bodyParts(body: ReplicaReplyBody): { lengthBytes: number; payload: Uint8Array } {
  switch (body.op) {
    case 'read':
    case 'read_layer':
      return { lengthBytes: body.data.length, payload: body.data };
    case 'write':
    case 'write_zeroes':
    case 'trim':
    case 'flush':
    case 'ping':
    case 'set_membership':
    case 'snapshot':
    case 'mark_removed':
    case 'revert':
    case 'expand':
    case 'stage_reset':
    case 'stage_layer':
    case 'stage_write':
    case 'stage_extent':
    case 'stage_install':
      return noPayload;
    case 'open':
    case 'chain_info':
      return { lengthBytes: 0, payload: encodeJson(body.chain) };
    case 'purge':
      return { lengthBytes: 0, payload: encodeJson({ purged: body.purged }) };
    case 'checksums':
      return { lengthBytes: 0, payload: encodeJson({ checksums: body.checksums }) };
    case 'layer_extents':
      return {
        lengthBytes: 0,
        payload: encodeJson({ extents: body.extents, endOffsetBytes: body.endOffsetBytes }),
      };
  }
}

/**
 * Encode a reply as header and payload, to be sent as two pieces: a read's data goes out as the
 * store returned it, not copied into a frame.
 */
export function encodeReplicaReplyParts(envelope: ReplicaReplyEnvelope): ReplicaFrameParts {
  const { result } = envelope;
  if (result.kind === 'error') {
    const payload = boundedMessage(result.message);
    return encodeReplicaFrameParts(
      {
        version: replicaProtocolVersion,
        opCode: result.opCode,
        flags: replicaFrameFlags.reply,
        requestId: envelope.requestId,
        epoch: envelope.epoch,
        offsetBytes: 0,
        lengthBytes: 0,
        status: replicaErrorCodes[result.code],
        volumeName: envelope.volumeName,
      },
      payload,
    );
  }
  const parts = bodyParts(result.body);
  return encodeReplicaFrameParts(
    {
      version: replicaProtocolVersion,
      opCode: replicaOpCodes[result.body.op],
      flags: replicaFrameFlags.reply,
      requestId: envelope.requestId,
      epoch: envelope.epoch,
      offsetBytes: 0,
      lengthBytes: parts.lengthBytes,
      status: 0,
      volumeName: envelope.volumeName,
    },
    parts.payload,
  );
}

/** Encode a reply in one buffer (tests, the simulator, a refusal). */
export function encodeReplicaReply(envelope: ReplicaReplyEnvelope): Uint8Array {
  return joinReplicaFrame(encodeReplicaReplyParts(envelope));
}

const snapshotKinds: readonly SnapshotKind[] = ['user', 'system'];
const checksumStates: readonly ChecksumState[] = ['none', 'pending', 'computing', 'computed', 'corrupt'];

function decodeSnapshotInfo(value: unknown, what: string): SnapshotInfo {
  const object = asObject(value, what);
  const kind = field(object, 'kind');
  if (!snapshotKinds.includes(kind as SnapshotKind)) throw new FieldError(`${what}.kind is not user or system`);
  const checksumState = field(object, 'checksumState');
  if (!checksumStates.includes(checksumState as ChecksumState)) throw new FieldError(`${what}.checksumState is unknown`);
  return {
    name: asName(field(object, 'name'), `${what}.name`),
    parent: asLayerName(field(object, 'parent'), `${what}.parent`),
    createdMs: asCount(field(object, 'createdMs'), `${what}.createdMs`),
    kind: kind as SnapshotKind,
    labels: asLabels(field(object, 'labels'), `${what}.labels`),
    removed: asBoolean(field(object, 'removed'), `${what}.removed`),
    sizeBytes: asCount(field(object, 'sizeBytes'), `${what}.sizeBytes`),
    checksumState: checksumState as ChecksumState,
    ...(object['checksumComputedMs'] === undefined ? {} : { checksumComputedMs: asCount(object['checksumComputedMs'], `${what}.checksumComputedMs`) }),
  };
}

/** Check a chain record from the wire (a replica's word is checked like anyone's). */
export function decodeChainInfo(object: Record<string, unknown>): ChainInfo {
  const membership = asObject(field(object, 'membership'), 'membership');
  const instanceId = field(object, 'instanceId');
  if (instanceId !== undefined && (typeof instanceId !== 'string' || !isInstanceId(instanceId))) {
    throw new FieldError('instanceId is not 32 lowercase hex digits');
  }
  return {
    ...(instanceId === undefined ? {} : { instanceId }),
    volumeName: asName(field(object, 'volumeName'), 'volumeName'),
    sizeBytes: asCount(field(object, 'sizeBytes'), 'sizeBytes'),
    blockSizeBytes: asCount(field(object, 'blockSizeBytes'), 'blockSizeBytes'),
    snapshots: asArray(field(object, 'snapshots'), 'snapshots', snapshotCountMax).map((s, i) =>
      decodeSnapshotInfo(s, `snapshots[${i}]`),
    ),
    headSizeBytes: asCount(field(object, 'headSizeBytes'), 'headSizeBytes'),
    headParent: asLayerName(field(object, 'headParent'), 'headParent'),
    membership: {
      epoch: asCount(field(membership, 'epoch'), 'membership.epoch'),
      generation: asCount(field(membership, 'generation'), 'membership.generation'),
      members: asArray(field(membership, 'members'), 'membership.members', replicaCountMax).map((m, i) =>
        asString(m, `membership.members[${i}]`, memberIdLengthMax),
      ),
    },
  };
}

function decodeExtent(value: unknown, what: string): LayerExtent {
  const object = asObject(value, what);
  const extent = {
    offsetBytes: asCount(field(object, 'offsetBytes'), `${what}.offsetBytes`),
    lengthBytes: asCount(field(object, 'lengthBytes'), `${what}.lengthBytes`),
  };
  // layer_extents replies say whether a range is data or zeros (a rebuild copies zeros as zeros).
  const kind = field(object, 'kind');
  if (kind === undefined) return extent;
  if (kind !== 'data' && kind !== 'zero') throw new FieldError(`${what}.kind is not data or zero`);
  return { ...extent, kind };
}

function decodeChecksum(value: unknown, what: string): ChunkChecksum {
  const object = asObject(value, what);
  return {
    ...decodeExtent(object, what),
    digest: asString(field(object, 'digest'), `${what}.digest`, 256),
  };
}

function decodeOkBody(frame: ReplicaFrame, op: ReplicaOp): ReplicaReplyBody {
  const { header, payload } = frame;
  const json = (): Record<string, unknown> => {
    if (payload.length > replicaControlReplySizeMaxBytes) {
      throw new FieldError(`${op} reply of ${payload.length} bytes exceeds ${replicaControlReplySizeMaxBytes}`);
    }
    return parseJsonObject(payload, `${op} reply`);
  };
  const none = (): void => {
    if (payload.length !== 0 || header.lengthBytes !== 0) throw new FieldError(`${op} reply carries a payload`);
  };
  switch (op) {
    case 'read':
    case 'read_layer':
      if (payload.length !== header.lengthBytes || payload.length > requestSizeMaxBytes) {
        throw new FieldError(`${op} reply of length ${header.lengthBytes} carries ${payload.length} bytes`);
      }
      return { op, data: payload };
    case 'write':
    case 'write_zeroes':
    case 'trim':
    case 'flush':
    case 'ping':
    case 'set_membership':
    case 'snapshot':
    case 'mark_removed':
    case 'revert':
    case 'expand':
    case 'stage_reset':
    case 'stage_layer':
    case 'stage_write':
    case 'stage_extent':
    case 'stage_install':
      none();
      return { op };
    case 'open':
    case 'chain_info':
      return { op, chain: decodeChainInfo(json()) };
    case 'purge': {
      const purged = asArray(field(json(), 'purged'), 'purged', snapshotCountMax).map((n, i) => asName(n, `purged[${i}]`));
      return { op, purged };
    }
    case 'checksums': {
      const list = asArray(field(json(), 'checksums'), 'checksums', replicaChecksumChunksPerRequestMax);
      return { op, checksums: list.map((c, i) => decodeChecksum(c, `checksums[${i}]`)) };
    }
    case 'layer_extents': {
      const object = json();
      const extents = asArray(field(object, 'extents'), 'extents', replicaExtentsPerReplyMax).map((e, i) =>
        decodeExtent(e, `extents[${i}]`),
      );
      return { op, extents, endOffsetBytes: asCount(field(object, 'endOffsetBytes'), 'endOffsetBytes') };
    }
  }
}

/** Check a delimited frame as a reply. */
export function decodeReplicaReply(frame: ReplicaFrame): ReplyDecodeResult {
  const { header, payload } = frame;
  const invalid = (message: string): ReplyDecodeResult => ({ kind: 'invalid', requestId: header.requestId, message });
  if ((header.flags & replicaFrameFlags.reply) === 0) return invalid('a request frame sent as a reply');
  const base = { requestId: header.requestId, volumeName: header.volumeName, epoch: header.epoch };
  if (header.status !== 0) {
    const code = replicaErrorFromCode(header.status);
    if (code === undefined) return invalid(`unknown error status ${header.status}`);
    if (payload.length > replicaErrorMessageMaxBytes) return invalid(`error message of ${payload.length} bytes`);
    let message: string;
    try {
      message = utf8.decode(payload);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error;
      return invalid('error message is not valid UTF-8');
    }
    return { kind: 'reply', envelope: { ...base, result: { kind: 'error', opCode: header.opCode, code, message } } };
  }
  const op = replicaOpFromCode(header.opCode);
  if (op === undefined) return invalid(`reply to unknown op ${header.opCode}`);
  try {
    return { kind: 'reply', envelope: { ...base, result: { kind: 'ok', body: decodeOkBody(frame, op) } } };
  } catch (error) {
    if (error instanceof FieldError) return invalid(`${op} reply: ${error.message}`);
    throw error;
  }
}
