// The arithmetic of examples/node/resilient-chat.mjs: the full-jitter window and the Snowflake
// rewind its sync starts from. (The reconnect itself is exercised by cluster-failover.test.mjs.)

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fullJitter, rewind } from '../../../examples/node/resilient-chat.mjs';

const backoff = { baseMs: 250, capMs: 8000 };

test('full jitter waits a uniform time below min(cap, base * 2^attempt)', () => {
  assert.equal(fullJitter(0, backoff, () => 0), 0);
  assert.equal(fullJitter(0, backoff, () => 0.999999), 249);
  assert.equal(fullJitter(3, backoff, () => 0.5), 1000);
  assert.equal(fullJitter(5, backoff, () => 0.999999), 7999, 'capped');
  assert.equal(fullJitter(5000, backoff, () => 0.5), 4000, 'a huge attempt count stays capped');
});

test('rewind moves a Snowflake id back by whole milliseconds of its time field', () => {
  const id = ((123_456_789n << 22n) | (7n << 12n) | 42n).toString();
  const earlier = BigInt(rewind(id, 5000));
  assert.equal(earlier >> 22n, 123_456_789n - 5000n);
  assert.equal(earlier & 0x3fffffn, (7n << 12n) | 42n, 'node and sequence bits untouched');
  assert.equal(rewind('1000', 5000), '0', 'never below zero');
  assert.equal(rewind('0', 5000), '0');
});
