// The API client (src/kube) against the real control plane of scripts/control-plane.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureLogging } from '../../../src/log.js';
import { createKubeClient, type HttpKubeClient } from '../../../src/kube/client.js';
import { isAlreadyExists, isConflict, isForbidden, isKubeError, isNotFound, KubeApiError } from '../../../src/kube/errors.js';
import { listWatch } from '../../../src/kube/informer.js';
import type { KubeObject, ResourceRef, WatchEvent } from '../../../src/kube/types.js';
import { startControlPlane, type ControlPlane } from '../../helpers/control-plane.js';
import { caught } from '../../helpers/caught.js';

interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

const ns = 'default';
const cms: ResourceRef = { group: '', version: 'v1', resource: 'configmaps', namespace: ns };
const secrets: ResourceRef = { group: '', version: 'v1', resource: 'secrets', namespace: ns };
const nodes: ResourceRef = { group: '', version: 'v1', resource: 'nodes' };

let cp: ControlPlane;
let admin: HttpKubeClient;
let node: HttpKubeClient;
const warnings: string[] = [];

beforeAll(async () => {
  configureLogging({ level: 'error' });
  cp = await startControlPlane();
  admin = createKubeClient(cp.kubeconfig, { onWarning: (w) => warnings.push(w) });
  node = createKubeClient(await cp.nodeKubeconfig('client-test-node'));
}, 1_800_000);
afterAll(async () => {
  await admin?.close();
  await node?.close();
  await cp?.down();
});

describe('HttpKubeClient against kube-apiserver v1.36', () => {
  it('raw requests: /readyz and /version', async () => {
    expect(await admin.request<string>('GET', '/readyz', { accept: 'text/plain' })).toBe('ok');
    const v = await admin.request<{ gitVersion: string }>('GET', '/version');
    expect(v.gitVersion).toMatch(/^v1\.36\./);
    expect(admin.user).toBe('kubernetes-admin');
    expect(node.user).toBe('system:node:client-test-node');
  });

  it('create / get / strategic patch / delete a ConfigMap, while a watch sees ADDED, MODIFIED, DELETED', async () => {
    const name = `cm-${Date.now()}`;
    const start = await admin.list(cms, { fieldSelector: `metadata.name=${name}` });
    expect(start.items).toEqual([]);
    expect(start.metadata.resourceVersion).toMatch(/^\d+$/);

    const ac = new AbortController();
    const seen: WatchEvent<ConfigMap>[] = [];
    const watching = (async () => {
      for await (const ev of admin.watch<ConfigMap>(cms, {
        fieldSelector: `metadata.name=${name}`,
        resourceVersion: start.metadata.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: 60,
        signal: ac.signal,
      })) {
        if (ev.type === 'BOOKMARK') continue;
        seen.push(ev);
        if (ev.type === 'DELETED') ac.abort();
      }
    })();

    const created = await admin.create<ConfigMap>(cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { t: 'client' } }, data: { a: '1' } }, { fieldValidation: 'Strict' });
    expect(created.metadata.uid).toBeTruthy();
    const got = await admin.get<ConfigMap>(cms, name);
    expect(got.data).toEqual({ a: '1' });
    const patched = await admin.patch<ConfigMap>(cms, name, 'strategic', { metadata: { labels: { extra: 'yes' } }, data: { b: '2' } });
    expect(patched.data).toEqual({ a: '1', b: '2' });
    expect(patched.metadata.labels).toEqual({ t: 'client', extra: 'yes' });

    // a UID precondition that does not match is a Conflict, and nothing is deleted
    const wrong = await caught(admin.delete(cms, name, { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } }));
    expect(isConflict(wrong)).toBe(true);
    expect((wrong as KubeApiError).code).toBe('ERR_KUBE_CONFLICT');
    await admin.delete(cms, name, { preconditions: { uid: created.metadata.uid }, gracePeriodSeconds: 0 });
    const gone = await caught(admin.get(cms, name));
    expect(isNotFound(gone)).toBe(true);
    expect(gone).toMatchObject({ code: 'ERR_KUBE_NOT_FOUND', reason: 'NotFound', httpStatus: 404 });

    await Promise.race([watching, new Promise((_, rej) => setTimeout(() => rej(new Error('watch did not see DELETED in 20 s')), 20_000))]);
    expect(seen.map((e) => e.type)).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
    expect(seen[1].object.data).toEqual({ a: '1', b: '2' });
    expect(seen[0].object.kind).toBe('ConfigMap');
  });

  it('merge, JSON and server-side apply patches; update with a stale resourceVersion conflicts', async () => {
    const name = `cm-p-${Date.now()}`;
    const c = await admin.create<ConfigMap>(cms, { metadata: { name }, data: { a: '1' } });
    expect(isAlreadyExists(await caught(admin.create(cms, { metadata: { name } })))).toBe(true);
    const m = await admin.patch<ConfigMap>(cms, name, 'merge', { data: { a: null, m: 'x' } });
    expect(m.data).toEqual({ m: 'x' });
    const j = await admin.patch<ConfigMap>(cms, name, 'json', [{ op: 'add', path: '/data/j', value: 'y' }]);
    expect(j.data).toEqual({ m: 'x', j: 'y' });
    const a = await admin.patch<ConfigMap>(cms, name, 'apply', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { s: 'z' } }, { fieldManager: 'nodelet-test', force: true });
    expect(a.data).toMatchObject({ s: 'z' });
    expect(JSON.stringify(a.metadata.managedFields)).toContain('nodelet-test');
    const stale = await caught(admin.update(cms, name, { ...c, data: { stale: '1' } }));
    expect(isConflict(stale)).toBe(true);
    expect((stale as KubeApiError).reason).toBe('Conflict');
    const fresh = await admin.get<ConfigMap>(cms, name);
    const u = await admin.update<ConfigMap>(cms, name, { ...fresh, data: { fresh: '1' } });
    expect(u.data).toEqual({ fresh: '1' });
    await admin.delete(cms, name);
  });

  it('field validation: Strict rejects an unknown field (BadRequest), Warn reports it through onWarning', async () => {
    const name = `cm-v-${Date.now()}`;
    const strict = await caught(admin.create(cms, { metadata: { name }, bogus: 1 }, { fieldValidation: 'Strict' }));
    expect(isKubeError(strict, 'BadRequest')).toBe(true);
    expect((strict as KubeApiError).message).toContain('bogus');
    warnings.length = 0;
    await admin.create(cms, { metadata: { name }, bogus: 1 }, { fieldValidation: 'Warn' });
    expect(warnings.join('\n')).toContain('bogus');
    const invalid = await caught(admin.create(cms, { metadata: { name: 'Not_Valid' } }));
    expect(invalid).toMatchObject({ code: 'ERR_KUBE_INVALID', reason: 'Invalid', httpStatus: 422 });
    await admin.delete(cms, name);
  });

  it('lists page by page with limit/continue', async () => {
    const tag = `page-${Date.now()}`;
    for (let i = 0; i < 5; i++) await admin.create(cms, { metadata: { name: `${tag}-${i}`, labels: { page: tag } } });
    const names: string[] = [];
    let cont: string | undefined;
    let pages = 0;
    do {
      const l = await admin.list(cms, { labelSelector: `page=${tag}`, limit: 2, continue: cont });
      names.push(...l.items.map((i) => i.metadata.name!));
      cont = l.metadata.continue || undefined;
      pages++;
    } while (cont);
    expect(pages).toBe(3);
    expect(names.sort()).toEqual([0, 1, 2, 3, 4].map((i) => `${tag}-${i}`));
    for (const n of names) await admin.delete(cms, n);
  });

  it('a node identity is Forbidden to read a secret no pod of its own references, and may create its own Node', async () => {
    const name = `s-${Date.now()}`;
    await admin.create(secrets, { metadata: { name }, stringData: { k: 'v' } });
    const e = await caught(node.get(secrets, name));
    expect(isForbidden(e)).toBe(true);
    expect(e).toMatchObject({ code: 'ERR_KUBE_FORBIDDEN', reason: 'Forbidden', httpStatus: 403, category: 'PermissionDenied' });
    expect((e as KubeApiError).status.message).toContain('system:node:client-test-node');
    const l = await caught(node.list(secrets));
    expect(isForbidden(l)).toBe(true);

    const n = await node.create(nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'client-test-node', labels: { 'kubernetes.io/hostname': 'client-test-node' } } });
    expect(n.metadata.uid).toBeTruthy();
    const other = await caught(node.create(nodes, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'someone-else' } }));
    expect(isForbidden(other)).toBe(true);
    const st = await node.patch(
      { ...nodes, subresource: 'status' },
      'client-test-node',
      'strategic',
      { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'Testing', message: 'client test', lastHeartbeatTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] } },
    );
    expect(JSON.stringify(st)).toContain('"reason":"Testing"');
    await admin.delete(nodes, 'client-test-node');
    await admin.delete(secrets, name);
  });

  it('listWatch delivers the initial state, then events, against the real server', async () => {
    const tag = `inf-${Date.now()}`;
    await admin.create(cms, { metadata: { name: `${tag}-0`, labels: { inf: tag } } });
    const syncs: string[][] = [];
    const events: string[] = [];
    const lw = listWatch<ConfigMap>(admin, { group: '', version: 'v1', resource: 'configmaps' }, { labelSelector: `inf=${tag}` }, {
      onSync: (items) => void syncs.push(items.map((i) => `${i.metadata.namespace}/${i.metadata.name}`)),
      onEvent: (t, o) => void events.push(`${t} ${o.metadata.name}`),
    });
    try {
      expect(await lw.synced).toBe(true);
      expect(syncs).toEqual([[`${ns}/${tag}-0`]]);
      await admin.create(cms, { metadata: { name: `${tag}-1`, labels: { inf: tag } } });
      await admin.delete(cms, `${tag}-0`);
      for (let i = 0; i < 200 && events.length < 2; i++) await new Promise((r) => setTimeout(r, 50));
      expect(events).toEqual([`ADDED ${tag}-1`, `DELETED ${tag}-0`]);
    } finally {
      await lw.stop();
    }
    await admin.delete(cms, `${tag}-1`);
  });

  it('a watch from a compacted-away resourceVersion gets the 410 ERROR event', async () => {
    // core/v1 events have no watch cache (kube-apiserver's default): their watches go to
    // etcd. Compact etcd up to now (its JSON gateway), so resourceVersion 1 is gone.
    const events: ResourceRef = { group: '', version: 'v1', resource: 'events', namespace: ns };
    const now = await admin.list(cms, { limit: 1 });
    const res = await fetch(`${cp.etcdUrl}/v3/kv/compaction`, { method: 'POST', body: JSON.stringify({ revision: now.metadata.resourceVersion, physical: true }) });
    expect(res.status).toBe(200);
    const evs: WatchEvent[] = [];
    const ac = new AbortController();
    const t = setTimeout(() => ac.abort(), 15_000);
    for await (const ev of admin.watch(events, { resourceVersion: '1', signal: ac.signal })) {
      evs.push(ev);
      if (ev.type === 'ERROR') break;
    }
    clearTimeout(t);
    const err = evs.find((e) => e.type === 'ERROR');
    expect(err, `events: ${JSON.stringify(evs.map((e) => e.type))}`).toBeDefined();
    expect(err!.object).toMatchObject({ kind: 'Status', code: 410 });
  });
});

export type { KubeApiError };
