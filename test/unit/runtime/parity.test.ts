// kubelet parity decisions, pure: GetContainerOOMScoreAdjust's special cases, IsNodeCriticalPod, hostNetwork pod IPs.
import { describe, expect, it } from 'vitest';
import { containerOomScoreAdj } from '../../../src/runtime/compute-plan.js';
import { isNodeCriticalPod } from '../../../src/pod/container-config.js';
import { podIPsOf } from '../../../src/pod/env.js';
import type { Pod } from '../../../src/pod/api-types.js';

const GiB = 1 << 30;
describe('containerOomScoreAdj (policy.go, default gates)', () => {
  it.each([
    ['Guaranteed', 'Guaranteed', {}, -997],
    ['BestEffort', 'BestEffort', {}, 1000],
    ['Burstable 10%', 'Burstable', { resources: { memoryRequestBytes: 0.1 * 10 * GiB } }, 900],
    ['Burstable no request → 999', 'Burstable', { resources: {} }, 999],
    ['Burstable over capacity → 3', 'Burstable', { resources: { memoryRequestBytes: 20 * GiB } }, 3],
    ['node-critical Burstable → -997', 'Burstable', { resources: { memoryRequestBytes: 1 }, oomScore: { nodeCritical: true } }, -997],
    ['node-critical BestEffort → -997', 'BestEffort', { resources: {}, oomScore: { nodeCritical: true } }, -997],
    ['sidecar takes the smallest regular request', 'Burstable', { resources: { memoryRequestBytes: 1 }, oomScore: { sidecarMinRegularMemoryRequestBytes: 2.5 * GiB } }, 750],
    ['sidecar with a larger request keeps its own', 'Burstable', { resources: { memoryRequestBytes: 5 * GiB }, oomScore: { sidecarMinRegularMemoryRequestBytes: 1 * GiB } }, 500],
  ] as const)('%s', (_n, qos, cfg, want) => {
    expect(containerOomScoreAdj(qos, { resources: {}, ...cfg } as never, 10 * GiB)).toBe(want);
  });
});

const pod = (spec: Partial<Pod['spec']>, annotations: Record<string, string> = {}): Pod => ({ metadata: { name: 'p', annotations }, spec: { containers: [], ...spec } }) as Pod;
describe('isNodeCriticalPod', () => {
  it.each([
    ['static (file source) + system-node-critical', pod({ priorityClassName: 'system-node-critical' }, { 'kubernetes.io/config.source': 'file' }), true],
    ['API server pod with system priority', pod({ priorityClassName: 'system-node-critical', priority: 2000001000 }, { 'kubernetes.io/config.source': 'apiserver' }), true],
    ['API server pod without priority', pod({ priorityClassName: 'system-node-critical' }, { 'kubernetes.io/config.source': 'apiserver' }), false],
    ['static but system-cluster-critical', pod({ priorityClassName: 'system-cluster-critical' }, { 'kubernetes.io/config.source': 'file' }), false],
    ['mirror pod', pod({ priorityClassName: 'system-node-critical' }, { 'kubernetes.io/config.source': 'apiserver', 'kubernetes.io/config.mirror': 'x' }), true],
  ])('%s', (_n, p, want) => expect(isNodeCriticalPod(p)).toBe(want));
});

describe('podIPsOf', () => {
  it('hostNetwork pods inherit the node IPs; others keep their own (or none)', () => {
    expect(podIPsOf(pod({ hostNetwork: true }), [], ['192.0.2.1'])).toEqual(['192.0.2.1']);
    expect(podIPsOf(pod({ hostNetwork: true }), ['10.0.0.2'], ['192.0.2.1'])).toEqual(['10.0.0.2']);
    expect(podIPsOf(pod({}), [], ['192.0.2.1'])).toEqual([]);
  });
});
