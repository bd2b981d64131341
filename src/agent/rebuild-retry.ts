// How soon the node agent asks an engine again to rebuild a replica it lacks or holds as ERR:
// 3 s after the first ask, doubling per further ask up to 30 s, and from the start again once the
// engine holds the replica as RW. A replica whose rebuild keeps failing (its disk is full, its
// data unreadable, its address served by nobody) is then asked for a few times a minute, not
// every 3 s forever; the manager's own back-off (rebuild-admission.ts) covers replicas whose
// process keeps failing.
export const rebuildRetryBaseMs = 3000;
export const rebuildRetryMaxMs = 30_000;

/** The wait after the `asks`-th ask (1 = first) before the next one. */
export function rebuildRetryDelayMs(asks: number): number {
  return Math.min(rebuildRetryMaxMs, rebuildRetryBaseMs * 2 ** Math.min(Math.max(0, asks - 1), 20));
}
