// Event recorder like client-go's: events about the same object, reason and
// message are aggregated into one Event whose count and lastTimestamp grow
// (the k8s EventCorrelator's dedup), so a crash loop is one "BackOff" event
// with count N, not N events. Bounded: the oldest events are dropped.
import { randomBytes } from 'node:crypto';
import type { Container, Event, Pod } from '../pod/api-types.js';

/** kubelet's fieldPath for a container: "spec.containers{web}" or "spec.initContainers{init}". */
export function containerFieldPath(pod: Pod, name: string): string {
  const init = (pod.spec.initContainers ?? []).some((c: Container) => c.name === name);
  return `spec.${init ? 'initContainers' : 'containers'}{${name}}`;
}

export interface RecordedEvent extends Event {
  metadata: { name: string; namespace: string; uid: string; resourceVersion?: string };
}

export class EventRecorder {
  private readonly byKey = new Map<string, RecordedEvent>();
  private seq = 0;
  constructor(private readonly onEvent: (e: RecordedEvent) => void, private readonly max = 2000, private readonly nodeName = 'localhost') {}

  record(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string, now = new Date()): RecordedEvent {
    const ns = pod.metadata.namespace ?? 'default';
    const key = [pod.metadata.uid, fieldPath ?? '', type, reason, message].join('\u0000');
    const ts = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    let e = this.byKey.get(key);
    if (e) {
      e.count = (e.count ?? 1) + 1;
      e.lastTimestamp = ts;
      this.byKey.delete(key); // re-insert: most recent last
    } else {
      e = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `${pod.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: ns, uid: randomBytes(16).toString('hex') },
        involvedObject: { kind: 'Pod', namespace: ns, name: pod.metadata.name!, uid: pod.metadata.uid!, apiVersion: 'v1', ...(fieldPath ? { fieldPath } : {}) },
        reason,
        message,
        type,
        count: 1,
        firstTimestamp: ts,
        lastTimestamp: ts,
        source: { component: 'nodelet', host: this.nodeName },
      } as RecordedEvent;
    }
    e.metadata.resourceVersion = String(++this.seq);
    this.byKey.set(key, e);
    while (this.byKey.size > this.max) this.byKey.delete(this.byKey.keys().next().value!);
    this.onEvent(e);
    return e;
  }

  list(filter?: { uid?: string; name?: string; namespace?: string }): RecordedEvent[] {
    return [...this.byKey.values()].filter(
      (e) =>
        (!filter?.uid || e.involvedObject.uid === filter.uid) &&
        (!filter?.name || e.involvedObject.name === filter.name) &&
        (!filter?.namespace || e.involvedObject.namespace === filter.namespace),
    );
  }

  /** Put back events saved before a restart (oldest first); they keep aggregating. */
  restore(events: RecordedEvent[]): void {
    for (const e of events) {
      const key = [e.involvedObject.uid, e.involvedObject.fieldPath ?? '', e.type, e.reason, e.message].join('\u0000');
      this.byKey.delete(key);
      this.byKey.set(key, e);
      this.seq = Math.max(this.seq, Number(e.metadata.resourceVersion ?? 0) || 0);
    }
    while (this.byKey.size > this.max) this.byKey.delete(this.byKey.keys().next().value!);
  }

  forget(uid: string): void {
    for (const [k, e] of this.byKey) if (e.involvedObject.uid === uid) this.byKey.delete(k);
  }
}
