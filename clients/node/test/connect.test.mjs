// Connecting over WebSocket: with the stomp subprotocols, with none (Spring, stomp.py), and a raw
// Spring-style CONNECT without `host`.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import WebSocket from 'ws';

import { SUBPROTOCOLS, WAIT_MS, clientPool, startBroker, unique, within } from './harness.mjs';

let broker;
const pool = clientPool(() => broker);
before(async () => {
  broker = await startBroker();
});
after(async () => {
  await pool.closeAll();
  await broker?.stop();
});

test('stompjs connects with v12.stomp and gets CONNECTED 1.2 with contract headers', async () => {
  const c = await pool.connect({ login: 'alice' });
  assert.ok(SUBPROTOCOLS.includes(c.socket.protocol), `negotiated subprotocol ${c.socket.protocol}`);
  const h = c.frames.connected.headers;
  assert.equal(h.version, '1.2');
  assert.equal(h['user-name'], 'alice');
  assert.match(h.server, /^stompbox\/\S+$/);
  assert.ok(h.session, 'session header');
  assert.match(h['heart-beat'], /^\d+,\d+$/);
});

test('a WebSocket handshake without subprotocol is accepted', async () => {
  const c = await pool.connect({ login: 'bob', protocols: null });
  assert.equal(c.socket.protocol, '');
  assert.equal(c.frames.connected.headers.version, '1.2');
  const dest = `/topic/noproto-${unique()}`;
  const inbox = await c.subscribe(dest);
  await c.publish({ destination: dest, body: 'plain ws' });
  assert.equal((await inbox.next()).body, 'plain ws');
});

test('Spring-style raw CONNECT without host over a plain socket gets CONNECTED 1.2', async () => {
  const ws = new WebSocket(broker.wsUrl);
  try {
    await within(WAIT_MS, new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    }), 'WebSocket open');
    const reply = within(WAIT_MS, new Promise((resolve) => {
      ws.once('message', (data, isBinary) => resolve({ data: data.toString('utf8'), isBinary }));
    }), 'CONNECTED');
    ws.send('CONNECT\naccept-version:1.1,1.2\nheart-beat:10000,10000\n\n\0');
    const { data, isBinary } = await reply;
    assert.equal(isBinary, false, 'a valid UTF-8 frame goes out as a text message');
    assert.ok(data.startsWith('CONNECTED\n'), data);
    assert.ok(data.endsWith('\0'), 'one frame per message, NUL-terminated');
    const headers = Object.fromEntries(
      data.slice(0, data.indexOf('\n\n')).split('\n').slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
    );
    assert.equal(headers.version, '1.2');
    assert.match(headers['heart-beat'], /^\d+,\d+$/);
  } finally {
    ws.terminate();
  }
});

test('disconnect with a receipt gets the RECEIPT and the socket closes', async () => {
  const c = await pool.connect({ login: 'carol' });
  const receipt = `bye-${unique()}`;
  c.client.disconnectHeaders = { receipt };
  const disconnected = within(WAIT_MS, new Promise((resolve) => {
    c.client.onDisconnect = resolve; // stompjs calls it with the DISCONNECT's RECEIPT frame
  }), 'RECEIPT for DISCONNECT');
  const deactivated = c.client.deactivate();
  const frame = await disconnected;
  assert.equal(frame.command, 'RECEIPT');
  assert.equal(frame.headers['receipt-id'], receipt);
  await within(WAIT_MS, deactivated, 'socket close after DISCONNECT');
});

test('a path other than /ws answers HTTP 404', async () => {
  const ws = new WebSocket(broker.wsUrl.replace(/\/ws$/, '/nope'));
  const status = await within(WAIT_MS, new Promise((resolve) => {
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode));
    ws.once('open', () => resolve('open'));
    ws.once('error', () => {});
  }), 'handshake response');
  ws.terminate();
  assert.equal(status, 404);
});
