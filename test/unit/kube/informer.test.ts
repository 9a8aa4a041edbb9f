// listWatch (the reflector loop) against a scripted HTTPS server.
import type { ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { configureLogging } from '../../../src/log.js';
import type { HttpKubeClient } from '../../../src/kube/client.js';
import { listWatch, type ListWatch } from '../../../src/kube/informer.js';
import type { KubeObject, ResourceRef } from '../../../src/kube/types.js';
import { sendJson, sleep, startFakeCluster, status, type FakeApiServer, type FakeCluster, type SeenRequest } from './fake-apiserver.js';

const cms: ResourceRef = { group: '', version: 'v1', resource: 'configmaps', namespace: 'ns1' };
let fake: FakeCluster | undefined;
let srv: FakeApiServer;
let client: HttpKubeClient;
let lw: ListWatch | undefined;

beforeAll(async () => {
  configureLogging({ level: 'error' });
  fake = await startFakeCluster({ client: { requestTimeoutMs: 3000 } });
  ({ srv, client } = fake);
});
afterAll(() => fake?.close());
afterEach(async () => {
  await lw?.stop();
  lw = undefined;
  srv.dropConnections();
  srv.requests.length = 0;
});

const cm = (name: string, rv: string) => ({ metadata: { name, namespace: 'ns1', resourceVersion: rv } });
const line = (type: string, obj: unknown) => JSON.stringify({ type, object: obj }) + '\n';
function stream(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.flushHeaders();
}
const isWatch = (r: SeenRequest) => r.query.get('watch') === 'true';

interface Recorder {
  syncs: { names: string[]; rv: string }[];
  events: string[];
  errors: { code?: string; relist: boolean; delayMs: number }[];
}
function recorder(): Recorder & { handlers: Parameters<typeof listWatch>[3] } {
  const r: Recorder = { syncs: [], events: [], errors: [] };
  return {
    ...r,
    handlers: {
      onSync: (items: KubeObject[], rv: string) => void r.syncs.push({ names: items.map((i) => i.metadata.name!), rv }),
      onEvent: (type, obj) => void r.events.push(`${type} ${obj.metadata.name}@${obj.metadata.resourceVersion}`),
      onError: (e, info) => void r.errors.push({ code: (e as { code?: string }).code, relist: info.relist, delayMs: info.delayMs }),
    },
  };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await sleep(10);
  }
}

const fast = { backoff: { initialMs: 20, maxMs: 200, jitter: 0 }, random: () => 0, watchTimeoutSeconds: 60 };

describe('listWatch', () => {
  it('lists, syncs, then watches from the list resourceVersion with bookmarks; relists on 410', async () => {
    let lists = 0;
    let watches = 0;
    srv.handler = (req, res) => {
      if (!isWatch(req)) {
        lists++;
        return lists === 1
          ? sendJson(res, 200, { kind: 'ConfigMapList', metadata: { resourceVersion: '10' }, items: [cm('a', '9')] })
          : sendJson(res, 200, { kind: 'ConfigMapList', metadata: { resourceVersion: '20' }, items: [cm('a', '9'), cm('b', '19')] });
      }
      watches++;
      stream(res);
      if (watches === 1) res.end(line('ADDED', cm('x', '11')) + line('ERROR', status(410, 'Expired', 'too old resource version: 11 (15)')));
      else res.write(line('ADDED', cm('c', '21')));
    };
    const r = recorder();
    lw = listWatch(client, cms, fast, r.handlers);
    expect(await lw.synced).toBe(true);
    await until(() => r.events.includes('ADDED c@21'));
    expect(r.syncs).toEqual([
      { names: ['a'], rv: '10' },
      { names: ['a', 'b'], rv: '20' },
    ]);
    expect(r.events).toEqual(['ADDED x@11', 'ADDED c@21']);
    const w = srv.requests.filter(isWatch);
    expect(w.map((q) => q.query.get('resourceVersion'))).toEqual(['10', '20']);
    expect(w[0].query.get('allowWatchBookmarks')).toBe('true');
    expect(w[0].query.get('timeoutSeconds')).toBe('60');
    expect(w[0].path).toBe('/api/v1/namespaces/ns1/configmaps');
    expect(r.errors).toEqual([{ code: 'ERR_KUBE_GONE', relist: true, delayMs: 0 }]);
    expect(lw.resourceVersion).toBe('21');
  });

  it('relists when the watch request itself answers HTTP 410', async () => {
    let lists = 0;
    let watches = 0;
    srv.handler = (req, res) => {
      if (!isWatch(req)) {
        lists++;
        return sendJson(res, 200, { metadata: { resourceVersion: String(lists * 100) }, items: [] });
      }
      watches++;
      if (watches === 1) return sendJson(res, 410, status(410, 'Gone', 'gone'));
      stream(res);
    };
    const r = recorder();
    lw = listWatch(client, cms, fast, r.handlers);
    await until(() => srv.requests.filter(isWatch).length === 2);
    expect(r.syncs.map((s) => s.rv)).toEqual(['100', '200']);
    expect(srv.requests.filter(isWatch).map((q) => q.query.get('resourceVersion'))).toEqual(['100', '200']);
  });

  it('reconnects after the server drops the connection, resuming from the last event or bookmark (no relist)', async () => {
    let watches = 0;
    srv.handler = async (req, res, raw) => {
      if (!isWatch(req)) return sendJson(res, 200, { metadata: { resourceVersion: '5' }, items: [cm('a', '4')] });
      watches++;
      stream(res);
      if (watches === 1) {
        res.write(line('ADDED', cm('x', '6')) + line('BOOKMARK', { kind: 'ConfigMap', metadata: { resourceVersion: '8' } }));
        await sleep(50);
        raw.socket.destroy();
      } else if (watches === 2) {
        res.write(line('MODIFIED', cm('x', '9')));
        await sleep(30);
        res.end(); // a normal end (timeoutSeconds elapsed)
      } else {
        res.write(line('DELETED', cm('x', '10')));
      }
    };
    const r = recorder();
    lw = listWatch(client, cms, fast, r.handlers);
    await until(() => r.events.length === 3);
    expect(r.events).toEqual(['ADDED x@6', 'MODIFIED x@9', 'DELETED x@10']);
    expect(r.syncs).toHaveLength(1);
    expect(srv.requests.filter(isWatch).map((q) => q.query.get('resourceVersion'))).toEqual(['5', '8', '9']);
    expect(r.errors.map((e) => [e.code, e.relist])).toEqual([['ERR_KUBE_WATCH_BROKEN', false]]);
    expect(lw.stats).toMatchObject({ lists: 1, watches: 3, events: 3 });
  });

  it('backs off exponentially on repeated failures; 5xx retries the watch, 403 relists', async () => {
    let watches = 0;
    srv.handler = (req, res) => {
      if (!isWatch(req)) return sendJson(res, 200, { metadata: { resourceVersion: '1' }, items: [] });
      watches++;
      if (watches <= 4) return sendJson(res, 503, status(503, 'ServiceUnavailable', 'etcd leader changed'));
      if (watches === 5) return sendJson(res, 403, status(403, 'Forbidden', 'rbac changed'));
      stream(res);
    };
    const r = recorder();
    lw = listWatch(client, cms, fast, r.handlers);
    await until(() => watches >= 6);
    expect(r.errors.map((e) => [e.code, e.relist, e.delayMs])).toEqual([
      ['ERR_KUBE_UNAVAILABLE', false, 20],
      ['ERR_KUBE_UNAVAILABLE', false, 40],
      ['ERR_KUBE_UNAVAILABLE', false, 80],
      ['ERR_KUBE_UNAVAILABLE', false, 160],
      ['ERR_KUBE_FORBIDDEN', true, 200],
    ]);
    expect(r.syncs).toHaveLength(2);
  });

  it('retries a failing list with back-off and syncs once it succeeds', async () => {
    let lists = 0;
    srv.handler = (req, res) => {
      if (!isWatch(req)) {
        lists++;
        if (lists < 3) return sendJson(res, 500, status(500, 'InternalError', 'boom'));
        return sendJson(res, 200, { metadata: { resourceVersion: '3' }, items: [cm('a', '2')] });
      }
      stream(res);
    };
    const r = recorder();
    lw = listWatch(client, cms, fast, r.handlers);
    expect(await lw.synced).toBe(true);
    expect(lists).toBe(3);
    expect(r.errors.map((e) => e.delayMs)).toEqual([20, 40]);
  });

  it('pages the list with limit/continue, and falls back to one full list when the token expired', async () => {
    const all = ['a', 'b', 'c', 'd', 'e'];
    let expireOnce = true;
    srv.handler = (req, res) => {
      if (isWatch(req)) return stream(res);
      const limit = Number(req.query.get('limit') ?? 0);
      const start = Number(req.query.get('continue') ?? 0);
      if (start === 4 && expireOnce) {
        expireOnce = false;
        return sendJson(res, 410, status(410, 'Expired', 'The provided continue parameter is too old'));
      }
      const end = limit ? Math.min(all.length, start + limit) : all.length;
      sendJson(res, 200, { metadata: { resourceVersion: '50', ...(end < all.length ? { continue: String(end) } : {}) }, items: all.slice(start, end).map((n) => cm(n, '1')) });
    };
    const r = recorder();
    lw = listWatch(client, cms, { ...fast, pageSize: 2, labelSelector: 'app=x' }, r.handlers);
    expect(await lw.synced).toBe(true);
    expect(r.syncs).toEqual([{ names: all, rv: '50' }]);
    const lists = srv.requests.filter((q) => !isWatch(q)).map((q) => `${q.query.get('limit')}/${q.query.get('continue')}/${q.query.get('labelSelector')}`);
    expect(lists).toEqual(['2/null/app=x', '2/2/app=x', '2/4/app=x', 'null/null/app=x']);
  });

  it('a throwing handler is logged and the loop goes on', async () => {
    srv.handler = (req, res) => {
      if (!isWatch(req)) return sendJson(res, 200, { metadata: { resourceVersion: '1' }, items: [] });
      stream(res);
      res.write(line('ADDED', cm('a', '2')) + line('ADDED', cm('b', '3')));
    };
    const seen: string[] = [];
    lw = listWatch(client, cms, fast, {
      onSync: () => {
        throw new Error('consumer bug');
      },
      onEvent: async (_t, o) => {
        seen.push(o.metadata.name!);
        if (o.metadata.name === 'a') throw new Error('consumer bug');
      },
    });
    await until(() => seen.length === 2);
    expect(seen).toEqual(['a', 'b']);
  });

  it('stop() ends an open watch promptly; synced is false when stopped before the first list', async () => {
    let closed = 0;
    srv.handler = (req, res, raw) => {
      if (!isWatch(req)) return sendJson(res, 200, { metadata: { resourceVersion: '1' }, items: [] });
      raw.socket.on('close', () => closed++);
      stream(res);
    };
    const r = recorder();
    const l = listWatch(client, cms, fast, r.handlers);
    await l.synced;
    await until(() => srv.requests.some(isWatch));
    const t0 = Date.now();
    await l.stop();
    expect(Date.now() - t0).toBeLessThan(1000);
    await until(() => closed === 1);
    expect(l.hasSynced()).toBe(true);

    srv.handler = () => {
      /* the list never answers */
    };
    const l2 = listWatch(client, cms, fast, recorder().handlers);
    await sleep(50);
    await l2.stop();
    expect(await l2.synced).toBe(false);
    expect(l2.hasSynced()).toBe(false);
  });
});
