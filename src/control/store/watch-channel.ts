// The async-iterator end of a watch, shared by the backends: a bounded buffer of events, an error
// that ends the iteration after the events before it, and clean cancellation (close(), break out
// of `for await`, or the caller's AbortSignal). A watcher that falls more than watchBacklogMax
// events behind is cut off with 'gone' rather than buffering without bound: it relists.
import { watchBacklogMax } from '../../lib/limits.ts';
import { StoreError, type Watch, type WatchEvent } from './resource-store.ts';

export class WatchChannel implements Watch {
  private readonly buffer: WatchEvent[] = [];
  private failure: Error | undefined;
  private closed = false;
  private iterating = false;
  private wake: (() => void) | undefined;
  private readonly onClose: () => void;
  private readonly signal: AbortSignal | undefined;
  private readonly abortListener = (): void => this.close();

  constructor(onClose: () => void, signal?: AbortSignal) {
    this.onClose = onClose;
    this.signal = signal;
    if (signal?.aborted === true) this.closed = true;
    else signal?.addEventListener('abort', this.abortListener, { once: true });
  }

  /** Whether the consumer is gone or the watch failed: producers stop feeding it. */
  get done(): boolean {
    return this.closed || this.failure !== undefined;
  }

  push(event: WatchEvent): void {
    if (this.done) return;
    if (this.buffer.length >= watchBacklogMax) {
      this.fail(new StoreError('gone', `Watch fell ${watchBacklogMax} events behind; relist`));
      return;
    }
    this.buffer.push(event);
    this.notify();
  }

  /** End the iteration with this error once the events already buffered are consumed. */
  fail(error: Error): void {
    if (this.done) return;
    this.failure = error;
    this.release();
    this.notify();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffer.length = 0;
    if (this.failure === undefined) this.release();
    this.notify();
  }

  private release(): void {
    this.signal?.removeEventListener('abort', this.abortListener);
    this.onClose();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    if (this.iterating) throw new StoreError('invalid', 'A watch can be iterated only once');
    this.iterating = true;
    return {
      next: async (): Promise<IteratorResult<WatchEvent>> => {
        for (;;) {
          if (this.closed) return { done: true, value: undefined };
          const event = this.buffer.shift();
          if (event !== undefined) return { done: false, value: event };
          if (this.failure !== undefined) {
            const failure = this.failure;
            this.closed = true;
            throw failure;
          }
          await new Promise<void>((resolve) => {
            this.wake = resolve;
          });
        }
      },
      return: (): Promise<IteratorResult<WatchEvent>> => {
        this.close();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }
}
