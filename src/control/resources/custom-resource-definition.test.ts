import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Type } from '@sinclair/typebox';
import { NameMap, StrictObject, StringEnum } from './common-schemas.ts';
import { CrdSchemaError, toStructuralSchema } from './custom-resource-definition.ts';

test('maps become additionalProperties, literal unions become enums, unknown-field refusal is dropped', () => {
  const schema = StrictObject({
    disks: NameMap(Type.Integer({ minimum: 0, unit: 'bytes' }), { maxProperties: 4 }),
    mode: StringEnum(['RW', 'WO'], { default: 'RW' }),
    fixed: Type.Literal('v1'),
    tags: Type.Optional(Type.Array(Type.String({ pattern: '^a' }), { maxItems: 2 })),
  });
  assert.deepEqual(toStructuralSchema(schema), {
    type: 'object',
    required: ['disks', 'mode', 'fixed'],
    properties: {
      disks: { type: 'object', default: {}, maxProperties: 4, additionalProperties: { type: 'integer', format: 'int64', minimum: 0 } },
      mode: { type: 'string', enum: ['RW', 'WO'], default: 'RW' },
      fixed: { type: 'string', enum: ['v1'] },
      tags: { type: 'array', maxItems: 2, items: { type: 'string', pattern: '^a' } },
    },
  });
});

test('constructs a CRD cannot carry are refused with the field path', () => {
  assert.throws(
    () => toStructuralSchema(StrictObject({ either: Type.Union([Type.String(), Type.Integer()]) })),
    (error: unknown) => error instanceof CrdSchemaError && error.message.includes('either: only unions of string literals'),
  );
  assert.throws(
    () => toStructuralSchema(StrictObject({ when: Type.Date() })),
    (error: unknown) => error instanceof CrdSchemaError && error.message.includes('when: no CRD form'),
  );
});
