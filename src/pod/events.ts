// Pod events as kubelet records them: reason/message/type about an involved
// object (the pod, or one container via fieldPath "spec.containers{web}"),
// aggregated like client-go's event correlator: an identical event (same
// object, fieldPath, reason, message, type) bumps `count` and
// `lastTimestamp` instead of adding a new entry. Bounded, in memory; the
// daemon may persist `list()`.

import { randomBytes } from 'node:crypto';
import type { Container, Event, Pod } from './api-types.js';

export interface EventInput {
  reason: string;
  message: string;
  type?: 'Normal' | 'Warning';
  /** container name: sets fieldPath spec.containers{name} / spec.initContainers{name} */
  container?: string;
}

/** kubelet's fieldPath for a container: "spec.containers{web}" or "spec.initContainers{init}". */
export function containerFieldPath(pod: Pod, name: string): string {
  const init = (pod.spec.initContainers ?? []).some((c: Container) => c.name === name);
  return `spec.${init ? 'initContainers' : 'containers'}{${name}}`;
}

export class EventLog {
  private events: Event[] = [];
  private index = new Map<string, Event>();
  private listeners = new Set<(e: Event) => void>();

  constructor(private readonly opts: { max?: number; host?: string } = {}) {}

  record(pod: Pod, input: EventInput, now: Date = new Date()): Event {
    const ts = now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    const fieldPath = input.container ? containerFieldPath(pod, input.container) : undefined;
    const type = input.type ?? 'Normal';
    const ns = pod.metadata.namespace ?? 'default';
    const key = [ns, pod.metadata.name, pod.metadata.uid, fieldPath ?? '', input.reason, input.message, type].join('\u0000');
    let e = this.index.get(key);
    if (e) {
      e.count++;
      e.lastTimestamp = ts;
      // move to the end: most recent last
      this.events.splice(this.events.indexOf(e), 1);
      this.events.push(e);
    } else {
      e = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `${pod.metadata.name}.${randomBytes(8).toString('hex')}`, namespace: ns, creationTimestamp: ts },
        involvedObject: { kind: 'Pod', apiVersion: 'v1', namespace: ns, name: pod.metadata.name, uid: pod.metadata.uid, ...(fieldPath ? { fieldPath } : {}) },
        reason: input.reason,
        message: input.message,
        type,
        count: 1,
        firstTimestamp: ts,
        lastTimestamp: ts,
        source: { component: 'nodelet', ...(this.opts.host ? { host: this.opts.host } : {}) },
        reportingComponent: 'nodelet',
        ...(this.opts.host ? { reportingInstance: this.opts.host } : {}),
      };
      this.index.set(key, e);
      this.events.push(e);
      const max = this.opts.max ?? 1000;
      while (this.events.length > max) {
        const old = this.events.shift()!;
        for (const [k, v] of this.index) if (v === old) this.index.delete(k);
      }
    }
    for (const l of this.listeners) l(e);
    return e;
  }

  /** Events, oldest first; filtered by namespace and/or pod uid. */
  list(filter: { namespace?: string; uid?: string; name?: string } = {}): Event[] {
    return this.events.filter(
      (e) =>
        (!filter.namespace || e.involvedObject.namespace === filter.namespace) &&
        (!filter.uid || e.involvedObject.uid === filter.uid) &&
        (!filter.name || e.involvedObject.name === filter.name),
    );
  }

  /** Forget a deleted pod's events. */
  forget(uid: string): void {
    this.events = this.events.filter((e) => e.involvedObject.uid !== uid);
    for (const [k, v] of this.index) if (v.involvedObject.uid === uid) this.index.delete(k);
  }

  onEvent(l: (e: Event) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  toJSON(): Event[] {
    return this.events;
  }
}
