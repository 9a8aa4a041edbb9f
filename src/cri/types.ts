// CRI-shaped types shared by several layers (runtime, image, snapshot,
// cgroups, network). This module imports nothing from other src/ folders, so
// every layer can depend on it without an edge back up:
//   runtime/types.ts re-exports QosClass and PortMapping (the pod layer uses them from there),
//   image/types.ts re-exports Mount.

/** A mount described as data (containerd's mount.Mount; CRI's Mount is the bind case): the caller mounts it. */
export interface Mount {
  /** "overlay", "bind", "tmpfs", ... */
  type: string;
  source: string;
  /** mount options as passed to mount(8): "ro", "lowerdir=...", "rbind" ... */
  options: string[];
}

/** The pod's QoS class (k8s.io/api core/v1 PodQOSClass): decides its cgroup tier and oom_score_adj. */
export type QosClass = 'Guaranteed' | 'Burstable' | 'BestEffort';

/** CRI PortMapping: a host port forwarded to a container port of the pod (CNI portmap). */
export interface PortMapping {
  containerPort: number;
  hostPort: number;
  protocol: 'TCP' | 'UDP' | 'SCTP';
  hostIP?: string;
}

/** A character or block device node: on the host, or to create in a container. */
export interface DeviceNode {
  /** absolute path ("/dev/null") */
  path: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  mode: number;
  uid: number;
  gid: number;
}
