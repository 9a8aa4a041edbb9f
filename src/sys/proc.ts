// Process and small-file helpers shared by every layer: is a pid alive, the
// process start time from /proc/<pid>/stat (what tells a reused pid from the
// original process), tolerant JSON reads of state files, and sleep.

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/**
 * kill(pid, 0): a process with this pid exists (EPERM counts: it exists, it is
 * just not ours). A zombie or a reused pid also counts: use processRunning with
 * the recorded start time when that matters.
 */
export function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Fields of a /proc/<pid>/stat line after "(comm)": [state, ppid, pgrp, ..., starttime at index 19]. */
export function parseProcStat(line: string): string[] {
  return line.slice(line.lastIndexOf(')') + 2).trimEnd().split(' ');
}

/** The fields of /proc/<pid>/stat after the command (see parseProcStat), undefined if the process is gone. */
export function procStat(pid: number): string[] | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** procStat without blocking the event loop (scans over every pid in /proc). */
export async function procStatAsync(pid: number): Promise<string[] | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    return parseProcStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Start time of a process: field 22 of /proc/<pid>/stat (clock ticks since
 * boot), as the decimal string the kernel prints; undefined if it is gone.
 * A pid plus its start time names one process for the life of the host.
 */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.[19];
}

/**
 * The process `pid` is running (not a zombie, not being reaped) and, when
 * `startTime` is given, is the same process that had that start time (the pid
 * was not reused).
 */
export function processRunning(pid: number, startTime?: string): boolean {
  const st = procStat(pid);
  if (!st || st[0] === 'Z' || st[0] === 'X') return false;
  return startTime === undefined || st[19] === startTime;
}

export interface ReadJsonOptions {
  /** Return undefined (instead of throwing) when the file exists but cannot be read or parsed. */
  ignoreInvalid?: boolean;
}

/**
 * Parse a JSON file, or undefined if it does not exist (ENOENT, or ENOTDIR: a
 * parent is missing or a file). Other read errors and invalid JSON throw unless
 * `ignoreInvalid`. Synchronous: state files are tiny and this is on hot paths
 * where an async read costs a thread-pool round trip.
 */
export function readJsonIfExists<T>(file: string, opts: ReadJsonOptions = {}): T | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || opts.ignoreInvalid) return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    if (opts.ignoreInvalid) return undefined;
    throw e;
  }
}

/** Resolve after `ms`; with a signal, reject with its reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (!signal) return new Promise((r) => setTimeout(r, ms));
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Waits for `p`, at most `ms`; no timer is left pending either way. Rejects only if `p` does. */
export async function waitAtMost(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<void>((r) => (t = setTimeout(r, ms)))]);
  } finally {
    clearTimeout(t);
  }
}
