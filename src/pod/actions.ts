// What to do to bring a pod's containers to its spec: a pure decider after
// kubelet's kuberuntime_manager.go computePodActions (with native sidecars,
// KEP-753, and the containers' own restartPolicy / restartPolicyRules,
// KEP-5307). The orchestrator carries the actions out in order:
//   1. killPod: stop every container (app containers first, then sidecars in
//      reverse order: see killOrder) and the sandbox;
//   2. createSandbox: run a new sandbox (attempt = sandboxAttempt);
//   3. containersToKill: stop those containers (liveness failure, unknown state);
//   4. initContainerToStart: start that init container (or sidecar), then
//      re-sync; 5. containersToStart: start these app containers.
// Before starting a container that ran before, record its restart with
// backoff.next(key, eventTime, now) as given in `backoffUpdates`.

import { constants } from 'node:os';
import type { ContainerStatus as RuntimeContainerStatus, PodSandboxStatus } from '../runtime/types.js';
import type { Container, ContainerRestartRule, Pod, PodSpec } from './api-types.js';
import { isSidecar } from './api-types.js';
import { Backoff, backoffKey } from './backoff.js';
import type { ProbeResultKind } from './probe.js';

export interface RuntimePodStatus {
  sandboxes: Pick<PodSandboxStatus, 'id' | 'state' | 'createdAt' | 'ips'>[];
  containers: RuntimeContainerStatus[];
}

export interface ActionOptions {
  now: number;
  backoff: Backoff;
  /** Latest liveness / startup probe results by container id; `started` = startup probe passed (or none). */
  probe?: (containerId: string, kind: 'liveness' | 'startup') => ProbeResultKind | undefined;
  started?: (containerId: string) => boolean;
  /** The pod is being deleted: kill everything, start nothing. */
  deleting?: boolean;
}

export interface ContainerToStart {
  name: string;
  attempt: number;
  init: boolean;
}

export interface ContainerToKill {
  id: string;
  name: string;
  /** kubelet's reasons: "LivenessProbe", "StartupProbe", "Unknown", ... */
  reason: string;
  message: string;
  /** probe-level terminationGracePeriodSeconds when the kill comes from a probe */
  gracePeriodSeconds?: number;
}

export interface ContainerInBackoff {
  name: string;
  init: boolean;
  /** epoch ms at which the restart may happen */
  until: number;
  /** kubelet's: 'back-off 20s restarting failed container=web pod=web_default(uid)' */
  message: string;
}

export interface PodActions {
  killPod: boolean;
  createSandbox: boolean;
  /** the sandbox to use when not creating one */
  sandboxId?: string;
  sandboxAttempt: number;
  initContainerToStart?: ContainerToStart;
  containersToStart: ContainerToStart[];
  containersToKill: ContainerToKill[];
  /** Containers that must restart but are in CrashLoopBackOff. */
  backoffs: ContainerInBackoff[];
  /** Record these with backoff.next(key, eventTime, now) when the matching container is started. */
  backoffUpdates: { name: string; key: string; eventTime: number }[];
  /** Earliest time a new sync is useful for back-offs (epoch ms). */
  nextSyncAt?: number;
}

/** Latest runtime status (highest attempt, then newest) for a container name. */
export function latestStatus(statuses: RuntimeContainerStatus[], name: string): RuntimeContainerStatus | undefined {
  let best: RuntimeContainerStatus | undefined;
  for (const s of statuses) {
    if (s.name !== name) continue;
    if (!best || s.attempt > best.attempt || (s.attempt === best.attempt && s.createdAt > best.createdAt)) best = s;
  }
  return best;
}

function shouldRestartOnFailure(pod: Pod): boolean {
  return (pod.spec.restartPolicy ?? 'Always') !== 'Never';
}

const signalNumbers = constants.signals as Record<string, number>;

/** The exit code kubelet sees (CRI): the process's, or 128+N when signal N killed it (the status shows the same). */
export function runtimeExitCode(s: Pick<RuntimeContainerStatus, 'exitCode' | 'signal'>): number {
  return s.exitCode ?? (s.signal ? 128 + (signalNumbers[s.signal] ?? 0) : 0);
}

function succeeded(s: RuntimeContainerStatus | undefined): boolean {
  return !!s && s.state === 'exited' && runtimeExitCode(s) === 0;
}

/** pkg/api/v1/pod/util.go FindMatchingContainerRestartRule: the first rule whose exit codes match. */
export function findMatchingContainerRestartRule(c: Container, exitCode: number): ContainerRestartRule | undefined {
  for (const rule of c.restartPolicyRules ?? []) {
    if (!rule.exitCodes) continue;
    const listed = (rule.exitCodes.values ?? []).includes(exitCode);
    if (rule.exitCodes.operator === 'In' && listed) return rule;
    if (rule.exitCodes.operator === 'NotIn' && !listed) return rule;
  }
  return undefined;
}

/**
 * pkg/api/v1/pod/util.go ContainerShouldRestart (ContainerRestartRules, on in v1.36): with a container-level
 * restartPolicy, its rules first (in order, the first match decides: Restart), then that policy; without one,
 * the pod's. (RestartAllContainers never gets here: validation refuses it.)
 */
export function containerShouldRestart(c: Container, spec: Pick<PodSpec, 'restartPolicy'>, exitCode: number): boolean {
  if (c.restartPolicy) {
    if (findMatchingContainerRestartRule(c, exitCode)?.action === 'Restart') return true;
    switch (c.restartPolicy) {
      case 'Always':
        return true;
      case 'OnFailure':
        return exitCode !== 0;
      case 'Never':
        return false;
    }
  }
  switch (spec.restartPolicy) {
    case 'OnFailure':
      return exitCode !== 0;
    case 'Never':
      return false;
    default:
      return true; // Always, the default
  }
}

/** Whether a running container killed by a probe (no exit code yet) restarts: the container's policy, else the pod's (rules are not evaluated). */
function restartsAfterKill(pod: Pod, c: Container): boolean {
  return c.restartPolicy ? c.restartPolicy !== 'Never' : shouldRestartOnFailure(pod);
}

/** kubelet ShouldContainerBeRestarted (pkg/kubelet/container/helpers.go) for app and regular init containers. */
export function shouldContainerBeRestarted(pod: Pod, c: Container, s: RuntimeContainerStatus | undefined): boolean {
  if (!s) return true;
  if (s.state === 'running' || s.state === 'created') return false; // nodelet creates and starts in one step: created = starting
  if (s.state === 'unknown') return true;
  return containerShouldRestart(c, pod.spec, runtimeExitCode(s));
}

function sandboxChanged(pod: Pod, st: RuntimePodStatus): { changed: boolean; attempt: number; id?: string } {
  const attempt = st.sandboxes.length;
  if (st.sandboxes.length === 0) return { changed: true, attempt: 0 };
  const sorted = [...st.sandboxes].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
  const latest = sorted[0]!;
  const ready = sorted.filter((s) => s.state === 'ready');
  if (ready.length > 1) return { changed: true, attempt, id: latest.id };
  if (latest.state !== 'ready') return { changed: true, attempt, id: latest.id };
  if (!pod.spec.hostNetwork && latest.ips.length === 0) return { changed: true, attempt, id: latest.id };
  return { changed: false, attempt: attempt - 1, id: latest.id };
}

function podRef(pod: Pod): string {
  return `${pod.metadata.name}_${pod.metadata.namespace ?? 'default'}(${pod.metadata.uid})`;
}

export function computePodActions(pod: Pod, st: RuntimePodStatus, opts: ActionOptions): PodActions {
  const sb = sandboxChanged(pod, st);
  const actions: PodActions = {
    killPod: sb.changed,
    createSandbox: sb.changed,
    sandboxId: sb.changed ? undefined : sb.id,
    sandboxAttempt: sb.attempt,
    containersToStart: [],
    containersToKill: [],
    backoffs: [],
    backoffUpdates: [],
  };
  if (opts.deleting) {
    actions.killPod = st.sandboxes.length > 0 || st.containers.some((c) => c.state === 'running' || c.state === 'created');
    actions.createSandbox = false;
    return actions;
  }
  const inits = pod.spec.initContainers ?? [];
  const apps = pod.spec.containers;
  const uid = pod.metadata.uid ?? '';

  // Start (or hold in back-off) a container that may have run before.
  const tryStart = (c: Container, init: boolean, prev: RuntimeContainerStatus | undefined, into: (s: ContainerToStart) => void): boolean => {
    const attempt = prev ? prev.attempt + 1 : 0;
    if (prev && prev.state === 'exited' && prev.finishedAt) {
      const key = backoffKey(uid, c.name, c.image); // a new image: a fresh back-off (kubelet keys by the spec hash)
      const eventTime = Date.parse(prev.finishedAt);
      const until = opts.backoff.releaseAt(key, eventTime, opts.now);
      if (until !== undefined) {
        const secs = Math.round(opts.backoff.get(key)!.backoffMs / 1000);
        actions.backoffs.push({ name: c.name, init, until, message: `back-off ${secs}s restarting failed container=${c.name} pod=${podRef(pod)}` });
        actions.nextSyncAt = Math.min(actions.nextSyncAt ?? Infinity, until);
        return false;
      }
      actions.backoffUpdates.push({ name: c.name, key, eventTime });
    }
    into({ name: c.name, attempt, init });
    return true;
  };

  if (sb.changed) {
    // A new sandbox: start over from the first init container (or the app containers).
    if (!shouldRestartOnFailure(pod) && st.sandboxes.length > 0 && st.containers.length > 0) {
      actions.createSandbox = false;
      return actions;
    }
    // those that succeeded are not started again when they run once (OnFailure: the container's policy, else the pod's)
    const toStart = apps.filter((c) => !((c.restartPolicy ?? pod.spec.restartPolicy ?? 'Always') === 'OnFailure' && succeeded(latestStatus(st.containers, c.name))));
    if (toStart.length === 0 && apps.some((c) => latestStatus(st.containers, c.name))) {
      // initialized and nothing to start: no new sandbox
      actions.createSandbox = false;
      return actions;
    }
    if (inits.length > 0) {
      tryStart(inits[0]!, true, latestStatus(st.containers, inits[0]!.name), (s) => (actions.initContainerToStart = s));
      return actions;
    }
    for (const c of toStart) tryStart(c, false, latestStatus(st.containers, c.name), (s) => actions.containersToStart.push(s));
    return actions;
  }

  // Init containers and sidecars.
  const initialized = apps.some((c) => latestStatus(st.containers, c.name) !== undefined);
  let initDone = true;
  for (const c of inits) {
    const s = latestStatus(st.containers, c.name);
    if (isSidecar(c)) {
      if (!s || s.state === 'exited' || s.state === 'unknown') {
        if (s?.state === 'unknown') actions.containersToKill.push({ id: s.id, name: c.name, reason: 'Unknown', message: `Container ${c.name} is in an unknown state, will be restarted` });
        if (!actions.initContainerToStart) tryStart(c, true, s, (x) => (actions.initContainerToStart = x));
        if (!initialized) {
          initDone = false;
          break;
        }
        continue;
      }
      if (s.state === 'running') {
        const kill = probeKill(c, s, opts);
        if (kill) {
          // killed now; restarted once it has exited, through the same CrashLoopBackOff as a crash
          // (sidecars restart regardless of the pod's restartPolicy)
          actions.containersToKill.push(kill);
          if (!initialized) {
            initDone = false;
            break;
          }
          continue;
        }
        if (!initialized && opts.started && !opts.started(s.id)) {
          initDone = false; // wait for the sidecar's startup probe
          break;
        }
      } else if (s.state === 'created' && !initialized) {
        initDone = false;
        break;
      }
      continue;
    }
    if (initialized) continue; // regular init containers never re-run once the pod initialized
    if (!s) {
      tryStart(c, true, s, (x) => (actions.initContainerToStart = x));
      initDone = false;
      break;
    }
    if (s.state === 'running' || s.state === 'created') {
      initDone = false;
      break;
    }
    if (s.state === 'unknown') {
      // no exit code: the container's restartPolicy (or the pod's) decides, not its rules
      if (!restartsAfterKill(pod, c)) {
        actions.killPod = true; // the pod fails
        initDone = false;
        break;
      }
      actions.containersToKill.push({ id: s.id, name: c.name, reason: 'Unknown', message: `Init container ${c.name} is in an unknown state, will be restarted` });
      tryStart(c, true, s, (x) => (actions.initContainerToStart = x));
      initDone = false;
      break;
    }
    if (runtimeExitCode(s) === 0) continue;
    // failed init container: its restartPolicy and rules (or the pod's policy) decide
    if (!shouldContainerBeRestarted(pod, c, s)) {
      actions.killPod = true; // the pod fails
      initDone = false;
      break;
    }
    tryStart(c, true, s, (x) => (actions.initContainerToStart = x));
    initDone = false;
    break;
  }
  if (actions.killPod || !initDone) return actions;

  // App containers.
  let keep = 0;
  for (const c of apps) {
    const s = latestStatus(st.containers, c.name);
    if (!s || s.state !== 'running') {
      if (s?.state === 'created') {
        keep++;
        continue;
      }
      if (shouldContainerBeRestarted(pod, c, s)) {
        if (s?.state === 'unknown') actions.containersToKill.push({ id: s.id, name: c.name, reason: 'Unknown', message: `Container ${c.name} is in an unknown state, will be restarted` });
        const started = tryStart(c, false, s, (x) => actions.containersToStart.push(x));
        if (!started) keep++; // waiting in back-off: the pod is not finished
      }
      continue;
    }
    if (specChanged(c, s)) {
      // kubelet restarts a container whose spec changed regardless of the restart policy
      actions.containersToKill.push({ id: s.id, name: c.name, reason: 'Changed', message: `Container ${c.name} definition changed, will be restarted` });
      actions.containersToStart.push({ name: c.name, attempt: s.attempt + 1, init: false });
      continue;
    }
    const kill = probeKill(c, s, opts);
    if (!kill) {
      keep++;
      continue;
    }
    if (restartsAfterKill(pod, c)) {
      // killed now; restarted once it has exited, through the same CrashLoopBackOff as a crash (kubelet)
      kill.message += ', will be restarted';
      keep++;
    }
    actions.containersToKill.push(kill);
  }
  if (keep === 0 && actions.containersToStart.length === 0) {
    // every app container is done and none restarts: stop sidecars and the sandbox
    actions.killPod = true;
    actions.containersToKill = [];
    actions.initContainerToStart = undefined;
  }
  return actions;
}

/** The part of a container's spec an update may change (the image) differs from what runs (kubelet's containerChanged). */
function specChanged(c: Container, s: RuntimeContainerStatus): boolean {
  return !!c.image && !!s.imageRef && c.image !== s.imageRef;
}

function probeKill(c: Container, s: RuntimeContainerStatus, opts: ActionOptions): ContainerToKill | undefined {
  if (opts.probe?.(s.id, 'liveness') === 'failure')
    return { id: s.id, name: c.name, reason: 'LivenessProbe', message: `Container ${c.name} failed liveness probe`, gracePeriodSeconds: c.livenessProbe?.terminationGracePeriodSeconds };
  if (opts.probe?.(s.id, 'startup') === 'failure')
    return { id: s.id, name: c.name, reason: 'StartupProbe', message: `Container ${c.name} failed startup probe`, gracePeriodSeconds: c.startupProbe?.terminationGracePeriodSeconds };
  return undefined;
}

/**
 * Order in which to stop a pod's running containers: app containers first
 * (together), then sidecars in reverse start order (KEP-753), then any
 * regular init container still running.
 */
export function killOrder(pod: Pod, statuses: RuntimeContainerStatus[]): RuntimeContainerStatus[][] {
  const alive = statuses.filter((s) => s.state === 'running' || s.state === 'created' || s.state === 'unknown');
  const appNames = new Set(pod.spec.containers.map((c) => c.name));
  const inits = pod.spec.initContainers ?? [];
  const waves: RuntimeContainerStatus[][] = [];
  const apps = alive.filter((s) => appNames.has(s.name));
  const regularInits = alive.filter((s) => inits.some((c) => c.name === s.name && !isSidecar(c)));
  if (apps.length || regularInits.length) waves.push([...apps, ...regularInits]);
  for (const c of [...inits].reverse()) {
    if (!isSidecar(c)) continue;
    const w = alive.filter((s) => s.name === c.name);
    if (w.length) waves.push(w);
  }
  const known = new Set(waves.flat().map((s) => s.id));
  const rest = alive.filter((s) => !known.has(s.id));
  if (rest.length) waves.unshift(rest); // containers no longer in the spec go first
  return waves;
}

/** Waiting reasons for computePodStatus from the back-offs of a computePodActions result (CrashLoopBackOff). */
export function backoffWaitingReasons(actions: Pick<PodActions, 'backoffs'>): Record<string, { reason: string; message: string }> {
  return Object.fromEntries(actions.backoffs.map((b) => [b.name, { reason: 'CrashLoopBackOff', message: b.message }]));
}

/**
 * kubelet's activeDeadlineHandler: a pod with spec.activeDeadlineSeconds that
 * has been active longer must be killed and marked Failed with reason
 * DeadlineExceeded. Returns that status reason/message, or undefined.
 */
export function pastActiveDeadline(pod: Pod, startTime: string | undefined, now: number): { reason: string; message: string } | undefined {
  const d = pod.spec.activeDeadlineSeconds;
  if (d === undefined || !startTime) return undefined;
  if (now - Date.parse(startTime) < d * 1000) return undefined;
  return { reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' };
}
