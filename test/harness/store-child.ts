// A store client in its own process, for the conformance suite's two-process and kill -9 tests.
// argv[2] is a StoreSpec (JSON). Commands arrive on stdin and replies leave on stdout, one JSON
// object per line:
//   {op:'read', kind, name}          → {ok, rv}            remember the object
//   {op:'increment'}                 → {ok} | {ok:false, code}   update what was read, counter+1
//   {op:'loop', kind, name, n}       → {ok, conflicts}     n increments, retrying conflicts
//   {op:'churn', kind, names, payloadBytes} → {progress:i} after every write, forever
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { openStore, type StoreSpec } from '../../src/control/store/open-store.ts';
import { isStoreError, type ResourceStore } from '../../src/control/store/resource-store.ts';
import type { Resource } from '../../src/control/resources/object-meta.ts';

type Command =
  | { op: 'read'; kind: string; name: string }
  | { op: 'increment' }
  | { op: 'loop'; kind: string; name: string; n: number }
  | { op: 'churn'; kind: string; names: number; payloadBytes: number };

interface CounterSpec { counter: number }

function reply(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function churnPayload(seq: number, payloadBytes: number): { payload: string; digest: string } {
  const payload = `${seq}:`.padEnd(payloadBytes, String.fromCharCode(97 + (seq % 26)));
  return { payload, digest: createHash('sha256').update(payload).digest('hex') };
}

async function increment(store: ResourceStore, object: Resource): Promise<void> {
  const spec = object.spec as CounterSpec;
  await store.update({ ...object, spec: { ...spec, counter: spec.counter + 1 } });
}

async function churn(store: ResourceStore, command: Extract<Command, { op: 'churn' }>): Promise<never> {
  for (let seq = 0; ; seq++) {
    const name = `churn-${seq % command.names}`;
    const spec = { seq, ...churnPayload(seq, command.payloadBytes) };
    try {
      const current = await store.get(command.kind, name);
      await store.update({ ...current, spec });
    } catch (error) {
      if (!isStoreError(error, 'not_found')) throw error;
      await store.create({ apiVersion: 'shorthorn.io/v1', kind: command.kind, metadata: { name }, spec });
    }
    reply({ progress: seq });
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as StoreSpec;
  const store = openStore(spec);
  let held: Resource | undefined;
  reply({ ready: true });
  for await (const line of createInterface({ input: process.stdin })) {
    const command = JSON.parse(line) as Command;
    try {
      switch (command.op) {
        case 'read':
          held = await store.get(command.kind, command.name);
          reply({ ok: true, rv: held.metadata.resourceVersion });
          break;
        case 'increment':
          if (held === undefined) throw new Error('increment before read');
          await increment(store, held);
          reply({ ok: true });
          break;
        case 'loop': {
          let conflicts = 0;
          for (let i = 0; i < command.n; ) {
            try {
              await increment(store, await store.get(command.kind, command.name));
              i++;
            } catch (error) {
              if (!isStoreError(error, 'conflict')) throw error;
              conflicts++;
            }
          }
          reply({ ok: true, conflicts });
          break;
        }
        case 'churn':
          await churn(store, command);
      }
    } catch (error) {
      if (!isStoreError(error)) throw error;
      reply({ ok: false, code: error.code, message: error.message });
    }
  }
  await store.close();
}

await main();
