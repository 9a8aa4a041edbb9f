// Pod workers (kubelet pod_workers.go): one serial worker per pod, driven
// through explicit lifecycle states
//
//   syncing ──terminate()──▶ terminating ──▶ terminated (worker forgotten)
//
// A request while the pod's worker runs only marks it dirty, so a pod's
// syncs never overlap and a burst of wake-ups costs one more sync. Timed
// wake-ups (back-off expiry, deadlines, retries) keep the earliest time.
// The worker knows nothing of containers: it calls the handler's sync
// functions for the pod's state, and the handler decides what they do.
import { describeError } from '../errors.js';
import { getLogger } from '../log.js';
import { sleep } from '../sys/proc.js';

const log = getLogger('agent.workers');

export type WorkerState = 'syncing' | 'terminating' | 'terminated';

export interface PodSyncHandler {
  /** kubelet SyncPod: bring the pod to its spec. */
  syncPod(uid: string): Promise<void>;
  /** kubelet SyncTerminatingPod: stop every container with the grace period. Called until it returns. */
  syncTerminatingPod(uid: string, gracePeriodSeconds: number | undefined): Promise<void>;
  /** kubelet SyncTerminatedPod: release sandbox, volumes and records. */
  syncTerminatedPod(uid: string): Promise<void>;
  /** A sync threw: record it (FailedSync); the worker retries after `retryMs`. */
  onSyncError(uid: string, err: unknown): void;
}

interface Worker {
  state: WorkerState;
  running: boolean;
  dirty: boolean;
  grace?: number;
  timer?: NodeJS.Timeout;
  timerAt?: number;
  idle: (() => void)[];
  terminated: Promise<void>;
  resolveTerminated: () => void;
}

export interface PodWorkersOptions {
  /** Delay before a failed sync is retried (ms), default 2 s. */
  retryMs?: number;
}

export class PodWorkers {
  private readonly workers = new Map<string, Worker>();
  private closed = false;
  private readonly retryMs: number;
  /** sync durations for /metrics */
  readonly stats = { count: 0, totalMs: 0 };

  constructor(private readonly handler: PodSyncHandler, opts: PodWorkersOptions = {}) {
    this.retryMs = opts.retryMs ?? 2000;
  }

  /** Start (or wake) the worker of a pod. */
  update(uid: string): void {
    if (this.closed) return;
    let w = this.workers.get(uid);
    if (!w) {
      let resolveTerminated!: () => void;
      const terminated = new Promise<void>((r) => (resolveTerminated = r));
      w = { state: 'syncing', running: false, dirty: false, idle: [], terminated, resolveTerminated };
      this.workers.set(uid, w);
    }
    if (w.state === 'terminated') return;
    w.dirty = true;
    if (!w.running) void this.run(uid, w);
  }

  /** Move a pod to terminating (idempotent; a shorter grace period wins, as kubelet). Resolves once terminated. */
  terminate(uid: string, gracePeriodSeconds?: number): Promise<void> {
    if (!this.workers.has(uid)) this.update(uid);
    const w = this.workers.get(uid);
    if (!w) return Promise.resolve();
    if (w.state === 'syncing') w.state = 'terminating';
    if (gracePeriodSeconds !== undefined && (w.grace === undefined || gracePeriodSeconds < w.grace)) w.grace = gracePeriodSeconds;
    this.update(uid);
    return w.terminated;
  }

  state(uid: string): WorkerState | undefined {
    return this.workers.get(uid)?.state;
  }

  /** Sync the pod no later than `at` (epoch ms); an earlier pending wake-up is kept. */
  schedule(uid: string, at: number): void {
    const w = this.workers.get(uid);
    if (!w || this.closed || w.state === 'terminated') return;
    if (w.timer && w.timerAt !== undefined && w.timerAt <= at) return;
    if (w.timer) clearTimeout(w.timer);
    w.timerAt = at;
    w.timer = setTimeout(() => {
      w.timer = undefined;
      w.timerAt = undefined;
      this.update(uid);
    }, Math.max(0, at - Date.now()) + 5);
  }

  /** Resolves when the pod's worker has nothing pending. */
  whenIdle(uid: string): Promise<void> {
    const w = this.workers.get(uid);
    if (!w || (!w.running && !w.dirty)) return Promise.resolve();
    return new Promise((r) => w.idle.push(r));
  }

  /** Wake every syncing pod (the periodic resync). */
  resyncAll(): void {
    for (const uid of this.workers.keys()) this.update(uid);
  }

  /** Stop taking work; waits (bounded) for running syncs. Never stops containers. */
  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    for (const w of this.workers.values()) if (w.timer) clearTimeout(w.timer);
    const end = Date.now() + timeoutMs;
    for (const w of this.workers.values()) while (w.running && Date.now() < end) await sleep(20);
  }

  private async run(uid: string, w: Worker): Promise<void> {
    w.running = true;
    try {
      while (w.dirty && !this.closed && w.state !== 'terminated') {
        w.dirty = false;
        const t0 = performance.now();
        try {
          if (w.state === 'syncing') {
            await this.handler.syncPod(uid);
          } else {
            await this.handler.syncTerminatingPod(uid, w.grace);
            await this.handler.syncTerminatedPod(uid);
            w.state = 'terminated';
          }
        } catch (err) {
          log.error('sync failed', { uid, state: w.state, error: describeError(err) });
          this.handler.onSyncError(uid, err);
          this.schedule(uid, Date.now() + this.retryMs);
        }
        this.stats.count++;
        this.stats.totalMs += performance.now() - t0;
      }
    } finally {
      w.running = false;
      if (w.state === 'terminated') {
        if (w.timer) clearTimeout(w.timer);
        this.workers.delete(uid);
        w.resolveTerminated();
      }
      for (const r of w.idle.splice(0)) r();
    }
  }
}
