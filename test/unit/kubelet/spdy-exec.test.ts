// kubelet's exec/attach over SPDY/3.1 (src/kubelet/spdy-exec.ts): the handshake
// rules, then the server side of a connection driven by a client session that
// behaves as client-go's SPDY executor (the API server's StreamTranslator: one
// stream per channel, each waited for; stdin's end = FIN; resizes as JSON
// values; the status read to EOF on the error stream; then it resets its
// streams and closes), against a fake start function. The real runtime,
// kube-apiserver and kubectl run in test/e2e/kubelet-spdy-exec.test.ts.
import { describe, expect, it } from 'vitest';
import http from 'node:http';
import net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { computeErrorStatus, computeExitStatus, type ExecStreamRequest, type StartExec } from '../../../src/api/exec-stream.js';
import { NodeletError } from '../../../src/errors.js';
import { parseKubeletRoute } from '../../../src/kubelet/attributes.js';
import {
  closeSpdyExecs, expectedStreams, JsonValueSplitter, negotiateSpdyExec, protocolVersion, serveSpdyExec, SPDY_EXEC_PROTOCOLS, startSpdyExecSession,
  statusPayload, type SpdyExecProtocol, type SpdyExecSessionOptions,
} from '../../../src/kubelet/spdy-exec.js';
import { duplexTransport, RstStatus, SpdySession, type SpdyStream } from '../../../src/kubelet/spdy.js';
import { getLogger } from '../../../src/log.js';
import type { ExecSession, ExecStreamOptions } from '../../../src/runtime/types.js';

const log = getLogger('spdy-exec-test');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const req = (o: Partial<ExecStreamRequest> = {}): ExecStreamRequest => ({ command: ['sh', '-c', 'x'], stdin: false, stdout: true, stderr: true, tty: false, ...o });

describe('SPDY exec handshake', () => {
  const spdy = { connection: 'Upgrade', upgrade: 'SPDY/3.1' };

  it('answers the first protocol of the client\'s list that kubelet serves over SPDY: v4 for client-go\'s v5,v4,…', () => {
    expect(SPDY_EXEC_PROTOCOLS).toEqual(['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']);
    expect(negotiateSpdyExec({ ...spdy, 'x-stream-protocol-version': 'v5.channel.k8s.io, v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io' })).toEqual({ protocol: 'v4.channel.k8s.io' });
    expect(negotiateSpdyExec({ ...spdy, 'x-stream-protocol-version': ['v2.channel.k8s.io', 'v4.channel.k8s.io'] })).toEqual({ protocol: 'v2.channel.k8s.io' });
    expect(negotiateSpdyExec({ ...spdy, 'x-stream-protocol-version': 'channel.k8s.io' })).toEqual({ protocol: 'channel.k8s.io' });
    expect([...SPDY_EXEC_PROTOCOLS].map(protocolVersion)).toEqual([4, 3, 2, 1]);
  });

  it('refuses as httpstream.Handshake does: no header 400, an empty one 400, nothing in common 403 with the accepted list; not SPDY 400', () => {
    expect(negotiateSpdyExec({ host: 'x', ...spdy })).toEqual({ code: 400, message: 'unable to upgrade: header X-Stream-Protocol-Version does not exist in request with 2 headers\n' });
    expect(negotiateSpdyExec({ ...spdy, 'x-stream-protocol-version': ' , ' })).toMatchObject({ code: 400, message: expect.stringContaining('but no valid protocols') });
    expect(negotiateSpdyExec({ ...spdy, 'x-stream-protocol-version': 'v5.channel.k8s.io,portforward.k8s.io' })).toEqual({
      code: 403,
      message: 'unable to upgrade: unable to negotiate protocol: client supports [v5.channel.k8s.io portforward.k8s.io], server accepts [v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]\n',
      headers: SPDY_EXEC_PROTOCOLS.map((p) => ['X-Accepted-Stream-Protocol-Versions', p]),
    });
    expect(negotiateSpdyExec({ connection: 'Upgrade', upgrade: 'h2c', 'x-stream-protocol-version': 'v4.channel.k8s.io' })).toMatchObject({ code: 400, message: expect.stringContaining('missing upgrade headers') });
  });

  it('expects error + the query\'s streams (+ resize with a tty, v3 on); the status as v4 JSON, v2/v3 a failure\'s text, v1 nothing', () => {
    expect([...expectedStreams(req(), 4)]).toEqual(['error', 'stdout', 'stderr']);
    expect([...expectedStreams(req({ stdin: true, tty: true }), 4)]).toEqual(['error', 'stdin', 'stdout', 'resize']);
    expect([...expectedStreams(req({ stdin: true, tty: true }), 2)]).toEqual(['error', 'stdin', 'stdout']);
    const failed = computeExitStatus(['false'], { exitCode: 1 });
    expect(JSON.parse(statusPayload(4, failed)!.toString())).toEqual(failed);
    expect(JSON.parse(statusPayload(4, { metadata: {}, status: 'Success' })!.toString())).toEqual({ metadata: {}, status: 'Success' });
    expect(statusPayload(3, failed)!.toString()).toBe('command terminated with non-zero exit code: error executing command [false], exit code 1');
    expect(statusPayload(2, { metadata: {}, status: 'Success' })).toBeUndefined();
    expect(statusPayload(1, failed)).toBeUndefined();
  });

  it('splits resize messages as Go\'s json.Decoder reads them: across frames, several in one, with or without newlines', () => {
    const s = new JsonValueSplitter();
    expect(s.push('{"Width":10')).toEqual([]);
    expect(s.push('0,"Height":30}\n{"Wid')).toEqual(['{"Width":100,"Height":30}']);
    expect(s.push('th":1,"Height":2}{"Width":3,"Height":4,"x":"}{"}\n')).toEqual(['{"Width":1,"Height":2}', '{"Width":3,"Height":4,"x":"}{"}']);
    expect(() => s.push('[1]')).toThrow(/not a JSON object/);
  });

  it('the routes are the WebSocket path\'s', () => {
    expect(parseKubeletRoute('/exec/default/web/c')).toMatchObject({ kind: 'exec', namespace: 'default', pod: 'web', container: 'c' });
    expect(parseKubeletRoute('/attach/default/web/c')).toMatchObject({ kind: 'exec', attach: true });
  });
});

// ------------------------------------------------------------ a connection

interface Fake extends ExecSession {
  opts: ExecStreamOptions;
  resizes: [number, number][];
  killed: boolean;
  stdinText: Promise<string>;
  end(exitCode: number, signal?: string): void;
}

/** A start function whose sessions the test drives; `behave` runs on each new one. */
function fakeStart(behave: (f: Fake) => void = () => undefined): { start: StartExec; sessions: Fake[] } {
  const sessions: Fake[] = [];
  const start: StartExec = async (opts) => {
    const stdin = opts.stdin ? new PassThrough() : null;
    const stdout = new PassThrough();
    const stderr = opts.tty ? null : new PassThrough();
    let resolve!: (x: { exitCode: number; signal?: string }) => void;
    const exit = new Promise<{ exitCode: number; signal?: string }>((r) => (resolve = r));
    let ended = false;
    const f: Fake = {
      opts, stdin, stdout, stderr, exit, resizes: [], killed: false,
      stdinText: stdin
        ? new Promise((r) => {
            let b = '';
            stdin.on('data', (d: Buffer) => (b += d));
            stdin.once('end', () => r(b));
          })
        : Promise.resolve(''),
      resize: (c, r) => void f.resizes.push([c, r]),
      kill() {
        f.killed = true;
        f.end(137, 'SIGKILL');
      },
      end(exitCode, signal) {
        if (ended) return;
        ended = true;
        stdout.end();
        stderr?.end();
        resolve({ exitCode, ...(signal ? { signal } : {}) });
      },
    };
    sessions.push(f);
    behave(f);
    return f;
  };
  return { start, sessions };
}

async function socketPair(): Promise<{ c: net.Socket; s: net.Socket; close(): Promise<void> }> {
  const listening = net.createServer();
  const accepted = new Promise<net.Socket>((r) => listening.once('connection', r));
  await new Promise<void>((r) => listening.listen(0, '127.0.0.1', () => r()));
  const c = net.connect((listening.address() as net.AddressInfo).port, '127.0.0.1');
  const s = await accepted;
  return {
    c, s,
    async close() {
      c.destroy();
      s.destroy();
      await new Promise<void>((r) => listening.close(() => r()));
    },
  };
}

async function connection(protocol: SpdyExecProtocol, r: ExecStreamRequest, start: StartExec, o: SpdyExecSessionOptions = {}) {
  const p = await socketPair();
  const server = startSpdyExecSession(duplexTransport(p.s), protocol, r, start, { log, ...o });
  const client = new SpdySession(duplexTransport(p.c), { server: false, log });
  const serverClosed = new Promise<void>((res) => server.once('close', () => res()));
  return {
    client, server, serverClosed,
    async close() {
      client.close();
      await p.close();
    },
  };
}

interface Read {
  text: Promise<string>;
  /** 'fin' (the server's end), or 'reset' */
  how: Promise<'fin' | 'reset'>;
}

const readers = new WeakMap<SpdyStream, Read>();

/** What the server writes on a stream, to its FIN (or reset); recorded from the stream's opening (openStreams). */
function read(s: SpdyStream): Read {
  return readers.get(s) ?? record(s);
}

function record(s: SpdyStream): Read {
  let b = '';
  s.on('data', (d: Buffer) => (b += d));
  const how = new Promise<'fin' | 'reset'>((r) => {
    s.once('end', () => r('fin'));
    s.once('reset', () => r('reset'));
  });
  const r: Read = { how, text: how.then(() => b) };
  readers.set(s, r);
  return r;
}

async function until(cond: () => unknown, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** client-go's createStreams: one stream at a time, each waited for (CreateStream waits for the reply). */
async function openStreams(client: SpdySession, types: string[]): Promise<Record<string, SpdyStream>> {
  const out: Record<string, SpdyStream> = {};
  for (const t of types) {
    const s = client.openStream({ streamType: t });
    record(s);
    await new Promise((r) => s.once('reply', r));
    out[t] = s;
  }
  return out;
}

/** client-go at the end: reset its streams, GOAWAY, close. */
function clientDone(client: SpdySession, streams: Record<string, SpdyStream>): void {
  for (const s of Object.values(streams)) s.reset();
  client.close();
}

describe('an exec over SPDY (client-go\'s side, a fake command)', () => {
  it('v4: the command starts once error/stdout/stderr are there; output on stdout and stderr; exit 3 as the Status JSON; every stream ends', async () => {
    const { start, sessions } = fakeStart((f) => {
      f.stdout.write('out\n');
      f.stderr!.write('err\n');
      setTimeout(() => f.end(3), 20);
    });
    const c = await connection('v4.channel.k8s.io', req(), start);
    try {
      const s = await openStreams(c.client, ['error']);
      await sleep(50);
      expect(sessions).toHaveLength(0); // still waiting for stdout and stderr
      Object.assign(s, await openStreams(c.client, ['stdout', 'stderr']));
      const [err, out, stderr] = [read(s.error!), read(s.stdout!), read(s.stderr!)];
      expect(await out.text).toBe('out\n');
      expect(await stderr.text).toBe('err\n');
      expect(await out.how).toBe('fin');
      const status = JSON.parse(await err.text);
      expect(status).toEqual(computeExitStatus(['sh', '-c', 'x'], { exitCode: 3 }));
      expect(status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '3' }] } });
      expect(sessions[0]!.opts).toEqual({ tty: false, stdin: false });
      expect(c.server.closed).toBe(false); // the server waits for the client to close
      clientDone(c.client, s);
      await c.serverClosed;
      expect(sessions[0]!.killed).toBe(false);
    } finally {
      await c.close();
    }
  });

  it('stdin: bytes sent before the command starts are kept; its FIN is the command\'s EOF; then Success', async () => {
    const { start, sessions } = fakeStart((f) => {
      void f.stdinText.then((t) => {
        f.stdout.write(t.toUpperCase());
        f.end(0);
      });
    });
    const c = await connection('v4.channel.k8s.io', req({ stdin: true, stderr: false }), start);
    try {
      const s = await openStreams(c.client, ['error', 'stdin']);
      s.stdin!.write(Buffer.from('early '));
      Object.assign(s, await openStreams(c.client, ['stdout']));
      const [err, out] = [read(s.error!), read(s.stdout!)];
      s.stdin!.write(Buffer.from('and late'));
      await sleep(30);
      s.stdin!.end();
      expect(await out.text).toBe('EARLY AND LATE');
      expect(JSON.parse(await err.text)).toEqual({ metadata: {}, status: 'Success' });
      expect(sessions[0]!.opts).toEqual({ tty: false, stdin: true });
      // the server closed its half of stdin too
      expect(s.stdin!.remoteEnded).toBe(true);
      clientDone(c.client, s);
      await c.serverClosed;
    } finally {
      await c.close();
    }
  });

  it('stdin sent and ended before the last stream is open (a short `exec -i` through the API server): all of it, then EOF', async () => {
    const { start, sessions } = fakeStart((f) => {
      void f.stdinText.then((t) => {
        f.stdout.write(`<${t}>`);
        f.end(0);
      });
    });
    const c = await connection('v4.channel.k8s.io', req({ stdin: true }), start);
    try {
      const s = await openStreams(c.client, ['error', 'stdin']);
      s.stdin!.write(Buffer.from('one '));
      s.stdin!.write(Buffer.from('two'));
      s.stdin!.end();
      await sleep(30);
      Object.assign(s, await openStreams(c.client, ['stdout', 'stderr']));
      expect(await read(s.stdout!).text).toBe('<one two>');
      expect(JSON.parse(await read(s.error!).text)).toMatchObject({ status: 'Success' });
      expect(sessions).toHaveLength(1);
      clientDone(c.client, s);
    } finally {
      await c.close();
    }
  });

  it('back-pressure: stdin the command does not read pauses the connection; its exit resumes it (the client\'s close is seen)', async () => {
    let exited!: () => void;
    const stdin = new Writable({ highWaterMark: 1024, write: () => undefined }); // never done: the pipe stays full
    const start: StartExec = async () => {
      const stdout = new PassThrough();
      const exit = new Promise<{ exitCode: number }>((r) => (exited = () => {
        stdin.destroy(); // the process is gone, and its end of the pipe
        stdout.end();
        r({ exitCode: 0 });
      }));
      return { stdin, stdout, stderr: null, exit, resize: () => undefined, kill: () => exited() };
    };
    const c = await connection('v4.channel.k8s.io', req({ stdin: true, stderr: false }), start);
    try {
      const s = await openStreams(c.client, ['error', 'stdin', 'stdout']);
      await sleep(30);
      s.stdin!.write(Buffer.alloc(256 << 10));
      await sleep(50);
      expect(stdin.writableLength).toBeGreaterThan(1024);
      exited();
      expect(JSON.parse(await read(s.error!).text)).toMatchObject({ status: 'Success' });
      clientDone(c.client, s);
      await c.serverClosed; // read despite the pause
    } finally {
      await c.close();
    }
  });

  it('tty: starts at the first size (split across frames), TERM=xterm; later sizes resize; stderr is not expected', async () => {
    const { start, sessions } = fakeStart();
    const c = await connection('v4.channel.k8s.io', req({ stdin: true, tty: true, stderr: false }), start);
    try {
      const s = await openStreams(c.client, ['error', 'stdin', 'stdout', 'resize']);
      const err = read(s.error!);
      s.resize!.write(Buffer.from('{"Width":100,'));
      await sleep(30);
      expect(sessions).toHaveLength(0);
      s.resize!.write(Buffer.from('"Height":30}\n'));
      await until(() => sessions.length, 'the command started');
      expect(sessions[0]!.opts).toEqual({ tty: true, stdin: true, env: ['TERM=xterm'], size: { cols: 100, rows: 30 } });
      s.resize!.write(Buffer.from('{"Width":120,"Height":40}\n{"Width":90,"Height":20}\n{"Width":"x"}\n'));
      await sleep(50);
      expect(sessions[0]!.resizes).toEqual([[120, 40], [90, 20]]);
      sessions[0]!.end(0);
      expect(JSON.parse(await err.text)).toMatchObject({ status: 'Success' });
      clientDone(c.client, s);
      await c.serverClosed;
    } finally {
      await c.close();
    }
  });

  it('tty without a size in time: starts without one', async () => {
    const { start, sessions } = fakeStart((f) => setTimeout(() => f.end(0), 10));
    const c = await connection('v4.channel.k8s.io', req({ tty: true, stderr: false }), start, { initialSizeWaitMs: 50 });
    try {
      const s = await openStreams(c.client, ['error', 'stdout', 'resize']);
      expect(JSON.parse(await read(s.error!).text)).toMatchObject({ status: 'Success' });
      expect(sessions[0]!.opts).toEqual({ tty: true, stdin: false, env: ['TERM=xterm'] });
      clientDone(c.client, s);
    } finally {
      await c.close();
    }
  });

  it('v3: a failure\'s message as text; v2: nothing on success; v1: the error stream is reset once the streams are there', async () => {
    const fail = fakeStart((f) => f.end(2));
    const v3 = await connection('v3.channel.k8s.io', req({ stderr: false }), fail.start);
    try {
      const s = await openStreams(v3.client, ['error', 'stdout']);
      expect(await read(s.error!).text).toBe('command terminated with non-zero exit code: error executing command [sh -c x], exit code 2');
      clientDone(v3.client, s);
    } finally {
      await v3.close();
    }
    const ok = fakeStart((f) => {
      f.stdout.write('fine');
      f.end(0);
    });
    const v2 = await connection('v2.channel.k8s.io', req({ stderr: false }), ok.start);
    try {
      const s = await openStreams(v2.client, ['error', 'stdout']);
      const [err, out] = [read(s.error!), read(s.stdout!)];
      expect(await out.text).toBe('fine');
      expect(await err.text).toBe('');
      expect(await err.how).toBe('fin');
      clientDone(v2.client, s);
    } finally {
      await v2.close();
    }
    const v1 = await connection('channel.k8s.io', req({ stderr: false }), ok.start);
    try {
      const s = await openStreams(v1.client, ['error', 'stdout']);
      const [err, out] = [read(s.error!), read(s.stdout!)];
      expect(await err.how).toBe('reset');
      expect(await out.text).toBe('fine');
      clientDone(v1.client, s);
    } finally {
      await v1.close();
    }
  });

  it('a command that cannot start: the runtime\'s error as a Status (NotFound 404)', async () => {
    const e = new NodeletError('NotFound', 'ERR_EXEC_NOT_FOUND', 'exec: "/no/such": not found');
    const c = await connection('v4.channel.k8s.io', req(), async () => {
      throw e;
    });
    try {
      const s = await openStreams(c.client, ['error', 'stdout', 'stderr']);
      const [err, out] = [read(s.error!), read(s.stdout!)];
      expect(JSON.parse(await err.text)).toEqual(computeErrorStatus(e));
      expect(await out.how).toBe('fin');
      clientDone(c.client, s);
    } finally {
      await c.close();
    }
  });

  it('attach: Success whatever the container\'s exit code', async () => {
    const { start } = fakeStart((f) => {
      f.stdout.write('bye');
      f.end(5);
    });
    const c = await connection('v4.channel.k8s.io', req({ command: [], stderr: false }), start, { attach: true });
    try {
      const s = await openStreams(c.client, ['error', 'stdout']);
      const [err, out] = [read(s.error!), read(s.stdout!)];
      expect(await out.text).toBe('bye');
      expect(JSON.parse(await err.text)).toEqual({ metadata: {}, status: 'Success' });
      clientDone(c.client, s);
    } finally {
      await c.close();
    }
  });

  it('the client going away kills the command', async () => {
    const { start, sessions } = fakeStart();
    const c = await connection('v4.channel.k8s.io', req(), start);
    try {
      await openStreams(c.client, ['error', 'stdout', 'stderr']);
      await until(() => sessions.length, 'the command started');
      await c.close();
      await c.serverClosed;
      expect(sessions[0]!.killed).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('streams of other kinds are answered and ignored; a stream after the handshake is refused; missing streams time out', async () => {
    const { start, sessions } = fakeStart();
    const c = await connection('v4.channel.k8s.io', req({ stderr: false }), start, { streamCreationTimeoutMs: 300 });
    try {
      const s = await openStreams(c.client, ['error', 'bogus', 'stdin', 'stdout']); // stdin not asked for: answered, ignored
      await until(() => sessions.length, 'the command started');
      expect(sessions[0]!.opts.stdin).toBe(false);
      const late = c.client.openStream({ streamType: 'stderr' });
      expect(await new Promise((r) => late.once('reset', r))).toBe(RstStatus.REFUSED_STREAM);
      sessions[0]!.end(0);
      expect(JSON.parse(await read(s.error!).text)).toMatchObject({ status: 'Success' });
      clientDone(c.client, s);
    } finally {
      await c.close();
    }
    const slow = await connection('v4.channel.k8s.io', req(), start, { streamCreationTimeoutMs: 150 });
    try {
      await openStreams(slow.client, ['error', 'stdout']); // no stderr
      const t0 = Date.now();
      await slow.serverClosed;
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(sessions).toHaveLength(1); // never started
    } finally {
      await slow.close();
    }
  });
});

describe('serveSpdyExec on an upgrade', () => {
  async function server(start: StartExec, r = req({ stderr: false })) {
    const owner = {};
    const srv = http.createServer((_q, res) => res.end());
    srv.on('upgrade', (q: http.IncomingMessage, socket: net.Socket, head: Buffer) => serveSpdyExec(q, socket, head, { request: r, start, owner }));
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
    const port = (srv.address() as net.AddressInfo).port;
    /** the raw response head, and the socket after it */
    const upgrade = (protocols: string) =>
      new Promise<{ head: string; socket: net.Socket }>((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.write(`POST /exec/default/web/c?command=sh&output=1 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n${protocols ? `X-Stream-Protocol-Version: ${protocols}\r\n` : ''}\r\n`);
        let b = Buffer.alloc(0);
        const onData = (d: Buffer) => {
          b = Buffer.concat([b, d]);
          const i = b.indexOf('\r\n\r\n');
          if (i < 0) return;
          socket.off('data', onData);
          socket.pause(); // until the caller reads on
          if (b.length > i + 4) socket.unshift(b.subarray(i + 4));
          resolve({ head: b.subarray(0, i + 4).toString(), socket });
        };
        socket.on('data', onData);
        socket.once('error', reject);
      });
    return { owner, upgrade, close: () => new Promise<void>((res) => srv.close(() => res())) };
  }

  it('101 with the protocol chosen, then the session on the socket; closeSpdyExecs ends it and kills the command', async () => {
    const { start, sessions } = fakeStart((f) => f.stdout.write('hi'));
    const s = await server(start);
    try {
      const { head, socket } = await s.upgrade('v5.channel.k8s.io,v4.channel.k8s.io,v3.channel.k8s.io,v2.channel.k8s.io,channel.k8s.io');
      expect(head).toBe('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n');
      const client = new SpdySession(duplexTransport(socket), { server: false, log });
      socket.resume();
      const st = await openStreams(client, ['error', 'stdout']);
      const [err, out] = [read(st.error!), read(st.stdout!)];
      await until(() => sessions.length, 'the command started');
      await sleep(50);
      const gone = new Promise<void>((r) => client.once('close', () => r()));
      closeSpdyExecs(s.owner);
      await gone;
      expect(sessions[0]!.killed).toBe(true);
      expect(await out.text).toBe('hi');
      // told, rather than an empty error stream (which client-go takes for success)
      expect(JSON.parse(await err.text)).toMatchObject({ status: 'Failure', reason: 'InternalError', code: 500, message: 'Internal error occurred: the kubelet server is stopping' });
      socket.destroy();
    } finally {
      await s.close();
    }
  });

  it('refusals as kubelet words them', async () => {
    const s = await server(fakeStart().start);
    try {
      const read = async (protocols: string) => {
        const { head, socket } = await s.upgrade(protocols);
        const body = await new Promise<string>((r) => {
          let b = '';
          socket.on('data', (d) => (b += d));
          socket.once('end', () => r(b));
          socket.resume();
        });
        socket.destroy();
        return head + body;
      };
      const none = await read('');
      expect(none).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      expect(none).toContain('\r\n\r\nunable to upgrade: header X-Stream-Protocol-Version does not exist in request with 2 headers\n');
      const other = await read('v5.channel.k8s.io');
      expect(other).toMatch(/^HTTP\/1\.1 403 Forbidden\r\n/);
      expect(other.match(/X-Accepted-Stream-Protocol-Versions: [^\r]+/g)).toEqual(SPDY_EXEC_PROTOCOLS.map((p) => `X-Accepted-Stream-Protocol-Versions: ${p}`));
      expect(other).toContain('client supports [v5.channel.k8s.io], server accepts [v4.channel.k8s.io v3.channel.k8s.io v2.channel.k8s.io channel.k8s.io]\n');
    } finally {
      await s.close();
    }
  });
});
