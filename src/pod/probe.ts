// The pure parts of kubelet's prober worker (pkg/kubelet/prober/worker.go):
// probeDue (initial delay, startup gating, hold after a liveness/startup
// failure, readiness failing when stopped) and computeProbeState
// (success/failure thresholds), plus the target port rule. The checks
// themselves (sockets, exec through the runtime) are src/probe/.

import type { Probe } from './api-types.js';

export type ProbeResultKind = 'success' | 'failure' | 'unknown';
export type ProbeKind = 'liveness' | 'readiness' | 'startup';

/**
 * One check's result and its output (kept in the probe event / status message). `warning` is
 * kubelet's probe.Warning (an HTTP redirect to another host, not followed): published as a
 * success, and recorded as a `ProbeWarning` event.
 */
export interface ProbeOutcome {
  result: ProbeResultKind | 'warning';
  output: string;
}

/** A probe's port: a number, a numeric string, or the name of one of the container's ports. */
export function resolvePort(port: number | string, ports: { name?: string; containerPort: number }[]): number {
  if (typeof port === 'number') return port;
  if (/^\d+$/.test(port)) return Number(port);
  const p = ports.find((x) => x.name === port);
  if (!p) throw new Error(`couldn't find port "${port}" in the container's ports`);
  return p.containerPort;
}

export interface ProbeWorkerState {
  /** container the state belongs to; a new container resets it */
  containerId?: string;
  /** the result kubelet publishes (results manager) */
  result: ProbeResultKind;
  lastResult?: ProbeResultKind;
  resultRun: number;
  /** after a liveness/startup failure: stop probing until a new container */
  onHold: boolean;
}

/** kubelet's initial results: readiness Failure, liveness Success, startup Unknown. */
export function initialProbeState(kind: ProbeKind, containerId?: string): ProbeWorkerState {
  return { containerId, result: kind === 'readiness' ? 'failure' : kind === 'liveness' ? 'success' : 'unknown', resultRun: 0, onHold: false };
}

export interface ProbeDueInput {
  kind: ProbeKind;
  probe: Probe;
  containerId: string;
  running: boolean;
  /** epoch ms the container started */
  startedAt: number;
  /** startup probe passed (or the container has none) */
  started: boolean;
  now: number;
}

/**
 * Whether a probe should run now and the state to keep (kubelet worker.doProbe
 * preamble): a new container resets the state; a stopped container makes
 * readiness fail; liveness/readiness wait for the startup probe; nothing runs
 * before initialDelaySeconds or while on hold.
 */
export function probeDue(prev: ProbeWorkerState | undefined, i: ProbeDueInput): { due: boolean; state: ProbeWorkerState } {
  let state = prev && prev.containerId === i.containerId ? prev : initialProbeState(i.kind, i.containerId);
  if (!i.running) {
    if (i.kind === 'readiness' && state.result !== 'failure') state = { ...state, result: 'failure' };
    return { due: false, state };
  }
  if (state.onHold) return { due: false, state };
  if (i.kind === 'startup' && i.started) return { due: false, state };
  if (i.kind !== 'startup' && !i.started) return { due: false, state };
  if (i.now - i.startedAt < (i.probe.initialDelaySeconds ?? 0) * 1000) return { due: false, state };
  return { due: true, state };
}

/** Apply one probe result with success/failure thresholds; `changed` when the published result flips. */
export function computeProbeState(prev: ProbeWorkerState, result: ProbeOutcome['result'], probe: Probe, kind: ProbeKind): { state: ProbeWorkerState; changed: boolean } {
  // a warning is a success (kubelet prober.go); errors and unknown count as failures
  const r: ProbeResultKind = result === 'success' || result === 'warning' ? 'success' : 'failure';
  const run = prev.lastResult === r ? prev.resultRun + 1 : 1;
  const next: ProbeWorkerState = { ...prev, lastResult: r, resultRun: run };
  const failT = probe.failureThreshold ?? 3;
  const succT = probe.successThreshold ?? 1;
  if ((r === 'failure' && run < failT) || (r === 'success' && run < succT)) return { state: next, changed: false };
  const changed = next.result !== r;
  next.result = r;
  if ((kind === 'liveness' || kind === 'startup') && r === 'failure') {
    next.onHold = true;
    next.resultRun = 0;
  }
  return { state: next, changed };
}
