// Heart-beats over WebSocket: with the broker at --heartbeat 200,200 and stompjs at 200/200 ms,
// an idle connection stays up (stompjs drops it after 2 x 200 ms without server activity).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { clientPool, sleep, startBroker, unique } from './harness.mjs';

let broker;
const pool = clientPool(() => broker);
before(async () => {
  broker = await startBroker('--heartbeat', '200,200');
});
after(async () => {
  await pool.closeAll();
  await broker?.stop();
});

test('idle connection with 200 ms heart-beats stays up for 2 s', async () => {
  const c = await pool.connect({ heartbeatIncoming: 200, heartbeatOutgoing: 200 });
  const [sx, sy] = c.frames.connected.headers['heart-beat'].split(',').map(Number);
  assert.ok(sx > 0 && sy > 0, `broker should offer heart-beats both ways, got ${sx},${sy}`);
  let lost = 0;
  c.client.onHeartbeatLost = () => {
    lost += 1;
  };
  let pongs = 0;
  c.socket.on('message', (data) => {
    if (data.toString() === '\n') pongs += 1;
  });
  await sleep(2000);
  assert.equal(lost, 0, 'stompjs saw no server activity within its tolerance');
  assert.equal(c.frames.closes.length, 0, 'connection closed while idle');
  assert.equal(c.client.connected, true);
  assert.ok(pongs >= 3, `only ${pongs} heart-beat messages from the broker in 2 s`);
  const dest = `/topic/hb-${unique()}`;
  const inbox = await c.subscribe(dest);
  await c.publish({ destination: dest, body: 'alive' });
  assert.equal((await inbox.next()).body, 'alive');
});

test('a client that promised heart-beats and stops sending is closed', async () => {
  // heartbeatOutgoing promised, then the pinger is stopped behind stompjs's back; ws must not
  // answer WebSocket pings either, since pongs count as liveness too.
  const c = await pool.connect({ heartbeatIncoming: 0, heartbeatOutgoing: 200, wsOptions: { autoPong: false } });
  c.client._stompHandler._pinger?.stop();
  const closed = c.closed(5000);
  const error = c.nextError(5000);
  await closed;
  assert.equal((await error).headers.message, 'heart-beat timeout');
});
