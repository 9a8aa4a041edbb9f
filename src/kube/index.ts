// Public surface of the Kubernetes API client (cluster mode).
export * from './types.js';
export * from './errors.js';
export { loadKubeconfig, parseKubeconfig, type KubeConfig, type LoadKubeconfigOptions } from './kubeconfig.js';
export { HttpKubeClient, createKubeClient, defaultUserAgent, NODELET_VERSION, type KubeClientOptions, type RawRequest } from './client.js';
export { listWatch, backoffDelay, type BackoffOptions, type ListWatch, type ListWatchHandlers, type ListWatchOptions, type InformerEventType } from './informer.js';
export { resourcePath, queryString, LineSplitter, parseWarnings, patchContentType } from './wire.js';
