// The pod layer's pure core, in one import for the orchestrator, daemon and CLI.
export * from './api-types.js';
export * from './quantity.js';
export * from './field-errors.js';
export { parseManifests, loadManifests, secretBytes, configMapBytes, type ParsedManifests, type LoadOptions } from './manifest.js';
export { applyDefaults, defaultPullPolicy } from './defaults.js';
export { validatePod, validatePodFull } from './validation.js';
export * from './qos.js';
export * from './env.js';
export * from './container-config.js';
export * from './volume-plan.js';
export * from './probe.js';
export * from './backoff.js';
export * from './actions.js';
export * from './status.js';
export * from './termination-message.js';
