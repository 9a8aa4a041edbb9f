// Streaming exec over a WebSocket with Kubernetes' channel subprotocols, the
// protocol kubectl speaks to the API server and the API server (or an e2e
// test through it) to the kubelet: every message is one channel + data.
//   0 stdin (client → server)      1 stdout, 2 stderr (server → client)
//   3 status: when the command is over, then close
//   4 resize (client → server): {"Width":cols,"Height":rows}
//   255 close (v5 only): payload = the channel closed; [255, 0] is stdin EOF
// The subprotocols (kubelet's remotecommand websocket.go + wsstream conn.go):
//   v5.channel.k8s.io         binary frames, Status JSON, the close channel
//   v4.channel.k8s.io         binary frames, Status JSON on channel 3
//   v4.base64.channel.k8s.io  text frames: the channel as an ASCII digit + the payload in base64
//   channel.k8s.io (v1)       binary frames; channel 3 carries a failure's message as plain text, nothing on success
//   base64.channel.k8s.io     v1 in text frames
//   none requested ('')       v1 (kubelet's "" entry)
// v1/v4 (not v5) announce the stream with an empty message on the lowest
// channel the server writes (stdout, else stderr, else status), as kubelet does.
// The local API (src/api/server.ts) speaks v5 and v4 (EXEC_PROTOCOLS); the
// kubelet server all of them (KUBELET_EXEC_PROTOCOLS).
// Query parsing, subprotocol choice, framing and Status objects are pure;
// serveExecStream relays between the socket and a runtime ExecSession. A socket
// closed before the command is over kills it.
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import type { WebSocket } from 'ws';
import { describeError, isNodeletError } from '../errors.js';
import { getLogger } from '../log.js';
import { waitAtMost } from '../sys/proc.js';
import type { ExecSession, ExecStreamOptions } from '../runtime/types.js';

const log = getLogger('api');

export const PROTOCOL_V5 = 'v5.channel.k8s.io';
export const PROTOCOL_V4 = 'v4.channel.k8s.io';
export const PROTOCOL_V4_BASE64 = 'v4.base64.channel.k8s.io';
export const PROTOCOL_V1 = 'channel.k8s.io';
export const PROTOCOL_V1_BASE64 = 'base64.channel.k8s.io';
/** no subprotocol requested: kubelet's "" entry, channel.k8s.io's semantics */
export const PROTOCOL_NONE = '';
/** what the local API speaks */
export const EXEC_PROTOCOLS = [PROTOCOL_V5, PROTOCOL_V4] as const;
/** what the kubelet server speaks (with PROTOCOL_NONE when the client asks for none) */
export const KUBELET_EXEC_PROTOCOLS = [PROTOCOL_V5, PROTOCOL_V4, PROTOCOL_V4_BASE64, PROTOCOL_V1, PROTOCOL_V1_BASE64] as const;
export type ExecProtocol = (typeof KUBELET_EXEC_PROTOCOLS)[number] | typeof PROTOCOL_NONE;

export interface ProtocolTraits {
  /** text frames: channel as an ASCII digit, payload base64 */
  base64: boolean;
  /** the status channel carries a metav1.Status JSON (v4, v5); else a failure's message as text (v1) */
  statusJson: boolean;
  /** channel 255 half-closes a stream (v5) */
  streamClose: boolean;
  /** an empty message on the lowest written channel once the socket is open (kubelet's createWebSocketStreams; not v5) */
  announce: boolean;
}

export function protocolTraits(p: ExecProtocol): ProtocolTraits {
  switch (p) {
    case PROTOCOL_V5:
      return { base64: false, statusJson: true, streamClose: true, announce: false };
    case PROTOCOL_V4:
      return { base64: false, statusJson: true, streamClose: false, announce: true };
    case PROTOCOL_V4_BASE64:
      return { base64: true, statusJson: true, streamClose: false, announce: true };
    case PROTOCOL_V1_BASE64:
      return { base64: true, statusJson: false, streamClose: false, announce: true };
    default: // channel.k8s.io, none
      return { base64: false, statusJson: false, streamClose: false, announce: true };
  }
}

export const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, status: 3, resize: 4, close: 255 } as const;

/** With a TTY, how long the server waits for the client's first resize before starting the command without a size. */
export const INITIAL_SIZE_WAIT_MS = 1000;
/** Added to an exec's environment when it gets a terminal, as the CRI runtimes do (containerd, CRI-O: TERM=xterm). */
export const TTY_ENV = ['TERM=xterm'] as const;
/** Bytes queued on an exec WebSocket beyond which the sending side pauses its source (back-pressure; both ends). */
export const SOCKET_HIGH_WATER = 1 << 20;

export interface ExecStreamRequest {
  command: string[];
  container?: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export interface TerminalSize {
  cols: number;
  rows: number;
}

export interface MetaStatus {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: { reason?: string; message: string }[] };
  code?: number;
}

const flag = (v: string | null) => v !== null && /^(1|true)$/i.test(v);

/** The exec query of the Kubernetes API (command repeated, container, stdin, stdout, stderr, tty); attach has no command. */
export function parseExecQuery(q: URLSearchParams, o: { attach?: boolean } = {}): ExecStreamRequest | { error: string } {
  const command = q.getAll('command');
  if (command.length === 0 && !o.attach) return { error: 'you must specify at least 1 command' };
  const req: ExecStreamRequest = {
    command,
    container: q.get('container') || undefined,
    stdin: flag(q.get('stdin')),
    stdout: flag(q.get('stdout')),
    stderr: flag(q.get('stderr')),
    tty: flag(q.get('tty')),
  };
  if (!req.stdin && !req.stdout && !req.stderr) return { error: 'you must specify at least 1 of stdin, stdout, stderr' };
  // A terminal merges stderr into stdout (kubelet drops stderr with tty too).
  if (req.tty) req.stderr = false;
  return req;
}

/** The first subprotocol of the client's list (Sec-WebSocket-Protocol, in its order) that we speak. */
export function negotiateProtocol(offered: Iterable<string>): ExecProtocol | undefined {
  for (const p of offered) if ((EXEC_PROTOCOLS as readonly string[]).includes(p)) return p as ExecProtocol;
  return undefined;
}

/**
 * The kubelet's choice (wsstream's handshake): the first of the client's list it speaks;
 * PROTOCOL_NONE when the client offers none; undefined when none of the offered ones.
 */
export function negotiateKubeletProtocol(offered: Iterable<string>): ExecProtocol | undefined {
  const list = [...offered];
  if (list.length === 0) return PROTOCOL_NONE;
  for (const p of list) if ((KUBELET_EXEC_PROTOCOLS as readonly string[]).includes(p)) return p as ExecProtocol;
  return undefined;
}

export function offeredProtocols(header: string | undefined): string[] {
  return (header ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

/** A resize message: {"Width":cols,"Height":rows} (remotecommand.TerminalSize); undefined when malformed. */
export function parseResize(payload: Buffer): TerminalSize | undefined {
  try {
    const j = JSON.parse(payload.toString('utf8')) as { Width?: unknown; Height?: unknown };
    const ok = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffff;
    return ok(j.Width) && ok(j.Height) ? { cols: j.Width, rows: j.Height } : undefined;
  } catch {
    return undefined;
  }
}

export function frame(channel: number, data: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const out = Buffer.allocUnsafe(body.length + 1);
  out[0] = channel;
  body.copy(out, 1);
  return out;
}

/** One message of `protocol`: binary channel byte + data, or (base64 variants) text: ASCII digit + base64. */
export function encodeFrame(protocol: ExecProtocol, channel: number, data: Buffer | string = Buffer.alloc(0)): Buffer | string {
  if (!protocolTraits(protocol).base64) return frame(channel, data);
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  return String.fromCharCode(48 + channel) + body.toString('base64');
}

/** A client's message → channel + data (base64 variants: the digit and the decoded payload); undefined when empty. */
export function decodeFrame(protocol: ExecProtocol, buf: Buffer): { channel: number; data: Buffer } | undefined {
  if (buf.length === 0) return undefined;
  const ch = buf[0]!;
  if (ch === CHANNEL.close && protocolTraits(protocol).streamClose) return { channel: ch, data: buf.subarray(1) };
  if (!protocolTraits(protocol).base64) return { channel: ch, data: buf.subarray(1) };
  return { channel: ch - 48, data: Buffer.from(buf.subarray(1).toString('latin1'), 'base64') };
}

/** What the status channel carries at the end: v4/v5 the Status JSON; v1 a failure's message, nothing on success. */
export function statusPayload(protocol: ExecProtocol, status: MetaStatus): string | undefined {
  if (protocolTraits(protocol).statusJson) return JSON.stringify(status);
  return status.status === 'Success' ? undefined : (status.message ?? '');
}

/** The Status the kubelet writes on the status channel when the command is over. */
export function computeExitStatus(command: string[], exit: { exitCode: number; signal?: string }): MetaStatus {
  let code = exit.exitCode;
  if (code === 0 && !exit.signal) return { metadata: {}, status: 'Success' };
  if (code <= 0) {
    const n = exit.signal ? (osConstants.signals as Record<string, number>)[exit.signal] : undefined;
    code = n ? 128 + n : 1; // a signal as the shell reports it (SIGKILL → 137)
  }
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** A failure to run the command at all (the runtime rejected it), as a Status. */
export function computeErrorStatus(e: unknown): MetaStatus {
  const message = describeError(e);
  if (isNodeletError(e) && e.category === 'NotFound') return { metadata: {}, status: 'Failure', message, reason: 'NotFound', code: 404 };
  if (isNodeletError(e) && (e.category === 'FailedPrecondition' || e.category === 'InvalidArgument')) return { metadata: {}, status: 'Failure', message, reason: 'BadRequest', code: 400 };
  return { metadata: {}, status: 'Failure', message: `Internal error occurred: ${message}`, reason: 'InternalError', details: { causes: [{ message }] }, code: 500 };
}

/** Reads a status-channel payload back into an exit code, or the error it reports (the client's side). */
export function exitCodeOfStatus(s: MetaStatus): { exitCode: number } | { error: MetaStatus } {
  if (s.status === 'Success') return { exitCode: 0 };
  if (s.reason === 'NonZeroExitCode') {
    const c = s.details?.causes?.find((x) => x.reason === 'ExitCode');
    const n = c ? Number(c.message) : NaN;
    if (Number.isInteger(n)) return { exitCode: n };
  }
  return { error: s };
}

export type StartExec = (opts: ExecStreamOptions) => Promise<ExecSession>;

/**
 * Relays one upgraded socket and one exec: frames from the client go to the
 * session (stdin, resize, stdin EOF), the session's output goes out as frames,
 * and the exit becomes a Status on channel 3 before a normal close. The
 * command starts once the socket is open; with a TTY, after the client's first
 * frame (kubectl sends the terminal size first) or INITIAL_SIZE_WAIT_MS.
 * Resolves when everything is over. `attach`: start() attaches to the container's own process
 * (closing the socket detaches) and its end is a Success.
 */
export async function serveExecStream(ws: WebSocket, protocol: ExecProtocol, req: ExecStreamRequest, start: StartExec, waitMs = INITIAL_SIZE_WAIT_MS, attach = false): Promise<void> {
  let session: ExecSession | undefined;
  let closed = ws.readyState !== ws.OPEN;
  let size: TerminalSize | undefined;
  let resized = false; // a resize arrived while the session was starting
  let stdinEof = false;
  const earlyStdin: Buffer[] = [];
  let firstFrame!: () => void;
  const gotFrame = new Promise<void>((r) => (firstFrame = r));

  const toStdin = (data: Buffer) => {
    const w = session?.stdin;
    if (!w || w.destroyed || w.writableEnded) return;
    if (!w.write(data)) {
      ws.pause(); // back-pressure: stop reading the socket until the process reads
      w.once('drain', () => ws.resume());
    }
  };
  const endStdin = () => {
    stdinEof = true;
    const w = session?.stdin;
    if (w && !w.writableEnded) w.end();
  };

  const traits = protocolTraits(protocol);
  ws.on('message', (raw: Buffer | ArrayBuffer | Buffer[]) => {
    const buf = Buffer.isBuffer(raw) ? raw : Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw);
    const f = decodeFrame(protocol, buf);
    if (!f) return;
    const { channel: ch, data } = f;
    if (ch === CHANNEL.close && traits.streamClose) {
      if (data[0] === CHANNEL.stdin && req.stdin) endStdin();
    } else if (ch === CHANNEL.stdin) {
      if (req.stdin && !stdinEof) {
        if (session) toStdin(data);
        else earlyStdin.push(Buffer.from(data));
      }
    } else if (ch === CHANNEL.resize) {
      const s = parseResize(data);
      if (s && req.tty) {
        if (session) session.resize(s.cols, s.rows);
        else {
          resized = size !== undefined;
          size = s;
        }
      }
    } else {
      log.debug('exec: frame on an unknown channel ignored', { channel: ch });
    }
    firstFrame();
  });
  const socketGone = new Promise<void>((resolve) =>
    ws.once('close', () => {
      closed = true;
      session?.kill(); // the caller is gone: so is the command
      firstFrame();
      resolve();
    }),
  );
  ws.on('error', (e) => log.debug('exec socket error', { error: describeError(e) }));

  const send = (ch: number, data: Buffer | string, cb?: (err?: Error) => void) => {
    if (closed) return cb?.();
    ws.send(encodeFrame(protocol, ch, data), { binary: !traits.base64 }, cb);
  };
  const finish = (status: MetaStatus) => {
    if (closed) return;
    const payload = statusPayload(protocol, status);
    if (payload !== undefined) send(CHANNEL.status, payload);
    ws.close(1000);
  };

  // 0. kubelet tells v1/v4 clients the stream is there: an empty message on the lowest channel it writes
  if (traits.announce && !closed) send(req.stdout ? CHANNEL.stdout : req.stderr ? CHANNEL.stderr : CHANNEL.status, Buffer.alloc(0));

  // 1. With a TTY, the command starts at the client's terminal size when it sends one first.
  if (req.tty) {
    await waitAtMost(gotFrame, waitMs);
  }
  if (closed) return;

  // 2. Start the command; a failure to start is reported on the status channel.
  const initialSize = size;
  try {
    session = await start({ tty: req.tty, stdin: req.stdin, ...(req.tty ? { env: [...TTY_ENV] } : {}), ...(req.tty && initialSize ? { size: initialSize } : {}) });
  } catch (e) {
    log.debug('exec failed to start', { command: req.command, error: describeError(e) });
    return finish(computeErrorStatus(e));
  }
  if (closed) {
    session.kill();
    await session.exit.catch(() => undefined);
    return;
  }
  if (resized && size) session.resize(size.cols, size.rows);
  session.stdin?.on('error', (e) => log.debug('exec stdin', { error: describeError(e) })); // EPIPE when the command did not read
  for (const b of earlyStdin.splice(0)) toStdin(b);
  if (stdinEof) endStdin();

  // 3. Output → frames, pausing the command's output while the socket is backed up.
  const pump = (src: Readable | null, ch: number, wanted: boolean) =>
    new Promise<void>((resolve) => {
      if (!src) return resolve();
      src.on('data', (chunk: Buffer) => {
        if (!wanted || closed) return;
        if (ws.bufferedAmount < SOCKET_HIGH_WATER) return send(ch, chunk);
        src.pause();
        send(ch, chunk, () => src.resume());
      });
      src.once('end', resolve);
      src.once('close', resolve);
      src.once('error', (e) => {
        log.debug('exec output stream', { channel: ch, error: describeError(e) });
        resolve();
      });
    });
  const outputs = Promise.all([pump(session.stdout, CHANNEL.stdout, req.stdout), pump(session.stderr, CHANNEL.stderr, req.stderr)]);

  // 4. Exit → status. If the socket closes first, the session was killed; still wait for it.
  let status: MetaStatus;
  try {
    const exit = await session.exit;
    await Promise.race([outputs, socketGone]);
    // attach: the stream ends when the container does, a success whatever its exit code (kubelet's ServeAttach)
    status = attach ? { metadata: {}, status: 'Success' } : computeExitStatus(req.command, exit);
  } catch (e) {
    status = computeErrorStatus(e);
  }
  finish(status);
}
