// Polls GET /metrics every 2 s for one volume while the page is visible: stops when the tab is
// hidden or the page is left (an engine is asked at each scrape, so idle tabs should not ask).
import { useEffect, useState } from 'preact/hooks';
import { savedToken } from './api.ts';
import { addIoReading, emptyIoHistory, volumeIoReading, type IoHistory } from './volume-io.ts';

export const ioPollMs = 2000;

export type VolumeIoState = 'waiting' | 'counting' | 'engine-silent' | 'not-attached' | 'failed';

export interface VolumeIo {
  readonly state: VolumeIoState;
  readonly history: IoHistory;
  readonly error?: string;
}

async function fetchMetrics(): Promise<string> {
  const token = savedToken();
  const response = await fetch('/metrics', token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
  return response.text();
}

export function useVolumeIo(volume: string, attached: boolean): VolumeIo {
  const [io, setIo] = useState<VolumeIo>({ state: 'waiting', history: emptyIoHistory });
  useEffect(() => {
    setIo({ state: attached ? 'waiting' : 'not-attached', history: emptyIoHistory });
    if (!attached) return undefined;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let history = emptyIoHistory;
    let running = false;
    const poll = async (): Promise<void> => {
      timer = undefined;
      running = true;
      try {
        const reading = volumeIoReading(await fetchMetrics(), volume);
        if (stopped) return;
        if (reading.kind === 'counters') {
          history = addIoReading(history, reading.counters, Date.now());
          setIo({ state: history.rates.length === 0 ? 'waiting' : 'counting', history });
        } else {
          // No rate across a gap: the next answer starts a new interval.
          history = { last: undefined, rates: history.rates };
          setIo({ state: reading.kind === 'absent' ? 'not-attached' : 'engine-silent', history });
        }
      } catch (error) {
        if (stopped) return;
        history = { last: undefined, rates: history.rates };
        setIo({ state: 'failed', history, error: error instanceof Error ? error.message : String(error) });
      } finally {
        running = false;
      }
      // The next poll is timed from the end of this one, so slow scrapes never pile up.
      if (!stopped && document.visibilityState === 'visible') timer = setTimeout(() => void poll(), ioPollMs);
    };
    const onVisibility = (): void => {
      if (document.visibilityState !== 'visible') {
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        history = { last: undefined, rates: history.rates };
      } else if (timer === undefined && !running) {
        void poll();
      }
    };
    document.addEventListener('visibilitychange', onVisibility);
    if (document.visibilityState === 'visible') void poll();
    return () => {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [volume, attached]);
  return io;
}
