// Kubernetes CustomResourceDefinitions built from the same schemas that validate resources:
// TypeBox's JSON Schema is translated into a structural openAPIV3Schema (maps become
// additionalProperties, literal unions become enums, unknown-field refusal is left to pruning).
// Pure: tools/gen-crds.ts writes the result to deploy/crds/, the kubernetes store can apply it.
import type { TSchema } from '@sinclair/typebox';
import { apiGroup, apiGroupVersion, kindNames, resourceKinds, type KindDefinition, type KindName } from './resource-kinds.ts';
import type { Resource } from './object-meta.ts';

/** The subset of Kubernetes' JSONSchemaProps we emit. */
export interface StructuralSchema {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  format?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, StructuralSchema>;
  required?: string[];
  additionalProperties?: StructuralSchema;
  items?: StructuralSchema;
  minimum?: number;
  maximum?: number;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
}

export class CrdSchemaError extends Error {
  override readonly name = 'CrdSchemaError';
}

function copyAnnotations(from: TSchema, to: StructuralSchema, keys: readonly (keyof StructuralSchema)[]): StructuralSchema {
  for (const key of ['description', 'default', ...keys] as const) {
    const value: unknown = from[key];
    if (value !== undefined) (to as Record<string, unknown>)[key] = value;
  }
  return to;
}

/** Translate one of our TypeBox schemas; throws CrdSchemaError on a construct CRDs cannot carry. */
export function toStructuralSchema(schema: TSchema, path = ''): StructuralSchema {
  const anyOf = schema['anyOf'] as TSchema[] | undefined;
  if (anyOf !== undefined) {
    const values = anyOf.map((option) => option['const'] as unknown);
    if (values.length > 0 && values.every((value) => typeof value === 'string')) {
      return copyAnnotations(schema, { type: 'string', enum: values }, []);
    }
    throw new CrdSchemaError(`${path || '<root>'}: only unions of string literals can become a CRD enum`);
  }
  if (typeof schema['const'] === 'string') return copyAnnotations(schema, { type: 'string', enum: [schema['const']] }, []);
  switch (schema['type']) {
    case 'object':
      return objectSchema(schema, path);
    case 'array': {
      const items = schema['items'] as TSchema | undefined;
      if (items === undefined || Array.isArray(items)) throw new CrdSchemaError(`${path}: arrays need one items schema`);
      return copyAnnotations(schema, { type: 'array', items: toStructuralSchema(items, `${path}[]`) }, ['minItems', 'maxItems']);
    }
    case 'string':
      return copyAnnotations(schema, { type: 'string' }, ['minLength', 'maxLength', 'pattern']);
    case 'integer':
      return copyAnnotations(schema, { type: 'integer', format: 'int64' }, ['minimum', 'maximum', 'multipleOf']);
    case 'number':
      return copyAnnotations(schema, { type: 'number' }, ['minimum', 'maximum', 'multipleOf']);
    case 'boolean':
      return copyAnnotations(schema, { type: 'boolean' }, []);
    default:
      throw new CrdSchemaError(`${path || '<root>'}: no CRD form for schema type ${JSON.stringify(schema['type'])}`);
  }
}

function objectSchema(schema: TSchema, path: string): StructuralSchema {
  const patternProperties = schema['patternProperties'] as Record<string, TSchema> | undefined;
  if (patternProperties !== undefined) {
    // A map: structural schemas cannot check keys; our validation does.
    const values = Object.values(patternProperties);
    const value = values[0];
    if (values.length !== 1 || value === undefined) throw new CrdSchemaError(`${path}: a map needs exactly one value schema`);
    return copyAnnotations(schema, { type: 'object', additionalProperties: toStructuralSchema(value, `${path}.*`) }, ['maxProperties']);
  }
  const properties: Record<string, StructuralSchema> = {};
  for (const [name, property] of Object.entries((schema['properties'] ?? {}) as Record<string, TSchema>)) {
    properties[name] = toStructuralSchema(property, path === '' ? name : `${path}.${name}`);
  }
  const out: StructuralSchema = { type: 'object', properties };
  const required = schema['required'] as string[] | undefined;
  if (required !== undefined && required.length > 0) out.required = [...required];
  return copyAnnotations(schema, out, ['maxProperties']);
}

/** The openAPIV3Schema of a whole resource of this kind. */
export function crdRootSchema(definition: KindDefinition<Resource>): StructuralSchema {
  return {
    type: 'object',
    description: definition.description,
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec: toStructuralSchema(definition.specSchema, 'spec'),
      status: toStructuralSchema(definition.statusSchema, 'status'),
    },
    required: ['spec'],
  };
}

export function customResourceDefinition(kind: KindName): Record<string, unknown> {
  const definition = resourceKinds[kind] as KindDefinition<Resource>;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${definition.plural}.${apiGroup}`,
      labels: { 'app.kubernetes.io/name': 'shorthorn', 'app.kubernetes.io/part-of': 'shorthorn' },
    },
    spec: {
      group: apiGroup,
      names: {
        kind: definition.kind,
        listKind: `${definition.kind}List`,
        plural: definition.plural,
        singular: definition.singular,
        shortNames: [...definition.shortNames],
        categories: ['shorthorn'],
      },
      scope: definition.namespaced ? 'Namespaced' : 'Cluster',
      versions: [
        {
          name: apiGroupVersion,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: definition.printerColumns.map((column) => ({ ...column })),
          schema: { openAPIV3Schema: crdRootSchema(definition) },
        },
      ],
    },
  };
}

export function allCustomResourceDefinitions(): Record<string, unknown>[] {
  return kindNames.map((kind) => customResourceDefinition(kind));
}
