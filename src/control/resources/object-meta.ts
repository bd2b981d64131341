// The metadata every resource carries, shaped like Kubernetes' ObjectMeta, and the rules for
// names. Shared by the resource schemas, the stores and the API.
import { Type, type Static } from '@sinclair/typebox';

/** Names: DNS-1123 labels (lowercase alphanumerics and '-', starting and ending alphanumeric). */
export const resourceNamePattern = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
export const resourceNameLengthMax = 63;

export const ObjectMetaSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: resourceNameLengthMax, pattern: resourceNamePattern }),
    uid: Type.Optional(Type.String()),
    resourceVersion: Type.Optional(Type.String()),
    generation: Type.Optional(Type.Integer({ minimum: 0 })),
    labels: Type.Optional(Type.Record(Type.String(), Type.String())),
    annotations: Type.Optional(Type.Record(Type.String(), Type.String())),
    finalizers: Type.Optional(Type.Array(Type.String())),
    creationTimestamp: Type.Optional(Type.String()),
    deletionTimestamp: Type.Optional(Type.String()),
    ownerReferences: Type.Optional(
      Type.Array(Type.Object({ kind: Type.String(), name: Type.String(), uid: Type.String() })),
    ),
  },
  { additionalProperties: false },
);
export type ObjectMeta = Static<typeof ObjectMetaSchema>;

export const apiVersion = 'shorthorn.io/v1';

/** The shape every stored resource has; `spec` and `status` are kind-specific. */
export interface Resource<Spec = unknown, Status = unknown> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

const nameRegExp = new RegExp(resourceNamePattern);

/** Why a name is refused, or null when it is valid. Refuses '../x', 'a/b', '' and long names. */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return 'name is empty';
  if (name.length > resourceNameLengthMax) {
    return `name is ${name.length} characters; at most ${resourceNameLengthMax} allowed`;
  }
  if (!nameRegExp.test(name)) {
    return `name ${JSON.stringify(name)} must be lowercase letters, digits and '-', starting and ending with a letter or digit`;
  }
  return null;
}
