// The reflector loop (client-go's tools/cache reflector, as kubelet's
// pkg/kubelet/config/apiserver.go uses it for pods): list, hand the full state
// to the consumer, watch from the list's resourceVersion with bookmarks, and
// keep going:
//
//   - an event or bookmark advances the resourceVersion the next watch resumes from;
//   - a watch the server ends normally (timeoutSeconds) is re-opened from there
//     after a short back-off (0.8 s when the watch was healthy);
//   - a broken or refused watch (no answer, 5xx, 429) is retried from the same
//     resourceVersion with capped exponential back-off (0.8 s doubling to 30 s,
//     plus up to 20 % jitter);
//   - 410 Gone/Expired (the resourceVersion is compacted away), or an error that
//     retrying the watch will not cure (403, 400, a bad event), relists: the
//     consumer gets onSync(items) with the new full state and reconciles.
//
// Handlers run one at a time, in order; a handler that throws is logged and
// the loop carries on. stop() aborts the request in flight and resolves once
// the loop has ended.
import { getLogger, type Logger } from '../log.js';
import { KubeApiError, isGone, isRetriable, isStatus } from './errors.js';
import type { KubeClient, KubeObject, KubeStatus, ResourceRef } from './types.js';

export interface BackoffOptions {
  /** first delay (default 800 ms) */
  initialMs?: number;
  /** cap of the exponential part (default 30 000 ms) */
  maxMs?: number;
  /** growth per attempt (default 2) */
  factor?: number;
  /** extra random part, as a fraction of the delay (default 0.2: +0..20 %) */
  jitter?: number;
}

/** Delay before retry number `attempt` (0-based): min(max, initial·factor^attempt) · (1 + jitter·rand). */
export function backoffDelay(attempt: number, o: BackoffOptions = {}, rand: () => number = Math.random): number {
  const initial = o.initialMs ?? 800;
  const max = o.maxMs ?? 30_000;
  const factor = o.factor ?? 2;
  const jitter = o.jitter ?? 0.2;
  const base = Math.min(max, initial * Math.pow(factor, Math.max(0, Math.min(attempt, 64))));
  return Math.round(base * (1 + jitter * rand()));
}

export type InformerEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListWatchHandlers<T extends KubeObject = KubeObject> {
  /** the full state after each (re)list; `resourceVersion` is the list's */
  onSync(items: T[], resourceVersion: string): void | Promise<void>;
  onEvent(type: InformerEventType, obj: T): void | Promise<void>;
  /** each failure, before the back-off sleep (for metrics and tests; the loop logs too) */
  onError?(err: unknown, info: { attempt: number; delayMs: number; relist: boolean }): void;
}

export interface ListWatchOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** list page size (limit/continue); 0: one request. Default 500. */
  pageSize?: number;
  /** timeoutSeconds of each watch; default random in [300, 600) as the reflector does */
  watchTimeoutSeconds?: number | (() => number);
  backoff?: BackoffOptions;
  /** a watch counts as healthy (back-off reset) after an event or after this long open (default 30 s) */
  healthyAfterMs?: number;
  logger?: Logger;
  random?: () => number;
}

export interface ListWatch {
  /** resolves true after the first onSync, false if stopped before it */
  readonly synced: Promise<boolean>;
  hasSynced(): boolean;
  /** the resourceVersion the next watch starts from */
  readonly resourceVersion: string | undefined;
  /** counters, for tests and status */
  readonly stats: { lists: number; watches: number; errors: number; events: number };
  stop(): Promise<void>;
}

function refText(ref: ResourceRef): string {
  return `${ref.group ? `${ref.group}/` : ''}${ref.version}/${ref.namespace ? `namespaces/${ref.namespace}/` : ''}${ref.resource}`;
}

class Reflector<T extends KubeObject> implements ListWatch {
  readonly synced: Promise<boolean>;
  readonly stats = { lists: 0, watches: 0, errors: 0, events: 0 };
  private resolveSynced!: (v: boolean) => void;
  private didSync = false;
  private rv: string | undefined;
  private stopped = false;
  private ctrl = new AbortController();
  private wake: (() => void) | undefined;
  private readonly done: Promise<void>;
  private readonly log: Logger;
  private readonly rand: () => number;

  constructor(
    private readonly client: KubeClient,
    private readonly ref: ResourceRef,
    private readonly opts: ListWatchOptions,
    private readonly handlers: ListWatchHandlers<T>,
  ) {
    this.synced = new Promise((r) => (this.resolveSynced = r));
    this.log = (opts.logger ?? getLogger('informer')).child({ resource: refText(ref), ...(opts.fieldSelector ? { fieldSelector: opts.fieldSelector } : {}), ...(opts.labelSelector ? { labelSelector: opts.labelSelector } : {}) });
    this.rand = opts.random ?? Math.random;
    this.done = this.run().catch((e) => {
      this.log.error('informer loop crashed', { error: e });
    });
  }

  get resourceVersion(): string | undefined {
    return this.rv;
  }

  hasSynced(): boolean {
    return this.didSync;
  }

  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      this.ctrl.abort();
      this.wake?.();
    }
    await this.done;
    this.resolveSynced(false);
  }

  private watchTimeout(): number {
    const w = this.opts.watchTimeoutSeconds;
    if (typeof w === 'number') return w;
    if (typeof w === 'function') return w();
    return Math.floor(300 * (1 + this.rand()));
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0 || this.stopped) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    }).then(() => {
      this.wake = undefined;
    });
  }

  private async call(what: string, fn: () => void | Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      this.log.error(`the ${what} handler failed`, { error: e });
    }
  }

  private async list(): Promise<void> {
    const pageSize = this.opts.pageSize ?? 500;
    let limit: number | undefined = pageSize > 0 ? pageSize : undefined;
    const items: T[] = [];
    let cont: string | undefined;
    let rv = '';
    this.stats.lists++;
    for (;;) {
      let page;
      try {
        page = await this.client.list<T>(this.ref, {
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
          limit,
          continue: cont,
          signal: this.ctrl.signal,
        });
      } catch (e) {
        if (cont !== undefined && isGone(e)) {
          // the continue token expired mid-way: one full list instead (as the reflector does)
          this.log.info('list continue token expired; listing all at once');
          items.length = 0;
          cont = undefined;
          limit = undefined;
          continue;
        }
        throw e;
      }
      items.push(...page.items);
      rv = page.metadata.resourceVersion ?? rv;
      cont = page.metadata.continue || undefined;
      if (!cont || this.stopped) break;
    }
    if (this.stopped) return;
    this.rv = rv;
    await this.call('onSync', () => this.handlers.onSync(items, rv));
    if (!this.didSync) {
      this.didSync = true;
      this.resolveSynced(true);
    }
  }

  private statusError(st: KubeStatus): KubeApiError {
    return new KubeApiError({
      httpStatus: st.code ?? 500,
      status: st,
      method: 'WATCH',
      path: refText(this.ref),
      server: this.client.server,
    });
  }

  private async run(): Promise<void> {
    let needList = true;
    let attempt = 0;
    const healthyAfter = this.opts.healthyAfterMs ?? 30_000;
    while (!this.stopped) {
      let delay = 0;
      let opened = 0;
      let events = 0;
      try {
        if (needList) {
          await this.list();
          needList = false;
          attempt = 0;
          if (this.stopped) break;
        }
        this.stats.watches++;
        opened = Date.now();
        const stream = this.client.watch<T>(this.ref, {
          labelSelector: this.opts.labelSelector,
          fieldSelector: this.opts.fieldSelector,
          resourceVersion: this.rv,
          allowWatchBookmarks: true,
          timeoutSeconds: this.watchTimeout(),
          signal: this.ctrl.signal,
        });
        for await (const ev of stream) {
          if (this.stopped) break;
          if (ev.type === 'ERROR') {
            const st = ev.object as unknown;
            throw this.statusError(isStatus(st) ? st : { kind: 'Status', status: 'Failure', code: 500, message: `watch ERROR event: ${JSON.stringify(st).slice(0, 200)}` });
          }
          const obj = ev.object;
          const rv = obj?.metadata?.resourceVersion;
          events++;
          if (ev.type === 'BOOKMARK') {
            if (rv) this.rv = rv;
            continue;
          }
          if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED' && ev.type !== 'DELETED') {
            this.log.warn('unknown watch event type; ignored', { type: ev.type });
            continue;
          }
          this.stats.events++;
          await this.call('onEvent', () => this.handlers.onEvent(ev.type as InformerEventType, obj));
          if (rv) this.rv = rv;
        }
        if (this.stopped) break;
        if (events > 0 || Date.now() - opened >= healthyAfter) attempt = 0;
        delay = backoffDelay(attempt, this.opts.backoff, this.rand);
        attempt++;
        this.log.debug('watch ended; re-opening', { resourceVersion: this.rv, delayMs: delay });
      } catch (e) {
        if (this.stopped) break;
        this.stats.errors++;
        if (events > 0 || (opened > 0 && Date.now() - opened >= healthyAfter)) attempt = 0;
        const gone = isGone(e);
        const relist = gone || !isRetriable(e);
        if (relist) needList = true;
        delay = gone && attempt === 0 ? 0 : backoffDelay(attempt, this.opts.backoff, this.rand);
        attempt++;
        try {
          this.handlers.onError?.(e, { attempt, delayMs: delay, relist });
        } catch {
          /* ignore */
        }
        if (gone) this.log.info('resourceVersion expired; relisting', { resourceVersion: this.rv, delayMs: delay });
        else this.log.warn(relist ? 'list/watch failed; relisting after back-off' : 'watch failed; retrying after back-off', { error: e, resourceVersion: this.rv, delayMs: delay, attempt });
      }
      await this.sleep(delay);
    }
  }
}

/**
 * Starts a reflector loop for `ref` (namespace omitted: all namespaces).
 * Example (kubelet's pod source):
 *   listWatch(client, { group: '', version: 'v1', resource: 'pods' },
 *             { fieldSelector: `spec.nodeName=${node}` }, { onSync, onEvent })
 */
export function listWatch<T extends KubeObject = KubeObject>(
  client: KubeClient,
  ref: ResourceRef,
  opts: ListWatchOptions,
  handlers: ListWatchHandlers<T>,
): ListWatch {
  return new Reflector<T>(client, ref, opts, handlers);
}
