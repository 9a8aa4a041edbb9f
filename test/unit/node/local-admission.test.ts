// Standalone resource admission (src/node/local-admission.ts): the allocatable this host would report as a
// Node, the same kubelet reasons and messages as cluster mode.
import { describe, expect, it } from 'vitest';
import type { Pod } from '../../../src/pod/api-types.js';
import { admitterFor } from '../../../src/node/local-admission.js';
import { hostFixture } from './fakes.js';

const pod = (name: string, requests: Record<string, string>, extra: Partial<Pod['spec']> = {}): Pod => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: 'default', uid: name },
  spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests } }], ...extra },
});

describe('local admission', () => {
  // 4 CPUs, 8 GiB; default hard eviction memory.available 100Mi comes off allocatable memory
  const admit = admitterFor(hostFixture(), 'n1');

  it('admits what fits and rejects memory beyond allocatable with kubelet\'s OutOfmemory message', () => {
    expect(admit(pod('small', { cpu: '1', memory: '1Gi' }), [])).toBeUndefined();
    const r = admit(pod('huge', { memory: '1000Gi' }), []);
    expect(r).toEqual({ reason: 'OutOfmemory', message: `Pod was rejected: Node didn't have enough resource: memory, requested: 1073741824000, used: 0, capacity: ${8 * 1024 ** 3 - 100 * 1024 ** 2}` });
  });

  it('counts the pods admitted before (cpu), and --kube-reserved shrinks allocatable', () => {
    const three = pod('three', { cpu: '3' });
    expect(admit(pod('two', { cpu: '2' }), [three])?.reason).toBe('OutOfcpu');
    const reserved = admitterFor(hostFixture(), 'n1', { kubeReserved: { cpu: '2' } });
    expect(reserved(three, [])).toMatchObject({ reason: 'OutOfcpu', message: "Pod was rejected: Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000" });
  });

  it('pods (--max-pods) and the node\'s labels (nodeSelector, kubernetes.io/os) as the Node would have them', () => {
    const one = admitterFor(hostFixture(), 'n1', { maxPods: 1 });
    expect(one(pod('b', {}), [pod('a', {})])?.reason).toBe('OutOfpods');
    expect(admit(pod('sel', {}, { nodeSelector: { 'kubernetes.io/hostname': 'n1' } }), [])).toBeUndefined();
    expect(admit(pod('other', {}, { nodeSelector: { 'kubernetes.io/hostname': 'n2' } }), [])?.reason).toBe('NodeAffinity');
  });
});
