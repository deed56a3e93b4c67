// The design's failure test: three nodes behind nginx, a few hundred stomp.js users chatting
// one-on-one and in groups, and one node killed with SIGKILL in the middle. Its users reconnect
// through nginx with backoff and jitter, sync from their last id and resend what was not
// acknowledged; in the end every member holds every acknowledged message exactly once, in
// order (chat-load.mjs defines both), and users who were only on the dead node went offline
// within the presence TTL, then online again when they came back.
//
// Skips only when the broker binary has no cluster mode (no --redis-url).

import assert from 'node:assert/strict';

import { settle, startChat, summary, until } from './chat-load.mjs';
import { chatUser, clusterTest } from './cluster.mjs';
import { sleep, unique, within } from './harness.mjs';

/** Enough users to make the dead node's share a reconnect storm, within the 20,000-fd cap. */
const USERS = Number(process.env.STOMPBOX_CLUSTER_USERS ?? 300);
const GROUP_SIZE = 10;
const MESSAGES = 12;
/** Users pinned to the victim that stay away: their presence must lapse. */
const SLEEPERS = 10;
const TTL_MS = 3000;
/** How late after the TTL an offline event may come (the sweep runs every second or so). */
const OFFLINE_SLACK_MS = 3000;
/** How long the sleepers stay away after the kill: well past TTL + slack. */
const AWAY_MS = 2 * TTL_MS + OFFLINE_SLACK_MS;

// Once on the shared PostgreSQL, once writing through Kafka and a sink (`--kafka-brokers`).
for (const storage of [null, 'streamed']) {
  clusterTest(
    `kill -9 of one node of three: no acknowledged message lost or doubled, presence follows${storage ? ' (Kafka -> sink -> PostgreSQL)' : ''}`,
    async ({ start, users }) => {
      // Clients beat every max(theirs, the server's wish) ms: the server must ask for beats well
      // inside the TTL, or an idle but connected user lapses (as with the defaults 10 s vs 3 s).
      const nodeArgs = ['--presence-ttl', `${TTL_MS / 1000}s`, '--heartbeat', `0,${TTL_MS / 3}`];
      const cluster = await start({ nodes: 3, nodeArgs, storage });
      const [victim, witness] = cluster.nodes;
      const tag = unique();
      let killAt = Infinity;
      for (let i = 0; i < USERS; i += 1) {
        const login = `${tag}-u${i}`;
        const sleeper = i < 2 * SLEEPERS && i % 2 === 0;
        const partnerOfSleeper = i < 2 * SLEEPERS && i % 2 === 1;
        let first = true;
        // Sleepers start on the victim, partners of sleepers on the witness; all come back via nginx.
        const url = () => {
          const pinned = first && (sleeper ? victim.wsUrl : partnerOfSleeper ? witness.wsUrl : null);
          first = false;
          return pinned || cluster.lbUrl;
        };
        const beforeReconnect = sleeper ? () => sleep(Math.max(0, killAt + AWAY_MS - Date.now())) : undefined;
        users.push(Object.assign(chatUser(login, url, beforeReconnect ? { beforeReconnect } : {}), { sleeper, partnerOfSleeper }));
      }
      const chat = { groupSize: GROUP_SIZE, count: MESSAGES, gapMs: [200, 700] };
      const { conversations, ledger, total, running } = await startChat(users, tag, chat);
      await until(() => ledger.length >= total / 3, running, 30_000, 'a third of the messages acknowledged');
      cluster.kill(0);
      killAt = Date.now();
      await within(60_000, Promise.all(running), 'every send acknowledged');
      assert.ok(!cluster.alive(0), 'the victim is dead');

      const problems = await settle(conversations, ledger, 20_000);
      if (problems.missing.length) console.log(`killed at ${new Date(killAt).toISOString()}\n${problems.missing.join('\n')}`);
      assert.equal(summary(problems), '', 'every member holds every acknowledged message exactly once');
      assert.equal(ledger.length, total);

      const sleepers = users.filter((u) => u.sleeper);
      const partners = users.filter((u) => u.partnerOfSleeper);
      for (const u of sleepers) assert.equal(u.chat.drops, 1, `${u.login} was on the victim`);
      for (const u of partners) assert.equal(u.chat.drops, 0, `${u.login} on a live node kept its connection`);
      const retried = ledger.filter((e) => e.tries > 1).length;
      const reconnected = users.filter((u) => u.chat.drops > 0).length;
      assert.ok(reconnected >= SLEEPERS, `${reconnected} users reconnected`);

      for (const [i, s] of sleepers.entries()) {
        const seen = partners[i].presence.filter((p) => p.userId === s.login && p.at > killAt);
        const offline = seen.find((p) => p.status === 'offline');
        assert.ok(offline, `${partners[i].login} saw ${s.login} go offline (saw ${JSON.stringify(seen)})`);
        assert.ok(
          offline.at - killAt <= TTL_MS + OFFLINE_SLACK_MS,
          `${s.login} offline ${offline.at - killAt} ms after the kill; TTL ${TTL_MS} ms`,
        );
        const online = seen.find((p) => p.status === 'online' && p.at > offline.at);
        assert.ok(online, `${partners[i].login} saw ${s.login} come back online`);
        assert.ok(online.at >= killAt + AWAY_MS, `${s.login} online only after it returned`);
      }
      // Presence queries read the cluster's state: everyone is connected now, so everyone is online.
      const asked = partners.map((p, i) => p.chat.request('presence.query', { userIds: [sleepers[i].login] }));
      await Promise.all(asked);
      await sleep(300);
      for (const [i, p] of partners.entries()) {
        const events = p.presence.filter((e) => e.userId === sleepers[i].login);
        const story = events.map((e) => `${e.status}@${e.at - killAt}ms`).join(' ');
        assert.equal(events.at(-1)?.status, 'online', `${sleepers[i].login} is online after its return (kill at 0: ${story})`);
      }
      const offlineAfter = sleepers.map((s, i) => partners[i].presence.find((p) => p.userId === s.login && p.status === 'offline' && p.at > killAt).at - killAt);
      console.log(
        `failover: ${USERS} users, ${ledger.length} acknowledged messages, ${reconnected} reconnected, ` +
          `${retried} sends retried; offline seen ${Math.min(...offlineAfter)}-${Math.max(...offlineAfter)} ms after the kill (TTL ${TTL_MS} ms)`,
      );
    },
  );
}
