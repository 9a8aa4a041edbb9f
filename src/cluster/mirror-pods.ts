// Mirror pods (kubelet pod/mirror_client.go): every static pod (the manifest
// directory's, config.source "file") gets a read-only copy in the API server
// so `kubectl get pods` shows it: annotation kubernetes.io/config.mirror, the
// Node as its one controller owner (what NodeRestriction requires), no
// service account or API-object references. Its status follows the static
// pod's; it is re-created when someone deletes it and deleted with the static
// pod (with a UID precondition, so a newer mirror is never removed).
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';
import { isAlreadyExists, isConflict, isNotFound } from '../kube/errors.js';
import type { KubeClient } from '../kube/types.js';
import { podStatusPatch } from '../node/patch.js';
import type { Pod } from '../pod/api-types.js';
import type { PodChange, StatusManager } from '../agent/status-manager.js';
import { SOURCE_ANNOTATION } from '../agent/pod-config.js';
import { HASH_ANNOTATION } from '../agent/file-source.js';
import { PODS, type ApiPod } from './pod-source.js';
import { mergePodStatus } from './status-syncer.js';

const log = getLogger('cluster.mirror');

export const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

export const isStaticPod = (pod: Pod) => pod.metadata.annotations?.[SOURCE_ANNOTATION] === 'file';

/** The mirror pod of a static pod (pure). */
export function mirrorPodFor(pod: Pod, node: { name: string; uid: string }): ApiPod {
  const hash = pod.metadata.annotations?.[HASH_ANNOTATION] ?? pod.metadata.uid!;
  const { serviceAccountName: _sa, serviceAccount: _sa2, automountServiceAccountToken: _a, ...spec } = pod.spec as Pod['spec'] & { serviceAccount?: string; automountServiceAccountToken?: boolean };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: pod.metadata.name,
      namespace: pod.metadata.namespace ?? 'default',
      labels: pod.metadata.labels,
      annotations: { ...pod.metadata.annotations, [MIRROR_ANNOTATION]: hash },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node.name, uid: node.uid, controller: true }],
    },
    spec: { ...spec, nodeName: node.name } as Record<string, unknown>,
  };
}

interface Mirror {
  namespace: string;
  name: string;
  uid?: string;
  hash: string;
  status?: Record<string, unknown>;
}

export interface MirrorPodsOptions {
  client: KubeClient;
  status: StatusManager;
  nodeName: string;
  nodeUid: () => string | undefined;
  reconcileMs?: number;
}

export class MirrorPods {
  private readonly mirrors = new Map<string, Mirror>();
  /** mirror pods in the API server by namespace/name, from the node's pod watch (a node may not GET other pods) */
  private readonly seen = new Map<string, ApiPod>();
  private readonly dirty = new Set<string>();
  private running = false;
  private stopped = false;
  private unsubscribe?: () => void;
  private timer?: NodeJS.Timeout;

  constructor(private readonly o: MirrorPodsOptions) {}

  /** The pod watch saw a mirror pod change ('*' with undefined: a relist starts). */
  observe(key: string, obj: ApiPod | undefined): void {
    if (key === '*') return this.seen.clear();
    if (obj) this.seen.set(key, obj);
    else this.seen.delete(key);
    // a deleted mirror of a live static pod is created again
    for (const v of this.o.status.list()) if (isStaticPod(v.pod) && `${v.pod.metadata.namespace ?? 'default'}/${v.pod.metadata.name}` === key) this.mark(v.pod.metadata.uid!);
  }

  start(): void {
    this.unsubscribe = this.o.status.subscribe((c) => this.onChange(c));
    const all = () => {
      for (const v of this.o.status.list()) if (isStaticPod(v.pod)) this.mark(v.pod.metadata.uid!);
    };
    all();
    this.timer = setInterval(all, this.o.reconcileMs ?? 10_000);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearInterval(this.timer);
  }

  private onChange(c: PodChange): void {
    const pod = c.pod.pod;
    if (!isStaticPod(pod)) return;
    if (c.type === 'DELETED') void this.remove(pod.metadata.uid!);
    else this.mark(pod.metadata.uid!);
  }

  private mark(uid: string): void {
    this.dirty.add(uid);
    if (!this.running) void this.flush();
  }

  private async flush(): Promise<void> {
    this.running = true;
    try {
      while (this.dirty.size && !this.stopped) {
        const uid = this.dirty.values().next().value!;
        this.dirty.delete(uid);
        await this.sync(uid).catch((err) => log.warn('mirror pod sync failed', { uid, error: describeError(err) }));
      }
    } finally {
      this.running = false;
    }
  }

  private async sync(uid: string): Promise<void> {
    const v = this.o.status.get(uid);
    const nodeUid = this.o.nodeUid();
    if (!v || !nodeUid || v.provisional || v.pod.metadata.deletionTimestamp) return;
    const ns = v.pod.metadata.namespace ?? 'default';
    const ref = { ...PODS, namespace: ns };
    const want = mirrorPodFor(v.pod, { name: this.o.nodeName, uid: nodeUid });
    const hash = want.metadata.annotations![MIRROR_ANNOTATION]!;
    const known = this.mirrors.get(uid);
    // does the mirror exist, and is it ours (same hash)? The periodic reconcile re-checks (a user may delete it).
    let cur: ApiPod | undefined = this.seen.get(`${ns}/${v.pod.metadata.name}`);
    if (cur?.metadata.deletionTimestamp) {
      // someone deleted the mirror: as kubelet, finish that deletion (grace 0) and put a new one up
      await this.o.client.delete(ref, v.pod.metadata.name!, { gracePeriodSeconds: 0, preconditions: { uid: cur.metadata.uid } }).catch((err) => {
        if (!isNotFound(err) && !isConflict(err)) throw err;
      });
      return; // the watch's DELETED event brings us back to create it
    }
    if (cur && cur.metadata.annotations?.[MIRROR_ANNOTATION] !== hash) {
      // a stale mirror (an older version of the file) or a pod that is not a mirror: kubelet deletes the stale mirror
      if (cur.metadata.annotations?.[MIRROR_ANNOTATION] === undefined) {
        log.warn('a pod with the static pod\'s name exists in the API server and is not its mirror', { pod: `${ns}/${v.pod.metadata.name}` });
        return;
      }
      await this.o.client.delete(ref, v.pod.metadata.name!, { gracePeriodSeconds: 0, preconditions: { uid: cur.metadata.uid } }).catch(() => undefined);
      cur = undefined;
    }
    if (!cur) {
      try {
        cur = await this.o.client.create<ApiPod>(ref, want);
        log.info('mirror pod created', { pod: `${ns}/${v.pod.metadata.name}` });
      } catch (err) {
        if (!isAlreadyExists(err)) throw err;
        return; // the watch has not shown it yet: it comes with the next event
      }
    }
    const m: Mirror = { namespace: ns, name: v.pod.metadata.name!, uid: cur.metadata.uid, hash, status: known && known.uid === cur.metadata.uid ? known.status : (cur.status as Record<string, unknown> | undefined) };
    this.mirrors.set(uid, m);
    const desired = mergePodStatus(m.status, v.status);
    const { patch, unchanged } = podStatusPatch(m.uid!, m.status ?? {}, desired);
    if (unchanged) return;
    try {
      const res = await this.o.client.patch<ApiPod>({ ...ref, subresource: 'status' }, m.name, 'strategic', patch);
      m.status = res.status as Record<string, unknown>;
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) {
        this.mirrors.delete(uid);
        return;
      }
      throw err;
    }
  }

  private async remove(uid: string): Promise<void> {
    const m = this.mirrors.get(uid);
    this.mirrors.delete(uid);
    this.dirty.delete(uid);
    if (!m?.uid) return;
    try {
      await this.o.client.delete({ ...PODS, namespace: m.namespace }, m.name, { gracePeriodSeconds: 0, preconditions: { uid: m.uid } });
      log.info('mirror pod deleted', { pod: `${m.namespace}/${m.name}` });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) log.warn('mirror pod not deleted', { pod: `${m.namespace}/${m.name}`, error: describeError(err) });
    }
  }
}
