// NodeController: the node's half of kubelet's node status protocol.
//
//   1. register: POST the Node (labels, attach/detach annotation, full status);
//      if it exists, GET it, reconcile the default labels and adopt it
//      (kubelet's registerWithAPIServer / tryRegisterWithAPIServer), retrying
//      with back-off (100 ms doubling to 7 s);
//   2. every nodeStatusUpdateFrequency (10 s, jittered 4 %): GET the Node,
//      compute the status from fresh host signals on top of it, and PATCH
//      nodes/<name>/status (strategic merge) when statusNeedsUpdate says so —
//      on any change but heartbeats, at least every 5 minutes. Up to 5 tries a
//      round, with a short back-off between them.
//
// The loop never throws; failures are logged and retried. Inputs from the
// rest of the daemon: setRuntimeReady / setNetworkReady (Ready=False with the
// reason while not ready) and setImages (the image list, largest first).

import { failedPrecondition, NodeletError } from '../errors.js';
import { isAlreadyExists, isNotFound } from '../kube/errors.js';
import type { KubeClient, ResourceRef } from '../kube/types.js';
import { getLogger, type Logger } from '../log.js';
import { jitter, realClock, type Clock } from './clock.js';
import type { HostInfo } from './host-info.js';
import { nodeStatusPatch, isEmptyPatch } from './patch.js';
import {
  computeNodeStatusWithEvents,
  computePressure,
  defaultNodeStatusConfig,
  initialNode,
  nodeLabels,
  NODE_STATUS_REPORT_FREQUENCY_MS,
  NODE_STATUS_UPDATE_FREQUENCY_MS,
  parseEvictionThresholds,
  PRESSURE_TRANSITION_PERIOD_MS,
  reconcileAttachDetachAnnotation,
  reconcileDefaultLabels,
  statusNeedsUpdate,
  updatePressure,
  type EvictionThreshold,
  type NodeConditionEvent,
  type NodeStatusConfig,
  type Pressure,
  type PressureState,
} from './status.js';
import type { NodeImage, NodeObject, Taint } from './types.js';

export const NODES: ResourceRef = { group: '', version: 'v1', resource: 'nodes' };
export const NODES_STATUS: ResourceRef = { group: '', version: 'v1', resource: 'nodes', subresource: 'status' };

/** nodeStatusUpdateRetry */
export const NODE_STATUS_UPDATE_RETRY = 5;
const REGISTER_BACKOFF_START_MS = 100;
const REGISTER_BACKOFF_MAX_MS = 7_000;
const RETRY_BACKOFF_START_MS = 200;
const JITTER_FACTOR = 0.04;

/** A node event for the caller's event recorder (kubelet's recordNodeStatusEvent). */
export interface NodeEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface NodeControllerOptions {
  client: KubeClient;
  nodeName: string;
  /** host signals, read afresh every round (src/node/host-info.ts readHostInfo) */
  readHost: () => Promise<HostInfo>;
  statusConfig?: Partial<NodeStatusConfig>;
  /** --node-labels */
  labels?: Record<string, string>;
  /** --register-with-taints */
  taints?: Taint[];
  /** --register-schedulable=false */
  unschedulable?: boolean;
  /** default 10 s */
  updateFrequencyMs?: number;
  /** default 5 min */
  reportFrequencyMs?: number;
  /** evictionPressureTransitionPeriod, default 5 min */
  pressureTransitionMs?: number;
  /** Ready=False until setRuntimeReady(true); default true (the runtime is ready) */
  initialRuntimeReady?: boolean;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  onEvent?: (e: NodeEvent) => void;
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {}); // a rejection nobody awaits is not an unhandled one
  return { promise, resolve, reject };
}

export class NodeController {
  readonly nodeName: string;
  /** resolves with the Node's UID once it is registered (created or adopted) */
  readonly onRegistered: Promise<string>;
  /** resolves with the Node's UID once registered and its first status is posted */
  readonly onReady: Promise<string>;

  private readonly client: KubeClient;
  private readonly readHost: () => Promise<HostInfo>;
  private readonly config: NodeStatusConfig;
  private readonly thresholds: EvictionThreshold[];
  private readonly extraLabels: Record<string, string>;
  private readonly taints: Taint[];
  private readonly unschedulable: boolean;
  private readonly updateFrequencyMs: number;
  private readonly reportFrequencyMs: number;
  private readonly pressureTransitionMs: number;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly onEvent?: (e: NodeEvent) => void;
  private readonly registered = deferred<string>();
  private readonly ready = deferred<string>();

  private uid: string | undefined;
  private lastNode: NodeObject | undefined;
  private lastReportedAt: number | undefined;
  private pressureState: PressureState = {};
  private runtimeErrors: string[] = [];
  private networkErrors: string[] = [];
  private images: NodeImage[] | undefined;
  private isRegistered = false;
  private readySettled = false;
  private stopped = false;
  private readonly abort = new AbortController();
  private wakeSleep: AbortController | undefined;
  private wakePending = false;
  private loop: Promise<void> | undefined;

  constructor(opts: NodeControllerOptions) {
    this.client = opts.client;
    this.nodeName = opts.nodeName;
    this.readHost = opts.readHost;
    this.config = defaultNodeStatusConfig(opts.statusConfig);
    this.thresholds = parseEvictionThresholds(this.config.evictionHard); // throws early on a bad --eviction-hard
    this.extraLabels = { ...(opts.labels ?? {}) };
    this.taints = [...(opts.taints ?? [])];
    this.unschedulable = opts.unschedulable ?? false;
    this.updateFrequencyMs = opts.updateFrequencyMs ?? NODE_STATUS_UPDATE_FREQUENCY_MS;
    this.reportFrequencyMs = opts.reportFrequencyMs ?? NODE_STATUS_REPORT_FREQUENCY_MS;
    this.pressureTransitionMs = opts.pressureTransitionMs ?? PRESSURE_TRANSITION_PERIOD_MS;
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.log = (opts.logger ?? getLogger('node')).child({ node: opts.nodeName });
    this.onEvent = opts.onEvent;
    if (opts.initialRuntimeReady === false) this.runtimeErrors = ['container runtime status check may not have completed yet'];
    this.onRegistered = this.registered.promise;
    this.onReady = this.ready.promise;
  }

  /** The Node's UID, once registered. */
  get nodeUid(): string | undefined {
    return this.uid;
  }

  /** The Node as the API server last returned it. */
  get node(): NodeObject | undefined {
    return this.lastNode;
  }

  /** Starts the register-then-update loop (idempotent). */
  start(): this {
    if (!this.loop && !this.stopped) this.loop = this.run();
    return this;
  }

  /** The container runtime's health: not ok → Ready=False with this reason. */
  setRuntimeReady(ok: boolean, reason?: string): void {
    const next = ok ? [] : [reason ?? 'container runtime is down'];
    if (next.join('\n') === this.runtimeErrors.join('\n')) return;
    this.runtimeErrors = next;
    this.wake();
  }

  /** The pod network's health: not ok → Ready=False with this reason. */
  setNetworkReady(ok: boolean, reason?: string): void {
    const next = ok ? [] : [reason ?? 'container runtime network not ready: NetworkReady=false'];
    if (next.join('\n') === this.networkErrors.join('\n')) return;
    this.networkErrors = next;
    this.wake();
  }

  /** The images on the node (reported at the next status update). */
  setImages(images: NodeImage[]): void {
    this.images = images.map((i) => ({ names: [...i.names], sizeBytes: i.sizeBytes }));
  }

  /** Run the next status round now instead of at the end of the current wait. */
  wake(): void {
    this.wakePending = true;
    this.wakeSleep?.abort();
  }

  async stop(): Promise<void> {
    if (this.stopped) return this.loop;
    this.stopped = true;
    this.abort.abort();
    this.wakeSleep?.abort();
    const canceled = new NodeletError('Canceled', 'ERR_NODE_CONTROLLER_STOPPED', `node controller for ${this.nodeName} stopped before the node was ready`);
    this.registered.reject(canceled);
    if (!this.readySettled) this.ready.reject(canceled);
    await this.loop;
  }

  // ---------------------------------------------------------------- the loop

  private async run(): Promise<void> {
    let backoff = REGISTER_BACKOFF_START_MS;
    while (!this.stopped) {
      try {
        if (!this.isRegistered) {
          if (!(await this.registerOnce())) {
            await this.clock.sleep(backoff, this.abort.signal);
            backoff = Math.min(backoff * 2, REGISTER_BACKOFF_MAX_MS);
            continue;
          }
          backoff = REGISTER_BACKOFF_START_MS;
        }
        await this.updateNodeStatus();
      } catch (e) {
        // registerOnce/updateNodeStatus catch their own errors; this is a last guard
        this.log.error('node status loop failed', { err: e });
      }
      if (this.stopped) break;
      if (!this.isRegistered) continue; // deleted under us: register again at once
      await this.sleepOrWake(jitter(this.updateFrequencyMs, JITTER_FACTOR, this.random));
    }
  }

  private async sleepOrWake(ms: number): Promise<void> {
    if (this.wakePending) {
      this.wakePending = false;
      return;
    }
    const wake = new AbortController();
    this.wakeSleep = wake;
    const onStop = () => wake.abort();
    this.abort.signal.addEventListener('abort', onStop, { once: true });
    try {
      await this.clock.sleep(ms, wake.signal);
    } finally {
      this.abort.signal.removeEventListener('abort', onStop);
      if (this.wakeSleep === wake) this.wakeSleep = undefined;
      this.wakePending = false;
    }
  }

  private observePressure(host: HostInfo, now: number): Pressure {
    const { state, pressure } = updatePressure(this.pressureState, computePressure(host, this.thresholds), now, this.pressureTransitionMs);
    this.pressureState = state;
    return pressure;
  }

  private emit(events: NodeConditionEvent[]): void {
    for (const e of events) {
      const ev: NodeEvent = { type: e.type, reason: e.reason, message: `Node ${this.nodeName} status is now: ${e.reason}` };
      this.log.info('node status event', { reason: e.reason });
      try {
        this.onEvent?.(ev);
      } catch (err) {
        this.log.warn('node event handler failed', { err });
      }
    }
  }

  private adopt(node: NodeObject, how: 'created' | 'adopted'): void {
    const uid = node.metadata.uid;
    if (!uid) throw failedPrecondition('ERR_NODE_NO_UID', `the API server returned Node ${this.nodeName} without a metadata.uid`);
    if (this.uid && this.uid !== uid) this.log.warn('node was re-created', { oldUid: this.uid, uid });
    this.uid = uid;
    this.lastNode = node;
    this.isRegistered = true;
    this.lastReportedAt = undefined; // report at once after (re-)registration
    this.log.info(how === 'created' ? 'registered node' : 'node was previously registered; adopted it', { uid });
    this.registered.resolve(uid);
  }

  /** One tryRegisterWithAPIServer. Never throws: false means try again later. */
  async registerOnce(): Promise<boolean> {
    try {
      const host = await this.readHost();
      const now = this.clock.now();
      const labels = nodeLabels({ hostname: host.hostname, operatingSystem: host.operatingSystem, architecture: host.architecture, extra: this.extraLabels });
      const { status, events } = computeNodeStatusWithEvents({
        host,
        now,
        config: this.config,
        runtimeErrors: this.runtimeErrors,
        networkErrors: this.networkErrors,
        pressure: this.observePressure(host, now),
        images: this.images,
      });
      const node = initialNode({ name: this.nodeName, labels, status, unschedulable: this.unschedulable, taints: this.taints });
      this.log.info('attempting to register node');
      try {
        const created = await this.client.create<NodeObject>(NODES, node);
        this.adopt(created, 'created');
        this.emit(events);
        return true;
      } catch (e) {
        if (!isAlreadyExists(e)) {
          this.log.error('unable to register node with the API server', { err: e });
          return false;
        }
      }
      let existing = await this.client.get<NodeObject>(NODES, this.nodeName);
      const lab = reconcileDefaultLabels(labels, existing.metadata.labels);
      const ann = reconcileAttachDetachAnnotation(existing.metadata.annotations);
      if (lab.changed || ann.changed) {
        const desired: NodeObject = { ...existing, metadata: { ...existing.metadata, labels: lab.labels, annotations: ann.annotations } };
        const patch = nodeStatusPatch(existing, desired);
        this.log.info('reconciling labels of the existing node', { patch });
        existing = await this.client.patch<NodeObject>(NODES_STATUS, this.nodeName, 'strategic', patch);
      }
      this.adopt(existing, 'adopted');
      return true;
    } catch (e) {
      this.log.error('unable to register node with the API server', { err: e });
      return false;
    }
  }

  /** updateNodeStatus: up to NODE_STATUS_UPDATE_RETRY tries. Never throws. */
  async updateNodeStatus(): Promise<void> {
    let backoff = RETRY_BACKOFF_START_MS;
    for (let i = 0; i < NODE_STATUS_UPDATE_RETRY && !this.stopped; i++) {
      try {
        await this.tryUpdateNodeStatus();
        return;
      } catch (e) {
        if (isNotFound(e)) {
          this.log.warn('node is gone from the API server; registering it again', { err: e });
          this.isRegistered = false;
          return;
        }
        this.log.error('error updating node status, will retry', { err: e, attempt: i + 1 });
        if (i < NODE_STATUS_UPDATE_RETRY - 1) {
          await this.clock.sleep(backoff, this.abort.signal);
          backoff *= 2;
        }
      }
    }
    if (!this.stopped) this.log.error('update node status exceeds retry count', { retries: NODE_STATUS_UPDATE_RETRY });
  }

  private async tryUpdateNodeStatus(): Promise<void> {
    const node = await this.client.get<NodeObject>(NODES, this.nodeName);
    if (node.metadata.uid && node.metadata.uid !== this.uid) {
      this.log.warn('node was re-created by someone else; adopting the new one', { oldUid: this.uid, uid: node.metadata.uid });
      this.uid = node.metadata.uid;
    }
    this.lastNode = node;
    const host = await this.readHost();
    const now = this.clock.now();
    const { status, events } = computeNodeStatusWithEvents({
      host,
      now,
      previous: node.status,
      config: this.config,
      runtimeErrors: this.runtimeErrors,
      networkErrors: this.networkErrors,
      pressure: this.observePressure(host, now),
      images: this.images,
    });
    if (!statusNeedsUpdate(node.status, status, this.lastReportedAt, now, this.reportFrequencyMs)) return;
    const patch = nodeStatusPatch(node, { ...node, status });
    if (!isEmptyPatch(patch)) {
      const updated = await this.client.patch<NodeObject>(NODES_STATUS, this.nodeName, 'strategic', patch);
      this.lastNode = updated;
    }
    this.lastReportedAt = now;
    this.emit(events);
    if (!this.readySettled && this.uid) {
      this.readySettled = true;
      this.ready.resolve(this.uid);
    }
  }
}
