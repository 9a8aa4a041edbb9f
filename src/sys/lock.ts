// Cross-process lock files (one implementation for the content store, the image
// store and the snapshot store).
//
// A lock is a file whose first line names its holder: "<pid> <starttime>\n", the
// start time being field 22 of /proc/<pid>/stat. It is created complete and in one
// step: the line is written to a temp file which is then link(2)ed to the lock name
// (EEXIST: somebody holds it), so a lock file is never seen empty or half written.
//
// THE staleness rule: a lock is stale when its holder is not running (no such pid,
// a zombie) or the pid now belongs to another process (its start time differs), or
// when its first line is not "<pid> <starttime>" (this code never writes such a file;
// it is a lock from a crashed kernel or an old format).
//
// Taking over a stale lock, so that two takers cannot both win:
//   1. open the lock file (O_APPEND) and keep it open: that pins this inode;
//   2. append "claim <pid> <starttime>" to it (O_APPEND writes do not interleave);
//   3. the winner is the FIRST claim whose claimer is still running: every taker
//      reads the same ordered list, so they agree; the others return "busy";
//   4. the winner checks the lock name still points at this inode (only the current
//      winner may replace it, so this cannot change before step 5) and
//   5. rename(2)s its own complete lock file over the name: atomic, no moment
//      without a lock file for a third process to slip into.
// A winner that dies between 3 and 5 is skipped by the next taker (step 3 again).
// The holder releases by unlinking the file, after checking it is still its own.
// Requires a local filesystem (atomic O_APPEND, link, rename): /run, /var/lib, /dev/shm.

import * as fs from 'node:fs';
import { NodeletError } from '../errors.js';
import { tempNameFor } from './atomic.js';
import { processRunning, processStartTime, sleep } from './proc.js';

export interface LockHolder {
  pid: number;
  startTime: string;
}

const SELF: LockHolder = { pid: process.pid, startTime: processStartTime(process.pid) ?? '0' };
const SELF_LINE = `${SELF.pid} ${SELF.startTime}`;
const CLAIM = 'claim ';
const LOCK_MODE = 0o644;
const READ_MAX = 64 * 1024;

/** "<pid> <starttime>" of this process: the first line of every lock it holds. */
export function lockHolderLine(): string {
  return SELF_LINE;
}

/** Parse a holder line; undefined unless it is exactly "<pid> <starttime>" (decimal, pid > 0). */
export function parseLockHolder(line: string | undefined): LockHolder | undefined {
  const m = /^\s*(\d+) (\d+)\s*$/.exec(line ?? '');
  if (!m) return undefined;
  const pid = Number(m[1]);
  return pid > 0 && Number.isSafeInteger(pid) ? { pid, startTime: m[2]! } : undefined;
}

/** The staleness rule, inverted: is this holder (a parsed line, or the line itself) still the running process it names? */
export function lockHolderAlive(holder: LockHolder | string | undefined): boolean {
  const h = typeof holder === 'string' ? parseLockHolder(holder) : holder;
  return !!h && processRunning(h.pid, h.startTime);
}

/** The holder recorded in a lock file (undefined if there is no lock file or it has no valid holder line). */
export function readLockHolder(file: string): LockHolder | undefined {
  try {
    return parseLockHolder(fs.readFileSync(file, 'utf8').split('\n', 1)[0]);
  } catch {
    return undefined;
  }
}

function readFd(fd: number): string {
  const buf = Buffer.allocUnsafe(READ_MAX);
  let n = 0;
  for (;;) {
    const r = fs.readSync(fd, buf, n, READ_MAX - n, n);
    if (r === 0 || n + r >= READ_MAX) return buf.toString('utf8', 0, n + r);
    n += r;
  }
}

/** A complete lock file of ours, under a temp name next to `file`. */
function writeOwnTemp(file: string): string {
  const tmp = tempNameFor(file);
  fs.writeFileSync(tmp, SELF_LINE + '\n', { flag: 'wx', mode: LOCK_MODE });
  return tmp;
}

/** link(2) a complete lock file to the name: true if we created the lock, false if it exists. */
function createLock(file: string): boolean {
  const tmp = writeOwnTemp(file);
  try {
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** One takeover attempt of the existing lock file: 'taken', 'busy' (a live holder or another taker wins) or 'retry' (it changed). */
function takeOver(file: string): 'taken' | 'busy' | 'retry' {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_APPEND | fs.constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'retry'; // released meanwhile
    throw e;
  }
  try {
    let text = readFd(fd);
    let lines = text.split('\n');
    if (lockHolderAlive(lines[0])) return 'busy';
    const mine = CLAIM + SELF_LINE;
    if (!lines.includes(mine)) {
      // A claim starts a line (a foreign file may lack the final newline; an extra blank line is harmless).
      fs.writeSync(fd, (text.endsWith('\n') ? '' : '\n') + mine + '\n');
      text = readFd(fd);
      lines = text.split('\n');
    }
    const winner = lines.slice(1).find((l) => l.startsWith(CLAIM) && lockHolderAlive(l.slice(CLAIM.length)));
    if (winner !== mine) return 'busy';
    const held = fs.fstatSync(fd);
    const cur = fs.lstatSync(file, { throwIfNoEntry: false });
    if (!cur || cur.ino !== held.ino || cur.dev !== held.dev) return 'retry';
    const tmp = writeOwnTemp(file);
    try {
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    return 'taken';
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Try once to take the lock (does not wait): true if this process now holds it,
 * false if a live process holds it (this one included) or another taker is
 * taking over a stale one right now.
 */
export function tryLock(file: string): boolean {
  for (let i = 0; i < 8; i++) {
    if (createLock(file)) return true;
    const r = takeOver(file);
    if (r === 'taken') return true;
    if (r === 'busy') return false;
  }
  return false;
}

/** Release a lock this process holds: removes the file only if it still names this process. Idempotent. */
export function unlock(file: string): void {
  let first: string;
  try {
    first = fs.readFileSync(file, 'utf8').split('\n', 1)[0]!;
  } catch {
    return;
  }
  if (first === SELF_LINE) fs.rmSync(file, { force: true });
}

export interface LockWaitOptions {
  /** Give up after this long (default: wait forever) with a NodeletError (Unavailable) ERR_LOCK_TIMEOUT. */
  timeoutMs?: number;
  /** Longest pause between attempts (default 200 ms; they start at 5 ms and double). */
  pollMs?: number;
  signal?: AbortSignal;
  /** Called once, the first time the lock is found held. */
  onWait?: () => void;
}

/** Wait for the lock (polling with backoff) and take it; release with unlock(file). */
export async function acquireLock(file: string, opts: LockWaitOptions = {}): Promise<void> {
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const maxDelay = opts.pollMs ?? 200;
  let delay = Math.min(5, maxDelay);
  let waited = false;
  for (;;) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (tryLock(file)) return;
    if (!waited) opts.onWait?.();
    waited = true;
    if (Date.now() > deadline) {
      const h = readLockHolder(file);
      throw new NodeletError(
        'Unavailable',
        'ERR_LOCK_TIMEOUT',
        `Timed out after ${opts.timeoutMs} ms waiting for the lock ${file}${h ? ` held by process ${h.pid}; if that process is stuck, stop it and retry` : ''}`,
        { details: { path: file, ...(h ? { holderPid: h.pid } : {}) } },
      );
    }
    await sleep(delay, opts.signal);
    delay = Math.min(delay * 2, maxDelay);
  }
}

const queues = new Map<string, Promise<void>>();

/**
 * Run fn holding the lock `file`, against other processes (the lock file) and
 * other callers in this process (they queue on a promise, in call order, instead
 * of polling the file). Not reentrant: nesting the same file deadlocks.
 */
export async function withLock<T>(file: string, fn: () => Promise<T> | T, opts: LockWaitOptions = {}): Promise<T> {
  const prev = queues.get(file) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chained = prev.then(() => mine);
  queues.set(file, chained);
  await prev;
  try {
    await acquireLock(file, opts);
    try {
      return await fn();
    } finally {
      unlock(file);
    }
  } finally {
    release();
    if (queues.get(file) === chained) queues.delete(file);
  }
}
