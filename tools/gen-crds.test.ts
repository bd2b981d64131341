import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { customResourceDefinition } from '../src/control/resources/custom-resource-definition.ts';
import { apiGroup, kindNames, resourceKinds } from '../src/control/resources/resource-kinds.ts';
import { crdDirectory, crdFiles } from './gen-crds.ts';
import { structuralSchemaProblems } from './structural-schema.ts';
import { repoRoot } from './tidy.ts';

const root = repoRoot(dirname(fileURLToPath(import.meta.url)));

type Json = Record<string, unknown>;

function openApiSchema(crd: Json): Json {
  const versions = (crd['spec'] as Json)['versions'] as Json[];
  return ((versions[0] as Json)['schema'] as Json)['openAPIV3Schema'] as Json;
}

test('the committed CRDs are what the generator makes now (run node dist/tools/gen-crds.js)', () => {
  const expected = crdFiles();
  const directory = join(root, crdDirectory);
  const committed = readdirSync(directory).filter((name) => name.endsWith('.yaml')).sort();
  assert.deepEqual(committed, [...expected.keys()].sort(), 'the set of CRD files differs');
  for (const [name, text] of expected) {
    assert.equal(readFileSync(join(directory, name), 'utf8'), text, `${crdDirectory}/${name} is stale`);
  }
});

test('every generated openAPIV3Schema is a structural schema', () => {
  for (const kind of kindNames) {
    assert.deepEqual(structuralSchemaProblems(openApiSchema(customResourceDefinition(kind))), [], kind);
  }
});

test('every CRD is named plural.group, serves one storage version with status, and its printer columns exist', () => {
  for (const kind of kindNames) {
    const crd = customResourceDefinition(kind);
    const definition = resourceKinds[kind];
    assert.equal((crd['metadata'] as Json)['name'], `${definition.plural}.${apiGroup}`);
    assert.match(definition.plural, /^[a-z]+$/);
    const versions = (crd['spec'] as Json)['versions'] as Json[];
    assert.equal(versions.filter((v) => v['storage'] === true).length, 1);
    assert.deepEqual(versions[0]?.['subresources'], { status: {} });
    const schema = openApiSchema(crd);
    for (const column of definition.printerColumns) {
      if (column.jsonPath.startsWith('.metadata.')) continue; // metadata is Kubernetes' own, not in our schema
      let node: Json | undefined = schema;
      for (const part of column.jsonPath.split('.').slice(1)) {
        node = ((node?.['properties'] ?? {}) as Record<string, Json>)[part];
      }
      assert.ok(node !== undefined, `${kind}: printer column ${column.name} points at missing ${column.jsonPath}`);
    }
  }
});

test('a YAML parser we did not write reads the files back as the CRD objects', () => {
  const files = crdFiles();
  const texts = kindNames.map((kind) => files.get(`${apiGroup}_${resourceKinds[kind].plural}.yaml`) ?? '');
  // One python3 for every file (its start-up costs about a second here): documents joined by ---.
  const parsed = spawnSync('python3', ['-c', 'import sys, json, yaml; print(json.dumps(list(yaml.safe_load_all(sys.stdin))))'], {
    input: texts.join('---\n'),
    encoding: 'utf8',
  });
  assert.equal(parsed.status, 0, `python3 with PyYAML (Debian python3-yaml) failed: ${parsed.stderr}${String(parsed.error ?? '')}`);
  const documents = JSON.parse(parsed.stdout) as unknown[];
  assert.equal(documents.length, kindNames.length);
  kindNames.forEach((kind, index) => assert.deepEqual(documents[index], customResourceDefinition(kind), kind));
});

test('the structural-schema checker refuses what Kubernetes refuses', () => {
  const ok = (properties: Json): Json => ({ type: 'object', properties });
  const cases: { name: string; schema: unknown; message: RegExp }[] = [
    { name: 'a node without a type', schema: ok({ spec: { properties: {} } }), message: /has no type/ },
    { name: 'an unknown type', schema: ok({ spec: { type: 'map' } }), message: /type "map" is not one of/ },
    { name: '$ref', schema: ok({ spec: { type: 'object', $ref: '#/definitions/x' } }), message: /\$ref is not allowed/ },
    { name: 'patternProperties', schema: ok({ spec: { type: 'object', patternProperties: { '^a$': { type: 'string' } } } }), message: /patternProperties is not allowed/ },
    { name: 'const', schema: ok({ spec: { type: 'string', const: 'x' } }), message: /const is not allowed/ },
    {
      name: 'properties with additionalProperties',
      schema: ok({ spec: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'string' } } }),
      message: /mutually exclusive/,
    },
    { name: 'additionalProperties: false', schema: ok({ spec: { type: 'object', additionalProperties: false } }), message: /not a boolean/ },
    { name: 'type inside anyOf', schema: ok({ spec: { type: 'string', anyOf: [{ type: 'string' }] } }), message: /type is not allowed inside/ },
    { name: 'description inside not', schema: ok({ spec: { type: 'string', not: { description: 'x' } } }), message: /description is not allowed inside/ },
    {
      name: 'a junctor field missing outside',
      schema: ok({ spec: { type: 'object', properties: { a: { type: 'string' } }, oneOf: [{ properties: { b: {} } }] } }),
      message: /b is not specified outside the junctor/,
    },
    { name: 'metadata restricting labels', schema: ok({ metadata: { type: 'object', properties: { labels: { type: 'object' } } } }), message: /only name and generateName/ },
    { name: 'metadata with a pattern', schema: ok({ metadata: { type: 'object', pattern: 'x' } }), message: /not pattern/ },
    { name: 'a non-object root', schema: { type: 'string' }, message: /the root must be type object/ },
    { name: 'an array without items', schema: ok({ list: { type: 'array' } }), message: /an array needs items/ },
    { name: 'a tuple', schema: ok({ list: { type: 'array', items: [{ type: 'string' }] } }), message: /items must be one schema/ },
    { name: 'uniqueItems', schema: ok({ list: { type: 'array', items: { type: 'string' }, uniqueItems: true } }), message: /uniqueItems/ },
    { name: 'a lookahead pattern', schema: ok({ s: { type: 'string', pattern: '^(?!x)' } }), message: /RE2 lacks/ },
    { name: 'an enum of the wrong type', schema: ok({ s: { type: 'string', enum: [1] } }), message: /enum values must be of type string/ },
    { name: 'a default of the wrong type', schema: ok({ s: { type: 'integer', default: '1' } }), message: /default must be of type integer/ },
    { name: 'required but not a property', schema: { type: 'object', properties: {}, required: ['spec'] }, message: /required spec is not a property/ },
    { name: 'preserve-unknown-fields false', schema: ok({ x: { type: 'object', 'x-kubernetes-preserve-unknown-fields': false } }), message: /must be true when set/ },
    { name: 'an unknown keyword', schema: ok({ x: { type: 'string', unit: 'bytes' } }), message: /unknown schema field unit/ },
  ];
  for (const c of cases) {
    const problems = structuralSchemaProblems(c.schema);
    assert.ok(problems.some((p) => c.message.test(p.message)), `${c.name}: got ${JSON.stringify(problems)}`);
  }
  const allowed: unknown[] = [
    ok({ port: { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] } }),
    ok({ blob: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } }),
    ok({ raw: { 'x-kubernetes-preserve-unknown-fields': true } }),
    ok({ metadata: { type: 'object', properties: { name: { type: 'string', maxLength: 40 } } } }),
    ok({ s: { type: 'object', properties: { a: { type: 'string' } }, anyOf: [{ required: ['a'] }, { properties: { a: { pattern: '^x' } } }] } }),
  ];
  for (const schema of allowed) assert.deepEqual(structuralSchemaProblems(schema), [], JSON.stringify(schema));
});
