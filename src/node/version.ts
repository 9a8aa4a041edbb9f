// Versions nodelet reports in Node.status.nodeInfo (its own, NODELET_VERSION, is in src/version.ts).

/** The Kubernetes (kubelet) version whose node behaviour nodelet implements; reported as kubeletVersion. */
export const KUBELET_VERSION = 'v1.36.3';

/** The runtime type in containerRuntimeVersion ("nodelet://0.1.0"). */
export const RUNTIME_NAME = 'nodelet';
