// The broker's other stores for the Node suites, like clients/python/streamed.py:
// STOMPBOX_TEST_STORAGE=postgres runs each broker with --postgres-url on a fresh database;
// =streamed adds --kafka-brokers on a fresh topic and a `stompbox-sink` moving it into that
// database. Services come from `scripts/services.sh up` (.run/services.env).

import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const PG_BIN = process.env.STOMPBOX_PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** Few partitions: each sync barrier produces one marker per partition. */
const PARTITIONS = 2;
const run = promisify(execFile);

export function storageMode() {
  const mode = process.env.STOMPBOX_TEST_STORAGE || null;
  if (mode !== null && mode !== 'postgres' && mode !== 'streamed') {
    throw new Error(`STOMPBOX_TEST_STORAGE=${mode}: use streamed or postgres`);
  }
  return mode;
}

function services() {
  const found = {};
  const file = process.env.STOMPBOX_SERVICES_ENV ?? path.join(REPO, '.run', 'services.env');
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const at = line.indexOf('=');
      if (at > 0 && !line.startsWith('#')) found[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
  }
  for (const key of ['STOMPBOX_POSTGRES_URL', 'STOMPBOX_KAFKA_BROKERS']) {
    if (process.env[key]) found[key] = process.env[key];
  }
  return found;
}

const psqlBinary = () => (existsSync(path.join(PG_BIN, 'psql')) ? path.join(PG_BIN, 'psql') : 'psql');

function sinkBinary() {
  if (process.env.STOMPBOX_SINK_BIN) return process.env.STOMPBOX_SINK_BIN;
  if (process.env.STOMPBOX_BIN) return path.join(path.dirname(process.env.STOMPBOX_BIN), 'stompbox-sink');
  return path.join(REPO, 'target', 'debug', 'stompbox-sink');
}

/**
 * A fresh database (and topic + running sink in the streamed mode) for one broker;
 * `kafkaBrokers` overrides the services' Kafka.
 * @returns {Promise<{args: string[], stop: () => Promise<void>}>}
 */
export async function createStorage(mode, env, { kafkaBrokers = null } = {}) {
  const found = services();
  if (kafkaBrokers) found.STOMPBOX_KAFKA_BROKERS = kafkaBrokers;
  const server = found.STOMPBOX_POSTGRES_URL;
  if (!server || (mode === 'streamed' && !found.STOMPBOX_KAFKA_BROKERS)) {
    throw new Error(`STOMPBOX_TEST_STORAGE=${mode} needs scripts/services.sh up`);
  }
  const name = `sbt_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  execFileSync(psqlBinary(), [server, '-v', 'ON_ERROR_STOP=1', '-c', `CREATE DATABASE ${name}`], { stdio: 'ignore' });
  const url = `${server.slice(0, server.lastIndexOf('/'))}/${name}`;
  if (mode === 'postgres') return { args: ['--postgres-url', url], stop: async () => {} };

  const kafka = found.STOMPBOX_KAFKA_BROKERS;
  const topic = name.replaceAll('_', '.');
  const sinkArgs = ['--kafka-brokers', kafka, '--postgres-url', url, '--events-topic', topic,
    '--dead-letter-topic', `${topic}.dlt`, '--group-id', `${topic}.sink`, '--partitions', String(PARTITIONS), '--session-timeout', '6s'];
  let sink = await startSink(sinkArgs, env);
  return {
    args: ['--postgres-url', url, '--kafka-brokers', kafka, '--kafka-topic', topic,
      '--kafka-partitions', String(PARTITIONS)],
    /** The database, for checking what the sink stored (psql URL). */
    url,
    /** `kill -9` of the sink: no shutdown, its uncommitted batch is lost with it. */
    async killSink() {
      if (alive(sink.child)) {
        sink.child.kill('SIGKILL');
        await sink.exited;
      }
    },
    /** Starts the sink again (same database, topic and consumer group); resolves once ready. */
    async restartSink() {
      if (!alive(sink.child)) sink = await startSink(sinkArgs, env);
    },
    async stop() {
      if (alive(sink.child)) {
        sink.child.kill('SIGTERM');
        await sink.exited;
      }
    },
  };
}

/** Rows of `sql` on the database at `url`, each a list of its columns' text. */
export async function query(url, sql) {
  const { stdout } = await run(psqlBinary(), [url, '-v', 'ON_ERROR_STOP=1', '-At', '-F', '\t', '-c', sql], { encoding: 'utf8' });
  return stdout.split('\n').filter(Boolean).map((line) => line.split('\t'));
}

const alive = (child) => child.exitCode === null && child.signalCode === null;

/** Spawns a `stompbox-sink`; resolves once it says it is ready. */
async function startSink(args, env) {
  // STOMPBOX_SINK_LOG=FILE: the sinks' logs are appended there (a restarted sink's too).
  const log = process.env.STOMPBOX_SINK_LOG ? openSync(process.env.STOMPBOX_SINK_LOG, 'a') : 'ignore';
  const child = spawn(sinkBinary(), args, { stdio: ['ignore', 'pipe', log], env });
  if (typeof log === 'number') closeSync(log); // the child has its own copy
  const exited = once(child, 'exit');
  await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      if (line.startsWith('stompbox-sink ready')) resolve();
    });
    exited.then(([code]) => reject(new Error(`stompbox-sink exited (${code}) before ready`)));
  });
  return { child, exited };
}
