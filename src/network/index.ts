// Public entry of src/network: namespace pinning and CNI pod networking.
export type {
  NamespacePinner,
  PinnedNamespaces,
  PinRequest,
  PodNetwork,
  PodNetworkRequest,
  PodNetworkResult,
} from './types.js';
export { createNamespacePinner } from './pinner.js';
export type { NamespacePinnerOptions } from './pinner.js';
export { createPodNetwork } from './pod-network.js';
export type { PodNetworkOptions } from './pod-network.js';
