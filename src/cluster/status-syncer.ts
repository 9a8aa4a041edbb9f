// Pod status towards the API server (kubelet status/status_manager.go):
// every change the status manager publishes for an API-server pod is
// queued; the latest status of each pod is sent as a strategic-merge PATCH
// of pods/<name>/status with the pod's UID as precondition, only when it
// differs from what the API server has. kubelet owns the conditions
// PodReadyToStartContainers, Initialized, ContainersReady and Ready; the
// others (PodScheduled, DisruptionTarget, readiness gates...) are kept as
// the API server has them, and the Ready condition of a pod with
// spec.readinessGates is evaluated here against them (kubelet's
// GeneratePodReadyCondition): a watch event that changes those conditions
// syncs the pod again. A periodic reconcile resends what failed. Once
// the agent has torn down a pod whose deletion the API server asked for, the
// pod object is deleted with grace 0 and a UID precondition.
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';
import { isConflict, isNotFound } from '../kube/errors.js';
import type { KubeClient } from '../kube/types.js';
import { podStatusPatch } from '../node/patch.js';
import { sleep } from '../sys/proc.js';
import type { Pod, PodCondition, PodStatus } from '../pod/api-types.js';
import { KUBELET_OWNED_CONDITIONS, podReadyCondition } from '../pod/status.js';
import type { PodChange, StatusManager } from '../agent/status-manager.js';
import { PODS, type ApiPod } from './pod-source.js';

const log = getLogger('cluster.status');

export { KUBELET_OWNED_CONDITIONS };

const foreignConditions = (status: Record<string, unknown> | undefined): PodCondition[] =>
  ((status?.conditions as PodCondition[] | undefined) ?? []).filter((c) => !KUBELET_OWNED_CONDITIONS.has(c.type));

/**
 * The status to send: ours for what kubelet owns, the API server's for the rest. With `pod` given, its
 * readiness gates decide Ready against the API server's conditions (the agent knows none of them).
 */
export function mergePodStatus(api: Record<string, unknown> | undefined, ours: PodStatus, pod?: Pick<Pod, 'spec'>, now = new Date()): Record<string, unknown> {
  let ourConds = (ours.conditions ?? []).filter((c) => KUBELET_OWNED_CONDITIONS.has(c.type));
  const others = foreignConditions(api);
  const containersReady = ourConds.find((c) => c.type === 'ContainersReady');
  if (pod?.spec.readinessGates?.length && containersReady) {
    const at = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const ready = podReadyCondition(pod, containersReady, others, at, api as PodStatus | undefined);
    ourConds = ourConds.map((c) => (c.type === 'Ready' ? ready : c));
  }
  const merged: Record<string, unknown> = { ...(api ?? {}), ...ours, conditions: [...others, ...ourConds] };
  // a terminal phase is never taken back (the API server refuses it anyway)
  if ((api?.phase === 'Succeeded' || api?.phase === 'Failed') && api.phase !== ours.phase) merged.phase = api.phase;
  return merged;
}

export interface StatusSyncerOptions {
  client: KubeClient;
  status: StatusManager;
  /** Is this one of the API server's pods (not a static or local one)? */
  isApiPod: (pod: Pod) => boolean;
  /** The pod object as the API server last showed it (from the pod source's watch). */
  apiPod: (uid: string) => ApiPod | undefined;
  /** Full reconcile period (ms), default 10 s. */
  reconcileMs?: number;
}

interface Sent {
  namespace: string;
  name: string;
  /** the status the API server has, as far as we know */
  status?: Record<string, unknown>;
  /** the pod's resourceVersion with that status */
  resourceVersion?: string;
}

/** Whether resourceVersion `a` is newer than `b` (etcd's are integers; anything else counts as newer). */
function newerVersion(a: string | undefined, b: string | undefined): boolean {
  if (!a || !b || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return true;
  return BigInt(a) > BigInt(b);
}

export class StatusSyncer {
  private readonly sent = new Map<string, Sent>();
  private readonly dirty = new Set<string>();
  private running = false;
  private stopped = false;
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  /** counters for /metrics and tests */
  readonly stats = { patches: 0, deletes: 0, errors: 0 };

  constructor(private readonly o: StatusSyncerOptions) {}

  start(): void {
    this.unsubscribe = this.o.status.subscribe((c) => this.onChange(c));
    for (const v of this.o.status.list()) if (this.o.isApiPod(v.pod)) this.mark(v.pod);
    this.timer = setInterval(() => {
      for (const v of this.o.status.list()) if (this.o.isApiPod(v.pod)) this.mark(v.pod);
    }, this.o.reconcileMs ?? 10_000);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  /**
   * The pod as the API server's watch shows it now: when it is newer than the status we know, it is the base of
   * the next patch; a change of the conditions others own (readiness gates ...) syncs the pod again.
   */
  observed(uid: string, obj: ApiPod): void {
    const s = this.sent.get(uid);
    if (!s?.status || !newerVersion(obj.metadata.resourceVersion, s.resourceVersion)) return;
    const changed = JSON.stringify(foreignConditions(obj.status)) !== JSON.stringify(foreignConditions(s.status));
    s.status = obj.status as Record<string, unknown> | undefined;
    s.resourceVersion = obj.metadata.resourceVersion;
    const v = this.o.status.get(uid);
    if (changed && v && this.o.isApiPod(v.pod)) this.mark(v.pod);
  }

  /** Resolves when nothing is queued (tests). */
  async idle(): Promise<void> {
    while (this.running || this.dirty.size) await sleep(20);
  }

  private onChange(c: PodChange): void {
    const pod = c.pod.pod;
    if (!this.o.isApiPod(pod)) return;
    if (c.type === 'DELETED') {
      void this.finish(pod, c.pod.status);
      return;
    }
    this.mark(pod);
  }

  private mark(pod: Pod): void {
    const uid = pod.metadata.uid!;
    if (!this.sent.has(uid)) this.sent.set(uid, { namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name! });
    this.dirty.add(uid);
    if (!this.running) void this.flush();
  }

  private async flush(): Promise<void> {
    if (this.stopped) return;
    this.running = true;
    try {
      while (this.dirty.size && !this.stopped) {
        const uid = this.dirty.values().next().value!;
        this.dirty.delete(uid);
        await this.sync(uid);
      }
    } finally {
      this.running = false;
    }
  }

  private async sync(uid: string): Promise<void> {
    const v = this.o.status.get(uid);
    const s = this.sent.get(uid);
    if (!v || !s || v.provisional) return; // a recovered pod is reported after its first sync
    const base = s.status ?? (this.o.apiPod(uid)?.status as Record<string, unknown> | undefined);
    const desired = mergePodStatus(base, v.status, v.pod);
    const { patch, unchanged } = podStatusPatch(uid, base ?? {}, desired);
    if (unchanged) return;
    try {
      const res = await this.o.client.patch<ApiPod>({ ...PODS, namespace: s.namespace, subresource: 'status' }, s.name, 'strategic', patch);
      s.status = res.status as Record<string, unknown>;
      s.resourceVersion = res.metadata?.resourceVersion;
      this.stats.patches++;
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) {
        // gone, or the name now belongs to another pod (UID precondition): nothing of ours to update
        log.info('pod status not sent: the pod is gone from the API server', { pod: `${s.namespace}/${s.name}`, uid });
        this.sent.delete(uid);
        return;
      }
      this.stats.errors++;
      log.warn('pod status update failed; retrying', { pod: `${s.namespace}/${s.name}`, error: describeError(err) });
      s.status = undefined; // re-read the API's view on the next try
      s.resourceVersion = undefined;
      this.retryLater(uid);
    }
  }

  private retryLater(uid: string): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.o.status.get(uid)) this.dirty.add(uid);
      void this.flush();
    }, 1000);
    this.retryTimer.unref();
  }

  /** The agent finished with the pod: send its final status, then delete it if the API server asked for that. */
  private async finish(pod: Pod, last: PodStatus): Promise<void> {
    const uid = pod.metadata.uid!;
    const s = this.sent.get(uid);
    this.sent.delete(uid);
    this.dirty.delete(uid);
    const api = this.o.apiPod(uid);
    if (!api?.metadata.deletionTimestamp) return; // not asked to delete (e.g. the API object is already gone)
    const ref = { ...PODS, namespace: pod.metadata.namespace ?? 'default' };
    try {
      const base = s?.status ?? (api.status as Record<string, unknown> | undefined);
      const { patch, unchanged } = podStatusPatch(uid, base ?? {}, mergePodStatus(base, last, pod));
      if (!unchanged) await this.o.client.patch({ ...ref, subresource: 'status' }, pod.metadata.name!, 'strategic', patch);
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) log.warn('final pod status not sent', { pod: pod.metadata.name, error: describeError(err) });
    }
    for (let attempt = 0; attempt < 5 && !this.stopped; attempt++) {
      try {
        await this.o.client.delete(ref, pod.metadata.name!, { gracePeriodSeconds: 0, preconditions: { uid } });
        this.stats.deletes++;
        log.info('pod deleted from the API server', { pod: `${ref.namespace}/${pod.metadata.name}`, uid });
        return;
      } catch (err) {
        if (isNotFound(err) || isConflict(err)) return;
        this.stats.errors++;
        log.warn('final delete of the pod failed; retrying', { pod: `${ref.namespace}/${pod.metadata.name}`, attempt, error: describeError(err) });
        await sleep(500 * 2 ** attempt);
      }
    }
  }
}
