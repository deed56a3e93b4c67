// The built-in chat application from @stomp/stompjs over WebSocket, as a browser app uses it:
// SEND to /app/..., events and replies on /user/queue/..., the RECEIPT of chat.send carrying the
// stored message's id, DELIVERED by message.ack(), READ, typing, and sync after a reconnect.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { clientPool, sleep, startBroker, unique, WAIT_MS } from './harness.mjs';

const QUEUES = ['messages', 'receipts', 'errors', 'typing', 'sync', 'history', 'conversations'];
const TIMESTAMP_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

let broker;
const pool = clientPool(() => broker);
before(async () => {
  broker = await startBroker();
});
after(async () => {
  await pool.closeAll();
  await broker?.stop();
});

/** A connected chat session: `q.<queue>` is the Inbox of /user/queue/<queue>. */
async function session(login, { messagesAck = 'auto' } = {}) {
  const client = await pool.connect({ login });
  const q = {};
  for (const name of QUEUES) {
    q[name] = await client.subscribe(`/user/queue/${name}`, name === 'messages' ? { ack: messagesAck } : {});
  }
  return { login, client, q };
}

/** SENDs `body` to /app/<action> with a receipt; resolves with the RECEIPT frame. */
async function call(s, action, body) {
  const receipt = `app-${unique()}`;
  const got = s.client.receipt(receipt);
  s.client.client.publish({
    destination: `/app/${action}`,
    body: JSON.stringify(body),
    headers: { receipt, 'content-type': 'application/json' },
  });
  return got;
}

/** /app/chat.send; resolves with the message id the RECEIPT's `message-id` header carries. */
async function send(s, body) {
  const frame = await call(s, 'chat.send', body);
  const id = frame.headers['message-id'];
  assert.match(id ?? '', /^\d+$/, 'RECEIPT of chat.send carries message-id');
  return id;
}

const json = async (inbox, ms = WAIT_MS) => JSON.parse((await inbox.next(ms)).body);

async function direct(a, b) {
  await call(a, 'conversation.create', { type: 'DIRECT', members: [b.login] });
  const created = await json(a.q.conversations);
  assert.equal(created.event, 'created');
  assert.equal((await json(b.q.conversations)).conversation.conversationId, created.conversation.conversationId);
  return created.conversation.conversationId;
}

test('1:1 end to end: RECEIPT message-id matches the delivered MESSAGE, both directions', async () => {
  const alice = await session(`alice-${unique()}`);
  const bob = await session(`bob-${unique()}`);
  const conversationId = await direct(alice, bob);

  const id = await send(alice, { conversationId, content: 'hello from stompjs', clientMessageId: 'c-1' });
  const m = await bob.q.messages.next();
  assert.equal(m.headers['message-id'], id);
  const body = JSON.parse(m.body);
  assert.deepEqual(
    { ...body, timestamp: undefined },
    {
      messageId: id,
      conversationId,
      senderId: alice.login,
      content: 'hello from stompjs',
      contentType: 'text/plain',
      clientMessageId: 'c-1',
      // Its position in the conversation, where the store places it as it stores (not on
      // Kafka: the sink places it later; docs/protocol.md "Sync after reconnect").
      ...(process.env.STOMPBOX_TEST_STORAGE === 'streamed' ? {} : { seq: 1 }),
      timestamp: undefined,
    },
  );
  assert.match(body.timestamp, TIMESTAMP_RE);
  assert.equal((await json(alice.q.messages)).messageId, id, "the sender's session gets its copy");

  const reply = await send(bob, { recipientId: alice.login, content: 'hi back' });
  assert.ok(BigInt(reply) > BigInt(id), 'ids increase (compare as BigInt: 64-bit)');
  const back = await json(alice.q.messages);
  assert.deepEqual([back.messageId, back.conversationId, back.senderId], [reply, conversationId, bob.login]);
});

test('DELIVERED via message.ack() on a client-individual subscription', async () => {
  const alice = await session(`alice-${unique()}`);
  const bob = await session(`bob-${unique()}`, { messagesAck: 'client-individual' });
  const conversationId = await direct(alice, bob);
  const id = await send(alice, { conversationId, content: 'ack me' });

  const m = await bob.q.messages.next();
  const acked = `ack-${unique()}`;
  const got = bob.client.receipt(acked);
  m.ack({ receipt: acked });
  await got;

  const receipt = await json(alice.q.receipts);
  assert.equal(receipt.messageId, id);
  assert.equal(receipt.conversationId, conversationId);
  assert.equal(receipt.userId, bob.login);
  assert.equal(receipt.status, 'DELIVERED');
  assert.match(receipt.at, TIMESTAMP_RE);
});

test('READ receipt carries upToMessageId and never moves backwards', async () => {
  const alice = await session(`alice-${unique()}`);
  const bob = await session(`bob-${unique()}`);
  const conversationId = await direct(alice, bob);
  const first = await send(alice, { conversationId, content: 'one' });
  const second = await send(alice, { conversationId, content: 'two' });

  await call(bob, 'chat.read', { conversationId, messageId: second });
  const read = await json(alice.q.receipts);
  assert.deepEqual([read.status, read.upToMessageId, read.userId], ['READ', second, bob.login]);

  await call(bob, 'chat.read', { conversationId, messageId: first });
  await alice.q.receipts.none(400);
});

test('typing reaches the other member; a repeat within a second is coalesced', async () => {
  const alice = await session(`alice-${unique()}`);
  const bob = await session(`bob-${unique()}`);
  const conversationId = await direct(alice, bob);

  await call(alice, 'chat.typing', { conversationId, typing: true });
  const typing = await json(bob.q.typing);
  assert.deepEqual([typing.conversationId, typing.userId, typing.typing], [conversationId, alice.login, true]);
  await call(alice, 'chat.typing', { conversationId, typing: true });
  await bob.q.typing.none(400);
  await call(alice, 'chat.typing', { conversationId, typing: false });
  assert.equal((await json(bob.q.typing)).typing, false);
  await alice.q.typing.none(100);
});

test('sync after reconnect replays what was sent meanwhile, in id order, then /user/queue/sync', async () => {
  const alice = await session(`alice-${unique()}`);
  let bob = await session(`bob-${unique()}`);
  const conversationId = await direct(alice, bob);
  const seen = await send(alice, { conversationId, content: 'before' });
  assert.equal((await json(bob.q.messages)).messageId, seen);
  await bob.client.close();

  const sent = [];
  for (let i = 0; i < 5; i += 1) sent.push(await send(alice, { conversationId, content: `meanwhile ${i}` }));

  bob = await session(bob.login);
  await call(bob, 'chat.sync', { afterMessageId: seen });
  const done = await json(bob.q.sync);
  const replay = [];
  for (let i = 0; i < sent.length; i += 1) replay.push(await json(bob.q.messages, 100));
  assert.deepEqual(
    replay.map((m) => m.messageId),
    sent,
  );
  assert.deepEqual(
    replay.map((m) => m.content),
    sent.map((_, i) => `meanwhile ${i}`),
  );
  assert.deepEqual(done, { upToMessageId: sent.at(-1), more: false });
  await bob.q.messages.none(200);
});

test('an application error arrives on /user/queue/errors without a RECEIPT', async () => {
  const alice = await session(`alice-${unique()}`);
  const receipt = `bad-${unique()}`;
  let receipted = false;
  alice.client.client.watchForReceipt(receipt, () => {
    receipted = true;
  });
  alice.client.client.publish({
    destination: '/app/chat.send',
    body: JSON.stringify({ conversationId: 'g:1', content: 'x', clientMessageId: 'c-err' }),
    headers: { receipt },
  });
  const error = await json(alice.q.errors);
  assert.deepEqual([error.code, error.receiptId, error.clientMessageId], ['UNKNOWN_CONVERSATION', receipt, 'c-err']);
  await sleep(200);
  assert.equal(receipted, false);
  assert.ok(alice.client.client.connected, 'the connection stays open');
});
