// The store's semantics as pure functions, shared by every backend so that they cannot drift:
// what a create, update, status update or delete turns a stored object into. Backends only add
// the resourceVersion check and the atomic write. Objects are persisted without resourceVersion
// (it is the backend's revision of the write, set on the way out).
import { Value } from '@sinclair/typebox/value';
import { kindLengthMax, resourceLabelCountMax, resourceSizeMaxBytes } from '../../lib/limits.ts';
import { ObjectMetaSchema, nameProblem, type Resource } from '../resources/object-meta.ts';
import { StoreError } from './resource-store.ts';

const kindRegExp = /^[A-Z][A-Za-z0-9]*$/;

export function checkKind(kind: string): void {
  if (typeof kind !== 'string' || kind.length === 0 || kind.length > kindLengthMax || !kindRegExp.test(kind)) {
    throw new StoreError('invalid', `Bad kind ${JSON.stringify(kind)}: an UpperCamelCase word of at most ${kindLengthMax} characters`);
  }
}

export function checkName(kind: string, name: string): void {
  const problem = typeof name === 'string' ? nameProblem(name) : 'name is not a string';
  if (problem !== null) throw new StoreError('invalid', `Bad ${kind} name: ${problem}`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Refuse anything that is not a well-formed Resource; returns it typed. */
export function checkShape(value: unknown): Resource {
  if (!isRecord(value)) throw new StoreError('invalid', 'A resource must be a JSON object');
  const { apiVersion, kind, metadata, spec } = value;
  if (typeof apiVersion !== 'string' || apiVersion.length === 0) {
    throw new StoreError('invalid', 'A resource needs an apiVersion string');
  }
  if (typeof kind !== 'string') throw new StoreError('invalid', 'A resource needs a kind string');
  checkKind(kind);
  if (!isRecord(metadata)) throw new StoreError('invalid', `A ${kind} needs a metadata object`);
  if (typeof metadata['name'] !== 'string') throw new StoreError('invalid', `A ${kind} needs metadata.name`);
  checkName(kind, metadata['name']);
  if (!Value.Check(ObjectMetaSchema, metadata)) {
    const first = Value.Errors(ObjectMetaSchema, metadata).First();
    throw new StoreError('invalid', `Bad ${kind} metadata at ${first?.path ?? '?'}: ${first?.message ?? 'does not match'}`);
  }
  for (const field of ['labels', 'annotations'] as const) {
    const count = Object.keys(metadata[field] ?? {}).length;
    if (count > resourceLabelCountMax) {
      throw new StoreError('invalid', `A ${kind} has ${count} ${field}; at most ${resourceLabelCountMax}`);
    }
  }
  if (spec === undefined) throw new StoreError('invalid', `A ${kind} needs a spec`);
  for (const key of Object.keys(value)) {
    if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(key)) {
      throw new StoreError('invalid', `A ${kind} has an unknown top-level field ${JSON.stringify(key)}`);
    }
  }
  return value as unknown as Resource;
}

/** Serialise for storage, refusing objects over the size limit. */
export function encodeObject(object: Resource): string {
  const text = JSON.stringify(object);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > resourceSizeMaxBytes) {
    throw new StoreError('invalid', `${object.kind} ${object.metadata.name} is ${bytes} bytes; at most ${resourceSizeMaxBytes}`);
  }
  return text;
}

/** Parse a stored object and stamp it with the revision it was written at. */
export function decodeObject(text: string, resourceVersion: number): Resource {
  const object = JSON.parse(text) as Resource;
  object.metadata.resourceVersion = String(resourceVersion);
  return object;
}

/** A resourceVersion from a caller, as the backend's revision number. */
export function parseResourceVersion(resourceVersion: string, what = 'resourceVersion'): number {
  if (typeof resourceVersion !== 'string' || !/^(0|[1-9][0-9]{0,15})$/.test(resourceVersion)) {
    throw new StoreError('invalid', `Bad ${what} ${JSON.stringify(resourceVersion)}: a decimal revision`);
  }
  const n = Number(resourceVersion);
  if (!Number.isSafeInteger(n)) throw new StoreError('invalid', `Bad ${what} ${resourceVersion}: too large`);
  return n;
}

/** Deep equality of JSON values, ignoring key order. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (isRecord(a) && isRecord(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
  }
  return false;
}

function withoutVersion(object: Resource): Resource {
  const copy = structuredClone(object);
  delete copy.metadata.resourceVersion;
  return copy;
}

/** The incoming object for update/updateStatus: checked, with its resourceVersion as a number. */
export function checkWrite(value: unknown, op: string): { object: Resource; expectedVersion: number } {
  const object = checkShape(value);
  const rv = object.metadata.resourceVersion;
  if (rv === undefined || rv === '') {
    throw new StoreError('invalid', `${op} of ${object.kind} ${object.metadata.name} needs metadata.resourceVersion`);
  }
  return { object, expectedVersion: parseResourceVersion(rv) };
}

export interface CreateContext {
  readonly uid: string;
  readonly nowMs: number;
}

/** What create() stores (without resourceVersion). */
export function prepareCreate(value: unknown, context: CreateContext): Resource {
  const object = checkShape(value);
  const meta = object.metadata;
  if (meta.resourceVersion !== undefined && meta.resourceVersion !== '') {
    throw new StoreError('invalid', `create of ${object.kind} ${meta.name}: resourceVersion must not be set`);
  }
  if (meta.deletionTimestamp !== undefined) {
    throw new StoreError('invalid', `create of ${object.kind} ${meta.name}: deletionTimestamp must not be set`);
  }
  const stored = withoutVersion(object);
  stored.metadata.uid = context.uid;
  stored.metadata.generation = 1;
  stored.metadata.creationTimestamp = new Date(context.nowMs).toISOString();
  return stored;
}

export type WriteDecision =
  /** Store this object (without resourceVersion) at a new revision. */
  | { readonly action: 'put'; readonly object: Resource }
  /** Remove the object; `object` is its last state, for the DELETED event. */
  | { readonly action: 'remove'; readonly object: Resource }
  /** Nothing changed: no new revision, no event. */
  | { readonly action: 'none' };

function checkSameObject(stored: Resource, incoming: Resource): void {
  const uid = incoming.metadata.uid;
  if (uid !== undefined && uid !== stored.metadata.uid) {
    throw new StoreError('conflict', `${stored.kind} ${stored.metadata.name} was replaced: uid ${uid} is now ${stored.metadata.uid ?? '?'}`);
  }
}

/** update(): metadata and spec from the caller, identity and status from the store. */
export function prepareUpdate(stored: Resource, incoming: Resource): WriteDecision {
  checkSameObject(stored, incoming);
  const before = withoutVersion(stored);
  const meta = incoming.metadata;
  const deleting = before.metadata.deletionTimestamp !== undefined;
  if (deleting) {
    const had = new Set(before.metadata.finalizers ?? []);
    const added = (meta.finalizers ?? []).filter((f) => !had.has(f));
    if (added.length > 0) {
      throw new StoreError('invalid', `${stored.kind} ${meta.name} is being deleted: cannot add finalizers ${added.join(', ')}`);
    }
  }
  const next: Resource = {
    apiVersion: incoming.apiVersion,
    kind: before.kind,
    metadata: structuredClone(before.metadata),
    spec: structuredClone(incoming.spec),
  };
  if (before.status !== undefined) next.status = before.status;
  for (const field of ['labels', 'annotations', 'finalizers', 'ownerReferences'] as const) {
    const v = meta[field];
    if (v === undefined) delete next.metadata[field];
    else (next.metadata as Record<string, unknown>)[field] = structuredClone(v);
  }
  if (!sameJson(before.spec, next.spec)) next.metadata.generation = (before.metadata.generation ?? 0) + 1;
  if (deleting && (next.metadata.finalizers ?? []).length === 0) return { action: 'remove', object: next };
  return sameJson(before, next) ? { action: 'none' } : { action: 'put', object: next };
}

/** updateStatus(): only status comes from the caller. */
export function prepareStatusUpdate(stored: Resource, incoming: Resource): WriteDecision {
  checkSameObject(stored, incoming);
  const next = withoutVersion(stored);
  if (incoming.status === undefined) delete next.status;
  else next.status = structuredClone(incoming.status);
  return sameJson(withoutVersion(stored), next) ? { action: 'none' } : { action: 'put', object: next };
}

/** delete(): mark while finalizers remain (bumping generation, as Kubernetes does), else remove. */
export function prepareDelete(stored: Resource, nowMs: number): WriteDecision {
  const object = withoutVersion(stored);
  if ((object.metadata.finalizers ?? []).length === 0) return { action: 'remove', object };
  if (object.metadata.deletionTimestamp !== undefined) return { action: 'none' };
  object.metadata.deletionTimestamp = new Date(nowMs).toISOString();
  object.metadata.generation = (object.metadata.generation ?? 0) + 1;
  return { action: 'put', object };
}
