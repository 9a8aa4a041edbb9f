// The pure parts of cluster mode's pod handling: an API server pod as the
// agent's pod (or why it cannot run here), and the status to send (kubelet's
// conditions ours, the rest the API server's).
import { describe, expect, it } from 'vitest';
import { toAgentPod } from '../../../src/cluster/pod-source.js';
import { mergePodStatus } from '../../../src/cluster/status-syncer.js';
import { mirrorPodFor } from '../../../src/cluster/mirror-pods.js';
import type { Pod, PodStatus } from '../../../src/pod/api-types.js';

const apiPod = (spec: Record<string, unknown>) => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name: 'p', namespace: 'ns1', uid: 'u-1', resourceVersion: '7', managedFields: [{ manager: 'kubectl' }] },
  spec: { nodeName: 'node-a', schedulerName: 'default-scheduler', tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }], ...spec },
  status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True' }] },
});

describe('toAgentPod', () => {
  it('takes a scheduled pod as it is (defaults applied), without its status or managed fields, and without warnings about scheduler fields', () => {
    const r = toAgentPod(apiPod({ containers: [{ name: 'c', image: 'busybox' }] }) as never);
    expect(r.rejected).toBeUndefined();
    expect(r.warnings).toEqual([]);
    expect(r.pod.metadata).toMatchObject({ name: 'p', namespace: 'ns1', uid: 'u-1' });
    expect((r.pod.metadata as Record<string, unknown>).managedFields).toBeUndefined();
    expect((r.pod as unknown as { status?: unknown }).status).toBeUndefined();
    expect(r.pod.spec.containers[0]!.imagePullPolicy).toBe('Always'); // busybox = :latest
  });

  it('rejects a pod nodelet cannot run with a reason, rather than running part of it', () => {
    const r = toAgentPod(apiPod({ containers: [{ name: 'c', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/d' }] }], volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'x' } }] }) as never);
    expect(r.rejected?.reason).toBe('UnsupportedPodSpec');
    expect(r.rejected?.message).toMatch(/^Pod was rejected: Pod "p" \(pod ns1\/p\) is invalid: spec\.volumes\[0\]\.persistentVolumeClaim: Unsupported value/);
    expect(r.rejected?.message).not.toContain('\n');
  });
});

describe('mergePodStatus', () => {
  const ours = {
    phase: 'Running',
    conditions: [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: 'ours' },
      { type: 'Initialized', status: 'True' },
      { type: 'Ready', status: 'True' },
      { type: 'ContainersReady', status: 'True' },
      { type: 'PodReadyToStartContainers', status: 'True' },
    ],
    containerStatuses: [{ name: 'c', ready: true }],
  } as unknown as PodStatus;

  it('sends the conditions kubelet owns and keeps the others as the API server has them', () => {
    const api = { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: 'scheduler' }, { type: 'DisruptionTarget', status: 'True' }, { type: 'Ready', status: 'False' }], nominatedNodeName: 'x' };
    const m = mergePodStatus(api, ours) as { phase: string; conditions: { type: string; status: string; lastTransitionTime?: string }[]; nominatedNodeName?: string };
    expect(m.phase).toBe('Running');
    expect(m.conditions.find((c) => c.type === 'PodScheduled')!.lastTransitionTime).toBe('scheduler');
    expect(m.conditions.find((c) => c.type === 'DisruptionTarget')!.status).toBe('True');
    expect(m.conditions.find((c) => c.type === 'Ready')!.status).toBe('True');
    expect(m.conditions.filter((c) => c.type === 'Ready').length).toBe(1);
    expect(m.nominatedNodeName).toBe('x');
  });

  it('never takes back a terminal phase', () => {
    expect((mergePodStatus({ phase: 'Succeeded' }, ours) as { phase: string }).phase).toBe('Succeeded');
  });
});

describe('mirrorPodFor', () => {
  it('is owned by the Node, bound to it, marked as a mirror, and references no service account', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'etcd-node-a', namespace: 'kube-system', uid: 's-1', annotations: { 'kubernetes.io/config.hash': 'h1', 'kubernetes.io/config.source': 'file' } }, spec: { serviceAccountName: 'default', containers: [{ name: 'c', image: 'x' }] } } as unknown as Pod;
    const m = mirrorPodFor(pod, { name: 'node-a', uid: 'n-1' });
    expect(m.metadata.annotations!['kubernetes.io/config.mirror']).toBe('h1');
    expect(m.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'node-a', uid: 'n-1', controller: true }]);
    expect(m.spec!.nodeName).toBe('node-a');
    expect(m.spec!.serviceAccountName).toBeUndefined();
    expect(m.metadata.uid).toBeUndefined();
  });
});
