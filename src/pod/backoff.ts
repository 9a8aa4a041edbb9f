// kubelet's container restart back-off (client-go util/flowcontrol.Backoff
// as kubelet configures it: 10 s initial, doubling, 300 s max). An entry is
// "expired" — the container counts as stable and back-off restarts from
// 10 s — when the container finished more than 2×max (10 minutes) after the
// last back-off update. Keys are per container and image (see backoffKey). Time is
// passed in, so the logic is testable without clocks; state can be saved
// and restored across daemon restarts.

export interface BackoffEntry {
  /** current delay (ms) */
  backoffMs: number;
  /** when the entry was last advanced (ms since epoch) */
  lastUpdate: number;
}

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
}

/**
 * Key of a container's restart back-off. kubelet keys it by pod, container name and the container's spec
 * hash (GetStableKey), so a container whose image changed starts with a fresh back-off: the image is part
 * of the key when given. (Every key of a pod starts with `<uid>/`: resetPrefix drops them together.)
 */
export function backoffKey(podUid: string, container: string, image?: string): string {
  return image ? `${podUid}/${container}/${image}` : `${podUid}/${container}`;
}

/** Key for image pull back-off (ErrImagePull → ImagePullBackOff), per pod and image as kubelet keys it. */
export function imagePullBackoffKey(podUid: string, image: string): string {
  return `${podUid}/image/${image}`;
}

export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  private entries = new Map<string, BackoffEntry>();

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 10_000;
    this.maxMs = opts.maxMs ?? 300_000;
  }

  private expired(eventTime: number, e: BackoffEntry): boolean {
    return eventTime - e.lastUpdate > this.maxMs * 2;
  }

  /** Record a restart caused by an exit at `eventTime`; advances the delay. */
  next(key: string, eventTime: number, now: number): number {
    const e = this.entries.get(key);
    let backoffMs: number;
    if (!e || this.expired(eventTime, e)) backoffMs = this.initialMs;
    else backoffMs = Math.min(e.backoffMs * 2, this.maxMs);
    this.entries.set(key, { backoffMs, lastUpdate: now });
    return backoffMs;
  }

  /** True while a container that exited at `eventTime` must still wait. */
  isInBackOffSince(key: string, eventTime: number, now: number): boolean {
    const e = this.entries.get(key);
    if (!e || this.expired(eventTime, e)) return false;
    return now - eventTime < e.backoffMs;
  }

  /** When the container that exited at eventTime may be restarted (ms), or undefined when it may now. */
  releaseAt(key: string, eventTime: number, now: number): number | undefined {
    if (!this.isInBackOffSince(key, eventTime, now)) return undefined;
    return eventTime + this.entries.get(key)!.backoffMs;
  }

  get(key: string): BackoffEntry | undefined {
    return this.entries.get(key);
  }

  /** Put back an entry saved before a restart. */
  set(key: string, e: BackoffEntry): void {
    this.entries.set(key, { backoffMs: e.backoffMs, lastUpdate: e.lastUpdate });
  }

  /** Forget a key (container removed from the spec, pod deleted). */
  reset(key: string): void {
    this.entries.delete(key);
  }

  /** Drop every key with this prefix (a pod uid). */
  resetPrefix(prefix: string): void {
    for (const k of [...this.entries.keys()]) if (k.startsWith(prefix)) this.entries.delete(k);
  }

  /** Drop entries not updated for 2×max (kubelet's GC). */
  gc(now: number): void {
    for (const [k, e] of this.entries) if (now - e.lastUpdate > this.maxMs * 2) this.entries.delete(k);
  }

  toJSON(): Record<string, BackoffEntry> {
    return Object.fromEntries(this.entries);
  }

  static fromJSON(data: Record<string, BackoffEntry>, opts?: BackoffOptions): Backoff {
    const b = new Backoff(opts);
    for (const [k, e] of Object.entries(data ?? {})) b.entries.set(k, { ...e });
    return b;
  }
}
