// Schema building blocks shared by the resource kinds: string-literal unions, bounded names,
// sizes, timestamps, maps and conditions. Every schema here stays inside what a Kubernetes
// structural schema can express (crd-schema.ts translates them), so each kind is written once.
import {
  Type,
  type ObjectOptions,
  type StringOptions,
  type TLiteral,
  type TObject,
  type TProperties,
  type TRecord,
  type TSchema,
  type TString,
  type TUnion,
} from '@sinclair/typebox';
import {
  byteCountMax,
  conditionCountMax,
  freeTextLengthMax,
  labelCountMax,
  labelLengthMax,
  tagCountMax,
  tagLengthMax,
} from '../../lib/limits.ts';
import { resourceNameLengthMax, resourceNamePattern } from './object-meta.ts';

/** An object that rejects unknown fields (the API refuses them; Kubernetes prunes them). */
export function StrictObject<T extends TProperties>(properties: T, options: ObjectOptions = {}): TObject<T> {
  return Type.Object(properties, { ...options, additionalProperties: false });
}

/** A closed set of strings: the TypeScript type is the union of the literals. */
export function StringEnum<const T extends readonly [string, ...string[]]>(
  values: T,
  options: { description?: string; default?: T[number] } = {},
): TUnion<TLiteral<T[number]>[]> {
  return Type.Union(
    values.map((value) => Type.Literal(value)),
    options,
  );
}

/** A reference to another resource by name (same rules as metadata.name). */
export function NameRef(options: StringOptions = {}): TString {
  return Type.String({ minLength: 1, maxLength: resourceNameLengthMax, pattern: resourceNamePattern, ...options });
}

/** Free text: messages, errors, descriptions. Bounded so a hostile client cannot store megabytes. */
export function Text(options: StringOptions = {}): TString {
  return Type.String({ maxLength: freeTextLengthMax, ...options });
}

/** RFC 3339 time in UTC or with an offset, as Kubernetes writes it (`2024-05-01T12:00:00Z`). */
export const timestampPattern = '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$';

export function Timestamp(options: StringOptions = {}): TString {
  return Type.String({ pattern: timestampPattern, maxLength: 40, ...options });
}

/** A byte count of anything on a disk (disks can be larger than a volume); exact as a JS number. */
export function Bytes(options: { description?: string; maximum?: number; default?: number } = {}) {
  return Type.Integer({ minimum: 0, maximum: byteCountMax, unit: 'bytes', ...options });
}

/** Tags on nodes and disks, and the selectors that must match them. */
export const tagPattern = '^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$';
export function Tags(description: string) {
  return Type.Array(Type.String({ minLength: 1, maxLength: tagLengthMax, pattern: tagPattern }), {
    maxItems: tagCountMax,
    default: [],
    description,
  });
}

/** Free-form string labels (snapshot and backup labels, recurring job labels). */
export function Labels(description: string): TRecord<TString, TString> {
  return Type.Record(Type.String({ maxLength: labelLengthMax }), Type.String({ maxLength: labelLengthMax }), {
    maxProperties: labelCountMax,
    default: {},
    description,
  });
}

/**
 * A map keyed by names (`disks`, `replicaModeMap`, ...). The key pattern is checked by our
 * validation; Kubernetes structural schemas cannot check keys, so the CRD only bounds the count.
 */
export function NameMap<V extends TSchema>(value: V, options: { description?: string; maxProperties: number; keyPattern?: string }) {
  return Type.Record(Type.String({ pattern: options.keyPattern ?? resourceNamePattern }), value, {
    additionalProperties: false,
    maxProperties: options.maxProperties,
    default: {},
    ...(options.description === undefined ? {} : { description: options.description }),
  });
}

export const conditionStatuses = ['True', 'False', 'Unknown'] as const;

/** Kubernetes-style condition: `{type, status, reason, message, lastTransitionTime}`. */
export const ConditionSchema = StrictObject({
  type: Type.String({ minLength: 1, maxLength: 64, description: 'What the condition is about, e.g. Ready, Schedulable.' }),
  status: StringEnum(conditionStatuses),
  reason: Type.Optional(Type.String({ maxLength: 128, description: 'One CamelCase word saying why.' })),
  message: Type.Optional(Text()),
  lastProbeTime: Type.Optional(Timestamp()),
  lastTransitionTime: Type.Optional(Timestamp()),
});

export function Conditions() {
  return Type.Array(ConditionSchema, { maxItems: conditionCountMax, description: 'Observed conditions, one per type.' });
}

/** The owning manager's node: the one manager that reconciles this object (Longhorn's ownerID). */
export function OwnerID() {
  return Type.Optional(NameRef({ description: 'The node whose manager reconciles this object.' }));
}
