// A stompbox for the browser suite: serves the chat page (`--web-root examples/web`) and can be
// restarted on the same ports and store, as an operator restarts a broker under open pages.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const WEB_ROOT = path.join(REPO, 'examples/web');
const READY_RE = /^stompbox ready stomp=\S+:(\d+) http=\S+:(\d+)/;
/** A debug build on a loaded 2-core machine still binds in well under this. */
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

function binary() {
  if (process.env.STOMPBOX_BIN) return process.env.STOMPBOX_BIN;
  const target = process.env.CARGO_TARGET_DIR ? path.resolve(REPO, process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');
  return path.join(target, 'debug', 'stompbox');
}

/** Starts a broker on ephemeral ports with its own store; `restart()` keeps ports and store. */
export async function startBroker(...extraArgs) {
  const bin = binary();
  if (!existsSync(bin)) throw new Error(`broker binary ${bin} not found; run \`cargo build -p stompbox\``);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'stompbox-browser-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STOMPBOX_')));
  let child;
  let stderr = '';

  async function launch(stompListen, httpListen) {
    child = spawn(bin, ['--stomp-listen', stompListen, '--http-listen', httpListen, '--data-dir', dataDir,
      '--web-root', WEB_ROOT, ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'], env });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => { stderr = (stderr + chunk).slice(-16_384); });
    const exited = once(child, 'exit');
    const lines = readline.createInterface({ input: child.stdout });
    let timer;
    try {
      return await new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error('broker not ready in time')), READY_TIMEOUT_MS);
        lines.on('line', (line) => {
          const m = READY_RE.exec(line.trim());
          if (m) resolve({ stompPort: Number(m[1]), httpPort: Number(m[2]) });
        });
        exited.then(([code, signal]) => reject(new Error(`broker exited (${code ?? signal}):\n${stderr}`)));
      });
    } finally {
      clearTimeout(timer);
    }
  }

  async function stop() {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  const ports = await launch('127.0.0.1:0', '127.0.0.1:0');
  return {
    ...ports,
    url: `http://127.0.0.1:${ports.httpPort}/`,
    log: () => stderr,
    /** Stops the broker and starts it again on the same ports and store. */
    async restart() {
      await stop();
      await launch(`127.0.0.1:${ports.stompPort}`, `127.0.0.1:${ports.httpPort}`);
    },
    async stop() {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
