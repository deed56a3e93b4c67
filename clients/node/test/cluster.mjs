// Cluster fixtures for the failure tests: N stompbox nodes behind nginx (scripts/cluster.sh, in a
// private directory), the shared Redis of scripts/services.sh, and chat users built on the
// reconnecting client of examples/node/resilient-chat.mjs.

import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

import { test } from 'node:test';

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

import { ResilientChat } from '../../../examples/node/resilient-chat.mjs';
import { brokerBinary } from './harness.mjs';
import { createStorage } from './storage.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const run = promisify(execFile);

/**
 * Why the cluster tests cannot run, or false. Only a binary without cluster mode is a reason
 * to skip; a missing binary is left to fail where the suite starts it.
 */
export function clusterSkipReason() {
  const binary = brokerBinary();
  if (!existsSync(binary)) return false;
  const help = spawnSync(binary, ['--help'], { encoding: 'utf8' }).stdout ?? '';
  return help.includes('--redis-url') ? false : `${binary} has no --redis-url: cluster mode not built`;
}

/** Parses KEY=VALUE lines (a value may be in double quotes). */
function readEnv(file) {
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1).replace(/^"(.*)"$/, '$1')]),
  );
}

/** Runs scripts/<name> with `env` added; rejects with its stderr on failure. */
async function script(name, args, env = {}) {
  try {
    return await run(path.join(REPO, 'scripts', name), args, {
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
  } catch (err) {
    throw new Error(`scripts/${name} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/**
 * Starts `nodes` nodes behind nginx with `nodeArgs` added to each node's command line.
 * `storage: 'streamed'`: the nodes write through Kafka (a fresh topic and database, and a
 * `stompbox-sink` between them, storage.mjs) instead of to the shared PostgreSQL; `kafkaBrokers`
 * replaces the services' tansu with another Kafka (the Kafka-broker crash test's own tansu).
 * @returns {Promise<{lbUrl: string, nodes: {pid: number, id: number, wsUrl: string}[], kill: (i: number) => void, log: (i: number) => string, stop: () => Promise<void>}>}
 */
export async function startCluster({ nodes = 3, nodeArgs = [], storage = null, kafkaBrokers = null } = {}) {
  const dir = mkdtempSync(path.join(tmpdir(), 'stompbox-cluster-'));
  const env = { STOMPBOX_CLUSTER_DIR: dir, STOMPBOX_BIN: brokerBinary() };
  let store = null;
  try {
    if (storage) {
      await script('services.sh', ['up', 'postgres', 'tansu']);
      store = await createStorage(storage, process.env, { kafkaBrokers });
    }
    await script('cluster.sh', ['up', '-n', String(nodes), '--', ...(store?.args ?? []), ...nodeArgs], env);
  } catch (err) {
    await script('cluster.sh', ['down'], env).catch(() => {});
    await store?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const vars = readEnv(path.join(dir, 'cluster.env'));
  const list = (key) => vars[key].split(' ');
  return {
    /** The streamed storage (its sink can be killed and restarted, storage.mjs), or null. */
    storage: store,
    lbUrl: vars.STOMPBOX_LB_URL,
    redisUrl: vars.STOMPBOX_REDIS_URL,
    nodes: list('STOMPBOX_NODE_PIDS').map((pid, i) => ({
      pid: Number(pid),
      id: Number(list('STOMPBOX_NODE_IDS')[i]),
      wsUrl: list('STOMPBOX_NODE_WS')[i],
    })),
    /** `kill -9`: no shutdown, no goodbye to Redis or the clients, as a crash. */
    kill(i) {
      process.kill(this.nodes[i].pid, 'SIGKILL');
    },
    alive(i) {
      try {
        process.kill(this.nodes[i].pid, 0);
        return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${this.nodes[i].pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    },
    log(i) {
      const file = path.join(dir, `node${i}`, 'node.log');
      return existsSync(file) ? readFileSync(file, 'utf8').slice(-4000) : '';
    },
    /** Stops everything; STOMPBOX_KEEP_CLUSTER_LOGS=1 keeps the directory (node logs) and says where. */
    async stop() {
      await script('cluster.sh', ['down'], env);
      await store?.stop();
      if (process.env.STOMPBOX_KEEP_CLUSTER_LOGS === '1') console.log(`cluster logs kept in ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Under the 120 s per-test limit of scripts/test.sh, with room for the cluster's start and stop. */
const TEST_TIMEOUT_MS = 110_000;

/**
 * A cluster test: skipped only when the binary has no cluster mode; `body` gets `start(options)`
 * (startCluster), `users` (chat users) and `afterCluster` (stops run after the cluster's, for
 * what the cluster uses: a test's own Kafka). Both are stopped when the test ends, before the next
 * test starts: a file's `after` hooks run only after all its tests, and a cluster left running
 * shares node ids (and so channels and presence entries) with the next test's cluster on the
 * same Redis.
 */
export function clusterTest(name, body, { todo } = {}) {
  test(name, { skip: clusterSkipReason(), todo, timeout: TEST_TIMEOUT_MS }, async () => {
    let cluster;
    const users = [];
    const afterCluster = [];
    try {
      await body({ start: async (options) => (cluster = await startCluster(options)), users, afterCluster });
    } finally {
      await Promise.all(users.map((u) => u.chat.stop().catch(() => {})));
      await cluster?.stop();
      for (const stop of afterCluster) await stop();
    }
  });
}

/** Stops the shared Redis by PID and starts it again on the same port (scripts/services.sh). */
export async function restartRedis() {
  await script('services.sh', ['restart', 'redis']);
}

/**
 * A chat user: a ResilientChat plus what it observed, with timestamps.
 * `url` is a string or a function (called at every connect).
 */
export function chatUser(login, url, options = {}) {
  const user = { login, presence: [], conversations: [], arrivals: new Map(), errors: [] };
  user.chat = new ResilientChat({
    Client,
    WebSocket,
    url,
    login,
    backoff: { baseMs: 200, capMs: 3000 },
    // Outgoing beats keep the session's presence alive under a short --presence-ttl; no
    // incoming beats, so a busy test process cannot mistake its own lag for a dead server.
    heartbeat: { outgoing: 1000, incoming: 0 },
    onMessage: (m) => user.arrivals.set(m.messageId, { at: Date.now(), connects: user.chat.connects }),
    onPresence: (p) => user.presence.push({ ...p, at: Date.now() }),
    onConversation: (c) => user.conversations.push(c),
    onError: (e) => user.errors.push(e),
    ...options,
  });
  return user;
}
