// kubelet's node-level pod admission (pkg/kubelet/lifecycle/predicate.go):
// before running a pod bound to this node, check it against the node the way
// the scheduler's GeneralPredicates do (scheduler.AdmissionCheck with every
// failure collected, the first one reported):
//
//   1. the pod's kubernetes.io/os label and spec.os against the node's OS;
//   2. resources (noderesources.Fits): pod count, then cpu, memory,
//      ephemeral-storage and scalar resources (extended, hugepages-*), each
//      request against allocatable minus what the admitted pods request;
//   3. node affinity: spec.nodeSelector and requiredDuringScheduling terms;
//   4. spec.nodeName;
//   5. host ports against the admitted pods';
//   6. NoExecute taints the pod does not tolerate (not for static pods).
//
// Requests are computed as the scheduler does (resource.PodRequests): the sum
// of the containers plus restartable init containers (sidecars), or the
// largest init container with the sidecars started before it, whichever is
// larger; pod-level spec.resources.requests for cpu/memory/hugepages when
// set (after the API server's defaulting: limits alone mean requests = limits);
// plus spec.overhead. A rejected pod becomes Failed with the reason and
// "Pod was rejected: <message>" (kubelet's rejectPod).

import { quantityNano, tryParseQuantity } from './quantity.js';
import type { Quantity } from './api-types.js';
import { podLevelResources } from './qos.js';

// ---------------------------------------------------------------- types (the subset of core/v1 read here)

export interface AdmissionContainerPort {
  containerPort?: number;
  hostPort?: number;
  hostIP?: string;
  protocol?: string;
}

export interface AdmissionContainer {
  name?: string;
  restartPolicy?: string;
  resources?: { requests?: Record<string, Quantity>; limits?: Record<string, Quantity> };
  ports?: AdmissionContainerPort[];
}

export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt' | string;
  values?: string[];
}

export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  matchFields?: NodeSelectorRequirement[];
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal' | string;
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

export interface AdmissionTaint {
  key: string;
  value?: string;
  effect: string;
}

export interface AdmissionPod {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    nodeName?: string;
    nodeSelector?: Record<string, string>;
    affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: NodeSelectorTerm[] } } };
    tolerations?: Toleration[];
    containers: AdmissionContainer[];
    initContainers?: AdmissionContainer[];
    overhead?: Record<string, Quantity>;
    resources?: { requests?: Record<string, Quantity>; limits?: Record<string, Quantity> };
    os?: { name?: string };
  };
  status?: { phase?: string };
}

export interface AdmissionNode {
  name: string;
  labels?: Record<string, string>;
  /** status.allocatable */
  allocatable: Record<string, Quantity>;
  /** spec.taints */
  taints?: AdmissionTaint[];
  /** default "linux" */
  operatingSystem?: string;
}

export type AdmitResult = { admit: true } | { admit: false; reason: string; message: string };

// ---------------------------------------------------------------- reasons

export const OUT_OF_CPU = 'OutOfcpu';
export const OUT_OF_MEMORY = 'OutOfmemory';
export const OUT_OF_EPHEMERAL_STORAGE = 'OutOfephemeral-storage';
export const OUT_OF_PODS = 'OutOfpods';
export const INSUFFICIENT_RESOURCE_PREFIX = 'OutOf';
export const POD_OS_SELECTOR_MISMATCH = 'PodOSSelectorNodeLabelDoesNotMatch';
export const POD_OS_NOT_SUPPORTED = 'PodOSNotSupported';

/** scheduler plugin names and their failure texts, as kubelet reports them */
export const PREDICATES = {
  NodeAffinity: "node(s) didn't match Pod's node affinity/selector",
  NodeName: "node(s) didn't match the requested node name",
  NodePorts: "node(s) didn't have free ports for the requested pod ports",
  TaintToleration: "node(s) had taints that the pod didn't tolerate",
} as const;

/** kubelet's rejectPod: the pod's status.message for a rejection. */
export function rejectionMessage(message: string): string {
  return `Pod was rejected: ${message}`;
}

/** The Failed status kubelet writes for a rejected pod (phase, reason, message). */
export function rejectedPodStatus(result: { reason: string; message: string }): { phase: 'Failed'; reason: string; message: string } {
  return { phase: 'Failed', reason: result.reason, message: rejectionMessage(result.message) };
}

// ---------------------------------------------------------------- resource names (v1helper)

export const LABEL_OS = 'kubernetes.io/os';

function isPrefixedNativeResource(name: string): boolean {
  return name.includes('kubernetes.io/');
}
function isNativeResource(name: string): boolean {
  return !name.includes('/') || isPrefixedNativeResource(name);
}
/** IsExtendedResourceName: a domain-qualified name outside kubernetes.io, not "requests.*" */
export function isExtendedResourceName(name: string): boolean {
  if (isNativeResource(name) || name.startsWith('requests.')) return false;
  return /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)\/([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$/.test(name);
}
function isHugePageResourceName(name: string): boolean {
  return name.startsWith('hugepages-');
}
/** IsScalarResourceName: extended, hugepages, prefixed native, attachable volumes */
function isScalarResourceName(name: string): boolean {
  return isExtendedResourceName(name) || isHugePageResourceName(name) || isPrefixedNativeResource(name) || name.startsWith('attachable-volumes-');
}
function isSupportedPodLevelResource(name: string): boolean {
  return name === 'cpu' || name === 'memory' || isHugePageResourceName(name);
}

// ---------------------------------------------------------------- exact quantity arithmetic (nano units)

type ResourceAmounts = Map<string, bigint>;

function nano(q: Quantity | undefined): bigint {
  const p = tryParseQuantity(q);
  return p ? quantityNano(p) : 0n;
}

function toAmounts(list: Record<string, Quantity> | undefined): ResourceAmounts {
  const m: ResourceAmounts = new Map();
  for (const [k, v] of Object.entries(list ?? {})) m.set(k, nano(v));
  return m;
}
function addTo(dst: ResourceAmounts, src: ResourceAmounts): void {
  for (const [k, v] of src) dst.set(k, (dst.get(k) ?? 0n) + v);
}
function maxInto(dst: ResourceAmounts, src: ResourceAmounts): void {
  for (const [k, v] of src) if (!dst.has(k) || v > dst.get(k)!) dst.set(k, v);
}

const NANO = 1_000_000_000n;
const ceilDiv = (a: bigint, b: bigint) => (a >= 0n ? (a + b - 1n) / b : -(-a / b));

/** Quantity.MilliValue / Value of a nano amount */
const milliOf = (n: bigint) => ceilDiv(n, 1_000_000n);
const valueOf = (n: bigint) => ceilDiv(n, NANO);

/**
 * resource.PodRequests(pod, {}) — the pod's effective requests as quantities
 * (nano units), with `dropMissing` removing extended resources the node does
 * not advertise (removeMissingExtendedResources; container requests only).
 */
export function podRequests(pod: AdmissionPod, dropMissing?: (name: string) => boolean): ResourceAmounts {
  const containerReqs = (c: AdmissionContainer): ResourceAmounts => {
    const m = toAmounts(c.resources?.requests);
    if (dropMissing) for (const k of [...m.keys()]) if (isExtendedResourceName(k) && dropMissing(k)) m.delete(k);
    return m;
  };
  const result: ResourceAmounts = new Map();
  for (const c of pod.spec.containers ?? []) addTo(result, containerReqs(c));
  const sidecars: ResourceAmounts = new Map();
  const initMax: ResourceAmounts = new Map();
  for (const c of pod.spec.initContainers ?? []) {
    const r = containerReqs(c);
    if (c.restartPolicy === 'Always') {
      addTo(result, r);
      addTo(sidecars, r);
      maxInto(initMax, sidecars);
    } else {
      const combined: ResourceAmounts = new Map();
      addTo(combined, r);
      addTo(combined, sidecars);
      maxInto(initMax, combined);
    }
  }
  maxInto(result, initMax);
  // spec.resources as the API server stores it (SetDefaults_Pod: pod-level limits alone default the requests)
  const podLevel = podLevelResources(pod)?.requests;
  if (podLevel && Object.keys(podLevel).some(isSupportedPodLevelResource)) {
    for (const [k, v] of toAmounts(podLevel as Record<string, Quantity>)) if (isSupportedPodLevelResource(k)) result.set(k, v);
  }
  if (pod.spec.overhead) addTo(result, toAmounts(pod.spec.overhead));
  return result;
}

/** framework.Resource: cpu in millicores, everything else in Value() units. */
interface SchedResource {
  milliCPU: bigint;
  memory: bigint;
  ephemeralStorage: bigint;
  allowedPods: bigint;
  scalar: Map<string, bigint>;
}

function toSchedResource(amounts: ResourceAmounts): SchedResource {
  const r: SchedResource = { milliCPU: 0n, memory: 0n, ephemeralStorage: 0n, allowedPods: 0n, scalar: new Map() };
  for (const [k, v] of amounts) {
    if (k === 'cpu') r.milliCPU = milliOf(v);
    else if (k === 'memory') r.memory = valueOf(v);
    else if (k === 'ephemeral-storage') r.ephemeralStorage = valueOf(v);
    else if (k === 'pods') r.allowedPods = valueOf(v);
    else if (isScalarResourceName(k)) r.scalar.set(k, valueOf(v));
  }
  return r;
}

function addSched(dst: SchedResource, src: SchedResource): void {
  dst.milliCPU += src.milliCPU;
  dst.memory += src.memory;
  dst.ephemeralStorage += src.ephemeralStorage;
  for (const [k, v] of src.scalar) dst.scalar.set(k, (dst.scalar.get(k) ?? 0n) + v);
}

export interface InsufficientResource {
  resourceName: string;
  requested: bigint;
  used: bigint;
  capacity: bigint;
}

function isTerminal(p: AdmissionPod): boolean {
  return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed';
}

/** noderesources.Fits: every insufficient resource, in the scheduler's order. */
export function insufficientResources(pod: AdmissionPod, node: AdmissionNode, admitted: AdmissionPod[]): InsufficientResource[] {
  const allocatable = toSchedResource(toAmounts(node.allocatable));
  const others = admitted.filter((p) => !isTerminal(p));
  const requested: SchedResource = { milliCPU: 0n, memory: 0n, ephemeralStorage: 0n, allowedPods: 0n, scalar: new Map() };
  for (const p of others) addSched(requested, toSchedResource(podRequests(p)));
  const missing = (name: string) => !(name in node.allocatable);
  const req = toSchedResource(podRequests(pod, missing));

  const out: InsufficientResource[] = [];
  const podCount = BigInt(others.length);
  if (podCount + 1n > allocatable.allowedPods) {
    out.push({ resourceName: 'pods', requested: 1n, used: podCount, capacity: allocatable.allowedPods });
  }
  if (req.milliCPU === 0n && req.memory === 0n && req.ephemeralStorage === 0n && req.scalar.size === 0) return out;
  if (req.milliCPU > 0n && req.milliCPU > allocatable.milliCPU - requested.milliCPU) {
    out.push({ resourceName: 'cpu', requested: req.milliCPU, used: requested.milliCPU, capacity: allocatable.milliCPU });
  }
  if (req.memory > 0n && req.memory > allocatable.memory - requested.memory) {
    out.push({ resourceName: 'memory', requested: req.memory, used: requested.memory, capacity: allocatable.memory });
  }
  if (req.ephemeralStorage > 0n && req.ephemeralStorage > allocatable.ephemeralStorage - requested.ephemeralStorage) {
    out.push({ resourceName: 'ephemeral-storage', requested: req.ephemeralStorage, used: requested.ephemeralStorage, capacity: allocatable.ephemeralStorage });
  }
  for (const name of [...req.scalar.keys()].sort()) {
    const q = req.scalar.get(name)!;
    if (q === 0n) continue;
    const cap = allocatable.scalar.get(name) ?? 0n;
    const used = requested.scalar.get(name) ?? 0n;
    if (q > cap - used) out.push({ resourceName: name, requested: q, used, capacity: cap });
  }
  return out;
}

/** InsufficientResourceError.Error() */
export function insufficientResourceMessage(r: InsufficientResource): string {
  return `Node didn't have enough resource: ${r.resourceName}, requested: ${r.requested}, used: ${r.used}, capacity: ${r.capacity}`;
}

function insufficientResourceReason(name: string): string {
  switch (name) {
    case 'cpu':
      return OUT_OF_CPU;
    case 'memory':
      return OUT_OF_MEMORY;
    case 'ephemeral-storage':
      return OUT_OF_EPHEMERAL_STORAGE;
    case 'pods':
      return OUT_OF_PODS;
    default:
      return `${INSUFFICIENT_RESOURCE_PREFIX}${name}`;
  }
}

// ---------------------------------------------------------------- node affinity (component-helpers nodeaffinity)

function matchRequirement(req: NodeSelectorRequirement, value: string | undefined): boolean {
  const values = req.values ?? [];
  switch (req.operator) {
    case 'In':
      return value !== undefined && values.includes(value);
    case 'NotIn':
      return value === undefined || !values.includes(value);
    case 'Exists':
      return value !== undefined;
    case 'DoesNotExist':
      return value === undefined;
    case 'Gt':
    case 'Lt': {
      if (value === undefined || values.length !== 1) return false;
      if (!/^-?\d+$/.test(value) || !/^-?\d+$/.test(values[0]!)) return false;
      const l = BigInt(value);
      const r = BigInt(values[0]!);
      return req.operator === 'Gt' ? l > r : l < r;
    }
    default:
      return false; // an invalid selector matches nothing
  }
}

function matchTerm(term: NodeSelectorTerm, labels: Record<string, string>, nodeName: string): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false; // an empty term matches no objects
  for (const r of exprs) if (!matchRequirement(r, Object.prototype.hasOwnProperty.call(labels, r.key) ? labels[r.key] : undefined)) return false;
  for (const f of fields) {
    if (f.key !== 'metadata.name' || (f.operator !== 'In' && f.operator !== 'NotIn')) return false;
    if (!matchRequirement(f, nodeName)) return false;
  }
  return true;
}

/** GetRequiredNodeAffinity(pod).Match(node): nodeSelector and the required terms (ORed). */
export function matchesNodeAffinity(pod: AdmissionPod, node: AdmissionNode): boolean {
  const labels = node.labels ?? {};
  for (const [k, v] of Object.entries(pod.spec.nodeSelector ?? {})) if (labels[k] !== v) return false;
  const required = pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required) {
    const terms = required.nodeSelectorTerms ?? [];
    if (!terms.some((t) => matchTerm(t, labels, node.name))) return false;
  }
  return true;
}

// ---------------------------------------------------------------- host ports (HostPortInfo)

function hostPorts(pod: AdmissionPod): AdmissionContainerPort[] {
  const out: AdmissionContainerPort[] = [];
  for (const c of pod.spec.initContainers ?? []) if (c.restartPolicy === 'Always') for (const p of c.ports ?? []) if ((p.hostPort ?? 0) > 0) out.push(p);
  for (const c of pod.spec.containers ?? []) for (const p of c.ports ?? []) if ((p.hostPort ?? 0) > 0) out.push(p);
  return out;
}

const ALL_IPS = '0.0.0.0';

/** nodeports.Fits: no requested host port clashes with an admitted pod's. */
export function hostPortsFit(pod: AdmissionPod, admitted: AdmissionPod[]): boolean {
  const used = new Set<string>();
  const usedAny = new Set<string>(); // proto/port on some IP
  for (const p of admitted.filter((x) => !isTerminal(x))) {
    for (const port of hostPorts(p)) {
      const ip = port.hostIP || ALL_IPS;
      const pp = `${port.protocol || 'TCP'}/${port.hostPort}`;
      used.add(`${ip} ${pp}`);
      usedAny.add(pp);
    }
  }
  for (const port of hostPorts(pod)) {
    const ip = port.hostIP || ALL_IPS;
    const pp = `${port.protocol || 'TCP'}/${port.hostPort}`;
    if (ip === ALL_IPS ? usedAny.has(pp) : used.has(`${ip} ${pp}`) || used.has(`${ALL_IPS} ${pp}`)) return false;
  }
  return true;
}

// ---------------------------------------------------------------- taints

/** ToleratesTaint (without the alpha Gt/Lt comparison operators). */
export function toleratesTaint(t: Toleration, taint: AdmissionTaint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key !== undefined && t.key !== '' && t.key !== taint.key) return false;
  switch (t.operator ?? 'Equal') {
    case 'Exists':
      return true;
    case 'Equal':
    case '':
      return (t.value ?? '') === (taint.value ?? '');
    default:
      return false;
  }
}

/** FindMatchingUntoleratedTaint for NoExecute taints (all kubelet cares about). */
export function untoleratedNoExecuteTaint(pod: AdmissionPod, node: AdmissionNode): AdmissionTaint | undefined {
  for (const taint of node.taints ?? []) {
    if (taint.effect !== 'NoExecute') continue;
    if (!(pod.spec.tolerations ?? []).some((t) => toleratesTaint(t, taint))) return taint;
  }
  return undefined;
}

/** types.IsStaticPod: the config source annotation says the pod did not come from the API server. */
export function isStaticPod(pod: AdmissionPod): boolean {
  // kubelet: any source but the API server ('apiserver' here; 'api' is nodelet's local socket API, whose pods no scheduler placed)
  const src = pod.metadata?.annotations?.['kubernetes.io/config.source'];
  return src !== undefined && src !== 'apiserver';
}

// ---------------------------------------------------------------- admit

/**
 * predicateAdmitHandler.Admit. `admitted` are the pods already admitted on
 * this node (terminal ones are ignored). Returns the first failure only.
 */
export function computePodAdmission(pod: AdmissionPod, node: AdmissionNode, admitted: AdmissionPod[]): AdmitResult {
  const nodeOS = node.operatingSystem ?? 'linux';
  // the checks preemption cannot help with come first
  // kubelet treats a node whose kubernetes.io/os label is missing or wrong as its own OS
  const podLabelOS = pod.metadata?.labels?.[LABEL_OS];
  if (podLabelOS !== undefined && podLabelOS !== nodeOS) {
    return { admit: false, reason: POD_OS_SELECTOR_MISMATCH, message: "Failed to admit pod as the `kubernetes.io/os` label doesn't match node label" };
  }
  if (pod.spec.os?.name !== undefined && pod.spec.os.name !== nodeOS) {
    return { admit: false, reason: POD_OS_NOT_SUPPORTED, message: "Failed to admit pod as the OS field doesn't match node OS" };
  }

  const failures: { reason: string; message: string }[] = [];
  for (const r of insufficientResources(pod, node, admitted)) {
    failures.push({ reason: insufficientResourceReason(r.resourceName), message: insufficientResourceMessage(r) });
  }
  const predicate = (name: keyof typeof PREDICATES) => ({ reason: name, message: `Predicate ${name} failed: ${PREDICATES[name]}` });
  if (!matchesNodeAffinity(pod, node)) failures.push(predicate('NodeAffinity'));
  if (pod.spec.nodeName && pod.spec.nodeName !== node.name) failures.push(predicate('NodeName'));
  if (!hostPortsFit(pod, admitted)) failures.push(predicate('NodePorts'));
  if (!isStaticPod(pod) && untoleratedNoExecuteTaint(pod, node)) failures.push(predicate('TaintToleration'));

  const first = failures[0];
  return first ? { admit: false, ...first } : { admit: true };
}
