// A tansu (Kafka-API broker) of the test's own whose log outlives the process: SQLite file
// storage (`sqlite://…`, tansu's `libsql` feature), on a free port of 127.0.0.1, started and
// killed by PID. The tansu of scripts/services.sh keeps its log in memory, so a kill -9 there
// loses every record; this one is for the Kafka-broker crash test (issue 16).
//
// Why SQLite and not tansu's PostgreSQL engine: tansu 0.6.0 creates its SQLite schema itself,
// but its PostgreSQL engine expects the schema to exist already and the crate ships no DDL for
// it (docs/persistence.md, "tansu findings").

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import net from 'node:net';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';

import { sleep } from './harness.mjs';

/** tansu listens in under a second here; a loaded machine gets room. */
const READY_TIMEOUT_MS = 30_000;
/** SIGTERM first; past this, SIGKILL so a stuck tansu cannot hang the run. */
const STOP_TIMEOUT_MS = 10_000;

/** As scripts/services.sh picks it: STOMPBOX_TANSU_BIN, else `tansu` on PATH, else cargo's bin. */
export function tansuBinary() {
  if (process.env.STOMPBOX_TANSU_BIN) return process.env.STOMPBOX_TANSU_BIN;
  const found = spawnSync('sh', ['-c', 'command -v tansu'], { encoding: 'utf8' }).stdout.trim();
  return found || path.join(process.env.CARGO_HOME ?? path.join(homedir(), '.cargo'), 'bin', 'tansu');
}

/** A port nothing listens on now (the OS's pick for port 0). */
async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** Resolves once a TCP connection to `port` succeeds; rejects when `child` exits first. */
async function listening(port, exited, logFile) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let gone = false;
  exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new Error(`tansu exited before listening: ${readFileSync(logFile, 'utf8').slice(-2000)}`);
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`tansu not listening on ${port} after ${READY_TIMEOUT_MS} ms`);
    await sleep(100);
  }
}

/**
 * Starts tansu on SQLite storage in a fresh directory.
 * @returns {Promise<{brokers: string, pid: () => number, kill: () => Promise<void>, restart: () => Promise<void>, stop: () => Promise<void>, log: () => string}>}
 */
export async function startDurableTansu() {
  const dir = mkdtempSync(path.join(tmpdir(), 'stompbox-tansu-'));
  const port = await freePort();
  const logFile = path.join(dir, 'tansu.log');
  // STOMPBOX_TANSU_STORAGE=memory: the control run, the log in memory as in services.sh (the
  // crash test must fail that way: a kill loses acknowledged records).
  // tansu 0.6.0 opens a sqlite:// URL's host and path relative to its working directory,
  // whatever the slashes (`sqlite:///tmp/x.db` is ./tmp/x.db; lite.rs), so it runs in `dir`.
  const storage = process.env.STOMPBOX_TANSU_STORAGE === 'memory' ? 'memory://tansu/' : 'sqlite://tansu.db';
  const args = ['broker', '--listener-url', `tcp://127.0.0.1:${port}`,
    '--advertised-listener-url', `tcp://127.0.0.1:${port}`, '--storage-engine', storage];
  const binary = tansuBinary();
  if (!existsSync(binary)) throw new Error(`no tansu at ${binary}: scripts/services.sh up tansu installs it`);

  const launch = async () => {
    const log = openSync(logFile, 'a');
    const child = spawn(binary, args, { cwd: dir, stdio: ['ignore', log, log] });
    closeSync(log); // the child has its own copy
    const exited = once(child, 'exit');
    await listening(port, exited, logFile);
    return { child, exited };
  };
  const alive = (p) => p.child.exitCode === null && p.child.signalCode === null;
  let proc = await launch();
  return {
    brokers: `127.0.0.1:${port}`,
    pid: () => proc.child.pid,
    /** `kill -9` by PID: no shutdown; what tansu had not written to its database is lost. */
    async kill() {
      if (alive(proc)) {
        proc.child.kill('SIGKILL');
        await proc.exited;
      }
    },
    /** Starts tansu again on the same port and database; resolves once it listens. */
    async restart() {
      if (!alive(proc)) proc = await launch();
    },
    log: () => readFileSync(logFile, 'utf8').slice(-4000),
    /** Stops it and removes its directory (STOMPBOX_KEEP_CLUSTER_LOGS=1 keeps it). */
    async stop() {
      if (alive(proc)) {
        proc.child.kill('SIGTERM');
        const timer = setTimeout(() => proc.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await proc.exited;
        clearTimeout(timer);
      }
      if (process.env.STOMPBOX_KEEP_CLUSTER_LOGS === '1') console.log(`tansu database and log kept in ${dir}`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}
