// kubelet's resource formulas, as pure functions (pkg/kubelet/cm/helpers_linux.go,
// pkg/apis/core/v1/helper/qos/qos.go, pkg/kubelet/qos/policy.go).

import type { QosClass } from '../cri/types.js';

export const MIN_SHARES = 2;
export const MAX_SHARES = 262144;
export const SHARES_PER_CPU = 1024;
export const MILLI_PER_CPU = 1000;
export const QUOTA_PERIOD_US = 100_000;
export const MIN_QUOTA_US = 1000;

/** MilliCPUToShares: 1024 shares per core, at least 2 (also for "no request"), at most 262144. */
export function cpuSharesFromMilli(milli: number | undefined): number {
  if (milli === undefined || !(milli > 0)) return MIN_SHARES;
  const shares = Math.floor((milli * SHARES_PER_CPU) / MILLI_PER_CPU);
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, shares));
}

/**
 * cgroup v2 cpu.weight for a CPU request. Same mapping kubelet
 * (CpuSharesToCpuWeight) and runc (ConvertCPUSharesToCgroupV2Value, linear
 * version) use: weight = 1 + ((shares - 2) * 9999) / 262142 in integer
 * arithmetic, computed straight from the request, so shares 2 → 1 and
 * 262144 → 10000 (1 CPU → 39).
 */
export function cpuWeightFromMilli(milli: number | undefined): number {
  const shares = cpuSharesFromMilli(milli);
  return 1 + Math.floor(((shares - MIN_SHARES) * 9999) / (MAX_SHARES - MIN_SHARES));
}

/** MilliCPUToQuota: quota for `milli` per period (default 100ms), at least 1000us; 0 milli → 0 (no quota). */
export function cpuQuotaFromMilli(milli: number, periodUs: number = QUOTA_PERIOD_US): number {
  if (!(milli > 0)) return 0;
  const quota = Math.floor((milli * periodUs) / MILLI_PER_CPU);
  return Math.max(MIN_QUOTA_US, quota);
}

export const GUARANTEED_OOM_SCORE_ADJ = -997;
export const BESTEFFORT_OOM_SCORE_ADJ = 1000;

/**
 * GetContainerOOMScoreAdjust: Guaranteed -997, BestEffort 1000, Burstable
 * 1000 - 1000*request/capacity, kept within [1000 + -997 = 3, 999] so a
 * burstable container always dies after BestEffort and before Guaranteed.
 */
export function oomScoreAdj(qos: QosClass, memoryRequestBytes: number | undefined, memoryCapacityBytes: number): number {
  if (qos === 'Guaranteed') return GUARANTEED_OOM_SCORE_ADJ;
  if (qos === 'BestEffort') return BESTEFFORT_OOM_SCORE_ADJ;
  const request = memoryRequestBytes !== undefined && memoryRequestBytes > 0 ? memoryRequestBytes : 0;
  const capacity = memoryCapacityBytes > 0 ? memoryCapacityBytes : 1;
  const adj = 1000 - Math.floor((1000 * request) / capacity); // Go: int64 division of the product, then the subtraction
  if (adj < 1000 + GUARANTEED_OOM_SCORE_ADJ) return 1000 + GUARANTEED_OOM_SCORE_ADJ;
  if (adj >= BESTEFFORT_OOM_SCORE_ADJ) return BESTEFFORT_OOM_SCORE_ADJ - 1;
  return adj;
}

export interface QosContainerResources {
  requests: { cpu?: number; memory?: number };
  limits: { cpu?: number; memory?: number };
}

/**
 * GetPodQOS over every container (init containers included by the caller).
 * A request left out while its limit is set defaults to the limit, as the API
 * server's defaulting does before kubelet ever sees the pod. Zero counts as unset.
 */
export function qosClassOf(containers: QosContainerResources[]): QosClass {
  const requests: Record<string, number> = {};
  const limits: Record<string, number> = {};
  let guaranteed = true;
  for (const c of containers) {
    const limitsFound = new Set<string>();
    for (const name of ['cpu', 'memory'] as const) {
      const lim = c.limits[name];
      const req = c.requests[name] ?? lim;
      if (req !== undefined && req > 0) requests[name] = (requests[name] ?? 0) + req;
      if (lim !== undefined && lim > 0) {
        limitsFound.add(name);
        limits[name] = (limits[name] ?? 0) + lim;
      }
    }
    if (!(limitsFound.has('cpu') && limitsFound.has('memory'))) guaranteed = false;
  }
  const reqNames = Object.keys(requests);
  if (reqNames.length === 0 && Object.keys(limits).length === 0) return 'BestEffort';
  if (guaranteed) {
    for (const name of reqNames) {
      if (limits[name] !== requests[name]) {
        guaranteed = false;
        break;
      }
    }
  }
  if (guaranteed && reqNames.length === Object.keys(limits).length) return 'Guaranteed';
  return 'Burstable';
}

export interface PodResources {
  cpuRequestMilli?: number;
  cpuLimitMilli?: number;
  memoryRequestBytes?: number;
  memoryLimitBytes?: number;
}

/**
 * Pod-level resources as kubelet's ResourceConfigForPod computes them for the
 * pod cgroup: requests and limits are the sum over app containers, raised to
 * the largest init container's (init containers run one at a time, before the
 * others); a limit is set only when every app container declares it (else the
 * pod is unlimited for that resource), as kubelet checks pod.spec.containers.
 */
export function computePodResources(containers: QosContainerResources[], initContainers: QosContainerResources[] = []): PodResources {
  const total = (name: 'cpu' | 'memory', kind: 'requests' | 'limits'): number => {
    const pick = (c: QosContainerResources) => {
      const v = kind === 'requests' ? (c.requests[name] ?? c.limits[name]) : c.limits[name];
      return v !== undefined && v > 0 ? v : 0;
    };
    const sum = containers.reduce((a, c) => a + pick(c), 0);
    return initContainers.reduce((a, c) => Math.max(a, pick(c)), sum);
  };
  const declared = (name: 'cpu' | 'memory') => containers.length > 0 && containers.every((c) => (c.limits[name] ?? 0) > 0);
  const out: PodResources = {};
  const cpuReq = total('cpu', 'requests');
  const memReq = total('memory', 'requests');
  if (cpuReq > 0) out.cpuRequestMilli = cpuReq;
  if (memReq > 0) out.memoryRequestBytes = memReq;
  if (declared('cpu')) out.cpuLimitMilli = total('cpu', 'limits');
  if (declared('memory')) out.memoryLimitBytes = total('memory', 'limits');
  return out;
}
