// Stompbox's SockJS endpoint at the HTTP level, with raw requests: the URL layout Spring uses,
// framing per transport (including htmlfile and jsonp, which sockjs-client cannot run in Node),
// the session timeout, a second receiver refused, CORS with credentials and the origin
// allow-list, the JSESSIONID cookie, and bad input answered as SockJS servers answer it.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { sleep, startBroker, TestClient, unique, within, WAIT_MS } from './harness.mjs';

const CONNECT = 'CONNECT\naccept-version:1.2\nhost:/\nlogin:guest\npasscode:x\n\n\0';

/** One request; resolves with status, headers and the whole body (or `until` bytes of it). */
function request(broker, method, path, { headers = {}, body, until, tls } = {}) {
  // `tls`: over the HTTPS listener, with these `https.request` options (CA, client certificate).
  const [lib, target] = tls
    ? [https, { host: 'localhost', port: Number(new URL(broker.wssUrl).port), ...tls }]
    : [http, { host: broker.host, port: broker.httpPort }];
  return within(WAIT_MS, new Promise((resolve, reject) => {
    const req = lib.request({ ...target, method, path, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      const done = () => resolve({ status: res.statusCode, headers: res.headers, body: text });
      res.on('data', (chunk) => {
        text += chunk;
        if (until && until(text)) {
          done();
          req.destroy();
        }
      });
      res.on('end', done);
    });
    req.on('error', (err) => (err.code === 'ECONNRESET' ? null : reject(err)));
    req.end(body);
  }), `${method} ${path}`);
}

const sid = () => `s${unique().replace(/-/g, '')}`;
const xhr = (b, s, opts) => request(b, 'POST', `/ws/000/${s}/xhr`, opts);
const send = (b, s, messages, opts = {}) =>
  request(b, 'POST', `/ws/000/${s}/xhr_send`, { ...opts, body: typeof messages === 'string' ? messages : JSON.stringify(messages) });

/** Polls until a frame other than `h` arrives. */
async function poll(b, s) {
  for (;;) {
    const r = await xhr(b, s);
    if (r.body !== 'h\n') return r;
  }
}

let broker;
before(async () => {
  broker = await startBroker('--sockjs-disconnect-delay', '1s', '--sockjs-heartbeat', '2s');
});
after(async () => broker?.stop());

describe('SockJS at the HTTP level', () => {
  test('GET /ws/info says what Spring says, with CORS for the caller and no caching', async () => {
    const r = await request(broker, 'GET', '/ws/info', { headers: { origin: 'http://app.example' } });
    assert.equal(r.status, 200);
    const info = JSON.parse(r.body);
    assert.equal(info.websocket, true);
    assert.equal(info.cookie_needed, true);
    assert.deepEqual(info.origins, ['*:*']);
    assert.equal(typeof info.entropy, 'number');
    assert.match(r.headers['content-type'], /^application\/json/);
    assert.equal(r.headers['access-control-allow-origin'], 'http://app.example');
    assert.equal(r.headers['access-control-allow-credentials'], 'true');
    assert.match(r.headers['cache-control'], /no-store/);
    const pre = await request(broker, 'OPTIONS', '/ws/info', {
      headers: { origin: 'http://app.example', 'access-control-request-headers': 'x-foo' },
    });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-methods'], 'OPTIONS, GET');
    assert.equal(pre.headers['access-control-allow-headers'], 'x-foo');
    assert.ok(Number(pre.headers['access-control-max-age']) > 0);
  });

  test('GET /ws/iframe.html is cacheable, with an ETag that answers 304', async () => {
    const r = await request(broker, 'GET', '/ws/iframe.html');
    assert.equal(r.status, 200);
    assert.match(r.body, /SockJS\.bootstrap_iframe\(\)/);
    assert.ok(r.headers.etag);
    const again = await request(broker, 'GET', '/ws/iframe.html', { headers: { 'if-none-match': r.headers.etag } });
    assert.equal(again.status, 304);
  });

  test('xhr + xhr_send carry a STOMP session: o, then a[...] frames; JSESSIONID set or echoed', async () => {
    const s = sid();
    const open = await xhr(broker, s);
    assert.equal(open.status, 200);
    assert.equal(open.body, 'o\n');
    assert.match(open.headers['set-cookie'][0], /^JSESSIONID=dummy;\s*path=\//i);
    const sent = await send(broker, s, [CONNECT], { headers: { cookie: 'JSESSIONID=abc123' } });
    assert.equal(sent.status, 204);
    assert.match(sent.headers['set-cookie'][0], /^JSESSIONID=abc123;/);
    const connected = await poll(broker, s);
    assert.match(connected.body, /^a\["CONNECTED\\nversion:1\.2\\n/);
    assert.match(connected.body, /\\u0000"\]\n$/);
  });

  test('a second receiver while one is open gets c[2010,...]', async () => {
    const s = sid();
    await xhr(broker, s);
    const first = xhr(broker, s); // held open: nothing to send yet
    await sleep(200);
    const second = await xhr(broker, s);
    assert.equal(second.body, 'c[2010,"Another connection still open"]\n');
    assert.equal((await first).body, 'h\n');
  });

  test('the session closes when nobody polls for the disconnect delay; sends then get 404', async () => {
    const s = sid();
    await xhr(broker, s);
    assert.equal((await send(broker, s, [CONNECT])).status, 204);
    await sleep(2000); // the delay is 1 s here
    assert.equal((await send(broker, s, ['x'])).status, 404);
    // The same id now opens a new session.
    assert.equal((await xhr(broker, s)).body, 'o\n');
  });

  test('DISCONNECT ends the STOMP session: the RECEIPT, then c[3000,"Go away!"] on every poll', async () => {
    const s = sid();
    await xhr(broker, s);
    await send(broker, s, [CONNECT]);
    await poll(broker, s);
    await send(broker, s, ['DISCONNECT\nreceipt:bye\n\n\0']);
    const receipt = await poll(broker, s);
    assert.match(receipt.body, /RECEIPT\\nreceipt-id:bye/);
    let closed = receipt.body.includes('c[3000') ? receipt : await poll(broker, s);
    assert.match(closed.body, /c\[3000,"Go away!"\]\n$/);
    closed = await xhr(broker, s);
    assert.equal(closed.body, 'c[3000,"Go away!"]\n');
  });

  test('bad input: unknown session 404, empty body 500, broken JSON 500, dotted ids 404', async () => {
    assert.equal((await send(broker, sid(), ['x'])).status, 404);
    const s = sid();
    await xhr(broker, s);
    const empty = await send(broker, s, '');
    assert.equal(empty.status, 500);
    assert.equal(empty.body, 'Payload expected.');
    const broken = await send(broker, s, '["a",');
    assert.equal(broken.status, 500);
    assert.equal(broken.body, 'Broken JSON encoding.');
    const notStrings = await send(broker, s, '[1,2]');
    assert.equal(notStrings.status, 500);
    assert.equal((await xhr(broker, 'a.b')).status, 404);
    assert.equal((await request(broker, 'POST', '/ws/0.0/abc/xhr')).status, 404);
    assert.equal((await request(broker, 'POST', `/ws/000/${sid()}/nosuch`)).status, 404);
  });

  test('xhr_streaming: 2 KiB prelude of h, then o, then frames as lines', async () => {
    const s = sid();
    const opened = await request(broker, 'POST', `/ws/000/${s}/xhr_streaming`, { until: (t) => t.endsWith('o\n') });
    assert.equal(opened.body, `${'h'.repeat(2048)}\no\n`);
    assert.match(opened.headers['content-type'], /^application\/javascript/);
    const pre = await request(broker, 'OPTIONS', `/ws/000/${s}/xhr_streaming`, { headers: { origin: 'http://x.example' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-methods'], 'OPTIONS, POST');
  });

  test('eventsource: data: lines', async () => {
    const s = sid();
    const stream = request(broker, 'GET', `/ws/000/${s}/eventsource`, { until: (t) => t.includes('CONNECTED') });
    await sleep(200);
    await send(broker, s, [CONNECT]);
    const r = await stream;
    assert.match(r.headers['content-type'], /^text\/event-stream/);
    assert.ok(r.body.startsWith('\r\ndata: o\r\n\r\ndata: a["CONNECTED'), r.body.slice(0, 80));
  });

  test('htmlfile: a padded page calling the callback, then script tags', async () => {
    assert.equal((await request(broker, 'GET', `/ws/000/${sid()}/htmlfile`)).body, '"callback" parameter required');
    assert.equal((await request(broker, 'GET', `/ws/000/${sid()}/htmlfile?c=x%3Calert`)).body, 'invalid "callback" parameter');
    const s = sid();
    const stream = request(broker, 'GET', `/ws/000/${s}/htmlfile?c=cb`, { until: (t) => t.includes('CONNECTED') });
    await sleep(200);
    await send(broker, s, [CONNECT]);
    const r = await stream;
    assert.match(r.headers['content-type'], /^text\/html/);
    assert.match(r.body, /var c = parent\.cb;/);
    const prelude = r.body.indexOf('\r\n');
    assert.ok(prelude >= 1024, 'prelude padded to 1 KiB');
    assert.ok(r.body.includes('<script>\np("o");\n</script>\r\n'));
    assert.match(r.body, /<script>\np\("a\[\\"CONNECTED\\\\nversion:1\.2/);
  });

  test('jsonp + jsonp_send (form and raw bodies)', async () => {
    const s = sid();
    const open = await request(broker, 'GET', `/ws/000/${s}/jsonp?c=cb`);
    assert.equal(open.body, '/**/cb("o");\r\n');
    const form = await request(broker, 'POST', `/ws/000/${s}/jsonp_send`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `d=${encodeURIComponent(JSON.stringify([CONNECT]))}`,
    });
    assert.equal(form.status, 200);
    assert.equal(form.body, 'ok');
    const connected = await request(broker, 'GET', `/ws/000/${s}/jsonp?c=cb`);
    assert.match(connected.body, /^\/\*\*\/cb\("a\[\\"CONNECTED/);
    const raw = await request(broker, 'POST', `/ws/000/${s}/jsonp_send`, { body: JSON.stringify(['SEND\ndestination:/topic/x\n\nhi\0']) });
    assert.equal(raw.body, 'ok');
    const missing = await request(broker, 'POST', `/ws/000/${s}/jsonp_send`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'x=1',
    });
    assert.equal(missing.status, 500);
    assert.equal(missing.body, 'Payload expected.');
  });

  test('GET /ws/websocket is plain STOMP over WebSocket, as /ws (Spring serves it beside SockJS)', async () => {
    const c = await new TestClient({ ...broker, wsUrl: broker.wsUrl.replace(/\/ws$/, '/ws/websocket') }).connect();
    assert.equal(c.frames.connected.headers.version, '1.2');
    const destination = `/topic/raw-${unique()}`;
    const inbox = await c.subscribe(destination);
    await c.publish({ destination, body: 'raw' });
    assert.equal((await inbox.next()).body, 'raw');
    await c.close();
  });

  test('the SockJS WebSocket: o, a[...] frames both ways; a message that is not JSON closes it', async () => {
    const ws = new WebSocket(`${broker.wsUrl}/000/${sid()}/websocket`);
    const messages = [];
    let wake = () => {};
    ws.on('message', (data) => {
      messages.push(String(data));
      wake();
    });
    const closed = new Promise((resolve) => ws.on('close', resolve));
    const next = () =>
      within(WAIT_MS, new Promise((resolve) => {
        const check = () => (messages.length ? resolve(messages.shift()) : (wake = check));
        check();
      }), 'SockJS WebSocket frame');
    assert.equal(await next(), 'o');
    ws.send(JSON.stringify([CONNECT]));
    assert.match(await next(), /^a\["CONNECTED\\nversion:1\.2/);
    ws.send('not json');
    await within(WAIT_MS, closed, 'close after broken JSON');
  });

  test('an idle receiver gets h after the heart-beat interval', async () => {
    const s = sid();
    await xhr(broker, s);
    const r = await xhr(broker, s); // 2 s heart-beat here
    assert.equal(r.body, 'h\n');
  });
});

describe('SockJS with --ws-allowed-origin', () => {
  let strict;
  before(async () => {
    strict = await startBroker('--ws-allowed-origin', 'http://good.example');
  });
  after(async () => strict?.stop());

  test('a listed origin is served with CORS; another is refused 403; none is same-origin', async () => {
    const good = await request(strict, 'GET', '/ws/info', { headers: { origin: 'http://good.example' } });
    assert.equal(good.status, 200);
    assert.equal(good.headers['access-control-allow-origin'], 'http://good.example');
    const bad = await request(strict, 'GET', '/ws/info', { headers: { origin: 'http://evil.example' } });
    assert.equal(bad.status, 403);
    assert.equal((await xhr(strict, sid(), { headers: { origin: 'http://evil.example' } })).status, 403);
    assert.equal((await send(strict, sid(), ['x'], { headers: { origin: 'http://evil.example' } })).status, 403);
    assert.equal((await xhr(strict, sid())).body, 'o\n');
  });
});

describe('SockJS and shutdown', () => {
  test('SIGTERM with a stream and a poll open: both end with c[3000], the broker stops by itself', async () => {
    const b = await startBroker();
    const s = sid();
    const stream = request(b, 'POST', `/ws/000/${s}/xhr_streaming`);
    await sleep(200);
    await send(b, s, [CONNECT]);
    const p = sid();
    await xhr(b, p);
    const held = xhr(b, p); // waits for a frame
    await sleep(200);
    await b.stop();
    const streamed = await stream;
    assert.match(streamed.body, /a\["CONNECTED/);
    assert.match(streamed.body, /c\[3000,"Go away!"\]\n$/);
    assert.equal((await held).body, 'c[3000,"Go away!"]\n');
    // Logged at the end of a graceful shutdown; a broker that hung was SIGKILLed before it.
    assert.match(b.log(), /\bstopped\b/);
  });
});

describe('SockJS and slow consumers', () => {
  let b;
  before(async () => {
    b = await startBroker('--outbound-max-frames', '50', '--sockjs-disconnect-delay', '30s');
  });
  after(async () => b?.stop());

  test('a poller that stops polling backs up into its outbox and is closed as a slow consumer', async () => {
    const s = sid();
    const topic = `/topic/slow-${unique()}`;
    await xhr(b, s);
    await send(b, s, [CONNECT, `SUBSCRIBE\nid:0\ndestination:${topic}\nreceipt:sub\n\n\0`]);
    let seen = '';
    while (!seen.includes('receipt-id:sub')) seen += (await poll(b, s)).body;
    // 3 MB at a session that does not poll: more than its 1 MiB SockJS queue and its outbox.
    const publisher = await new TestClient(b).connect();
    const body = 'z'.repeat(10 * 1024);
    for (let i = 0; i < 300; i += 1) publisher.client.publish({ destination: topic, body });
    await publisher.publish({ destination: `/topic/other-${unique()}`, body: 'done' }, 20_000);
    let frames = '';
    for (;;) {
      const r = await poll(b, s);
      frames += r.body.slice(-2000);
      if (r.body.startsWith('c[')) break;
    }
    assert.match(frames, /ERROR\\nmessage:slow consumer/);
    assert.match(frames, /c\[3000,"Go away!"\]\n$/);
    await publisher.close();
  });
});

describe('SockJS over HTTPS', () => {
  const certs = mkdtempSync(path.join(tmpdir(), 'stompbox-sockjs-certs-'));
  const file = (name) => path.join(certs, name);
  let b;
  before(async () => {
    const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    execFileSync(path.join(repo, 'scripts/test-certs.sh'), [certs], { stdio: 'ignore' });
    b = await startBroker('--https-listen', '127.0.0.1:0', '--tls-cert', file('server.pem'),
      '--tls-key', file('server-key.pem'), '--tls-client-ca', file('ca.pem'));
  });
  after(async () => b?.stop());

  test('a client certificate names the user of a SockJS session opened over HTTPS', async () => {
    const tls = {
      ca: readFileSync(file('ca.pem')),
      cert: readFileSync(file('client-alice.pem')),
      key: readFileSync(file('client-alice-key.pem')),
      agent: false,
    };
    const s = sid();
    assert.equal((await request(b, 'POST', `/ws/000/${s}/xhr`, { tls })).body, 'o\n');
    const connect = 'CONNECT\naccept-version:1.2\nhost:/\n\n\0';
    const sent = await request(b, 'POST', `/ws/000/${s}/xhr_send`, { tls, body: JSON.stringify([connect]) });
    assert.equal(sent.status, 204);
    const connected = await request(b, 'POST', `/ws/000/${s}/xhr`, { tls });
    assert.match(connected.body, /^a\["CONNECTED\\n/);
    assert.match(connected.body, /user-name:alice\\n/);
  });
});
