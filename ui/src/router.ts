// A small router on the History API: the pages live under /ui/ and the API serves index.html for
// any path there, so a reload or a bookmark lands on the same page.
import { useEffect, useState } from 'preact/hooks';

export const base = '/ui';

export function currentRoute(): string {
  const path = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : location.pathname;
  return path === '' ? '/' : path;
}

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => {
  for (const listener of listeners) listener();
});

export function navigate(route: string): void {
  history.pushState(null, '', `${base}${route}`);
  for (const listener of listeners) listener();
  window.scrollTo(0, 0);
}

export function useRoute(): string {
  const [route, setRoute] = useState(currentRoute());
  useEffect(() => {
    const listener = (): void => setRoute(currentRoute());
    listeners.add(listener);
    return () => listeners.delete(listener);
  }, []);
  return route;
}

/** Link props for an in-app link: a real href (open in new tab works) and client-side navigation. */
export function linkTo(route: string): { href: string; onClick: (event: MouseEvent) => void } {
  return {
    href: `${base}${route}`,
    onClick: (event: MouseEvent) => {
      if (event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
      event.preventDefault();
      navigate(route);
    },
  };
}
