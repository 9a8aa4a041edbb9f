// core/v1 Events towards the API server, as kubelet's event broadcaster
// sends them: the first occurrence is created, a repeat (the recorder's
// aggregation: same object, reason and message) patches count and
// lastTimestamp of the same Event. One request at a time, a bounded queue
// (the oldest are dropped when the API server is away for long), and only
// for objects the API server knows (its pods, and the Node).
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';
import { isAlreadyExists, isNotFound } from '../kube/errors.js';
import type { KubeClient, ResourceRef } from '../kube/types.js';
import { sleep } from '../sys/proc.js';
import type { RecordedEvent } from '../agent/events.js';

const log = getLogger('cluster.events');

const EVENTS = (namespace: string): ResourceRef => ({ group: '', version: 'v1', resource: 'events', namespace });

export interface EventSinkOptions {
  client: KubeClient;
  nodeName: string;
  /** queue bound (default 1000) */
  max?: number;
}

export class EventSink {
  private readonly queue: RecordedEvent[] = [];
  private readonly created = new Set<string>();
  private running = false;
  private stopped = false;
  readonly stats = { sent: 0, dropped: 0, errors: 0 };

  constructor(private readonly o: EventSinkOptions) {}

  /** Queue the event (a snapshot is taken: the recorder keeps mutating its own). */
  send(e: RecordedEvent): void {
    if (this.stopped) return;
    this.queue.push(structuredClone(e));
    while (this.queue.length > (this.o.max ?? 1000)) {
      this.queue.shift();
      this.stats.dropped++;
    }
    if (!this.running) void this.drain();
  }

  stop(): void {
    this.stopped = true;
  }

  async idle(): Promise<void> {
    while (this.running || this.queue.length) await sleep(20);
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length && !this.stopped) await this.post(this.queue.shift()!);
    } finally {
      this.running = false;
    }
  }

  private async post(e: RecordedEvent): Promise<void> {
    const ns = e.metadata.namespace;
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: e.metadata.name, namespace: ns },
      involvedObject: e.involvedObject,
      reason: e.reason,
      message: e.message,
      type: e.type,
      count: e.count ?? 1,
      firstTimestamp: e.firstTimestamp,
      lastTimestamp: e.lastTimestamp,
      source: { component: 'kubelet', host: this.o.nodeName },
      reportingComponent: 'kubelet',
      reportingInstance: this.o.nodeName,
    };
    const key = `${ns}/${e.metadata.name}`;
    try {
      if (this.created.has(key) || (e.count ?? 1) > 1) {
        try {
          await this.o.client.patch(EVENTS(ns), e.metadata.name, 'strategic', { count: body.count, lastTimestamp: body.lastTimestamp, message: body.message });
        } catch (err) {
          if (!isNotFound(err)) throw err;
          await this.o.client.create(EVENTS(ns), body); // expired (events have a TTL): create it again
        }
      } else {
        try {
          await this.o.client.create(EVENTS(ns), body);
        } catch (err) {
          if (!isAlreadyExists(err)) throw err;
        }
      }
      this.created.add(key);
      if (this.created.size > 10_000) this.created.delete(this.created.values().next().value!);
      this.stats.sent++;
    } catch (err) {
      this.stats.errors++;
      log.debug('event not sent', { event: key, reason: e.reason, error: describeError(err) });
    }
  }
}
