import { afterEach, describe, expect, it } from 'vitest';
import { ObjectResolver, stripObject, tokenNeedsRefresh, type ObjectResolverOptions } from '../../../src/cluster/objects.js';
import { isNodeletError } from '../../../src/errors.js';
import type { Logger } from '../../../src/log.js';
import type { Pod, PodObjects } from '../../../src/pod/api-types.js';
import { apiError, FakeObjectsClient, unreachable, waitFor } from './fake-client.js';

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };
const NS = 'team';

function pod(name: string, spec: Partial<Pod['spec']> = {}): Pod {
  return { metadata: { name, namespace: NS, uid: `uid-${name}` }, spec: { containers: [{ name: 'c', image: 'x' }], ...spec } };
}

const webPod = (name = 'web') =>
  pod(name, {
    containers: [{ name: 'c', image: 'x', envFrom: [{ configMapRef: { name: 'app-config' } }], env: [{ name: 'P', valueFrom: { secretKeyRef: { name: 'app-secret', key: 'password' } } }] }],
    volumes: [{ name: 'later', configMap: { name: 'later', optional: true } }],
  });

let resolvers: ObjectResolver[] = [];
function resolver(client: FakeObjectsClient, o: Partial<ObjectResolverOptions> = {}): ObjectResolver {
  const r = new ObjectResolver({ client, nodeName: 'n1', logger: silent, forbiddenRetry: { initialMs: 5 }, ...o });
  resolvers.push(r);
  return r;
}
afterEach(() => {
  for (const r of resolvers) r.stop();
  resolvers = [];
});

function seed(c: FakeObjectsClient): void {
  c.put('configmaps', NS, { metadata: { name: 'app-config', labels: { a: 'b' } }, data: { MODE: 'prod' }, binaryData: { blob: 'AAE=' } });
  c.put('secrets', NS, { metadata: { name: 'app-secret' }, type: 'Opaque', data: { password: Buffer.from('hunter2').toString('base64') } });
  c.put('configmaps', 'other', { metadata: { name: 'app-config' }, data: { MODE: 'wrong namespace' } });
}

const names = (o: PodObjects) => ({ configMaps: o.configMaps.map((c) => `${c.metadata.name}@${c.metadata.resourceVersion}`), secrets: o.secrets.map((s) => `${s.metadata.name}@${s.metadata.resourceVersion}`) });

describe('ObjectResolver.resolve', () => {
  it('returns the referenced objects of the pod’s namespace, stripped; a missing one is absent', async () => {
    const c = new FakeObjectsClient();
    seed(c);
    const objs = await resolver(c).resolve(webPod());
    expect(objs.configMaps).toEqual([
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-config', namespace: NS, resourceVersion: c.objects.get(`configmaps/${NS}/app-config`)!.metadata.resourceVersion }, data: { MODE: 'prod' }, binaryData: { blob: 'AAE=' } },
    ]);
    expect(objs.secrets).toHaveLength(1);
    expect(objs.secrets[0]).toMatchObject({ kind: 'Secret', type: 'Opaque', data: { password: 'aHVudGVyMg==' } });
    expect(objs.secrets[0]!.metadata).not.toHaveProperty('uid');
    expect(objs.secrets[0]!.metadata).not.toHaveProperty('managedFields');
    expect(objs.serviceAccountTokens).toBeUndefined();
    // GET per object, in the pod's namespace
    expect(c.callsOf('get').map((x) => `${x.ref.resource}/${x.ref.namespace}/${x.name}`).sort()).toEqual([`configmaps/${NS}/app-config`, `configmaps/${NS}/later`, `secrets/${NS}/app-secret`]);
  });

  it('dedupes across pods: one GET per object per refresh period, shared by concurrent callers', async () => {
    const c = new FakeObjectsClient();
    seed(c);
    let now = 1_000_000;
    const r = resolver(c, { now: () => now, refreshMs: 20_000 });
    await Promise.all([r.resolve(webPod('a')), r.resolve(webPod('b')), r.resolve(webPod('c'))]);
    expect(c.callsOf('get', 'configmaps').filter((x) => x.name === 'app-config')).toHaveLength(1);
    now += 19_000;
    await r.resolve(webPod('d'));
    expect(c.callsOf('get', 'configmaps').filter((x) => x.name === 'app-config')).toHaveLength(1);
    now += 2_000;
    await r.resolve(webPod('e'));
    expect(c.callsOf('get', 'configmaps').filter((x) => x.name === 'app-config')).toHaveLength(2);
  });

  it('retries a 403 (the Node authorizer catching up after binding), then gets the object', async () => {
    const c = new FakeObjectsClient();
    seed(c);
    c.failNext('get', apiError(403, 'Forbidden', 'no relationship found between node and this object'), 'secrets', 2);
    const objs = await resolver(c).resolve(webPod());
    expect(objs.secrets.map((s) => s.metadata.name)).toEqual(['app-secret']);
    expect(c.callsOf('get', 'secrets')).toHaveLength(3);
  });

  it('a 403 that lasts is reported absent, not thrown', async () => {
    const c = new FakeObjectsClient();
    seed(c);
    c.failNext('get', apiError(403, 'Forbidden'), 'secrets', 10);
    const objs = await resolver(c, { forbiddenRetry: { attempts: 2, initialMs: 1 } }).resolve(webPod());
    expect(objs.secrets).toEqual([]);
    expect(objs.configMaps.map((x) => x.metadata.name)).toEqual(['app-config']);
    expect(c.callsOf('get', 'secrets')).toHaveLength(3);
  });

  it('throws ERR_OBJECTS_UNREACHABLE when the API server does not answer, ERR_OBJECTS_FETCH for 401', async () => {
    const c = new FakeObjectsClient();
    seed(c);
    c.failNext('get', unreachable(), 'configmaps');
    const e1 = await resolver(c).resolve(webPod()).catch((e: unknown) => e);
    expect(isNodeletError(e1, 'ERR_OBJECTS_UNREACHABLE')).toBe(true);
    expect((e1 as Error).message).toMatch(/configmap team\/(app-config|later)/);
    c.failNext('get', apiError(503, 'ServiceUnavailable'), 'configmaps');
    expect(isNodeletError(await resolver(c).resolve(webPod()).catch((e: unknown) => e), 'ERR_OBJECTS_UNREACHABLE')).toBe(true);
    c.failNext('get', apiError(401, 'Unauthorized'), 'secrets');
    expect(isNodeletError(await resolver(c).resolve(webPod()).catch((e: unknown) => e), 'ERR_OBJECTS_FETCH')).toBe(true);
  });
});

describe('ObjectResolver.track (Watch, the default)', () => {
  it('one watch per object (fieldSelector metadata.name); appear, change and go reach every pod using it', async () => {
    const c = new FakeObjectsClient();
    seed(c);
    const r = resolver(c);
    const a = webPod('a');
    const b = webPod('b');
    const seenA: PodObjects[] = [];
    const seenB: PodObjects[] = [];
    await r.resolve(a);
    await r.resolve(b);
    r.track(a, (o) => seenA.push(o));
    r.track(b, (o) => seenB.push(o));
    await waitFor(() => c.openWatches === 3, 2000, 'three watches');
    expect(c.callsOf('watch').map((x) => `${x.ref.resource}/${x.ref.namespace}:${x.fieldSelector}`).sort()).toEqual([
      `configmaps/${NS}:metadata.name=app-config`,
      `configmaps/${NS}:metadata.name=later`,
      `secrets/${NS}:metadata.name=app-secret`,
    ]);
    await new Promise((res) => setTimeout(res, 30));
    expect(seenA).toEqual([]); // nothing changed since resolve()

    // the missing optional configmap appears
    c.put('configmaps', NS, { metadata: { name: 'later' }, data: { x: '1' } });
    await waitFor(() => seenA.length === 1 && seenB.length === 1, 2000, 'onChange for the new object');
    expect(seenA[0]!.configMaps.map((x) => x.metadata.name)).toEqual(['app-config', 'later']);

    // a change: new resourceVersion
    c.put('configmaps', NS, { metadata: { name: 'app-config' }, data: { MODE: 'staging' } });
    await waitFor(() => seenA.length === 2, 2000, 'onChange for the change');
    expect(seenA[1]!.configMaps[0]!.data).toEqual({ MODE: 'staging' });

    // an object in another namespace with the same name is not ours
    c.put('configmaps', 'other', { metadata: { name: 'app-config' }, data: { MODE: 'x' } });
    // goes
    c.remove('secrets', NS, 'app-secret');
    await waitFor(() => seenA.length === 3, 2000, 'onChange for the deletion');
    expect(seenA[2]!.secrets).toEqual([]);
    expect(seenA[2]!.configMaps[0]!.data).toEqual({ MODE: 'staging' });
    expect(seenB).toHaveLength(3);
    // GETs were only for resolve(): 3 objects, shared by a and b
    expect(c.callsOf('get')).toHaveLength(3);

    r.forget('uid-a');
    expect(c.openWatches).toBe(3); // b still uses them
    r.forget('uid-b');
    await waitFor(() => c.openWatches === 0, 2000, 'watches stopped');
    expect(r.stats.watches).toBe(0);
  });

  it('a watch that is forbidden at first (403 on the list) is retried and then delivers the object', async () => {
    const c = new FakeObjectsClient();
    const r = resolver(c);
    const p = pod('p', { volumes: [{ name: 'v', configMap: { name: 'cfg' } }] });
    c.failNext('get', apiError(403, 'Forbidden'), 'configmaps', 10);
    c.failNext('list', apiError(403, 'Forbidden'), 'configmaps');
    c.put('configmaps', NS, { metadata: { name: 'cfg' }, data: { k: 'v' } });
    const first = await r.resolve(p); // forbidden throughout: absent
    expect(first.configMaps).toEqual([]);
    const seen: PodObjects[] = [];
    r.track(p, (o) => seen.push(o));
    await waitFor(() => seen.length === 1, 5000, 'object after the retried list');
    expect(seen[0]!.configMaps.map((x) => x.data)).toEqual([{ k: 'v' }]);
    expect(c.callsOf('list').length).toBeGreaterThanOrEqual(2);
  });
});

describe('ObjectResolver.track (Poll)', () => {
  it('GETs every tracked object each refreshMs; changes by resourceVersion; a 403 keeps what it had', async () => {
    const c = new FakeObjectsClient();
    seed(c);
    const r = resolver(c, { changeDetection: 'Poll', refreshMs: 40 });
    const p = webPod();
    await r.resolve(p);
    const seen: PodObjects[] = [];
    r.track(p, (o) => seen.push(o));
    expect(c.callsOf('watch')).toEqual([]);
    const getsAfterResolve = c.callsOf('get').length;
    await waitFor(() => c.callsOf('get').length >= getsAfterResolve + 6, 2000, 'two poll rounds');
    expect(seen).toEqual([]); // unchanged objects: no onChange

    c.put('configmaps', NS, { metadata: { name: 'later' }, data: { x: '1' } });
    await waitFor(() => seen.length === 1, 2000, 'appeared');
    expect(names(seen[0]!).configMaps).toHaveLength(2);

    c.failNext('get', apiError(403, 'Forbidden'), 'secrets', 3);
    c.put('configmaps', NS, { metadata: { name: 'app-config' }, data: { MODE: 'new' } });
    await waitFor(() => seen.length === 2, 2000, 'changed');
    expect(seen[1]!.configMaps[0]!.data).toEqual({ MODE: 'new' });
    expect(seen[1]!.secrets.map((s) => s.metadata.name)).toEqual(['app-secret']); // still there despite the 403s

    c.remove('configmaps', NS, 'later');
    await waitFor(() => seen.length === 3, 2000, 'gone');
    expect(seen[2]!.configMaps.map((x) => x.metadata.name)).toEqual(['app-config']);

    r.forget(p.metadata.uid!);
    const n = c.callsOf('get').length;
    await new Promise((res) => setTimeout(res, 120));
    expect(c.callsOf('get').length).toBe(n);
  });
});

describe('service-account tokens', () => {
  const tokenPod = () =>
    pod('tok', {
      serviceAccountName: 'builder',
      volumes: [
        { name: 'kube-api-access', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } },
        { name: 'vault', projected: { sources: [{ serviceAccountToken: { path: 'vault-token', audience: 'vault', expirationSeconds: 600 } }] } },
        { name: 'again', projected: { sources: [{ serviceAccountToken: { path: 't2', audience: 'vault', expirationSeconds: 600 } }] } },
      ],
    });

  it('POSTs one TokenRequest per (audience, expirationSeconds), bound to the pod, and caches it', async () => {
    const c = new FakeObjectsClient();
    const r = resolver(c);
    const objs = await r.resolve(tokenPod());
    const creates = c.callsOf('create', 'serviceaccounts');
    expect(creates).toHaveLength(2);
    const byExp = Object.fromEntries(creates.map((x) => [(x.body as { spec: { expirationSeconds: number } }).spec.expirationSeconds, x]));
    expect(byExp[3607]).toEqual({
      method: 'create',
      ref: { group: '', version: 'v1', resource: 'serviceaccounts', namespace: NS, subresource: 'token' },
      name: 'builder',
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3607, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'tok', uid: 'uid-tok' } } },
    });
    expect((byExp[600]!.body as { spec: { audiences: string[] } }).spec.audiences).toEqual(['vault']);
    expect(objs.serviceAccountTokens).toHaveLength(2);
    expect(objs.serviceAccountTokens!.map((t) => [t.audience, t.expirationSeconds])).toEqual([
      ['', 3607],
      ['vault', 600],
    ]);
    expect(objs.serviceAccountTokens!.every((t) => /^token-\d+$/.test(t.token))).toBe(true);
    // cached
    const again = await r.resolve(tokenPod());
    expect(again.serviceAccountTokens).toEqual(objs.serviceAccountTokens);
    expect(c.callsOf('create')).toHaveLength(2);
  });

  it('renews a tracked pod’s token once 80 % of its TTL has passed, then onChange', async () => {
    const c = new FakeObjectsClient();
    let now = Date.parse('2026-06-01T00:00:00Z');
    c.now = () => now;
    const r = resolver(c, { now: () => now, random: () => 0, tokenCheckMs: 10 });
    const p = pod('p', { volumes: [{ name: 'v', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 1000 } }] } }] });
    const first = await r.resolve(p);
    const seen: PodObjects[] = [];
    r.track(p, (o) => seen.push(o));
    now += 799_000; // 79.9 %
    await new Promise((res) => setTimeout(res, 60));
    expect(seen).toEqual([]);
    expect(c.callsOf('create')).toHaveLength(1);
    now += 2_000; // 80.1 %
    await waitFor(() => seen.length === 1, 2000, 'renewed token');
    expect(c.callsOf('create')).toHaveLength(2);
    expect(seen[0]!.serviceAccountTokens![0]!.token).not.toBe(first.serviceAccountTokens![0]!.token);
    expect(seen[0]!.serviceAccountTokens![0]).toMatchObject({ audience: '', expirationSeconds: 1000 });
    r.forget('uid-p');
    now += 1_000_000;
    await new Promise((res) => setTimeout(res, 60));
    expect(c.callsOf('create')).toHaveLength(2);
  });

  it('a token the server extends (3607 s asked, a year granted) is renewed after 24 h', async () => {
    const c = new FakeObjectsClient();
    let now = Date.parse('2026-06-01T00:00:00Z');
    c.now = () => now;
    c.grantSeconds = (asked) => (asked === 3607 ? 365 * 86400 : asked);
    const r = resolver(c, { now: () => now, random: () => 0, tokenCheckMs: 10 });
    const p = pod('p', { volumes: [{ name: 'v', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3607 } }] } }] });
    await r.resolve(p);
    const seen: PodObjects[] = [];
    r.track(p, (o) => seen.push(o));
    now += 23 * 3600_000;
    await new Promise((res) => setTimeout(res, 50));
    expect(seen).toEqual([]);
    now += 3600_000 + 1000;
    await waitFor(() => seen.length === 1, 2000, 'renewed after 24 h');
    // still keyed by what the pod asked for
    expect(seen[0]!.serviceAccountTokens![0]!.expirationSeconds).toBe(3607);
  });

  it('a TokenRequest refused right after binding (403, 404) is retried; one never granted is left out and fetched by the check loop', async () => {
    const c = new FakeObjectsClient();
    c.failNext('create', apiError(404, 'NotFound', 'pods "tok" not found'), 'serviceaccounts');
    c.failNext('create', apiError(403, 'Forbidden'), 'serviceaccounts');
    const r = resolver(c, { tokenCheckMs: 20 });
    const p = pod('p', { volumes: [{ name: 'v', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }] });
    const objs = await r.resolve(p);
    expect(objs.serviceAccountTokens).toEqual([{ audience: '', expirationSeconds: 3600, token: 'token-1' }]);
    expect(c.callsOf('create')).toHaveLength(3);

    const q = pod('q', { volumes: [{ name: 'v', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }] });
    c.failNext('create', apiError(403, 'Forbidden'), 'serviceaccounts', 7);
    const none = await r.resolve(q);
    expect(none.serviceAccountTokens).toEqual([]);
    const seen: PodObjects[] = [];
    r.track(q, (o) => seen.push(o));
    await waitFor(() => seen.length === 1, 3000, 'token after the refusals');
    expect(seen[0]!.serviceAccountTokens).toHaveLength(1);
  });

  it('an unreachable API server throws from resolve() when there is no valid token to keep', async () => {
    const c = new FakeObjectsClient();
    c.failNext('create', unreachable(), 'serviceaccounts');
    const p = pod('p', { volumes: [{ name: 'v', projected: { sources: [{ serviceAccountToken: { path: 'token' } }] } }] });
    const e = await resolver(c).resolve(p).catch((x: unknown) => x);
    expect(isNodeletError(e, 'ERR_OBJECTS_UNREACHABLE')).toBe(true);
  });
});

describe('tokenNeedsRefresh (kubelet requiresRefresh)', () => {
  const iat = Date.parse('2026-06-01T00:00:00Z');
  const t = (ttlSeconds: number) => ({ expiresAt: iat + ttlSeconds * 1000, ttlSeconds });
  it('80 % of the TTL, less the jitter', () => {
    expect(tokenNeedsRefresh(t(3600), iat + 2879_000, () => 0)).toBe(false);
    expect(tokenNeedsRefresh(t(3600), iat + 2880_000, () => 0)).toBe(false); // "after", strictly
    expect(tokenNeedsRefresh(t(3600), iat + 2881_000, () => 0)).toBe(true);
    // jitter: up to 10 s earlier, in whole seconds
    expect(tokenNeedsRefresh(t(3600), iat + 2872_000, () => 0.99)).toBe(true);
    expect(tokenNeedsRefresh(t(3600), iat + 2870_000, () => 0.99)).toBe(false);
    // 20 % in whole seconds: 3607 → 721 s before expiry
    expect(tokenNeedsRefresh(t(3607), iat + (3607 - 721) * 1000 + 1, () => 0)).toBe(true);
    expect(tokenNeedsRefresh(t(3607), iat + (3607 - 721) * 1000, () => 0)).toBe(false);
  });
  it('24 h at most, whatever the TTL', () => {
    const year = 365 * 86400;
    expect(tokenNeedsRefresh(t(year), iat + 86400_000, () => 0)).toBe(false);
    expect(tokenNeedsRefresh(t(year), iat + 86400_000 + 1, () => 0)).toBe(true);
    expect(tokenNeedsRefresh(t(year), iat + 86400_000 - 5000, () => 0.6)).toBe(true);
  });
  it('a clock that went back before the issue time', () => {
    expect(tokenNeedsRefresh(t(3600), iat - 1, () => 0)).toBe(true);
    expect(tokenNeedsRefresh(t(3600), iat, () => 0)).toBe(false);
  });
});

describe('stripObject', () => {
  it('keeps data, binaryData, name/namespace/resourceVersion, immutable and a Secret’s type', () => {
    const raw = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'n', resourceVersion: '7', uid: 'u', managedFields: [{}], annotations: { a: 'b' } }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'Y3J0' }, immutable: true };
    expect(stripObject('Secret', raw)).toEqual({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'n', resourceVersion: '7' }, type: 'kubernetes.io/tls', data: { 'tls.crt': 'Y3J0' }, immutable: true });
    expect(stripObject('ConfigMap', { metadata: { name: 'c' }, data: { a: '1' }, binaryData: { b: 'AA==' }, type: 'x' } as never)).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: '1' }, binaryData: { b: 'AA==' } });
  });
});
