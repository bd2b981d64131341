import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { drainBody } from './drain-body.ts';

test('drainBody reads a body to its end and drops it', async () => {
  const body = new PassThrough();
  const drained = drainBody(body, 1000);
  body.write(Buffer.alloc(600));
  body.end(Buffer.alloc(400));
  assert.equal(await drained, 'ended');
});

test('drainBody cuts a body longer than its cap and destroys the stream', async () => {
  const body = new PassThrough();
  const drained = drainBody(body, 1000);
  body.write(Buffer.alloc(600));
  body.write(Buffer.alloc(401));
  assert.equal(await drained, 'cut');
  assert.equal(body.destroyed, true);
});

test('drainBody: a stream already ended, destroyed, or failing midway', async () => {
  const ended = new PassThrough();
  ended.end();
  ended.resume();
  await new Promise((resolve) => ended.once('end', resolve));
  assert.equal(await drainBody(ended, 10), 'ended');
  const destroyed = new PassThrough();
  destroyed.destroy();
  assert.equal(await drainBody(destroyed, 10), 'cut');
  const failing = new PassThrough();
  const drained = drainBody(failing, 1000);
  failing.destroy(new Error('reset'));
  assert.equal(await drained, 'cut');
});
