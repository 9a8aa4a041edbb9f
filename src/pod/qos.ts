// Pod QoS class (kubelet pkg/apis/core/v1/helper/qos GetPodQOS) and the
// pod-level resources kubelet derives from its containers
// (resourcehelper.PodRequests/PodLimits, cm.ResourceConfigForPod).

import type { QosClass } from '../runtime/types.js';
import type { Container, Pod, ResourceList } from './api-types.js';
import { isSidecar } from './api-types.js';
import { tryParseQuantity, quantityMilli, quantityValue } from './quantity.js';
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

export function getPodQOS(pod: Pod): QosClass {
  const requests: Partial<Record<Res, number>> = {};
  const limits: Partial<Record<Res, number>> = {};
  let guaranteed = true;
  const all = [...(pod.spec.initContainers ?? []), ...pod.spec.containers];
  for (const c of all) {
    for (const r of RES) {
      const req = containerRequests(c)[r];
      if (req) requests[r] = (requests[r] ?? 0) + req;
      const lim = containerLimits(c)[r];
      if (lim) limits[r] = (limits[r] ?? 0) + lim;
    }
    const l = containerLimits(c);
    if (!l.cpu || !l.memory) guaranteed = false;
  }
  if (Object.keys(requests).length === 0 && Object.keys(limits).length === 0) return 'BestEffort';
  if (guaranteed && RES.every((r) => requests[r] === limits[r])) return 'Guaranteed';
  return 'Burstable';
}

/**
 * Pod totals by kubelet's rule: sum of app containers and sidecars, but at
 * least what any init container needs (an init container runs with the
 * sidecars started before it). `pick` returns a container's value or
 * undefined when it has none.
 */
function podTotal(pod: Pod, pick: (c: Container) => number | undefined): { total: number; allSet: boolean } {
  let sum = 0;
  let allSet = true;
  let sidecars = 0;
  let initMax = 0;
  for (const c of pod.spec.initContainers ?? []) {
    const v = pick(c);
    if (isSidecar(c)) {
      if (v === undefined) allSet = false;
      sidecars += v ?? 0;
      sum += v ?? 0;
      initMax = Math.max(initMax, sidecars);
    } else {
      initMax = Math.max(initMax, (v ?? 0) + sidecars);
    }
  }
  for (const c of pod.spec.containers) {
    const v = pick(c);
    if (v === undefined) allSet = false;
    sum += v ?? 0;
  }
  return { total: Math.max(sum, initMax), allSet };
}

/**
 * Pod-level resources for the runtime's PodSandboxConfig: a limit exists only
 * when every app container (and sidecar) declares one, as kubelet sets the pod
 * cgroup's limit only then.
 */
export function podResources(pod: Pod): PodSandboxConfig['resources'] {
  const out: PodSandboxConfig['resources'] = {};
  const cpuL = podTotal(pod, (c) => containerLimits(c).cpu);
  const memL = podTotal(pod, (c) => containerLimits(c).memory);
  if (cpuL.allSet && cpuL.total > 0) out.cpuLimitMilli = cpuL.total;
  if (memL.allSet && memL.total > 0) out.memoryLimitBytes = memL.total;
  const cpuR = podTotal(pod, (c) => containerRequests(c).cpu);
  const memR = podTotal(pod, (c) => containerRequests(c).memory);
  if (cpuR.total > 0) out.cpuRequestMilli = cpuR.total;
  if (memR.total > 0) out.memoryRequestBytes = memR.total;
  return out;
}
