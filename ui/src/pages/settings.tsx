// Settings grouped by category, each with its description, type, range and default; a value is
// checked by the API (PUT /v1/settings/NAME) and its refusal is shown beside the field.
import { useEffect, useState } from 'preact/hooks';
import { apiCall, errorText } from '../api.ts';
import { Notice, PageTitle } from '../components.tsx';
import { useCollection } from '../live.ts';
import type { SettingView } from '../views.ts';
import { settingCategories } from '../../../src/control/settings/setting-definition.ts';

function SettingRow(props: { setting: SettingView }) {
  const { setting } = props;
  const { definition } = setting;
  const [value, setValue] = useState(setting.value);
  // A change made elsewhere (another tab, the CLI) arrives through the stream and shows here.
  useEffect(() => setValue(setting.value), [setting.value]);
  const [error, setError] = useState<string | undefined>(undefined);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const id = `setting-${setting.id}`;
  const dirty = value !== setting.value;
  const save = async (event: Event): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    setSaved(false);
    try {
      await apiCall('PUT', `/v1/settings/${setting.id}`, { value });
      setSaved(true);
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };
  const describedBy = `${id}-help${error === undefined ? '' : ` ${id}-error`}`;
  const common = { id, disabled: definition.readOnly, 'aria-describedby': describedBy, 'aria-invalid': error !== undefined };
  let input;
  if (definition.type === 'bool' || definition.type === 'enum') {
    const options = definition.type === 'bool' ? ['true', 'false'] : definition.options ?? [];
    input = <select {...common} value={value} onChange={(e) => setValue(e.currentTarget.value)}>{options.map((o) => <option key={o} value={o}>{o}</option>)}</select>;
  } else {
    input = <input {...common} type="text" inputMode={definition.type === 'int' ? 'numeric' : 'text'} value={value} onInput={(e) => setValue(e.currentTarget.value)} />;
  }
  const range = definition.range === undefined ? '' : ` Range ${definition.range.min}–${definition.range.max}${definition.unit === undefined ? '' : ` ${definition.unit}`}.`;
  return (
    <form class="setting" onSubmit={(e) => void save(e)} data-testid={id}>
      <label for={id}>{setting.id}</label>
      <div class="setting-input">
        {input}
        {!definition.readOnly && <button type="submit" disabled={busy || !dirty}>{busy ? 'Saving…' : 'Save'}</button>}
        {saved && !dirty && <span class="saved" role="status">Saved</span>}
      </div>
      <p id={`${id}-help`} class="muted">{definition.description}{range} Default: <code>{definition.default === '' ? '(empty)' : definition.default}</code>.{definition.readOnly && ' Read-only.'}</p>
      {error !== undefined && <p id={`${id}-error`} class="inline-error" role="alert">{error}</p>}
    </form>
  );
}

export function SettingsPage() {
  const settings = useCollection<SettingView>('Setting');
  const [filter, setFilter] = useState('');
  const shown = settings.items.filter((s) => s.id.includes(filter.trim().toLowerCase()) || s.definition.description.toLowerCase().includes(filter.trim().toLowerCase()));
  // The catalogue's order (General first), then any category this UI does not know yet.
  const present = new Set(shown.map((s) => s.definition.category));
  const categories = [...settingCategories.filter((c) => present.has(c)), ...[...present].filter((c) => !(settingCategories as readonly string[]).includes(c))];
  return (
    <>
      <PageTitle>Settings</PageTitle>
      <div class="toolbar">
        <label for="setting-filter">Find a setting</label>
        <input id="setting-filter" type="search" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
      </div>
      {settings.error !== undefined && <Notice tone="bad">{settings.error}</Notice>}
      {categories.map((category) => (
        <section key={category} aria-labelledby={`cat-${category}`} class="panel">
          <h2 id={`cat-${category}`}>{category}</h2>
          {shown.filter((s) => s.definition.category === category).map((s) => <SettingRow key={s.id} setting={s} />)}
        </section>
      ))}
    </>
  );
}
