import { describe, expect, it } from 'vitest';
import {
  computePodAdmission,
  hostPortsFit,
  insufficientResources,
  isExtendedResourceName,
  matchesNodeAffinity,
  podRequests,
  rejectedPodStatus,
  rejectionMessage,
  toleratesTaint,
  type AdmissionContainer,
  type AdmissionNode,
  type AdmissionPod,
} from '../../../src/pod/admission.js';

const node: AdmissionNode = {
  name: 'n1',
  labels: { 'kubernetes.io/hostname': 'n1', 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64', zone: 'a', gen: '5' },
  allocatable: { cpu: '2', memory: '2Gi', pods: '3', 'ephemeral-storage': '10Gi', 'example.com/gpu': '2', 'hugepages-2Mi': '0' },
};

function pod(containers: AdmissionContainer[], spec: Partial<AdmissionPod['spec']> = {}, meta: AdmissionPod['metadata'] = {}): AdmissionPod {
  return { metadata: { name: 'p', namespace: 'default', ...meta }, spec: { nodeName: 'n1', containers, ...spec } };
}
const c = (requests: Record<string, string> = {}, extra: Partial<AdmissionContainer> = {}): AdmissionContainer => ({ name: 'c', resources: { requests }, ...extra });

const reject = (p: AdmissionPod, others: AdmissionPod[] = [], n = node) => {
  const r = computePodAdmission(p, n, others);
  if (r.admit) throw new Error('expected a rejection');
  return r;
};

describe('resource fit (OutOf<resource>, kubelet messages)', () => {
  it('memory, with kubelet exact wording and the status message', () => {
    const r = reject(pod([c({ memory: '1000Gi' })]));
    expect(r).toEqual({
      admit: false,
      reason: 'OutOfmemory',
      message: "Node didn't have enough resource: memory, requested: 1073741824000, used: 0, capacity: 2147483648",
    });
    expect(rejectionMessage(r.message)).toBe("Pod was rejected: Node didn't have enough resource: memory, requested: 1073741824000, used: 0, capacity: 2147483648");
    expect(rejectedPodStatus(r)).toEqual({ phase: 'Failed', reason: 'OutOfmemory', message: rejectionMessage(r.message) });
  });

  it('cpu in millicores, counting what admitted pods request', () => {
    const running = pod([c({ cpu: '1500m' })]);
    expect(reject(pod([c({ cpu: '600m' })]), [running])).toEqual({
      admit: false,
      reason: 'OutOfcpu',
      message: "Node didn't have enough resource: cpu, requested: 600, used: 1500, capacity: 2000",
    });
    expect(computePodAdmission(pod([c({ cpu: '500m' })]), node, [running])).toEqual({ admit: true });
  });

  it('terminal pods do not count', () => {
    const done = { ...pod([c({ cpu: '2' })]), status: { phase: 'Succeeded' } };
    expect(computePodAdmission(pod([c({ cpu: '2' })]), node, [done, { ...done, status: { phase: 'Failed' } }])).toEqual({ admit: true });
  });

  it('pods: the count against allocatable pods', () => {
    const others = [pod([c()]), pod([c()]), pod([c()])];
    expect(reject(pod([c()]), others)).toEqual({
      admit: false,
      reason: 'OutOfpods',
      message: "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3",
    });
  });

  it('the first failure wins, in the scheduler order (pods, cpu, memory, ephemeral-storage, scalars)', () => {
    const others = [pod([c()]), pod([c()]), pod([c()])];
    const p = pod([c({ cpu: '3', memory: '3Gi', 'ephemeral-storage': '11Gi' })]);
    expect(reject(p, others).reason).toBe('OutOfpods');
    expect(reject(p).reason).toBe('OutOfcpu');
    expect(insufficientResources(p, node, others).map((r) => r.resourceName)).toEqual(['pods', 'cpu', 'memory', 'ephemeral-storage']);
    expect(reject(pod([c({ 'ephemeral-storage': '11Gi' })]))).toMatchObject({
      reason: 'OutOfephemeral-storage',
      message: `Node didn't have enough resource: ephemeral-storage, requested: ${11 * 1024 ** 3}, used: 0, capacity: ${10 * 1024 ** 3}`,
    });
  });

  it('extended resources and huge pages: OutOf<name>; extended resources the node lacks are ignored', () => {
    expect(reject(pod([c({ 'example.com/gpu': '3' })]))).toEqual({
      admit: false,
      reason: 'OutOfexample.com/gpu',
      message: "Node didn't have enough resource: example.com/gpu, requested: 3, used: 0, capacity: 2",
    });
    expect(computePodAdmission(pod([c({ 'example.com/gpu': '2' })]), node, [])).toEqual({ admit: true });
    expect(computePodAdmission(pod([c({ 'other.io/fpga': '5' })]), node, [])).toEqual({ admit: true });
    expect(reject(pod([c({ 'hugepages-1Gi': '1Gi' })]))).toMatchObject({ reason: 'OutOfhugepages-1Gi' });
    expect(reject(pod([c({ 'hugepages-2Mi': '2Mi' })]))).toMatchObject({ reason: 'OutOfhugepages-2Mi' });
    expect(isExtendedResourceName('example.com/gpu')).toBe(true);
    expect(isExtendedResourceName('kubernetes.io/batch')).toBe(false);
    expect(isExtendedResourceName('cpu')).toBe(false);
    expect(isExtendedResourceName('requests.example.com/x')).toBe(false);
  });

  it('requests: max(init containers) vs sum(containers) + sidecars + overhead, as the scheduler computes', () => {
    const r = podRequests(
      pod([c({ cpu: '2', memory: '1G' }), c({ cpu: '1', memory: '1G' })], {
        initContainers: [c({ cpu: '2', memory: '1G' }), c({ cpu: '2', memory: '3G' })],
      }),
    );
    expect(r.get('cpu')).toBe(3_000_000_000n); // the KEP example: cpu 3, memory 3G
    expect(r.get('memory')).toBe(3_000_000_000n * 1_000_000_000n);
    // a sidecar runs alongside: it adds to the containers and to every later init container
    const s = podRequests(
      pod([c({ cpu: '1' })], {
        initContainers: [c({ cpu: '500m' }, { restartPolicy: 'Always' }), c({ cpu: '2' })],
        overhead: { cpu: '250m' },
      }),
    );
    // max(1 + 0.5, 2 + 0.5) + 0.25 overhead
    expect(s.get('cpu')).toBe(2_750_000_000n);
    expect(reject(pod([c({ cpu: '1' })], { initContainers: [c({ cpu: '2500m' })] }))).toMatchObject({
      message: "Node didn't have enough resource: cpu, requested: 2500, used: 0, capacity: 2000",
    });
  });

  it('pod-level spec.resources.requests override cpu/memory when set', () => {
    const p = pod([c({ cpu: '100m', memory: '100Mi', 'ephemeral-storage': '1Gi' })], { resources: { requests: { cpu: '3', memory: '1Gi' } } });
    const r = podRequests(p);
    expect(r.get('cpu')).toBe(3_000_000_000n);
    expect(r.get('ephemeral-storage')).toBe(BigInt(1024 ** 3) * 1_000_000_000n);
    expect(reject(p)).toMatchObject({ reason: 'OutOfcpu', message: "Node didn't have enough resource: cpu, requested: 3000, used: 0, capacity: 2000" });
  });

  it('sub-milli CPU rounds up like MilliValue', () => {
    expect(reject(pod([c({ cpu: '2000.5m' })]))).toMatchObject({ message: "Node didn't have enough resource: cpu, requested: 2001, used: 0, capacity: 2000" });
  });
});

describe('node name, affinity, ports, taints (as far as kubelet checks them)', () => {
  it('NodeName', () => {
    expect(reject(pod([c()], { nodeName: 'other' }))).toEqual({ admit: false, reason: 'NodeName', message: "Predicate NodeName failed: node(s) didn't match the requested node name" });
  });

  it('NodeAffinity: nodeSelector', () => {
    expect(computePodAdmission(pod([c()], { nodeSelector: { zone: 'a' } }), node, [])).toEqual({ admit: true });
    expect(reject(pod([c()], { nodeSelector: { zone: 'b' } }))).toEqual({
      admit: false,
      reason: 'NodeAffinity',
      message: "Predicate NodeAffinity failed: node(s) didn't match Pod's node affinity/selector",
    });
  });

  it('NodeAffinity: required terms are ORed, expressions ANDed; all operators; matchFields on metadata.name', () => {
    const aff = (...terms: object[]) => ({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } }) as Partial<AdmissionPod['spec']>;
    const m = (spec: Partial<AdmissionPod['spec']>) => matchesNodeAffinity(pod([c()], spec), node);
    expect(m(aff({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }))).toBe(true);
    expect(m(aff({ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }))).toBe(false);
    expect(m(aff({ matchExpressions: [{ key: 'nope', operator: 'NotIn', values: ['a'] }] }))).toBe(true);
    expect(m(aff({ matchExpressions: [{ key: 'zone', operator: 'Exists' }, { key: 'gpu', operator: 'DoesNotExist' }] }))).toBe(true);
    expect(m(aff({ matchExpressions: [{ key: 'gen', operator: 'Gt', values: ['4'] }] }))).toBe(true);
    expect(m(aff({ matchExpressions: [{ key: 'gen', operator: 'Lt', values: ['5'] }] }))).toBe(false);
    expect(m(aff({ matchExpressions: [{ key: 'zone', operator: 'Gt', values: ['1'] }] }))).toBe(false); // not an integer
    expect(m(aff({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }, { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }))).toBe(true);
    expect(m(aff({ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['n1'] }] }))).toBe(false);
    expect(m(aff({}))).toBe(false); // an empty term matches nothing
    expect(m(aff())).toBe(false); // no terms match nothing
    expect(m({ ...aff({ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }), nodeSelector: { zone: 'b' } })).toBe(false); // both must hold
  });

  it('NodePorts: host ports clash with admitted pods (0.0.0.0 clashes with any IP; protocol defaults to TCP)', () => {
    const hp = (hostPort: number, extra: object = {}) => pod([c({}, { ports: [{ containerPort: 80, hostPort, ...extra }] })]);
    expect(reject(hp(8080), [hp(8080)])).toEqual({ admit: false, reason: 'NodePorts', message: "Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports" });
    expect(hostPortsFit(hp(8080, { protocol: 'UDP' }), [hp(8080)])).toBe(true);
    expect(hostPortsFit(hp(8080, { hostIP: '10.0.0.1' }), [hp(8080, { hostIP: '10.0.0.2' })])).toBe(true);
    expect(hostPortsFit(hp(8080, { hostIP: '10.0.0.1' }), [hp(8080)])).toBe(false);
    expect(hostPortsFit(hp(8080), [hp(8080, { hostIP: '10.0.0.1' })])).toBe(false);
    expect(hostPortsFit(hp(8080), [hp(8081)])).toBe(true);
    // restartable init containers' ports count; plain init containers' do not
    const sidecar = pod([c()], { initContainers: [c({}, { restartPolicy: 'Always', ports: [{ hostPort: 9000 }] })] });
    const init = pod([c()], { initContainers: [c({}, { ports: [{ hostPort: 9000 }] })] });
    expect(hostPortsFit(hp(9000), [sidecar])).toBe(false);
    expect(hostPortsFit(hp(9000), [init])).toBe(true);
  });

  it('TaintToleration: only NoExecute taints, not for static pods', () => {
    const tainted: AdmissionNode = {
      ...node,
      taints: [
        { key: 'dedicated', value: 'db', effect: 'NoSchedule' },
        { key: 'node.kubernetes.io/unreachable', effect: 'NoExecute' },
      ],
    };
    expect(reject(pod([c()]), [], tainted)).toEqual({
      admit: false,
      reason: 'TaintToleration',
      message: "Predicate TaintToleration failed: node(s) had taints that the pod didn't tolerate",
    });
    const tolerating = pod([c()], { tolerations: [{ key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }] });
    expect(computePodAdmission(tolerating, tainted, [])).toEqual({ admit: true }); // NoSchedule is the scheduler's business
    const staticPod = pod([c()], {}, { annotations: { 'kubernetes.io/config.source': 'file' } });
    expect(computePodAdmission(staticPod, tainted, [])).toEqual({ admit: true });
    const apiPod = pod([c()], {}, { annotations: { 'kubernetes.io/config.source': 'apiserver' } });
    expect(reject(apiPod, [], tainted).reason).toBe('TaintToleration');
  });

  it('toleration matching', () => {
    const taint = { key: 'k', value: 'v', effect: 'NoExecute' };
    expect(toleratesTaint({ key: 'k', operator: 'Equal', value: 'v' }, taint)).toBe(true);
    expect(toleratesTaint({ key: 'k', value: 'v', effect: 'NoExecute' }, taint)).toBe(true);
    expect(toleratesTaint({ key: 'k', value: 'w' }, taint)).toBe(false);
    expect(toleratesTaint({ key: 'k', operator: 'Exists', effect: 'NoSchedule' }, taint)).toBe(false);
    expect(toleratesTaint({ operator: 'Exists' }, taint)).toBe(true); // tolerates everything
    expect(toleratesTaint({ key: 'other', operator: 'Exists' }, taint)).toBe(false);
    expect(toleratesTaint({ key: 'k', operator: 'Gt', value: '1' }, taint)).toBe(false);
  });

  it('OS checks come first', () => {
    expect(reject(pod([c({ memory: '1000Gi' })], {}, { labels: { 'kubernetes.io/os': 'windows' } }))).toEqual({
      admit: false,
      reason: 'PodOSSelectorNodeLabelDoesNotMatch',
      message: "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label",
    });
    expect(reject(pod([c()], { os: { name: 'windows' } }))).toEqual({
      admit: false,
      reason: 'PodOSNotSupported',
      message: "Failed to admit pod as the OS field doesn't match node OS",
    });
    expect(computePodAdmission(pod([c()], { os: { name: 'linux' } }, { labels: { 'kubernetes.io/os': 'linux' } }), node, [])).toEqual({ admit: true });
  });

  it('resource failures are reported before affinity and node name', () => {
    expect(reject(pod([c({ memory: '1000Gi' })], { nodeName: 'other', nodeSelector: { zone: 'z' } })).reason).toBe('OutOfmemory');
    expect(reject(pod([c()], { nodeName: 'other', nodeSelector: { zone: 'z' } })).reason).toBe('NodeAffinity');
  });
});
