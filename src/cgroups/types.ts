// Public surface of the cgroup subsystem (implemented in src/cgroups/ by a
// v2 driver and a v1 driver behind one interface, detected at start).

import type { QosClass } from '../cri/types.js';

export type CgroupVersion = 'v1' | 'v2';

/** Limits as the kernel sees them; undefined = leave unlimited / default. */
export interface CgroupLimits {
  /** limits.memory in bytes → memory.max / memory.limit_in_bytes */
  memoryMaxBytes?: number;
  /** limits.cpu in millicores → cpu.max / cfs_quota_us (period 100000us) */
  cpuLimitMilli?: number;
  /** requests.cpu in millicores → cpu.weight / cpu.shares (kubelet's formulas) */
  cpuRequestMilli?: number;
  /** pids.max */
  pidsMax?: number;
}

export interface CgroupStats {
  cpuUsageNanos: number;
  /** usage minus inactive_file (kubelet's working set) */
  memoryWorkingSetBytes: number;
  memoryUsageBytes: number;
  pids: number;
  /** number of OOM kills seen in this cgroup (memory.events oom_kill; v1: oom_control oom_kill) */
  oomKills: number;
}

/**
 * A cgroup is named by one absolute path ("/nodelet/burstable/pod<uid>/<ctr>"),
 * the same string on v1 (under each controller hierarchy) and v2.
 */
export interface CgroupManager {
  readonly version: CgroupVersion;
  /** The absolute parent, e.g. "/nodelet" (kubelet: "/kubepods"). */
  readonly parent: string;
  /** Absolute path of a pod's cgroup for its QoS class (Guaranteed pods sit directly under parent). */
  podPath(podUid: string, qos: QosClass): string;
  /** Create (idempotent) a cgroup and the path down to it (enabling controllers on v2), and apply limits. */
  create(path: string, limits: CgroupLimits): Promise<void>;
  /** Re-apply limits to an existing cgroup. */
  update(path: string, limits: CgroupLimits): Promise<void>;
  /**
   * The files a process must write its pid into to join the cgroup: one
   * cgroup.procs on v2, one per controller hierarchy on v1. The shim writes
   * them between clone() and exec().
   */
  procsFiles(path: string): string[];
  /** Kill every process in the cgroup (cgroup.kill on v2; SIGKILL loop over cgroup.procs on v1) and wait until empty. */
  killAll(path: string): Promise<void>;
  /** Remove the cgroup (must be empty; kills leftovers first). Idempotent. */
  remove(path: string): Promise<void>;
  stats(path: string): Promise<CgroupStats>;
  /** Pids currently in the cgroup (recursive). */
  pids(path: string): Promise<number[]>;
  /** True if the cgroup exists. */
  exists(path: string): boolean;
  /**
   * The file the shim reads the cgroup's OOM-kill counter from at exit
   * (v2: memory.events; v1: the memory hierarchy's memory.oom_control).
   */
  oomCounterFile(path: string): string;
  /**
   * Remove the QoS tier cgroups (<parent>/besteffort, <parent>/burstable) and
   * then the parent itself, each only if it holds no tasks and no child cgroups,
   * on every hierarchy the manager writes to. rmdir only: a busy one (another
   * pod, a process) is left alone, nothing outside the parent is touched, and a
   * cgroup that is or contains nodelet's own (/proc/self/cgroup) is never
   * removed. For a foreground run that leaves no trace (`nodelet run`); the
   * daemon keeps them. Idempotent.
   */
  removeEmptyParents(): void;
}
