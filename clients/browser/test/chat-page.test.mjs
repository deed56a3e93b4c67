// The chat page (examples/web) in Debian's headless Chromium, two users in two browser contexts
// (separate storage, as two people on two machines), against a real broker serving the page
// with --web-root. Its screenshots are the README's (docs/images/, see SCREENSHOTS below).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import puppeteer from 'puppeteer-core';

import { REPO, startBroker } from './broker.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
/** Bound on every wait for something to appear on a page. */
const WAIT_MS = 10_000;
/**
 * Where the screenshots go: a scratch directory, so a test run leaves the tree clean;
 * `SCREENSHOTS_DIR=docs/images` (from the repository root) refreshes the README's.
 */
const SCREENSHOTS = process.env.SCREENSHOTS_DIR
  ? path.resolve(REPO, process.env.SCREENSHOTS_DIR)
  : path.join(tmpdir(), 'stompbox-screenshots');

async function launchBrowser() {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root in CI containers cannot use Chromium's sandbox; the pages are our own.
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'],
  });
}

/** A page in its own browser context, logged in as `user`. */
async function openAs(browser, url, user, context) {
  const ctx = context ?? (await browser.createBrowserContext());
  const page = await ctx.newPage();
  await page.setViewport({ width: 960, height: 600 });
  const errors = [];
  page.on('pageerror', (e) => errors.push(e));
  await page.goto(url);
  await page.type('#login-user', user);
  await page.click('#login-btn');
  await page.waitForSelector('#status[data-state="online"]', { timeout: WAIT_MS });
  return { page, ctx, errors };
}

const conv = (name) => `.conv[data-name="${name}"]`;

/** Clicks a conversation in the list; inside the page, as the list re-renders on every event. */
async function openConversation(page, name) {
  await page.waitForSelector(conv(name), { timeout: WAIT_MS });
  await page.$eval(conv(name), (n) => n.click());
}

/** Types into the composer key by key (so the page sees typing), then sends. */
async function say(page, text) {
  await page.type('#composer-text', text);
  await page.click('#send');
}

/** Waits until the last message of mine on `page` shows `status`. */
async function tickIs(page, text, status) {
  await page.waitForFunction(
    (t, s) => [...document.querySelectorAll('.msg.mine')].some((m) => m.querySelector('.text').textContent === t && m.dataset.status === s),
    { timeout: WAIT_MS }, text, status,
  );
}

async function messageShown(page, text) {
  await page.waitForFunction(
    (t) => [...document.querySelectorAll('.msg .text')].some((m) => m.textContent === t),
    { timeout: WAIT_MS }, text,
  );
}

test('two users chat in the browser: ticks, typing, presence, group, scroll-back, broker restart with sync', async (t) => {
  const broker = await startBroker();
  const browser = await launchBrowser();
  t.after(async () => {
    await browser.close();
    await broker.stop();
  });

  const alice = await openAs(browser, broker.url, 'alice');
  const bob = await openAs(browser, broker.url, 'bob');

  // One-to-one: alice starts it, both see it in their lists.
  await alice.page.type('#new-direct-user', 'bob');
  await alice.page.keyboard.press('Enter');
  await alice.page.waitForSelector(conv('bob'), { timeout: WAIT_MS });
  await bob.page.waitForSelector(conv('alice'), { timeout: WAIT_MS });
  await openConversation(alice.page, 'bob');
  // Presence: bob is online, so his dot is green.
  await alice.page.waitForSelector(`${conv('bob')} .dot[data-presence="online"]`, { timeout: WAIT_MS });

  // Bob has not opened the conversation: the message reaches his page (DELIVERED), unread.
  await say(alice.page, 'Hi Bob!');
  await tickIs(alice.page, 'Hi Bob!', 'DELIVERED');
  await bob.page.waitForFunction((s) => document.querySelector(`${s} .unread`)?.textContent === '1',
    { timeout: WAIT_MS }, conv('alice'));

  // Bob opens it: READ for alice.
  await openConversation(bob.page, 'alice');
  await messageShown(bob.page, 'Hi Bob!');
  await tickIs(alice.page, 'Hi Bob!', 'READ');

  // Bob types: alice sees it; then he sends.
  await bob.page.type('#composer-text', 'Hey Alice, how');
  await alice.page.waitForFunction(() => document.querySelector('#typing').textContent === 'bob is typing…',
    { timeout: WAIT_MS });
  mkdirSync(SCREENSHOTS, { recursive: true });
  await alice.page.screenshot({ path: path.join(SCREENSHOTS, 'chat-alice.png') });
  await bob.page.type('#composer-text', ' are you?');
  await bob.page.click('#send');
  await messageShown(alice.page, 'Hey Alice, how are you?');
  await tickIs(bob.page, 'Hey Alice, how are you?', 'READ');
  await alice.page.waitForFunction(() => document.querySelector('#typing').textContent === '', { timeout: WAIT_MS });
  await bob.page.screenshot({ path: path.join(SCREENSHOTS, 'chat-bob.png') });

  // A group: alice names it, bob gets it and the message, with the sender shown.
  await alice.page.type('#new-group-name', 'team');
  await alice.page.type('#new-group-members', 'bob, carol');
  await alice.page.click('#new-group button');
  await alice.page.waitForSelector(conv('team'), { timeout: WAIT_MS });
  await openConversation(alice.page, 'team');
  await say(alice.page, 'Standup in 5');
  await bob.page.waitForSelector(conv('team'), { timeout: WAIT_MS });
  await openConversation(bob.page, 'team');
  await messageShown(bob.page, 'Standup in 5');
  assert.equal(await bob.page.$eval('.msg .from', (n) => n.textContent), 'alice');
  // carol never logged in: the lowest status over the members is SENT.
  await tickIs(alice.page, 'Standup in 5', 'SENT');

  // Scroll-back: 40 more messages; a fresh page of bob's shows the newest page, then older ones.
  await openConversation(alice.page, 'bob');
  for (let i = 1; i <= 40; i++) {
    await alice.page.$eval('#composer-text', (n, v) => { n.value = v; }, `note ${i}`);
    await alice.page.click('#send');
  }
  // Bob's page has the group open: it receives (DELIVERED) but does not read them.
  await tickIs(alice.page, 'note 40', 'DELIVERED');
  await bob.page.close();
  const bob2 = await openAs(browser, broker.url, 'bob', bob.ctx);
  await openConversation(bob2.page, 'alice');
  await messageShown(bob2.page, 'note 40');
  const firstPage = await bob2.page.$$eval('.msg', (n) => n.length);
  assert.ok(firstPage <= 30, `the first page is one history page, not everything (${firstPage})`);
  // The button shows once the history answer says there is more (sync may have shown the
  // newest messages before that answer came).
  await bob2.page.waitForSelector('#older', { visible: true, timeout: WAIT_MS });
  await bob2.page.click('#older');
  await messageShown(bob2.page, 'Hi Bob!');
  assert.equal(await bob2.page.$$eval('.msg', (n) => n.length), 42);

  // The broker restarts under both pages: they reconnect by themselves.
  await broker.restart();
  for (const p of [alice.page, bob2.page]) {
    await p.waitForSelector('#status[data-state="online"]', { timeout: WAIT_MS });
  }
  await say(alice.page, 'Back after the restart');
  await messageShown(bob2.page, 'Back after the restart');
  await tickIs(alice.page, 'Back after the restart', 'READ');

  // Sync after reconnect: bob is away while alice writes; his next page gets it by sync (the
  // unread count and preview, before he opens anything: history would not count as unread).
  await bob2.page.close();
  // His last session ended: his dot on alice's page goes grey.
  await alice.page.waitForSelector(`${conv('bob')} .dot[data-presence="offline"]`, { timeout: WAIT_MS });
  await say(alice.page, 'While you were away');
  await tickIs(alice.page, 'While you were away', 'SENT');
  const bob3 = await openAs(browser, broker.url, 'bob', bob.ctx);
  await bob3.page.waitForFunction(
    (s) => document.querySelector(`${s} .unread`)?.textContent === '1'
      && document.querySelector(`${s} .preview`)?.textContent === 'While you were away',
    { timeout: WAIT_MS }, conv('alice'),
  );

  for (const { errors } of [alice, bob, bob2, bob3]) assert.deepEqual(errors, []);
});

test('the page falls back to SockJS when WebSockets are blocked', async (t) => {
  const broker = await startBroker();
  t.after(() => broker.stop());
  const info = await fetch(`${broker.url}ws/info`);
  if (info.status === 404) {
    t.skip('this broker serves no SockJS (/ws/info answers 404)');
    return;
  }
  const browser = await launchBrowser();
  t.after(() => browser.close());
  const ctx = await browser.createBrowserContext();
  // A proxy that breaks WebSockets: every attempt fails as the upgrade would.
  const page = await ctx.newPage();
  await page.evaluateOnNewDocument(() => {
    window.WebSocket = class BlockedWebSocket extends EventTarget {
      constructor() {
        super();
        this.readyState = 0;
        setTimeout(() => {
          this.readyState = 3;
          this.onerror?.(new Event('error'));
          this.onclose?.({ code: 1006, reason: 'blocked', wasClean: false });
        }, 10);
      }
      send() { throw new Error('blocked'); }
      close() {}
    };
  });
  await page.goto(broker.url);
  await page.type('#login-user', 'alice');
  await page.click('#login-btn');
  await page.waitForFunction(() => document.querySelector('#status').textContent.includes('SockJS'),
    { timeout: WAIT_MS });
  const bob = await openAs(browser, broker.url, 'bob');
  await page.type('#new-direct-user', 'bob');
  await page.keyboard.press('Enter');
  await page.waitForSelector(conv('bob'), { timeout: WAIT_MS });
  await openConversation(page, 'bob');
  await say(page, 'over SockJS');
  await bob.page.waitForSelector(conv('alice'), { timeout: WAIT_MS });
  await openConversation(bob.page, 'alice');
  await messageShown(bob.page, 'over SockJS');
  await tickIs(page, 'over SockJS', 'READ');
});
