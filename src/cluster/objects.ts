// The API objects a pod needs, from the API server (cluster mode): kubelet's
// configmap/secret managers and token manager behind one port the API-server
// pod source calls.
//
// Objects. Every ConfigMap and Secret a pod references (src/cluster/references.ts)
// is read by GET per object in the pod's namespace: the Node authorizer lets a
// node read exactly the objects referenced by pods bound to it. Objects are
// shared between pods by namespace/kind/name: one cache entry, one request in
// flight, one GET per `refreshMs` for resolve(). Only what the agent uses is
// kept: metadata.name/namespace/resourceVersion, data, binaryData, immutable,
// and a Secret's type (data stays base64, as the API sends it and
// src/pod/manifest.ts secretBytes expects).
//
// Change detection ('Watch', the default, as kubelet's
// configMapAndSecretChangeDetectionStrategy): a tracked object gets its own
// reflector (listWatch with fieldSelector metadata.name=<name>, which the Node
// authorizer allows like a GET), so a change reaches the pod in well under a
// second and an idle object costs one open watch and no requests. 'Poll' GETs
// every tracked object every `refreshMs` instead (fewer connections, up to
// refreshMs of latency). Either way a change is a different resourceVersion, or
// an object appearing or going; each tracked pod that references it gets
// onChange(objects) once per burst of changes.
//
// 403 right after binding (the authorizer's graph has not seen the pod yet):
// resolve() retries a few times (200 ms doubling, ~3 s); if still forbidden the
// object is reported absent (the agent then reports CreateContainerConfigError /
// FailedMount and retries, as kubelet), and tracking keeps trying (the
// reflector's back-off, or the next poll). 404 is absent. Only an unreachable
// or failing API server (no answer, 5xx, 429, timeout) or bad credentials (401)
// make resolve() throw: ERR_OBJECTS_UNREACHABLE / ERR_OBJECTS_FETCH.
//
// Tokens (kubelet pkg/kubelet/token/token_manager.go and the projected volume
// plugin): per projected serviceAccountToken source, POST
// serviceaccounts/<sa>/token with audiences [audience] (none when empty: the API
// server's own), expirationSeconds and boundObjectRef {v1, Pod, name, uid};
// cached per (pod uid, audience, expirationSeconds); every `tokenCheckMs` a
// tracked pod's tokens are renewed once 80 % of their TTL has passed or they are
// 24 h old (minus up to 10 s of jitter), or the clock went back before their
// issue time, then onChange. A failed renewal keeps the old token while it is
// valid. A token that could not be had at all (403/404 after the retries) is
// left out (the volume manager then signs a local one) and requested again on
// every check until it comes.
import { NodeletError } from '../errors.js';
import { getLogger, type Logger } from '../log.js';
import { isForbidden, isNotFound, isRetriable } from '../kube/errors.js';
import { listWatch, type ListWatch } from '../kube/informer.js';
import type { KubeClient, KubeObject, ResourceRef } from '../kube/types.js';
import type { ConfigMap, Pod, PodObjects, Secret } from '../pod/api-types.js';
import { sleep } from '../sys/proc.js';
import { objectKey, podReferences, tokenKey, type ObjectKind, type ObjectRef, type PodReferences, type TokenRef } from './references.js';

export type ChangeDetectionStrategy = 'Watch' | 'Poll';

export interface ObjectResolverOptions {
  client: KubeClient;
  nodeName: string;
  /** poll period for referenced objects (Poll), and how long a GET answers resolve() for other pods; default 20 s */
  refreshMs?: number;
  /** token refresh check period, default 10 s */
  tokenCheckMs?: number;
  /** 'Watch' (default): a watch per tracked object; 'Poll': GET every refreshMs */
  changeDetection?: ChangeDetectionStrategy;
  /** 403 retries within resolve(): attempts after the first (default 4) and the first delay (default 200 ms, doubling) */
  forbiddenRetry?: { attempts?: number; initialMs?: number };
  /** ms since the epoch (tests); default Date.now */
  now?: () => number;
  /** [0, 1) for the token refresh jitter (tests); default Math.random */
  random?: () => number;
  logger?: Logger;
}

/** One service-account token as kept in the cache. */
export interface CachedToken {
  audience: string;
  /** what the pod's source asked for (the cache key) */
  expirationSeconds: number;
  token: string;
  /** status.expirationTimestamp, ms */
  expiresAt: number;
  /** the TTL the server granted (spec.expirationSeconds of the answer) */
  ttlSeconds: number;
}

export const TOKEN_MAX_TTL_MS = 24 * 3600 * 1000;
export const TOKEN_MAX_JITTER_MS = 10_000;

/**
 * kubelet's requiresRefresh: true when the token is older than 24 h, or within
 * 20 % of its TTL of expiring (both less a jitter of up to 10 s, whole seconds),
 * or when now is before its issue time (the clock leapt back).
 * `random` in [0, 1) gives the jitter.
 */
export function tokenNeedsRefresh(t: Pick<CachedToken, 'expiresAt' | 'ttlSeconds'>, nowMs: number, random: () => number = Math.random): boolean {
  const iat = t.expiresAt - t.ttlSeconds * 1000;
  const jitter = Math.floor(random() * (TOKEN_MAX_JITTER_MS / 1000)) * 1000;
  if (nowMs > iat + TOKEN_MAX_TTL_MS - jitter) return true;
  if (nowMs > t.expiresAt - Math.floor((t.ttlSeconds * 20) / 100) * 1000 - jitter) return true;
  if (nowMs < iat) return true;
  return false;
}

const RESOURCE: Record<ObjectKind, string> = { ConfigMap: 'configmaps', Secret: 'secrets' };

type ApiObject = ConfigMap | Secret;

/** Only the fields the agent uses (a Secret's data stays base64). */
export function stripObject(kind: ObjectKind, o: KubeObject): ApiObject {
  const src = o as KubeObject & { data?: Record<string, string>; binaryData?: Record<string, string>; immutable?: boolean; type?: string };
  const metadata: ApiObject['metadata'] = {};
  if (o.metadata?.name !== undefined) metadata.name = o.metadata.name;
  if (o.metadata?.namespace !== undefined) metadata.namespace = o.metadata.namespace;
  if (o.metadata?.resourceVersion !== undefined) metadata.resourceVersion = o.metadata.resourceVersion;
  const out: ConfigMap & Secret = { apiVersion: 'v1', kind, metadata };
  if (src.data) out.data = { ...src.data };
  if (kind === 'ConfigMap' && src.binaryData) out.binaryData = { ...src.binaryData };
  if (src.immutable !== undefined) out.immutable = src.immutable;
  if (kind === 'Secret' && src.type !== undefined) out.type = src.type;
  return out;
}

interface Entry {
  ref: ObjectRef;
  key: string;
  state: 'unknown' | 'present' | 'absent';
  obj?: ApiObject;
  /** when a GET last answered (ms; 0: never) */
  fetchedAt: number;
  inflight?: Promise<void>;
  /** uids of the tracked pods that reference it */
  users: Set<string>;
  watch?: ListWatch;
}

interface Tracked {
  pod: Pod;
  refs: PodReferences;
  onChange: (objects: PodObjects) => void;
  /** signature of the objects last handed out */
  sig: string;
}

interface TokenRequestAnswer extends KubeObject {
  spec?: { expirationSeconds?: number };
  status?: { token?: string; expirationTimestamp?: string };
}

export class ObjectResolver {
  private readonly client: KubeClient;
  private readonly nodeName: string;
  private readonly refreshMs: number;
  private readonly tokenCheckMs: number;
  private readonly strategy: ChangeDetectionStrategy;
  private readonly retryAttempts: number;
  private readonly retryInitialMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly log: Logger;

  private readonly entries = new Map<string, Entry>();
  private readonly tracked = new Map<string, Tracked>();
  /** uid → tokenKey → token */
  private readonly tokens = new Map<string, Map<string, CachedToken>>();
  private readonly tokenInflight = new Map<string, Promise<CachedToken | undefined>>();
  /** signature of what resolve() last returned per uid: track() starts from it */
  private readonly resolvedSig = new Map<string, string>();
  private readonly dirty = new Set<string>();
  /** uid → when forget() was called: a token request still out for it is not cached (pruned after 10 min) */
  private readonly forgotten = new Map<string, number>();
  private flushScheduled = false;
  private pollTimer?: NodeJS.Timeout;
  private tokenTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(o: ObjectResolverOptions) {
    this.client = o.client;
    this.nodeName = o.nodeName;
    this.refreshMs = o.refreshMs ?? 20_000;
    this.tokenCheckMs = o.tokenCheckMs ?? 10_000;
    this.strategy = o.changeDetection ?? 'Watch';
    this.retryAttempts = o.forbiddenRetry?.attempts ?? 4;
    this.retryInitialMs = o.forbiddenRetry?.initialMs ?? 200;
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
    this.log = (o.logger ?? getLogger('cluster.objects')).child({ node: o.nodeName });
  }

  // ------------------------------------------------------------ the port

  /**
   * The objects the pod references that exist now, and a token for each
   * projected serviceAccountToken source. Missing (or still forbidden) objects
   * are absent; throws only when the API server cannot be used (ERR_OBJECTS_UNREACHABLE, ERR_OBJECTS_FETCH).
   */
  async resolve(pod: Pod): Promise<PodObjects> {
    if (pod.metadata.uid) this.forgotten.delete(pod.metadata.uid);
    const refs = podReferences(pod);
    const entries = this.refsOf(refs).map((r) => this.entry(r));
    await Promise.all([
      ...entries.map((e) => (this.isFresh(e) ? Promise.resolve() : this.fetchForResolve(e))),
      ...refs.tokens.map((t) => this.tokenForResolve(pod, refs, t)),
    ]);
    const objects = this.objectsOf(pod, refs);
    const uid = pod.metadata.uid;
    if (uid) this.resolvedSig.set(uid, signature(objects));
    this.gc();
    return objects;
  }

  /** Keep the pod's objects fresh: onChange(objects) whenever a referenced object appears, changes or goes, and whenever a token is renewed. */
  track(pod: Pod, onChange: (objects: PodObjects) => void): void {
    if (this.stopped) return;
    const uid = pod.metadata.uid;
    if (!uid) throw new NodeletError('InvalidArgument', 'ERR_OBJECTS_NO_UID', `pod ${pod.metadata.namespace}/${pod.metadata.name} has no metadata.uid; cannot track its objects`);
    this.forgotten.delete(uid);
    const refs = podReferences(pod);
    const prev = this.tracked.get(uid);
    if (prev) this.release(uid, prev.refs);
    const sig = this.resolvedSig.get(uid) ?? signature(this.objectsOf(pod, refs));
    this.resolvedSig.delete(uid);
    this.tracked.set(uid, { pod, refs, onChange, sig });
    for (const r of this.refsOf(refs)) {
      const e = this.entry(r);
      e.users.add(uid);
      if (this.strategy === 'Watch') this.ensureWatch(e);
    }
    this.startLoops();
    // something may have changed between resolve() and now
    this.markDirty(uid);
  }

  forget(uid: string): void {
    this.forgotten.set(uid, this.now());
    const t = this.tracked.get(uid);
    this.tracked.delete(uid);
    this.resolvedSig.delete(uid);
    this.dirty.delete(uid);
    this.tokens.delete(uid);
    if (t) this.release(uid, t.refs);
    this.gc();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.tokenTimer);
    for (const e of this.entries.values()) this.stopWatch(e);
    this.tracked.clear();
    this.dirty.clear();
  }

  /** For tests and status: what is cached. */
  get stats(): { entries: number; watches: number; tracked: number; tokens: number } {
    let watches = 0;
    for (const e of this.entries.values()) if (e.watch) watches++;
    let tokens = 0;
    for (const m of this.tokens.values()) tokens += m.size;
    return { entries: this.entries.size, watches, tracked: this.tracked.size, tokens };
  }

  // ------------------------------------------------------------ objects

  private refsOf(refs: PodReferences): ObjectRef[] {
    return [
      ...refs.configMaps.map((name): ObjectRef => ({ kind: 'ConfigMap', namespace: refs.namespace, name })),
      ...refs.secrets.map((name): ObjectRef => ({ kind: 'Secret', namespace: refs.namespace, name })),
    ];
  }

  private entry(ref: ObjectRef): Entry {
    const key = objectKey(ref);
    let e = this.entries.get(key);
    if (!e) {
      e = { ref, key, state: 'unknown', fetchedAt: 0, users: new Set() };
      this.entries.set(key, e);
    }
    return e;
  }

  private apiRef(ref: ObjectRef): ResourceRef {
    return { group: '', version: 'v1', resource: RESOURCE[ref.kind], namespace: ref.namespace };
  }

  /** Known and either kept current by a synced watch or fetched within refreshMs. */
  private isFresh(e: Entry): boolean {
    if (e.state === 'unknown') return false;
    if (e.watch?.hasSynced()) return true;
    return this.now() - e.fetchedAt < this.refreshMs;
  }

  /** One GET (shared by concurrent callers); sets the entry's state on 200/404, rethrows anything else. */
  private fetch(e: Entry): Promise<void> {
    if (!e.inflight) {
      e.inflight = (async () => {
        try {
          const o = await this.client.get(this.apiRef(e.ref), e.ref.name);
          e.fetchedAt = this.now();
          this.set(e, stripObject(e.ref.kind, o));
        } catch (err) {
          if (!isNotFound(err)) throw err;
          e.fetchedAt = this.now();
          this.set(e, undefined);
        }
      })().finally(() => {
        e.inflight = undefined;
      });
    }
    return e.inflight;
  }

  private async fetchForResolve(e: Entry): Promise<void> {
    const what = `${e.ref.kind.toLowerCase()} ${e.ref.namespace}/${e.ref.name}`;
    await this.withRetry(what, () => this.fetch(e), isForbidden, () => {
      this.log.warn('still forbidden after retries; reported absent for now', { object: what });
    });
  }

  /**
   * Runs fn, retrying errors `again` accepts (403 right after binding) with back-off; after the
   * last such failure calls giveUp. Other errors become NodeletErrors (apiFailure).
   */
  private async withRetry(what: string, fn: () => Promise<unknown>, again: (err: unknown) => boolean, giveUp: () => void): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await fn();
        return;
      } catch (err) {
        if (again(err)) {
          if (attempt >= this.retryAttempts || this.stopped) return giveUp();
          await sleep(this.retryInitialMs * 2 ** attempt);
          continue;
        }
        throw this.apiFailure(what, err);
      }
    }
  }

  private apiFailure(what: string, err: unknown): NodeletError {
    const unreachable = isRetriable(err) || !(err instanceof NodeletError);
    const code = unreachable ? 'ERR_OBJECTS_UNREACHABLE' : 'ERR_OBJECTS_FETCH';
    const category = err instanceof NodeletError ? err.category : 'Unavailable';
    return new NodeletError(category, code, `cannot read ${what} from the API server ${this.client.server}: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
      details: { object: what, node: this.nodeName },
    });
  }

  /** New state for an entry; the pods using it hear about a real change. */
  private set(e: Entry, obj: ApiObject | undefined): void {
    const before = e.state === 'present' ? `+${e.obj?.metadata.resourceVersion ?? ''}` : e.state;
    e.state = obj ? 'present' : 'absent';
    if (obj) e.obj = obj;
    else delete e.obj;
    const after = obj ? `+${obj.metadata.resourceVersion ?? ''}` : 'absent';
    if (before !== after) for (const uid of e.users) this.markDirty(uid);
  }

  private ensureWatch(e: Entry): void {
    if (e.watch || this.stopped) return;
    const log = this.log.child({ object: `${e.ref.kind.toLowerCase()} ${e.ref.namespace}/${e.ref.name}` });
    e.watch = listWatch<KubeObject>(
      this.client,
      this.apiRef(e.ref),
      { fieldSelector: `metadata.name=${e.ref.name}`, pageSize: 0, logger: log },
      {
        onSync: (items) => {
          const o = items.find((i) => i.metadata?.name === e.ref.name);
          e.fetchedAt = this.now();
          this.set(e, o ? stripObject(e.ref.kind, o) : undefined);
        },
        onEvent: (type, o) => {
          if (o.metadata?.name !== e.ref.name) return;
          e.fetchedAt = this.now();
          this.set(e, type === 'DELETED' ? undefined : stripObject(e.ref.kind, o));
        },
      },
    );
  }

  private stopWatch(e: Entry): void {
    const w = e.watch;
    if (!w) return;
    delete e.watch;
    void w.stop();
  }

  private release(uid: string, refs: PodReferences): void {
    for (const r of this.refsOf(refs)) {
      const e = this.entries.get(objectKey(r));
      if (!e) continue;
      e.users.delete(uid);
      if (e.users.size === 0) this.stopWatch(e);
    }
  }

  /** Drops entries no tracked pod uses once they are no longer fresh (resolve() results for other pods within refreshMs stay). */
  private gc(): void {
    const now = this.now();
    for (const [uid, at] of this.forgotten) if (now - at > 600_000) this.forgotten.delete(uid);
    // tokens of pods resolved but never tracked (nor forgotten) go once all of them have expired
    for (const [uid, m] of this.tokens) {
      if (!this.tracked.has(uid) && [...m.values()].every((c) => c.expiresAt <= now)) this.tokens.delete(uid);
    }
    for (const [k, e] of this.entries) {
      if (e.users.size === 0 && !e.inflight && now - e.fetchedAt >= this.refreshMs) {
        this.stopWatch(e);
        this.entries.delete(k);
      }
    }
  }

  private async pollRound(): Promise<void> {
    const due = [...this.entries.values()].filter((e) => e.users.size > 0);
    await mapLimit(due, 8, async (e) => {
      try {
        await this.fetch(e);
      } catch (err) {
        // 403: the pod may have just been bound (or is going); unreachable: try again next round. Keep what we have.
        this.log.warn(isForbidden(err) ? 'object forbidden; retrying next round' : 'cannot refresh object; retrying next round', {
          object: `${e.ref.kind.toLowerCase()} ${e.ref.namespace}/${e.ref.name}`,
          error: err,
        });
      }
    });
    this.gc();
  }

  // ------------------------------------------------------------ tokens

  private tokenCache(uid: string): Map<string, CachedToken> {
    let m = this.tokens.get(uid);
    if (!m) {
      m = new Map();
      this.tokens.set(uid, m);
    }
    return m;
  }

  /** POST serviceaccounts/<sa>/token, shared by concurrent callers for the same (uid, audience, expiration). */
  private requestToken(pod: Pod, refs: PodReferences, t: TokenRef): Promise<CachedToken | undefined> {
    const uid = pod.metadata.uid ?? '';
    const k = `${uid}|${tokenKey(t)}`;
    let p = this.tokenInflight.get(k);
    if (!p) {
      p = (async () => {
        const body = {
          apiVersion: 'authentication.k8s.io/v1',
          kind: 'TokenRequest',
          spec: {
            ...(t.audience ? { audiences: [t.audience] } : {}),
            expirationSeconds: t.expirationSeconds,
            boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid },
          },
        };
        const ans = await this.client.create<TokenRequestAnswer>(
          { group: '', version: 'v1', resource: 'serviceaccounts', namespace: refs.namespace, subresource: 'token' },
          body,
          { name: refs.serviceAccountName },
        );
        const token = ans.status?.token;
        const expiresAt = Date.parse(ans.status?.expirationTimestamp ?? '');
        if (!token || !Number.isFinite(expiresAt)) {
          throw new NodeletError('Internal', 'ERR_TOKEN_REQUEST_ANSWER', `TokenRequest for ${refs.namespace}/${refs.serviceAccountName} answered without status.token or status.expirationTimestamp`);
        }
        const cached: CachedToken = { audience: t.audience, expirationSeconds: t.expirationSeconds, token, expiresAt, ttlSeconds: ans.spec?.expirationSeconds ?? t.expirationSeconds };
        // a pod forgotten while the request was out gets no cache entry
        if (!this.forgotten.has(uid) && !this.stopped) this.tokenCache(uid).set(tokenKey(t), cached);
        return cached;
      })().finally(() => this.tokenInflight.delete(k));
      this.tokenInflight.set(k, p);
    }
    return p;
  }

  private async tokenForResolve(pod: Pod, refs: PodReferences, t: TokenRef): Promise<void> {
    const cur = this.tokens.get(pod.metadata.uid ?? '')?.get(tokenKey(t));
    if (cur && !tokenNeedsRefresh(cur, this.now(), this.random)) return;
    const what = `a token for serviceaccount ${refs.namespace}/${refs.serviceAccountName} (audience "${t.audience}", ${t.expirationSeconds} s)`;
    try {
      // 403: not authorized yet; 404: NodeRestriction has not seen the pod yet, or no such service account (yet)
      await this.withRetry(what, () => this.requestToken(pod, refs, t), (err) => isForbidden(err) || isNotFound(err), () =>
        this.log.warn('no service-account token yet; left out, requested again on the next check', { pod: podName(pod), token: what }),
      );
    } catch (err) {
      if (cur && cur.expiresAt > this.now()) {
        this.log.error('cannot renew service-account token; keeping the current one', { pod: podName(pod), token: what, error: err });
        return;
      }
      throw err;
    }
  }

  private async tokenRound(): Promise<void> {
    const now = this.now();
    const jobs: { uid: string; tr: Tracked; t: TokenRef }[] = [];
    for (const [uid, tr] of this.tracked) {
      for (const t of tr.refs.tokens) {
        const cur = this.tokens.get(uid)?.get(tokenKey(t));
        if (!cur || tokenNeedsRefresh(cur, now, this.random)) jobs.push({ uid, tr, t });
      }
    }
    await mapLimit(jobs, 4, async ({ uid, tr, t }) => {
      const cur = this.tokens.get(uid)?.get(tokenKey(t));
      try {
        await this.requestToken(tr.pod, tr.refs, t);
        if (this.tracked.get(uid) === tr) this.markDirty(uid);
        this.log.debug('service-account token renewed', { pod: podName(tr.pod), audience: t.audience, expirationSeconds: t.expirationSeconds });
      } catch (err) {
        const expired = cur !== undefined && cur.expiresAt <= this.now();
        this.log[cur && !expired ? 'warn' : 'error']('cannot get a service-account token; retrying on the next check', {
          pod: podName(tr.pod),
          audience: t.audience,
          expirationSeconds: t.expirationSeconds,
          serviceAccount: `${tr.refs.namespace}/${tr.refs.serviceAccountName}`,
          expired,
          error: err,
        });
      }
    });
    this.gc();
  }

  // ------------------------------------------------------------ delivery

  private objectsOf(pod: Pod, refs: PodReferences): PodObjects {
    const get = (kind: ObjectKind, name: string) => this.entries.get(objectKey({ kind, namespace: refs.namespace, name }));
    const configMaps: ConfigMap[] = [];
    const secrets: Secret[] = [];
    for (const n of refs.configMaps) {
      const e = get('ConfigMap', n);
      if (e?.state === 'present' && e.obj) configMaps.push(e.obj as ConfigMap);
    }
    for (const n of refs.secrets) {
      const e = get('Secret', n);
      if (e?.state === 'present' && e.obj) secrets.push(e.obj as Secret);
    }
    const out: PodObjects = { configMaps, secrets };
    if (refs.tokens.length > 0) {
      const cache = this.tokens.get(pod.metadata.uid ?? '');
      out.serviceAccountTokens = [];
      for (const t of refs.tokens) {
        const c = cache?.get(tokenKey(t));
        if (c) out.serviceAccountTokens.push({ audience: c.audience, expirationSeconds: c.expirationSeconds, token: c.token });
      }
    }
    return out;
  }

  private markDirty(uid: string): void {
    if (!this.tracked.has(uid) || this.stopped) return;
    this.dirty.add(uid);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const uids = [...this.dirty];
    this.dirty.clear();
    for (const uid of uids) {
      const t = this.tracked.get(uid);
      if (!t) continue;
      const objects = this.objectsOf(t.pod, t.refs);
      const sig = signature(objects);
      if (sig === t.sig) continue;
      t.sig = sig;
      try {
        t.onChange(objects);
      } catch (err) {
        this.log.error('onChange handler failed', { pod: podName(t.pod), error: err });
      }
    }
  }

  // ------------------------------------------------------------ loops

  private startLoops(): void {
    if (this.stopped) return;
    if (this.strategy === 'Poll' && !this.pollTimer) this.loop('poll', this.refreshMs, () => this.pollRound(), (t) => (this.pollTimer = t));
    if (!this.tokenTimer) this.loop('token', this.tokenCheckMs, () => this.tokenRound(), (t) => (this.tokenTimer = t));
  }

  /** Runs `round` every `ms` (never overlapping) until stop(). */
  private loop(name: string, ms: number, round: () => Promise<void>, keep: (t: NodeJS.Timeout) => void): void {
    const tick = () => {
      if (this.stopped) return;
      round()
        .catch((err) => this.log.error(`${name} round failed`, { error: err }))
        .finally(() => {
          if (this.stopped) return;
          const t = setTimeout(tick, ms);
          t.unref();
          keep(t);
        });
    };
    const t = setTimeout(tick, ms);
    t.unref();
    keep(t);
  }
}

/** What identifies a PodObjects value for change detection (resourceVersions, presence, token values). */
function signature(o: PodObjects): string {
  const parts: string[] = [];
  for (const c of o.configMaps) parts.push(`c:${c.metadata.name}@${c.metadata.resourceVersion ?? ''}`);
  for (const s of o.secrets) parts.push(`s:${s.metadata.name}@${s.metadata.resourceVersion ?? ''}`);
  for (const t of o.serviceAccountTokens ?? []) parts.push(`t:${t.audience}|${t.expirationSeconds}=${t.token}`);
  return parts.join('\n');
}

function podName(pod: Pod): string {
  return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  const worker = async () => {
    while (i < items.length) await fn(items[i++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
