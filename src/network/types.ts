// Public surface of pod networking and namespace pinning (src/network/).

import type { PortMapping } from '../cri/types.js';

/** Bind-mounted namespace files under the run root (CRI-O "pinns" idea: no pause process). */
export interface PinnedNamespaces {
  net?: string;
  ipc?: string;
  uts?: string;
}

export interface PinRequest {
  /** Directory to hold the pinned namespace files (created). */
  dir: string;
  net: boolean;
  ipc: boolean;
  uts: boolean;
  /** Hostname to set inside the new UTS namespace. */
  hostname?: string;
  /** Namespaced sysctls to write inside the new namespaces: path under /proc/sys (`net/core/somaxconn`) → value. */
  sysctls?: Record<string, string>;
}

export interface NamespacePinner {
  /** Create new namespaces and pin them by bind mounts; nothing is left behind on failure. */
  pin(req: PinRequest): Promise<PinnedNamespaces>;
  /** Unmount and remove pinned namespace files; idempotent. */
  unpin(ns: PinnedNamespaces): Promise<void>;
}

export interface PodNetworkRequest {
  /** Unique id of the sandbox (CNI ContainerID). */
  sandboxId: string;
  podName: string;
  podNamespace: string;
  podUid: string;
  /** Pinned network namespace path. */
  netnsPath: string;
  portMappings: PortMapping[];
}

export interface PodNetworkResult {
  ips: string[];
  gateway?: string;
  interfaceName: string;
}

export interface PodNetwork {
  /** CNI ADD (loopback + the configured network), result cached for DEL. */
  setUp(req: PodNetworkRequest): Promise<PodNetworkResult>;
  /** CNI CHECK. */
  check(req: PodNetworkRequest): Promise<void>;
  /** CNI DEL from the cached result; idempotent; works if the netns is already gone. */
  tearDown(req: PodNetworkRequest): Promise<void>;
}
