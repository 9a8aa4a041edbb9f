// HttpKubeClient.watch against a scripted HTTPS server: NDJSON split at odd
// places, 410, errors, abort, dropped connections.
import type { ServerResponse } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createKubeClient, type HttpKubeClient } from '../../../src/kube/client.js';
import { KubeApiError } from '../../../src/kube/errors.js';
import type { KubeObject, ResourceRef, WatchEvent, WatchOptions } from '../../../src/kube/types.js';
import { sendJson, sleep, startFakeCluster, status, writeKubeconfig, type FakeApiServer, type FakeCluster, type Pki } from './fake-apiserver.js';

const pods: ResourceRef = { group: '', version: 'v1', resource: 'pods' };
let fake: FakeCluster | undefined;
let pki: Pki;
let srv: FakeApiServer;
let client: HttpKubeClient;

beforeAll(async () => {
  fake = await startFakeCluster({ client: { requestTimeoutMs: 3000 } });
  ({ pki, srv, client } = fake);
});
afterAll(() => fake?.close());
afterEach(() => {
  srv.dropConnections();
  srv.requests.length = 0;
});

function startStream(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
}

const ev = (type: string, name: string, rv: string) => JSON.stringify({ type, object: { kind: 'Pod', apiVersion: 'v1', metadata: { name, resourceVersion: rv } } }) + '\n';

async function collect(opts: WatchOptions = {}, max = Infinity): Promise<{ events: WatchEvent<KubeObject>[]; error?: unknown }> {
  const events: WatchEvent<KubeObject>[] = [];
  try {
    for await (const e of client.watch(pods, opts)) {
      events.push(e);
      if (events.length >= max) break;
    }
  } catch (error) {
    return { events, error };
  }
  return { events };
}

describe('watch', () => {
  it('sends the watch query and reassembles events split mid-line and mid-character across chunks', async () => {
    const text = ev('ADDED', 'pod-é😀', '11') + ev('MODIFIED', 'b', '12') + '\n' + ev('BOOKMARK', '', '15') + ev('DELETED', 'b', '16');
    const bytes = Buffer.from(text, 'utf8');
    // cut inside the JSON of the first line and inside the 4-byte emoji
    const emoji = bytes.indexOf(Buffer.from('😀', 'utf8'));
    const cuts = [5, emoji + 2, emoji + 9, bytes.length - 3];
    srv.handler = async (_req, res) => {
      startStream(res);
      let from = 0;
      for (const c of [...cuts, bytes.length]) {
        res.write(bytes.subarray(from, c));
        from = c;
        await sleep(15);
      }
      res.end();
    };
    const { events, error } = await collect({ resourceVersion: '10', allowWatchBookmarks: true, timeoutSeconds: 120, labelSelector: 'app=x' });
    expect(error).toBeUndefined();
    expect(events.map((e) => [e.type, e.object.metadata.name, e.object.metadata.resourceVersion])).toEqual([
      ['ADDED', 'pod-é😀', '11'],
      ['MODIFIED', 'b', '12'],
      ['BOOKMARK', '', '15'],
      ['DELETED', 'b', '16'],
    ]);
    const q = Object.fromEntries(srv.requests[0].query);
    expect(q).toEqual({ watch: 'true', resourceVersion: '10', allowWatchBookmarks: 'true', timeoutSeconds: '120', labelSelector: 'app=x' });
    expect(srv.requests[0].path).toBe('/api/v1/pods');
  });

  it('a last line without a newline at a clean end is still delivered', async () => {
    srv.handler = (_req, res) => {
      startStream(res);
      res.end(ev('ADDED', 'a', '2').trimEnd());
    };
    const { events } = await collect();
    expect(events.map((e) => e.object.metadata.name)).toEqual(['a']);
  });

  it('HTTP 410 comes back as one ERROR event holding the Status (code 410)', async () => {
    srv.handler = (_req, res) => sendJson(res, 410, status(410, 'Expired', 'too old resource version: 1 (40)'));
    const { events, error } = await collect({ resourceVersion: '1' });
    expect(error).toBeUndefined();
    expect(events).toHaveLength(1);
    expect(events[0].type).toBe('ERROR');
    expect(events[0].object).toMatchObject({ kind: 'Status', code: 410, reason: 'Expired' });
  });

  it('an in-stream ERROR event is passed through', async () => {
    srv.handler = (_req, res) => {
      startStream(res);
      res.end(JSON.stringify({ type: 'ERROR', object: status(410, 'Expired', 'too old') }) + '\n');
    };
    const { events } = await collect();
    expect(events[0]).toMatchObject({ type: 'ERROR', object: { code: 410 } });
  });

  it('other error answers throw KubeApiError', async () => {
    srv.handler = (_req, res) => sendJson(res, 403, status(403, 'Forbidden', 'pods is forbidden'));
    const { error } = await collect();
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ code: 'ERR_KUBE_FORBIDDEN', reason: 'Forbidden' });
  });

  it('a garbage line throws ERR_KUBE_DECODE', async () => {
    srv.handler = (_req, res) => {
      startStream(res);
      res.end('{"type":"ADDED",\nnot json\n');
    };
    const { error } = await collect();
    expect(error).toMatchObject({ code: 'ERR_KUBE_DECODE' });
  });

  it('aborting the signal ends the iteration quietly and closes the connection', async () => {
    let closed = false;
    srv.handler = (_req, res, raw) => {
      startStream(res);
      res.write(ev('ADDED', 'a', '2'));
      raw.socket.on('close', () => (closed = true));
    };
    const ac = new AbortController();
    const t0 = Date.now();
    const events: string[] = [];
    setTimeout(() => ac.abort(), 200);
    for await (const e of client.watch(pods, { signal: ac.signal })) events.push(e.object.metadata.name!);
    expect(events).toEqual(['a']);
    expect(Date.now() - t0).toBeLessThan(2000);
    for (let i = 0; i < 50 && !closed; i++) await sleep(20);
    expect(closed).toBe(true);
    // an already aborted signal: no request at all
    srv.requests.length = 0;
    const { events: none } = await collect({ signal: AbortSignal.abort() });
    expect(none).toEqual([]);
    expect(srv.requests).toHaveLength(0);
  });

  it('breaking out of the loop closes the connection', async () => {
    let closed = false;
    srv.handler = (_req, res, raw) => {
      startStream(res);
      res.write(ev('ADDED', 'a', '2') + ev('ADDED', 'b', '3'));
      raw.socket.on('close', () => (closed = true));
    };
    const { events } = await collect({}, 1);
    expect(events).toHaveLength(1);
    for (let i = 0; i < 50 && !closed; i++) await sleep(20);
    expect(closed).toBe(true);
  });

  it('a connection dropped mid-stream throws ERR_KUBE_WATCH_BROKEN (Unavailable)', async () => {
    srv.handler = async (_req, res, raw) => {
      startStream(res);
      res.write(ev('ADDED', 'a', '2') + '{"type":"MODI');
      await sleep(50);
      raw.socket.destroy();
    };
    const { events, error } = await collect();
    expect(events).toHaveLength(1);
    expect(error).toMatchObject({ code: 'ERR_KUBE_WATCH_BROKEN', category: 'Unavailable' });
    expect((error as Error).message).toContain(srv.url);
  });

  it('client.close() ends an open watch', async () => {
    const c = createKubeClient(writeKubeconfig(pki, srv.url, 'close.kubeconfig'));
    srv.handler = (_req, res) => {
      startStream(res);
      res.write(ev('ADDED', 'a', '2'));
    };
    const got: string[] = [];
    const done = (async () => {
      for await (const e of c.watch(pods)) got.push(e.object.metadata.name!);
    })();
    for (let i = 0; i < 50 && got.length === 0; i++) await sleep(20);
    await c.close();
    await done;
    expect(got).toEqual(['a']);
  });
});
