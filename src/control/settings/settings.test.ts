import { test } from 'node:test';
import assert from 'node:assert/strict';
import { settingDefinitions } from './setting-definitions.ts';
import { formatSettingValue } from './setting-definition.ts';
import { isSettingName, parseSettingValue, SettingError, Settings, settingNames } from './settings.ts';

test('every default is valid for its own definition and round-trips through its string form', () => {
  for (const name of settingNames) {
    const definition = settingDefinitions[name];
    const parsed = parseSettingValue(name, formatSettingValue(definition.default));
    assert.ok(parsed.ok, `${name}: ${parsed.ok ? '' : parsed.reason}`);
    assert.equal(parsed.value, definition.default, name);
    if (definition.type === 'int') assert.ok(definition.min <= definition.default && definition.default <= definition.max, name);
  }
});

test('the catalogue has Longhorn\'s names and defaults for the settings that matter', () => {
  const expected: Record<string, boolean | number | string> = {
    'default-replica-count': 3,
    'replica-soft-anti-affinity': false,
    'replica-zone-soft-anti-affinity': true,
    'replica-disk-soft-anti-affinity': true,
    'storage-over-provisioning-percentage': 100,
    'storage-minimal-available-percentage': 25,
    'storage-reserved-percentage-for-default-disk': 30,
    'replica-replenishment-wait-interval': 600,
    'concurrent-replica-rebuild-per-node-limit': 5,
    'auto-salvage': true,
    'backupstore-poll-interval': 300,
    'default-data-locality': 'disabled',
    'node-down-pod-deletion-policy': 'do-nothing',
    'disable-scheduling-on-cordoned-node': true,
    'backup-target': '',
    'backup-target-credential-secret': '',
    'recurring-successful-jobs-history-limit': 1,
    'snapshot-max-count': 250,
    'backup-compression-method': 'lz4',
    'snapshot-data-integrity': 'fast-check',
  };
  const defaults = Settings.defaults();
  for (const [name, value] of Object.entries(expected)) {
    assert.ok(isSettingName(name), name);
    assert.equal(defaults.values[name], value, name);
  }
  assert.ok(settingNames.length >= 40, `${settingNames.length} settings`);
});

test('the typed accessor returns typed values', () => {
  const settings = Settings.defaults().with('default-replica-count', '2').with('default-data-locality', 'best-effort');
  const count: number = settings.get('default-replica-count');
  const locality: 'disabled' | 'best-effort' | 'strict-local' = settings.get('default-data-locality');
  const soft: boolean = settings.get('replica-soft-anti-affinity');
  assert.equal(count, 2);
  assert.equal(locality, 'best-effort');
  assert.equal(soft, false);
  assert.equal(Settings.defaults().get('default-replica-count'), 3, 'with() does not change the original');
});

test('bad values are refused with a reason that names the setting and what is accepted', () => {
  const cases: [string, string, RegExp][] = [
    ['default-replica-count', '0', /default-replica-count: 0 is out of range: must be 1 to 10/],
    ['default-replica-count', '11', /out of range/],
    ['default-replica-count', '3.5', /not a whole number/],
    ['default-replica-count', '', /not a whole number/],
    ['default-replica-count', '99999999999999999999', /not a whole number/],
    ['auto-salvage', 'yes', /not a boolean; use "true" or "false"/],
    ['default-data-locality', 'local', /not one of disabled, best-effort, strict-local/],
    ['backup-target', 'http://x', /not s3:\/\/bucket@region\/path/],
    ['backup-target', '/srv/../etc', /must not contain '\.\.'/],
    ['backup-target', 's3://bucket@us-east-1/../../x/', /must not contain '\.\.'/],
    ['backup-target', 'nfs://10.0.0.5:/exports/./x', /must not contain '\.\.' or '\.'/],
    ['snapshot-data-integrity-cronjob', '* * *', /has 3 fields; expected 5/],
    ['snapshot-data-integrity-cronjob', '61 * * * *', /minute 61 is out of range/],
    ['default-data-path', 'relative/path', /not an absolute path/],
    ['taint-toleration', 'k=v', /not key\[=value\]/],
    ['no-such-setting', 'x', /there is no setting named "no-such-setting"/],
    ['backup-target', 'x'.repeat(5000), /at most 4096/],
  ];
  for (const [name, text, reason] of cases) {
    const parsed = parseSettingValue(name, text);
    assert.equal(parsed.ok, false, `${name}=${text.slice(0, 20)} was accepted`);
    if (!parsed.ok) assert.match(parsed.reason, reason, `${name}=${text.slice(0, 20)}`);
  }
});

test('good non-default values are accepted', () => {
  const cases: [string, string, boolean | number | string][] = [
    ['backup-target', 's3://backups@us-east-1/shorthorn', 's3://backups@us-east-1/shorthorn'],
    ['backup-target', 'nfs://10.0.0.5:/exports/backups', 'nfs://10.0.0.5:/exports/backups'],
    ['backup-target', '/srv/backups', '/srv/backups'],
    ['snapshot-data-integrity-cronjob', '*/15 1-5 * * 1,3,5', '*/15 1-5 * * 1,3,5'],
    ['snapshot-data-integrity-cronjob', '@daily', '@daily'],
    ['storage-over-provisioning-percentage', '200', 200],
    ['replica-soft-anti-affinity', 'true', true],
    ['taint-toleration', 'nodetype=storage:NoSchedule;dedicated:NoExecute', 'nodetype=storage:NoSchedule;dedicated:NoExecute'],
  ];
  for (const [name, text, value] of cases) assert.deepEqual(parseSettingValue(name, text), { ok: true, value }, name);
});

test('Settings.with() throws SettingError with a code; fromStrings() falls back and reports', () => {
  assert.throws(() => Settings.defaults().with('default-replica-count', 'x'), (error: unknown) => {
    return error instanceof SettingError && error.code === 'invalid_value';
  });
  assert.throws(() => Settings.defaults().with('nope', '1'), (error: unknown) => error instanceof SettingError && error.code === 'unknown_setting');
  assert.throws(
    () => Settings.defaults().with('current-shorthorn-version', '9'),
    (error: unknown) => error instanceof SettingError && error.code === 'read_only',
  );
  const { settings, problems } = Settings.fromStrings({ 'default-replica-count': '2', 'auto-salvage': 'maybe', bogus: '1' });
  assert.equal(settings.get('default-replica-count'), 2);
  assert.equal(settings.get('auto-salvage'), true);
  assert.deepEqual(problems.map((p) => p.name).sort(), ['auto-salvage', 'bogus']);
  assert.equal(Settings.fromStrings(settings.toStrings()).settings.get('default-replica-count'), 2);
});
