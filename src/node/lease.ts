// LeaseController: the node heartbeat (kubelet's nodelease controller, on
// component-helpers/apimachinery/lease): a coordination.k8s.io/v1 Lease in
// kube-node-lease named after the node, holderIdentity = node name,
// leaseDurationSeconds 40, renewed every 0.25 × 40 = 10 s (jittered 4 %) by a
// PUT with a new renewTime.
//
//   - renew from the lease of the last successful write, without a GET;
//   - if that fails: GET (create when missing — only once the Node's UID is
//     known, for the ownerReference) with back-off 200 ms doubling to 7 s;
//   - up to 5 PUTs per round; a 409 Conflict re-GETs the lease first.
// The loop never throws.

import { failedPrecondition, isNodeletError } from '../errors.js';
import { isConflict, isNotFound } from '../kube/errors.js';
import type { KubeClient, ResourceRef } from '../kube/types.js';
import { getLogger, type Logger } from '../log.js';
import { formatMicroTime, jitter, realClock, type Clock } from './clock.js';
import type { LeaseObject } from './types.js';

export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
export const DEFAULT_LEASE_DURATION_SECONDS = 40;
/** renewInterval = leaseDuration × 0.25 */
export const LEASE_RENEW_FRACTION = 0.25;
/** maxUpdateRetries */
export const LEASE_MAX_UPDATE_RETRIES = 5;
const BACKOFF_START_MS = 100; // doubled before the first wait: 200 ms
const BACKOFF_MAX_MS = 7_000;
const JITTER_FACTOR = 0.04;

export function leasesRef(namespace = NODE_LEASE_NAMESPACE): ResourceRef {
  return { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', namespace };
}

export interface LeaseControllerOptions {
  client: KubeClient;
  nodeName: string;
  /** the Node's UID for the lease's ownerReference; undefined until the node is registered */
  nodeUid: () => string | undefined;
  leaseDurationSeconds?: number;
  /** default leaseDurationSeconds × 0.25 */
  renewIntervalMs?: number;
  namespace?: string;
  clock?: Clock;
  random?: () => number;
  logger?: Logger;
  /** called when a round needed more than one PUT (kubelet: onRepeatedHeartbeatFailure) */
  onRepeatedFailure?: () => void;
}

export class LeaseController {
  readonly nodeName: string;
  private readonly client: KubeClient;
  private readonly nodeUid: () => string | undefined;
  private readonly durationSeconds: number;
  private readonly renewIntervalMs: number;
  private readonly ref: ResourceRef;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly onRepeatedFailure?: () => void;
  private latest: LeaseObject | undefined;
  private stopped = false;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(opts: LeaseControllerOptions) {
    this.client = opts.client;
    this.nodeName = opts.nodeName;
    this.nodeUid = opts.nodeUid;
    this.durationSeconds = opts.leaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS;
    this.renewIntervalMs = opts.renewIntervalMs ?? this.durationSeconds * 1000 * LEASE_RENEW_FRACTION;
    this.ref = leasesRef(opts.namespace);
    this.clock = opts.clock ?? realClock;
    this.random = opts.random ?? Math.random;
    this.log = (opts.logger ?? getLogger('node-lease')).child({ node: opts.nodeName });
    this.onRepeatedFailure = opts.onRepeatedFailure;
  }

  /** The lease as last written (or read). */
  get lease(): LeaseObject | undefined {
    return this.latest;
  }

  start(): this {
    if (!this.loop && !this.stopped) this.loop = this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.sync();
      } catch (e) {
        this.log.error('lease sync failed', { err: e }); // sync catches its own errors; a last guard
      }
      if (this.stopped) break;
      await this.clock.sleep(jitter(this.renewIntervalMs, JITTER_FACTOR, this.random), this.abort.signal);
    }
  }

  /** One renewal round. */
  async sync(): Promise<void> {
    if (this.latest) {
      if (await this.retryUpdateLease(this.latest)) return;
      this.log.info('failed to update lease using latest lease, fallback to ensure lease');
    }
    const ensured = await this.backoffEnsureLease();
    if (!ensured) return; // stopped
    this.latest = ensured.lease;
    if (!ensured.created && !(await this.retryUpdateLease(ensured.lease))) {
      this.log.error('will retry updating lease', { intervalMs: this.renewIntervalMs });
    }
  }

  /** GET, or create when missing; retried with back-off until it works or stop(). */
  private async backoffEnsureLease(): Promise<{ lease: LeaseObject; created: boolean } | undefined> {
    let sleep = BACKOFF_START_MS;
    while (!this.stopped) {
      try {
        return await this.ensureLease();
      } catch (e) {
        sleep = Math.min(2 * sleep, BACKOFF_MAX_MS);
        if (isNodeletError(e, 'ERR_LEASE_NODE_UID_UNKNOWN')) this.log.info('waiting for the Node to be registered before creating its lease', { intervalMs: sleep });
        else this.log.error('failed to ensure lease exists, will retry', { err: e, intervalMs: sleep });
        await this.clock.sleep(sleep, this.abort.signal);
      }
    }
    return undefined;
  }

  private async ensureLease(): Promise<{ lease: LeaseObject; created: boolean }> {
    try {
      return { lease: await this.client.get<LeaseObject>(this.ref, this.nodeName), created: false };
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    const lease = await this.client.create<LeaseObject>(this.ref, this.newLease(undefined));
    this.log.info('created node lease', { uid: lease.metadata.uid });
    return { lease, created: true };
  }

  /** Up to LEASE_MAX_UPDATE_RETRIES PUTs; a conflict re-reads the lease. */
  private async retryUpdateLease(base: LeaseObject): Promise<boolean> {
    let current = base;
    for (let i = 0; i < LEASE_MAX_UPDATE_RETRIES && !this.stopped; i++) {
      try {
        this.latest = await this.client.update<LeaseObject>(this.ref, this.nodeName, this.newLease(current));
        return true;
      } catch (e) {
        this.log.error('failed to update lease', { err: e, attempt: i + 1 });
        if (isConflict(e)) {
          const ensured = await this.backoffEnsureLease();
          if (!ensured) return false;
          current = ensured.lease;
          continue;
        }
      }
      if (i > 0) this.onRepeatedFailure?.();
    }
    return false;
  }

  /**
   * The lease to write: a new one (base undefined) or a copy of base with
   * duration and renewTime asserted and, when it has none, the ownerReference
   * to the Node. Without the Node's UID a new lease cannot be made (throws;
   * the caller backs off); a renewal goes ahead without it.
   */
  newLease(base: LeaseObject | undefined): LeaseObject {
    const lease: LeaseObject = base
      ? (JSON.parse(JSON.stringify(base)) as LeaseObject)
      : {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.nodeName, namespace: this.ref.namespace },
          spec: { holderIdentity: this.nodeName },
        };
    lease.spec = { ...(lease.spec ?? {}), leaseDurationSeconds: this.durationSeconds, renewTime: formatMicroTime(this.clock.now()) };
    if (!lease.metadata.ownerReferences?.length) {
      const uid = this.nodeUid();
      if (uid) lease.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'Node', name: this.nodeName, uid }];
      else if (!base) {
        throw failedPrecondition('ERR_LEASE_NODE_UID_UNKNOWN', `cannot create the lease of node ${this.nodeName} before the Node is registered (its UID is the lease's owner)`);
      }
    }
    return lease;
  }
}
