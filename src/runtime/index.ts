// Public entry of the container runtime.
export type * from './types.js';
export { NodeletRuntime } from './runtime.js';
export type { NodeletRuntimeOptions } from './runtime.js';
export { computeShimPlan, mergeEnv, computeRlimits, clampOomScoreAdj } from './compute-plan.js';
export type { ShimPlanInput, ShimPlanResult, PlanSandbox } from './compute-plan.js';
export { computeCapabilitySet, DEFAULT_CAPABILITIES } from './capabilities.js';
export { resolveUser, resolveUserInRootfs } from './user.js';
export { computeExitStatus } from './exit-status.js';
export { computeHostsFile, computeResolvConf } from './sandbox-files.js';
export { inspectRuntimeState } from './inspect.js';
