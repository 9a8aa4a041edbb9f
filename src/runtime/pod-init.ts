// The pod-init: the holder of a pod's shared PID namespace
// (shareProcessNamespace). A PID namespace cannot be pinned like net/ipc/uts:
// it dies with its init, so something must be PID 1 for the pod's lifetime
// (kubelet uses the pause container). We run the host's static busybox as
// `sh -c 'while :; do sleep 2147483647 & wait; done'` through the ordinary
// shim: ash's wait() loops on waitpid(-1), so it also reaps the orphans that
// containers leave behind. It runs in its own child cgroup of the pod
// (cgroup v2's no-internal-process rule), as nobody, with no capabilities.

import path from 'node:path';
import { MS } from '../sys/ffi.js';
import type { PinnedNamespaces } from '../network/types.js';
import type { PlanNamespace, ShimPlan } from './shim/plan.js';
import { clampOomScoreAdj, computeRlimits } from './compute-plan.js';

export interface PodInitInput {
  sandboxId: string;
  /** <sandbox>/pod-init: holds rootfs/ (empty dir) and state/ */
  dir: string;
  /** static busybox on the host */
  binary: string;
  namespaces: PinnedNamespaces;
  cgroupProcsFiles: string[];
  nofileHardLimit: number;
  oomScoreAdjFloor?: number;
}

export function computePodInitPlan(inp: PodInitInput): ShimPlan {
  const ns: PlanNamespace[] = [];
  if (inp.namespaces.net) ns.push({ type: 'net', path: inp.namespaces.net });
  if (inp.namespaces.ipc) ns.push({ type: 'ipc', path: inp.namespaces.ipc });
  if (inp.namespaces.uts) ns.push({ type: 'uts', path: inp.namespaces.uts });
  ns.push({ type: 'pid' }, { type: 'mnt' });
  const none = '0x0000000000000000';
  return {
    version: 1,
    containerId: `pod-init-${inp.sandboxId}`,
    stateDir: path.join(inp.dir, 'state'),
    logPath: path.join(inp.dir, 'pod-init.log'),
    logMaxBytes: 64 * 1024,
    logMaxFiles: 1,
    namespaces: ns,
    cgroupProcsFiles: inp.cgroupProcsFiles,
    // like the pause container: the last thing the OOM killer picks
    oomScoreAdj: clampOomScoreAdj(-998, inp.oomScoreAdjFloor).value!,
    rootfs: path.join(inp.dir, 'rootfs'),
    readonlyRootfs: false,
    mounts: [
      { source: inp.binary, target: '/busybox', fstype: 'bind', flags: MS.BIND | MS.RDONLY | MS.NOSUID | MS.NODEV, mkdir: 'file' },
      { source: 'proc', target: '/proc', fstype: 'proc', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, mkdir: 'dir' },
    ],
    devices: [],
    symlinks: [],
    maskedPaths: [],
    readonlyPaths: [],
    rlimits: computeRlimits(inp.nofileHardLimit).rlimits,
    noNewPrivs: true,
    capabilities: { bounding: none, effective: none, permitted: none, inheritable: none, ambient: none },
    uid: 65534,
    gid: 65534,
    additionalGids: [],
    umask: 0o022,
    cwd: '/',
    env: ['PATH=/'],
    argv: ['/busybox', 'sh', '-c', 'while :; do /busybox sleep 2147483647 & wait; done'],
    tty: false,
    stdin: false,
  };
}
