// Pieces every page uses: the frame with navigation, state badges, notices, a button that runs
// an API call and shows its error, and a hook that fetches a route that may not exist yet.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiCallError, errorText, apiCall } from './api.ts';
import { live, useLiveVersion } from './live.ts';
import { linkTo, useRoute } from './router.ts';

const pages = [
  ['/', 'Dashboard'],
  ['/volumes', 'Volumes'],
  ['/nodes', 'Nodes'],
  ['/backups', 'Backups'],
  ['/recurring-jobs', 'Recurring jobs'],
  ['/settings', 'Settings'],
  ['/events', 'Events'],
] as const;

export function Frame(props: { children: ComponentChildren; onLogOut: () => void }) {
  const route = useRoute();
  useLiveVersion();
  const current = (path: string): boolean => (path === '/' ? route === '/' : route.startsWith(path));
  const stream = live.streamState;
  return (
    <div class="frame">
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <span class="brand">Shorthorn</span>
        <nav aria-label="Pages">
          <ul>
            {pages.map(([path, label]) => (
              <li key={path}>
                <a {...linkTo(path)} aria-current={current(path) ? 'page' : undefined}>{label}</a>
              </li>
            ))}
          </ul>
        </nav>
        <span class={`stream stream-${stream}`} role="status" data-testid="stream-state">
          {stream === 'live' ? 'Live' : stream === 'connecting' ? 'Connecting…' : 'Reconnecting…'}
        </span>
        <button type="button" class="secondary" onClick={props.onLogOut}>Log out</button>
      </header>
      <main id="main" tabIndex={-1}>{props.children}</main>
    </div>
  );
}

const badgeTones: Readonly<Record<string, string>> = {
  healthy: 'ok', attached: 'ok', RW: 'ok', running: 'ok', True: 'ok', ready: 'ok',
  degraded: 'warn', WO: 'warn', attaching: 'warn', detaching: 'warn', creating: 'info', starting: 'info', rebuilding: 'warn',
  faulted: 'bad', ERR: 'bad', error: 'bad', False: 'bad', deleting: 'info',
  Completed: 'ok', InProgress: 'info', Pending: 'info', Error: 'bad', removed: 'neutral', pending: 'info', restoring: 'warn',
};

export function Badge(props: { value: string | undefined; label?: string }) {
  const value = props.value ?? 'unknown';
  return <span class={`badge tone-${badgeTones[value] ?? 'neutral'}`}>{props.label ?? value}</span>;
}

export function Notice(props: { tone: 'ok' | 'info' | 'warn' | 'bad'; children: ComponentChildren; testId?: string }) {
  return (
    <div class={`notice tone-${props.tone}`} role={props.tone === 'bad' ? 'alert' : 'status'} data-testid={props.testId}>
      {props.children}
    </div>
  );
}

export function PageTitle(props: { children: ComponentChildren }) {
  useEffect(() => {
    document.title = `${typeof props.children === 'string' ? props.children : 'Shorthorn'} · Shorthorn`;
  }, [props.children]);
  return <h1>{props.children}</h1>;
}

/** A button that runs an async call, is disabled meanwhile, and shows the API's error beside it. */
export function ActionButton(props: { label: string; run: () => Promise<unknown>; disabled?: boolean; danger?: boolean; confirm?: string }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const onClick = async (): Promise<void> => {
    if (props.confirm !== undefined && !window.confirm(props.confirm)) return;
    setBusy(true);
    setError(undefined);
    try {
      await props.run();
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={props.danger === true ? 'danger' : ''} disabled={busy || props.disabled === true} onClick={() => void onClick()}>
        {busy ? `${props.label}…` : props.label}
      </button>
      {error !== undefined && <span class="inline-error" role="alert">{error}</span>}
    </span>
  );
}

export type Probe<T> =
  | { readonly kind: 'loading' }
  | { readonly kind: 'missing' }
  | { readonly kind: 'error'; readonly message: string }
  | { readonly kind: 'ok'; readonly value: T };

/**
 * GET a route that other work may not have added yet: 404 `not_found` for the route itself means
 * "not available in this version", shown as such rather than as a failure.
 */
export function useOptionalRoute<T>(path: string, refreshMs = 0): [Probe<T>, () => void] {
  const [probe, setProbe] = useState<Probe<T>>({ kind: 'loading' });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let cancelled = false;
    apiCall<T>('GET', path).then(
      (value) => !cancelled && setProbe({ kind: 'ok', value }),
      (error: unknown) => {
        if (cancelled) return;
        if (error instanceof ApiCallError && error.status === 404 && error.message.startsWith('no route')) setProbe({ kind: 'missing' });
        else setProbe({ kind: 'error', message: errorText(error) });
      },
    );
    const timer = refreshMs > 0 ? setTimeout(() => setTick((t) => t + 1), refreshMs) : undefined;
    return () => {
      cancelled = true;
      if (timer !== undefined) clearTimeout(timer);
    };
  }, [path, tick, refreshMs]);
  return [probe, () => setTick((t) => t + 1)];
}

export function NotAvailable(props: { what: string; route: string }) {
  return (
    <Notice tone="info" testId="not-available">
      {props.what} is not available yet: this API has no <code>{props.route}</code> route. The page fills in once the API offers it.
    </Notice>
  );
}
