import { describe, expect, it } from 'vitest';
import { apiVerb, forbiddenMessage, isSubpath, normalizeExecQuery, parseKubeletRoute, requestAttributes } from '../../../src/kubelet/attributes.js';
import { parseExecQuery } from '../../../src/api/exec-stream.js';
import { parseLogQuery } from '../../../src/api/server.js';

const subs = (method: string, path: string) => requestAttributes(method, path, 'n1').map((a) => a.subresource);

describe('kubelet request attributes (auth.go GetRequestAttributes, fine-grained authz)', () => {
  it('maps paths to nodes/<subresource> in kubelet\'s order', () => {
    expect(subs('GET', '/stats/summary')).toEqual(['stats']);
    expect(subs('GET', '/stats')).toEqual(['stats']);
    expect(subs('GET', '/metrics')).toEqual(['metrics']);
    expect(subs('GET', '/metrics/resource')).toEqual(['metrics']);
    expect(subs('GET', '/metrics/cadvisor')).toEqual(['metrics']);
    expect(subs('GET', '/logs/messages')).toEqual(['log']);
    expect(subs('GET', '/pods')).toEqual(['pods', 'proxy']);
    expect(subs('GET', '/runningpods/')).toEqual(['pods', 'proxy']);
    expect(subs('GET', '/healthz')).toEqual(['healthz', 'proxy']);
    expect(subs('GET', '/configz')).toEqual(['configz', 'proxy']);
    expect(subs('GET', '/flagz')).toEqual(['configz']);
    expect(subs('GET', '/statusz')).toEqual(['statusz']);
    expect(subs('POST', '/checkpoint/ns/p/c')).toEqual(['checkpoint']);
    for (const p of ['/containerLogs/ns/p/c', '/exec/ns/p/c', '/attach/ns/p/c', '/portForward/ns/p', '/run/ns/p/c', '/', '/podsx', '/statsx'])
      expect(subs('GET', p)).toEqual(['proxy']);
  });

  it('verb from the method; resource nodes, the node name, v1', () => {
    expect(requestAttributes('POST', '/exec/ns/p/c', 'n1')).toEqual([{ verb: 'create', resource: 'nodes', subresource: 'proxy', name: 'n1', version: 'v1', path: '/exec/ns/p/c' }]);
    expect(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].map(apiVerb)).toEqual(['get', 'create', 'update', 'patch', 'delete', '']);
    expect(isSubpath('/stats/', '/stats/')).toBe(true);
    expect(isSubpath('/statsfoo', '/stats/')).toBe(false);
  });

  it('403 text is kubelet\'s', () => {
    expect(forbiddenMessage('system:serviceaccount:x:y', requestAttributes('GET', '/pods', 'n1'))).toBe('Forbidden (user=system:serviceaccount:x:y, verb=get, resource=nodes, subresource(s)=[pods proxy])\n');
  });
});

describe('kubelet routes and queries', () => {
  it('parses kubelet paths', () => {
    expect(parseKubeletRoute('/healthz')).toEqual({ kind: 'healthz' });
    expect(parseKubeletRoute('/pods/')).toEqual({ kind: 'pods' });
    expect(parseKubeletRoute('/stats/summary')).toEqual({ kind: 'statsSummary' });
    expect(parseKubeletRoute('/metrics')).toEqual({ kind: 'metrics' });
    expect(parseKubeletRoute('/metrics/resource')).toEqual({ kind: 'metricsResource' });
    expect(parseKubeletRoute('/containerLogs/default/web/c')).toEqual({ kind: 'containerLogs', namespace: 'default', pod: 'web', container: 'c' });
    expect(parseKubeletRoute('/exec/default/web/c')).toEqual({ kind: 'exec', namespace: 'default', pod: 'web', container: 'c' });
    expect(parseKubeletRoute('/exec/default/web/uid-1/c')).toEqual({ kind: 'exec', namespace: 'default', pod: 'web', uid: 'uid-1', container: 'c' });
    expect(parseKubeletRoute('/containerLogs/default/web')).toEqual({ kind: 'notFound' });
    expect(parseKubeletRoute('/exec/default//c')).toEqual({ kind: 'notFound' });
    expect(parseKubeletRoute('/containerLogs/%E0%A4%A/p/c')).toEqual({ kind: 'notFound' });
  });

  it('exec query as the API server sends it (input/output/error/tty = 1) and as the pod subresource names it', () => {
    const api = parseExecQuery(normalizeExecQuery(new URLSearchParams('command=sh&command=-c&command=exit+3&output=1&error=1'), 'c'));
    expect(api).toEqual({ command: ['sh', '-c', 'exit 3'], container: 'c', stdin: false, stdout: true, stderr: true, tty: false });
    const tty = parseExecQuery(normalizeExecQuery(new URLSearchParams('command=sh&input=1&output=1&tty=1'), 'c'));
    expect(tty).toMatchObject({ stdin: true, stdout: true, stderr: false, tty: true });
    const named = parseExecQuery(normalizeExecQuery(new URLSearchParams('command=ls&stdout=true'), 'x'));
    expect(named).toMatchObject({ command: ['ls'], container: 'x', stdout: true, stdin: false });
    expect(parseExecQuery(normalizeExecQuery(new URLSearchParams('output=1'), 'c'))).toEqual({ error: 'you must specify at least 1 command' });
  });

  it('log query (PodLogOptions as LogLocation encodes it)', () => {
    const now = Date.parse('2026-01-01T00:10:00Z');
    expect(parseLogQuery(new URLSearchParams('follow=true&previous=true&timestamps=true&tailLines=5&limitBytes=100&sinceSeconds=60'), now)).toEqual({
      follow: true, previous: true, timestamps: true, tailLines: 5, limitBytes: 100, sinceMs: now - 60_000,
    });
    expect(parseLogQuery(new URLSearchParams('sinceTime=2026-01-01T00:00:00Z'))).toMatchObject({ sinceMs: Date.parse('2026-01-01T00:00:00Z') });
    expect(parseLogQuery(new URLSearchParams('tailLines=-1'))).toEqual({ follow: false, previous: false, timestamps: false });
    expect(parseLogQuery(new URLSearchParams('tailLines=x'))).toEqual({ error: 'tailLines: must be an integer, got "x"' });
    expect(parseLogQuery(new URLSearchParams('sinceSeconds=0'))).toEqual({ error: 'sinceSeconds: must be a positive integer, got "0"' });
    expect(parseLogQuery(new URLSearchParams('sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z'))).toEqual({ error: 'at most one of sinceTime or sinceSeconds may be specified' });
    expect(parseLogQuery(new URLSearchParams('sinceTime=yesterday'))).toEqual({ error: 'sinceTime: "yesterday" is not an RFC 3339 time' });
    expect(parseLogQuery(new URLSearchParams('stream=Stderr'))).toMatchObject({ stream: 'Stderr' });
    expect(parseLogQuery(new URLSearchParams('stream=Stderr&tailLines=1'))).toEqual({ error: 'tailLines cannot be used with a stream other than All' });
  });
});
