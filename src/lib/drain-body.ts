// Reading and dropping the rest of a request body that is over its limit. A server that answers
// 413 and closes while the client is still sending makes the client fail with EPIPE or a reset
// instead of seeing the 413 (S31 saw `fetch failed: write EPIPE`), so the answer waits until the
// body has ended, up to a cap: past the cap the connection is cut, since a client sending that
// much is not owed an answer.

/** The parts of a readable body stream (node's IncomingMessage) that draining uses. */
export interface DrainableBody {
  readonly readableEnded: boolean;
  readonly destroyed: boolean;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: string, listener: (...args: never[]) => void): unknown;
  resume(): unknown;
  destroy(): unknown;
}

/**
 * Resolves 'ended' once the body has been read to its end (each chunk dropped), or 'cut' when
 * more than `maxBytes` arrived (the stream is destroyed) or the stream failed or closed early.
 */
export function drainBody(body: DrainableBody, maxBytes: number): Promise<'ended' | 'cut'> {
  if (body.readableEnded) return Promise.resolve('ended');
  if (body.destroyed) return Promise.resolve('cut');
  return new Promise((resolve) => {
    let total = 0;
    const finish = (how: 'ended' | 'cut'): void => {
      body.removeListener('data', onData);
      body.removeListener('end', onEnd);
      body.removeListener('close', onClose);
      body.removeListener('error', onClose);
      resolve(how);
    };
    const onData = (chunk: Uint8Array): void => {
      total += chunk.length;
      if (total > maxBytes) {
        finish('cut');
        body.destroy();
      }
    };
    const onEnd = (): void => finish('ended');
    const onClose = (): void => finish(body.readableEnded ? 'ended' : 'cut');
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('close', onClose);
    body.on('error', onClose);
    body.resume();
  });
}
