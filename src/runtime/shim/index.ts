// TypeScript client of the native per-container shim (native/nodelet-shim).
// The shim does everything between clone() and exec() and then monitors the
// container (logs, reaping, exit record); this client spawns it, speaks the
// wire protocol (protocol.ts) and reads the state files it writes.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants as fsConstants, mkdirSync, openSync, rmSync, statSync, watch, type FSWatcher } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { constants as osConstants } from 'node:os';
import { NodeletError, alreadyExists, errnoName, failedPrecondition, isNodeletError, unavailable, type ErrorCode } from '../../errors.js';
import { getLogger } from '../../log.js';
import { encodeExec, encodePlan, type ExecIo, type ExecRequestLike } from './encode.js';
import type { ExecResult, ExecSession } from '../types.js';
import type { ShimPlan } from './plan.js';
import { ATTACH_MAX_CLIENTS, ATTACH_SOCKET, decodeRecords, encodeFrame, EXEC_MAX_CONCURRENT, EXEC_SOCKET, FRAME_DATA_MAX, FRAME_HEADER_BYTES, FRAMES, TAGS, type WireRecord } from './protocol.js';
import { sharedOnread } from '../../sys/shared-read.js';
import { pidAlive, processRunning, procStatAsync, readJsonIfExists, sleep } from '../../sys/proc.js';

export interface ShimState {
  containerId: string;
  shimPid: number;
  pid: number;
  status: 'running' | 'exited';
  startedAt: string;
  finishedAt?: string;
  /** WEXITSTATUS, or 128+N when killed by signal N (signal then names it). */
  exitCode?: number;
  signal?: string /* "SIGKILL" */;
  oomKilled?: boolean;
}

/** What exec needs: the encoded request (host pid of the container's process, whose
 * mnt/pid/net/ipc/uts namespaces are joined; its cgroups; user, env, cwd, caps), sent to
 * the container's monitor over <stateDir>/exec.sock, plus what the client itself handles. */
export interface ExecRequest extends ExecRequestLike {
  /** The container's shim state dir: its monitor listens on <stateDir>/exec.sock. */
  stateDir: string;
  timeoutMs?: number;
  stdin?: Buffer | string;
  /** encodeExecFrame(this, { stdin: stdin !== undefined }), when the caller keeps it (one per container and argv). */
  requestFrame?: Buffer;
}

/** exitCode is WEXITSTATUS, or 128+N when killed by signal N. */
export type { ExecResult };

export interface ShimStartDetails {
  stage: string;
  errno: number;
  errnoName: string;
  message: string;
}

/** A failure before the process exec'd (kubelet's StartError / CreateContainerError). */
export class ShimStartError extends NodeletError {
  declare readonly details: ShimStartDetails & Record<string, unknown>;
  constructor(message: string, details: ShimStartDetails, code: ErrorCode = 'ERR_CONTAINER_START') {
    super('FailedPrecondition', code, message, { details: { ...details } });
    this.name = 'ShimStartError';
  }
}

const log = getLogger('shim');
const START_TIMEOUT_MS = 30_000;
const EXIT_POLL_MS = 1_000;
/** Every Nth poll also checks the shim's start time (pid reuse, zombie); the others only kill(pid, 0). */
const DEEP_POLL_EVERY = 10;
const T = Object.fromEntries(Object.entries(TAGS).map(([k, [n]]) => [k, n])) as Record<keyof typeof TAGS, number>;

export const DEFAULT_SHIM_BINARY = join(dirname(fileURLToPath(import.meta.url)), '../../../native/build/nodelet-shim');

function signalNumber(name: string | undefined): number | undefined {
  return name ? (osConstants.signals as Record<string, number>)[name] : undefined;
}

/** Turn the shim's raw record into ShimState (exitCode 128+N for signals). */
export function toShimState(raw: Record<string, unknown>): ShimState {
  const s: ShimState = {
    containerId: String(raw.containerId),
    shimPid: Number(raw.shimPid),
    pid: Number(raw.pid),
    status: raw.status === 'exited' ? 'exited' : 'running',
    startedAt: String(raw.startedAt),
  };
  if (s.status === 'exited') {
    s.finishedAt = String(raw.finishedAt);
    const sig = typeof raw.signal === 'string' ? raw.signal : undefined;
    const signo = signalNumber(sig);
    s.exitCode = sig ? 128 + (signo ?? 0) : Number(raw.exitCode);
    if (sig) s.signal = sig;
    s.oomKilled = raw.oomKilled === true;
  }
  return s;
}

// The state files are tiny and live on tmpfs (runRoot): read them synchronously (readJsonIfExists). On
// the start/exit hot path each async fs call is a thread-pool round trip, which on a loaded machine costs
// more than the read itself.
const readJson = (path: string) => readJsonIfExists<Record<string, unknown>>(path);

/** readJson for a file that is usually absent (exit.json while the container runs): a stat that
 * reports absence without an exception first, since the exit polls ask for it at every container. */
function readJsonIfPresent(path: string): Record<string, unknown> | undefined {
  return statSync(path, { throwIfNoEntry: false }) ? readJson(path) : undefined;
}

/** Live (non-zombie) processes whose process group is `pgid`. */
export async function processGroupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = await procStatAsync(Number(name));
    if (st && st[0] !== 'Z' && Number(st[2]) === pgid) out.push(Number(name));
  }
  return out;
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}

/** Collect status records from the shim's fd 4 until EOF; onRecord sees each as it arrives. */
function readStatus(stream: Readable, onRecord: (r: WireRecord) => void): Promise<WireRecord[]> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const all: WireRecord[] = [];
    stream.on('data', (chunk: Buffer) => {
      try {
        const { records, rest } = decodeRecords(Buffer.concat([buf, chunk]));
        buf = rest;
        for (const r of records) {
          all.push(r);
          onRecord(r);
        }
      } catch (e) {
        reject(e);
      }
    });
    stream.on('end', () => resolve(all));
    stream.on('close', () => resolve(all));
    stream.on('error', reject);
  });
}

function startError(what: string, r: WireRecord, code?: ErrorCode): ShimStartError {
  const [stage = 'unknown', errnoStr = '0', message = ''] = r.fields;
  const errno = Number(errnoStr);
  const name = errno ? errnoName(errno) : 'EUNKNOWN';
  return new ShimStartError(`${what}: ${stage} failed: ${message}: ${name}`, { stage, errno, errnoName: name, message }, code);
}

function spawnShim(binary: string, args: string[], stdio: ('pipe' | 'ignore')[], detached: boolean): ChildProcess {
  const child = spawn(binary, args, { stdio, detached });
  for (const s of child.stdio) s?.on('error', () => {}); // EPIPE when the shim fails early
  return child;
}

function spawnError(child: ChildProcess, binary: string): Promise<never> {
  return new Promise((_, reject) =>
    child.once('error', (e: NodeJS.ErrnoException) =>
      reject(unavailable('ERR_SHIM_UNAVAILABLE', `cannot run the shim ${binary}: ${e.code ?? e.message} (build it with "make -C native")`, { cause: e })),
    ),
  );
}

/** Connect to <stateDir>/exec.sock through /proc/self/fd/<dirfd>/: sockaddr_un holds 108 bytes,
 * state dirs can be longer. */
function connectExec(stateDir: string, what: string, onread?: (chunk: Buffer) => void, socketName: string = EXEC_SOCKET): Promise<Socket> {
  const notRunning = (code: string) =>
    failedPrecondition('ERR_CONTAINER_NOT_RUNNING', `${what}: the container's shim is not running (${code} on ${join(stateDir, socketName)})`);
  let dirFd: number;
  try {
    dirFd = openSync(stateDir, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
    if (code === 'ENOENT' || code === 'ENOTDIR') throw notRunning(code);
    throw unavailable('ERR_SHIM_UNAVAILABLE', `${what}: cannot open ${stateDir}: ${code}`, { cause: e });
  }
  return new Promise((resolve, reject) => {
    const path = `/proc/self/fd/${dirFd}/${socketName}`;
    const attempt = (n: number) => {
      // onread: the bytes go to the callback from one reused buffer, without a Readable stream's per-chunk work
      const sock = createConnection(onread ? { path, onread: sharedOnread(onread) } : { path });
      const onError = (e: NodeJS.ErrnoException) => {
        const code = e.code ?? 'EIO';
        // a full listen backlog (many execs at once, a busy shim): a unix socket refuses with EAGAIN; retry briefly
        if (code === 'EAGAIN' && n < CONNECT_RETRIES) return void setTimeout(() => attempt(n + 1), Math.min(2 + n, 20));
        closeSync(dirFd);
        reject(code === 'ENOENT' || code === 'ECONNREFUSED' ? notRunning(code) : unavailable('ERR_SHIM_UNAVAILABLE', `${what}: cannot connect to the shim: ${code}`, { cause: e }));
      };
      sock.once('error', onError);
      sock.once('connect', () => {
        closeSync(dirFd);
        sock.removeListener('error', onError);
        resolve(sock);
      });
    };
    attempt(0);
  });
}

/** connect() attempts on EAGAIN (full backlog) before giving up: ~2 s in all. */
const CONNECT_RETRIES = 120;

interface Frame {
  type: number;
  payload: Buffer;
}

/** Splits the byte stream into frames ([type u8][len u32 BE][payload]). */
class FrameReader {
  private pending: Buffer | undefined;

  /** Calls onFrame for each complete frame (payload: a view, valid during the call; it returns false to
   * stop reading); keeps a copy of an incomplete tail. Throws ERR_SHIM_PROTOCOL on an oversized frame. */
  feed(chunk: Buffer, onFrame: (type: number, payload: Buffer) => boolean): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let off = 0;
    while (buf.length - off >= FRAME_HEADER_BYTES) {
      const len = buf.readUInt32BE(off + 1);
      if (len > FRAME_DATA_MAX) throw unavailable('ERR_SHIM_PROTOCOL', `the shim sent a ${len}-byte exec frame`);
      const end = off + FRAME_HEADER_BYTES + len;
      if (end > buf.length) break;
      if (!onFrame(buf[off]!, buf.subarray(off + FRAME_HEADER_BYTES, end))) return;
      off = end;
    }
    if (off < buf.length) this.pending = Buffer.from(buf.subarray(off));
  }

  /** The complete frames of a chunk the caller does not reuse (payloads are views into it). */
  push(chunk: Buffer): Frame[] {
    const out: Frame[] = [];
    this.feed(chunk, (type, payload) => out.push({ type, payload }) > 0);
    return out;
  }
}

/** An exec session as the runtime's ExecSession, plus the exec's host pid (= its process group). */
export interface ShimExecSession extends ExecSession {
  readonly pid: number;
}

const KILL_GRACE_MS = 2_000;

class ExecSessionImpl implements ShimExecSession {
  readonly stdin: Writable | null;
  readonly stdout: Readable;
  readonly stderr: Readable | null;
  readonly exit: Promise<{ exitCode: number; signal?: string }>;
  private settle!: { resolve: (v: { exitCode: number; signal?: string }) => void; reject: (e: Error) => void };
  private result: { exitCode: number; signal?: string } | undefined;
  private done = false;
  private killTimer: NodeJS.Timeout | undefined;

  /** attach: kill() detaches (the container runs on) and the exit is the container's. */
  constructor(private readonly sock: Socket, readonly pid: number, opts: ExecIo, private readonly attach = false) {
    this.exit = new Promise((resolve, reject) => { this.settle = { resolve, reject }; });
    this.exit.catch(() => {}); // a caller that never awaits exit must not crash the daemon
    const read = () => { if (!this.done) this.sock.resume(); };
    this.stdout = new Readable({ read, highWaterMark: 64 * 1024 });
    this.stderr = opts.tty ? null : new Readable({ read, highWaterMark: 64 * 1024 });
    this.stdin = opts.stdin ? new Writable({
      write: (chunk: Buffer, _enc, cb) => this.sendData(chunk, cb),
      final: (cb) => { this.send(encodeFrame(FRAMES.STDIN_EOF)); cb(); },
    }) : null;
    const ended = [this.stdout, ...(this.stderr ? [this.stderr] : [])].map((s) => finished(s).catch(() => {}));
    void Promise.all(ended).then(() => {
      if (this.result) this.settle.resolve(this.result);
    });
  }

  private send(frame: Buffer, cb?: (e?: Error | null) => void): boolean {
    if (this.done || this.sock.destroyed) {
      cb?.();
      return true;
    }
    return this.sock.write(frame, cb ? () => cb() : undefined);
  }

  private sendData(chunk: Buffer, cb: (e?: Error | null) => void): void {
    let ok = true;
    for (let off = 0; off < chunk.length; off += FRAME_DATA_MAX) ok = this.send(encodeFrame(FRAMES.STDIN, chunk.subarray(off, off + FRAME_DATA_MAX)));
    if (ok || this.done) cb();
    else this.sock.once('drain', () => cb());
  }

  resize(cols: number, rows: number): void {
    if (!this.stderr && Number.isInteger(cols) && Number.isInteger(rows) && cols > 0 && rows > 0) {
      const p = Buffer.alloc(4);
      p.writeUInt16BE(Math.min(cols, 0xffff), 0);
      p.writeUInt16BE(Math.min(rows, 0xffff), 2);
      this.send(encodeFrame(FRAMES.RESIZE, p));
    }
  }

  kill(): void {
    if (this.done) return;
    if (this.attach) { // detach: the container runs on
      this.end();
      this.settle.resolve({ exitCode: 0 });
      return;
    }
    const p = Buffer.alloc(4);
    p.writeUInt32BE(9, 0);
    this.send(encodeFrame(FRAMES.SIGNAL, p));
    this.sock.resume(); // a paused reader must not keep the EXIT frame from arriving
    // the shim acts on frames in order; if stdin it cannot deliver blocks them, closing the
    // connection makes it kill the group as well
    this.killTimer ??= setTimeout(() => this.sock.destroy(), KILL_GRACE_MS);
    this.killTimer.unref();
  }

  /** Called for every frame after STARTED. */
  frame(f: Frame): void {
    if (this.done) return;
    if (f.type === FRAMES.STDOUT || f.type === FRAMES.STDERR) {
      const to = f.type === FRAMES.STDOUT || !this.stderr ? this.stdout : this.stderr;
      if (!to.push(Buffer.from(f.payload))) this.sock.pause();
    } else if (f.type === FRAMES.EXIT) {
      const [code = '0', sig = ''] = f.payload.toString('utf8').split('\0');
      this.result = sig ? { exitCode: 128 + (signalNumber(sig) ?? 0), signal: sig } : { exitCode: Number(code) };
      this.end();
    } else {
      this.lost(unavailable('ERR_SHIM_PROTOCOL', `${this.attach ? 'attach to' : 'exec'} ${this.pid}: unexpected frame ${f.type} from the shim`));
    }
  }

  /** The connection closed (after EXIT, or without one). */
  closed(): void {
    if (this.done) return;
    if (this.attach) this.lost(unavailable('ERR_ATTACH_LOST', `attach to ${this.pid}: the shim closed the attach connection without an exit (more than ${ATTACH_MAX_CLIENTS} sessions, or a session that did not keep up with the output)`));
    else this.lost(unavailable('ERR_EXEC_LOST', `exec ${this.pid}: the shim's exec helper went away without reporting an exit (was the container's cgroup killed?)`));
  }

  lost(e: Error): void {
    if (this.done) return;
    this.end();
    this.settle.reject(e);
  }

  private end(): void {
    this.done = true;
    clearTimeout(this.killTimer);
    this.stdout.push(null);
    this.stderr?.push(null);
    this.stdin?.destroy();
    this.sock.destroy();
  }
}

const EMPTY = Buffer.alloc(0);
const concat = (list: Buffer[]): Buffer => (list.length === 0 ? EMPTY : list.length === 1 ? list[0]! : Buffer.concat(list));
const killedResult = (out: Buffer[], errs: Buffer[]): ExecResult => ({ exitCode: 137, signal: 'SIGKILL', stdout: concat(out), stderr: concat(errs), timedOut: true });

/** The REQUEST frame of an exec (cacheable per container and argv: ExecRequest.requestFrame). */
export function encodeExecFrame(req: ExecRequestLike, io: ExecIo = {}): Buffer {
  return encodeFrame(FRAMES.REQUEST, encodeExec(req, io));
}

function exitOf(payload: Buffer): { exitCode: number; signal?: string } {
  const [code = '0', sig = ''] = payload.toString('utf8').split('\0');
  return sig ? { exitCode: 128 + (signalNumber(sig) ?? 0), signal: sig } : { exitCode: Number(code) };
}

type ExecRunResult =
  | { kind: 'exit'; pid: number; exit: { exitCode: number; signal?: string }; out: Buffer[]; errs: Buffer[] }
  | { kind: 'lost'; pid: number; error: Error; out: Buffer[]; errs: Buffer[] };

/** One non-interactive exec on a connected exec socket (ShimClient.exec): frames are decoded in
 * place from the socket's shared read buffer; only output payloads and a partial frame are copied. */
class ExecRun {
  private pid = 0;
  private done = false;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly out: Buffer[] = [];
  private readonly errs: Buffer[] = [];
  private readonly frames = new FrameReader();
  private lost: (error: Error) => void = () => {};
  private onData: (chunk: Buffer) => void = () => {};

  constructor(private readonly sock: Socket, private readonly what: string) {}

  /** Resolves with the exit, or with what was lost after the start (the caller decides by the timeout);
   * rejects when the process did not start. */
  result(frame: Buffer, stdin: Buffer | string | undefined, shimAlive: () => boolean): Promise<ExecRunResult> {
    const { sock, what } = this;
    return new Promise((resolve, reject) => {
      const lost = (this.lost = (error: Error) => this.finish(() => resolve({ kind: 'lost', pid: this.pid, error, out: this.out, errs: this.errs })));
      const fail = (e: Error) => this.finish(() => reject(e));
      const onFrame = (type: number, payload: Buffer): boolean => {
        if (this.pid) {
          if (type === FRAMES.STDOUT) this.out.push(Buffer.from(payload));
          else if (type === FRAMES.STDERR) this.errs.push(Buffer.from(payload));
          else if (type === FRAMES.EXIT) {
            const exit = exitOf(payload);
            this.finish(() => resolve({ kind: 'exit', pid: this.pid, exit, out: this.out, errs: this.errs }));
          } else lost(unavailable('ERR_SHIM_PROTOCOL', `exec ${this.pid}: unexpected frame ${type} from the shim`));
        } else if (type === FRAMES.STARTED) {
          this.pid = Number(payload.toString());
          if (stdin !== undefined) this.sendStdin(typeof stdin === 'string' ? Buffer.from(stdin, 'utf8') : stdin);
        } else if (type === FRAMES.ERROR) {
          fail(startError(what, { tag: T.ST_ERROR, fields: payload.toString('utf8').split('\0') }, 'ERR_EXEC_START'));
        } else {
          fail(unavailable('ERR_SHIM_PROTOCOL', `${what}: the shim sent frame ${type} before STARTED`));
        }
        return !this.done;
      };
      this.onData = (chunk: Buffer) => {
        if (this.done) return;
        try {
          this.frames.feed(chunk, onFrame);
        } catch (e) {
          if (this.pid) lost(e as Error);
          else fail(e as Error);
        }
      };
      sock.on('error', () => {}); // 'close' follows
      sock.on('close', () => {
        if (this.done) return;
        if (this.pid) return lost(unavailable('ERR_EXEC_LOST', `exec ${this.pid}: the shim's exec helper went away without reporting an exit (was the container's cgroup killed?)`));
        // a refusal's ERROR frame can be lost to the EPIPE of our own write: tell the cases apart by the shim
        if (shimAlive()) fail(unavailable('ERR_EXEC_REFUSED', `${what}: the shim dropped the exec connection before starting it (more than ${EXEC_MAX_CONCURRENT} execs at once?); retry`));
        else fail(failedPrecondition('ERR_CONTAINER_NOT_RUNNING', `${what}: the container's shim is gone (the container exited)`));
      });
      sock.write(frame);
    });
  }

  /** Bytes read from the exec socket (a view of the shared read buffer: what is kept is copied). */
  data(chunk: Buffer): void {
    this.onData(chunk);
  }

  /** The timeout: before the start, close the connection (the shim kills what it started);
   * after it, SIGKILL the process group, and close the connection if that does not end it. */
  timeout(): void {
    if (this.done) return;
    if (!this.pid) {
      // closing the connection makes the shim kill what it may have started
      this.lost(new NodeletError('Canceled', 'ERR_CANCELED', `${this.what}: canceled before the process started`));
      return;
    }
    const p = Buffer.alloc(4);
    p.writeUInt32BE(9, 0);
    this.sock.write(encodeFrame(FRAMES.SIGNAL, p));
    // the shim acts on frames in order; if stdin it cannot deliver blocks them, closing the
    // connection makes it kill the group as well
    this.killTimer ??= setTimeout(() => this.sock.destroy(), KILL_GRACE_MS);
    this.killTimer.unref();
  }

  private sendStdin(data: Buffer): void {
    for (let off = 0; off < data.length; off += FRAME_DATA_MAX) this.sock.write(encodeFrame(FRAMES.STDIN, data.subarray(off, off + FRAME_DATA_MAX)));
    this.sock.write(encodeFrame(FRAMES.STDIN_EOF));
  }

  private finish(settle: () => void): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.killTimer);
    this.sock.destroy();
    settle();
  }
}

export class ShimClient {
  readonly binary: string;

  constructor(opts: { binary?: string } = {}) {
    this.binary = opts.binary ?? DEFAULT_SHIM_BINARY;
  }

  /** Spawn a detached shim for the plan; resolves once the container process has exec'd. */
  async start(plan: ShimPlan): Promise<ShimState> {
    const payload = encodePlan(plan);
    const what = `cannot start container ${JSON.stringify(plan.containerId)}`;
    mkdirSync(plan.stateDir, { recursive: true, mode: 0o700 });
    mkdirSync(dirname(plan.logPath), { recursive: true });
    if (this.shimAliveSync(plan.stateDir)) {
      throw alreadyExists('ERR_CONTAINER_RUNNING', `${what}: a shim is still running for ${plan.stateDir} (stop it first)`);
    }
    rmSync(join(plan.stateDir, 'exit.json'), { force: true });
    rmSync(join(plan.stateDir, 'state.json'), { force: true });
    const child = spawnShim(this.binary, ['run', plan.stateDir], ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], true);
    child.unref();
    (child.stdio[3] as Writable).end(payload);
    let shimPid: number | undefined;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (shimPid) killQuietly(shimPid, 'SIGKILL'); // its child waits on a pipe and dies with it
        child.stdio[4]?.destroy();
        reject(new ShimStartError(`${what}: the shim did not report within ${START_TIMEOUT_MS} ms`, { stage: 'timeout', errno: 0, errnoName: 'ETIMEDOUT', message: 'no report from shim' }));
      }, START_TIMEOUT_MS);
    });
    try {
      const records = await Promise.race([
        readStatus(child.stdio[4] as Readable, (r) => {
          if (r.tag === T.ST_SHIM_PID) shimPid = Number(r.fields[0]);
        }),
        timeout,
        spawnError(child, this.binary),
      ]);
      const err = records.find((r) => r.tag === T.ST_ERROR);
      if (err) {
        if (shimPid) await this.waitGone(shimPid);
        throw startError(what, err);
      }
      const started = records.find((r) => r.tag === T.ST_STARTED);
      if (!started || !shimPid) throw new ShimStartError(`${what}: the shim exited without reporting (crashed?)`, { stage: 'shim', errno: 0, errnoName: 'EPROTO', message: 'no report' });
      const state: ShimState = { containerId: plan.containerId, shimPid, pid: Number(started.fields[0]), status: 'running', startedAt: started.fields[1] ?? '' };
      log.debug('container started', { containerId: plan.containerId, pid: state.pid, shimPid });
      return state;
    } finally {
      clearTimeout(timer);
      // close our ends now, not on a later turn of the event loop (no fd outlives start())
      child.stdio[3]?.destroy();
      child.stdio[4]?.destroy();
    }
  }

  private async waitGone(pid: number, ms = 2_000): Promise<void> {
    for (const end = Date.now() + ms; Date.now() < end && processRunning(pid); ) await sleep(10);
  }

  /** The state the shim recorded in stateDir (exit.json once exited), undefined if none. */
  async readState(stateDir: string): Promise<ShimState | undefined> {
    return this.readStateSync(stateDir);
  }

  private readStateSync(stateDir: string): ShimState | undefined {
    const raw = readJsonIfPresent(join(stateDir, 'exit.json')) ?? readJson(join(stateDir, 'state.json'));
    return raw ? toShimState(raw) : undefined;
  }

  private readonly exitPolls = new Set<() => void>();
  private exitPollTimer: NodeJS.Timeout | undefined;

  private addExitPoll(poll: () => void): void {
    this.exitPolls.add(poll);
    // a poll never throws (check settles the wait with its error) and may remove itself meanwhile
    this.exitPollTimer ??= setInterval(() => {
      for (const p of this.exitPolls) p();
    }, EXIT_POLL_MS);
  }

  private removeExitPoll(poll: () => void): void {
    this.exitPolls.delete(poll);
    if (this.exitPolls.size === 0 && this.exitPollTimer) {
      clearInterval(this.exitPollTimer);
      this.exitPollTimer = undefined;
    }
  }

  /** Resolves when the shim has recorded the exit; rejects ERR_SHIM_LOST if the shim died without doing so. */
  waitExit(stateDir: string, signal?: AbortSignal): Promise<ShimState> {
    return new Promise((resolve, reject) => {
      let watcher: FSWatcher | undefined;
      let poll: (() => void) | undefined;
      let done = false;
      const finish = (fn: () => void) => {
        done = true;
        if (poll) this.removeExitPoll(poll);
        watcher?.close();
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      // state.json is written once, when the shim starts; exit.json appears (renamed in) at the exit. With the
      // shim's pid and start time known, a check is: is there an exit.json, and (deep) is state.json still
      // there and the shim alive (pid and start time) — the full reads only when one of these says so.
      const statePath = join(stateDir, 'state.json');
      const exitPath = join(stateDir, 'exit.json');
      const initial = readJson(statePath);
      const shimPid = typeof initial?.shimPid === 'number' ? initial.shimPid : undefined;
      const shimStartTime = initial?.shimStartTime === undefined ? undefined : String(initial.shimStartTime);
      const quickCheck = (deep: boolean): boolean => {
        if (shimPid === undefined || statSync(exitPath, { throwIfNoEntry: false })) return false;
        return !deep || (!!statSync(statePath, { throwIfNoEntry: false }) && processRunning(shimPid, shimStartTime));
      };
      // Synchronous (tiny files on tmpfs): no check can interleave with another.
      const check = (deep: boolean) => {
        if (done) return;
        try {
          if (quickCheck(deep)) return; // still running
          const s = this.readStateSync(stateDir);
          if (s?.status === 'exited') return finish(() => resolve(s));
          if (deep && !this.shimAliveSync(stateDir)) {
            const again = this.readStateSync(stateDir);
            if (again?.status === 'exited') return finish(() => resolve(again));
            finish(() => reject(unavailable('ERR_SHIM_LOST', `the shim for ${stateDir} is gone without recording an exit (exit status unknown)`)));
          }
        } catch (e) {
          finish(() => reject(e));
        }
      };
      const onAbort = () => finish(() => reject(new NodeletError('Canceled', 'ERR_CANCELED', `waiting for the exit of ${stateDir} was aborted`)));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort);
      // The exit arrives by inotify (exit.json renamed into the dir); the poll only notices a shim that died
      // without recording one. At hundreds of containers it must stay cheap: a signal-0 probe of the
      // shim's pid each second, the full check (state file + /proc start time) every DEEP_POLL_EVERY,
      // and one timer for all the containers' polls.
      let polls = 0;
      poll = () => {
        if (++polls % DEEP_POLL_EVERY !== 0 && shimPid !== undefined && pidAlive(shimPid)) return;
        check(true);
      };
      this.addExitPoll(poll);
      try {
        watcher = watch(stateDir, () => check(false));
        watcher.on('error', () => {});
      } catch {
        /* poll only */
      }
      check(true);
    });
  }

  /** Is the shim process for this state dir alive (pid and start time match)? */
  async shimAlive(stateDir: string): Promise<boolean> {
    return this.shimAliveSync(stateDir);
  }

  private shimAliveSync(stateDir: string): boolean {
    const raw = readJson(join(stateDir, 'state.json'));
    if (!raw || typeof raw.shimPid !== 'number') return false;
    return processRunning(raw.shimPid, raw.shimStartTime === undefined ? undefined : String(raw.shimStartTime));
  }

  /** Run a process in a running container and collect its output; on timeout kills its whole
   * process group (timedOut, 137/SIGKILL) and verifies that nothing of the group is left.
   * The lean path of exec probes and hooks: the same frames as execStream, collected straight
   * into buffers (no stdio streams, no abort signal per exec). */
  async exec(req: ExecRequest): Promise<ExecResult> {
    const frame = req.requestFrame ?? encodeExecFrame(req, { stdin: req.stdin !== undefined });
    const what = `cannot exec in container process ${req.pid}`;
    let timedOut = false;
    let onTimeout: (() => void) | undefined;
    const timer = req.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      onTimeout?.();
    }, req.timeoutMs);
    try {
      let run: ExecRun | undefined;
      const sock = await connectExec(req.stateDir, what, (chunk) => run?.data(chunk));
      if (timedOut) {
        sock.destroy(); // the shim kills what it may have started when the connection closes
        return killedResult([], []);
      }
      run = new ExecRun(sock, what);
      const r0 = run;
      onTimeout = () => r0.timeout();
      const r = await r0.result(frame, req.stdin, () => this.shimAliveSync(req.stateDir));
      if (r.kind === 'exit' && !timedOut) return { ...r.exit, stdout: concat(r.out), stderr: concat(r.errs), timedOut: false };
      if (r.kind === 'lost' && !timedOut) throw r.error; // ERR_EXEC_LOST, ERR_SHIM_PROTOCOL
      if (r.pid) await this.reapGroup(r.pid);
      return killedResult(r.out, r.errs);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Start a process in the running container whose shim owns stateDir, through the shim's exec
   * socket; resolves once it runs. Rejects ERR_EXEC_START (it could not start: stage, errno),
   * ERR_CONTAINER_NOT_RUNNING (no shim listening), ERR_CANCELED (opts.signal).
   */
  async execStream(stateDir: string, req: ExecRequestLike, opts: ExecIo & { signal?: AbortSignal } = {}): Promise<ShimExecSession> {
    const request = encodeExecFrame(req, opts);
    const what = `cannot exec in container process ${req.pid}`;
    const sock = await connectExec(stateDir, what);
    return new Promise<ShimExecSession>((resolve, reject) => {
      const frames = new FrameReader();
      let session: ExecSessionImpl | undefined;
      const fail = (e: Error) => {
        opts.signal?.removeEventListener('abort', onAbort);
        sock.destroy();
        reject(e);
      };
      const onAbort = () => fail(new NodeletError('Canceled', 'ERR_CANCELED', `${what}: canceled before the process started`));
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort);
      sock.on('data', (chunk: Buffer) => {
        let list: Frame[];
        try {
          list = frames.push(chunk);
        } catch (e) {
          return session ? session.lost(e as Error) : fail(e as Error);
        }
        for (const f of list) {
          if (session) {
            session.frame(f);
          } else if (f.type === FRAMES.STARTED) {
            opts.signal?.removeEventListener('abort', onAbort);
            session = new ExecSessionImpl(sock, Number(f.payload.toString()), opts);
            resolve(session);
          } else if (f.type === FRAMES.ERROR) {
            return fail(startError(what, { tag: T.ST_ERROR, fields: f.payload.toString('utf8').split('\0') }, 'ERR_EXEC_START'));
          } else {
            return fail(unavailable('ERR_SHIM_PROTOCOL', `${what}: the shim sent frame ${f.type} before STARTED`));
          }
        }
      });
      sock.on('error', () => {}); // 'close' follows
      sock.on('close', () => {
        if (session) return session.closed();
        // a refusal's ERROR frame can be lost to the EPIPE of our own write: tell the cases apart by the shim
        if (this.shimAliveSync(stateDir)) {
          fail(unavailable('ERR_EXEC_REFUSED', `${what}: the shim dropped the exec connection before starting it (more than ${EXEC_MAX_CONCURRENT} execs at once?); retry`));
        } else {
          fail(failedPrecondition('ERR_CONTAINER_NOT_RUNNING', `${what}: the container's shim is gone (the container exited)`));
        }
      });
      sock.write(request);
    });
  }

  /**
   * Attach to the running container whose shim owns stateDir (CRI Attach): its output from now
   * on, stdin (if the container has it open) and, with its tty, resize. Resolves once connected;
   * the session's exit is the container's; kill() detaches. Rejects ERR_CONTAINER_NOT_RUNNING.
   */
  async attach(stateDir: string, pid: number, opts: ExecIo): Promise<ShimExecSession> {
    const sock = await connectExec(stateDir, `cannot attach to container process ${pid}`, undefined, ATTACH_SOCKET);
    const frames = new FrameReader();
    const session = new ExecSessionImpl(sock, pid, opts, true);
    sock.on('data', (chunk: Buffer) => {
      let list: Frame[];
      try {
        list = frames.push(chunk);
      } catch (e) {
        return session.lost(e as Error);
      }
      for (const f of list) session.frame(f);
    });
    sock.on('error', () => {}); // 'close' follows
    sock.on('close', () => session.closed());
    if (opts.stdin) sock.write(encodeFrame(FRAMES.STDIN)); // this session has stdin (stdinOnce counts it)
    return session;
  }

  /** After a timeout: make sure nothing of the exec's process group is left running. */
  private async reapGroup(pgid: number): Promise<void> {
    for (let i = 0; i < 200; i++) {
      const left = await processGroupMembers(pgid);
      if (left.length === 0) return;
      killQuietly(-pgid, 'SIGKILL');
      await sleep(10);
    }
    throw new NodeletError('Internal', 'ERR_EXEC_LEAK', `exec process group ${pgid} survived SIGKILL for 2 s`);
  }
}
