// HttpKubeClient against a scripted local HTTPS server (client-certificate auth).
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isNodeletError, NodeletError } from '../../../src/errors.js';
import { createKubeClient, HttpKubeClient } from '../../../src/kube/client.js';
import { isAlreadyExists, isConflict, isGone, isKubeError, isNotFound, isRetriable, KubeApiError } from '../../../src/kube/errors.js';
import { loadKubeconfig } from '../../../src/kube/kubeconfig.js';
import type { KubeObject, ResourceRef } from '../../../src/kube/types.js';
import { sendJson, startFakeCluster, status, writeKubeconfig, type FakeApiServer, type FakeCluster, type Pki } from './fake-apiserver.js';
import { caught } from '../../helpers/caught.js';

const cms: ResourceRef = { group: '', version: 'v1', resource: 'configmaps', namespace: 'default' };
const leases: ResourceRef = { group: 'coordination.k8s.io', version: 'v1', resource: 'leases', namespace: 'kube-node-lease' };

let fake: FakeCluster | undefined;
let pki: Pki;
let srv: FakeApiServer;
let client: HttpKubeClient;
const warnings: string[] = [];

beforeAll(async () => {
  fake = await startFakeCluster({ clientCN: 'system:node:unit-node', client: { onWarning: (w) => warnings.push(w), requestTimeoutMs: 2000 } });
  ({ pki, srv, client } = fake);
});
afterAll(() => fake?.close());
afterEach(() => {
  srv.requests.length = 0;
  warnings.length = 0;
});

describe('HttpKubeClient requests', () => {
  it('authenticates with the client certificate and sends JSON, User-Agent and the identity', async () => {
    srv.handler = (_req, res) => sendJson(res, 200, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'default', resourceVersion: '5' }, data: { k: 'v' } });
    const cm = await client.get(cms, 'a');
    expect(cm.metadata.name).toBe('a');
    expect(client.user).toBe('system:node:unit-node');
    const r = srv.requests[0];
    expect(r.clientCN).toBe('system:node:unit-node');
    expect(r.method).toBe('GET');
    expect(r.path).toBe('/api/v1/namespaces/default/configmaps/a');
    expect(r.headers['user-agent']).toMatch(/^nodelet\/\d+\.\d+\.\d+ \(linux\/\w+\)$/);
    expect(r.headers.accept).toBe('application/json');
  });

  it('lists with selectors, limit and continue; fills in kind/apiVersion of items', async () => {
    srv.handler = (_req, res) =>
      sendJson(res, 200, { kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: '9', continue: 'next' }, items: [{ metadata: { name: 'x' } }] });
    const l = await client.list(cms, { labelSelector: 'a=b', fieldSelector: 'metadata.name=x', limit: 1, continue: 'tok' });
    expect(l.metadata).toEqual({ resourceVersion: '9', continue: 'next' });
    expect(l.items[0]).toMatchObject({ kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: 'x' } });
    expect(Object.fromEntries(srv.requests[0].query)).toEqual({ labelSelector: 'a=b', fieldSelector: 'metadata.name=x', limit: '1', continue: 'tok' });
    const all = await client.list({ group: '', version: 'v1', resource: 'pods' });
    expect(all.items).toHaveLength(1);
    expect(srv.requests[1].path).toBe('/api/v1/pods');
  });

  it('create, update, patch (each type) and delete send the right method, path, content type and body', async () => {
    srv.handler = (req, res) => sendJson(res, req.method === 'POST' ? 201 : 200, { metadata: { name: 'l1' }, echo: req.body });
    await client.create(leases, { metadata: { name: 'l1' } }, { fieldValidation: 'Strict', fieldManager: 'nodelet' });
    await client.update(leases, 'l1', { metadata: { name: 'l1', resourceVersion: '3' } });
    await client.patch(leases, 'l1', 'strategic', { spec: { renewTime: 'now' } });
    await client.patch(leases, 'l1', 'merge', '{"spec":{"holderIdentity":"n"}}');
    await client.patch(leases, 'l1', 'json', [{ op: 'replace', path: '/spec/leaseDurationSeconds', value: 40 }]);
    await client.patch(leases, 'l1', 'apply', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l1' } }, { fieldManager: 'nodelet', force: true });
    await client.delete(leases, 'l1', { gracePeriodSeconds: 0, preconditions: { uid: 'u-1' }, propagationPolicy: 'Background' });
    await client.create({ group: '', version: 'v1', resource: 'serviceaccounts', namespace: 'ns', subresource: 'token' }, { spec: { audiences: ['a'] } }, { name: 'default' });
    const rq = srv.requests.map((r) => ({ m: r.method, p: r.path, q: Object.fromEntries(r.query), ct: r.headers['content-type'], b: r.body }));
    const base = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases';
    expect(rq[0]).toEqual({ m: 'POST', p: base, q: { fieldValidation: 'Strict', fieldManager: 'nodelet' }, ct: 'application/json', b: '{"metadata":{"name":"l1"}}' });
    expect(rq[1]).toMatchObject({ m: 'PUT', p: `${base}/l1`, ct: 'application/json' });
    expect(JSON.parse(rq[1].b)).toEqual({ metadata: { name: 'l1', resourceVersion: '3' } });
    expect(rq[2]).toMatchObject({ m: 'PATCH', p: `${base}/l1`, ct: 'application/strategic-merge-patch+json', b: '{"spec":{"renewTime":"now"}}' });
    expect(rq[3]).toMatchObject({ m: 'PATCH', ct: 'application/merge-patch+json', b: '{"spec":{"holderIdentity":"n"}}' });
    expect(rq[4]).toMatchObject({ m: 'PATCH', ct: 'application/json-patch+json' });
    expect(JSON.parse(rq[4].b)).toEqual([{ op: 'replace', path: '/spec/leaseDurationSeconds', value: 40 }]);
    expect(rq[5]).toMatchObject({ m: 'PATCH', ct: 'application/apply-patch+yaml', q: { fieldManager: 'nodelet', force: 'true' } });
    expect(rq[6]).toMatchObject({ m: 'DELETE', p: `${base}/l1`, ct: 'application/json' });
    expect(JSON.parse(rq[6].b)).toEqual({ kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid: 'u-1' }, propagationPolicy: 'Background' });
    expect(rq[7]).toMatchObject({ m: 'POST', p: '/api/v1/namespaces/ns/serviceaccounts/default/token' });
  });

  it('apply without fieldManager and force on a non-apply patch are refused before sending', async () => {
    expect(await caught(client.patch(leases, 'l1', 'apply', {}))).toMatchObject({ code: 'ERR_KUBE_FIELD_MANAGER' });
    expect(await caught(client.patch(leases, 'l1', 'merge', {}, { force: true }))).toMatchObject({ code: 'ERR_KUBE_PATCH_FORCE' });
    expect(srv.requests).toHaveLength(0);
  });

  it('maps non-2xx answers to KubeApiError with reason, status and a stable code', async () => {
    const cases: [number, string, string, string][] = [
      [404, 'NotFound', 'configmaps "a" not found', 'ERR_KUBE_NOT_FOUND'],
      [409, 'AlreadyExists', 'configmaps "a" already exists', 'ERR_KUBE_ALREADY_EXISTS'],
      [409, 'Conflict', 'the object has been modified', 'ERR_KUBE_CONFLICT'],
      [403, 'Forbidden', 'nodes can only read...', 'ERR_KUBE_FORBIDDEN'],
      [422, 'Invalid', 'ConfigMap "A" is invalid', 'ERR_KUBE_INVALID'],
      [410, 'Expired', 'too old resource version', 'ERR_KUBE_GONE'],
      [503, 'ServiceUnavailable', 'etcd down', 'ERR_KUBE_UNAVAILABLE'],
      [500, 'InternalError', 'boom', 'ERR_KUBE_INTERNAL'],
      [504, 'Timeout', 'took too long', 'ERR_KUBE_TIMEOUT'],
      [401, 'Unauthorized', 'Unauthorized', 'ERR_KUBE_UNAUTHORIZED'],
      [429, 'TooManyRequests', 'slow down', 'ERR_KUBE_TOO_MANY_REQUESTS'],
    ];
    for (const [code, reason, message, errCode] of cases) {
      srv.handler = (_req, res) => sendJson(res, code, status(code, reason, message), code === 429 ? { 'retry-after': '3' } : {});
      const e = await caught(client.get(cms, 'a'));
      expect(e).toBeInstanceOf(KubeApiError);
      expect(e).toBeInstanceOf(NodeletError);
      const k = e as KubeApiError;
      expect({ http: k.httpStatus, reason: k.reason, code: k.code, msg: k.status.message }).toEqual({ http: code, reason, code: errCode, msg: message });
      expect(k.message).toContain(message);
      expect(k.message).toContain(srv.url);
      expect(isKubeError(k, reason)).toBe(true);
      if (code === 429) expect(k.retryAfterSeconds).toBe(3);
    }
  });

  it('classifies with the helpers', async () => {
    srv.handler = (_req, res) => sendJson(res, 404, status(404, 'NotFound', 'x'));
    const nf = await caught(client.get(cms, 'a'));
    expect([isNotFound(nf), isConflict(nf), isAlreadyExists(nf), isGone(nf), isRetriable(nf), isKubeError(nf), isKubeError(nf, 'Conflict')]).toEqual([
      true, false, false, false, false, true, false,
    ]);
    srv.handler = (_req, res) => sendJson(res, 410, status(410, 'Expired', 'old'));
    const g = await caught(client.get(cms, 'a'));
    expect([isGone(g), isKubeError(g, 'Gone'), isKubeError(g, 'Expired')]).toEqual([true, true, true]);
  });

  it('a non-Status error body still gives a KubeApiError with a reason from the HTTP status', async () => {
    srv.handler = (_req, res) => {
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway from a proxy');
    };
    const e = (await caught(client.get(cms, 'a'))) as KubeApiError;
    expect(e).toBeInstanceOf(KubeApiError);
    expect(e.httpStatus).toBe(502);
    expect(e.reason).toBe('InternalError');
    expect(e.code).toBe('ERR_KUBE_HTTP_502');
    expect(e.status.message).toBe('bad gateway from a proxy');
    expect(isRetriable(e)).toBe(true);
  });

  it('a 2xx that is not JSON is ERR_KUBE_DECODE', async () => {
    srv.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>');
    };
    expect(await caught(client.get(cms, 'a'))).toMatchObject({ code: 'ERR_KUBE_DECODE' });
  });

  it('passes Warning headers to onWarning', async () => {
    srv.handler = (_req, res) => sendJson(res, 201, { metadata: { name: 'a' } }, { warning: ['299 - "unknown field \\"spec.foo\\""', '299 - "second"'] });
    await client.create(cms, { metadata: { name: 'a' } }, { fieldValidation: 'Warn' });
    expect(warnings).toEqual(['unknown field "spec.foo"', 'second']);
  });

  it('reuses connections (keep-alive)', async () => {
    srv.dropConnections();
    await new Promise((r) => setTimeout(r, 50));
    const ports = new Set<number>();
    srv.handler = (_req, res, raw) => {
      ports.add(raw.socket.remotePort ?? 0);
      sendJson(res, 200, { metadata: {} });
    };
    for (let i = 0; i < 8; i++) await client.get(cms, 'a');
    // undici's pool may open a second socket while the first is being released; never one per request
    expect(ports.size).toBeLessThanOrEqual(2);
  });

  it('times out a request that gets no answer (ERR_KUBE_TIMEOUT) and cancels on abort (ERR_KUBE_CANCELED)', async () => {
    srv.handler = () => {
      /* never answers */
    };
    const t0 = Date.now();
    const e = await caught(client.get(cms, 'slow'));
    expect(e).toMatchObject({ code: 'ERR_KUBE_TIMEOUT', category: 'DeadlineExceeded' });
    expect(Date.now() - t0).toBeLessThan(5000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    expect(await caught(client.list(cms, { signal: ac.signal }))).toMatchObject({ code: 'ERR_KUBE_CANCELED', category: 'Canceled' });
    srv.dropConnections();
  });
});

describe('HttpKubeClient transport failures', () => {
  it('connection refused is an Unavailable error naming the server', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const c = new HttpKubeClient({ ...loadKubeconfig(writeKubeconfig(pki, `https://127.0.0.1:${port}`, 'refused.kubeconfig')) });
    try {
      const e = await caught(c.get(cms, 'a'));
      expect(isNodeletError(e, 'ERR_KUBE_UNREACHABLE')).toBe(true);
      expect((e as NodeletError).category).toBe('Unavailable');
      expect((e as Error).message).toContain(`https://127.0.0.1:${port}`);
      expect((e as Error).message).toContain('ECONNREFUSED');
      expect(isRetriable(e)).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('a server certificate from another CA is ERR_KUBE_TLS', async () => {
    const cfg = loadKubeconfig(writeKubeconfig(pki, srv.url, 'other-ca.kubeconfig'));
    const c = new HttpKubeClient({ ...cfg, ca: (await import('node:fs')).readFileSync(pki.otherCaFile) });
    try {
      const e = await caught(c.get(cms, 'a'));
      expect(e).toMatchObject({ code: 'ERR_KUBE_TLS', category: 'FailedPrecondition' });
    } finally {
      await c.close();
    }
  });

  it('a bearer token (tokenFile) is sent in Authorization', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${pki.dir}/tok`, 'secret-token\n');
    const cfg = loadKubeconfig(writeKubeconfig(pki, srv.url, 'tok.kubeconfig'));
    const c = new HttpKubeClient({ ...cfg, cert: undefined, key: undefined, tokenFile: `${pki.dir}/tok` });
    srv.handler = (_req, res) => sendJson(res, 200, { metadata: {} });
    try {
      await c.get(cms, 'a');
      expect(srv.requests[0].headers.authorization).toBe('Bearer secret-token');
      expect(srv.requests[0].clientCN).toBeUndefined();
    } finally {
      await c.close();
    }
  });

  it('raw request() reads a text endpoint', async () => {
    srv.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    };
    expect(await client.request<string>('GET', '/readyz', { accept: 'text/plain' })).toBe('ok');
  });

  it('a closed client refuses new requests', async () => {
    const c = createKubeClient(writeKubeconfig(pki, srv.url, 'closed.kubeconfig'));
    await c.close();
    await c.close();
    expect(await caught(c.get(cms, 'a'))).toMatchObject({ code: 'ERR_KUBE_CLOSED' });
  });
});

export type { KubeObject };
