// @stomp/stompjs over the real sockjs-client against Stompbox's SockJS endpoint (/ws, laid out as
// Spring lays it out), once per transport sockjs-client can run in Node, each forced with
// `transports: [...]`: connect, subscribe, publish, receipts, a 100 KiB message, heart-beats
// (STOMP's and SockJS's `h`), reconnect, the streaming byte limit; plus the chat flow over
// xhr-streaming. htmlfile and jsonp-polling need a DOM (sockjs-client disables them in Node):
// sockjs-http.test.mjs covers them at the HTTP level.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import SockJS from 'sockjs-client';

import { clientPool, sleep, startBroker, unique, within, WAIT_MS } from './harness.mjs';

const TRANSPORTS = ['websocket', 'xhr-streaming', 'xhr-polling', 'eventsource'];

let broker;
const pool = clientPool(() => broker);
before(async () => {
  // A short SockJS heart-beat and streaming limit, so both show within a test's seconds.
  broker = await startBroker('--sockjs-heartbeat', '300ms', '--sockjs-stream-limit', '8192');
});
after(async () => {
  await pool.closeAll();
  await broker?.stop();
});

const sockjsUrl = () => `http://${broker.host}:${broker.httpPort}/ws`;

/** A stompjs client whose socket is a sockjs-client forced onto `transport`. */
function over(transport, options = {}) {
  const sockets = [];
  const client = pool.connect({
    webSocketFactory: () => {
      const socket = new SockJS(sockjsUrl(), null, { transports: [transport] });
      sockets.push(socket);
      return socket;
    },
    ...options,
  });
  return client.then((c) => Object.assign(c, { sockets }));
}

for (const transport of TRANSPORTS) {
  describe(`SockJS ${transport}`, () => {
    test('connects over the forced transport; subscribe, publish, receipts', async () => {
      const c = await over(transport);
      assert.equal(c.sockets.length, 1);
      assert.equal(c.sockets[0].transport, transport, 'sockjs-client used the forced transport');
      assert.equal(c.frames.connected.headers.version, '1.2');
      const destination = `/topic/sockjs-${unique()}`;
      const inbox = await c.subscribe(destination);
      await c.publish({ destination, body: `hello over ${transport}`, headers: { 'x-a': 'b' } });
      const m = await inbox.next();
      assert.equal(m.body, `hello over ${transport}`);
      assert.equal(m.headers['x-a'], 'b');
    });

    test('a 100 KiB message each way, and messages between two SockJS clients', async () => {
      const a = await over(transport);
      const b = await over(transport);
      const destination = `/topic/sockjs-big-${unique()}`;
      const inboxA = await a.subscribe(destination);
      const inboxB = await b.subscribe(destination);
      const body = 'x'.repeat(100 * 1024 - 7) + 'ä"\\\n\u2028';
      await a.publish({ destination, body });
      assert.equal((await inboxB.next()).body, body);
      assert.equal((await inboxA.next()).body, body);
      await b.publish({ destination, body: 'small' });
      assert.equal((await inboxA.next()).body, 'small');
    });

    test('STOMP heart-beats both ways and SockJS h frames keep an idle session open', async () => {
      const pongs = [];
      const c = await over(transport, {
        heartbeatIncoming: 500,
        heartbeatOutgoing: 500,
        debug: (line) => {
          if (line === '<<< PONG') pongs.push(Date.now());
        },
      });
      assert.equal(c.frames.connected.headers['heart-beat'], '1000,1000');
      let h = 0;
      c.sockets[0].addEventListener('heartbeat', () => (h += 1));
      await sleep(2500);
      assert.ok(pongs.length >= 1, `STOMP heart-beats from the broker arrived (${pongs.length})`);
      assert.ok(h >= 1, `SockJS h frames arrived (${h})`);
      assert.equal(c.frames.closes.length, 0, 'the session stayed open');
      const destination = `/topic/sockjs-hb-${unique()}`;
      const inbox = await c.subscribe(destination);
      await c.publish({ destination, body: 'still here' });
      assert.equal((await inbox.next()).body, 'still here');
    });

    test('reconnects after its socket drops and works again', async () => {
      const c = await over(transport, { reconnectDelay: 100 });
      const reconnected = new Promise((resolve) => {
        c.client.onConnect = () => resolve();
      });
      c.client.forceDisconnect();
      await within(WAIT_MS, reconnected, 'reconnect');
      assert.equal(c.sockets.length, 2, 'a second SockJS session was opened');
      const destination = `/topic/sockjs-re-${unique()}`;
      const inbox = await c.subscribe(destination);
      await c.publish({ destination, body: 'after reconnect' });
      assert.equal((await inbox.next()).body, 'after reconnect');
    });

    test('more than the streaming limit arrives whole and in order', async () => {
      const c = await over(transport);
      const destination = `/topic/sockjs-limit-${unique()}`;
      const inbox = await c.subscribe(destination);
      const bodies = Array.from({ length: 40 }, (_, i) => `${i}:${'y'.repeat(1000)}`);
      for (const body of bodies) c.client.publish({ destination, body });
      for (const body of bodies) assert.equal((await inbox.next()).body, body);
    });
  });
}

describe('chat over xhr-streaming', () => {
  const QUEUES = ['messages', 'receipts', 'sync', 'conversations'];

  async function session(login) {
    const client = await over('xhr-streaming', { connectHeaders: { login, passcode: 'unused' } });
    const q = {};
    for (const name of QUEUES) q[name] = await client.subscribe(`/user/queue/${name}`);
    return { login, client, q };
  }

  /** SENDs `body` to /app/<action>; resolves with its RECEIPT. */
  const call = (s, action, body) =>
    s.client.publish({ destination: `/app/${action}`, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  const json = async (inbox) => JSON.parse((await inbox.next()).body);

  test('send, receipt with message-id, delivery, and sync after a reconnect', async () => {
    const alice = await session(`alice-${unique()}`);
    let bob = await session(`bob-${unique()}`);
    await call(alice, 'conversation.create', { type: 'DIRECT', members: [bob.login] });
    const { conversation } = await json(alice.q.conversations);
    await json(bob.q.conversations);

    const receipt = await call(alice, 'chat.send', { conversationId: conversation.conversationId, content: 'over sockjs' });
    const id = receipt.headers['message-id'];
    assert.match(id ?? '', /^\d+$/);
    const got = await json(bob.q.messages);
    assert.equal(got.messageId, id);
    assert.equal(got.content, 'over sockjs');

    await bob.client.close();
    const sent = [];
    for (let i = 0; i < 3; i += 1) {
      const r = await call(alice, 'chat.send', { conversationId: conversation.conversationId, content: `meanwhile ${i}` });
      sent.push(r.headers['message-id']);
    }
    bob = await session(bob.login);
    await call(bob, 'chat.sync', { afterMessageId: id });
    const done = await json(bob.q.sync);
    const replay = [];
    for (let i = 0; i < sent.length; i += 1) replay.push((await json(bob.q.messages)).messageId);
    assert.deepEqual(replay, sent);
    assert.deepEqual(done, { upToMessageId: sent.at(-1), more: false });
  });
});
