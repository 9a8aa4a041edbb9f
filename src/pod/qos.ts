// Pod QoS class (kubelet pkg/apis/core/v1/helper/qos GetPodQOS) and the
// pod-level resources kubelet derives from its containers and from
// spec.resources (component-helpers resource.PodRequests/PodLimits,
// cm.ResourceConfigForPod, kuberuntime getCPULimit/getMemoryLimit), as v1.36
// applies them with PodLevelResources (beta, on by default).

import type { QosClass } from '../runtime/types.js';
import type { Container, Pod, Quantity, ResourceList } from './api-types.js';
import { tryParseQuantity, quantityMilli, quantityNano, quantityValue } from './quantity.js';
import type { PodSandboxConfig } from '../runtime/types.js';

type Res = 'cpu' | 'memory';
const RES: Res[] = ['cpu', 'memory'];

/** cpu in millicores, memory in bytes; undefined when absent or zero-invalid. */
export function resourceValue(list: ResourceList | undefined, r: Res): number | undefined {
  const q = list?.[r];
  if (q === undefined) return undefined;
  const p = tryParseQuantity(q);
  if (!p) return undefined;
  return r === 'cpu' ? quantityMilli(p) : quantityValue(p);
}

/** Container requests with kubelet's defaulting (request = limit when only the limit is set). */
export function containerRequests(c: Container): Partial<Record<Res, number>> {
  const out: Partial<Record<Res, number>> = {};
  for (const r of RES) {
    const v = resourceValue(c.resources?.requests, r) ?? resourceValue(c.resources?.limits, r);
    if (v !== undefined) out[r] = v;
  }
  return out;
}

export function containerLimits(c: Container): Partial<Record<Res, number>> {
  const out: Partial<Record<Res, number>> = {};
  for (const r of RES) {
    const v = resourceValue(c.resources?.limits, r);
    if (v !== undefined) out[r] = v;
  }
  return out;
}

// ---------------------------------------------------------------- quantities as the API server holds and prints them

/** resource.Format: the suffix family a quantity was written in, which String() keeps. */
export type QuantityFormat = 'BinarySI' | 'DecimalSI' | 'DecimalExponent';

/** A quantity at nano precision (as ParseQuantity rounds it, up) with its format. */
export interface Amount {
  nano: bigint;
  format: QuantityFormat;
}

const NANO = 1_000_000_000n;
const DEC_SUFFIX: Record<number, string> = { [-9]: 'n', [-6]: 'u', [-3]: 'm', 0: '', 3: 'k', 6: 'M', 9: 'G', 12: 'T', 15: 'P', 18: 'E' };
const BIN_SUFFIX = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

export function toAmount(q: Quantity | undefined | null): Amount | undefined {
  const p = tryParseQuantity(q);
  if (!p) return undefined;
  const format: QuantityFormat = /(Ki|Mi|Gi|Ti|Pi|Ei)$/.test(p.text) ? 'BinarySI' : /[eE][+-]?\d+$/.test(p.text) ? 'DecimalExponent' : 'DecimalSI';
  return { nano: quantityNano(p), format };
}

/** Quantity.String() (CanonicalizeBytes): "0.5" → "500m", "1024Mi" → "1Gi", a binary value below 1Ki or fractional in decimal. */
export function formatQuantity(a: Amount): string {
  if (a.nano === 0n) return '0';
  const neg = a.nano < 0n;
  const n = neg ? -a.nano : a.nano;
  let format = a.format;
  if (format === 'BinarySI' && (n < 1024n * NANO || n % NANO !== 0n)) format = 'DecimalSI';
  let s: string;
  if (format === 'BinarySI') {
    let v = n / NANO;
    let k = 0;
    while (v % 1024n === 0n && k < BIN_SUFFIX.length - 1) {
      v /= 1024n;
      k++;
    }
    s = `${v}${BIN_SUFFIX[k]}`;
  } else {
    let m = n;
    let e = -9;
    while (m % 10n === 0n) {
      m /= 10n;
      e++;
    }
    const r = ((e % 3) + 3) % 3; // down to a multiple of 3, as AsCanonicalBytes does
    m *= 10n ** BigInt(r);
    e -= r;
    s = format === 'DecimalExponent' ? (e === 0 ? `${m}` : `${m}e${e}`) : `${m}${DEC_SUFFIX[e] ?? ''}`;
  }
  return neg ? `-${s}` : s;
}

/** The canonical text of a quantity (its String()); the input as given when it does not parse. */
export function canonicalQuantity(q: Quantity): string {
  const a = toAmount(q);
  return a ? formatQuantity(a) : String(q);
}

const milliOf = (a: Amount): number => Number((a.nano + 999_999n) / 1_000_000n); // MilliValue, rounded up
const valueOf = (a: Amount): number => Number((a.nano + NANO - 1n) / NANO); // Value, rounded up

type Amounts = Map<string, Amount>;

function amounts(list: ResourceList | undefined): Amounts {
  const m: Amounts = new Map();
  for (const [k, v] of Object.entries(list ?? {})) {
    const a = toAmount(v);
    if (a) m.set(k, a);
  }
  return m;
}

/** addResourceList: the sum keeps the format of the first non-zero addend (Quantity.Add). */
function addTo(dst: Amounts, src: Amounts): void {
  for (const [k, v] of src) {
    const d = dst.get(k);
    dst.set(k, d ? { nano: d.nano + v.nano, format: d.nano === 0n ? v.format : d.format } : { ...v });
  }
}
function maxInto(dst: Amounts, src: Amounts): void {
  for (const [k, v] of src) {
    const d = dst.get(k);
    if (!d || v.nano > d.nano) dst.set(k, { ...v });
  }
}

// ---------------------------------------------------------------- pod-level resources (spec.resources)

/** What these helpers read of a pod: the Pod type, and admission's subset of it. */
export interface ResourcesContainerLike {
  restartPolicy?: string;
  resources?: { requests?: ResourceList; limits?: ResourceList };
}
export interface ResourcesPodLike {
  spec: { containers?: ResourcesContainerLike[]; initContainers?: ResourcesContainerLike[]; resources?: { requests?: ResourceList; limits?: ResourceList } | null };
}

/** resourcehelper.IsSupportedPodLevelResource: cpu, memory, hugepages-*. */
export function isSupportedPodLevelResource(name: string): boolean {
  return name === 'cpu' || name === 'memory' || name.startsWith('hugepages-');
}
const isHugePages = (name: string) => name.startsWith('hugepages-');
/** v1helper.IsOvercommitAllowed: native resources (unprefixed or *kubernetes.io/) except hugepages. */
export function isOvercommitAllowed(name: string): boolean {
  return (!name.includes('/') || name.includes('kubernetes.io/')) && !isHugePages(name);
}

/** A container's requests after SetDefaults_Pod (a limit without a request becomes the request). */
function defaultedRequests(c: ResourcesContainerLike): Amounts {
  const m = amounts(c.resources?.limits);
  for (const [k, v] of amounts(c.resources?.requests)) m.set(k, v);
  return m;
}
const rawLimits = (c: ResourcesContainerLike): Amounts => amounts(c.resources?.limits);

/**
 * resourcehelper.AggregateContainerRequests / AggregateContainerLimits: the sum over app containers and
 * sidecars, raised to what any init container needs with the sidecars started before it. `each` sees what
 * kubelet's ContainerFn sees: each app container's own list, a sidecar's running sidecar sum, an init
 * container's own plus the sidecars'.
 */
export function aggregateContainerResources(pod: ResourcesPodLike, pick: 'requests' | 'limits', each?: (list: Amounts) => void): Amounts {
  const get = pick === 'requests' ? defaultedRequests : rawLimits;
  const out: Amounts = new Map();
  for (const c of pod.spec.containers ?? []) {
    const r = get(c);
    each?.(r);
    addTo(out, r);
  }
  const sidecars: Amounts = new Map();
  const initMax: Amounts = new Map();
  for (const c of pod.spec.initContainers ?? []) {
    const r = get(c);
    let use: Amounts;
    if (c.restartPolicy === 'Always') {
      addTo(out, r);
      addTo(sidecars, r);
      use = new Map([...sidecars].map(([k, v]) => [k, { ...v }]));
    } else {
      use = new Map();
      addTo(use, r);
      addTo(use, sidecars);
    }
    each?.(use);
    maxInto(initMax, use);
  }
  maxInto(out, initMax);
  return out;
}

export interface PodLevelResources {
  requests: ResourceList;
  limits: ResourceList;
}

/**
 * spec.resources as the API server stores it: SetDefaults_Pod's defaultHugePagePodLimits (a hugepages
 * limit the containers have and the pod level lacks, unless requested there) then defaultPodRequests
 * (with pod-level limits, a missing cpu/memory request is the containers' aggregate request where they
 * request it, else the pod-level limit; so limits alone mean requests = limits). Idempotent: a pod already
 * defaulted (from an API server) comes back unchanged. undefined when spec.resources is unset (null or
 * absent); `{}` is set, as a non-nil pointer is for kubelet.
 */
export function podLevelResources(pod: ResourcesPodLike): PodLevelResources | undefined {
  const r = pod.spec?.resources;
  if (typeof r !== 'object' || r === null || Array.isArray(r)) return undefined;
  const asList = (x: unknown): ResourceList => (typeof x === 'object' && x !== null && !Array.isArray(x) ? { ...(x as ResourceList) } : {});
  const requests = asList(r.requests);
  const limits = asList(r.limits);
  if (Object.keys(limits).length > 0 || Object.keys(requests).length > 0) {
    for (const [k, a] of aggregateContainerResources(pod, 'limits'))
      if (isHugePages(k) && !(k in requests) && !(k in limits)) limits[k] = formatQuantity(a);
  }
  if (Object.keys(limits).length > 0) {
    for (const [k, a] of aggregateContainerResources(pod, 'requests'))
      if (!(k in requests) && isSupportedPodLevelResource(k) && isOvercommitAllowed(k)) requests[k] = formatQuantity(a);
    for (const [k, v] of Object.entries(limits)) if (!(k in requests) && isSupportedPodLevelResource(k)) requests[k] = v;
  }
  return { requests, limits };
}

const hasSupported = (list: ResourceList) => Object.keys(list).some(isSupportedPodLevelResource);
/** resourcehelper.IsPodLevelResourcesSet / IsPodLevelRequestsSet / IsPodLevelLimitsSet. */
export const podLevelResourcesSet = (pl: PodLevelResources | undefined): pl is PodLevelResources => !!pl && (hasSupported(pl.requests) || hasSupported(pl.limits));
export const podLevelRequestsSet = (pl: PodLevelResources | undefined): pl is PodLevelResources => !!pl && hasSupported(pl.requests);
export const podLevelLimitsSet = (pl: PodLevelResources | undefined): pl is PodLevelResources => !!pl && hasSupported(pl.limits);

// ---------------------------------------------------------------- QoS

/**
 * ComputePodQOS. With spec.resources set (any object, even `{}`), only the pod-level requests and limits
 * count: Guaranteed needs cpu and memory limits there equal to the (defaulted) requests; nothing there is
 * BestEffort whatever the containers say. Otherwise every container, init containers included.
 */
export function getPodQOS(pod: Pod): QosClass {
  const requests: Partial<Record<Res, number>> = {};
  const limits: Partial<Record<Res, number>> = {};
  let guaranteed = true;
  const pl = podLevelResources(pod);
  if (pl) {
    for (const r of RES) {
      const req = resourceValue(pl.requests, r);
      if (req !== undefined && req > 0) requests[r] = req;
    }
    if (Object.keys(pl.limits).length > 0) {
      for (const r of RES) {
        const lim = resourceValue(pl.limits, r);
        if (lim !== undefined && lim > 0) limits[r] = lim;
      }
      if (!limits.cpu || !limits.memory) guaranteed = false;
    }
  } else {
    const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
    for (const c of all) {
      for (const r of RES) {
        const req = containerRequests(c)[r];
        if (req && req > 0) requests[r] = (requests[r] ?? 0) + req;
        const lim = containerLimits(c)[r];
        if (lim && lim > 0) limits[r] = (limits[r] ?? 0) + lim;
      }
      const l = containerLimits(c);
      if (!(l.cpu && l.cpu > 0) || !(l.memory && l.memory > 0)) guaranteed = false;
    }
  }
  if (Object.keys(requests).length === 0 && Object.keys(limits).length === 0) return 'BestEffort';
  if (guaranteed && RES.every((r) => requests[r] === limits[r])) return 'Guaranteed';
  return 'Burstable';
}

// ---------------------------------------------------------------- the pod cgroup

/**
 * cm.ResourceConfigForPod for the runtime's PodSandboxConfig (overhead aside: nodelet ignores
 * spec.overhead). Requests are resource.PodRequests (the containers' aggregate, pod-level requests
 * replacing it per resource when set); limits resource.PodLimits (pod-level limits replacing the
 * aggregate). A Burstable pod gets a cpu or memory limit only when every container the aggregate visits
 * declares one (an init container with the sidecars before it; a sidecar with those before it) or the
 * pod level sets it; Guaranteed always; BestEffort none (the minimum cpu weight).
 */
export function podResources(pod: Pod): PodSandboxConfig['resources'] {
  const qos = getPodQOS(pod);
  if (qos === 'BestEffort') return {};
  const pl = podLevelResources(pod);
  const reqs = aggregateContainerResources(pod, 'requests');
  if (podLevelRequestsSet(pl)) for (const [k, a] of amounts(pl.requests)) if (isSupportedPodLevelResource(k)) reqs.set(k, a);
  let cpuDeclared = true;
  let memDeclared = true;
  const limits = aggregateContainerResources(pod, 'limits', (l) => {
    if (!(l.get('cpu')?.nano ?? 0n)) cpuDeclared = false;
    if (!(l.get('memory')?.nano ?? 0n)) memDeclared = false;
  });
  if (podLevelResourcesSet(pl)) {
    for (const [k, a] of amounts(pl.limits)) if (isSupportedPodLevelResource(k)) limits.set(k, a);
    if (toAmount(pl.limits.cpu)?.nano) cpuDeclared = true;
    if (toAmount(pl.limits.memory)?.nano) memDeclared = true;
  }
  const out: PodSandboxConfig['resources'] = {};
  const cpuReq = reqs.get('cpu');
  const memReq = reqs.get('memory');
  const cpuLim = limits.get('cpu');
  const memLim = limits.get('memory');
  if (cpuReq && cpuReq.nano > 0n) out.cpuRequestMilli = milliOf(cpuReq);
  if (memReq && memReq.nano > 0n) out.memoryRequestBytes = valueOf(memReq);
  if ((qos === 'Guaranteed' || cpuDeclared) && cpuLim && cpuLim.nano > 0n) out.cpuLimitMilli = milliOf(cpuLim);
  if ((qos === 'Guaranteed' || memDeclared) && memLim && memLim.nano > 0n) out.memoryLimitBytes = valueOf(memLim);
  return out;
}

// ---------------------------------------------------------------- containers under pod-level limits

/**
 * kuberuntime getCPULimit / getMemoryLimit: with pod-level resources set, a container without its own
 * (non-zero) cpu or memory limit gets the pod-level one in its own cgroup (a cpu.max quota, a memory
 * limit), and with no cpu request its cpu weight follows that limit. Without, its own limits.
 */
export function effectiveContainerLimits(pod: Pod, c: Container): Partial<Record<Res, number>> {
  const own = containerLimits(c);
  const pl = podLevelResources(pod);
  if (!podLevelResourcesSet(pl)) return own;
  for (const r of RES) {
    if (own[r]) continue;
    const v = resourceValue(pl.limits, r);
    if (v) own[r] = v;
    else delete own[r];
  }
  return own;
}

/**
 * kubelet's defaultPodLimitsForDownwardAPI, for env resourceFieldRef (not downwardAPI volumes, which keep
 * the node's allocatable): a limit a container lacks reads the pod-level limit when the pod sets one,
 * else the node's allocatable.
 */
export function downwardAPIAllocatable(pod: Pod, alloc: { cpuMilli: number; memoryBytes: number } | undefined): { cpuMilli: number; memoryBytes: number } | undefined {
  const pl = podLevelResources(pod);
  if (!podLevelLimitsSet(pl)) return alloc;
  const cpu = resourceValue(pl.limits, 'cpu');
  const mem = resourceValue(pl.limits, 'memory');
  if (alloc) return { cpuMilli: cpu || alloc.cpuMilli, memoryBytes: mem || alloc.memoryBytes };
  return cpu && mem ? { cpuMilli: cpu, memoryBytes: mem } : undefined;
}

/**
 * kubelet qos remainingPodMemReqPerContainer (GetContainerOOMScoreAdjust with pod-level requests): the
 * pod-level memory request the containers do not request themselves, split evenly (integer division)
 * over every container and init container; kubelet adds it to each container's request, and to the
 * sidecar rule's smallest regular request, before the Burstable formula. 0 without a pod-level request.
 */
export function podLevelMemoryRequestPerContainer(pod: Pod): number {
  const pl = podLevelResources(pod);
  if (!podLevelRequestsSet(pl)) return 0;
  const podMem = toAmount(pl.requests.memory);
  if (!podMem || podMem.nano === 0n) return 0;
  const n = pod.spec.containers.length + (pod.spec.initContainers ?? []).length;
  const agg = aggregateContainerResources(pod, 'requests').get('memory');
  const remaining = valueOf(podMem) - (agg ? valueOf(agg) : 0);
  return n > 0 ? Math.trunc(remaining / n) : 0;
}
