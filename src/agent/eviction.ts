// Local ephemeral-storage eviction, as kubelet's eviction manager does it
// (pkg/kubelet/eviction, localStorageEviction): every housekeeping period the
// disk usage of each running pod is measured and a pod is evicted — Failed,
// reason Evicted, a Warning event, its containers killed with a 1 s grace
// period — when
//   1. a disk-backed emptyDir holds more than its sizeLimit,
//   2. the pod's ephemeral storage (emptyDirs, writable layers, logs) exceeds
//      the sum of its containers' ephemeral-storage limits,
//   3. one container's writable layer plus logs exceed its own limit.
// The messages are kubelet's. Memory-backed emptyDirs are tmpfs mounts of
// sizeLimit bytes: the kernel bounds them (ENOSPC), nothing to measure.
// The decision is pure (decideLocalStorageEviction); measuring walks the
// directories with lstat (st_blocks, hardlinks counted once), like kubelet's
// `du` fallback when no project quota is available.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Pod } from '../pod/api-types.js';
import { parseQuantity, quantityValue, tryParseQuantity } from '../pod/quantity.js';
import { getLogger } from '../log.js';

const log = getLogger('agent.eviction');

/** kubelet's immediateEvictionGracePeriodSeconds */
export const EVICTION_GRACE_SECONDS = 1;
/** kubelet's housekeeping / eviction monitoring period */
export const EVICTION_PERIOD_MS = 10_000;

export interface PodDiskUsage {
  /** bytes used by each emptyDir volume, by volume name */
  volumes: Record<string, number>;
  /** bytes of each container's writable layer and of its logs, by container name */
  containers: Record<string, { rootfs: number; logs: number }>;
}

function limitOf(q: unknown): number | undefined {
  const p = tryParseQuantity(q as string | undefined);
  if (!p) return undefined;
  const v = quantityValue(p);
  return v > 0 ? v : undefined;
}

/** Does this pod have anything local-storage eviction would look at? */
export function hasLocalStorageLimits(pod: Pod): boolean {
  if ((pod.spec.volumes ?? []).some((v) => v.emptyDir && v.emptyDir.medium !== 'Memory' && limitOf(v.emptyDir.sizeLimit) !== undefined)) return true;
  return pod.spec.containers.some((c) => limitOf(c.resources?.limits?.['ephemeral-storage']) !== undefined);
}

/** kubelet's localStorageEviction for one pod: the eviction message, or undefined. */
export function decideLocalStorageEviction(pod: Pod, usage: PodDiskUsage): string | undefined {
  // 1. emptyDir sizeLimit
  for (const v of pod.spec.volumes ?? []) {
    if (!v.emptyDir || v.emptyDir.medium === 'Memory') continue;
    const limit = limitOf(v.emptyDir.sizeLimit);
    const used = usage.volumes[v.name];
    if (limit !== undefined && used !== undefined && used > limit) {
      return `Usage of EmptyDir volume ${JSON.stringify(v.name)} exceeds the limit ${JSON.stringify(String(v.emptyDir.sizeLimit))}. `;
    }
  }
  // 2. the pod's total against the sum of its containers' limits (resourcehelper.PodLimits: regular containers summed)
  const limits = pod.spec.containers.map((c) => c.resources?.limits?.['ephemeral-storage']).filter((q) => q !== undefined);
  if (limits.length > 0) {
    let total = 0;
    for (const q of limits) total += quantityValue(parseQuantity(q));
    let used = 0;
    for (const v of Object.values(usage.volumes)) used += v;
    for (const c of Object.values(usage.containers)) used += c.rootfs + c.logs;
    if (used > total) return `Pod ephemeral local storage usage exceeds the total limit of containers ${formatBytes(total)}. `;
  }
  // 3. each container against its own limit
  for (const c of pod.spec.containers) {
    const q = c.resources?.limits?.['ephemeral-storage'];
    const limit = limitOf(q);
    const u = usage.containers[c.name];
    if (limit !== undefined && u && u.rootfs + u.logs > limit) {
      return `Container ${c.name} exceeded its local ephemeral storage limit ${JSON.stringify(String(q))}. `;
    }
  }
  return undefined;
}

/** A byte count as resource.Quantity's String() prints a BinarySI value: the largest exact binary suffix. */
export function formatBytes(n: number): string {
  const units: [string, number][] = [['Ei', 2 ** 60], ['Pi', 2 ** 50], ['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]];
  for (const [u, f] of units) if (n !== 0 && n % f === 0) return `${n / f}${u}`;
  return String(n);
}

/**
 * Disk usage of a tree in bytes (st_blocks × 512), each inode once, never
 * crossing into another filesystem (a mount inside the tree is not the
 * volume's). A missing directory is 0.
 */
export function diskUsage(dir: string, seen: Set<string> = new Set()): number {
  let st: fs.BigIntStats;
  try {
    st = fs.lstatSync(dir, { bigint: true });
  } catch {
    return 0;
  }
  const dev = st.dev;
  let total = 0;
  const stack: [string, fs.BigIntStats][] = [[dir, st]];
  while (stack.length) {
    const [p, s] = stack.pop()!;
    const id = `${s.dev}:${s.ino}`;
    if (seen.has(id)) continue;
    seen.add(id);
    total += Number(s.blocks) * 512;
    if (!s.isDirectory()) continue;
    let names: string[];
    try {
      names = fs.readdirSync(p);
    } catch {
      continue;
    }
    for (const n of names) {
      const c = path.join(p, n);
      try {
        const cs = fs.lstatSync(c, { bigint: true });
        if (cs.dev === dev) stack.push([c, cs]);
      } catch {
        /* removed while walking */
      }
    }
  }
  return total;
}

export interface EvictionTarget {
  pod: Pod;
  /** host paths of the pod's volumes, by name */
  volumePaths: Record<string, string>;
  /** running containers: name, writable layer dir (if known), log file */
  containers: { name: string; rootfsDir?: string; logPath?: string }[];
}

/** Measure what decideLocalStorageEviction needs. */
export function measurePod(t: EvictionTarget): PodDiskUsage {
  const volumes: Record<string, number> = {};
  for (const v of t.pod.spec.volumes ?? []) {
    const p = t.volumePaths[v.name];
    if (v.emptyDir && v.emptyDir.medium !== 'Memory' && p) volumes[v.name] = diskUsage(p);
  }
  const containers: PodDiskUsage['containers'] = {};
  for (const c of t.containers) {
    const logs = c.logPath ? diskUsage(path.dirname(c.logPath)) : 0;
    const prev = containers[c.name];
    containers[c.name] = { rootfs: (prev?.rootfs ?? 0) + (c.rootfsDir ? diskUsage(c.rootfsDir) : 0), logs: Math.max(prev?.logs ?? 0, logs) };
  }
  return { volumes, containers };
}

/** The periodic monitor: measures the pods that have limits and hands the verdicts to `evict`. */
export class LocalStorageEvictor {
  private timer?: NodeJS.Timeout;
  private busy = false;

  constructor(
    private readonly o: {
      targets: () => Promise<EvictionTarget[]>;
      evict: (pod: Pod, message: string) => void;
      periodMs?: number;
    },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.o.periodMs ?? EVICTION_PERIOD_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One round (also called by tests): returns the uids evicted. */
  async check(): Promise<string[]> {
    if (this.busy) return [];
    this.busy = true;
    const out: string[] = [];
    try {
      for (const t of await this.o.targets()) {
        if (!hasLocalStorageLimits(t.pod)) continue;
        const msg = decideLocalStorageEviction(t.pod, measurePod(t));
        if (msg) {
          log.info('evicting pod', { pod: `${t.pod.metadata.namespace ?? 'default'}/${t.pod.metadata.name}`, message: msg });
          this.o.evict(t.pod, msg);
          out.push(t.pod.metadata.uid!);
        }
      }
    } catch (e) {
      log.warn('eviction check failed', { error: (e as Error).message });
    } finally {
      this.busy = false;
    }
    return out;
  }
}
