import { describe, expect, it } from 'vitest';
import { fetchKubernetesServiceEnv, kubernetesServiceEnv, serviceEnvVars } from '../../../src/cluster/service-env.js';
import { isNodeletError } from '../../../src/errors.js';
import { FakeObjectsClient, unreachable } from './fake-client.js';

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

describe('fetchKubernetesServiceEnv', () => {
  it('GETs services/kubernetes in default and maps all its ports', async () => {
    const c = new FakeObjectsClient();
    c.put('services', 'default', { metadata: { name: 'kubernetes' }, spec: { clusterIP: '10.96.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }] } });
    const env = await fetchKubernetesServiceEnv(c);
    expect(env).toEqual(kubernetesServiceEnv({ clusterIP: '10.96.0.1', port: 443 }));
    expect(c.callsOf('get', 'services')).toEqual([{ method: 'get', ref: { group: '', version: 'v1', resource: 'services', namespace: 'default' }, name: 'kubernetes' }]);
  });

  it('no Service, or no cluster IP: no variables', async () => {
    const c = new FakeObjectsClient();
    expect(await fetchKubernetesServiceEnv(c)).toEqual({});
    c.put('services', 'default', { metadata: { name: 'kubernetes' }, spec: { clusterIP: 'None', ports: [{ port: 443 }] } });
    expect(await fetchKubernetesServiceEnv(c)).toEqual({});
  });

  it('an unreachable API server is an error', async () => {
    const c = new FakeObjectsClient();
    c.failNext('get', unreachable());
    const err = await fetchKubernetesServiceEnv(c).catch((e: unknown) => e);
    expect(isNodeletError(err, 'ERR_SERVICE_ENV_FETCH')).toBe(true);
  });
});
