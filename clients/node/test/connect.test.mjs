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

test('with --ws-allowed-origin, an Origin not on the list answers HTTP 403', async () => {
  const strict = await startBroker('--ws-allowed-origin', 'https://chat.example');
  const handshake = (origin) => {
    const ws = new WebSocket(strict.wsUrl, SUBPROTOCOLS, { origin });
    return within(WAIT_MS, new Promise((resolve) => {
      ws.once('unexpected-response', (_req, res) => resolve(res.statusCode));
      ws.once('open', () => resolve('open'));
      ws.once('error', () => {});
    }), `handshake with Origin ${origin}`).finally(() => ws.terminate());
  };
  try {
    assert.equal(await handshake('https://evil.example'), 403);
    assert.equal(await handshake('https://chat.example'), 'open');
  } finally {
    await strict.stop();
  }
});

/** A plain `ws` socket speaking raw STOMP: resolves frames (as strings) as they arrive. */
async function rawSocket(url) {
  const ws = new WebSocket(url, ['v12.stomp']);
  const frames = [];
  const waiters = [];
  ws.on('message', (data) => {
    const text = Buffer.from(data).toString('utf8');
    if (text === '\n') return; // heart-beat
    const w = waiters.shift();
    if (w) w(text);
    else frames.push(text);
  });
  await within(WAIT_MS, new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  }), 'WebSocket open');
  return {
    ws,
    next: () => (frames.length
      ? Promise.resolve(frames.shift())
      : within(WAIT_MS, new Promise((resolve) => waiters.push(resolve)), 'raw frame')),
  };
}

test('several frames in one WebSocket message are all processed', async () => {
  const raw = await rawSocket(broker.wsUrl);
  try {
    const dest = `/queue/batch-${unique()}`;
    raw.ws.send(
      'CONNECT\naccept-version:1.2\nhost:localhost\nlogin:batch\n\n\0'
      + `SUBSCRIBE\nid:s1\ndestination:${dest}\n\n\0`
      + `SEND\ndestination:${dest}\n\nbatched\0`,
    );
    assert.ok((await raw.next()).startsWith('CONNECTED\n'));
    const message = await raw.next();
    assert.ok(message.startsWith('MESSAGE\n'), message);
    assert.ok(message.endsWith('\n\nbatched\0'), message);
  } finally {
    raw.ws.terminate();
  }
});

test('a frame split across WebSocket messages at every byte is reassembled', async () => {
  const raw = await rawSocket(broker.wsUrl);
  try {
    const dest = `/queue/trickle-${unique()}`;
    raw.ws.send('CONNECT\naccept-version:1.2\nhost:localhost\nlogin:trickle\n\n\0');
    assert.ok((await raw.next()).startsWith('CONNECTED\n'));
    raw.ws.send(`SUBSCRIBE\nid:s1\ndestination:${dest}\n\n\0`);
    const send = `SEND\ndestination:${dest}\nreceipt:r1\n\nbyte by byte\0`;
    for (const ch of send) raw.ws.send(ch);
    // The MESSAGE to ourselves and the RECEIPT may come in either order.
    const frames = [await raw.next(), await raw.next()].sort();
    assert.ok(frames[0].startsWith('MESSAGE\n') && frames[0].endsWith('\n\nbyte by byte\0'), frames[0]);
    assert.ok(frames[1].startsWith('RECEIPT\n') && frames[1].includes('\nreceipt-id:r1\n'), frames[1]);
  } finally {
    raw.ws.terminate();
  }
});
