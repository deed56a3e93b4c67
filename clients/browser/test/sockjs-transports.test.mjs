// The real sockjs-client with @stomp/stompjs in headless Chromium, once per transport that
// Chromium enables, each forced with `transports: [name]`: connect, a subscription and a
// publish confirmed by RECEIPTs, a 100 KiB message, STOMP heart-beats both ways, and a reconnect
// after the connection is dropped. The iframe transports load sockjs-client through
// /ws/iframe.html, pointed at the broker's own copy (`--sockjs-client-url`), as a site without
// CDN access would run it.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import puppeteer from 'puppeteer-core';

import { startBroker } from './broker.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

/**
 * Every transport sockjs-client 1.6 enables in Chromium. Left out, because Chromium has no
 * ActiveX or XDomainRequest: `htmlfile`, `iframe-htmlfile`, `xdr-streaming`, `xdr-polling`.
 */
const TRANSPORTS = [
  'websocket',
  'xhr-streaming',
  'eventsource',
  'iframe-eventsource',
  'iframe-xhr-polling',
  'xhr-polling',
  'jsonp-polling',
];

/** Runs in the page: the whole scenario over one forced transport; returns what it saw. */
async function scenario(transport) {
  const within = (ms, what, promise) => Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`${transport}: no ${what} within ${ms} ms`)), ms)),
  ]);
  if (!window.SockJS) {
    await new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = '/vendor/sockjs.min.js';
      script.onload = resolve;
      script.onerror = () => reject(new Error('/vendor/sockjs.min.js did not load'));
      document.head.append(script);
    });
  }
  const { Client } = await import('/vendor/stompjs/index.js');

  const destination = `/topic/sockjs.${transport}`;
  const sockets = [];
  const pongs = [];
  const inbox = [];
  let waiter = null;
  let connects = 0;
  // The transport each connection runs on, read when it is up (a closed SockJS forgets it).
  const used = [];
  let connected = null;
  const nextConnect = () => new Promise((resolve) => { connected = resolve; });
  // RECEIPTs by id, whether they come before or after someone waits for them.
  const receipts = new Map();
  const receipt = (id) => new Promise((resolve) => {
    if (receipts.get(id) === true) resolve();
    else receipts.set(id, resolve);
  });
  const nextMessage = () => new Promise((resolve) => {
    if (inbox.length) resolve(inbox.shift());
    else waiter = resolve;
  });

  const client = new Client({
    webSocketFactory: () => {
      const socket = new window.SockJS(`${location.origin}/ws`, null, { transports: [transport] });
      sockets.push(socket);
      return socket;
    },
    connectHeaders: { login: `browser-${transport}` },
    heartbeatIncoming: 1000,
    heartbeatOutgoing: 1000,
    reconnectDelay: 200,
    debug: (line) => { if (line.includes('<<< PONG')) pongs.push(Date.now()); },
    onUnhandledReceipt: (frame) => {
      const id = frame.headers['receipt-id'];
      const waiting = receipts.get(id);
      receipts.set(id, true);
      if (typeof waiting === 'function') waiting();
    },
    onConnect: () => {
      connects += 1;
      used.push(sockets.at(-1).transport);
      client.subscribe(destination, (m) => {
        if (waiter) { const w = waiter; waiter = null; w(m.body); } else inbox.push(m.body);
      }, { receipt: `sub-${connects}` });
      connected?.();
    },
  });

  const first = nextConnect();
  const subscribed = receipt('sub-1');
  client.activate();
  await within(10_000, 'CONNECTED', first);
  await within(5_000, 'RECEIPT for SUBSCRIBE', subscribed);

  const sent = receipt('pub-1');
  client.publish({ destination, body: 'hello', headers: { receipt: 'pub-1' } });
  await within(5_000, 'RECEIPT for SEND', sent);
  const hello = await within(5_000, 'MESSAGE', nextMessage());

  const big = 'x'.repeat(100 * 1024);
  client.publish({ destination, body: big });
  const echoed = await within(10_000, '100 KiB MESSAGE', nextMessage());

  // Heart-beats: the broker honours 1 s; three seconds of silence must bring some.
  const before = pongs.length;
  await new Promise((resolve) => setTimeout(resolve, 3_000));
  const beats = pongs.length - before;

  // Dropped connection: stompjs reconnects over the same transport and resubscribes.
  const second = nextConnect();
  const resubscribed = receipt('sub-2');
  client.forceDisconnect();
  await within(10_000, 'reconnect', second);
  await within(5_000, 'RECEIPT for the new SUBSCRIBE', resubscribed);
  client.publish({ destination, body: 'again' });
  const again = await within(5_000, 'MESSAGE after reconnect', nextMessage());
  await client.deactivate();

  return {
    used,
    hello,
    bigLength: echoed.length,
    bigIntact: echoed === big,
    beats,
    again,
  };
}

test('sockjs-client in Chromium, every transport Chromium has', async (t) => {
  const broker = await startBroker('--sockjs-client-url', '/vendor/sockjs.min.js');
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in CI containers cannot use Chromium's sandbox; the pages are our own.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
  t.after(async () => {
    await browser.close();
    await broker.stop();
  });
  const iframe = await fetch(new URL('/ws/iframe.html', broker.url));
  assert.match(await iframe.text(), /<script src="\/vendor\/sockjs\.min\.js">/, 'the iframe page loads the local copy');

  for (const transport of TRANSPORTS) {
    await t.test(transport, async () => {
      const page = await browser.newPage();
      const errors = [];
      page.on('pageerror', (e) => errors.push(e));
      try {
        await page.goto(broker.url);
        const seen = await page.evaluate(scenario, transport);
        assert.deepEqual(
          { ...seen, beats: seen.beats > 0 },
          {
            used: [transport, transport],
            hello: 'hello',
            bigLength: 100 * 1024,
            bigIntact: true,
            beats: true,
            again: 'again',
          },
          `${transport}: ${JSON.stringify({ ...seen, hello: seen.hello?.slice(0, 20) })}`,
        );
        // jsonp-polling only: the poll held when the connection is dropped still answers, and
        // its script calls a callback sockjs-client already removed. Any other error counts.
        const stray = /^_jp\.\w+ is not a function$/;
        const real = errors.filter((e) => !(transport === 'jsonp-polling' && stray.test(e.message)));
        assert.deepEqual(real.map(String), [], 'no page errors');
      } finally {
        await page.close();
      }
    });
  }
});
