// Public surface of the node side of cluster mode: host signals, the Node
// status (pure), strategic merge patches (pure), and the Node and Lease
// controllers that talk to the API server through the KubeClient port.
export { readHostInfo, statfsStats, type HostInfo, type FsStats, type ReadHostInfoOptions } from './host-info.js';
export {
  computeNodeStatus,
  computeNodeStatusWithEvents,
  statusNeedsUpdate,
  nodeStatusHasChanged,
  nodeLabels,
  initialNode,
  reconcileDefaultLabels,
  computeCapacity,
  computeAllocatable,
  computeImages,
  computePressure,
  updatePressure,
  parseEvictionThresholds,
  defaultNodeStatusConfig,
  DEFAULT_EVICTION_HARD,
  DEFAULT_MAX_PODS,
  DEFAULT_KUBELET_PORT,
  NODE_STATUS_UPDATE_FREQUENCY_MS,
  NODE_STATUS_REPORT_FREQUENCY_MS,
  type NodeStatusInput,
  type NodeStatusConfig,
  type Pressure,
  type PressureState,
} from './status.js';
export { createTwoWayMergePatch, nodeStatusPatch, podStatusPatch, isEmptyPatch, NODE_SCHEMA, POD_SCHEMA, type PatchSchema, type JsonObject } from './patch.js';
export { NodeController, NODES, NODES_STATUS, type NodeControllerOptions, type NodeEvent } from './controller.js';
export { LeaseController, leasesRef, NODE_LEASE_NAMESPACE, type LeaseControllerOptions } from './lease.js';
export { realClock, formatMicroTime, type Clock } from './clock.js';
export { KUBELET_VERSION, NODELET_VERSION, RUNTIME_NAME } from './version.js';
export type { NodeObject, NodeStatus, NodeCondition, NodeAddress, NodeSystemInfo, NodeImage, LeaseObject, Taint } from './types.js';
