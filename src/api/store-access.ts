// Reads and read-modify-writes of the store on behalf of API calls: names checked before the
// store sees them, 'not found' answered with a sentence that says what to try, and writes retried
// when another writer (a controller, another API call) changed the object first.
import { nameProblem, type Resource } from '../control/resources/object-meta.ts';
import { isStoreError, type ResourceStore } from '../control/store/resource-store.ts';
import { ApiError } from './api-error.ts';
import { apiConflictRetriesMax, apiListItemsMax } from '../lib/limits.ts';

export function checkName(name: string, what: string): string {
  const problem = nameProblem(name);
  if (problem !== null) throw new ApiError('invalid_name', `invalid ${what} name: ${problem}`);
  return name;
}

/** The object, or ApiError 'not_found' (404) that names the kind and the list to look at. */
export async function getOrNotFound<R extends Resource>(store: ResourceStore, kind: string, name: string): Promise<R> {
  checkName(name, kind.toLowerCase());
  try {
    return (await store.get(kind, name)) as R;
  } catch (error) {
    if (isStoreError(error, 'not_found')) {
      throw new ApiError('not_found', `there is no ${kind.toLowerCase()} named ${JSON.stringify(name)}; list them with GET /v1/${kind.toLowerCase()}s`, { cause: error });
    }
    throw error;
  }
}

export async function listLimited<R extends Resource>(
  store: ResourceStore,
  kind: string,
  keep: (resource: R) => boolean = () => true,
): Promise<{ items: R[]; truncated: boolean }> {
  const { items } = await store.list(kind);
  const kept = (items as R[]).filter(keep).sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  return { items: kept.slice(0, apiListItemsMax), truncated: kept.length > apiListItemsMax };
}

/**
 * Read, change, write; on 'conflict' read again and retry (Longhorn's retry-on-conflict). The
 * change function returns the new object, or null when nothing needs writing; it may throw an
 * ApiError to refuse. Returns what is stored afterwards.
 */
export async function modifyResource<R extends Resource>(
  store: ResourceStore,
  kind: string,
  name: string,
  change: (current: R) => R | null,
): Promise<R> {
  for (let attempt = 1; ; attempt++) {
    const current = await getOrNotFound<R>(store, kind, name);
    const next = change(structuredClone(current));
    if (next === null) return current;
    try {
      return (await store.update(next)) as R;
    } catch (error) {
      if (!isStoreError(error, 'conflict') || attempt >= apiConflictRetriesMax) throw error;
    }
  }
}
