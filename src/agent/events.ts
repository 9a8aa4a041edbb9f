// Event recorder like client-go's: events about the same object, reason and
// message are aggregated into one Event whose count and lastTimestamp grow
// (the k8s EventCorrelator's dedup), so a crash loop is one "BackOff" event
// with count N, not N events. Bounded: the oldest events are dropped.
import { randomBytes } from 'node:crypto';
import type { Event, Pod } from '../pod/api-types.js';

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

  forget(uid: string): void {
    for (const [k, e] of this.byKey) if (e.involvedObject.uid === uid) this.byKey.delete(k);
  }
}
