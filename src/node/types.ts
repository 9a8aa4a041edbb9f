// core/v1 Node and coordination.k8s.io/v1 Lease in their JSON wire form, as
// far as nodelet reads or writes them.

import type { KubeObject, ObjectMeta } from '../kube/types.js';
import type { ConditionStatus } from '../pod/api-types.js';

export interface NodeCondition {
  type: string;
  status: ConditionStatus;
  lastHeartbeatTime?: string | null;
  lastTransitionTime?: string | null;
  reason?: string;
  message?: string;
}

export interface NodeAddress {
  type: 'InternalIP' | 'ExternalIP' | 'Hostname' | 'InternalDNS' | 'ExternalDNS' | string;
  address: string;
}

export interface NodeSystemInfo {
  machineID: string;
  systemUUID: string;
  bootID: string;
  kernelVersion: string;
  osImage: string;
  containerRuntimeVersion: string;
  kubeletVersion: string;
  /** deprecated; kubelet no longer sets it (always "" on the wire) */
  kubeProxyVersion: string;
  operatingSystem: string;
  architecture: string;
  swap?: { capacity?: number };
}

export interface ContainerImage {
  names?: string[];
  sizeBytes?: number;
}

export interface NodeStatus {
  capacity?: Record<string, string>;
  allocatable?: Record<string, string>;
  phase?: string;
  conditions?: NodeCondition[];
  addresses?: NodeAddress[];
  daemonEndpoints?: { kubeletEndpoint?: { Port: number } };
  nodeInfo?: NodeSystemInfo;
  images?: ContainerImage[];
  [k: string]: unknown;
}

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' | string;
  timeAdded?: string;
}

export interface NodeObject extends KubeObject {
  apiVersion?: 'v1' | string;
  kind?: 'Node' | string;
  metadata: ObjectMeta;
  spec?: { unschedulable?: boolean; taints?: Taint[]; podCIDR?: string; podCIDRs?: string[]; providerID?: string; [k: string]: unknown };
  status?: NodeStatus;
}

export interface LeaseObject extends KubeObject {
  metadata: ObjectMeta;
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
    [k: string]: unknown;
  };
}

/** An image on the node as the image store lists it. */
export interface NodeImage {
  /** repo digests first, then tags (kubelet's order) */
  names: string[];
  sizeBytes: number;
}
