// The arithmetic of examples/node/resilient-chat.mjs: the full-jitter window and the sync
// cursor it keeps. (The reconnect itself is exercised by cluster-failover.test.mjs.)

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { advance, fullJitter } from '../../../examples/node/resilient-chat.mjs';

const backoff = { baseMs: 250, capMs: 8000 };

test('full jitter waits a uniform time below min(cap, base * 2^attempt)', () => {
  assert.equal(fullJitter(0, backoff, () => 0), 0);
  assert.equal(fullJitter(0, backoff, () => 0.999999), 249);
  assert.equal(fullJitter(3, backoff, () => 0.5), 1000);
  assert.equal(fullJitter(5, backoff, () => 0.999999), 7999, 'capped');
  assert.equal(fullJitter(5000, backoff, () => 0.5), 4000, 'a huge attempt count stays capped');
});

test('the cursor takes the larger position per conversation and never moves back', () => {
  const held = { a: 5, b: 2 };
  assert.deepEqual(advance(held, { a: 3, b: 4, c: 1 }), { a: 5, b: 4, c: 1 });
  assert.deepEqual(held, { a: 5, b: 2 }, 'a new object: the old cursor is left as it was');
  assert.deepEqual(advance(held, undefined), held, 'an answer without a cursor (an old broker)');
});
