/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-explicit-any --
   these tests edit example JSON into shapes that no type describes, on purpose. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SeededRandom } from '../../lib/random.ts';
import { kindNames, resourceKinds } from './resource-kinds.ts';
import { resourceExamples } from './testing/resource-examples.ts';
import { assertValidResource, fieldPath, ResourceValidationError, validateResource, withDefaults } from './validate-resource.ts';

const tib = 1024 ** 4;

/** A deep copy of a kind's example with `edit` applied. */
function edited(kind: (typeof kindNames)[number], edit: (value: Record<string, any>) => void): unknown {
  const copy = structuredClone(resourceExamples[kind]) as unknown as Record<string, any>;
  edit(copy);
  return copy;
}

function problemsOf(kind: string, value: unknown): Map<string, string> {
  const result = validateResource(kind, value);
  assert.equal(result.ok, false, `expected ${kind} to be refused`);
  return new Map(result.ok ? [] : result.problems.map((p) => [p.path, p.reason]));
}

test('every kind in the registry has a valid example', () => {
  assert.deepEqual(Object.keys(resourceExamples).sort(), [...kindNames].sort());
  for (const kind of kindNames) {
    const result = validateResource(kind, resourceExamples[kind]);
    assert.ok(result.ok, `${kind}: ${result.ok ? '' : JSON.stringify(result.problems)}`);
    assert.equal(resourceKinds[kind].kind, kind);
  }
});

test('refusals carry a field path and a reason in plain words', () => {
  const cases: { name: string; kind: string; value: unknown; path: string; reason: RegExp }[] = [
    { name: 'unknown kind', kind: 'Pod', value: {}, path: 'kind', reason: /unknown kind "Pod"; known kinds are Volume/ },
    { name: 'not an object', kind: 'Volume', value: 'volume', path: '', reason: /must be an object, not string "volume"/ },
    { name: 'null', kind: 'Volume', value: null, path: '', reason: /must be an object, not null/ },
    { name: 'unknown top-level field', kind: 'Volume', value: edited('Volume', (v) => (v['extra'] = 1)), path: 'extra', reason: /^unknown field$/ },
    { name: 'unknown spec field', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].numberOfReplica = 3)), path: 'spec.numberOfReplica', reason: /^unknown field$/ },
    { name: 'unknown nested field', kind: 'Node', value: edited('Node', (v) => (v['spec'].disks['default-disk'].size = 1)), path: 'spec.disks.default-disk.size', reason: /^unknown field$/ },
    { name: 'name with ..', kind: 'Volume', value: edited('Volume', (v) => (v['metadata'].name = '../x')), path: 'metadata.name', reason: /must be lowercase letters, digits and '-'/ },
    { name: 'name with /', kind: 'Volume', value: edited('Volume', (v) => (v['metadata'].name = 'a/b')), path: 'metadata.name', reason: /must be lowercase letters/ },
    { name: 'empty name', kind: 'Volume', value: edited('Volume', (v) => (v['metadata'].name = '')), path: 'metadata.name', reason: /name is empty/ },
    { name: '300-character name', kind: 'Volume', value: edited('Volume', (v) => (v['metadata'].name = 'a'.repeat(300))), path: 'metadata.name', reason: /name is 300 characters; at most 63 allowed/ },
    { name: 'volume name over 40', kind: 'Volume', value: edited('Volume', (v) => (v['metadata'].name = 'a'.repeat(41))), path: 'metadata.name', reason: /at most 40 so that replica and engine names fit/ },
    { name: 'missing name', kind: 'Volume', value: edited('Volume', (v) => delete v['metadata'].name), path: 'metadata.name', reason: /^is required$/ },
    { name: 'size over 64 TiB', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].size = 65 * tib)), path: 'spec.size', reason: /71468255805440 bytes \(65 TiB\) is too large; at most 70368744177664 bytes \(64 TiB\)/ },
    { name: 'size not whole blocks', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].size = 4097)), path: 'spec.size', reason: /4097 is not a multiple of 4096/ },
    { name: 'size as a string', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].size = '10Gi')), path: 'spec.size', reason: /must be a whole number, not string "10Gi"/ },
    { name: 'size NaN', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].size = Number.NaN)), path: 'spec.size', reason: /must be a whole number, not NaN/ },
    { name: 'zero replicas', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].numberOfReplicas = 0)), path: 'spec.numberOfReplicas', reason: /0 is too small; at least 1/ },
    { name: 'eleven replicas', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].numberOfReplicas = 11)), path: 'spec.numberOfReplicas', reason: /11 is too large; at most 10/ },
    { name: 'fractional replicas', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].numberOfReplicas = 2.5)), path: 'spec.numberOfReplicas', reason: /2.5 is not a whole number/ },
    { name: 'unknown locality', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].dataLocality = 'local')), path: 'spec.dataLocality', reason: /"local" is not one of disabled, best-effort, strict-local/ },
    { name: 'bad tag', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].diskSelector = ['ok', 'not ok'])), path: 'spec.diskSelector[1]', reason: /"not ok" does not match/ },
    { name: 'wrong apiVersion', kind: 'Volume', value: edited('Volume', (v) => (v['apiVersion'] = 'longhorn.io/v1beta2')), path: 'apiVersion', reason: /must be "shorthorn.io\/v1"/ },
    { name: 'kind mismatch', kind: 'Engine', value: resourceExamples.Volume, path: 'kind', reason: /must be "Engine", not "Volume"/ },
    { name: 'bad timestamp', kind: 'Replica', value: edited('Replica', (v) => (v['spec'].failedAt = 'yesterday')), path: 'spec.failedAt', reason: /not an RFC 3339 time/ },
    { name: 'bad disk name key', kind: 'Node', value: edited('Node', (v) => (v['spec'].disks['../etc'] = v['spec'].disks['default-disk'])), path: 'spec.disks["../etc"]', reason: /^key "..\/etc" does not match/ },
    { name: 'bad replica name key', kind: 'Engine', value: edited('Engine', (v) => (v['spec'].replicaAddressMap['A/B'] = 'x:1')), path: 'spec.replicaAddressMap["A/B"]', reason: /^key: name "A\/B" must be lowercase/ },
    { name: 'disk path with ..', kind: 'Node', value: edited('Node', (v) => (v['spec'].disks['default-disk'].path = '/var/../etc')), path: 'spec.disks.default-disk.path', reason: /must not contain '\.\.'/ },
    { name: 'relative disk path', kind: 'Node', value: edited('Node', (v) => (v['spec'].disks['default-disk'].path = 'var/lib')), path: 'spec.disks.default-disk.path', reason: /does not match \^\// },
    { name: 'strict-local with 3 replicas', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].dataLocality = 'strict-local')), path: 'spec.numberOfReplicas', reason: /must be 1 with dataLocality strict-local/ },
    { name: 'minimum write replicas above count', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].minimumWriteReplicas = 4)), path: 'spec.minimumWriteReplicas', reason: /must not exceed numberOfReplicas \(4 > 3\)/ },
    { name: 'standby without backup', kind: 'Volume', value: edited('Volume', (v) => (v['spec'].standby = true)), path: 'spec.standby', reason: /needs fromBackup/ },
    { name: 'unknown setting', kind: 'Setting', value: edited('Setting', (v) => (v['metadata'].name = 'no-such-setting')), path: 'metadata.name', reason: /there is no setting named "no-such-setting"/ },
    { name: 'bad setting value', kind: 'Setting', value: edited('Setting', (v) => (v['spec'].value = '0')), path: 'spec.value', reason: /default-replica-count: 0 is out of range: must be 1 to 10/ },
    { name: 'bad cron', kind: 'RecurringJob', value: edited('RecurringJob', (v) => (v['spec'].cron = 'every day')), path: 'spec.cron', reason: /has 2 fields; expected 5/ },
    { name: 'long job name', kind: 'RecurringJob', value: edited('RecurringJob', (v) => (v['metadata'].name = 'j'.repeat(41))), path: 'metadata.name', reason: /at most 40/ },
    { name: 'full-backup-interval on a snapshot job', kind: 'RecurringJob', value: edited('RecurringJob', (v) => (v['spec'].task = 'snapshot')), path: 'spec.parameters.full-backup-interval', reason: /only applies to backup tasks/ },
    { name: 'bad backup target', kind: 'BackupTarget', value: edited('BackupTarget', (v) => (v['spec'].backupTargetURL = 'ftp://x')), path: 'spec.backupTargetURL', reason: /is not s3:\/\/bucket@region\/path/ },
    { name: 'ticket id differs from key', kind: 'VolumeAttachment', value: edited('VolumeAttachment', (v) => (v['spec'].attachmentTickets['shorthorn-ui'].id = 'other')), path: 'spec.attachmentTickets.shorthorn-ui.id', reason: /must equal its key/ },
    { name: 'too many tags', kind: 'Node', value: edited('Node', (v) => (v['spec'].tags = Array.from({ length: 33 }, (_, i) => `t${i}`))), path: 'spec.tags', reason: /has 33 items; at most 32 allowed/ },
    { name: 'huge message', kind: 'Backup', value: edited('Backup', (v) => (v['status'].error = 'x'.repeat(5000))), path: 'status.error', reason: /is 5000 characters; at most 4096 allowed/ },
    { name: 'bad replica mode', kind: 'Engine', value: edited('Engine', (v) => (v['status'].replicaModeMap['vol-a-r-0a1b2c3d'] = 'rw')), path: 'status.replicaModeMap.vol-a-r-0a1b2c3d', reason: /"rw" is not one of RW, WO, ERR/ },
  ];
  for (const c of cases) {
    const problems = problemsOf(c.kind, c.value);
    const reason = problems.get(c.path);
    assert.ok(reason !== undefined, `${c.name}: no problem at ${c.path}; got ${JSON.stringify([...problems])}`);
    assert.match(reason, c.reason, c.name);
  }
});

test('a body with thousands of unknown fields gets a short answer', () => {
  const value = edited('Volume', (v) => {
    for (let i = 0; i < 5000; i++) v['spec'][`junk${i}`] = i;
  });
  const result = validateResource('Volume', value);
  assert.equal(result.ok, false);
  if (!result.ok) {
    assert.ok(result.problems.length <= 21, `${result.problems.length} problems`);
    assert.match(result.problems.at(-1)?.reason ?? '', /and \d+\+? more problems/);
  }
});

test('withDefaults() fills what a user may leave out; the result validates', () => {
  const minimal = {
    apiVersion: 'shorthorn.io/v1',
    kind: 'Volume',
    metadata: { name: 'vol-b' },
    spec: { size: 1024 ** 3, numberOfReplicas: 2 },
  };
  assert.equal(validateResource('Volume', minimal).ok, false, 'defaults are needed');
  const filled = withDefaults('Volume', minimal);
  const volume = assertValidResource('Volume', filled);
  assert.equal(volume.spec.frontend, 'blockdev');
  assert.equal(volume.spec.accessMode, 'rwo');
  assert.equal(volume.spec.dataLocality, 'disabled');
  assert.equal(volume.spec.minimumWriteReplicas, 1);
  assert.equal(volume.spec.staleReplicaTimeout, 2880);
  assert.deepEqual(volume.spec.nodeSelector, []);
  assert.equal((minimal.spec as Record<string, unknown>)['frontend'], undefined, 'the input is not changed');
});

test('assertValidResource() throws a typed error listing the problems', () => {
  assert.throws(
    () => assertValidResource('Volume', edited('Volume', (v) => (v['spec'].numberOfReplicas = 0))),
    (error: unknown) =>
      error instanceof ResourceValidationError &&
      error.code === 'invalid_resource' &&
      error.message.includes('spec.numberOfReplicas: 0 is too small') &&
      error.problems.length === 1,
  );
});

test('fieldPath() turns JSON pointers into readable paths', () => {
  assert.equal(fieldPath(''), '');
  assert.equal(fieldPath('/spec/numberOfReplicas'), 'spec.numberOfReplicas');
  assert.equal(fieldPath('/spec/diskSelector/2'), 'spec.diskSelector[2]');
  assert.equal(fieldPath('/spec/disks/a~1b'), 'spec.disks["a/b"]');
});

/** Replace a random leaf (or add a random field) with junk; validation must answer, never throw. */
function mutate(value: unknown, random: SeededRandom, depth = 0): unknown {
  const junk: unknown[] = [null, -1, 1.5, 2 ** 60, '', '../x', 'x'.repeat(70), true, [], {}, [1, 'a'], { a: { b: 1 } }, '2024-13-45T99:99:99Z'];
  if (typeof value !== 'object' || value === null || depth > 6 || random.int(5) === 0) return random.pick(junk);
  if (Array.isArray(value)) {
    if (value.length === 0) return [random.pick(junk)];
    const copy = [...value];
    const i = random.int(copy.length);
    copy[i] = mutate(copy[i], random, depth + 1);
    return copy;
  }
  const copy: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  const keys = Object.keys(copy);
  const roll = random.int(8);
  if (keys.length === 0 || roll === 0) copy[`k${random.int(3)}`] = random.pick(junk);
  else if (roll === 1) delete copy[random.pick(keys)];
  else {
    const key = random.pick(keys);
    copy[key] = mutate(copy[key], random, depth + 1);
  }
  return copy;
}

test('seeded mutations of valid resources are answered with problems, never an exception', () => {
  const seed = process.env['SEED'] === undefined ? Date.now() % 2 ** 32 : Number(process.env['SEED']);
  const random = new SeededRandom(seed);
  try {
    for (let i = 0; i < 2000; i++) {
      const kind = random.pick(kindNames);
      const value = mutate(resourceExamples[kind], random);
      const result = validateResource(kind, value);
      if (!result.ok) {
        assert.ok(result.problems.length > 0);
        for (const problem of result.problems) assert.ok(problem.reason.length > 0 && !problem.reason.includes('undefined'), problem.reason);
      }
    }
  } catch (error) {
    console.error(`replay with SEED=${seed}`);
    throw error;
  }
});
