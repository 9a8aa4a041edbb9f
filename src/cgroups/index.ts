// The cgroup subsystem's entry point: detection, the manager factory and
// kubelet's pure formulas. Drivers: CgroupV2Manager (unified) and
// CgroupV1Manager (legacy/hybrid), both over CgroupFs (one file op per call).

export type { CgroupManager, CgroupLimits, CgroupStats, CgroupVersion } from './types.js';
export { cpuSharesFromMilli, cpuWeightFromMilli, cpuQuotaFromMilli, oomScoreAdj, qosClassOf, computePodResources } from './qos.js';
export type { QosContainerResources, PodResources } from './qos.js';
export { detectCgroupLayout, computeCgroupLayout } from './layout.js';
export type { CgroupLayout } from './layout.js';
export { createCgroupManager } from './manager.js';
export type { CreateCgroupManagerOptions, NodeletCgroupManager } from './manager.js';
export { CgroupV1Manager } from './v1.js';
export { CgroupV2Manager } from './v2.js';
