// Streaming exec: the pure parts (query, subprotocol, resize, Status objects,
// TTY decision), then the real ApiServer on a unix socket with a fake runtime
// (ExecSession made of PassThrough streams) driven by a raw WebSocket client
// and by the CLI's runExec with fake terminal/signal hooks.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import WebSocket from 'ws';
import { NodeletError } from '../../../src/errors.js';
import { ApiServer } from '../../../src/api/server.js';
import {
  computeErrorStatus, computeExitStatus, exitCodeOfStatus, negotiateProtocol, offeredProtocols, parseExecQuery, parseResize,
  PROTOCOL_V4, PROTOCOL_V5, type MetaStatus,
} from '../../../src/api/exec-stream.js';
import type { ExecSession, ExecStreamOptions } from '../../../src/runtime/types.js';
import { computeTtyMode, execPath, NO_TTY_WARNING, runExec, type ExecIO } from '../../../src/cli/exec-command.js';
import type { NodeAgent } from '../../../src/agent/node-agent.js';

describe('exec query, subprotocol and Status objects', () => {
  it('parses the Kubernetes exec query', () => {
    const q = new URLSearchParams('command=sh&command=-c&command=echo%20hi&container=c&stdin=true&stdout=1&stderr=true&tty=false');
    expect(parseExecQuery(q)).toEqual({ command: ['sh', '-c', 'echo hi'], container: 'c', stdin: true, stdout: true, stderr: true, tty: false });
    expect(parseExecQuery(new URLSearchParams('stdout=true'))).toEqual({ error: 'you must specify at least 1 command' });
    expect(parseExecQuery(new URLSearchParams('command=ls'))).toEqual({ error: 'you must specify at least 1 of stdin, stdout, stderr' });
    // a terminal merges stderr into stdout
    expect(parseExecQuery(new URLSearchParams('command=sh&stdin=1&stdout=1&stderr=1&tty=1'))).toMatchObject({ stderr: false, tty: true });
  });

  it('negotiates v5 or v4 in the client\'s order and nothing else', () => {
    expect(negotiateProtocol(offeredProtocols('v5.channel.k8s.io, v4.channel.k8s.io'))).toBe(PROTOCOL_V5);
    expect(negotiateProtocol(offeredProtocols('v4.channel.k8s.io,v5.channel.k8s.io'))).toBe(PROTOCOL_V4);
    expect(negotiateProtocol(offeredProtocols('channel.k8s.io, base64.channel.k8s.io'))).toBeUndefined();
    expect(negotiateProtocol(offeredProtocols(undefined))).toBeUndefined();
  });

  it('reads resize messages', () => {
    expect(parseResize(Buffer.from('{"Width":120,"Height":40}'))).toEqual({ cols: 120, rows: 40 });
    expect(parseResize(Buffer.from('{"Width":-1,"Height":40}'))).toBeUndefined();
    expect(parseResize(Buffer.from('{"width":1,"height":2}'))).toBeUndefined();
    expect(parseResize(Buffer.from('nope'))).toBeUndefined();
  });

  it('writes the kubelet\'s Status for an exit and reads it back', () => {
    const ok = computeExitStatus(['true'], { exitCode: 0 });
    expect(JSON.stringify(ok)).toBe('{"metadata":{},"status":"Success"}');
    const bad = computeExitStatus(['sh', '-c', 'exit 3'], { exitCode: 3 });
    expect(bad).toEqual({
      metadata: {},
      status: 'Failure',
      message: 'command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });
    expect(exitCodeOfStatus(ok)).toEqual({ exitCode: 0 });
    expect(exitCodeOfStatus(bad)).toEqual({ exitCode: 3 });
    // killed by a signal: the shell's 128+N
    expect(exitCodeOfStatus(computeExitStatus(['sleep'], { exitCode: -1, signal: 'SIGKILL' }))).toEqual({ exitCode: 137 });
    expect(exitCodeOfStatus(computeExitStatus(['sleep'], { exitCode: 137, signal: 'SIGKILL' }))).toEqual({ exitCode: 137 });
    const err = computeErrorStatus(new NodeletError('Internal', 'ERR_EXEC_START', 'cannot exec "nope": ENOENT'));
    expect(err).toMatchObject({ status: 'Failure', reason: 'InternalError', code: 500, message: 'Internal error occurred: cannot exec "nope": ENOENT' });
    expect(exitCodeOfStatus(err)).toEqual({ error: err });
  });

  it('decides the TTY like kubectl and builds the request', () => {
    expect(computeTtyMode({ stdin: true, tty: true }, true)).toEqual({ tty: true, warn: false });
    expect(computeTtyMode({ stdin: true, tty: true }, false)).toEqual({ tty: false, warn: true });
    expect(computeTtyMode({ stdin: false, tty: true }, true)).toEqual({ tty: false, warn: false });
    const o = { socket: '/x', namespace: 'n s', pod: 'p', container: 'c', command: ['sh', '-c', 'a&b'], stdin: true, tty: true };
    expect(execPath(o, true)).toBe('/api/v1/namespaces/n%20s/pods/p/exec?command=sh&command=-c&command=a%26b&container=c&stdin=true&stdout=true&tty=true');
    expect(execPath({ ...o, stdin: false }, false)).toBe('/api/v1/namespaces/n%20s/pods/p/exec?command=sh&command=-c&command=a%26b&container=c&stdout=true&stderr=true');
  });
});

// ------------------------------------------------------------ server + fake runtime

interface FakeExec {
  argv: string[];
  opts: ExecStreamOptions;
  session: FakeSession;
}

/** A fake ExecSession: `cat` (stdin → stdout) that exits with `code` once stdin ends or it is killed. */
class FakeSession implements ExecSession {
  readonly stdin: PassThrough | null;
  readonly stdout = new PassThrough();
  readonly stderr: PassThrough | null;
  readonly resizes: [number, number][] = [];
  killed = false;
  readonly exit: Promise<{ exitCode: number; signal?: string }>;
  private finish!: (r: { exitCode: number; signal?: string }) => void;
  constructor(opts: ExecStreamOptions, private readonly code = 0) {
    this.stdin = opts.stdin ? new PassThrough() : null;
    this.stderr = opts.tty ? null : new PassThrough();
    this.exit = new Promise((r) => (this.finish = r));
    if (this.stdin) {
      this.stdin.on('data', (d: Buffer) => this.stdout.write(d));
      this.stdin.on('end', () => this.end({ exitCode: this.code }));
    }
  }
  end(r: { exitCode: number; signal?: string }): void {
    this.stdout.end();
    this.stderr?.end();
    this.stdout.once('end', () => this.finish(r));
    this.stdout.resume();
  }
  resize(cols: number, rows: number): void {
    this.resizes.push([cols, rows]);
  }
  kill(): void {
    this.killed = true;
    this.end({ exitCode: 137, signal: 'SIGKILL' });
  }
}

let dir: string | undefined;
let server: ApiServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

type ExecImpl = (argv: string[], opts: ExecStreamOptions) => Promise<FakeSession>;

async function startServer(impl?: ExecImpl, state: 'running' | 'exited' = 'running') {
  dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'nodelet-test-'));
  const socket = path.join(dir, 'api.sock');
  const execs: FakeExec[] = [];
  const pod = { metadata: { name: 'p1', namespace: 'default', uid: 'u1' }, spec: { containers: [{ name: 'c' }, { name: 'side' }] } };
  const agent = {
    findPod: (ns: string, name: string) => (ns === 'default' && name === 'p1' ? { pod, status: {}, resourceVersion: 1 } : undefined),
    podContainers: async () => [
      { id: 'cid-c', name: 'c', attempt: 0, state, createdAt: '1' },
      { id: 'cid-side', name: 'side', attempt: 0, state: 'running', createdAt: '1' },
    ],
    runtime: {
      async exec(id: string, argv: string[], opts: ExecStreamOptions = {}) {
        const session = impl ? await impl(argv, opts) : new FakeSession(opts, argv[0] === 'fail3' ? 3 : 0);
        execs.push({ argv: [id, ...argv], opts, session });
        return session;
      },
    },
  } as unknown as NodeAgent;
  server = new ApiServer({ agent, socket });
  await server.listen();
  return { socket, execs };
}

interface Conn {
  ws: WebSocket;
  frames: Buffer[];
  opened: Promise<void>;
  closed: Promise<number>;
  rejected: Promise<{ status: number; body: any }>;
}

function connect(socket: string, query: string, protocols: string[] = [PROTOCOL_V5, PROTOCOL_V4], p = '/api/v1/namespaces/default/pods/p1/exec'): Conn {
  const ws = new WebSocket(`ws://localhost${p}?${query}`, protocols, { createConnection: () => net.connect(socket) });
  const frames: Buffer[] = [];
  ws.on('message', (d: Buffer) => frames.push(d));
  ws.on('error', () => undefined);
  const opened = new Promise<void>((r) => ws.once('open', () => r()));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  const rejected = new Promise<{ status: number; body: any }>((resolve) =>
    ws.once('unexpected-response', (_req, res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(b) });
        ws.terminate();
      });
    }),
  );
  return { ws, frames, opened, closed, rejected };
}

const send = (ws: WebSocket, ch: number, data: string | Buffer = '') => ws.send(Buffer.concat([Buffer.from([ch]), Buffer.from(data)]));
const channel = (frames: Buffer[], ch: number) => Buffer.concat(frames.filter((f) => f[0] === ch).map((f) => f.subarray(1))).toString();
const statusOf = (frames: Buffer[]): MetaStatus => JSON.parse(channel(frames, 3));

describe('streaming exec endpoint (fake runtime)', () => {
  it('relays stdin to the command and its output back, ends stdin on the v5 close signal, reports the exit', async () => {
    const { socket, execs } = await startServer();
    const c = connect(socket, 'command=cat&stdin=true&stdout=true&stderr=true');
    await c.opened;
    expect(c.ws.protocol).toBe(PROTOCOL_V5);
    send(c.ws, 0, 'one\n');
    send(c.ws, 0, 'two\n');
    send(c.ws, 255, Buffer.from([0])); // stdin EOF
    expect(await c.closed).toBe(1000);
    expect(channel(c.frames, 1)).toBe('one\ntwo\n');
    expect(statusOf(c.frames)).toEqual({ metadata: {}, status: 'Success' });
    // the status is the last frame
    expect(c.frames.at(-1)![0]).toBe(3);
    expect(execs).toHaveLength(1);
    expect(execs[0]!.argv).toEqual(['cid-c', 'cat']);
    expect(execs[0]!.opts).toEqual({ tty: false, stdin: true });
  });

  it('reports a non-zero exit as NonZeroExitCode with the code as a cause; goes to the named container', async () => {
    const { socket, execs } = await startServer();
    const c = connect(socket, 'command=fail3&container=side&stdin=1&stdout=1');
    await c.opened;
    send(c.ws, 255, Buffer.from([0]));
    await c.closed;
    expect(statusOf(c.frames)).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
    expect(execs[0]!.argv[0]).toBe('cid-side');
  });

  it('with a TTY starts the command at the first resize, passes later resizes on', async () => {
    const { socket, execs } = await startServer();
    const c = connect(socket, 'command=sh&stdin=1&stdout=1&stderr=1&tty=1');
    await c.opened;
    send(c.ws, 4, '{"Width":100,"Height":30}');
    await waitFor(() => execs.length === 1);
    expect(execs[0]!.opts).toEqual({ tty: true, stdin: true, env: ['TERM=xterm'], size: { cols: 100, rows: 30 } });
    expect(execs[0]!.session.stderr).toBeNull();
    send(c.ws, 4, '{"Width":80,"Height":24}');
    await waitFor(() => execs[0]!.session.resizes.length === 1);
    expect(execs[0]!.session.resizes).toEqual([[80, 24]]);
    send(c.ws, 255, Buffer.from([0]));
    await c.closed;
    expect(statusOf(c.frames).status).toBe('Success');
  });

  it('a TTY client that never sends a size still gets its command (after the wait)', async () => {
    const { socket, execs } = await startServer();
    const c = connect(socket, 'command=sh&stdout=1&tty=1');
    await c.opened;
    await waitFor(() => execs.length === 1, 5000);
    expect(execs[0]!.opts).toEqual({ tty: true, stdin: false, env: ['TERM=xterm'] });
    execs[0]!.session.end({ exitCode: 0 });
    await c.closed;
  });

  it('kills the command when the client goes away', async () => {
    const { socket, execs } = await startServer();
    const c = connect(socket, 'command=cat&stdin=1&stdout=1');
    await c.opened;
    send(c.ws, 0, 'x');
    await waitFor(() => channel(c.frames, 1) === 'x');
    c.ws.terminate();
    await waitFor(() => execs[0]!.session.killed);
  });

  it('a command that cannot start is a Failure Status after the upgrade', async () => {
    const { socket } = await startServer(async () => {
      throw new NodeletError('Internal', 'ERR_EXEC_START', 'cannot exec "nope": no such file or directory');
    });
    const c = connect(socket, 'command=nope&stdout=1');
    await c.opened;
    await c.closed;
    expect(statusOf(c.frames)).toMatchObject({ status: 'Failure', reason: 'InternalError', message: 'Internal error occurred: cannot exec "nope": no such file or directory' });
  });

  it('rejects before the upgrade with an HTTP Status: pod, container, state, query, subprotocol', async () => {
    const { socket, execs } = await startServer(undefined, 'exited');
    const cases: [string, string[], string, number, RegExp][] = [
      ['/api/v1/namespaces/default/pods/nope/exec', [PROTOCOL_V5], 'command=ls&stdout=1', 404, /pods "nope" not found/],
      ['/api/v1/namespaces/default/pods/p1/exec', [PROTOCOL_V5], 'command=ls&stdout=1&container=zz', 400, /container zz is not valid for pod p1/],
      ['/api/v1/namespaces/default/pods/p1/exec', [PROTOCOL_V5], 'command=ls&stdout=1', 400, /container c is not running in pod p1/],
      ['/api/v1/namespaces/default/pods/p1/exec', [PROTOCOL_V5], 'stdout=1&container=side', 400, /at least 1 command/],
      ['/api/v1/namespaces/default/pods/p1/exec', ['channel.k8s.io'], 'command=ls&stdout=1&container=side', 400, /requested protocol\(s\) are not supported/],
      ['/api/v1/namespaces/default/pods/p1/log', [PROTOCOL_V5], 'command=ls&stdout=1', 404, /could not find the requested resource/],
    ];
    for (const [p, protos, q, code, re] of cases) {
      const c = connect(socket, q, protos, p);
      const r = await c.rejected;
      expect(r.status, p + q).toBe(code);
      expect(r.body).toMatchObject({ kind: 'Status', status: 'Failure', code });
      expect(r.body.message).toMatch(re);
    }
    expect(execs).toHaveLength(0);
  });
});

// ------------------------------------------------------------ the CLI side

class FakeIO implements ExecIO {
  stdin: Readable;
  stdout = new PassThrough();
  stderr = new PassThrough();
  raw: boolean[] = [];
  size = { cols: 132, rows: 43 };
  winch = new Set<() => void>();
  sig = new Set<(s: NodeJS.Signals) => void>();
  out = '';
  err = '';
  constructor(input: Readable, public stdinIsTTY = false) {
    this.stdin = input;
    this.stdout.on('data', (d) => (this.out += d));
    this.stderr.on('data', (d) => (this.err += d));
  }
  setRawMode(on: boolean) { this.raw.push(on); }
  terminalSize() { return this.size; }
  onWindowChange(cb: () => void) { this.winch.add(cb); return () => void this.winch.delete(cb); }
  onSignal(cb: (s: NodeJS.Signals) => void) { this.sig.add(cb); return () => void this.sig.delete(cb); }
}

describe('nodelet exec client (runExec) against the endpoint', () => {
  const opts = (socket: string, o: Partial<Parameters<typeof runExec>[0]> = {}) => ({ socket, namespace: 'default', pod: 'p1', command: ['cat'], stdin: true, tty: false, ...o });

  it('-i streams stdin, sends EOF at its end and returns the remote exit code', async () => {
    const { socket, execs } = await startServer();
    const io = new FakeIO(Readable.from([Buffer.from('a\n'), Buffer.from('b\n')]));
    expect(await runExec(opts(socket), io)).toBe(0);
    expect(io.out).toBe('a\nb\n');
    const io3 = new FakeIO(Readable.from([Buffer.from('z')]));
    expect(await runExec(opts(socket, { command: ['fail3'] }), io3)).toBe(3);
    expect(execs.map((e) => e.opts)).toEqual([{ tty: false, stdin: true }, { tty: false, stdin: true }]);
    expect(io.raw).toEqual([]);
  });

  it('-t without a terminal warns like kubectl and runs without one', async () => {
    const { socket, execs } = await startServer();
    const io = new FakeIO(Readable.from([]));
    expect(await runExec(opts(socket, { tty: true }), io)).toBe(0);
    expect(io.err).toBe(NO_TTY_WARNING + '\n');
    expect(execs[0]!.opts.tty).toBe(false);
  });

  it('-it: raw mode, the size first and on window changes, terminal restored; a signal kills the remote command', async () => {
    const { socket, execs } = await startServer();
    const input = new PassThrough();
    const io = new FakeIO(input, true);
    const done = runExec(opts(socket, { tty: true, command: ['sh'] }), io);
    await waitFor(() => execs.length === 1);
    expect(execs[0]!.opts).toEqual({ tty: true, stdin: true, env: ['TERM=xterm'], size: { cols: 132, rows: 43 } });
    expect(io.raw).toEqual([true]);
    io.size = { cols: 90, rows: 20 };
    for (const cb of io.winch) cb();
    await waitFor(() => execs[0]!.session.resizes.length === 1);
    expect(execs[0]!.session.resizes).toEqual([[90, 20]]);
    input.write('\x03');
    await waitFor(() => io.out === '\x03'); // Ctrl-C is data for the remote terminal
    for (const cb of io.sig) cb('SIGTERM');
    expect(await done).toBe(128 + 15);
    await waitFor(() => execs[0]!.session.killed);
    expect(io.raw).toEqual([true, false]);
    expect(io.winch.size).toBe(0);
    expect(io.sig.size).toBe(0);
  });

  it('API errors reject with the server\'s message, after restoring nothing it did not change', async () => {
    const { socket } = await startServer();
    const io = new FakeIO(Readable.from([]), true);
    await expect(runExec(opts(socket, { pod: 'nope', tty: true }), io)).rejects.toThrow(/Error from server \(NotFound\): pods "nope" not found/);
    expect(io.raw).toEqual([]);
    await expect(runExec(opts(path.join(dir!, 'missing.sock')), new FakeIO(Readable.from([])))).rejects.toMatchObject({ code: 'ERR_DAEMON_UNREACHABLE' });
  });

  it('a start failure after the upgrade rejects and restores the terminal', async () => {
    const { socket } = await startServer(async () => {
      throw new NodeletError('Internal', 'ERR_EXEC_START', 'cannot exec "nope"');
    });
    const io = new FakeIO(new PassThrough(), true);
    await expect(runExec(opts(socket, { tty: true, command: ['nope'] }), io)).rejects.toThrow(/Error from server \(InternalError\): Internal error occurred: cannot exec "nope"/);
    expect(io.raw).toEqual([true, false]);
  });
});

async function waitFor(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
