// Status manager (kubelet status/status_manager.go): the one owner of every
// pod's status. Syncs compute a status and hand it here; only a real change
// bumps the resourceVersion (one counter for all pods, so watchers can order
// changes across pods) and reaches the subscribers: the local API's watches,
// `nodelet run`'s progress lines, and in cluster mode the API-server syncer.
import type { Pod, PodStatus } from '../pod/api-types.js';

export interface PodView {
  pod: Pod;
  status: PodStatus;
  resourceVersion: number;
  /** the status is a placeholder until the pod's first sync (a recovered pod): not to be reported upstream */
  provisional?: boolean;
}

export type PodChangeType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type PodChange = { type: PodChangeType; pod: PodView };

interface Entry {
  pod: Pod;
  status: PodStatus;
  version: number;
  /** JSON of the status last published (change detection) */
  key: string;
  provisional: boolean;
}

export class StatusManager {
  private readonly entries = new Map<string, Entry>();
  private readonly subscribers = new Set<(c: PodChange) => void>();
  private version = 0;

  /** Subscribe to every change; returns the unsubscribe function. */
  subscribe(fn: (c: PodChange) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  /** A new pod with its first status (`provisional` until a sync sets a real one). */
  add(pod: Pod, status: PodStatus, opts: { provisional?: boolean } = {}): PodView {
    const e: Entry = { pod, status, version: ++this.version, key: JSON.stringify(status), provisional: !!opts.provisional };
    this.entries.set(pod.metadata.uid!, e);
    const v = this.view(e);
    this.publish({ type: 'ADDED', pod: v });
    return v;
  }

  /** Set the pod's status; published only when it changed. Returns whether it did. */
  setStatus(uid: string, status: PodStatus): boolean {
    const e = this.entries.get(uid);
    if (!e) return false;
    const key = JSON.stringify(status);
    if (key === e.key && !e.provisional) return false;
    e.provisional = false;
    e.status = status;
    e.key = key;
    e.version = ++this.version;
    this.publish({ type: 'MODIFIED', pod: this.view(e) });
    return true;
  }

  /** The pod object changed (metadata, an update, a deletion timestamp): always published. */
  setPod(uid: string, pod: Pod): void {
    const e = this.entries.get(uid);
    if (!e) return;
    e.pod = pod;
    e.version = ++this.version;
    this.publish({ type: 'MODIFIED', pod: this.view(e) });
  }

  remove(uid: string): void {
    const e = this.entries.get(uid);
    if (!e) return;
    this.entries.delete(uid);
    e.version = ++this.version;
    this.publish({ type: 'DELETED', pod: this.view(e) });
  }

  get(uid: string): PodView | undefined {
    const e = this.entries.get(uid);
    return e ? this.view(e) : undefined;
  }

  status(uid: string): PodStatus | undefined {
    return this.entries.get(uid)?.status;
  }

  list(): PodView[] {
    return [...this.entries.values()].map((e) => this.view(e));
  }

  private view(e: Entry): PodView {
    const pod: Pod = { ...e.pod, metadata: { ...e.pod.metadata, resourceVersion: String(e.version) }, status: e.status };
    return { pod, status: e.status, resourceVersion: e.version, ...(e.provisional ? { provisional: true } : {}) };
  }

  private publish(c: PodChange): void {
    for (const fn of this.subscribers) {
      try {
        fn(c);
      } catch {
        /* a subscriber's failure is its own */
      }
    }
  }
}
