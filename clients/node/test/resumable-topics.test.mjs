// The resumable-topics helper (clients/node/resumable-topics.mjs) over WebSocket: a stream that
// loses its socket mid-way reconnects, resumes from the last offset it saw, and ends with every
// message exactly once, in order; one away longer than the history is told to reload. Again
// in a cluster of three nodes (history shared through Redis): the subscriber reconnects to
// ANOTHER node than the one it lost, while the stream is published through a third.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { ResumableTopics } from '../resumable-topics.mjs';
import { clusterTest } from './cluster.mjs';
import { TestClient, WAIT_MS, clientPool, sleep, startBroker, unique, within } from './harness.mjs';

let broker;
const pool = clientPool(() => broker);
before(async () => {
  broker = await startBroker(
    '--topic-history', '/topic/stream.*=100000/100000000/1h',
    '--topic-history', '/topic/short.*=5/1000000/1h',
  );
});
after(async () => {
  await pool.closeAll();
  await broker?.stop();
});

/** A client that reconnects by itself, as an application's would. */
async function reconnecting() {
  const c = new TestClient(broker, { reconnectDelay: 50 });
  return c.connect();
}

/** Resolves once `predicate()` holds, checking every few milliseconds. */
function until(predicate, what, ms = WAIT_MS) {
  return within(ms, (async () => {
    while (!predicate()) await sleep(5);
  })(), what);
}

test('a dropped socket mid-stream resumes with every message exactly once, in order', async () => {
  await dropMidStream(await reconnecting(), await pool.connect());
});

clusterTest('in a cluster: a dropped socket resumes on another node with every message exactly once', async ({ start }) => {
  const cluster = await start({ nodes: 3, nodeArgs: ['--topic-history', '/topic/stream.*=100000/100000000/1h'] });
  // First node 0; every reconnect goes to node 2. The stream is published through node 1.
  let connects = 0;
  const hopping = { get wsUrl() { return cluster.nodes[connects++ === 0 ? 0 : 2].wsUrl; } };
  const sub = await new TestClient(hopping, { reconnectDelay: 50 }).connect();
  const pub = await new TestClient({ wsUrl: cluster.nodes[1].wsUrl }).connect();
  try {
    await dropMidStream(sub, pub);
    assert.equal(connects, 2, 'reconnected once, to node 2');
  } finally {
    await pub.close();
  }
});

/** `sub` (reconnecting by itself) follows a stream `pub` publishes, loses its socket mid-way,
 * resumes, and ends with every message exactly once, in order. */
async function dropMidStream(sub, pub) {
  const dest = `/topic/stream.${unique()}`;
  const got = [];
  const recovered = [];
  const topics = new ResumableTopics(sub.client);
  // The first SUBSCRIBE resumes from nowhere only for its RECEIPT, which a resume sends once
  // the subscription hears the topic (in a cluster: once its node's Redis channel is live).
  const placed = `placed-${dest}`;
  const inPlace = new Promise((resolve) => sub.client.watchForReceipt(placed, resolve));
  const headers = { 'resume-epoch': 'none', 'resume-offset': '0', receipt: placed };
  topics.subscribe(dest, (m) => got.push(Number(m.body)), { onRecovered: (ok) => recovered.push(ok), headers });
  const first = await within(WAIT_MS, inPlace, 'the subscription in place');
  assert.equal(first.headers.recovered, 'false', 'nothing to resume from');
  await pub.publish({ destination: dest, body: '1' });
  await until(() => got.length === 1, 'first message');

  const total = 2000;
  const publishing = (async () => {
    for (let i = 2; i <= total; i++) {
      pub.client.publish({ destination: dest, body: String(i) });
      if (i % 50 === 0) await sleep(1);
    }
    await pub.publish({ destination: dest, body: 'end' }, 30_000);
  })();
  await until(() => got.length >= 300, '300 messages before the drop');
  const closes = sub.frames.closes.length;
  const atDrop = got.length;
  sub.client.forceDisconnect();
  await until(() => sub.frames.closes.length > closes, 'the socket to drop');
  await publishing;
  await until(() => recovered.length === 1 && got.length >= total + 1, 'the rest after the reconnect', 30_000);

  assert.deepEqual(recovered, [true]);
  const expected = Array.from({ length: total }, (_, i) => i + 1);
  assert.deepEqual(got.slice(0, total), expected, 'every message once, in order');
  assert.ok(Number.isNaN(got[total]), 'then the end marker');
  assert.equal(got.length, total + 1);
  assert.ok(atDrop < total, `dropped mid-stream (after ${atDrop} of ${total})`);
  await sub.close();
}

test('away longer than the history: the helper reports recovered=false', async () => {
  const dest = `/topic/short.${unique()}`;
  const [sub, pub] = [await reconnecting(), await pool.connect()];
  const got = [];
  const recovered = [];
  const topics = new ResumableTopics(sub.client);
  const handle = topics.subscribe(dest, (m) => got.push(m.body), { onRecovered: (ok) => recovered.push(ok) });
  // A round trip on the subscriber's own connection: the broker handles its frames in order,
  // so the SUBSCRIBE is in place before 'seen' is published (otherwise a race, 1 in 4 here).
  await sub.publish({ destination: `/topic/placed.${unique()}`, body: 'x' });
  await pub.publish({ destination: dest, body: 'seen' });
  await until(() => got.length === 1, 'first message');
  assert.equal(handle.position().offset, 1);

  await sub.client.deactivate();
  for (let i = 0; i < 10; i++) await pub.publish({ destination: dest, body: `missed ${i}` });
  sub.client.activate();
  await until(() => recovered.length === 1, 'the resume RECEIPT');
  assert.deepEqual(recovered, [false]);
  assert.deepEqual(got, ['seen'], 'no partial replay');
  await pub.publish({ destination: dest, body: 'live' });
  await until(() => got.length === 2, 'live after the gap');
  assert.equal(got[1], 'live');
  assert.equal(handle.position().offset, 12);
  await sub.close();
});
