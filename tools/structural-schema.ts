// A checker for Kubernetes structural schemas (apiextensions.k8s.io/v1 CRD openAPIV3Schema), from
// the rules in the Kubernetes documentation ("Specifying a structural schema") and the CRD
// validation: every node has a type (except int-or-string / preserve-unknown-fields nodes); no
// $ref, definitions, dependencies, patternProperties or additionalItems; properties and
// additionalProperties never together; junctors (allOf/anyOf/oneOf/not) carry no type,
// description, default, additionalProperties or nullable, and name only fields that are also
// specified outside them; at the root, metadata may only restrict name and generateName.

export interface SchemaProblem {
  readonly path: string;
  readonly message: string;
}

type Schema = Record<string, unknown>;

const types = new Set(['object', 'array', 'string', 'integer', 'number', 'boolean']);
const junctors = ['allOf', 'anyOf', 'oneOf', 'not'] as const;
/** JSONSchemaProps fields a CRD may carry (anything else is rejected or silently dropped). */
const knownKeys = new Set([
  'description', 'type', 'format', 'title', 'default', 'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum',
  'maxLength', 'minLength', 'pattern', 'maxItems', 'minItems', 'uniqueItems', 'multipleOf', 'enum', 'maxProperties',
  'minProperties', 'required', 'items', 'allOf', 'oneOf', 'anyOf', 'not', 'properties', 'additionalProperties',
  'externalDocs', 'example', 'nullable', 'x-kubernetes-preserve-unknown-fields', 'x-kubernetes-embedded-resource',
  'x-kubernetes-int-or-string', 'x-kubernetes-list-map-keys', 'x-kubernetes-list-type', 'x-kubernetes-map-type',
  'x-kubernetes-validations',
]);
const forbiddenKeys = ['$ref', '$schema', 'id', 'definitions', 'dependencies', 'patternProperties', 'additionalItems', 'const'];
/** Not allowed inside a junctor (except the int-or-string pattern). */
const forbiddenInJunctors = ['type', 'description', 'default', 'additionalProperties', 'nullable'];

function isSchema(value: unknown): value is Schema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function at(path: string, child: string): string {
  return path === '' ? child : `${path}.${child}`;
}

/** Go's RE2 (used by the API server) has no lookaround or backreferences. */
function patternProblem(pattern: unknown): string | null {
  if (typeof pattern !== 'string') return 'pattern must be a string';
  try {
    new RegExp(pattern, 'u');
  } catch (error) {
    return `pattern does not compile: ${(error as Error).message}`;
  }
  if (/\(\?[=!<]|\\[1-9]/.test(pattern)) return 'pattern uses lookaround or a backreference, which RE2 lacks';
  return null;
}

/** Whether a value has the JSON type a schema node declares (for enum and default values). */
function valueMatchesType(value: unknown, type: unknown): boolean {
  switch (type) {
    case 'object':
      return isSchema(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return true;
  }
}

function isIntOrString(schema: Schema): boolean {
  return schema['x-kubernetes-int-or-string'] === true;
}

/** Property names and whether items are specified anywhere inside a junctor tree. */
function junctorFields(schema: Schema, path: string, problems: SchemaProblem[], intOrString: boolean): void {
  for (const key of forbiddenInJunctors) {
    if (key === 'type' && intOrString) continue;
    if (schema[key] !== undefined) problems.push({ path, message: `${key} is not allowed inside allOf/anyOf/oneOf/not` });
  }
  for (const junctor of junctors) {
    const inner = schema[junctor];
    const list = junctor === 'not' ? [inner] : Array.isArray(inner) ? inner : [];
    list.forEach((item, index) => {
      if (isSchema(item)) junctorFields(item, `${path}.${junctor}[${index}]`, problems, intOrString);
    });
  }
}

function checkJunctors(schema: Schema, path: string, problems: SchemaProblem[]): void {
  const outerProperties = isSchema(schema['properties']) ? schema['properties'] : {};
  for (const junctor of junctors) {
    const value = schema[junctor];
    if (value === undefined) continue;
    const list: unknown[] = junctor === 'not' ? [value] : Array.isArray(value) ? value : [];
    if (junctor !== 'not' && !Array.isArray(value)) problems.push({ path: at(path, junctor), message: 'must be a list of schemas' });
    list.forEach((item, index) => {
      const itemPath = junctor === 'not' ? at(path, 'not') : `${at(path, junctor)}[${index}]`;
      if (!isSchema(item)) {
        problems.push({ path: itemPath, message: 'must be a schema object' });
        return;
      }
      junctorFields(item, itemPath, problems, isIntOrString(schema) && junctor === 'anyOf');
      // Rule 2: a field named inside a junctor must also be specified outside it.
      if (isSchema(item['properties'])) {
        for (const name of Object.keys(item['properties'])) {
          if (!(name in outerProperties)) {
            problems.push({ path: `${itemPath}.properties.${name}`, message: `${name} is not specified outside the junctor` });
          }
        }
      }
      if (item['items'] !== undefined && schema['items'] === undefined) {
        problems.push({ path: `${itemPath}.items`, message: 'items are not specified outside the junctor' });
      }
    });
  }
}

function checkNode(schema: unknown, path: string, problems: SchemaProblem[]): void {
  if (!isSchema(schema)) {
    problems.push({ path, message: 'must be a schema object' });
    return;
  }
  for (const key of Object.keys(schema)) {
    if (forbiddenKeys.includes(key)) problems.push({ path, message: `${key} is not allowed in a structural schema` });
    else if (!knownKeys.has(key)) problems.push({ path, message: `unknown schema field ${key}` });
  }
  const preserve = schema['x-kubernetes-preserve-unknown-fields'];
  const intOrString = schema['x-kubernetes-int-or-string'];
  if (preserve !== undefined && preserve !== true) problems.push({ path, message: 'x-kubernetes-preserve-unknown-fields must be true when set' });
  if (intOrString !== undefined && intOrString !== true) problems.push({ path, message: 'x-kubernetes-int-or-string must be true when set' });
  const type = schema['type'];
  if (type === undefined || type === '') {
    if (preserve !== true && intOrString !== true) problems.push({ path, message: 'has no type' });
  } else if (typeof type !== 'string' || !types.has(type)) {
    problems.push({ path, message: `type ${JSON.stringify(type)} is not one of ${[...types].join(', ')}` });
  } else if (intOrString === true) {
    problems.push({ path, message: 'an int-or-string node must not have a type' });
  }
  if (schema['uniqueItems'] === true) problems.push({ path, message: 'uniqueItems: true is not allowed' });
  if (schema['properties'] !== undefined && schema['additionalProperties'] !== undefined) {
    problems.push({ path, message: 'properties and additionalProperties are mutually exclusive' });
  }
  if ((schema['properties'] !== undefined || schema['additionalProperties'] !== undefined) && type !== 'object') {
    problems.push({ path, message: 'properties need type object' });
  }
  if (schema['items'] !== undefined && type !== 'array') problems.push({ path, message: 'items need type array' });
  if (type === 'array' && schema['items'] === undefined) problems.push({ path, message: 'an array needs items' });
  if (schema['pattern'] !== undefined) {
    const problem = patternProblem(schema['pattern']);
    if (problem !== null) problems.push({ path, message: problem });
  }
  if (schema['enum'] !== undefined) {
    if (!Array.isArray(schema['enum']) || schema['enum'].length === 0) problems.push({ path, message: 'enum must be a non-empty list' });
    else if (!schema['enum'].every((value) => valueMatchesType(value, type))) problems.push({ path, message: `enum values must be of type ${String(type)}` });
  }
  if (schema['default'] !== undefined && !valueMatchesType(schema['default'], type)) {
    problems.push({ path, message: `default must be of type ${String(type)}` });
  }
  const required = schema['required'];
  if (required !== undefined) {
    const names = isSchema(schema['properties']) ? Object.keys(schema['properties']) : [];
    if (!Array.isArray(required)) problems.push({ path, message: 'required must be a list' });
    else for (const name of required) if (!names.includes(String(name))) problems.push({ path, message: `required ${String(name)} is not a property` });
  }
  checkJunctors(schema, path, problems);
  if (schema['properties'] !== undefined) {
    if (!isSchema(schema['properties'])) problems.push({ path, message: 'properties must be an object' });
    else for (const [name, child] of Object.entries(schema['properties'])) checkNode(child, at(path, name), problems);
  }
  const additional = schema['additionalProperties'];
  if (typeof additional === 'boolean') problems.push({ path, message: 'additionalProperties must be a schema, not a boolean' });
  else if (additional !== undefined) checkNode(additional, `${path}.*`, problems);
  const items = schema['items'];
  if (Array.isArray(items)) problems.push({ path, message: 'items must be one schema, not a list' });
  else if (items !== undefined) checkNode(items, `${path}[]`, problems);
}

/** Every way `schema` (a CRD version's openAPIV3Schema) breaks the structural-schema rules. */
export function structuralSchemaProblems(schema: unknown): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  checkNode(schema, '', problems);
  if (!isSchema(schema)) return problems;
  if (schema['type'] !== 'object') problems.push({ path: '', message: 'the root must be type object' });
  const properties = isSchema(schema['properties']) ? schema['properties'] : {};
  const metadata = properties['metadata'];
  if (isSchema(metadata)) {
    for (const key of Object.keys(metadata)) {
      if (key !== 'type' && key !== 'properties' && key !== 'description') {
        problems.push({ path: 'metadata', message: `only name and generateName may be restricted, not ${key}` });
      }
    }
    if (metadata['type'] !== undefined && metadata['type'] !== 'object') problems.push({ path: 'metadata', message: 'must be type object' });
    if (isSchema(metadata['properties'])) {
      for (const [name, child] of Object.entries(metadata['properties'])) {
        if (name !== 'name' && name !== 'generateName') problems.push({ path: `metadata.${name}`, message: 'only name and generateName may be restricted' });
        else if (!isSchema(child) || child['type'] !== 'string') problems.push({ path: `metadata.${name}`, message: 'must be type string' });
      }
    }
  }
  for (const name of ['apiVersion', 'kind'] as const) {
    const child = properties[name];
    if (isSchema(child) && child['type'] !== 'string') problems.push({ path: name, message: 'must be type string' });
  }
  return problems;
}
