// Public surface of the container runtime, shaped like the CRI
// RuntimeService (RunPodSandbox, CreateContainer, StartContainer, ...). The
// pod layer (src/pod/) drives it; src/runtime/runtime.ts implements it with
// the native shim, cgroups (src/cgroups/) and CNI (src/network/).

import type { PortMapping, QosClass } from '../cri/types.js';

// The CRI-shaped types shared with the lower layers live in src/cri/types.ts; re-exported here
// so the pod layer, the agent and the CLI keep importing them from the runtime.
export type { Mount, PortMapping, QosClass } from '../cri/types.js';

export interface PodSandboxConfig {
  /** metadata.uid of the pod */
  uid: string;
  name: string;
  namespace: string;
  hostname: string;
  /** "pod.namespace.svc..."-less FQDN support: setHostnameAsFQDN etc. are not modelled */
  hostNetwork: boolean;
  hostPID: boolean;
  hostIPC: boolean;
  shareProcessNamespace: boolean;
  /** Namespaced sysctls for the pod's net/IPC namespaces, name (dot or slash form) → value; admitted by the agent. */
  sysctls?: Record<string, string>;
  dns?: { nameservers: string[]; searches: string[]; options: string[] };
  hostAliases: { ip: string; hostnames: string[] }[];
  portMappings: PortMapping[];
  qosClass: QosClass;
  /** Pod-level limits (sum over containers, as kubelet computes them); undefined = unlimited. */
  /** pidsLimit: the pod cgroup's pids.max (kubelet's --pod-max-pids) */
  resources: { cpuLimitMilli?: number; memoryLimitBytes?: number; cpuRequestMilli?: number; memoryRequestBytes?: number; pidsLimit?: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface PodSandboxStatus {
  id: string;
  config: PodSandboxConfig;
  state: 'ready' | 'notready';
  createdAt: string;
  /** Pod IPs from CNI (empty with hostNetwork: the pod uses the host's). */
  ips: string[];
  /** Pinned namespace paths (bind mounts under the run root). */
  namespaces: { net?: string; ipc?: string; uts?: string; pid?: string };
  /** Pod cgroup (absolute, relative to the hierarchy root). */
  cgroupPath: string;
}

export interface VolumeMount {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
  propagation?: 'private' | 'rslave' | 'rshared';
}

export interface ContainerResources {
  cpuRequestMilli?: number;
  cpuLimitMilli?: number;
  memoryRequestBytes?: number;
  memoryLimitBytes?: number;
  /** pids.max for the container; undefined = runtime default. */
  pidsLimit?: number;
}

export interface ContainerSecurity {
  privileged: boolean;
  /** uid to run as; undefined = the image's USER (resolved against its /etc/passwd), else 0 */
  runAsUser?: number;
  runAsGroup?: number;
  /** runAsNonRoot: refuse to start if the resolved uid is 0 */
  runAsNonRoot?: boolean;
  supplementalGroups: number[];
  /**
   * securityContext.supplementalGroupsPolicy (CRI SupplementalGroupsPolicy): Merge (default) adds the
   * groups the image's /etc/group lists the user in; Strict only the primary gid and supplementalGroups.
   */
  supplementalGroupsPolicy?: 'Merge' | 'Strict';
  capabilitiesAdd: string[];
  capabilitiesDrop: string[];
  readOnlyRootFilesystem: boolean;
  /** allowPrivilegeEscalation=false sets no_new_privs */
  noNewPrivs: boolean;
  procMount?: 'Default' | 'Unmasked';
  sysctls?: Record<string, string>;
  /** seccompProfile (container's, else the pod's); absent = Unconfined. Privileged containers get none. */
  seccomp?: { type: 'RuntimeDefault' | 'Unconfined' | 'Localhost'; localhostProfile?: string };
}

export interface ContainerConfig {
  /** container name in the pod spec */
  name: string;
  /** restart attempt (0, 1, ...), part of the log file name like kubelet's N.log */
  attempt: number;
  /** image reference as written in the spec, and the resolved image ID */
  imageRef: string;
  imageId: string;
  /** Final argv (entrypoint/cmd/command/args already combined and expanded). */
  argv: string[];
  /** "KEY=VALUE" */
  env: string[];
  /** Working directory; undefined = the image's, else "/". */
  workingDir?: string;
  mounts: VolumeMount[];
  resources: ContainerResources;
  security: ContainerSecurity;
  tty: boolean;
  stdin: boolean;
  /** With stdin: the first attach session with stdin that ends closes it (the pod's stdinOnce). */
  stdinOnce?: boolean;
  /** Absolute path of the CRI-format log file the shim writes. */
  logPath: string;
  /** Rotate the log when it exceeds this size (bytes); keep `logMaxFiles` files. */
  logMaxBytes?: number;
  logMaxFiles?: number;
  /** Signal name for stop ("SIGTERM" default, or the image's StopSignal). */
  stopSignal?: string;
  /**
   * What kubelet's GetContainerOOMScoreAdjust needs beyond the pod's QoS class and this container's
   * memory request: a node-critical pod gets -997 whatever its class; a sidecar (restartable init
   * container) never gets a higher score than the regular container with the smallest memory request.
   */
  oomScore?: { nodeCritical?: boolean; sidecarMinRegularMemoryRequestBytes?: number };
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

/** CRI ContainerUser: the identity the process runs with, as resolved by the runtime. */
export interface ContainerUser {
  linux: { uid: number; gid: number; supplementalGroups: number[] };
}

export type ContainerState = 'created' | 'running' | 'exited' | 'unknown';

export interface ContainerStatus {
  id: string;
  sandboxId: string;
  name: string;
  attempt: number;
  state: ContainerState;
  pid?: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  exitCode?: number;
  /** Signal name if the process died of a signal ("SIGKILL"). */
  signal?: string;
  oomKilled: boolean;
  /** Which limit fired when oomKilled: the container's or the pod's. */
  oomScope?: 'container' | 'pod';
  /** Machine reason: "Completed", "Error", "OOMKilled", "StartError", ... */
  reason?: string;
  message?: string;
  /** The resolved identity (uid, primary gid, every supplementary gid), once created. */
  user?: ContainerUser;
  imageRef: string;
  imageId: string;
  logPath: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

export interface ExecOptions {
  timeoutMs?: number;
  /** Bytes fed to the process's stdin, then EOF. */
  stdin?: Buffer | string;
  env?: string[];
}

export interface ExecResult {
  exitCode: number;
  signal?: string;
  stdout: Buffer;
  stderr: Buffer;
  timedOut: boolean;
}

/** A streaming exec (`nodelet exec -it`): see ContainerRuntime.exec. */
export interface ExecStreamOptions {
  /** A terminal (the process's 0-2; stdout and stderr merge, as with kubectl -t). */
  tty?: boolean;
  /** Keep stdin open and fed from ExecSession.stdin; else the process reads /dev/null (or the idle terminal). */
  stdin?: boolean;
  /** Added to (overriding) the container's environment. */
  env?: string[];
  /** The terminal's initial size (tty only). */
  size?: { cols: number; rows: number };
}

export interface ExecSession {
  /** Non-null when opts.stdin; end() = EOF to the process (with a tty: the terminal's EOF character). */
  readonly stdin: import('node:stream').Writable | null;
  readonly stdout: import('node:stream').Readable;
  /** null with tty (the terminal merges them, as kubectl). */
  readonly stderr: import('node:stream').Readable | null;
  resize(cols: number, rows: number): void;
  /** SIGKILL the exec's process group. */
  kill(): void;
  /**
   * The process's exit (exitCode 128+N when killed by signal N). Resolves after stdout and stderr
   * have ended, so consume them (or resume() them). Rejects (ERR_EXEC_LOST) if the shim's helper
   * went away without reporting, e.g. the container's cgroup was killed.
   */
  readonly exit: Promise<{ exitCode: number; signal?: string }>;
}

export interface ContainerStats {
  timestamp: string;
  cpuUsageNanos: number;
  memoryWorkingSetBytes: number;
  memoryUsageBytes: number;
  pids: number;
}

export interface ContainerExitEvent {
  containerId: string;
  sandboxId: string;
  status: ContainerStatus;
}

export interface ContainerRuntime {
  runPodSandbox(config: PodSandboxConfig): Promise<string>;
  /** Stop every container, tear down networking; idempotent. */
  stopPodSandbox(id: string): Promise<void>;
  /** Remove namespaces, cgroups and state; idempotent. */
  removePodSandbox(id: string): Promise<void>;
  podSandboxStatus(id: string): Promise<PodSandboxStatus>;
  listPodSandboxes(): Promise<PodSandboxStatus[]>;

  createContainer(sandboxId: string, config: ContainerConfig): Promise<string>;
  startContainer(id: string): Promise<void>;
  /** stopSignal → wait up to timeoutSeconds → SIGKILL; kills the whole cgroup. */
  stopContainer(id: string, timeoutSeconds: number): Promise<void>;
  removeContainer(id: string): Promise<void>;
  containerStatus(id: string): Promise<ContainerStatus>;
  listContainers(filter?: { sandboxId?: string }): Promise<ContainerStatus[]>;
  containerStats(id: string): Promise<ContainerStats>;

  /** Run a command in a running container and collect its output. */
  execSync(id: string, argv: string[], opts?: ExecOptions): Promise<ExecResult>;
  /**
   * Start a command in a running container and stream its stdio. Rejects (NodeletError:
   * ERR_EXEC_START, ERR_CONTAINER_NOT_RUNNING, ...) before a session exists.
   */
  exec(id: string, argv: string[], opts?: ExecStreamOptions): Promise<ExecSession>;

  /**
   * Attach to a running container (CRI Attach): its output from now on, its stdin when the
   * container keeps it open (spec stdin), resize with its tty. kill() detaches; exit is the
   * container's. Rejects ERR_CONTAINER_NOT_RUNNING, ERR_ATTACH_NO_STDIN (stdin asked of a
   * container without it).
   */
  attach(id: string, opts: { stdin?: boolean }): Promise<ExecSession>;

  /** Called once per container exit (also for exits discovered on recovery). */
  onContainerExit(listener: (e: ContainerExitEvent) => void): () => void;

  /** Release watchers; never stops containers. */
  close(): Promise<void>;
}
