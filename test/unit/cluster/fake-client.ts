// An in-memory API server for the object resolver's tests: ConfigMaps, Secrets
// and Services by namespace/name with resourceVersions; GET, LIST and WATCH
// (fieldSelector metadata.name=<n>, replay from a resourceVersion); POST
// serviceaccounts/<sa>/token. Calls are recorded; failures are injected per
// method and resource (test/helpers/fake-kube-client.ts).
import type { KubeClient, KubeList, KubeObject, ListOptions, ResourceRef, WatchEvent, WatchOptions } from '../../../src/kube/types.js';
import { apiError, RecordingKubeClient } from '../../helpers/fake-kube-client.js';

export { apiError };

export interface Call {
  method: 'get' | 'list' | 'watch' | 'create';
  ref: ResourceRef;
  name?: string;
  body?: unknown;
  fieldSelector?: string;
}

export const unreachable = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });

interface Sub {
  resource: string;
  namespace?: string;
  name?: string;
  push(ev: WatchEvent): void;
}

const key = (resource: string, ns: string | undefined, name: string) => `${resource}/${ns ?? ''}/${name}`;

export class FakeObjectsClient extends RecordingKubeClient<Call> implements KubeClient {
  private readonly history: { rv: number; resource: string; ev: WatchEvent }[] = [];
  private readonly subs = new Set<Sub>();
  private rv = 100;
  private tokenSeq = 0;
  /** time for token expirations (ms) */
  now: () => number = Date.now;
  /** spec.expirationSeconds the server grants (default: what was asked) */
  grantSeconds?: (asked: number) => number;

  /** Create or replace (admin side): a new resourceVersion and a watch event. */
  put(resource: string, namespace: string, obj: Omit<KubeObject, 'metadata'> & { metadata: { name: string } & Record<string, unknown> }): KubeObject {
    const k = key(resource, namespace, obj.metadata.name);
    const existed = this.objects.has(k);
    const o = JSON.parse(JSON.stringify(obj)) as KubeObject;
    o.metadata.namespace = namespace;
    o.metadata.resourceVersion = String(++this.rv);
    o.metadata.uid ??= `uid-${obj.metadata.name}`;
    o.metadata.managedFields = [{ manager: 'kubectl' }];
    o.metadata.creationTimestamp = '2026-01-01T00:00:00Z';
    this.objects.set(k, o);
    this.emit(resource, { type: existed ? 'MODIFIED' : 'ADDED', object: JSON.parse(JSON.stringify(o)) });
    return o;
  }

  remove(resource: string, namespace: string, name: string): void {
    const k = key(resource, namespace, name);
    const o = this.objects.get(k);
    if (!o) return;
    this.objects.delete(k);
    const gone = JSON.parse(JSON.stringify(o)) as KubeObject;
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit(resource, { type: 'DELETED', object: gone });
  }

  private emit(resource: string, ev: WatchEvent): void {
    this.history.push({ rv: this.rv, resource, ev });
    for (const s of this.subs) if (matches(s, resource, ev.object)) s.push(ev);
  }

  async get<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string): Promise<T> {
    this.record({ method: 'get', ref, name });
    const o = this.objects.get(key(ref.resource, ref.namespace, name));
    if (!o) throw apiError(404, 'NotFound', `${ref.resource} "${name}" not found`);
    return JSON.parse(JSON.stringify(o)) as T;
  }

  async list<T extends KubeObject = KubeObject>(ref: ResourceRef, opts: ListOptions = {}): Promise<KubeList<T>> {
    this.record({ method: 'list', ref, fieldSelector: opts.fieldSelector });
    const name = nameOf(opts.fieldSelector);
    const prefix = ref.namespace === undefined ? `${ref.resource}/` : `${ref.resource}/${ref.namespace}/`; // no namespace: all of them
    const items = [...this.objects].filter(([k, o]) => k.startsWith(prefix) && (name === undefined || o.metadata.name === name)).map(([, o]) => o);
    return { metadata: { resourceVersion: String(this.rv) }, items: JSON.parse(JSON.stringify(items)) as T[] };
  }

  async *watch<T extends KubeObject = KubeObject>(ref: ResourceRef, opts: WatchOptions = {}): AsyncIterable<WatchEvent<T>> {
    this.record({ method: 'watch', ref, fieldSelector: opts.fieldSelector });
    const q: WatchEvent[] = [];
    let wake: (() => void) | undefined;
    const sub: Sub = { resource: ref.resource, namespace: ref.namespace, name: nameOf(opts.fieldSelector), push: (ev) => (q.push(ev), wake?.()) };
    const from = Number(opts.resourceVersion ?? this.rv);
    for (const h of this.history) if (h.rv > from && matches(sub, h.resource, h.ev.object)) q.push(h.ev);
    this.subs.add(sub);
    const onAbort = () => wake?.();
    opts.signal?.addEventListener('abort', onAbort);
    try {
      while (!opts.signal?.aborted) {
        const ev = q.shift();
        if (ev) {
          yield JSON.parse(JSON.stringify(ev)) as WatchEvent<T>;
          continue;
        }
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.subs.delete(sub);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }

  get openWatches(): number {
    return this.subs.size;
  }

  async create<T extends KubeObject = KubeObject>(ref: ResourceRef, body: unknown, opts: { name?: string } = {}): Promise<T> {
    this.record({ method: 'create', ref, name: opts.name, body: JSON.parse(JSON.stringify(body)) });
    if (ref.resource !== 'serviceaccounts' || ref.subresource !== 'token') throw new Error(`fake: create ${ref.resource} not supported`);
    const b = body as { spec: { expirationSeconds: number; audiences?: string[] } };
    const granted = this.grantSeconds ? this.grantSeconds(b.spec.expirationSeconds) : b.spec.expirationSeconds;
    const out = {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      metadata: { name: opts.name, namespace: ref.namespace },
      spec: { ...b.spec, audiences: b.spec.audiences ?? ['https://kubernetes.default.svc'], expirationSeconds: granted },
      status: { token: `token-${++this.tokenSeq}`, expirationTimestamp: new Date(Math.floor(this.now() / 1000) * 1000 + granted * 1000).toISOString().replace(/\.\d+Z$/, 'Z') },
    };
    return out as unknown as T;
  }

  async update<T extends KubeObject = KubeObject>(): Promise<T> {
    throw new Error('fake: update not supported');
  }
  async patch<T extends KubeObject = KubeObject>(): Promise<T> {
    throw new Error('fake: patch not supported');
  }
  async delete(): Promise<KubeObject> {
    throw new Error('fake: delete not supported');
  }
}

function nameOf(fieldSelector: string | undefined): string | undefined {
  const m = /^metadata\.name=(.+)$/.exec(fieldSelector ?? '');
  return m ? m[1] : undefined;
}

function matches(s: Sub, resource: string, o: KubeObject): boolean {
  return s.resource === resource && (s.namespace === undefined || o.metadata.namespace === s.namespace) && (s.name === undefined || o.metadata.name === s.name);
}

export async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
