// Requests of the replica protocol: the typed union the engine sends, its encoding into a frame,
// and the checked decoding the replica does. Data operations put offset and length in the header;
// control operations put their arguments in a bounded JSON payload. Every request carries the
// volume name and the engine's epoch in its header (fencing, docs/replica-protocol.md).
import {
  memberIdLengthMax,
  replicaControlRequestSizeMaxBytes,
  replicaCountMax,
  requestSizeMaxBytes,
  volumeSizeMaxBytes,
} from '../../lib/limits.ts';
import { unreachable } from '../../lib/assert.ts';
import type { LayerExtent, ReceivedLayerSpec, SnapshotKind, SnapshotOptions, StagedExtentSource } from '../replica-chain.ts';
import {
  asArray,
  asBoolean,
  asCount,
  asLabels,
  asLayerName,
  asName,
  asString,
  encodeJson,
  field,
  FieldError,
  isValidName,
  parseJsonObject,
} from './json-fields.ts';
import { encodeReplicaFrameParts, joinReplicaFrame, type ReplicaFrame, type ReplicaFrameParts, replicaFrameFlags, replicaProtocolVersion } from './replica-frame.ts';
import { type ReplicaErrorCode, type ReplicaOp, replicaOpCodes, replicaOpFromCode } from './replica-ops.ts';

export type ReplicaRequest =
  | { readonly op: 'read'; readonly offsetBytes: number; readonly lengthBytes: number }
  | { readonly op: 'write'; readonly offsetBytes: number; readonly data: Uint8Array }
  | { readonly op: 'write_zeroes'; readonly offsetBytes: number; readonly lengthBytes: number }
  | { readonly op: 'trim'; readonly offsetBytes: number; readonly lengthBytes: number }
  | { readonly op: 'flush' }
  | { readonly op: 'ping' }
  /** Present the header's epoch: the replica persists it if higher and refuses lower ones after. */
  | { readonly op: 'open' }
  | { readonly op: 'set_membership'; readonly generation: number; readonly members: readonly string[] }
  | { readonly op: 'snapshot'; readonly options: SnapshotOptions }
  | { readonly op: 'chain_info' }
  | { readonly op: 'mark_removed'; readonly name: string }
  | { readonly op: 'purge' }
  | { readonly op: 'revert'; readonly name: string }
  | { readonly op: 'expand'; readonly sizeBytes: number }
  /** Per-chunk checksums of a sealed layer, or of the head (snapshotName null). */
  | { readonly op: 'checksums'; readonly snapshotName: string | null; readonly range: LayerExtent }
  | { readonly op: 'layer_extents'; readonly layerName: string | null; readonly range: LayerExtent }
  | {
      readonly op: 'read_layer';
      readonly layerName: string | null;
      readonly offsetBytes: number;
      readonly lengthBytes: number;
    }
  /** Rebuild, receiving side: drop every staged layer. */
  | { readonly op: 'stage_reset' }
  /** Stage the next layer of the chain, oldest first. */
  | { readonly op: 'stage_layer'; readonly spec: ReceivedLayerSpec }
  /** Data of a staged layer: payload = layer name (64 bytes, zero-padded) + data. */
  | { readonly op: 'stage_write'; readonly layerName: string; readonly offsetBytes: number; readonly data: Uint8Array }
  | { readonly op: 'stage_extent'; readonly layerName: string; readonly range: LayerExtent; readonly source: StagedExtentSource }
  /** Install every staged layer as the head's ancestry with one metadata commit. */
  | { readonly op: 'stage_install' };

export interface ReplicaRequestEnvelope {
  readonly requestId: number;
  readonly volumeName: string;
  readonly epoch: number;
  readonly request: ReplicaRequest;
}

export type RequestDecodeResult =
  | { readonly kind: 'request'; readonly envelope: ReplicaRequestEnvelope }
  | {
      readonly kind: 'invalid';
      readonly requestId: number;
      readonly opCode: number;
      readonly code: ReplicaErrorCode;
      readonly message: string;
    };

const empty = new Uint8Array(0);
/** stage_write payloads start with the layer name, zero-padded to this many bytes. */
export const stageNameBytes = 64;

interface WireParts {
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly payload: Uint8Array;
}

function requestParts(request: ReplicaRequest): WireParts {
  switch (request.op) {
    case 'read':
    case 'write_zeroes':
    case 'trim':
      return { offsetBytes: request.offsetBytes, lengthBytes: request.lengthBytes, payload: empty };
    case 'write':
      return { offsetBytes: request.offsetBytes, lengthBytes: request.data.length, payload: request.data };
    case 'flush':
    case 'ping':
    case 'open':
    case 'chain_info':
    case 'purge':
    case 'stage_reset':
    case 'stage_install':
      return { offsetBytes: 0, lengthBytes: 0, payload: empty };
    case 'stage_layer':
      return control(request.spec);
    case 'stage_write': {
      const payload = new Uint8Array(stageNameBytes + request.data.length);
      payload.set(new TextEncoder().encode(request.layerName), 0);
      payload.set(request.data, stageNameBytes);
      return { offsetBytes: request.offsetBytes, lengthBytes: request.data.length, payload };
    }
    case 'stage_extent':
      return control({ layer: request.layerName, offsetBytes: request.range.offsetBytes, lengthBytes: request.range.lengthBytes, source: request.source });
    case 'set_membership':
      return control({ generation: request.generation, members: request.members });
    case 'snapshot':
      return control({
        name: request.options.name,
        kind: request.options.kind,
        labels: request.options.labels ?? {},
        ...(request.options.createdMs === undefined ? {} : { createdMs: request.options.createdMs }),
      });
    case 'mark_removed':
    case 'revert':
      return control({ name: request.name });
    case 'expand':
      return control({ sizeBytes: request.sizeBytes });
    case 'checksums':
      return control({ snapshot: request.snapshotName, ...request.range });
    case 'layer_extents':
      return control({ layer: request.layerName, ...request.range });
    case 'read_layer':
      return {
        offsetBytes: request.offsetBytes,
        lengthBytes: request.lengthBytes,
        payload: encodeJson({ layer: request.layerName }),
      };
  }
}

function control(value: unknown): WireParts {
  return { offsetBytes: 0, lengthBytes: 0, payload: encodeJson(value) };
}

/**
 * Encode a request as header and payload, to be sent as two pieces: a write's data is the
 * caller's buffer, not a copy (one write fans out to every replica; each link sends its own
 * header and the same payload). The caller must not change the data until the request is settled.
 * Values come from our own engine; the replica checks them again on arrival.
 */
export function encodeReplicaRequestParts(envelope: ReplicaRequestEnvelope): ReplicaFrameParts {
  const parts = requestParts(envelope.request);
  return encodeReplicaFrameParts(
    {
      version: replicaProtocolVersion,
      opCode: replicaOpCodes[envelope.request.op],
      flags: 0,
      requestId: envelope.requestId,
      epoch: envelope.epoch,
      offsetBytes: parts.offsetBytes,
      lengthBytes: parts.lengthBytes,
      status: 0,
      volumeName: envelope.volumeName,
    },
    parts.payload,
  );
}

/** Encode a request in one buffer (tests, the simulator). */
export function encodeReplicaRequest(envelope: ReplicaRequestEnvelope): Uint8Array {
  return joinReplicaFrame(encodeReplicaRequestParts(envelope));
}

class RangeProblem extends FieldError {}

/** A data range from the header: 1..requestSizeMaxBytes long, ending inside the largest volume. */
function checkIoRange(offsetBytes: number, lengthBytes: number): void {
  if (lengthBytes === 0) throw new FieldError('length is 0');
  if (lengthBytes > requestSizeMaxBytes) {
    throw new FieldError(`length ${lengthBytes} exceeds the largest request, ${requestSizeMaxBytes} bytes`);
  }
  if (offsetBytes + lengthBytes > volumeSizeMaxBytes) {
    throw new RangeProblem(`range ${offsetBytes}+${lengthBytes} ends past the largest volume`);
  }
}

function checkEmpty(frame: ReplicaFrame, op: ReplicaOp): void {
  const { header, payload } = frame;
  if (header.offsetBytes !== 0 || header.lengthBytes !== 0 || payload.length !== 0) {
    throw new FieldError(`${op} takes no offset, length or payload`);
  }
}

function controlObject(frame: ReplicaFrame, op: ReplicaOp): Record<string, unknown> {
  const { header, payload } = frame;
  if (header.offsetBytes !== 0 || header.lengthBytes !== 0) throw new FieldError(`${op} takes no offset or length`);
  if (payload.length > replicaControlRequestSizeMaxBytes) {
    throw new FieldError(`${op} payload of ${payload.length} bytes exceeds ${replicaControlRequestSizeMaxBytes}`);
  }
  return parseJsonObject(payload, op);
}

function jsonRange(object: Record<string, unknown>): LayerExtent {
  const offsetBytes = asCount(field(object, 'offsetBytes'), 'offsetBytes', volumeSizeMaxBytes);
  const lengthBytes = asCount(field(object, 'lengthBytes'), 'lengthBytes', volumeSizeMaxBytes);
  if (offsetBytes + lengthBytes > volumeSizeMaxBytes) {
    throw new RangeProblem(`range ${offsetBytes}+${lengthBytes} ends past the largest volume`);
  }
  return { offsetBytes, lengthBytes };
}

const snapshotKinds: readonly SnapshotKind[] = ['user', 'system'];

function decodeBody(frame: ReplicaFrame, op: ReplicaOp): ReplicaRequest {
  const { header, payload } = frame;
  switch (op) {
    case 'read':
    case 'write_zeroes':
    case 'trim':
      if (payload.length !== 0) throw new FieldError(`${op} takes no payload`);
      checkIoRange(header.offsetBytes, header.lengthBytes);
      return { op, offsetBytes: header.offsetBytes, lengthBytes: header.lengthBytes };
    case 'write':
      if (payload.length !== header.lengthBytes) {
        throw new FieldError(`write of length ${header.lengthBytes} carries ${payload.length} bytes`);
      }
      checkIoRange(header.offsetBytes, header.lengthBytes);
      return { op, offsetBytes: header.offsetBytes, data: payload };
    case 'flush':
    case 'ping':
    case 'open':
    case 'chain_info':
    case 'purge':
    case 'stage_reset':
    case 'stage_install':
      checkEmpty(frame, op);
      return { op };
    case 'stage_layer': {
      const object = controlObject(frame, op);
      const kind = field(object, 'kind');
      if (!snapshotKinds.includes(kind as SnapshotKind)) throw new FieldError(`layer kind must be user or system`);
      const spec: ReceivedLayerSpec = {
        name: asName(field(object, 'name'), 'name'),
        parent: asLayerName(field(object, 'parent'), 'parent'),
        createdMs: asCount(field(object, 'createdMs'), 'createdMs'),
        kind: kind as SnapshotKind,
        labels: asLabels(field(object, 'labels') ?? {}, 'labels'),
        removed: asBoolean(field(object, 'removed'), 'removed'),
        reuse: asBoolean(field(object, 'reuse'), 'reuse'),
      };
      return { op, spec };
    }
    case 'stage_write': {
      if (payload.length !== stageNameBytes + header.lengthBytes) {
        throw new FieldError(`stage_write of length ${header.lengthBytes} carries ${payload.length} bytes (want ${stageNameBytes} more)`);
      }
      checkIoRange(header.offsetBytes, header.lengthBytes);
      const nameBytes = payload.subarray(0, stageNameBytes);
      const end = nameBytes.indexOf(0);
      if (nameBytes.subarray(end < 0 ? stageNameBytes : end).some((b) => b !== 0)) throw new FieldError('layer name padding is not zeros');
      let layerName: string;
      try {
        layerName = new TextDecoder('utf-8', { fatal: true }).decode(nameBytes.subarray(0, end < 0 ? stageNameBytes : end));
      } catch {
        throw new FieldError('layer name is not UTF-8');
      }
      return { op, layerName: asName(layerName, 'layer'), offsetBytes: header.offsetBytes, data: payload.subarray(stageNameBytes) };
    }
    case 'stage_extent': {
      const object = controlObject(frame, op);
      const source = field(object, 'source');
      if (source !== 'zero' && source !== 'local') throw new FieldError('source must be zero or local');
      return { op, layerName: asName(field(object, 'layer'), 'layer'), range: jsonRange(object), source };
    }
    case 'set_membership': {
      const object = controlObject(frame, op);
      const members = asArray(field(object, 'members'), 'members', replicaCountMax).map((m, i) =>
        asString(m, `members[${i}]`, memberIdLengthMax),
      );
      return { op, generation: asCount(field(object, 'generation'), 'generation'), members };
    }
    case 'snapshot': {
      const object = controlObject(frame, op);
      const kind = field(object, 'kind');
      if (!snapshotKinds.includes(kind as SnapshotKind)) throw new FieldError(`snapshot kind must be user or system`);
      const createdMs = field(object, 'createdMs');
      const options: SnapshotOptions = {
        name: asName(field(object, 'name'), 'name'),
        kind: kind as SnapshotKind,
        labels: asLabels(field(object, 'labels') ?? {}, 'labels'),
        ...(createdMs === undefined ? {} : { createdMs: asCount(createdMs, 'createdMs') }),
      };
      return { op, options };
    }
    case 'mark_removed':
    case 'revert':
      return { op, name: asName(field(controlObject(frame, op), 'name'), 'name') };
    case 'expand': {
      const object = controlObject(frame, op);
      return { op, sizeBytes: asCount(field(object, 'sizeBytes'), 'sizeBytes', volumeSizeMaxBytes) };
    }
    case 'checksums': {
      const object = controlObject(frame, op);
      return { op, snapshotName: asLayerName(field(object, 'snapshot'), 'snapshot'), range: jsonRange(object) };
    }
    case 'layer_extents': {
      const object = controlObject(frame, op);
      return { op, layerName: asLayerName(field(object, 'layer'), 'layer'), range: jsonRange(object) };
    }
    case 'read_layer': {
      if (payload.length > replicaControlRequestSizeMaxBytes) throw new FieldError('read_layer payload is too large');
      checkIoRange(header.offsetBytes, header.lengthBytes);
      const object = parseJsonObject(payload, op);
      return {
        op,
        layerName: asLayerName(field(object, 'layer'), 'layer'),
        offsetBytes: header.offsetBytes,
        lengthBytes: header.lengthBytes,
      };
    }
    default:
      return unreachable(op, 'replica op');
  }
}

/** Check a delimited frame as a request; every problem becomes a value naming its request id. */
export function decodeReplicaRequest(frame: ReplicaFrame): RequestDecodeResult {
  const { header } = frame;
  const invalid = (code: ReplicaErrorCode, message: string): RequestDecodeResult => ({
    kind: 'invalid',
    requestId: header.requestId,
    opCode: header.opCode,
    code,
    message,
  });
  if ((header.flags & replicaFrameFlags.reply) !== 0) return invalid('bad_request', 'a reply frame sent as a request');
  if (header.status !== 0) return invalid('bad_request', `request carries status ${header.status}`);
  const op = replicaOpFromCode(header.opCode);
  if (op === undefined) return invalid('bad_request', `unknown op ${header.opCode}`);
  if (!isValidName(header.volumeName)) {
    return invalid('bad_request', `volume name ${JSON.stringify(header.volumeName)} is not a name`);
  }
  try {
    const request = decodeBody(frame, op);
    return {
      kind: 'request',
      envelope: { requestId: header.requestId, volumeName: header.volumeName, epoch: header.epoch, request },
    };
  } catch (error) {
    if (error instanceof RangeProblem) return invalid('out_of_range', `${op}: ${error.message}`);
    if (error instanceof FieldError) return invalid('bad_request', `${op}: ${error.message}`);
    throw error;
  }
}
