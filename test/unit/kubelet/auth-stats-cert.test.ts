import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { bearerToken, DelegatedAuth } from '../../../src/kubelet/auth.js';
import { certStillGood, ensureServingCert, subjectAltNames } from '../../../src/kubelet/cert.js';
import { buildSummary, CpuRates, nodeCpuNanos, parseProcStatCpuNanos, renderResourceMetrics, type Sample } from '../../../src/kubelet/stats.js';
import { requestAttributes } from '../../../src/kubelet/attributes.js';
import type { KubeClient } from '../../../src/kube/types.js';

function fakeClient(answer: (resource: string, body: any) => any) {
  const calls: { resource: string; body: any }[] = [];
  const client = {
    server: 'https://x', create: async (ref: { resource: string }, body: any) => {
      calls.push({ resource: ref.resource, body });
      return answer(ref.resource, body);
    },
  } as unknown as KubeClient;
  return { client, calls };
}

describe('delegated authentication and authorization', () => {
  it('bearer tokens', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer  x ')).toBe('x');
    expect(bearerToken('Basic x')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });

  it('TokenReview results are cached (2 min authenticated, 10 s not); SARs per attribute until one allows, cached', async () => {
    let now = 0;
    const { client, calls } = fakeClient((resource, body) => {
      if (resource === 'tokenreviews')
        return body.spec.token === 'good' ? { metadata: {}, status: { authenticated: true, user: { username: 'u', groups: ['g', 'system:authenticated'] } } } : { metadata: {}, status: { authenticated: false, error: 'bad token' } };
      return { metadata: {}, status: { allowed: body.spec.resourceAttributes.subresource === 'proxy' } };
    });
    const auth = new DelegatedAuth({ client, now: () => now });
    expect(await auth.reviewToken('good')).toEqual({ user: { username: 'u', groups: ['g', 'system:authenticated'] } });
    expect(await auth.reviewToken('good')).toMatchObject({ user: { username: 'u' } });
    expect(await auth.reviewToken('bad')).toEqual({ error: 'bad token' });
    expect(calls.filter((c) => c.resource === 'tokenreviews').length).toBe(2);
    now = 11_000;
    await auth.reviewToken('bad');
    await auth.reviewToken('good');
    expect(calls.filter((c) => c.resource === 'tokenreviews').length).toBe(3);
    now = 200_000;
    await auth.reviewToken('good');
    expect(calls.filter((c) => c.resource === 'tokenreviews').length).toBe(4);

    const user = { username: 'u', groups: ['g'] };
    expect(await auth.authorize(user, requestAttributes('GET', '/pods', 'n1'))).toBe(true);
    const sars = calls.filter((c) => c.resource === 'subjectaccessreviews');
    expect(sars.map((c) => c.body.spec.resourceAttributes)).toEqual([
      { verb: 'get', version: 'v1', resource: 'nodes', subresource: 'pods', name: 'n1' },
      { verb: 'get', version: 'v1', resource: 'nodes', subresource: 'proxy', name: 'n1' },
    ]);
    expect(sars[0]!.body).toMatchObject({ apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'u', groups: ['g'] } });
    expect(await auth.authorize(user, requestAttributes('GET', '/stats/summary', 'n1'))).toBe(false);
    await auth.authorize(user, requestAttributes('GET', '/pods', 'n1'));
    expect(calls.filter((c) => c.resource === 'subjectaccessreviews').length).toBe(3); // both cached
  });

  it('a failing review throws (→ 500)', async () => {
    const { client } = fakeClient(() => { throw new Error('boom'); });
    await expect(new DelegatedAuth({ client }).authorize({ username: 'u', groups: [] }, requestAttributes('GET', '/pods', 'n'))).rejects.toThrow(/SubjectAccessReview failed: boom/);
  });
});

describe('serving certificate', () => {
  it('self-signed by openssl: CN=<node>, SANs, 0600, reused while valid, remade for new names', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubelet-pki-'));
    try {
      expect(subjectAltNames(['127.0.0.1', 'n1', 'n1', '::1'])).toBe('IP:127.0.0.1,DNS:n1,IP:::1');
      const a = await ensureServingCert({ dir, nodeName: 'n1', names: ['127.0.0.1', 'n1'] });
      expect(a.created).toBe(true);
      const x = new X509Certificate(a.cert);
      expect(x.subject).toBe('CN=n1');
      expect(x.subjectAltName).toBe('IP Address:127.0.0.1, DNS:n1');
      expect(fs.statSync(a.keyFile).mode & 0o777).toBe(0o600);
      expect(fs.statSync(a.certFile).mode & 0o777).toBe(0o600);
      expect(certStillGood(a.cert, ['127.0.0.1', 'n1'])).toBe(true);
      expect(certStillGood(a.cert, ['127.0.0.1', 'n1'], Date.now() + 365 * 86_400_000)).toBe(false);
      const b = await ensureServingCert({ dir, nodeName: 'n1', names: ['127.0.0.1', 'n1'] });
      expect(b.created).toBe(false);
      expect(b.cert.equals(a.cert)).toBe(true);
      const c = await ensureServingCert({ dir, nodeName: 'n1', names: ['10.0.0.5', 'n1'] });
      expect(c.created).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('stats', () => {
  it('node CPU from /proc/stat (non-idle jiffies → ns)', () => {
    expect(parseProcStatCpuNanos('cpu  100 10 50 1000 20 5 5 2 0 0\ncpu0 1 2 3\n')).toBe((100 + 10 + 50 + 5 + 5 + 2) * 1e7);
    expect(parseProcStatCpuNanos('')).toBe(0);
  });

  it('node CPU from the root cpuacct.usage where cgroup v1 has it (ns exact), else /proc/stat', () => {
    const files = (m: Record<string, string>) => (f: string) => m[f] ?? '';
    const stat = 'cpu  100 0 50 1000 0 0 0 0 0 0\n';
    expect(nodeCpuNanos(files({ '/sys/fs/cgroup/cpuacct/cpuacct.usage': '13479019609\n', '/proc/stat': stat }))).toBe(13479019609);
    expect(nodeCpuNanos(files({ '/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage': '42\n', '/proc/stat': stat }))).toBe(42);
    expect(nodeCpuNanos(files({ '/proc/stat': stat }))).toBe(150 * 1e7);
    expect(nodeCpuNanos(files({ '/sys/fs/cgroup/cpuacct/cpuacct.usage': 'garbage', '/proc/stat': stat }))).toBe(150 * 1e7);
  });

  const sample = (cpu: number, t: string): Sample => ({
    node: { time: t, cpuNanos: cpu * 4, memory: { availableBytes: 1, usageBytes: 3, workingSetBytes: 2, rssBytes: 1 }, fs: { capacityBytes: 100, availableBytes: 40, inodes: 10, inodesFree: 4 }, rlimit: { maxpid: 10, curproc: 2 }, startTime: t },
    pods: [{
      view: { pod: { metadata: { name: 'web', namespace: 'default', uid: 'u1' }, spec: { containers: [] } }, status: { startTime: t }, resourceVersion: 1 } as never,
      containers: [{ status: { id: 'c1', name: 'c', startedAt: '2026-01-01T00:00:00Z', createdAt: '2026-01-01T00:00:00Z', state: 'running' } as never, stats: { timestamp: t, cpuUsageNanos: cpu, memoryWorkingSetBytes: 1000, memoryUsageBytes: 2000, pids: 3 } }],
    }],
  });

  it('summary: rates from the previous sample, cumulative counters, pod sums', () => {
    const rates = new CpuRates();
    const first = buildSummary('n1', sample(1e9, '2026-01-01T00:00:00Z'), rates, 0) as any;
    expect(first.pods[0].containers[0].cpu.usageNanoCores).toBeUndefined();
    const s = buildSummary('n1', sample(1.5e9, '2026-01-01T00:00:01Z'), rates, 1000) as any;
    expect(s.node).toMatchObject({ nodeName: 'n1', cpu: { usageNanoCores: 2e9, usageCoreNanoSeconds: 6e9 }, memory: { workingSetBytes: 2 }, fs: { usedBytes: 60, inodesUsed: 6 } });
    expect(s.pods[0]).toMatchObject({
      podRef: { name: 'web', namespace: 'default', uid: 'u1' },
      cpu: { usageNanoCores: 5e8, usageCoreNanoSeconds: 1.5e9 },
      memory: { workingSetBytes: 1000, usageBytes: 2000 },
      containers: [{ name: 'c', cpu: { usageNanoCores: 5e8, usageCoreNanoSeconds: 1.5e9 }, memory: { workingSetBytes: 1000, usageBytes: 2000 } }],
    });
  });

  it('resource metrics with kubelet\'s names and labels', () => {
    const m = renderResourceMetrics(sample(1.5e9, '2026-01-01T00:00:01Z'));
    const t = Date.parse('2026-01-01T00:00:01Z');
    expect(m).toContain(`container_cpu_usage_seconds_total{container="c",namespace="default",pod="web"} 1.5 ${t}\n`);
    expect(m).toContain(`container_memory_working_set_bytes{container="c",namespace="default",pod="web"} 1000 ${t}\n`);
    expect(m).toContain(`pod_cpu_usage_seconds_total{namespace="default",pod="web"} 1.5 ${t}\n`);
    expect(m).toContain(`pod_memory_working_set_bytes{namespace="default",pod="web"} 1000 ${t}\n`);
    expect(m).toContain(`node_cpu_usage_seconds_total 6 ${t}\n`);
    expect(m).toContain(`node_memory_working_set_bytes 2 ${t}\n`);
    expect(m).toContain('# TYPE node_cpu_usage_seconds_total counter\n');
    expect(m).toContain('resource_scrape_error 0\n');
  });
});
