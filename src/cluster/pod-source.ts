// The API server as a pod source (kubelet config/apiserver.go): list+watch
// the pods bound to this node (fieldSelector spec.nodeName=<node>) with
// bookmarks, relist on 410 Gone and reconnect with back-off (the reflector in
// src/kube/informer.ts), and hand them to the agent's pod config as the
// 'apiserver' source with the ConfigMaps, Secrets and tokens they reference.
//   - a pod the agent does not know: its objects are resolved, then it is added
//     (a spec nodelet cannot run is added as Failed, with the reason, as kubelet's admission does);
//   - a known pod that changed: update (image, labels, annotations, activeDeadlineSeconds);
//   - deletionTimestamp set: graceful deletion with deletionGracePeriodSeconds;
//   - gone from the API server (a forced delete): deleted here with the pod's own grace period.
// Terminal pods (Succeeded/Failed in the API) that this node does not know are never started again.
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';
import type { KubeClient, KubeObject, ResourceRef } from '../kube/types.js';
import { listWatch, type ListWatch } from '../kube/informer.js';
import type { Pod, PodObjects } from '../pod/api-types.js';
import { loadManifests } from '../pod/manifest.js';
import type { PodSource, SourceRejection } from '../agent/pod-config.js';

const log = getLogger('cluster.pods');

export const PODS: ResourceRef = { group: '', version: 'v1', resource: 'pods' };
export const APISERVER_SOURCE = 'apiserver';

/** Warnings about fields the scheduler, controllers and garbage collector handle: expected on API pods, not worth a log line. */
const SCHEDULER_FIELDS = /spec\.(nodeSelector|affinity|tolerations|schedulerName|priority|priorityClassName|preemptionPolicy|topologySpreadConstraints|schedulingGates|nodeName)\b|metadata\.(ownerReferences|finalizers|generateName|generation)\b/;

export interface ObjectsPort {
  resolve(pod: Pod): Promise<PodObjects>;
  track(pod: Pod, onChange: (objects: PodObjects) => void): void;
  forget(uid: string): void;
}

export interface ApiServerPodSourceOptions {
  client: KubeClient;
  nodeName: string;
  source: PodSource;
  objects: ObjectsPort;
  /** Does the agent know (run, or remember) this pod? */
  known: (uid: string) => boolean;
  /** Environment for the pod's containers from Services (KUBERNETES_SERVICE_HOST, FOO_SERVICE_HOST ...). */
  serviceEnv?: (pod: Pod) => Record<string, string>;
  /** Mirror pods bound to this node as the watch shows them (undefined: deleted). */
  onMirrorPod?: (key: string, obj: ApiPod | undefined) => void;
  /** The API object of each pod as last seen (the status syncer diffs against it and deletes with it). */
  onApiPod?: (uid: string, obj: ApiPod | undefined) => void;
}

export type ApiPod = KubeObject & { spec?: Record<string, unknown>; status?: { phase?: string } & Record<string, unknown> };

/** The API pod as the agent's Pod (defaults and validation as for manifests), or why it cannot run here. */
export function toAgentPod(obj: ApiPod): { pod: Pod; rejected?: SourceRejection; warnings: string[] } {
  const { status: _status, ...rest } = obj;
  const raw = { ...rest, apiVersion: 'v1', kind: 'Pod', metadata: { ...rest.metadata, managedFields: undefined } };
  try {
    const parsed = loadManifests(JSON.stringify(raw), `pod ${obj.metadata.namespace}/${obj.metadata.name}`, { requireReferences: false } as never);
    const pod = parsed.pods[0]!;
    return { pod, warnings: parsed.warnings.filter((w) => !SCHEDULER_FIELDS.test(w)) };
  } catch (err) {
    // kubelet would run it; nodelet cannot: fail it visibly rather than ignore parts of it
    // one line, as status messages are: "... is invalid: spec.volumes[0]...; spec.containers[0]..."
    const text = describeError(err).replace(/:\n\* /, ': ').replace(/\n\* /g, '; ');
    return { pod: raw as unknown as Pod, rejected: { reason: 'UnsupportedPodSpec', message: `Pod was rejected: ${text}` }, warnings: [] };
  }
}

const isMirror = (obj: ApiPod) => obj.metadata.annotations?.['kubernetes.io/config.mirror'] !== undefined;

export class ApiServerPodSource {
  private lw?: ListWatch;
  /** one chain of work per pod uid, so an ADDED's async object resolution and a MODIFIED never reorder */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly seen = new Set<string>();
  /** the latest agent form of each pod (object changes are applied to it) */
  private readonly latest = new Map<string, Pod>();

  constructor(private readonly o: ApiServerPodSourceOptions) {}

  start(): ListWatch {
    this.lw = listWatch<ApiPod>(this.o.client, PODS, { fieldSelector: `spec.nodeName=${this.o.nodeName}` }, {
      onSync: (items) => {
        const present = new Set(items.map((p) => p.metadata.uid!));
        this.o.onMirrorPod?.('*', undefined); // a relist: forget the mirrors seen so far
        for (const p of items) this.enqueue(p);
        // pods that went away while we were not watching (forced deletes, or while the daemon was down:
        // the source's pods include those recovered from the pod store)
        for (const uid of new Set([...this.seen, ...this.o.source.pods().keys()])) if (!present.has(uid)) this.gone(uid);
      },
      onEvent: (type, obj) => {
        if (type !== 'DELETED') return this.enqueue(obj);
        if (isMirror(obj)) return void this.o.onMirrorPod?.(`${obj.metadata.namespace}/${obj.metadata.name}`, undefined);
        if (this.seen.has(obj.metadata.uid!)) this.gone(obj.metadata.uid!);
      },
      onError: (err, info) => log.warn('pod watch failed; retrying', { error: describeError(err), attempt: info.attempt, delayMs: info.delayMs, relist: info.relist }),
    });
    return this.lw;
  }

  async stop(): Promise<void> {
    await this.lw?.stop();
  }

  private chain(uid: string, fn: () => Promise<void>): void {
    const next = (this.chains.get(uid) ?? Promise.resolve()).then(fn).catch((err) => log.error('pod source step failed', { uid, error: describeError(err) }));
    this.chains.set(uid, next);
    void next.then(() => {
      if (this.chains.get(uid) === next) this.chains.delete(uid);
    });
  }

  private enqueue(obj: ApiPod): void {
    // a mirror pod is this node's copy of one of its static pods (mirror-pods.ts), not a pod to run
    if (isMirror(obj)) return void this.o.onMirrorPod?.(`${obj.metadata.namespace}/${obj.metadata.name}`, obj);
    const uid = obj.metadata.uid!;
    this.o.onApiPod?.(uid, obj);
    this.chain(uid, () => this.apply(obj));
  }

  private gone(uid: string): void {
    this.seen.delete(uid);
    this.latest.delete(uid);
    this.o.onApiPod?.(uid, undefined);
    this.chain(uid, async () => {
      this.o.objects.forget(uid);
      if (this.o.known(uid)) await this.o.source.delete(uid);
    });
  }

  private withEnv(pod: Pod, objects: PodObjects): PodObjects {
    const env = this.o.serviceEnv?.(pod);
    return env && Object.keys(env).length ? { ...objects, serviceEnv: env } : objects;
  }

  private async apply(obj: ApiPod): Promise<void> {
    const uid = obj.metadata.uid!;
    const known = this.o.known(uid);
    const phase = obj.status?.phase;
    if (!known && (phase === 'Succeeded' || phase === 'Failed')) return; // finished before we knew it: never again
    this.seen.add(uid);
    if (obj.metadata.deletionTimestamp) {
      // graceful deletion; a pod we never started goes at once (the status syncer finishes it in the API)
      void this.o.source.delete(uid, obj.metadata.deletionGracePeriodSeconds);
      this.o.objects.forget(uid);
      return;
    }
    const { pod, rejected, warnings } = toAgentPod(obj);
    this.latest.set(uid, pod);
    if (!known) {
      for (const w of warnings) log.warn('pod spec', { pod: `${obj.metadata.namespace}/${obj.metadata.name}`, warning: w });
      const objects = rejected ? { configMaps: [], secrets: [] } : this.withEnv(pod, await this.o.objects.resolve(pod));
      this.o.source.add(pod, objects, rejected);
      if (!rejected) this.o.objects.track(pod, (next) => this.chain(uid, async () => {
        const cur = this.latest.get(uid);
        if (cur && this.o.known(uid)) this.o.source.update(cur, this.withEnv(cur, next));
      }));
      return;
    }
    if (rejected) return;
    // ephemeral containers arrive by update (pods/ephemeralcontainers): say they are not run, never stay silent
    for (const w of warnings) if (w.startsWith('spec.ephemeralContainers')) log.warn('pod spec', { pod: `${obj.metadata.namespace}/${obj.metadata.name}`, warning: w });
    this.o.source.update(pod);
  }
}
