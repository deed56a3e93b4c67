// Payloads over WebSocket: a 1 MiB body that stompjs splits into 16 KiB messages (the broker must
// reassemble the stream), and a binary body with non-UTF-8 bytes that must arrive intact.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { clientPool, startBroker, unique } from './harness.mjs';

/** Records whether each MESSAGE frame came as a binary or a text WebSocket message. */
function messageKinds(client) {
  const kinds = [];
  client.socket.on('message', (data, isBinary) => {
    if (Buffer.from(data).subarray(0, 8).toString('latin1') === 'MESSAGE\n') kinds.push(isBinary ? 'binary' : 'text');
  });
  return kinds;
}

let broker;
const pool = clientPool(() => broker);
before(async () => {
  broker = await startBroker();
});
after(async () => {
  await pool.closeAll();
  await broker?.stop();
});

test('1 MiB body sent in 16 KiB WebSocket chunks round-trips', async () => {
  const dest = `/queue/big-${unique()}`;
  const sub = await pool.connect();
  const pub = await pool.connect({ splitLargeFrames: true, maxWebSocketChunkSize: 16 * 1024 });
  const chunks = [];
  const send = pub.socket.send.bind(pub.socket);
  pub.socket.send = (data, ...rest) => {
    chunks.push(data.length);
    return send(data, ...rest);
  };
  const inbox = await sub.subscribe(dest);
  const body = Array.from({ length: 1024 * 1024 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
  await pub.publish({ destination: dest, body }, 20_000);
  assert.ok(chunks.length >= 64, `stompjs should have split the frame, saw ${chunks.length} messages`);
  assert.ok(Math.max(...chunks) <= 16 * 1024);
  const m = await inbox.next(20_000);
  assert.equal(m.body.length, body.length);
  assert.ok(m.body === body, 'body differs');
  assert.equal(m.headers['content-length'], String(body.length));
});

test('binary body with non-UTF-8 bytes arrives intact as binaryBody', async () => {
  const dest = `/topic/bin-${unique()}`;
  const [sub, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await sub.subscribe(dest);
  const kinds = messageKinds(sub);
  const bytes = new Uint8Array(1024 + 4);
  for (let i = 0; i < 1024; i++) bytes[i] = i % 256;
  bytes.set([0xff, 0xfe, 0x00, 0xc3], 1024); // invalid UTF-8, NUL, truncated sequence
  await pub.publish({ destination: dest, binaryBody: bytes, headers: { 'content-type': 'application/octet-stream' } });
  const m = await inbox.next();
  assert.deepEqual(kinds, ['binary'], 'a non-UTF-8 body must go out as a binary WebSocket message');
  assert.deepEqual(Buffer.from(m.binaryBody), Buffer.from(bytes));
  assert.equal(m.headers['content-length'], String(bytes.length));
  assert.equal(m.headers['content-type'], 'application/octet-stream');
});

test('UTF-8 body round-trips as text', async () => {
  const dest = `/topic/utf8-${unique()}`;
  const [sub, pub] = await Promise.all([pool.connect(), pool.connect()]);
  const inbox = await sub.subscribe(dest);
  const kinds = messageKinds(sub);
  await pub.publish({ destination: dest, body: 'héllo ✓ 日本 🎉' });
  const m = await inbox.next();
  assert.deepEqual(kinds, ['text'], 'a valid UTF-8 frame goes out as a text WebSocket message');
  assert.equal(m.body, 'héllo ✓ 日本 🎉');
  assert.equal(m.headers['content-length'], String(Buffer.byteLength('héllo ✓ 日本 🎉')));
});
