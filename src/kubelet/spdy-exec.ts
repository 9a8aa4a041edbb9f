// kubelet's /exec and /attach over SPDY/3.1: what the v1.36 API server speaks to
// a node that does not declare ExtendWebSocketsToKubelet (its StreamTranslator
// ends kubectl's WebSocket and runs client-go's SPDY executor towards us), and
// what old clients speak directly. The server side of the remotecommand
// "httpstream" protocol as kubelet's CRI streaming server has it
// (k8s.io/cri-streaming remotecommand/httpstream.go, exec.go, attach.go):
//   - handshake: `Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version` offered in the
//     client's order, the first we serve answered in the 101. We serve what
//     kubelet's SPDY side serves, v4, v3, v2 and channel.k8s.io (v1); v5 is a
//     WebSocket protocol (its CLOSE signal is a WebSocket message): client-go
//     offers it over SPDY first but handles it exactly as v4, and kubelet does
//     not list it there, so the API server gets v4. Stdin's end is the stdin
//     stream's FIN in every version.
//   - the client opens one stream per channel, header streamType: error, stdin,
//     stdout, stderr, resize (v3+, tty). Every stream is answered (SYN_REPLY);
//     the command starts once all the query asks for are there (error always,
//     stdin/stdout/stderr per the query, resize with tty), within 30 s.
//   - resize: JSON values {"Width":..,"Height":..} one after the other (Go's
//     json.Encoder); with a tty the command starts at the first size (waited for
//     up to INITIAL_SIZE_WAIT_MS, as the WebSocket path).
//   - the end: v4 writes the metav1.Status (computeExitStatus/computeErrorStatus,
//     the WebSocket status channel's) on the error stream, v2/v3 the message of
//     a failure only, v1 nothing (kubelet resets v1's error stream once the
//     streams are there); then every stream we write gets its FIN after the
//     output, and the connection is closed once the client has closed its side
//     (client-go resets its streams, GOAWAY, closes) — not before, so a slow
//     reader still gets all of it — or after FINISH_TIMEOUT_MS.
// The client's connection going away kills the exec (attach: detaches).
import type http from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { describeError, NodeletError } from '../errors.js';
import { getLogger, type Logger } from '../log.js';
import { waitAtMost } from '../sys/proc.js';
import type { ExecSession } from '../runtime/types.js';
import { computeErrorStatus, computeExitStatus, INITIAL_SIZE_WAIT_MS, parseResize, TTY_ENV, type ExecStreamRequest, type MetaStatus, type StartExec, type TerminalSize } from '../api/exec-stream.js';
import { HIGH_WATER, SPDY_UPGRADE, STREAM_CREATION_TIMEOUT_MS } from './portforward.js';
import { duplexTransport, RstStatus, SpdySession, type SpdyStream, type SpdyTransport } from './spdy.js';

const log = getLogger('kubelet');

/** kubelet's SPDY remotecommand protocols, preferred first (cri-streaming's SupportedStreamingProtocols). */
export const SPDY_EXEC_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] as const;
export type SpdyExecProtocol = (typeof SPDY_EXEC_PROTOCOLS)[number];
/** After the status: how long the client may take to read the rest and close before the connection is cut. */
export const FINISH_TIMEOUT_MS = 15 * 60_000;
/** A resize stream's bytes not yet forming a value beyond this stop resize handling (Go's decoder would not). */
const MAX_RESIZE_BUFFER = 4096;

export type StreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';
const STREAM_TYPES: readonly string[] = ['error', 'stdin', 'stdout', 'stderr', 'resize'];

type Refusal = { code: number; message: string; headers?: [string, string][] };

const list = (v: string | string[] | undefined) =>
  (Array.isArray(v) ? v : v === undefined ? [] : [v]).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);

/**
 * httpstream.Handshake + the SPDY upgrader's check, kubelet's words: no X-Stream-Protocol-Version 400, nothing in
 * it 400, no common protocol 403 (+ X-Accepted-Stream-Protocol-Versions), not `Upgrade: SPDY/3.1` 400.
 */
export function negotiateSpdyExec(h: http.IncomingHttpHeaders): { protocol: SpdyExecProtocol } | Refusal {
  const raw = h['x-stream-protocol-version'];
  if (raw === undefined) {
    const n = Object.keys(h).filter((k) => k !== 'host').length; // Go keeps Host out of req.Header
    return { code: 400, message: `unable to upgrade: header X-Stream-Protocol-Version does not exist in request with ${n} headers\n` };
  }
  const offered = list(raw);
  if (!offered.length) return { code: 400, message: `unable to upgrade: header X-Stream-Protocol-Version contains [${[raw].flat().join(' ')}], but no valid protocols\n` };
  const protocol = offered.find((p): p is SpdyExecProtocol => (SPDY_EXEC_PROTOCOLS as readonly string[]).includes(p));
  if (!protocol)
    return {
      code: 403,
      message: `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${SPDY_EXEC_PROTOCOLS.join(' ')}]\n`,
      headers: SPDY_EXEC_PROTOCOLS.map((p) => ['X-Accepted-Stream-Protocol-Versions', p]),
    };
  if (!(h.upgrade ?? '').toLowerCase().includes(SPDY_UPGRADE.toLowerCase()) || !(h.connection ?? '').toLowerCase().includes('upgrade'))
    return { code: 400, message: `unable to upgrade: missing upgrade headers in request: Upgrade: ${h.upgrade ?? ''} (exec and attach stream over a WebSocket or ${SPDY_UPGRADE})\n` };
  return { protocol };
}

/** 1 (channel.k8s.io) … 4 */
export function protocolVersion(p: SpdyExecProtocol): number {
  return p === 'channel.k8s.io' ? 1 : Number(p[1]);
}

/** The streams the command waits for (kubelet's expectedStreams): error, stdin/stdout/stderr per the query, resize with a tty (v3+). */
export function expectedStreams(req: ExecStreamRequest, version: number): Set<StreamType> {
  const s = new Set<StreamType>(['error']);
  if (req.stdin) s.add('stdin');
  if (req.stdout) s.add('stdout');
  if (req.stderr && !req.tty) s.add('stderr');
  if (req.tty && version >= 3) s.add('resize');
  return s;
}

/** What the error stream carries at the end: v4 the Status as JSON, v2/v3 a failure's message, v1 nothing. */
export function statusPayload(version: number, status: MetaStatus): Buffer | undefined {
  if (version >= 4) return Buffer.from(JSON.stringify(status));
  if (version >= 2 && status.status !== 'Success') return Buffer.from(status.message ?? '');
  return undefined;
}

/** Splits a byte stream of JSON values (Go's json.Encoder output: objects, newline-separated or not) into values. */
export class JsonValueSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;

  /** the complete values in this chunk and before; throws when the input cannot be JSON objects */
  push(chunk: Buffer | string): string[] {
    const out: string[] = [];
    const from = this.buf.length;
    this.buf += chunk.toString();
    for (let i = from; i < this.buf.length; i++) {
      const c = this.buf[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (this.depth === 0) {
        if (c === '{') {
          this.start = i;
          this.depth = 1;
        } else if (!/\s/.test(c)) throw new Error(`a resize message is not a JSON object (at ${JSON.stringify(c)})`);
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === '{' || c === '[') this.depth++;
      else if (c === '}' || c === ']') {
        if (--this.depth === 0) {
          out.push(this.buf.slice(this.start, i + 1));
          this.start = -1;
        }
      }
    }
    this.buf = this.start >= 0 ? this.buf.slice(this.start) : '';
    if (this.start >= 0) this.start = 0;
    if (this.buf.length > MAX_RESIZE_BUFFER) throw new Error(`a resize message of more than ${MAX_RESIZE_BUFFER} bytes`);
    return out;
  }
}

export interface SpdyExecSessionOptions {
  /** attach: start() attaches to the container's process; its end is a Success whatever the exit code (kubelet's ServeAttach) */
  attach?: boolean;
  log?: Logger;
  /** all expected streams within this (default STREAM_CREATION_TIMEOUT_MS, kubelet's 30 s) */
  streamCreationTimeoutMs?: number;
  /** with a tty, the wait for the first size (default INITIAL_SIZE_WAIT_MS) */
  initialSizeWaitMs?: number;
  /** default FINISH_TIMEOUT_MS */
  finishTimeoutMs?: number;
}

/** The server side of one exec/attach connection on a transport (after the 101). */
export function startSpdyExecSession(t: SpdyTransport, protocol: SpdyExecProtocol, req: ExecStreamRequest, start: StartExec, o: SpdyExecSessionOptions = {}): SpdySession {
  const elog = o.log ?? log;
  const version = protocolVersion(protocol);
  const want = expectedStreams(req, version);
  const got: Partial<Record<StreamType, SpdyStream>> = {};
  let phase: 'streams' | 'running' | 'finished' = 'streams';
  let closed = false;
  let exec: ExecSession | undefined;
  // stdin before the command runs, and its end
  const earlyStdin: Buffer[] = [];
  let stdinEof = false;
  let congested = false;
  // sizes before the command runs
  let size: TerminalSize | undefined;
  let resized = false;
  let firstSize!: () => void;
  const gotSize = new Promise<void>((r) => (firstSize = r));
  let finishTimer: NodeJS.Timeout | undefined;

  const toStdin = (b: Buffer) => {
    if (phase === 'finished') return;
    if (!exec) return void (stdinEof || earlyStdin.push(Buffer.from(b)));
    const w = exec.stdin;
    if (!w || w.destroyed || w.writableEnded) return;
    if (!w.write(b) && !congested) {
      congested = true; // back-pressure: stop reading the connection until the process reads
      session.pauseInput();
      w.once('drain', uncongest);
    }
  };
  // also when stdin is gone unread (the command exited): the client's later frames (its close) must still be read
  const uncongest = () => {
    if (!congested) return;
    congested = false;
    session.resumeInput();
  };
  const endStdin = () => {
    if (stdinEof) return;
    stdinEof = true;
    const w = exec?.stdin;
    if (w && !w.writableEnded) w.end();
  };
  const onSize = (s: TerminalSize) => {
    if (!req.tty) return;
    if (exec) exec.resize(s.cols, s.rows);
    else {
      resized = size !== undefined;
      size = s;
    }
    firstSize();
  };

  const wire = (type: StreamType, s: SpdyStream) => {
    if (type === 'stdin') {
      s.on('data', (b: Buffer) => toStdin(b));
      s.once('end', endStdin);
      s.once('reset', (_status: number, byPeer: boolean) => byPeer && endStdin());
    } else if (type === 'resize') {
      const split = new JsonValueSplitter();
      let broken = false;
      s.on('data', (b: Buffer) => {
        if (broken) return;
        try {
          for (const v of split.push(b)) {
            const sz = parseResize(Buffer.from(v));
            if (sz) onSize(sz);
            else elog.debug('exec: resize message ignored', { message: v.slice(0, 200) });
          }
        } catch (e) {
          broken = true; // as Go's json.Decoder loop: no more resizes on this stream
          elog.debug('exec: resize stream', { error: describeError(e) });
        }
      });
    }
  };

  const onStream = (s: SpdyStream) => {
    if (phase !== 'streams') {
      elog.debug('exec: stream after the handshake refused', { stream: s.id, streamType: s.header('streamtype') });
      return s.reset(RstStatus.REFUSED_STREAM);
    }
    s.reply(); // kubelet answers every stream, known or not
    s.once('close', () => {
      if (phase === 'finished') done();
    });
    const type = s.header('streamtype') ?? '';
    if (!STREAM_TYPES.includes(type) || !want.has(type as StreamType)) {
      elog.debug('exec: unexpected stream type', { stream: s.id, streamType: type, wanted: [...want] });
      return;
    }
    const k = type as StreamType;
    got[k]?.reset(); // a second one of a kind replaces the first
    got[k] = s;
    wire(k, s);
    if ([...want].every((w) => got[w])) {
      clearTimeout(creation);
      phase = 'running';
      void run().catch((e) => {
        elog.error('exec over SPDY failed', { error: describeError(e) });
        session.close();
      });
    }
  };

  const session = new SpdySession(t, { server: true, log: elog, onStream });
  const creation = setTimeout(() => {
    elog.warn('exec: timed out waiting for client to create streams', { wanted: [...want], got: Object.keys(got) });
    session.close();
  }, o.streamCreationTimeoutMs ?? STREAM_CREATION_TIMEOUT_MS);
  creation.unref();

  session.once('close', () => {
    closed = true;
    clearTimeout(creation);
    clearTimeout(finishTimer);
    firstSize();
    if (phase !== 'finished') exec?.kill(); // the caller is gone: so is the command (attach: detached)
    elog.debug('exec SPDY connection closed', { phase });
  });
  session.on('goaway', () => {
    if (phase === 'finished') session.close(); // the client has read everything (client-go closes after the streams' ends)
  });

  const done = () => {
    if (!closed && session.openStreams === 0) session.close();
  };
  // the server stops: the client is told so (client-go takes an error stream's EOF without a status for success)
  aborters.set(session, (why) => {
    if (closed) return;
    if (phase !== 'finished') {
      finish(computeErrorStatus(why));
      exec?.kill();
    }
    session.close();
  });

  const finish = (status: MetaStatus) => {
    if (closed || phase === 'finished') return;
    phase = 'finished';
    uncongest();
    const payload = statusPayload(version, status);
    if (payload && got.error && !got.error.isClosed) got.error.write(payload);
    // input: nothing more is read; output: FIN after what was written, so the client reads all of it, then EOF
    for (const s of [got.stdin, got.resize, got.stdout, got.stderr, got.error]) s?.end();
    finishTimer = setTimeout(() => session.close(), o.finishTimeoutMs ?? FINISH_TIMEOUT_MS);
    finishTimer.unref();
    done();
  };

  const pump = (src: Readable | null, dst: SpdyStream | undefined) =>
    new Promise<void>((resolve) => {
      if (!src) return resolve();
      src.on('data', (chunk: Buffer) => {
        if (!dst || closed) return;
        if (session.backlog < HIGH_WATER) return dst.write(chunk);
        src.pause(); // the connection is backed up: hold the command's output
        dst.write(chunk, () => src.resume());
      });
      src.once('end', resolve);
      src.once('close', resolve);
      src.once('error', (e) => {
        elog.debug('exec output stream', { error: describeError(e) });
        resolve();
      });
    });

  const run = async () => {
    if (version === 1) {
      // kubelet's v1 handler: the error stream is reset and stdin closed (our half) once the streams are there
      got.error?.reset();
      got.stdin?.end();
    }
    // 1. With a tty, the command starts at the client's terminal size when it sends one soon.
    if (req.tty && got.resize) await waitAtMost(gotSize, o.initialSizeWaitMs ?? INITIAL_SIZE_WAIT_MS);
    if (closed) return;
    // 2. Start; a failure to start is reported on the error stream.
    const initial = size;
    try {
      exec = await start({ tty: req.tty, stdin: req.stdin, ...(req.tty ? { env: [...TTY_ENV] } : {}), ...(req.tty && initial ? { size: initial } : {}) });
    } catch (e) {
      elog.debug('exec failed to start', { command: req.command, error: describeError(e) });
      return finish(computeErrorStatus(e));
    }
    const x = exec;
    if (closed) {
      x.kill();
      await x.exit.catch(() => undefined);
      return;
    }
    if (resized && size) x.resize(size.cols, size.rows);
    x.stdin?.on('error', (e) => elog.debug('exec stdin', { error: describeError(e) })); // EPIPE when the command did not read
    x.stdin?.once('close', uncongest);
    for (const b of earlyStdin.splice(0)) toStdin(b);
    if (stdinEof && x.stdin && !x.stdin.writableEnded) x.stdin.end();
    // 3. Output → the stdout/stderr streams.
    const outputs = Promise.all([pump(x.stdout, got.stdout), pump(x.stderr, got.stderr)]);
    const gone = new Promise<void>((r) => session.once('close', () => r()));
    // 4. The exit → the status.
    let status: MetaStatus;
    try {
      const exit = await x.exit;
      await Promise.race([outputs, gone]);
      status = o.attach ? { metadata: {}, status: 'Success' } : computeExitStatus(req.command, exit);
    } catch (e) {
      status = computeErrorStatus(e);
    }
    finish(status);
  };

  return session;
}

export interface ServeSpdyExecOptions {
  /** the parsed query (parseExecQuery) */
  request: ExecStreamRequest;
  /** runtime.exec for exec, the server's attach function for attach */
  start: StartExec;
  attach?: boolean;
  /** whose sessions these are: closeSpdyExecs(owner) ends them (the server's stop) */
  owner: object;
  /** log fields: pod, container, user */
  fields?: Record<string, unknown>;
}

const sessions = new WeakMap<object, Set<SpdySession>>();
const aborters = new WeakMap<SpdySession, (why: NodeletError) => void>();

/**
 * End every SPDY exec/attach connection of `owner` (the server's stop): a command still running is killed (an attach
 * detached) and its client gets an InternalError status, then GOAWAY and the transport closed.
 */
export function closeSpdyExecs(owner: object): void {
  const why = new NodeletError('Unavailable', 'ERR_KUBELET_STOPPING', 'the kubelet server is stopping');
  for (const s of sessions.get(owner) ?? []) {
    const abort = aborters.get(s);
    if (abort) abort(why);
    else s.close();
  }
}

/** An exec/attach upgrade that is not a WebSocket: kubelet's handshake refusal, or the 101 and the session. */
export function serveSpdyExec(req: http.IncomingMessage, socket: Duplex, head: Buffer, o: ServeSpdyExecOptions): void {
  const n = negotiateSpdyExec(req.headers);
  if ('code' in n) return refuse(socket, n);
  if (socket.destroyed) return;
  const elog = log.child({ ...o.fields, via: 'spdy', protocol: n.protocol });
  elog.debug(o.attach ? 'kubelet attach stream' : 'kubelet exec stream', { command: o.request.command, tty: o.request.tty });
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${SPDY_UPGRADE}\r\nX-Stream-Protocol-Version: ${n.protocol}\r\n\r\n`);
  if (head.length) socket.unshift(head);
  const set = sessions.get(o.owner) ?? new Set<SpdySession>();
  sessions.set(o.owner, set);
  const session = startSpdyExecSession(duplexTransport(socket), n.protocol, o.request, o.start, { attach: o.attach, log: elog });
  set.add(session);
  session.once('close', () => set.delete(session));
}

function refuse(socket: Duplex, r: Refusal): void {
  if (socket.destroyed) return;
  const reason = { 400: 'Bad Request', 403: 'Forbidden' }[r.code] ?? 'Error';
  const extra = (r.headers ?? []).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${r.code} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n${extra}` +
      `Content-Length: ${Buffer.byteLength(r.message)}\r\nConnection: close\r\n\r\n${r.message}`,
  );
}
