// Pods of a `nodelet run` that died without tearing them down (SIGKILL, OOM
// kill, power to the terminal cut with no SIGHUP...). `nodelet run` marks every
// pod it starts with the annotation
//
//   nodelet.io/run-owner: "<pid>:<start time>"
//
// (the start time is field 22 of /proc/<pid>/stat: a pid plus its start time
// names one process for the life of the host, so a reused pid is not taken
// for the owner). The agent persists the pod with it under
// <root>/pods/<uid>/pod.json. The next `nodelet run` or `nodelet daemon` on the
// same --root removes the pods whose owner is gone — no `nodelet run` would
// ever come back for them — and says so. Pods of a live owner (two `run`s on
// one root) are never touched.
//
// isOrphan is the pure decision; reapRunOrphans carries it out with the agent.
import path from 'node:path';
import type { NodeAgent } from './node-agent.js';
import { PodStore, type PodRecordFile } from './pod-store.js';
import { tryLock } from '../sys/lock.js';
import { procStat, processStartTime } from '../sys/proc.js';

export const RUN_OWNER_ANNOTATION = 'nodelet.io/run-owner';

export interface RunOwner {
  pid: number;
  startTime: string;
}

/** The annotation value naming this process (or `pid`). */
export function runOwnerValue(pid = process.pid, startTime = processStartTime(pid)): string {
  return `${pid}:${startTime ?? '0'}`;
}

/** "<pid>:<start time>" → owner; undefined for anything else. */
export function parseRunOwner(value: string | undefined): RunOwner | undefined {
  const m = /^(\d+):(\d+)$/.exec(value?.trim() ?? '');
  if (!m) return undefined;
  const pid = Number(m[1]);
  return Number.isSafeInteger(pid) && pid > 0 ? { pid, startTime: m[2]! } : undefined;
}

/** Start time of the running (not zombie) process `pid`, or undefined when there is none. */
export type ProcLookup = (pid: number) => string | undefined;

/** /proc/<pid>/stat: a zombie (a dead `run` nobody has reaped yet) is not running. */
export const procStartTime: ProcLookup = (pid) => {
  const st = procStat(pid);
  return !st || st[0] === 'Z' || st[0] === 'X' ? undefined : st[19];
};

/**
 * The owner named by the annotation is gone: no process with that pid, or the
 * pid now belongs to a process that started at another time (pid reuse). No
 * or a malformed annotation is never an orphan (not a `run` pod, or not ours to judge).
 */
export function isOrphan(annotation: string | undefined, procLookup: ProcLookup = procStartTime): boolean {
  const owner = parseRunOwner(annotation);
  if (!owner) return false;
  return procLookup(owner.pid) !== owner.startTime;
}

export interface RunOrphan {
  uid: string;
  namespace: string;
  name: string;
  owner: RunOwner;
}

export type ReapAgent = Pick<NodeAgent, 'getPod' | 'addPod' | 'deletePod'>;

export interface ReapOptions {
  /** --root: the pod records are <root>/pods/<uid>/pod.json */
  root: string;
  procLookup?: ProcLookup;
}

/** Persisted pod records (the agent's <root>/pods/<uid>/pod.json), unreadable ones skipped. */
function readRecords(root: string): PodRecordFile[] {
  return new PodStore({ root }).loadAll();
}

/** One warning line per dead owner: the pods, and that their `nodelet run` is gone. */
export function orphanWarnings(orphans: RunOrphan[]): string[] {
  const byOwner = new Map<number, RunOrphan[]>();
  for (const o of orphans) byOwner.set(o.owner.pid, [...(byOwner.get(o.owner.pid) ?? []), o]);
  return [...byOwner].map(([pid, list]) => {
    const names = list.map((o) => `${o.namespace}/${o.name}`).join(', ');
    return `removing ${list.length === 1 ? 'pod' : 'pods'} ${names}: left running by a "nodelet run" (pid ${pid}) that is gone`;
  });
}

/**
 * Find the pods of dead `nodelet run`s under `root`, tell `log` (one line per
 * dead run), and delete them through `agent` (gracefully, with each pod's own
 * grace period: the deletion its owner would have done). A pod the agent does
 * not have yet (`nodelet run`: it recovers nothing else) is handed to it first
 * with its persisted state. Each pod is claimed with a lock file in its
 * directory (removed with the directory), so two reapers starting at once do
 * not tear the same pod down twice. `done` resolves when they are all gone.
 */
export function reapRunOrphans(agent: ReapAgent, log: (line: string) => void, opts: ReapOptions): { orphans: RunOrphan[]; done: Promise<void> } {
  const lookup = opts.procLookup ?? procStartTime;
  const orphans: RunOrphan[] = [];
  const deletions: Promise<void>[] = [];
  for (const rec of readRecords(opts.root)) {
    const meta = rec.pod.metadata;
    const annotation = meta.annotations?.[RUN_OWNER_ANNOTATION];
    if (!isOrphan(annotation, lookup)) continue;
    const uid = meta.uid!;
    if (!claim(path.join(opts.root, 'pods', uid, 'reap.lock'))) continue; // a live reaper has it
    orphans.push({ uid, namespace: meta.namespace ?? 'default', name: meta.name ?? uid, owner: parseRunOwner(annotation)! });
    if (!agent.getPod(uid)) agent.addPod(rec.pod, rec.objects ?? { configMaps: [], secrets: [] }, { terminal: !!rec.terminal, failure: rec.failure });
    deletions.push(agent.deletePod(uid, meta.deletionTimestamp ? meta.deletionGracePeriodSeconds : undefined));
  }
  for (const line of orphanWarnings(orphans)) log(line);
  return { orphans, done: Promise.all(deletions).then(() => undefined) };
}

function claim(file: string): boolean {
  try {
    return tryLock(file);
  } catch {
    return true; // no lock possible here (read-only dir?): reap anyway, as before locks existed
  }
}
