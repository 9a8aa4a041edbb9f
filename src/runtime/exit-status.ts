// computeExitStatus: the CRI view of a container's end (exit code, signal,
// reason Completed / Error / OOMKilled, which limit fired) from the shim's
// exit record and the cgroup OOM counters. Pure.

import os from 'node:os';
import type { ShimState } from './shim/index.js';
import type { ContainerStatus } from './types.js';

const SIGNUM = os.constants.signals as Record<string, number>;

export interface ExitInput {
  state: Pick<ShimState, 'exitCode' | 'signal' | 'oomKilled' | 'finishedAt'>;
  /** OOM kills counted in the container's cgroup */
  containerOomKills: number;
  /** OOM kills counted in the pod's cgroup */
  podOomKills: number;
  containerHasMemoryLimit: boolean;
  podHasMemoryLimit?: boolean;
}

export type FinalStatus = Pick<ContainerStatus, 'finishedAt' | 'exitCode' | 'signal' | 'oomKilled' | 'oomScope' | 'reason' | 'message'>;

export function computeExitStatus(inp: ExitInput): FinalStatus {
  const st = inp.state;
  const signal = st.signal || undefined;
  // Like containerd/docker: death by signal N is exit code 128+N.
  const exitCode = st.exitCode ?? (signal && SIGNUM[signal] !== undefined ? 128 + SIGNUM[signal]! : 255);
  const killed = signal === 'SIGKILL' || exitCode === 137;
  // containerd: an OOM kill in the container's own cgroup during its life (TaskOOM) makes the reason
  // OOMKilled whatever the exit code: the victim may be a worker while the main process exits on its own.
  // A pod-level count can be another container's victim: it counts only when this one was SIGKILLed.
  const oomKilled = !!st.oomKilled || inp.containerOomKills > 0 || (inp.podOomKills > 0 && !!inp.podHasMemoryLimit && killed);
  const out: FinalStatus = { finishedAt: st.finishedAt ?? new Date().toISOString(), exitCode, oomKilled };
  if (signal) out.signal = signal;
  if (oomKilled) {
    // The container's own limit when it has one and its counter moved; else the pod's.
    out.oomScope = inp.containerHasMemoryLimit && (inp.containerOomKills > 0 || !inp.podHasMemoryLimit) ? 'container' : inp.podHasMemoryLimit ? 'pod' : 'container';
    out.reason = 'OOMKilled';
    out.message = out.oomScope === 'pod' ? 'the pod memory limit was reached' : 'the container memory limit was reached';
  } else out.reason = exitCode === 0 ? 'Completed' : 'Error';
  return out;
}
