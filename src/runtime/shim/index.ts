// TypeScript client of the native per-container shim (native/nodelet-shim).
// The shim does everything between clone() and exec() and then monitors the
// container (logs, reaping, exit record); this client spawns it, speaks the
// wire protocol (protocol.ts) and reads the state files it writes.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import { constants as osConstants } from 'node:os';
import { NodeletError, alreadyExists, errnoName, unavailable } from '../../errors.js';
import { getLogger } from '../../log.js';
import { encodeExec, encodePlan, type ExecRequestLike } from './encode.js';
import type { ExecResult } from '../types.js';
import type { ShimPlan } from './plan.js';
import { decodeRecords, TAGS, type WireRecord } from './protocol.js';

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

/** What exec needs: the encoded request (host pid of the container's init, whose
 * mnt/pid/net/ipc/uts namespaces are joined; its cgroups; user, env, cwd, caps)
 * plus what the client itself handles. */
export interface ExecRequest extends ExecRequestLike {
  timeoutMs?: number;
  stdin?: Buffer | string;
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
  constructor(message: string, details: ShimStartDetails, code = 'ERR_CONTAINER_START') {
    super('FailedPrecondition', code, message, { details: { ...details } });
    this.name = 'ShimStartError';
  }
}

const log = getLogger('shim');
const START_TIMEOUT_MS = 30_000;
const EXIT_POLL_MS = 1_000;
const EXEC_PIPE_GRACE_MS = 1_000;
const T = Object.fromEntries(Object.entries(TAGS).map(([k, [n]]) => [k, n])) as Record<keyof typeof TAGS, number>;

export const DEFAULT_SHIM_BINARY = join(dirname(fileURLToPath(import.meta.url)), '../../../native/build/nodelet-shim');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

// The state files are tiny and live on tmpfs (runRoot): read them synchronously. On the
// start/exit hot path each async fs call is a thread-pool round trip, which on a loaded
// machine costs more than the read itself.
function readJson(path: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

function parseStat(s: string): string[] {
  return s.slice(s.lastIndexOf(')') + 2).split(' ');
}

/** /proc/PID/stat fields after the command: [state, ppid, pgrp, ..., starttime at index 19]. */
async function procStat(pid: number): Promise<string[] | undefined> {
  try {
    return parseStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

function procStatSync(pid: number): string[] | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number, startTime?: string): boolean {
  const st = procStatSync(pid);
  if (!st || st[0] === 'Z' || st[0] === 'X') return false;
  return startTime === undefined || st[19] === startTime;
}

/** Live (non-zombie) processes whose process group is `pgid`. */
export async function processGroupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = await procStat(Number(name));
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

function startError(what: string, r: WireRecord, code?: string): ShimStartError {
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
    for (const end = Date.now() + ms; Date.now() < end && pidAlive(pid); ) await sleep(10);
  }

  /** The state the shim recorded in stateDir (exit.json once exited), undefined if none. */
  async readState(stateDir: string): Promise<ShimState | undefined> {
    return this.readStateSync(stateDir);
  }

  private readStateSync(stateDir: string): ShimState | undefined {
    const raw = readJson(join(stateDir, 'exit.json')) ?? readJson(join(stateDir, 'state.json'));
    return raw ? toShimState(raw) : undefined;
  }

  /** Resolves when the shim has recorded the exit; rejects ERR_SHIM_LOST if the shim died without doing so. */
  waitExit(stateDir: string, signal?: AbortSignal): Promise<ShimState> {
    return new Promise((resolve, reject) => {
      let watcher: FSWatcher | undefined;
      let done = false;
      const finish = (fn: () => void) => {
        done = true;
        clearInterval(timer);
        watcher?.close();
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      // Synchronous (tiny files on tmpfs): no check can interleave with another.
      const check = (deep: boolean) => {
        if (done) return;
        try {
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
      const timer = setInterval(() => check(true), EXIT_POLL_MS);
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
    return pidAlive(raw.shimPid, raw.shimStartTime === undefined ? undefined : String(raw.shimStartTime));
  }

  /** Run a process in a running container; kills its whole process group on timeout. */
  async exec(req: ExecRequest): Promise<ExecResult> {
    const payload = encodeExec(req);
    const child = spawnShim(this.binary, ['exec', String(req.pid)], ['pipe', 'pipe', 'pipe', 'pipe', 'pipe'], false);
    (child.stdio[3] as Writable).end(payload);
    (child.stdin as Writable).end(req.stdin ?? '');
    const out: Buffer[] = [];
    const errs: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => errs.push(b));
    let execPid: number | undefined;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    if (req.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        if (execPid) killQuietly(-execPid, 'SIGKILL');
        child.kill('SIGTERM'); // the exec shim kills the group too (covers a pid not yet reported)
      }, req.timeoutMs);
    }
    const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
    try {
      const records = await Promise.race([
        readStatus(child.stdio[4] as Readable, (r) => {
          if (r.tag === T.ST_STARTED) execPid = Number(r.fields[0]);
        }),
        spawnError(child, this.binary),
      ]);
      // Output is complete once the exec'd process is gone; a process that escaped its group
      // (setsid daemon) may still hold the pipes: do not wait for it beyond a grace period.
      await Promise.race([exited, sleep(EXEC_PIPE_GRACE_MS)]);
      child.stdout!.destroy();
      child.stderr!.destroy();
      const err = records.find((r) => r.tag === T.ST_ERROR);
      if (err) throw startError(`cannot exec in container process ${req.pid}`, err, 'ERR_EXEC_START');
      const exit = records.find((r) => r.tag === T.ST_EXIT);
      if (timedOut && execPid) await this.reapGroup(execPid);
      if (!exit) {
        if (timedOut) return { exitCode: 137, signal: 'SIGKILL', stdout: Buffer.concat(out), stderr: Buffer.concat(errs), timedOut };
        throw unavailable('ERR_SHIM_PROTOCOL', `exec in container process ${req.pid}: the shim exited without reporting`);
      }
      const signal = exit.fields[1] || undefined;
      const exitCode = signal ? 128 + (signalNumber(signal) ?? 0) : Number(exit.fields[0]);
      return { exitCode, ...(signal ? { signal } : {}), stdout: Buffer.concat(out), stderr: Buffer.concat(errs), timedOut };
    } finally {
      clearTimeout(timer);
    }
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
