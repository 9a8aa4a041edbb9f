// Small filesystem helpers for the snapshot store: atomic JSON records and a
// cross-process lock file (O_EXCL + owner pid/start time, stale locks of dead
// owners are broken).

import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';
import { NodeletError } from '../errors.js';

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** temp + fsync + rename + fsync(dir) */
export function writeFileAtomic(path: string, data: string | Buffer): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, path);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dirname(path));
}

export function readJson<T>(path: string): T | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}

/** Start time of a process (field 22 of /proc/PID/stat), undefined if it is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

const myStart = processStartTime(process.pid) ?? '0';

/** Is the owner recorded as "pid start" still alive? */
export function ownerAlive(owner: string): boolean {
  const [pidS, start] = owner.trim().split(' ');
  const pid = Number(pidS);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  const cur = processStartTime(pid);
  return cur !== undefined && (start === undefined || cur === start);
}

export function ownerTag(): string {
  return `${process.pid} ${myStart}`;
}

const held = new Map<string, Promise<void>>();

/**
 * Run fn holding an exclusive lock on `path` (also against other processes).
 * In-process callers queue on a promise; other processes on the file.
 */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
  const prev = held.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chained = prev.then(() => mine);
  held.set(path, chained);
  await prev;
  try {
    await acquireFile(path, opts.timeoutMs ?? 10 * 60_000);
    try {
      return await fn();
    } finally {
      fs.rmSync(path, { force: true });
    }
  } finally {
    release();
    if (held.get(path) === chained) held.delete(path);
  }
}

async function acquireFile(path: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let delay = 5;
  for (;;) {
    try {
      const fd = fs.openSync(path, 'wx', 0o644);
      fs.writeSync(fd, ownerTag());
      fs.closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let owner = '';
    try {
      owner = fs.readFileSync(path, 'utf8');
    } catch {
      continue; // released meanwhile
    }
    // An empty file is a lock being written right now (or its writer died in between:
    // stale after a few seconds); a dead owner's lock is stale.
    let stale = owner !== '' && !ownerAlive(owner);
    if (owner === '') {
      try {
        stale = Date.now() - fs.statSync(path).mtimeMs > 5000;
      } catch {
        continue;
      }
    }
    if (stale) {
      // break it by renaming (only one breaker wins), then retry
      const aside = `${path}.stale-${randomBytes(4).toString('hex')}`;
      try {
        if (fs.readFileSync(path, 'utf8') === owner) fs.renameSync(path, aside);
        fs.rmSync(aside, { force: true });
      } catch {
        /* someone else broke or released it */
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new NodeletError('Unavailable', 'ERR_SNAPSHOT_LOCK_TIMEOUT', `Timed out waiting for the lock ${path} held by process ${owner.split(' ')[0]}; if that process is stuck, stop it and retry`, {
        details: { path, owner },
      });
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 200);
  }
}
