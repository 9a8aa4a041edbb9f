// Test doubles for the node controllers: a hand-driven clock, an in-memory
// KubeClient that records every call and fails on demand (test/helpers/fake-kube-client.ts),
// a silent logger and a HostInfo fixture.
import type { KubeClient, KubeList, KubeObject, PatchType, ResourceRef, WatchEvent } from '../../../src/kube/types.js';
import type { Logger } from '../../../src/log.js';
import type { Clock } from '../../../src/node/clock.js';
import type { HostInfo } from '../../../src/node/host-info.js';
import { NODE_SCHEMA, type PatchSchema } from '../../../src/node/patch.js';
import { apiError, RecordingKubeClient } from '../../helpers/fake-kube-client.js';
import { applyStrategicPatch } from './smp-apply.js';

export { apiError };

export async function flush(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}

interface Timer {
  at: number;
  seq: number;
  resolve: () => void;
}

export class FakeClock implements Clock {
  private t: number;
  private timers: Timer[] = [];
  private seq = 0;
  readonly sleeps: number[] = [];

  constructor(start = Date.parse('2026-12-03T07:40:00.000Z')) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const onAbort = () => {
        this.timers = this.timers.filter((x) => x !== timer);
        resolve();
      };
      const timer: Timer = {
        at: this.t + ms,
        seq: this.seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.timers.push(timer);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Moves time forward, firing each due timer in order and letting the loops run after each. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    await flush();
    for (;;) {
      const due = this.timers.filter((x) => x.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = Math.max(this.t, due.at);
      due.resolve();
      await flush();
    }
    this.t = target;
    await flush();
  }

  get pendingTimers(): number {
    return this.timers.length;
  }
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};

export interface Call {
  method: 'get' | 'list' | 'create' | 'update' | 'patch' | 'delete';
  ref: ResourceRef;
  name?: string;
  body?: unknown;
  patchType?: PatchType;
  at: number;
}

const keyOf = (ref: ResourceRef, name: string) => `${ref.group}/${ref.resource}/${ref.namespace ?? ''}/${name}`;

/** An in-memory API server for nodes and leases. */
export class FakeKubeClient extends RecordingKubeClient<Call> implements KubeClient {
  private rv = 100;
  private uidSeq = 0;

  constructor(private readonly clock: Clock) {
    super();
  }

  put(ref: ResourceRef, obj: KubeObject): void {
    this.objects.set(keyOf(ref, obj.metadata.name!), JSON.parse(JSON.stringify(obj)));
  }

  stored<T extends KubeObject>(ref: ResourceRef, name: string): T | undefined {
    const o = this.objects.get(keyOf(ref, name));
    return o ? (JSON.parse(JSON.stringify(o)) as T) : undefined;
  }

  /** Each call is stamped with the fake clock's time. */
  protected override record(c: Omit<Call, 'at'>): void {
    super.record({ ...c, at: this.clock.now() });
  }

  async get<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string): Promise<T> {
    this.record({ method: 'get', ref, name });
    const o = this.stored<T>(ref, name);
    if (!o) throw apiError(404, 'NotFound', `${ref.resource} "${name}" not found`);
    return o;
  }

  async list<T extends KubeObject = KubeObject>(ref: ResourceRef): Promise<KubeList<T>> {
    this.record({ method: 'list', ref });
    return { metadata: { resourceVersion: String(this.rv) }, items: [] };
  }

  // eslint-disable-next-line require-yield
  async *watch<T extends KubeObject = KubeObject>(): AsyncIterable<WatchEvent<T>> {
    throw new Error('watch is not faked');
  }

  async create<T extends KubeObject = KubeObject>(ref: ResourceRef, body: unknown): Promise<T> {
    const obj = JSON.parse(JSON.stringify(body)) as KubeObject;
    this.record({ method: 'create', ref, name: obj.metadata.name, body: JSON.parse(JSON.stringify(body)) });
    if (this.objects.has(keyOf(ref, obj.metadata.name!))) throw apiError(409, 'AlreadyExists', `${ref.resource} "${obj.metadata.name}" already exists`);
    obj.metadata.uid = `uid-${++this.uidSeq}`;
    obj.metadata.resourceVersion = String(++this.rv);
    obj.metadata.creationTimestamp = new Date(this.clock.now()).toISOString().replace(/\.\d+Z$/, 'Z');
    if (ref.namespace) obj.metadata.namespace = ref.namespace;
    this.put(ref, obj);
    return this.stored<T>(ref, obj.metadata.name!)!;
  }

  async update<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string, body: unknown): Promise<T> {
    const obj = JSON.parse(JSON.stringify(body)) as KubeObject;
    this.record({ method: 'update', ref, name, body: JSON.parse(JSON.stringify(body)) });
    const cur = this.stored(ref, name);
    if (!cur) throw apiError(404, 'NotFound');
    if (obj.metadata.resourceVersion !== cur.metadata.resourceVersion) throw apiError(409, 'Conflict', 'the object has been modified');
    obj.metadata.uid = cur.metadata.uid;
    obj.metadata.resourceVersion = String(++this.rv);
    this.put(ref, obj);
    return this.stored<T>(ref, name)!;
  }

  async patch<T extends KubeObject = KubeObject>(ref: ResourceRef, name: string, type: PatchType, patch: unknown): Promise<T> {
    this.record({ method: 'patch', ref, name, body: JSON.parse(JSON.stringify(patch)), patchType: type });
    const cur = this.stored(ref, name);
    if (!cur) throw apiError(404, 'NotFound');
    if (type !== 'strategic') throw new Error(`fake supports strategic patches only, got ${type}`);
    const schema: PatchSchema = ref.resource === 'nodes' ? NODE_SCHEMA : {};
    const next = applyStrategicPatch(cur, patch, schema) as KubeObject;
    next.metadata.resourceVersion = String(++this.rv);
    this.put(ref, next);
    return this.stored<T>(ref, name)!;
  }

  async delete(ref: ResourceRef, name: string): Promise<KubeObject> {
    this.record({ method: 'delete', ref, name });
    const cur = this.stored(ref, name);
    if (!cur) throw apiError(404, 'NotFound');
    this.objects.delete(keyOf(ref, name));
    return cur;
  }
}

export function hostFixture(over: Partial<HostInfo> = {}): HostInfo {
  return {
    hostname: 'n1',
    nodeIP: '10.1.2.3',
    cpuCount: 4,
    memory: { totalBytes: 8 * 1024 ** 3, availableBytes: 6 * 1024 ** 3, swapTotalBytes: 0 },
    hugepages: { '1Gi': 0, '2Mi': 0 },
    nodefs: { capacityBytes: 100 * 1024 ** 3, availableBytes: 60 * 1024 ** 3, inodes: 6_553_600, inodesFree: 6_000_000 },
    imagefs: { capacityBytes: 100 * 1024 ** 3, availableBytes: 60 * 1024 ** 3, inodes: 6_553_600, inodesFree: 6_000_000 },
    pids: { max: 4_194_304, running: 300 },
    kernelVersion: '6.1.0-test',
    osImage: 'Debian GNU/Linux 12 (bookworm)',
    operatingSystem: 'linux',
    architecture: 'amd64',
    machineID: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
    systemUUID: 'EC2A1B2C-0000-1111-2222-333344445555',
    bootID: '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
    ...over,
  };
}
