// Test port blocks: two claimants starting from the same block (what two test files whose pids
// are equal mod 90 did before) get different blocks, and a claim dies with its process. Each test
// uses its own namespace of blocks, so test files running meanwhile do not change the outcome.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { claimPortBlock, portBlock } from './port-block.ts';

const namespace = (what: string): string => `shorthorn-port-block-test-${process.pid}-${what}`;

test('two claims from the same start get different blocks; a released block is free again', async () => {
  const ns = namespace('same-start');
  const a = await claimPortBlock(7, ns);
  const b = await claimPortBlock(7, ns);
  assert.equal(a.block.first, 25_000 + 7 * 80);
  assert.equal(b.block.first, 25_000 + 8 * 80, 'the second claim moves to the next block');
  a.release();
  // close() is asynchronous: the name is free once the server has closed.
  await new Promise((r) => setImmediate(r));
  const c = await claimPortBlock(7, ns);
  assert.equal(c.block.first, a.block.first);
  b.release();
  c.release();
});

test('the last block wraps to the first; all held is an error', async () => {
  const ns = namespace('wrap');
  const held = [];
  for (let i = 0; i < 90; i++) held.push(await claimPortBlock(89, ns));
  assert.equal(held[0]!.block.first, 25_000 + 89 * 80);
  assert.equal(held[1]!.block.first, 25_000);
  assert.equal(new Set(held.map((h) => h.block.first)).size, 90);
  await assert.rejects(claimPortBlock(0, ns), /all 90 port blocks/);
  for (const h of held) h.release();
});

test('a block held by a process killed with SIGKILL is free again', async () => {
  const ns = namespace('killed');
  const moduleUrl = new URL('./port-block.js', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e',
    `const { claimPortBlock } = await import(${JSON.stringify(moduleUrl)}); const c = await claimPortBlock(3, ${JSON.stringify(ns)}); c.block; process.stdout.write('held ' + c.block.first + '\\n'); setInterval(() => {}, 1000);`,
  ], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const deadline = Date.now() + 30_000;
    while (!out.includes('\n')) {
      assert.ok(Date.now() < deadline && child.exitCode === null, `child did not claim a block: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(out.trim(), `held ${25_000 + 3 * 80}`);
    const meanwhile = await claimPortBlock(3, ns);
    assert.equal(meanwhile.block.first, 25_000 + 4 * 80, 'the child holds block 3');
    meanwhile.release();
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  const after = await claimPortBlock(3, ns);
  assert.equal(after.block.first, 25_000 + 3 * 80, 'the kernel freed the killed child\'s claim');
  after.release();
});

test('portBlock is one block per process', async () => {
  const [a, b] = await Promise.all([portBlock(), portBlock()]);
  assert.deepEqual(a, b);
  assert.deepEqual(await portBlock(), a);
  assert.ok(a.first >= 25_000 && a.first + a.size <= 32_200);
});
