// `nodelet exec POD [-c NAME] [-i] [-t] -- CMD…`: kubectl exec against the
// daemon's streaming exec (a WebSocket with Kubernetes' channel subprotocols,
// src/api/exec-stream.ts) over the unix socket. -i streams stdin live and sends
// EOF at its end; -t (with -i and a terminal on stdin) puts the local terminal
// in raw mode, so Ctrl-C and friends reach the remote process, and sends the
// window size at start and on SIGWINCH. The remote exit code becomes ours.
// The terminal is restored on every way out: exit, error, signal.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import WebSocket from 'ws';
import { NodeletError, type ErrorCategory } from '../errors.js';
import { daemonUnreachable } from './client-ux.js';
import { CHANNEL, exitCodeOfStatus, frame, PROTOCOL_V4, PROTOCOL_V5, SOCKET_HIGH_WATER, type MetaStatus, type TerminalSize } from '../api/exec-stream.js';

export const NO_TTY_WARNING = 'Unable to use a TTY - input is not a terminal or the right kind of file';

export interface ExecCommandOptions {
  socket: string;
  namespace: string;
  pod: string;
  container?: string;
  command: string[];
  stdin: boolean;
  tty: boolean;
}

/** The local side: streams plus the terminal and signal hooks (process-wide in real use, fakes in tests). */
export interface ExecIO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  stdinIsTTY: boolean;
  setRawMode(on: boolean): void;
  terminalSize(): TerminalSize | undefined;
  /** Calls `cb` when the window size changes (SIGWINCH); returns the unsubscribe. */
  onWindowChange(cb: () => void): () => void;
  /** Calls `cb` on a terminating signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT); returns the unsubscribe. */
  onSignal(cb: (sig: NodeJS.Signals) => void): () => void;
}

const TERMINATING: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];

export function processIO(): ExecIO {
  const restore = () => {
    if (process.stdin.isTTY && process.stdin.isRaw) process.stdin.setRawMode(false);
  };
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    stdinIsTTY: !!process.stdin.isTTY,
    setRawMode(on) {
      if (!process.stdin.isTTY) return;
      process.stdin.setRawMode(on);
      // libuv's raw mode keeps output processing (ONLCR): the remote terminal already turned \n into
      // \r\n, so ours would print \r\r\n. kubectl's raw mode (cfmakeraw) clears OPOST; so do we.
      // setRawMode(false) restores the termios saved before raw mode, OPOST included.
      if (on) spawnSync('stty', ['-opost'], { stdio: [0, 'ignore', 'ignore'] });
      // last resort (an exception nobody caught): never leave the user's terminal raw
      if (on) process.once('exit', restore);
      else process.off('exit', restore);
    },
    terminalSize() {
      for (const s of [process.stdout, process.stderr]) {
        if (!s.isTTY) continue;
        const [cols, rows] = s.getWindowSize(); // an ioctl now, not the cached columns/rows
        if (cols && rows) return { cols, rows };
      }
      return undefined;
    },
    onWindowChange(cb) {
      process.on('SIGWINCH', cb);
      return () => void process.off('SIGWINCH', cb);
    },
    onSignal(cb) {
      for (const s of TERMINATING) process.on(s, cb);
      return () => {
        for (const s of TERMINATING) process.off(s, cb);
      };
    },
  };
}

/** kubectl's SetupTTY: a TTY only with -i and a terminal on stdin; -t without -i is quietly no TTY. */
export function computeTtyMode(o: { stdin: boolean; tty: boolean }, stdinIsTTY: boolean): { tty: boolean; warn: boolean } {
  if (!o.tty || !o.stdin) return { tty: false, warn: false };
  return stdinIsTTY ? { tty: true, warn: false } : { tty: false, warn: true };
}

export function execPath(o: ExecCommandOptions, tty: boolean): string {
  const q = new URLSearchParams();
  for (const c of o.command) q.append('command', c);
  if (o.container) q.set('container', o.container);
  if (o.stdin) q.set('stdin', 'true');
  q.set('stdout', 'true');
  if (!tty) q.set('stderr', 'true'); // a terminal merges stderr into stdout
  if (tty) q.set('tty', 'true');
  return `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/pods/${encodeURIComponent(o.pod)}/exec?${q}`;
}

function categoryOf(code: number): ErrorCategory {
  return code === 404 ? 'NotFound' : code === 409 ? 'AlreadyExists' : code >= 500 ? 'Internal' : 'InvalidArgument';
}

function serverError(httpCode: number, s: Partial<MetaStatus> | undefined, raw: string): NodeletError {
  const reason = s?.reason ?? String(httpCode);
  return new NodeletError(categoryOf(s?.code ?? httpCode), `ERR_API_${reason}`, `Error from server (${reason}): ${s?.message ?? raw.trim()}`);
}

/** Runs the command; resolves with the remote exit code (128+N when a signal ended us), rejects on API errors. */
export async function runExec(o: ExecCommandOptions, io: ExecIO = processIO()): Promise<number> {
  const mode = computeTtyMode(o, io.stdinIsTTY);
  if (mode.warn) io.stderr.write(NO_TTY_WARNING + '\n');
  const ws = new WebSocket(`ws://localhost${execPath(o, mode.tty)}`, [PROTOCOL_V5, PROTOCOL_V4], {
    createConnection: () => net.connect(o.socket), // ws drops a socketPath option; a ws+unix: URL would need the path URL-safe
    perMessageDeflate: false,
    maxPayload: 16 << 20,
  });

  return new Promise<number>((resolve, reject) => {
    let status: MetaStatus | undefined;
    let signalled: number | undefined;
    let settled = false;
    const cleanups: (() => void)[] = [];
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      for (const c of cleanups.splice(0).reverse()) {
        try { c(); } catch { /* keep restoring the rest */ }
      }
      fn();
    };
    const send = (data: Buffer, cb?: () => void) => {
      if (ws.readyState === ws.OPEN) ws.send(data, { binary: true }, cb);
      else cb?.();
    };

    const stop = (sig: NodeJS.Signals) => {
      signalled ??= 128 + ((osConstants.signals as Record<string, number>)[sig] ?? 0);
      ws.terminate(); // the server kills the remote command when we go
    };
    cleanups.push(io.onSignal(stop));
    // our output closed (`nodelet exec … | head -1`): end like a process killed by SIGPIPE
    // (kept after the end too: a late EPIPE must not become an uncaught exception)
    const onOutputError = () => stop('SIGPIPE');
    io.stdout.on('error', onOutputError);
    io.stderr.on('error', onOutputError);

    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        let j: Partial<MetaStatus> | undefined;
        try { j = JSON.parse(body); } catch { j = undefined; }
        settle(() => reject(serverError(res.statusCode ?? 0, j, body)));
        ws.terminate();
      });
    });
    ws.on('error', (e: NodeJS.ErrnoException) => {
      if (signalled !== undefined) return settle(() => resolve(signalled!));
      const unreachable = ['ENOENT', 'ECONNREFUSED', 'EACCES', 'EPERM'].includes(e.code ?? '');
      settle(() => reject(unreachable ? daemonUnreachable(o.socket, e) : new NodeletError('Unavailable', 'ERR_EXEC_STREAM', `exec in pod ${o.pod}: ${e.message}`, { cause: e })));
    });

    ws.on('open', () => {
      if (mode.tty) {
        io.setRawMode(true);
        cleanups.push(() => io.setRawMode(false));
        // the size goes first: the server starts a TTY command at the size of the first resize
        const sendSize = () => {
          const s = io.terminalSize();
          if (s) send(frame(CHANNEL.resize, JSON.stringify({ Width: s.cols, Height: s.rows })));
        };
        sendSize();
        cleanups.push(io.onWindowChange(sendSize));
      }
      if (o.stdin) {
        const onData = (chunk: Buffer | string) => {
          const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          if (ws.bufferedAmount < SOCKET_HIGH_WATER) return send(frame(CHANNEL.stdin, b));
          io.stdin.pause();
          send(frame(CHANNEL.stdin, b), () => io.stdin.resume());
        };
        // v5 can say "stdin is over"; v4 cannot (the command never sees EOF, as with kubectl)
        const onEnd = () => {
          if (ws.protocol === PROTOCOL_V5) send(Buffer.from([CHANNEL.close, CHANNEL.stdin]));
        };
        io.stdin.on('data', onData);
        io.stdin.once('end', onEnd);
        io.stdin.resume();
        cleanups.push(() => {
          io.stdin.off('data', onData);
          io.stdin.off('end', onEnd);
          io.stdin.pause(); // lets the process exit while a terminal or pipe is still open
        });
      }
    });

    const write = (out: Writable, data: Buffer) => {
      if (!out.write(data)) {
        ws.pause(); // back-pressure: read no more from the daemon until our output drains
        out.once('drain', () => ws.resume());
      }
    };
    ws.on('message', (raw: Buffer) => {
      if (raw.length === 0) return;
      const data = raw.subarray(1);
      switch (raw[0]) {
        case CHANNEL.stdout:
          return write(io.stdout, data);
        case CHANNEL.stderr:
          return write(io.stderr, data);
        case CHANNEL.status:
          try {
            status = JSON.parse(data.toString('utf8')) as MetaStatus;
          } catch {
            status = { metadata: {}, status: 'Failure', reason: 'InternalError', message: `malformed status from the daemon: ${data.toString('utf8')}` };
          }
          return;
        default:
          return; // 255 (close) and anything newer: nothing to do
      }
    });

    ws.on('close', (code) =>
      settle(() => {
        if (signalled !== undefined) return resolve(signalled);
        if (!status)
          return reject(new NodeletError('Unavailable', 'ERR_EXEC_STREAM_CLOSED', `exec in pod ${o.pod}: the daemon closed the connection (${code}) before the command's exit status arrived`));
        const r = exitCodeOfStatus(status);
        if ('exitCode' in r) return resolve(r.exitCode);
        reject(serverError(r.error.code ?? 500, r.error, ''));
      }),
    );
  });
}
