// Acknowledgement and transactions with stompjs: message.ack()/nack(), client-individual and
// cumulative client mode, redelivery with `redelivered:true`, BEGIN/COMMIT/ABORT.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { clientPool, startBroker, unique } from './harness.mjs';

let broker;
const pool = clientPool(() => broker);
before(async () => {
  broker = await startBroker();
});
after(async () => {
  await pool.closeAll();
  await broker?.stop();
});

/** Sends an ACK/NACK through `fn(headers)` with a receipt and waits for it. */
async function withReceipt(client, fn) {
  const id = `ack-${unique()}`;
  const got = client.receipt(id);
  fn({ receipt: id });
  await got;
}

test('client-individual: unacknowledged message is redelivered after the session drops', async () => {
  const dest = `/queue/ci-${unique()}`;
  const [first, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await first.subscribe(dest, { ack: 'client-individual' });
  await pub.publish({ destination: dest, body: 'm1' });
  await pub.publish({ destination: dest, body: 'm2' });
  const m1 = await inbox.next();
  const m2 = await inbox.next();
  assert.deepEqual([m1.body, m2.body], ['m1', 'm2']);
  assert.ok(m1.headers.ack, '1.2 client-individual MESSAGE carries ack');
  await withReceipt(first, (h) => m2.ack(h));
  await first.drop();

  const second = await pool.connect();
  const again = await second.subscribe(dest, { ack: 'client-individual' });
  const r = await again.next();
  assert.equal(r.body, 'm1');
  assert.equal(r.headers.redelivered, 'true');
  assert.equal(r.headers['message-id'], m1.headers['message-id']);
  await again.none(300);
  await withReceipt(second, (h) => r.ack(h));
});

test('client (cumulative): ACK covers every earlier message of the subscription', async () => {
  const dest = `/queue/cum-${unique()}`;
  const [first, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await first.subscribe(dest, { ack: 'client' });
  for (const body of ['a', 'b', 'c']) await pub.publish({ destination: dest, body });
  const [, b] = [await inbox.next(), await inbox.next(), await inbox.next()];
  await withReceipt(first, (h) => b.ack(h));
  await first.drop();

  const second = await pool.connect();
  const again = await second.subscribe(dest, { ack: 'client' });
  const r = await again.next();
  assert.equal(r.body, 'c');
  assert.equal(r.headers.redelivered, 'true');
  await again.none(300);
});

test('auto: delivered messages are gone', async () => {
  const dest = `/queue/auto-${unique()}`;
  const [first, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await first.subscribe(dest);
  await pub.publish({ destination: dest, body: 'once' });
  assert.equal((await inbox.next()).body, 'once');
  await first.drop();
  const second = await pool.connect();
  const again = await second.subscribe(dest);
  await pub.publish({ destination: dest, body: 'marker' });
  assert.equal((await again.next()).body, 'marker');
  await again.none(300);
});

test('nack: the message comes back with redelivered:true', async () => {
  const dest = `/queue/nack-${unique()}`;
  const [c, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await c.subscribe(dest, { ack: 'client-individual' });
  await pub.publish({ destination: dest, body: 'retry me' });
  const first = await inbox.next();
  assert.equal(first.headers.redelivered, undefined);
  await withReceipt(c, (h) => first.nack(h));
  const again = await inbox.next();
  assert.equal(again.body, 'retry me');
  assert.equal(again.headers.redelivered, 'true');
  assert.equal(again.headers['message-id'], first.headers['message-id']);
  await withReceipt(c, (h) => again.ack(h));
  await inbox.none(300);
});

test('transaction: commit releases the sends in order', async () => {
  const dest = `/queue/tx-${unique()}`;
  const [sub, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await sub.subscribe(dest);
  const tx = pub.client.begin();
  pub.client.publish({ destination: dest, body: 't1', headers: { transaction: tx.id } });
  pub.client.publish({ destination: dest, body: 't2', headers: { transaction: tx.id } });
  await pub.publish({ destination: dest, body: 'outside' });
  assert.equal((await inbox.next()).body, 'outside');
  await inbox.none(300);
  tx.commit();
  assert.deepEqual([(await inbox.next()).body, (await inbox.next()).body], ['t1', 't2']);
});

test('transaction: abort discards the sends', async () => {
  const dest = `/queue/txa-${unique()}`;
  const [sub, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await sub.subscribe(dest);
  const tx = pub.client.begin();
  pub.client.publish({ destination: dest, body: 'gone', headers: { transaction: tx.id } });
  tx.abort();
  await pub.publish({ destination: dest, body: 'marker' });
  assert.equal((await inbox.next()).body, 'marker');
  await inbox.none(300);
});

test('transaction: an aborted ACK leaves the message unacknowledged', async () => {
  const dest = `/queue/txack-${unique()}`;
  const [first, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await first.subscribe(dest, { ack: 'client-individual' });
  await pub.publish({ destination: dest, body: 'keep' });
  const m = await inbox.next();
  const tx = first.client.begin();
  m.ack({ transaction: tx.id });
  tx.abort();
  await first.publish({ destination: `/topic/flush-${unique()}`, body: '' });
  await first.drop();
  const second = await pool.connect();
  const again = await second.subscribe(dest, { ack: 'client-individual' });
  const r = await again.next();
  assert.equal(r.body, 'keep');
  assert.equal(r.headers.redelivered, 'true');
});
