// Pod status from the runtime's view, as kubelet computes it
// (kubelet_pods.go generateAPIPodStatus, getPhase, convertToAPIContainerStatuses,
// pkg/kubelet/status/generate.go for conditions). Pure: time and probe
// results come in as arguments; pass the previous status to keep
// lastTransitionTime stable and terminal phases terminal.

import { constants } from 'node:os';
import type { ContainerStatus as RuntimeContainerStatus } from '../runtime/types.js';
import type { Container, ContainerState, ContainerStatus, Pod, PodCondition, PodPhase, PodStatus } from './api-types.js';
import { isSidecar } from './api-types.js';
import { containerShouldRestart, latestStatus, runtimeExitCode } from './actions.js';
import { getPodQOS } from './qos.js';
import { podIPsOf } from './env.js';

export interface ProbeState {
  /** readiness: true when the readiness probe passes (or there is none and the container started) */
  ready: boolean;
  /** startup probe passed or none */
  started: boolean;
}

export interface StatusOptions {
  now: Date;
  podIPs?: string[];
  hostIPs?: string[];
  /** Shorthand for hostIPs: [hostIP]. */
  hostIP?: string;
  /** Sandbox exists and has its network (PodReadyToStartContainers). */
  sandboxReady?: boolean;
  /** Why a container is waiting: ErrImagePull, ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError ... */
  waitingReasons?: Record<string, { reason: string; message?: string }>;
  /** Termination messages read from the containers' files / logs, by container id. */
  terminationMessages?: Record<string, string>;
  /** Previous status: keeps lastTransitionTime, startTime and terminal phases. */
  previous?: PodStatus;
  /** All containers stopped for good (deleted, deadline exceeded): phase becomes terminal. */
  podIsTerminal?: boolean;
  reason?: string;
  message?: string;
}

const signalNumbers = constants.signals as Record<string, number>;

function iso(s: string | undefined): string | undefined {
  return s ? new Date(s).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
}

function terminatedState(s: RuntimeContainerStatus, c: Container | undefined, msgs: Record<string, string> | undefined): ContainerState {
  if (s.state === 'unknown')
    return { terminated: { exitCode: 137, reason: 'ContainerStatusUnknown', message: 'The container could not be located when the pod was terminated', containerID: `nodelet://${s.id}` } };
  const exitCode = runtimeExitCode(s);
  const reason = s.oomKilled ? 'OOMKilled' : s.reason && !['Completed', 'Error'].includes(s.reason) ? s.reason : exitCode === 0 ? 'Completed' : 'Error';
  const message = msgs?.[s.id] ?? s.message;
  return {
    terminated: {
      exitCode,
      ...(s.signal && signalNumbers[s.signal] ? { signal: signalNumbers[s.signal] } : {}),
      reason,
      ...(message ? { message } : {}),
      startedAt: iso(s.startedAt),
      finishedAt: iso(s.finishedAt),
      containerID: `nodelet://${s.id}`,
    },
  };
  void c;
}

function containerStatus(
  pod: Pod,
  c: Container,
  all: RuntimeContainerStatus[],
  probes: Record<string, ProbeState>,
  opts: StatusOptions,
  defaultWaiting: string,
): ContainerStatus {
  const mine = all.filter((s) => s.name === c.name).sort((a, b) => b.attempt - a.attempt || (a.createdAt < b.createdAt ? 1 : -1));
  const cur = mine[0];
  const prev = mine[1];
  const waiting = opts.waitingReasons?.[c.name];
  const out: ContainerStatus = {
    name: c.name,
    state: {},
    lastState: {},
    ready: false,
    started: false,
    restartCount: cur ? cur.attempt : 0,
    image: c.image ?? '',
    imageID: cur?.imageId ?? '',
    ...(cur ? { containerID: `nodelet://${cur.id}` } : {}),
    // kubelet copies the runtime's ContainerUser (the latest attempt's)
    ...(cur?.user ? { user: { linux: { uid: cur.user.linux.uid, gid: cur.user.linux.gid, supplementalGroups: [...cur.user.linux.supplementalGroups] } } } : {}),
  };
  if (!cur) {
    out.state = { waiting: waiting ? { reason: waiting.reason, ...(waiting.message ? { message: waiting.message } : {}) } : { reason: defaultWaiting } };
    return out;
  }
  if (cur.state === 'running') {
    out.state = { running: { startedAt: iso(cur.startedAt ?? cur.createdAt) } };
    const p = probes[cur.id];
    out.started = p ? p.started : !c.startupProbe;
    out.ready = p ? p.ready && out.started : out.started && !c.readinessProbe;
    if (prev) out.lastState = terminatedState(prev, c, opts.terminationMessages);
  } else if (cur.state === 'created') {
    out.state = { waiting: { reason: waiting?.reason ?? 'ContainerCreating', ...(waiting?.message ? { message: waiting.message } : {}) } };
    if (prev) out.lastState = terminatedState(prev, c, opts.terminationMessages);
  } else if (waiting) {
    // exited and waiting to restart (CrashLoopBackOff ...): the exit becomes lastState
    out.state = { waiting: { reason: waiting.reason, ...(waiting.message ? { message: waiting.message } : {}) } };
    out.lastState = terminatedState(cur, c, opts.terminationMessages);
  } else {
    out.state = terminatedState(cur, c, opts.terminationMessages);
    if (prev) out.lastState = terminatedState(prev, c, opts.terminationMessages);
  }
  void pod;
  return out;
}

/**
 * kubelet getPhase (v1.36: sidecar-aware, ContainerRestartRules on). A stopped container that will not
 * restart (containerShouldRestart: its restartPolicy and rules, else the pod's policy) counts as done:
 * the pod is Succeeded when every stopped container exited 0, Failed otherwise, and Running while any
 * stopped one will restart. A failed regular init container that will not restart fails the pod.
 */
export function getPhase(pod: Pod, init: ContainerStatus[], app: ContainerStatus[], podIsTerminal: boolean): PodPhase {
  const spec = pod.spec;
  const find = (list: ContainerStatus[], n: string) => list.find((s) => s.name === n);
  let pendingRegularInit = 0;
  let pendingSidecars = 0;
  let failedInitNotRestartable = 0;
  for (const c of spec.initContainers ?? []) {
    if (isSidecar(c)) continue;
    const s = find(init, c.name);
    const last = s?.state.terminated ?? (s?.state.waiting ? s.lastState.terminated : undefined);
    if (!s || s.state.running || !last) {
      pendingRegularInit++;
      continue;
    }
    if (last.exitCode !== 0 && !containerShouldRestart(c, spec, last.exitCode)) failedInitNotRestartable++;
  }
  let unknown = 0, running = 0, waiting = 0, stopped = 0, stoppedNotRestartable = 0, succeeded = 0;
  for (const c of spec.initContainers ?? []) {
    if (!isSidecar(c)) continue;
    const s = find(init, c.name);
    if (!s) unknown++;
    else if (s.state.running) {
      if (!s.started) pendingSidecars++;
      running++;
    } else if (s.state.terminated) {
      /* terminated sidecars do not count for the phase */
    } else if (s.state.waiting) {
      if (!s.lastState.terminated) {
        pendingSidecars++;
        waiting++;
      }
    } else {
      pendingSidecars++;
      unknown++;
    }
  }
  for (const c of spec.containers) {
    const s = find(app, c.name);
    if (!s) {
      unknown++;
      continue;
    }
    if (s.state.running) {
      running++;
      continue;
    }
    const last = s.state.terminated ?? (s.state.waiting ? s.lastState.terminated : undefined);
    if (last) {
      stopped++;
      if (!containerShouldRestart(c, spec, last.exitCode)) stoppedNotRestartable++;
      if (s.state.terminated && last.exitCode === 0) succeeded++;
    } else if (s.state.waiting) waiting++;
    else unknown++;
  }
  if (failedInitNotRestartable > 0) return 'Failed';
  // kubelet's podHasInitialized: a regular container has started
  const podHasInitialized = app.some((s) => s.state.running || s.state.terminated || s.lastState.terminated);
  if (pendingRegularInit > 0 || (pendingSidecars > 0 && !podHasInitialized) || waiting > 0) return 'Pending';
  if (running > 0 && unknown === 0) return 'Running';
  if (running === 0 && stopped > 0 && unknown === 0) {
    // a terminal pod's containers are not restarted, whatever the policies say
    if (podIsTerminal) return stopped === succeeded ? 'Succeeded' : 'Failed';
    if (stopped !== stoppedNotRestartable) return 'Running'; // at least one is restarting
    return stopped === succeeded ? 'Succeeded' : 'Failed';
  }
  return 'Pending';
}

function condition(type: string, ok: boolean, now: string, prev: PodStatus | undefined, reason?: string, message?: string): PodCondition {
  const status = ok ? 'True' : 'False';
  const old = prev?.conditions?.find((c) => c.type === type);
  const lastTransitionTime = old && old.status === status && old.lastTransitionTime ? old.lastTransitionTime : now;
  return { type, status, lastProbeTime: null, lastTransitionTime, ...(!ok && reason ? { reason } : {}), ...(!ok && message ? { message } : {}) };
}

/** The conditions kubelet sets itself; every other type belongs to someone else and is kept as it is. */
export const KUBELET_OWNED_CONDITIONS: ReadonlySet<string> = new Set(['PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready']);

/**
 * kubelet status.GeneratePodReadyCondition's readiness-gate part: why the gates of spec.readinessGates keep
 * the pod from Ready (a gate's condition missing from `conditions`, or not True), or undefined when none does.
 */
export function readinessGatesMessage(pod: Pick<Pod, 'spec'>, conditions: readonly PodCondition[]): string | undefined {
  const unready: string[] = [];
  for (const g of pod.spec.readinessGates ?? []) {
    const c = conditions.find((x) => x.type === g.conditionType);
    if (!c) unready.push(`corresponding condition of pod readiness gate ${JSON.stringify(g.conditionType)} does not exist.`);
    else if (c.status !== 'True') unready.push(`the status of pod readiness gate ${JSON.stringify(g.conditionType)} is not "True", but ${c.status}`);
  }
  return unready.length ? unready.join(', ') : undefined;
}

/**
 * kubelet GeneratePodReadyCondition: with ContainersReady not True, Ready is the same (reason and message);
 * else False with ReadinessGatesNotReady while a readiness gate is not satisfied, else True.
 */
export function podReadyCondition(pod: Pick<Pod, 'spec'>, containersReady: PodCondition, conditions: readonly PodCondition[], now: string, prev: PodStatus | undefined): PodCondition {
  if (containersReady.status !== 'True') return condition('Ready', false, now, prev, containersReady.reason, containersReady.message);
  const gates = readinessGatesMessage(pod, conditions);
  return gates ? condition('Ready', false, now, prev, 'ReadinessGatesNotReady', gates) : condition('Ready', true, now, prev);
}

export function computePodStatus(
  pod: Pod,
  runtimeStatuses: RuntimeContainerStatus[],
  probeStates: Record<string, ProbeState>,
  opts: StatusOptions,
): PodStatus {
  const now = iso(opts.now.toISOString())!;
  const prev = opts.previous;
  const apps = pod.spec.containers;
  const inits = pod.spec.initContainers ?? [];
  const appStarted = apps.some((c) => latestStatus(runtimeStatuses, c.name));
  // kubelet's default waiting reason: PodInitializing when the pod has init containers, else ContainerCreating
  const defaultWaiting = inits.length > 0 ? 'PodInitializing' : 'ContainerCreating';
  const initStatuses = inits.map((c) => {
    const s = containerStatus(pod, c, runtimeStatuses, probeStates, opts, defaultWaiting);
    // kubelet's prober manager (UpdatePodStatus): a regular init container is ready once it exited 0
    if (!isSidecar(c)) s.ready = s.state.terminated?.exitCode === 0;
    return s;
  });
  const appStatuses = apps.map((c) => containerStatus(pod, c, runtimeStatuses, probeStates, opts, defaultWaiting));

  let phase = getPhase(pod, initStatuses, appStatuses, !!opts.podIsTerminal);
  if (prev?.phase === 'Succeeded' || prev?.phase === 'Failed') phase = prev.phase; // terminal phases never change

  // Initialized: regular init containers succeeded and sidecars started (or the app containers have started)
  const incomplete = inits
    .filter((c, i) => {
      const s = initStatuses[i]!;
      if (isSidecar(c)) return !(s.state.running && s.started);
      return !(s.state.terminated && s.state.terminated.exitCode === 0);
    })
    .map((c) => c.name);
  const initialized = appStarted || incomplete.length === 0;
  const sidecarStatuses = initStatuses.filter((_, i) => isSidecar(inits[i]!));
  const unready = [...sidecarStatuses, ...appStatuses].filter((s) => !s.ready).map((s) => s.name);
  const completed = phase === 'Succeeded';
  const containersReady = unready.length === 0 && !completed && phase !== 'Failed';
  const notReadyReason = completed ? 'PodCompleted' : 'ContainersNotReady';
  const notReadyMsg = completed ? undefined : `containers with unready status: [${unready.join(' ')}]`;
  const startTime = prev?.startTime ?? now;
  const sandboxReady = opts.sandboxReady ?? (opts.podIPs?.length ?? 0) > 0;
  const containersReadyCond = condition('ContainersReady', containersReady, now, prev, notReadyReason, notReadyMsg);
  const conditions: PodCondition[] = [
    condition('PodReadyToStartContainers', sandboxReady && !opts.podIsTerminal, now, prev),
    condition('Initialized', initialized, now, prev, 'ContainersNotInitialized', `containers with incomplete status: [${incomplete.join(' ')}]`),
    // the readiness gates' conditions are set by others: none is known here (the cluster status syncer
    // evaluates the gates again against the API server's conditions, src/cluster/status-syncer.ts)
    podReadyCondition(pod, containersReadyCond, [], now, prev),
    containersReadyCond,
    condition('PodScheduled', true, now, prev ?? { conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: pod.metadata.creationTimestamp }] }),
  ];
  const hostIPs = opts.hostIPs ?? (opts.hostIP ? [opts.hostIP] : []);
  // kubelet generateAPIPodStatus: hostNetwork pods inherit the node's IPs as their pod IPs
  const podIPs = podIPsOf(pod, opts.podIPs ?? [], hostIPs);
  return {
    phase,
    conditions,
    ...(opts.reason ? { reason: opts.reason } : {}),
    ...(opts.message ? { message: opts.message } : {}),
    ...(hostIPs[0] ? { hostIP: hostIPs[0], hostIPs: hostIPs.map((ip) => ({ ip })) } : {}),
    ...(podIPs[0] ? { podIP: podIPs[0], podIPs: podIPs.map((ip) => ({ ip })) } : {}),
    startTime,
    ...(inits.length ? { initContainerStatuses: initStatuses } : {}),
    containerStatuses: appStatuses,
    qosClass: getPodQOS(pod),
  };
}
