// The real KubeletServer (HTTPS on 127.0.0.1, its own serving certificate) with
// a fake agent and a fake exec (PassThrough streams), driven by a real `ws`
// client: exec over every WebSocket channel subprotocol kubelet speaks
// (v5, v4, v4.base64, channel.k8s.io, base64.channel.k8s.io, none).
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import https from 'node:https';
import http from 'node:http';
import WebSocket from 'ws';
import { encodeLogMessage, endInItsOwnWrite, negotiateLogProtocol } from '../../../src/kubelet/logs.js';
import { KubeletServer } from '../../../src/kubelet/server.js';
import type { DelegatedAuth } from '../../../src/kubelet/auth.js';
import type { NodeAgent } from '../../../src/agent/node-agent.js';
import type { ExecSession, ExecStreamOptions } from '../../../src/runtime/types.js';
import { decodeFrame, encodeFrame, negotiateKubeletProtocol, statusPayload } from '../../../src/api/exec-stream.js';

/** `cat`: stdin → stdout; "err:" lines of stdin also go to stderr; exits with `code` at stdin's end (or at once without stdin). */
class FakeSession implements ExecSession {
  readonly stdin: PassThrough | null;
  readonly stdout = new PassThrough();
  readonly stderr: PassThrough | null;
  readonly resizes: [number, number][] = [];
  readonly exit: Promise<{ exitCode: number; signal?: string }>;
  private finish!: (r: { exitCode: number; signal?: string }) => void;
  constructor(opts: ExecStreamOptions, private readonly code: number, output?: string) {
    this.stdin = opts.stdin ? new PassThrough() : null;
    this.stderr = opts.tty ? null : new PassThrough();
    this.exit = new Promise((r) => (this.finish = r));
    if (this.stdin) {
      this.stdin.on('data', (d: Buffer) => {
        this.stdout.write(d);
        if (d.toString().startsWith('err:')) this.stderr?.write(d);
      });
      this.stdin.on('end', () => this.end());
    } else {
      setImmediate(() => {
        if (output) this.stdout.write(output);
        this.end();
      });
    }
  }
  end(): void {
    this.stdout.end();
    this.stderr?.end();
    this.stderr?.resume();
    this.stdout.once('end', () => this.finish({ exitCode: this.code }));
  }
  resize(cols: number, rows: number): void {
    this.resizes.push([cols, rows]);
  }
  kill(): void {
    this.end();
  }
}

let dir: string | undefined;
let server: KubeletServer | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function startKubelet(timeouts?: { headersMs?: number; requestMs?: number }) {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nodelet-kubelet-ws-'));
  const sessions: FakeSession[] = [];
  const pod = { metadata: { name: 'p1', namespace: 'default', uid: 'u1' }, spec: { containers: [{ name: 'c' }] } };
  const agent = {
    findPod: (ns: string, name: string) => (ns === 'default' && name === 'p1' ? { pod, status: {}, resourceVersion: 1 } : undefined),
    podContainers: async () => [{ id: 'cid-c', name: 'c', attempt: 0, state: 'running', createdAt: '1', logPath: path.join(dir!, 'c.log') }],
    runtime: {
      containerStatus: async () => ({ id: 'cid-c', state: 'running' }),
      onContainerExit: () => () => undefined,
      async exec(_id: string, argv: string[], opts: ExecStreamOptions = {}) {
        const code = argv[0] === 'exit3' ? 3 : 0;
        const s = new FakeSession(opts, code, argv[0] === 'echo' ? `${argv.slice(1).join(' ')}\n` : undefined);
        sessions.push(s);
        return s;
      },
    },
  } as unknown as NodeAgent;
  const auth = { authenticate: async () => ({ user: { username: 'tester', groups: ['system:authenticated'] } }), authorize: async () => true } as unknown as DelegatedAuth;
  server = new KubeletServer({ agent, nodeName: 'n1', address: '127.0.0.1', port: 0, root: dir, names: ['127.0.0.1'], clientCA: Buffer.from(''), auth, timeouts });
  fs.writeFileSync(path.join(dir, 'c.log'), '2026-12-03T10:00:00.000000000Z stdout F container is alive\n2026-12-03T10:00:01.000000000Z stderr F second\n');
  await server.start();
  return { port: server.port, sessions };
}

interface Conn {
  ws: WebSocket;
  /** every message as received: [data, isBinary] */
  messages: [Buffer, boolean][];
  opened: Promise<string>;
  closed: Promise<number>;
  rejected: Promise<{ status: number; body: string }>;
}

function connect(port: number, query: string, protocols: string[]): Conn {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/exec/default/p1/c?${query}`, protocols, { rejectUnauthorized: false });
  const messages: [Buffer, boolean][] = [];
  ws.on('message', (d: Buffer, isBinary: boolean) => messages.push([d, isBinary]));
  ws.on('error', () => undefined);
  const opened = new Promise<string>((r) => ws.once('open', () => r(ws.protocol)));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  const rejected = new Promise<{ status: number; body: string }>((resolve) =>
    ws.once('unexpected-response', (_req, res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body: b });
        ws.terminate();
      });
    }),
  );
  return { ws, messages, opened, closed, rejected };
}

/** binary frames: [channel, payload] */
const binaryFrames = (c: Conn) => c.messages.map(([d, bin]) => (expect(bin).toBe(true), [d[0]!, d.subarray(1).toString()] as const));
/** base64 text frames: [channel digit, decoded payload] */
const base64Frames = (c: Conn) => c.messages.map(([d, bin]) => (expect(bin).toBe(false), [d[0]! - 48, Buffer.from(d.subarray(1).toString(), 'base64').toString()] as const));
const on = (frames: (readonly [number, string])[], ch: number) => frames.filter(([c]) => c === ch).map(([, d]) => d).join('');

describe('channel subprotocols (pure)', () => {
  it('negotiates in the client\'s order as wsstream does; none offered is channel.k8s.io\'s ""', () => {
    expect(negotiateKubeletProtocol(['base64.channel.k8s.io', 'channel.k8s.io'])).toBe('base64.channel.k8s.io');
    expect(negotiateKubeletProtocol(['x', 'v4.base64.channel.k8s.io'])).toBe('v4.base64.channel.k8s.io');
    expect(negotiateKubeletProtocol([])).toBe('');
    expect(negotiateKubeletProtocol(['v3.channel.k8s.io'])).toBeUndefined();
  });

  it('frames: binary channel byte, or an ASCII digit + base64; the status channel: JSON (v4, v5) or a failure\'s text (v1)', () => {
    expect(encodeFrame('channel.k8s.io', 1, 'hi')).toEqual(Buffer.from('\x01hi'));
    expect(encodeFrame('base64.channel.k8s.io', 2, 'hi')).toBe('2aGk=');
    expect(encodeFrame('v4.base64.channel.k8s.io', 1)).toBe('1');
    expect(decodeFrame('base64.channel.k8s.io', Buffer.from('0aGk='))).toEqual({ channel: 0, data: Buffer.from('hi') });
    expect(decodeFrame('v5.channel.k8s.io', Buffer.from([255, 0]))).toEqual({ channel: 255, data: Buffer.from([0]) });
    expect(decodeFrame('', Buffer.alloc(0))).toBeUndefined();
    const failure = { metadata: {}, status: 'Failure', message: 'boom' } as const;
    expect(statusPayload('channel.k8s.io', failure)).toBe('boom');
    expect(statusPayload('', { metadata: {}, status: 'Success' })).toBeUndefined();
    expect(statusPayload('v4.channel.k8s.io', { metadata: {}, status: 'Success' })).toBe('{"metadata":{},"status":"Success"}');
  });
});

describe('the kubelet server: exec over WebSocket subprotocols', () => {
  it('channel.k8s.io (what the conformance spec asks for): binary frames, an empty stdout message first, output, no status on success', async () => {
    const { port } = await startKubelet();
    const c = connect(port, 'command=echo&command=remote+execution+test&stdout=1&stderr=1', ['channel.k8s.io']);
    expect(await c.opened).toBe('channel.k8s.io');
    expect(await c.closed).toBe(1000);
    const f = binaryFrames(c);
    expect(f[0]).toEqual([1, '']);
    expect(on(f, 1)).toBe('remote execution test\n');
    expect(f.filter(([ch]) => ch === 3)).toEqual([]);
  });

  it('channel.k8s.io: a non-zero exit is the message as plain text on channel 3, not a Status JSON', async () => {
    const { port } = await startKubelet();
    const c = connect(port, 'command=exit3&stdout=1', ['channel.k8s.io']);
    await c.opened;
    await c.closed;
    expect(on(binaryFrames(c), 3)).toBe('command terminated with non-zero exit code: error executing command [exit3], exit code 3');
  });

  it('no subprotocol requested: accepted with channel.k8s.io semantics; stdin on channel 0, a resize on 4 with a tty', async () => {
    const { port, sessions } = await startKubelet();
    const c = connect(port, 'command=cat&stdin=1&stdout=1&stderr=1', []);
    expect(await c.opened).toBe('');
    c.ws.send(Buffer.from('\x00hello\n'));
    await expect.poll(() => on(binaryFrames(c), 1)).toBe('hello\n');
    sessions[0]!.stdin!.end(); // the command's EOF (v1 has no close channel)
    expect(await c.closed).toBe(1000);
    expect(binaryFrames(c).filter(([ch]) => ch === 3)).toEqual([]);

    const t = connect(port, 'command=cat&stdin=1&stdout=1&tty=1', []);
    await t.opened;
    t.ws.send(Buffer.from('\x04{"Width":100,"Height":30}'));
    await expect.poll(() => sessions.length).toBe(2);
    t.ws.send(Buffer.from('\x04{"Width":90,"Height":20}'));
    await expect.poll(() => sessions[1]!.resizes).toEqual([[90, 20]]);
    sessions[1]!.stdin!.end();
    await t.closed;
  });

  it('base64.channel.k8s.io: text frames with an ASCII channel digit and base64 payloads, both ways; failure text on 3', async () => {
    const { port, sessions } = await startKubelet();
    const c = connect(port, 'command=exit3&stdin=1&stdout=1&stderr=1', ['base64.channel.k8s.io']);
    expect(await c.opened).toBe('base64.channel.k8s.io');
    c.ws.send('0' + Buffer.from('err: x\n').toString('base64'));
    await expect.poll(() => on(base64Frames(c), 2)).toBe('err: x\n');
    expect(c.messages[0]![0].toString()).toBe('1'); // the empty stdout announcement
    sessions[0]!.stdin!.end();
    await c.closed;
    const f = base64Frames(c);
    expect(on(f, 1)).toBe('err: x\n');
    expect(on(f, 3)).toBe('command terminated with non-zero exit code: error executing command [exit3], exit code 3');
  });

  it('v4.channel.k8s.io: the Status JSON on channel 3 (Success; NonZeroExitCode with the ExitCode cause)', async () => {
    const { port } = await startKubelet();
    const ok = connect(port, 'command=echo&command=hi&stdout=1', ['v4.channel.k8s.io', 'channel.k8s.io']);
    expect(await ok.opened).toBe('v4.channel.k8s.io');
    await ok.closed;
    const f = binaryFrames(ok);
    expect(f[0]).toEqual([1, '']);
    expect(on(f, 1)).toBe('hi\n');
    expect(JSON.parse(on(f, 3))).toEqual({ metadata: {}, status: 'Success' });

    const bad = connect(port, 'command=exit3&stderr=1', ['v4.channel.k8s.io']);
    await bad.closed;
    const g = binaryFrames(bad);
    expect(g[0]).toEqual([2, '']); // no stdout: the announcement is on stderr
    expect(JSON.parse(on(g, 3))).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
  });

  it('v4.base64.channel.k8s.io: base64 text frames with the Status JSON', async () => {
    const { port } = await startKubelet();
    const c = connect(port, 'command=exit3&stdout=1', ['v4.base64.channel.k8s.io']);
    expect(await c.opened).toBe('v4.base64.channel.k8s.io');
    await c.closed;
    const s = JSON.parse(on(base64Frames(c), 3));
    expect(s).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
  });

  it('v5.channel.k8s.io: the close channel ends stdin; no announcement; Status JSON', async () => {
    const { port } = await startKubelet();
    const c = connect(port, 'command=cat&stdin=1&stdout=1', ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
    expect(await c.opened).toBe('v5.channel.k8s.io');
    c.ws.send(Buffer.from('\x00abc'));
    c.ws.send(Buffer.from([255, 0]));
    await c.closed;
    const f = binaryFrames(c);
    expect(f[0]).toEqual([1, 'abc']);
    expect(JSON.parse(on(f, 3))).toEqual({ metadata: {}, status: 'Success' });
  });

  it('offered subprotocols none of which it speaks: 400 naming what it supports', async () => {
    const { port } = await startKubelet();
    const c = connect(port, 'command=echo&stdout=1', ['v3.channel.k8s.io']);
    const r = await c.rejected;
    expect(r.status).toBe(400);
    expect(r.body).toContain('requested protocol(s) are not supported: [v3.channel.k8s.io]');
    expect(r.body).toContain('channel.k8s.io');
  });
});

function get(port: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    https.get(`https://127.0.0.1:${port}${p}`, { rejectUnauthorized: false }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: b }));
    }).on('error', reject);
  });
}

describe('the kubelet server: /containerLogs', () => {
  it('a plain GET: the log text, complete', async () => {
    const { port } = await startKubelet();
    expect(await get(port, '/containerLogs/default/p1/c')).toEqual({ status: 200, body: 'container is alive\nsecond\n' });
    expect(await get(port, '/containerLogs/default/p1/c?stream=Stdout')).toEqual({ status: 200, body: 'container is alive\n' });
    expect((await get(port, '/containerLogs/default/nope/c')).status).toBe(404);
  });

  it('endInItsOwnWrite: the response ends only after its writes are on the socket, in a later turn; the body is whole', async () => {
    const events: string[] = [];
    const srv = http.createServer((_req, res) => {
      const end = res.end.bind(res);
      res.end = ((...a: unknown[]) => (events.push('real end'), (end as (...x: unknown[]) => http.ServerResponse)(...a))) as typeof res.end;
      endInItsOwnWrite(res);
      res.writeHead(200, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' });
      res.write('one\n', () => events.push('write 1 flushed'));
      res.write(Buffer.from('two\n'));
      res.end('three\n');
      events.push('end called');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (srv.address() as { port: number }).port;
      const body = await new Promise<string>((resolve, reject) =>
        http.get(`http://127.0.0.1:${port}/`, (res) => {
          let b = '';
          res.on('data', (c) => (b += c));
          res.on('end', () => resolve(b));
        }).on('error', reject),
      );
      expect(body).toBe('one\ntwo\nthree\n');
      expect(events).toEqual(['end called', 'write 1 flushed', 'real end']);
    } finally {
      srv.close();
    }
  });
});

/** a WebSocket to /containerLogs: every message, the close code, or the refusal */
function logSocket(port: number, query: string, protocols: string[]) {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/containerLogs/default/p1/c${query}`, protocols, { rejectUnauthorized: false });
  const messages: [Buffer, boolean][] = [];
  ws.on('message', (d: Buffer, isBinary: boolean) => messages.push([d, isBinary]));
  ws.on('error', () => undefined);
  const opened = new Promise<string>((r) => ws.once('open', () => r(ws.protocol)));
  const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
  const rejected = new Promise<number>((r) => ws.once('unexpected-response', (_q, res) => (r(res.statusCode ?? 0), ws.terminate())));
  return { ws, messages, opened, closed, rejected };
}

describe('the kubelet server: /containerLogs over a WebSocket', () => {
  it('protocols as wsstream\'s reader: binary.k8s.io, base64.binary.k8s.io, none', () => {
    expect(negotiateLogProtocol(['base64.binary.k8s.io', 'binary.k8s.io'])).toBe('base64.binary.k8s.io');
    expect(negotiateLogProtocol([])).toBe('');
    expect(negotiateLogProtocol(['channel.k8s.io'])).toBeUndefined();
    expect(encodeLogMessage('base64.binary.k8s.io', Buffer.from('hi'))).toBe('aGk=');
    expect(encodeLogMessage('binary.k8s.io', Buffer.from('hi'))).toEqual(Buffer.from('hi'));
  });

  it('binary.k8s.io (the conformance spec\'s): an empty message, the log as binary messages, a normal close', async () => {
    const { port } = await startKubelet();
    const c = logSocket(port, '', ['binary.k8s.io']);
    expect(await c.opened).toBe('binary.k8s.io');
    expect(await c.closed).toBe(1000);
    expect(c.messages.every(([, bin]) => bin)).toBe(true);
    expect(c.messages[0]![0].length).toBe(0);
    expect(Buffer.concat(c.messages.map(([d]) => d)).toString()).toBe('container is alive\nsecond\n');
  });

  it('base64.binary.k8s.io: text messages of base64; none requested: binary; the query applies', async () => {
    const { port } = await startKubelet();
    const b = logSocket(port, '?stream=Stderr', ['base64.binary.k8s.io']);
    expect(await b.opened).toBe('base64.binary.k8s.io');
    await b.closed;
    expect(b.messages.every(([, bin]) => !bin)).toBe(true);
    expect(b.messages.map(([d]) => Buffer.from(d.toString(), 'base64').toString()).join('')).toBe('second\n');
    const n = logSocket(port, '?tailLines=1', []);
    expect(await n.opened).toBe('');
    await n.closed;
    expect(Buffer.concat(n.messages.map(([d]) => d)).toString()).toBe('second\n');
  });

  it('follow: lines appended later arrive; the client\'s close ends it', async () => {
    const { port } = await startKubelet();
    const c = logSocket(port, '?follow=true', ['binary.k8s.io']);
    await c.opened;
    const text = () => Buffer.concat(c.messages.map(([d]) => d)).toString();
    await expect.poll(text).toBe('container is alive\nsecond\n');
    fs.appendFileSync(path.join(dir!, 'c.log'), '2026-12-03T10:00:02.000000000Z stdout F third\n');
    await expect.poll(text, { timeout: 10_000 }).toBe('container is alive\nsecond\nthird\n');
    c.ws.close(1000);
    expect(await c.closed).toBe(1000);
  });

  it('refusals before the upgrade: an unknown subprotocol 400, an unknown pod 404, a bad query (limitBytes=0) 400', async () => {
    const { port } = await startKubelet();
    expect(await logSocket(port, '', ['channel.k8s.io']).rejected).toBe(400);
    const ws = new WebSocket(`wss://127.0.0.1:${port}/containerLogs/default/nope/c`, ['binary.k8s.io'], { rejectUnauthorized: false });
    ws.on('error', () => undefined);
    expect(await new Promise<number>((r) => ws.once('unexpected-response', (_q, res) => (r(res.statusCode ?? 0), ws.terminate())))).toBe(404);
    expect(await logSocket(port, '?limitBytes=0', ['binary.k8s.io']).rejected).toBe(400);
  });
});

describe('kubelet server socket bounds', () => {
  /** Sends `chunks` one every `everyMs` until the server closes; what it answered and how many chunks went out. */
  function trickle(sock: import('node:stream').Duplex, chunks: string[], everyMs: number): Promise<{ answer: string; sent: number }> {
    return new Promise((resolve) => {
      let answer = '';
      let i = 0;
      const timer = setInterval(() => {
        if (i < chunks.length && !sock.destroyed) sock.write(chunks[i++]!);
      }, everyMs);
      sock.on('data', (d: Buffer) => (answer += d.toString()));
      sock.on('error', () => undefined);
      sock.on('close', () => {
        clearInterval(timer);
        resolve({ answer, sent: i });
      });
    });
  }

  it('a client trickling its headers over TLS is cut off (408 or a bare close)', async () => {
    const { port } = await startKubelet({ headersMs: 300, requestMs: 600 });
    const tls = await import('node:tls');
    const sock = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    await new Promise((r) => sock.once('secureConnect', r));
    const header = 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(200) + '\r\n\r\n';
    const r = await trickle(sock, header.split(''), 20);
    expect(r.answer).toMatch(/^(HTTP\/1\.1 408[^]*)?$/);
    expect(r.sent).toBeLessThan(header.length);
  });

  it('a client that never starts the TLS handshake is disconnected', async () => {
    const { port } = await startKubelet({ headersMs: 300 });
    const net = await import('node:net');
    const sock = net.connect(port, '127.0.0.1');
    const r = await trickle(sock, [], 1000);
    expect(r.answer).toBe('');
  });
});
