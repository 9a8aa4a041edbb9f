// Pod config (kubelet config/config.go): every pod source — the manifest
// directory, the local API, `nodelet run`, and in cluster mode the API
// server — reports its pods here, either one change at a time (add, update,
// delete) or as its full current set (reconcile: set()); the merged result
// reaches the agent as ADD / UPDATE / DELETE operations. The agent's core
// knows no source: a pod only carries the source's name in the
// kubernetes.io/config.source annotation.
import type { Pod, PodObjects } from '../pod/api-types.js';

export const SOURCE_ANNOTATION = 'kubernetes.io/config.source';

export type PodOp = 'ADD' | 'UPDATE' | 'DELETE';

/** A source's own verdict on a pod it cannot hand over as it is (e.g. a spec nodelet cannot run): it is admitted as Failed. */
export interface SourceRejection {
  reason: string;
  message: string;
}

export interface PodConfigHandler {
  add(pod: Pod, objects: PodObjects, rejected?: SourceRejection): void;
  update(pod: Pod, objects?: PodObjects): void;
  delete(uid: string, gracePeriodSeconds?: number): Promise<void>;
}

export interface SourcePod {
  pod: Pod;
  objects?: PodObjects;
}

export interface PodSource {
  readonly name: string;
  add(pod: Pod, objects?: PodObjects, rejected?: SourceRejection): void;
  /** A changed pod or changed API objects; nothing happens when neither changed. */
  update(pod: Pod, objects?: PodObjects): void;
  delete(uid: string, gracePeriodSeconds?: number): Promise<void>;
  /** Reconcile: this is the source's whole set now; missing pods are deleted, new ones added, changed ones updated. */
  set(pods: SourcePod[]): void;
  /** The pods this source has reported (uid → pod). */
  pods(): Map<string, Pod>;
}

const EMPTY: PodObjects = { configMaps: [], secrets: [] };

/** The pod as its source sees it, for change detection (status and server bookkeeping excluded). */
function podKey(pod: Pod): string {
  const { status: _s, ...rest } = pod;
  return JSON.stringify({ ...rest, metadata: { ...rest.metadata, resourceVersion: undefined, managedFields: undefined } });
}

interface Owned {
  pod: Pod;
  key: string;
  objects: string;
}

export class PodConfig {
  private readonly sources = new Map<string, Map<string, Owned>>();

  constructor(private readonly handler: PodConfigHandler) {}

  /** The handle of a source (created on first use). Pods added through it get its name as config.source. */
  source(name: string): PodSource {
    let seen = this.sources.get(name);
    if (!seen) this.sources.set(name, (seen = new Map()));
    const tag = (pod: Pod): Pod => ({ ...pod, metadata: { ...pod.metadata, annotations: { ...(pod.metadata.annotations ?? {}), [SOURCE_ANNOTATION]: pod.metadata.annotations?.[SOURCE_ANNOTATION] ?? name } } });
    const handler = this.handler;
    const owned = seen;
    return {
      name,
      add(pod, objects = EMPTY, rejected) {
        const p = tag(pod);
        owned.set(p.metadata.uid!, { pod: p, key: podKey(p), objects: JSON.stringify(objects) });
        handler.add(p, objects, rejected);
      },
      update(pod, objects) {
        const p = tag(pod);
        const prev = owned.get(p.metadata.uid!);
        const key = podKey(p);
        const obj = objects ? JSON.stringify(objects) : prev?.objects ?? JSON.stringify(EMPTY);
        if (prev && prev.key === key && prev.objects === obj) return;
        owned.set(p.metadata.uid!, { pod: p, key, objects: obj });
        handler.update(p, objects && obj !== prev?.objects ? objects : undefined);
      },
      delete(uid, grace) {
        owned.delete(uid);
        return handler.delete(uid, grace);
      },
      set(pods) {
        const wanted = new Map(pods.map((p) => [p.pod.metadata.uid!, { ...p, pod: tag(p.pod) }]));
        for (const uid of [...owned.keys()]) {
          if (wanted.has(uid)) continue;
          owned.delete(uid);
          void handler.delete(uid);
        }
        for (const [uid, p] of wanted) {
          const key = podKey(p.pod);
          const obj = JSON.stringify(p.objects ?? EMPTY);
          const prev = owned.get(uid);
          if (prev && prev.key === key && prev.objects === obj) continue;
          owned.set(uid, { pod: p.pod, key, objects: obj });
          if (prev) handler.update(p.pod, p.objects);
          else handler.add(p.pod, p.objects ?? EMPTY);
        }
      },
      pods() {
        return new Map([...owned].map(([uid, v]) => [uid, v.pod]));
      },
    };
  }

  /** A pod known before a restart (recovered from the pod store) is owned by its source again. */
  adopt(pod: Pod, objects: PodObjects = EMPTY): void {
    const name = pod.metadata.annotations?.[SOURCE_ANNOTATION] ?? 'api';
    let seen = this.sources.get(name);
    if (!seen) this.sources.set(name, (seen = new Map()));
    seen.set(pod.metadata.uid!, { pod, key: podKey(pod), objects: JSON.stringify(objects) });
  }
}
