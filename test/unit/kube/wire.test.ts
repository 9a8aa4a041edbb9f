import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../../src/kube/informer.js';
import { LineSplitter, listQuery, parseWarnings, queryString, resourcePath, watchQuery } from '../../../src/kube/wire.js';
import { isNodeletError } from '../../../src/errors.js';

describe('resourcePath', () => {
  it('builds core, grouped, namespaced, cluster-scoped and subresource paths', () => {
    expect(resourcePath({ group: '', version: 'v1', resource: 'pods' })).toBe('/api/v1/pods');
    expect(resourcePath({ group: '', version: 'v1', resource: 'pods', namespace: 'default' }, 'web')).toBe('/api/v1/namespaces/default/pods/web');
    expect(resourcePath({ group: '', version: 'v1', resource: 'pods', namespace: 'kube-system', subresource: 'status' }, 'p1')).toBe(
      '/api/v1/namespaces/kube-system/pods/p1/status',
    );
    expect(resourcePath({ group: '', version: 'v1', resource: 'nodes', subresource: 'status' }, 'n1')).toBe('/api/v1/nodes/n1/status');
    expect(resourcePath({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases', namespace: 'kube-node-lease' }, 'n1')).toBe(
      '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1',
    );
    expect(resourcePath({ group: '', version: 'v1', resource: 'namespaces' }, 'default')).toBe('/api/v1/namespaces/default');
    expect(resourcePath({ group: '', version: 'v1', resource: 'serviceaccounts', namespace: 'ns', subresource: 'token' }, 'default')).toBe(
      '/api/v1/namespaces/ns/serviceaccounts/default/token',
    );
  });

  it('percent-encodes names and rejects unsafe segments', () => {
    expect(resourcePath({ group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles' }, 'system:node')).toBe(
      '/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Anode',
    );
    const bad = [
      () => resourcePath({ group: '', version: 'v1', resource: 'pods' }, 'a/b'),
      () => resourcePath({ group: '', version: 'v1', resource: 'pods' }, '..'),
      () => resourcePath({ group: '', version: 'v1', resource: 'pods' }, ''),
      () => resourcePath({ group: '', version: 'v1', resource: 'pods', namespace: '../x' }, 'a'),
      () => resourcePath({ group: 'a/b', version: 'v1', resource: 'pods' }),
      () => resourcePath({ group: '', version: 'v1', resource: 'pods', subresource: 'status' }),
    ];
    for (const f of bad) {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(isNodeletError(err) && /^ERR_KUBE_BAD_(REF|NAME)$/.test(err.code), String(f)).toBe(true);
    }
  });
});

describe('query strings', () => {
  it('drops undefined and empty values and encodes selectors', () => {
    expect(queryString({})).toBe('');
    expect(queryString(listQuery({ labelSelector: 'app=web,tier!=db', fieldSelector: 'spec.nodeName=n1', limit: 10, continue: 'abc' }))).toBe(
      '?labelSelector=app%3Dweb%2Ctier%21%3Ddb&fieldSelector=spec.nodeName%3Dn1&limit=10&continue=abc',
    );
  });
  it('watch query has watch=true, bookmarks, timeout, and no paging', () => {
    const q = new URLSearchParams(queryString(watchQuery({ resourceVersion: '42', allowWatchBookmarks: true, timeoutSeconds: 300, limit: 5, continue: 'x' })));
    expect(Object.fromEntries(q)).toEqual({ watch: 'true', resourceVersion: '42', timeoutSeconds: '300', allowWatchBookmarks: 'true' });
  });
});

describe('LineSplitter', () => {
  it('carries partial lines across chunks, handles CRLF and blank lines', () => {
    const s = new LineSplitter();
    expect(s.push('{"a":')).toEqual([]);
    expect(s.push('1}\n{"b"')).toEqual(['{"a":1}']);
    expect(s.push(':2}\r\n\n\n{"c":3}')).toEqual(['{"b":2}']);
    expect(s.pending).toBe(7);
    expect(s.push('\n')).toEqual(['{"c":3}']);
    expect(s.push('{"d":4}')).toEqual([]);
    expect(s.flush()).toEqual(['{"d":4}']);
    expect(s.flush()).toEqual([]);
  });

  it('with a streaming TextDecoder keeps a multi-byte character split across chunks', () => {
    const bytes = Buffer.from('{"name":"café-😀"}\n{"x":1}\n', 'utf8');
    for (let cut = 1; cut < bytes.length; cut++) {
      const d = new TextDecoder();
      const s = new LineSplitter();
      const out = [...s.push(d.decode(bytes.subarray(0, cut), { stream: true })), ...s.push(d.decode(bytes.subarray(cut), { stream: true })), ...s.push(d.decode()), ...s.flush()];
      expect(out).toEqual(['{"name":"café-😀"}', '{"x":1}']);
    }
  });
});

describe('parseWarnings', () => {
  it('reads the texts of 299 warnings, several per header and escaped quotes', () => {
    expect(parseWarnings(undefined)).toEqual([]);
    expect(parseWarnings('299 - "metadata.finalizers: \\"x\\": prefer a domain-qualified finalizer name"')).toEqual([
      'metadata.finalizers: "x": prefer a domain-qualified finalizer name',
    ]);
    expect(parseWarnings(['299 - "one", 299 - "two, with comma"', '299 kube-apiserver "three" "Wed, 21 Oct 2015 07:28:00 GMT"'])).toEqual([
      'one',
      'two, with comma',
      'three',
    ]);
    expect(parseWarnings('garbage')).toEqual(['garbage']);
  });
});

describe('backoffDelay', () => {
  it('starts at 0.8 s, doubles, caps at 30 s, jitter adds up to 20 %', () => {
    const none = () => 0;
    expect([0, 1, 2, 3, 4, 5, 6, 7, 100].map((a) => backoffDelay(a, {}, none))).toEqual([800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000]);
    expect(backoffDelay(0, {}, () => 1)).toBe(960);
    expect(backoffDelay(10, {}, () => 0.5)).toBe(33000);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay(2, {});
      expect(d).toBeGreaterThanOrEqual(3200);
      expect(d).toBeLessThanOrEqual(3840);
    }
    expect(backoffDelay(3, { initialMs: 10, maxMs: 50, factor: 3, jitter: 0 })).toBe(50);
  });
});
