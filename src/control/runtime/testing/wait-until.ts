// Test helper: wait for a condition with a deadline, checking after each turn of the event loop
// (and optionally after a step that moves time forward), never sleeping in its place.
export async function waitUntil(what: string, condition: () => boolean | Promise<boolean>, options: { timeoutMs?: number; step?: () => void } = {}): Promise<void> {
  const deadline = performance.now() + (options.timeoutMs ?? 10_000);
  while (!(await condition())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    options.step?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
}
