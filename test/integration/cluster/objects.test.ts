// The object resolver (src/cluster/objects.ts) as node "node-x" against the
// real v1.36 control plane of scripts/control-plane: the Node authorizer's
// view of a pod's ConfigMaps and Secrets, change detection, TokenRequest tokens
// checked by a TokenReview, and the kube-api-access projected volume the
// ServiceAccount admission plugin adds, materialised by a real VolumeManager.
// Root (tmpfs mounts); run inside `unshare --net` with lo up.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ObjectResolver } from '../../../src/cluster/objects.js';
import { kubernetesServiceEnv, ServiceEnvCache } from '../../../src/cluster/service-env.js';
import { createKubeClient, type HttpKubeClient } from '../../../src/kube/client.js';
import { isForbidden, KubeApiError } from '../../../src/kube/errors.js';
import type { KubeObject, ResourceRef } from '../../../src/kube/types.js';
import { configureLogging } from '../../../src/log.js';
import type { Pod, PodObjects } from '../../../src/pod/api-types.js';
import { VolumeManager } from '../../../src/volumes/manager.js';
import { startControlPlane, type ControlPlane } from '../../helpers/control-plane.js';

const NODE = 'node-x';
const ns = 'default';
const cms: ResourceRef = { group: '', version: 'v1', resource: 'configmaps', namespace: ns };
const secrets: ResourceRef = { group: '', version: 'v1', resource: 'secrets', namespace: ns };
const pods: ResourceRef = { group: '', version: 'v1', resource: 'pods', namespace: ns };
const nodes: ResourceRef = { group: '', version: 'v1', resource: 'nodes' };
const tokenReviews: ResourceRef = { group: 'authentication.k8s.io', version: 'v1', resource: 'tokenreviews' };

let cp: ControlPlane;
let admin: HttpKubeClient;
let node: HttpKubeClient;
let pod: Pod;
const resolvers: ObjectResolver[] = [];
const tmp = mkdtempSync(path.join(os.tmpdir(), 'nodelet-objects-'));
const volumes = new VolumeManager({ root: path.join(tmp, 'root') });

function newResolver(o: Partial<ConstructorParameters<typeof ObjectResolver>[0]> = {}): ObjectResolver {
  const r = new ObjectResolver({ client: node, nodeName: NODE, refreshMs: 2000, tokenCheckMs: 1000, forbiddenRetry: { attempts: 6, initialMs: 200 }, ...o });
  resolvers.push(r);
  return r;
}

async function tokenReview(token: string): Promise<{ authenticated?: boolean; error?: string; user?: { username?: string; extra?: Record<string, string[]> } }> {
  const tr = await admin.create<KubeObject & { status?: Record<string, unknown> }>(tokenReviews, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
  return tr.status ?? {};
}

function waitFor<T>(get: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      const v = get();
      if (v !== undefined) return resolve(v);
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  configureLogging({ level: 'error' });
  cp = await startControlPlane();
  admin = createKubeClient(cp.kubeconfig);
  node = createKubeClient(await cp.nodeKubeconfig(NODE));
  await admin.create(nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: NODE } });
  await admin.create(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'app-config' }, data: { MODE: 'prod' }, binaryData: { 'blob.bin': Buffer.from([0, 1, 2]).toString('base64') } });
  await admin.create(secrets, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'app-secret' }, type: 'Opaque', stringData: { password: 'hunter2' } });
  await admin.create(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'unrelated' }, data: { x: 'y' } });
  await admin.create(pods, {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web' },
    spec: {
      nodeName: NODE,
      containers: [
        {
          name: 'c',
          image: 'busybox',
          envFrom: [{ configMapRef: { name: 'app-config' } }],
          env: [{ name: 'PASS', valueFrom: { secretKeyRef: { name: 'app-secret', key: 'password' } } }],
          volumeMounts: [{ name: 'cfg', mountPath: '/etc/app' }],
        },
      ],
      volumes: [{ name: 'cfg', configMap: { name: 'app-config' } }],
    },
  });
  // as the node sees it (the ServiceAccount admission plugin has added kube-api-access-*)
  pod = (await node.get(pods, 'web')) as unknown as Pod;
}, 1_800_000);

afterAll(async () => {
  for (const r of resolvers) r.stop();
  if (pod?.metadata.uid) await volumes.tearDown(pod.metadata.uid).catch(() => undefined);
  rmSync(tmp, { recursive: true, force: true });
  await admin?.close();
  await node?.close();
  await cp?.down();
});

describe('ObjectResolver against kube-apiserver v1.36 (Node authorizer)', () => {
  it('resolves the pod’s ConfigMaps (kube-root-ca.crt included), Secret and token as node-x', async () => {
    const objs = await newResolver().resolve(pod);
    const byName = Object.fromEntries(objs.configMaps.map((c) => [c.metadata.name, c]));
    expect(Object.keys(byName).sort()).toEqual(['app-config', 'kube-root-ca.crt']);
    expect(byName['app-config']!.data).toEqual({ MODE: 'prod' });
    expect(byName['app-config']!.binaryData).toEqual({ 'blob.bin': 'AAEC' });
    expect(byName['app-config']!.metadata.resourceVersion).toMatch(/^\d+$/);
    expect(byName['app-config']!.metadata).not.toHaveProperty('uid');
    expect(byName['kube-root-ca.crt']!.data!['ca.crt']).toContain('BEGIN CERTIFICATE');
    expect(objs.secrets).toHaveLength(1);
    expect(objs.secrets[0]).toMatchObject({ metadata: { name: 'app-secret', namespace: ns }, type: 'Opaque', data: { password: Buffer.from('hunter2').toString('base64') } });
    expect(objs.serviceAccountTokens).toHaveLength(1);
    expect(objs.serviceAccountTokens![0]).toMatchObject({ audience: '', expirationSeconds: 3607 });
  });

  it('a ConfigMap no pod of the node references is Forbidden, and a pod spec naming it resolves without it', async () => {
    const err = await node.get(cms, 'unrelated').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KubeApiError);
    expect(isForbidden(err)).toBe(true);
    const fake: Pod = { ...pod, spec: { ...pod.spec, volumes: [...(pod.spec.volumes ?? []), { name: 'u', configMap: { name: 'unrelated' } }] } };
    const objs = await newResolver({ forbiddenRetry: { attempts: 1, initialMs: 50 } }).resolve(fake);
    expect(objs.configMaps.map((c) => c.metadata.name).sort()).toEqual(['app-config', 'kube-root-ca.crt']);
  });

  it('Watch: an update of the ConfigMap as admin reaches onChange (well within the refresh period)', async () => {
    const r = newResolver();
    await r.resolve(pod);
    const seen: PodObjects[] = [];
    r.track(pod, (o) => seen.push(o));
    await new Promise((res) => setTimeout(res, 500)); // the watches are open
    const t0 = Date.now();
    await admin.patch(cms, 'app-config', 'merge', { data: { MODE: 'watch' } });
    const got = await waitFor(() => seen.find((o) => o.configMaps.some((c) => c.metadata.name === 'app-config' && c.data?.MODE === 'watch')), 2000, 'onChange with MODE=watch');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(got.secrets.map((s) => s.metadata.name)).toEqual(['app-secret']);
    expect(got.serviceAccountTokens).toHaveLength(1);
    r.forget(pod.metadata.uid!);
  });

  it('Poll: an update of the ConfigMap as admin reaches onChange within the refresh period', async () => {
    const r = newResolver({ changeDetection: 'Poll', refreshMs: 1500 });
    await r.resolve(pod);
    const seen: PodObjects[] = [];
    r.track(pod, (o) => seen.push(o));
    await admin.patch(cms, 'app-config', 'merge', { data: { MODE: 'poll' } });
    await waitFor(() => seen.find((o) => o.configMaps.some((c) => c.data?.MODE === 'poll')), 1500 + 1500, 'onChange with MODE=poll');
    r.forget(pod.metadata.uid!);
  });

  it('the resolver’s token passes a TokenReview as the pod’s service account, bound to the pod', async () => {
    const objs = await newResolver().resolve(pod);
    const st = await tokenReview(objs.serviceAccountTokens![0]!.token);
    expect(st.error ?? '').toBe('');
    expect(st.authenticated).toBe(true);
    expect(st.user?.username).toBe(`system:serviceaccount:${ns}:default`);
    expect(st.user?.extra?.['authentication.kubernetes.io/pod-name']).toEqual(['web']);
    expect(st.user?.extra?.['authentication.kubernetes.io/pod-uid']).toEqual([pod.metadata.uid]);
    expect(st.user?.extra?.['authentication.kubernetes.io/node-name']).toEqual([NODE]);
  });

  it('the kube-api-access-* volume the admission plugin adds materialises with the API token, ca.crt and namespace; update() re-projects a new token', async () => {
    const vol = pod.spec.volumes!.find((v) => v.name.startsWith('kube-api-access-'));
    expect(vol?.projected?.sources?.map((s) => Object.keys(s)[0])).toEqual(['serviceAccountToken', 'configMap', 'downwardAPI']);
    expect(vol!.projected!.sources![0]!.serviceAccountToken).toEqual({ expirationSeconds: 3607, path: 'token' });

    const objs = await newResolver().resolve(pod);
    const paths = await volumes.setUp(pod, { objects: objs, nodeName: NODE });
    const dir = paths[vol!.name]!;
    expect(readdirSync(dir).filter((f) => !f.startsWith('..')).sort()).toEqual(['ca.crt', 'namespace', 'token']);
    const token = readFileSync(path.join(dir, 'token'), 'utf8');
    expect(token).toBe(objs.serviceAccountTokens![0]!.token);
    expect((await tokenReview(token)).authenticated).toBe(true);
    expect(readFileSync(path.join(dir, 'ca.crt'), 'utf8')).toBe(objs.configMaps.find((c) => c.metadata.name === 'kube-root-ca.crt')!.data!['ca.crt']);
    expect(readFileSync(path.join(dir, 'ca.crt'), 'utf8')).toBe(readFileSync(cp.caFile, 'utf8'));
    expect(readFileSync(path.join(dir, 'namespace'), 'utf8')).toBe(ns);
    expect(readFileSync(path.join(paths.cfg!, 'MODE'), 'utf8')).toMatch(/^(prod|watch|poll)$/);

    // a fresh resolver asks for a new token: update() writes it
    const next = await newResolver().resolve(pod);
    expect(next.serviceAccountTokens![0]!.token).not.toBe(token);
    await volumes.update(pod, { objects: next, nodeName: NODE });
    expect(readFileSync(path.join(dir, 'token'), 'utf8')).toBe(next.serviceAccountTokens![0]!.token);
    // without an API token the volume manager falls back to its local signer
    await volumes.update(pod, { objects: { configMaps: next.configMaps, secrets: next.secrets }, nodeName: NODE });
    const local = readFileSync(path.join(dir, 'token'), 'utf8');
    expect(local).not.toBe(next.serviceAccountTokens![0]!.token);
    expect(JSON.parse(Buffer.from(local.split('.')[1]!, 'base64url').toString()).iss).toBe('nodelet');
    await volumes.tearDown(pod.metadata.uid!);
  });

  it('ServiceEnvCache as node-x: every Service through one list+watch, the env of the pod’s namespace and kubernetes', async () => {
    const services = (n: string): ResourceRef => ({ group: '', version: 'v1', resource: 'services', namespace: n });
    const k = (await admin.get(services('default'), 'kubernetes')) as KubeObject & { spec: { clusterIP: string } };
    const other = 'svc-env-other';
    await admin.create({ group: '', version: 'v1', resource: 'namespaces' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } });
    const cache = new ServiceEnvCache(node);
    cache.start();
    try {
      expect(await cache.synced).toBe(true);
      const base = kubernetesServiceEnv({ clusterIP: k.spec.clusterIP, port: 443 });
      expect(cache.envFor(ns, true)).toEqual(base);
      expect(base.KUBERNETES_SERVICE_HOST).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      // created after the list: the watch brings it; a headless one gives nothing
      await admin.create(services(ns), { apiVersion: 'v1', kind: 'Service', metadata: { name: 'foo-service' }, spec: { ports: [{ port: 8765, targetPort: 8080 }] } });
      await admin.create(services(ns), { apiVersion: 'v1', kind: 'Service', metadata: { name: 'headless' }, spec: { clusterIP: 'None', ports: [{ port: 80 }] } });
      await admin.create(services(other), { apiVersion: 'v1', kind: 'Service', metadata: { name: 'elsewhere' }, spec: { ports: [{ port: 80 }] } });
      await eventually(async () => cache.envFor(ns, true).FOO_SERVICE_SERVICE_HOST !== undefined, 10_000, 'foo-service in the cache');
      const foo = (await admin.get(services(ns), 'foo-service')) as KubeObject & { spec: { clusterIP: string } };
      const env = cache.envFor(ns, true);
      expect(env).toMatchObject({ ...base, FOO_SERVICE_SERVICE_HOST: foo.spec.clusterIP, FOO_SERVICE_SERVICE_PORT: '8765', FOO_SERVICE_PORT: `tcp://${foo.spec.clusterIP}:8765`, FOO_SERVICE_PORT_8765_TCP_ADDR: foo.spec.clusterIP });
      expect(Object.keys(env).filter((n) => n.startsWith('HEADLESS_') || n.startsWith('ELSEWHERE_'))).toEqual([]);
      expect(cache.envFor(ns, false)).toEqual(base);
      await eventually(async () => cache.envFor(other, true).ELSEWHERE_SERVICE_HOST !== undefined, 10_000, 'elsewhere in the cache');
      expect(Object.keys(cache.envFor(other, true)).filter((n) => n.startsWith('FOO_SERVICE_'))).toEqual([]);
      await admin.delete(services(ns), 'foo-service');
      await eventually(async () => cache.envFor(ns, true).FOO_SERVICE_SERVICE_HOST === undefined, 10_000, 'foo-service gone from the cache');
    } finally {
      await cache.stop();
      await admin.delete(services(ns), 'headless').catch(() => undefined);
      await admin.delete({ group: '', version: 'v1', resource: 'namespaces' }, other).catch(() => undefined);
    }
  });

  it('once the pod is deleted its token no longer authenticates and its objects are Forbidden again', async () => {
    const objs = await newResolver().resolve(pod);
    await admin.delete(pods, 'web', { gracePeriodSeconds: 0 });
    await eventually(async () => isForbidden(await node.get(cms, 'app-config').catch((e: unknown) => e)), 10_000, 'app-config Forbidden for node-x after the pod is gone');
    const st = await tokenReview(objs.serviceAccountTokens![0]!.token);
    expect(st.authenticated ?? false).toBe(false);
  });
});
