// Routing over WebSocket with stompjs: /topic fan-out, /queue competing consumers, receipts,
// header escaping, /user/queue, and ERROR frames reaching onStompError.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { Versions } from '@stomp/stompjs';

import { WAIT_MS, clientPool, startBroker, unique, within } from './harness.mjs';

let broker;
const pool = clientPool(() => broker);
before(async () => {
  broker = await startBroker();
});
after(async () => {
  await pool.closeAll();
  await broker?.stop();
});

test('topic: every subscriber gets every message', async () => {
  const dest = `/topic/fanout-${unique()}`;
  const [a, b, pub] = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
  const [ia, ib] = await Promise.all([a.subscribe(dest), b.subscribe(dest)]);
  await pub.publish({ destination: dest, body: 'hello all', headers: { 'content-type': 'text/plain' } });
  for (const inbox of [ia, ib]) {
    const m = await inbox.next();
    assert.equal(m.body, 'hello all');
    assert.equal(m.headers.destination, dest);
    assert.equal(m.headers['content-type'], 'text/plain');
    assert.ok(m.headers['message-id']);
  }
});

test('topic: wildcard subscriptions match RabbitMQ style', async () => {
  const base = `/topic/room-${unique()}`;
  const [c, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const star = await c.subscribe(`${base}.*`);
  const hash = await c.subscribe(`${base}.#`);
  await pub.publish({ destination: `${base}.a`, body: 'one' });
  await pub.publish({ destination: `${base}.a.b`, body: 'two' });
  assert.equal((await star.next()).body, 'one');
  await star.none(300);
  assert.deepEqual([(await hash.next()).body, (await hash.next()).body], ['one', 'two']);
});

test('queue: each message goes to exactly one consumer, round-robin', async () => {
  const dest = `/queue/compete-${unique()}`;
  const [a, b, pub] = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
  const inboxes = [await a.subscribe(dest), await b.subscribe(dest)];
  for (let i = 0; i < 10; i++) await pub.publish({ destination: dest, body: `m${i}` });
  const got = [[], []];
  const deadline = Date.now() + 5000;
  while (got[0].length + got[1].length < 10 && Date.now() < deadline) {
    inboxes.forEach((inbox, i) => got[i].push(...inbox.queue.splice(0).map((m) => m.body)));
    await new Promise((r) => setTimeout(r, 50));
  }
  const all = [...got[0], ...got[1]].sort((x, y) => Number(x.slice(1)) - Number(y.slice(1)));
  assert.deepEqual(all, Array.from({ length: 10 }, (_, i) => `m${i}`));
  assert.ok(got[0].length > 0 && got[1].length > 0, `round-robin uses both consumers: ${JSON.stringify(got)}`);
  await Promise.all(inboxes.map((i) => i.none(200)));
});

test('queue: messages wait for a consumer', async () => {
  const dest = `/queue/held-${unique()}`;
  const pub = await pool.connect();
  await pub.publish({ destination: dest, body: 'stored' });
  const sub = await pool.connect();
  const inbox = await sub.subscribe(dest);
  assert.equal((await inbox.next()).body, 'stored');
});

test('receipts: watchForReceipt resolves for SEND and SUBSCRIBE', async () => {
  const c = await pool.connect();
  const dest = `/topic/receipt-${unique()}`;
  const subReceipt = `s-${unique()}`;
  const got = c.receipt(subReceipt);
  c.client.subscribe(dest, () => {}, { receipt: subReceipt });
  const frame = await got;
  assert.equal(frame.headers['receipt-id'], subReceipt);
  const sendReceipt = `p-${unique()}`;
  const sent = c.receipt(sendReceipt);
  c.client.publish({ destination: dest, body: 'x', headers: { receipt: sendReceipt } });
  assert.equal((await sent).headers['receipt-id'], sendReceipt);
});

test('header values with colons, newlines and backslashes round-trip', async () => {
  const dest = `/queue/escape-${unique()}`;
  const [sub, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await sub.subscribe(dest);
  const values = {
    'x-colon': 'a:b:c',
    'x-newline': 'line1\nline2',
    'x-backslash': 'C:\\dir\\file',
    'x-carriage': 'before\rafter',
    'x-unicode': 'Zoë ✓',
  };
  await pub.publish({ destination: dest, body: 'escaped', headers: { ...values } });
  const m = await inbox.next();
  for (const [name, value] of Object.entries(values)) assert.equal(m.headers[name], value, name);
  assert.equal(m.headers.receipt, undefined, 'transport header receipt is not passed through');
});

test('/user/queue reaches every session of the user, under the subscribed name', async () => {
  const name = `inbox-${unique()}`;
  const [alice1, alice2, carol, bob] = await Promise.all([
    pool.connect({ login: 'alice' }),
    pool.connect({ login: 'alice' }),
    pool.connect({ login: 'carol' }),
    pool.connect({ login: 'bob' }),
  ]);
  const inboxes = [await alice1.subscribe(`/user/queue/${name}`), await alice2.subscribe(`/user/queue/${name}`)];
  const carols = await carol.subscribe(`/user/queue/${name}`);
  await bob.publish({ destination: `/user/alice/queue/${name}`, body: 'for alice' });
  for (const inbox of inboxes) {
    const m = await inbox.next();
    assert.equal(m.body, 'for alice');
    assert.equal(m.headers.destination, `/user/queue/${name}`);
  }
  await carols.none(300);
});

test('ERROR on an unknown destination reaches onStompError, then the socket closes', async () => {
  const c = await pool.connect();
  c.client.publish({ destination: `/bogus/${unique()}`, body: 'nowhere', headers: { receipt: 'r-bogus' } });
  const error = await c.nextError();
  assert.equal(error.command, 'ERROR');
  assert.equal(error.headers.message, 'unknown destination');
  assert.equal(error.headers['receipt-id'], 'r-bogus');
  assert.match(error.headers['content-type'] ?? '', /^text\/plain/);
  assert.match(error.body, /\/topic\//);
  await c.closed();
});

test('ERROR on subscribing to another user\'s destination: access denied', async () => {
  const c = await pool.connect({ login: 'mallory' });
  c.client.subscribe(`/user/alice/queue/${unique()}`, () => {});
  assert.equal((await c.nextError()).headers.message, 'access denied');
});

test('a stompjs client limited to STOMP 1.1 negotiates 1.1 and acks by message-id', async () => {
  const c = await pool.connect({ stompVersions: new Versions(['1.1']), protocols: ['v11.stomp'] });
  assert.equal(c.frames.connected.headers.version, '1.1');
  assert.equal(c.socket.protocol, 'v11.stomp');
  const dest = `/queue/v11-${unique()}`;
  const inbox = await c.subscribe(dest, { ack: 'client-individual' });
  // No escaped characters here: stompjs (un)escapes header values only on 1.2 sessions, though
  // 1.1 defines \n, \c and \\ too (the stomp.py suite checks 1.1 escaping).
  await c.publish({ destination: dest, body: 'hello 1.1', headers: { 'x-app': 'plain' } });
  const m = await inbox.next();
  assert.equal(m.body, 'hello 1.1');
  assert.equal(m.headers['x-app'], 'plain');
  const receipt = `ack-${unique()}`;
  const got = c.receipt(receipt);
  m.ack({ receipt }); // 1.1: message-id + subscription
  await got;
  assert.equal(c.frames.errors.length, 0);
});

test('/temp-queue: the reply comes back to the requesting session', async () => {
  const service = `/queue/service-${unique()}`;
  const [server, requester] = await Promise.all([pool.connect(), pool.connect()]);
  const requests = await server.subscribe(service);
  const replies = [];
  const replied = new Promise((resolve) => {
    requester.client.onUnhandledMessage = (m) => {
      replies.push(m);
      resolve(m);
    };
  });
  await requester.publish({ destination: service, body: 'ping', headers: { 'reply-to': '/temp-queue/answers' } });
  const request = await requests.next();
  assert.match(request.headers['reply-to'], /^\/reply-queue\/./);
  await server.publish({ destination: request.headers['reply-to'], body: 'pong' });
  const reply = await within(WAIT_MS, replied, 'reply on /temp-queue');
  assert.equal(reply.body, 'pong');
  assert.equal(reply.headers.destination, '/temp-queue/answers');
  assert.equal(reply.headers.subscription, '/temp-queue/answers');
});
