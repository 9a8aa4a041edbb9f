import { describe, expect, it } from 'vitest';
import { kubernetesServiceEnv, ServiceEnvCache, serviceEnvMap, serviceEnvVars } from '../../../src/cluster/service-env.js';
import { FakeObjectsClient, waitFor } from './fake-client.js';

describe('kubernetesServiceEnv', () => {
  it('gives kubelet’s variables for the kubernetes Service', () => {
    expect(kubernetesServiceEnv({ clusterIP: '10.0.0.1', port: 443 })).toEqual({
      KUBERNETES_SERVICE_HOST: '10.0.0.1',
      KUBERNETES_SERVICE_PORT: '443',
      KUBERNETES_SERVICE_PORT_HTTPS: '443',
      KUBERNETES_PORT: 'tcp://10.0.0.1:443',
      KUBERNETES_PORT_443_TCP: 'tcp://10.0.0.1:443',
      KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
      KUBERNETES_PORT_443_TCP_PORT: '443',
      KUBERNETES_PORT_443_TCP_ADDR: '10.0.0.1',
    });
  });

  it('brackets an IPv6 cluster IP in the URLs only', () => {
    const env = kubernetesServiceEnv({ clusterIP: 'fd00:10::1', port: 443 });
    expect(env.KUBERNETES_SERVICE_HOST).toBe('fd00:10::1');
    expect(env.KUBERNETES_PORT).toBe('tcp://[fd00:10::1]:443');
    expect(env.KUBERNETES_PORT_443_TCP_ADDR).toBe('fd00:10::1');
  });

  it('is empty without a cluster IP', () => {
    expect(kubernetesServiceEnv({ clusterIP: '', port: 443 })).toEqual({});
    expect(kubernetesServiceEnv({ clusterIP: 'None', port: 443 })).toEqual({});
  });
});

describe('serviceEnvVars (envvars.FromServices)', () => {
  it('names every named port, special-cases the first, keeps kubelet’s order', () => {
    const vars = serviceEnvVars([
      { name: 'my-dns', clusterIP: '10.0.0.10', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] },
      { name: 'headless', clusterIP: 'None', ports: [{ port: 80 }] },
    ]);
    expect(vars).toEqual([
      { name: 'MY_DNS_SERVICE_HOST', value: '10.0.0.10' },
      { name: 'MY_DNS_SERVICE_PORT', value: '53' },
      { name: 'MY_DNS_SERVICE_PORT_DNS', value: '53' },
      { name: 'MY_DNS_SERVICE_PORT_DNS_TCP', value: '53' },
      { name: 'MY_DNS_PORT', value: 'udp://10.0.0.10:53' },
      { name: 'MY_DNS_PORT_53_UDP', value: 'udp://10.0.0.10:53' },
      { name: 'MY_DNS_PORT_53_UDP_PROTO', value: 'udp' },
      { name: 'MY_DNS_PORT_53_UDP_PORT', value: '53' },
      { name: 'MY_DNS_PORT_53_UDP_ADDR', value: '10.0.0.10' },
      { name: 'MY_DNS_PORT_53_TCP', value: 'tcp://10.0.0.10:53' },
      { name: 'MY_DNS_PORT_53_TCP_PROTO', value: 'tcp' },
      { name: 'MY_DNS_PORT_53_TCP_PORT', value: '53' },
      { name: 'MY_DNS_PORT_53_TCP_ADDR', value: '10.0.0.10' },
    ]);
  });
});

const svc = (namespace: string, name: string, clusterIP: string, ports: { name?: string; port: number; protocol?: string }[]) => ({ namespace, name, clusterIP, ports });

describe('serviceEnvMap (getServiceEnvVarMap)', () => {
  const k8s = svc('default', 'kubernetes', '10.96.0.1', [{ name: 'https', port: 443, protocol: 'TCP' }]);
  const foo = svc('ns1', 'fooservice', '10.96.0.50', [{ port: 8765, protocol: 'TCP' }]);
  it('the namespace’s services with enableServiceLinks, kubernetes of default always', () => {
    const all = [k8s, foo, svc('ns2', 'other', '10.96.0.60', [{ port: 80 }]), svc('default', 'not-master', '10.96.0.70', [{ port: 81 }])];
    const env = serviceEnvMap(all, 'ns1', true);
    expect(env).toEqual({
      ...kubernetesServiceEnv({ clusterIP: '10.96.0.1', port: 443 }),
      FOOSERVICE_SERVICE_HOST: '10.96.0.50',
      FOOSERVICE_SERVICE_PORT: '8765',
      FOOSERVICE_PORT: 'tcp://10.96.0.50:8765',
      FOOSERVICE_PORT_8765_TCP: 'tcp://10.96.0.50:8765',
      FOOSERVICE_PORT_8765_TCP_PROTO: 'tcp',
      FOOSERVICE_PORT_8765_TCP_PORT: '8765',
      FOOSERVICE_PORT_8765_TCP_ADDR: '10.96.0.50',
    });
    expect(serviceEnvMap(all, 'ns1', false)).toEqual(kubernetesServiceEnv({ clusterIP: '10.96.0.1', port: 443 }));
    // a pod of default sees default's other services too
    expect(serviceEnvMap(all, 'default', true).NOT_MASTER_SERVICE_HOST).toBe('10.96.0.70');
    expect(serviceEnvMap(all, 'default', false).NOT_MASTER_SERVICE_HOST).toBeUndefined();
  });
  it('skips services without a cluster IP; a namespace’s own kubernetes wins over default’s, in either order', () => {
    const own = svc('ns1', 'kubernetes', '10.96.9.9', [{ name: 'http', port: 80 }]);
    for (const list of [[k8s, own], [own, k8s]]) {
      const env = serviceEnvMap(list, 'ns1', true);
      expect(env.KUBERNETES_SERVICE_HOST).toBe('10.96.9.9');
      expect(env.KUBERNETES_SERVICE_PORT_HTTP).toBe('80');
      expect(env.KUBERNETES_SERVICE_PORT_HTTPS).toBeUndefined();
      // without service links the namespace's services are not considered: default's
      expect(serviceEnvMap(list, 'ns1', false).KUBERNETES_SERVICE_HOST).toBe('10.96.0.1');
    }
    expect(serviceEnvMap([svc('ns1', 'headless', 'None', [{ port: 80 }]), svc('ns1', 'external', '', [{ port: 80 }])], 'ns1', true)).toEqual({});
  });
});

describe('ServiceEnvCache', () => {
  it('lists every namespace’s Services, follows the watch', async () => {
    const c = new FakeObjectsClient();
    c.put('services', 'default', { metadata: { name: 'kubernetes' }, spec: { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }] } });
    c.put('services', 'ns1', { metadata: { name: 'early' }, spec: { clusterIP: '10.96.0.2', ports: [{ port: 80, protocol: 'TCP' }] } });
    const cache = new ServiceEnvCache(c);
    expect(cache.hasSynced()).toBe(false);
    cache.start();
    try {
      expect(await cache.synced).toBe(true);
      expect(c.callsOf('list', 'services')[0]!.ref).toEqual({ group: '', version: 'v1', resource: 'services' });
      expect(cache.envFor('ns1', true)).toMatchObject({ KUBERNETES_SERVICE_HOST: '10.96.0.1', EARLY_SERVICE_HOST: '10.96.0.2' });
      c.put('services', 'ns1', { metadata: { name: 'fooservice' }, spec: { clusterIP: '10.96.0.50', ports: [{ port: 8765, protocol: 'TCP' }] } });
      await waitFor(() => cache.envFor('ns1', true).FOOSERVICE_SERVICE_HOST !== undefined, 5000, 'fooservice from the watch');
      expect(cache.envFor('ns1', true).FOOSERVICE_PORT_8765_TCP).toBe('tcp://10.96.0.50:8765');
      expect(cache.envFor('ns2', true).FOOSERVICE_SERVICE_HOST).toBeUndefined();
      c.remove('services', 'ns1', 'early');
      await waitFor(() => cache.envFor('ns1', true).EARLY_SERVICE_HOST === undefined, 5000, 'early gone');
      expect(cache.envFor('ns1', true).KUBERNETES_SERVICE_HOST).toBe('10.96.0.1');
    } finally {
      await cache.stop();
    }
    expect(c.openWatches).toBe(0);
  });
});
