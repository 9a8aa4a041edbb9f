// The plan the TypeScript side computes and the C shim executes, in order,
// deciding nothing. This file is the single definition of its shape; the
// wire encoding lives next to it (protocol.ts) and native/ is checked against
// it by a test so the two sides cannot drift.

import type { DeviceNode } from '../../cri/types.js';

export type NamespaceType = 'mnt' | 'pid' | 'net' | 'ipc' | 'uts' | 'cgroup';

export interface PlanNamespace {
  type: NamespaceType;
  /** Join this namespace (a pinned bind mount or /proc/PID/ns/TYPE); absent = create a new one. */
  path?: string;
}

export interface PlanMount {
  /** Source on the host (bind) or the fs name ("proc", "tmpfs", "devpts", "mqueue", "sysfs"). */
  source: string;
  /** Absolute path inside the container's rootfs. */
  target: string;
  fstype: string;
  /** mount(2) MS_* flags. A bind with MS_RDONLY is remounted read-only after binding. */
  flags: number;
  data?: string;
  /** Create the target as a directory or an empty file if missing. */
  mkdir?: 'dir' | 'file';
}

/** A device node in the container (path absolute inside it, "/dev/null"). */
export type PlanDevice = DeviceNode;

export interface PlanRlimit {
  /** RLIMIT_NOFILE etc. as the Linux resource number. */
  resource: number;
  soft: number;
  hard: number;
}

export interface PlanCapabilities {
  /** 64-bit capability masks as hex strings ("0x00000000a80425fb"). */
  bounding: string;
  effective: string;
  permitted: string;
  inheritable: string;
  ambient: string;
}

export interface ShimPlan {
  version: 1;
  containerId: string;
  /** Directory where the shim keeps state.json / exit.json (atomic writes) and its pid file. */
  stateDir: string;
  /** CRI-format log file and its rotation. */
  logPath: string;
  logMaxBytes: number;
  logMaxFiles: number;
  /** Namespaces to join (path) or create (no path), in this order: joins before creates. */
  namespaces: PlanNamespace[];
  /** cgroup.procs files the shim writes the container's pid into before releasing it. */
  cgroupProcsFiles: string[];
  /** File to read the OOM-kill counter from at exit (memory.events / memory.oom_control); optional. */
  oomCounterFile?: string;
  oomScoreAdj?: number;
  /** Already-mounted root filesystem on the host. */
  rootfs: string;
  readonlyRootfs: boolean;
  /** Mounts performed inside the new mount namespace, in order, relative to rootfs. */
  mounts: PlanMount[];
  devices: PlanDevice[];
  /** Symlinks created in the container (/dev/fd -> /proc/self/fd, ...): [linkPath, target]. */
  symlinks: [string, string][];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** Set only when a new UTS namespace is created here. */
  hostname?: string;
  rlimits: PlanRlimit[];
  noNewPrivs: boolean;
  capabilities: PlanCapabilities;
  /** Seccomp filter (struct sock_filter[] as hex, src/runtime/seccomp); absent = unconfined. */
  seccomp?: string;
  uid: number;
  gid: number;
  additionalGids: number[];
  umask: number;
  cwd: string;
  env: string[];
  argv: string[];
  /** Allocate a pty for the process (stdout/stderr merged). */
  tty: boolean;
  /** A stdin pipe the monitor holds for attach (native/attach.c); otherwise stdin is /dev/null. */
  stdin: boolean;
  /** The first attach session with stdin that ends closes it. */
  stdinOnce?: boolean;
}
