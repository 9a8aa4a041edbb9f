// Versions nodelet reports in Node.status.nodeInfo.

/** The Kubernetes (kubelet) version whose node behaviour nodelet implements; reported as kubeletVersion. */
export const KUBELET_VERSION = 'v1.36.3';

/** nodelet's own version (package.json; a unit test keeps the two equal). */
export const NODELET_VERSION = '0.1.0';

/** The runtime type in containerRuntimeVersion ("nodelet://0.1.0"). */
export const RUNTIME_NAME = 'nodelet';
