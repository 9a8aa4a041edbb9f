// Pod spec + image → the runtime's ContainerConfig and PodSandboxConfig, the
// way kubelet's kuberuntime_container.go generateContainerConfig and
// kuberuntime_sandbox.go generatePodSandboxConfig do. Pure: what they need
// from the host (its resolv.conf, hostname, allocatable resources, subPath
// resolution on disk) comes in as input; src/host/pod-config.ts supplies it.

import { join } from 'node:path';
import type { ImageRecord } from '../image/types.js';
import type { ContainerConfig, PodSandboxConfig, PortMapping, VolumeMount as RuntimeMount, ContainerSecurity } from '../runtime/types.js';
import { NodeletError } from '../errors.js';
import type { Container, Pod, PodObjects, SeccompProfile } from './api-types.js';
import { expand, resolveEnv, createContainerConfigError, type EnvContext } from './env.js';
import { containerRequests, downwardAPIAllocatable, effectiveContainerLimits, getPodQOS, podResources } from './qos.js';

/**
 * Kubernetes' command rules: `command` replaces the image ENTRYPOINT and
 * drops its CMD; `args` replaces CMD. Then $(VAR) expansion with the
 * container's env.
 */
export function computeArgv(c: Container, image: { entrypoint?: string[]; cmd?: string[] }, env: Map<string, string>): string[] {
  let argv: string[];
  if (c.command && c.command.length > 0) argv = [...c.command, ...(c.args ?? [])];
  else if (c.args && c.args.length > 0) argv = [...(image.entrypoint ?? []), ...c.args];
  else argv = [...(image.entrypoint ?? []), ...(image.cmd ?? [])];
  const lookup = (n: string) => env.get(n);
  return argv.map((a) => expand(a, lookup));
}

/** kubelet's pod log directory (BuildPodLogsDirectory): <root>/<namespace>_<name>_<uid>; root default /var/log/pods. */
export function podLogsDirFor(logRoot: string, pod: Pod): string {
  return join(logRoot, `${pod.metadata.namespace ?? 'default'}_${pod.metadata.name}_${pod.metadata.uid}`);
}

/**
 * kubelet's legacy log symlink (kuberuntime/legacy.go logSymlink), the name log shippers read in /var/log/containers:
 * <dir>/<pod>_<namespace>_<container>-<containerID>.log, the name cut to 255 bytes with the suffix (ext4's limit).
 */
export function containerLogLinkFor(linkDir: string, pod: Pod, container: string, containerId: string): string {
  const suffix = '.log';
  let name = `${pod.metadata.name}_${pod.metadata.namespace ?? 'default'}_${container}-${containerId}`;
  if (Buffer.byteLength(name) > 255 - suffix.length) name = Buffer.from(name).subarray(0, 255 - suffix.length).toString('utf8').replace(/\uFFFD$/, '');
  return join(linkDir, name + suffix);
}

function seccompOf(sp: SeccompProfile | undefined): Pick<ContainerSecurity, 'seccomp'> {
  if (!sp?.type) return {};
  return { seccomp: sp.type === 'Localhost' ? { type: sp.type, localhostProfile: sp.localhostProfile } : { type: sp.type } };
}

/** seccompDefault: kubelet's --seccomp-default, RuntimeDefault for containers whose pod says nothing. */
export function mergeSecurity(pod: Pod, c: Container, seccompDefault = false): ContainerSecurity {
  const p = pod.spec.securityContext ?? {};
  const s = c.securityContext ?? {};
  const groups = [...(p.supplementalGroups ?? [])];
  if (p.fsGroup !== undefined && !groups.includes(p.fsGroup)) groups.push(p.fsGroup);
  const sysctls: Record<string, string> = {};
  for (const x of p.sysctls ?? []) sysctls[x.name] = x.value;
  const privileged = s.privileged ?? false;
  return {
    privileged,
    runAsUser: s.runAsUser ?? p.runAsUser,
    runAsGroup: s.runAsGroup ?? p.runAsGroup,
    runAsNonRoot: s.runAsNonRoot ?? p.runAsNonRoot,
    supplementalGroups: groups,
    ...(p.supplementalGroupsPolicy ? { supplementalGroupsPolicy: p.supplementalGroupsPolicy } : {}),
    capabilitiesAdd: s.capabilities?.add ?? [],
    capabilitiesDrop: s.capabilities?.drop ?? [],
    readOnlyRootFilesystem: s.readOnlyRootFilesystem ?? false,
    noNewPrivs: s.allowPrivilegeEscalation === false && !privileged,
    procMount: s.procMount,
    sysctls: Object.keys(sysctls).length ? sysctls : undefined,
    // the container's profile wins over the pod's (kubelet's determineEffectiveSecurityContext)
    ...seccompOf(s.seccompProfile ?? p.seccompProfile ?? (seccompDefault ? { type: 'RuntimeDefault' } : undefined)),
  };
}

export interface ContainerConfigInput extends EnvContext {
  pod: Pod;
  container: Container;
  image: ImageRecord;
  attempt: number;
  /** podLogsDirFor(...) */
  podLogsDir: string;
  /** Volume name → host path, from VolumeManager.setUp. */
  volumePaths: Record<string, string>;
  /** Host file bound at terminationMessagePath (kubelet creates one per container attempt). */
  terminationLogHostPath?: string;
  /** kubelet's --seccomp-default: RuntimeDefault when neither the pod nor the container sets a profile. */
  seccompDefault?: boolean;
  /** Host path of <volumePath>/<subPath> (VolumeManager.resolveSubPath: symlink-escape safe, creates missing dirs). */
  subPathResolver: (volumePath: string, subPath: string) => string;
}

export interface BuiltContainerConfig {
  config: ContainerConfig;
  warnings: string[];
}

/** Throws CreateContainerConfigError (ERR_CREATE_CONTAINER_CONFIG) for unresolved references or mounts. */
export function buildContainerConfig(input: ContainerConfigInput): BuiltContainerConfig {
  const { pod, container: c, image } = input;
  // env resourceFieldRef: a limit the container lacks reads the pod-level one (defaultPodLimitsForDownwardAPI)
  const { env, warnings } = resolveEnv(pod, c, { ...input, nodeAllocatable: downwardAPIAllocatable(pod, input.nodeAllocatable) });
  const argv = computeArgv(c, image.config, env);
  if (argv.length === 0)
    throw createContainerConfigError(c.name, `no command specified: image ${c.image} has no ENTRYPOINT or CMD; set command in the pod spec`);

  // image env first, the pod's env overrides (containerd CRI's WithEnv order)
  const merged = new Map<string, string>();
  for (const kv of image.config.env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) merged.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const [k, v] of env) merged.set(k, v);

  const resolver = input.subPathResolver;
  const mounts: RuntimeMount[] = [];
  for (const m of c.volumeMounts ?? []) {
    const base = input.volumePaths[m.name];
    if (!base) throw createContainerConfigError(c.name, `volume "${m.name}" is not set up`, { volume: m.name });
    let sub = m.subPath ?? '';
    if (m.subPathExpr) sub = expand(m.subPathExpr, (n) => env.get(n));
    let hostPath = base;
    if (sub) {
      try {
        hostPath = resolver(base, sub);
      } catch (e) {
        throw createContainerConfigError(c.name, `failed to prepare subPath for volumeMount "${m.name}": ${(e as Error).message}`, { volume: m.name, cause: e });
      }
    }
    const propagation = m.mountPropagation === 'Bidirectional' ? 'rshared' : m.mountPropagation === 'HostToContainer' ? 'rslave' : 'private';
    mounts.push({ hostPath, containerPath: m.mountPath, readOnly: m.readOnly ?? false, propagation });
  }
  if (input.terminationLogHostPath && c.terminationMessagePath && !mounts.some((m) => m.containerPath === c.terminationMessagePath))
    mounts.push({ hostPath: input.terminationLogHostPath, containerPath: c.terminationMessagePath, readOnly: false });

  const security = mergeSecurity(pod, c, input.seccompDefault);
  verifyRunAsNonRoot(pod, c, security, image.config.user);
  const req = containerRequests(c);
  // under pod-level resources a container without its own limit gets the pod-level one (kuberuntime getCPULimit/getMemoryLimit)
  const lim = effectiveContainerLimits(pod, c);
  const name = pod.metadata.name!;
  const config: ContainerConfig = {
    name: c.name,
    attempt: input.attempt,
    imageRef: c.image!,
    imageId: image.id,
    argv,
    env: [...merged].map(([k, v]) => `${k}=${v}`),
    workingDir: c.workingDir || image.config.workingDir || undefined,
    mounts,
    resources: { cpuRequestMilli: req.cpu, cpuLimitMilli: lim.cpu, memoryRequestBytes: req.memory, memoryLimitBytes: lim.memory },
    security,
    tty: c.tty ?? false,
    stdin: c.stdin ?? false,
    ...(c.stdin && c.stdinOnce ? { stdinOnce: true } : {}),
    logPath: join(input.podLogsDir, c.name, `${input.attempt}.log`),
    stopSignal: image.config.stopSignal,
    ...oomScoreFacts(pod, c),
    labels: {
      'io.kubernetes.container.name': c.name,
      'io.kubernetes.pod.name': name,
      'io.kubernetes.pod.namespace': pod.metadata.namespace ?? 'default',
      'io.kubernetes.pod.uid': pod.metadata.uid ?? '',
    },
    annotations: {
      'io.kubernetes.container.restartCount': String(input.attempt),
      'io.kubernetes.container.terminationMessagePath': c.terminationMessagePath ?? '/dev/termination-log',
      'io.kubernetes.container.terminationMessagePolicy': c.terminationMessagePolicy ?? 'File',
      ...(c.lifecycle?.preStop ? { 'io.kubernetes.container.preStopHandler': JSON.stringify(c.lifecycle.preStop) } : {}),
      'io.kubernetes.pod.terminationGracePeriod': String(pod.spec.terminationGracePeriodSeconds ?? 30),
    },
  };
  return { config, warnings };
}

/** kubelet's SystemCriticalPriority (scheduling.SystemCriticalPriority = 2 * HighestUserDefinablePriority). */
const SYSTEM_CRITICAL_PRIORITY = 2_000_000_000;

/**
 * types.IsNodeCriticalPod: IsCriticalPod (static: a config source other than the API server, as
 * admission.ts reads it; mirror; or priority >= SystemCriticalPriority) with priorityClassName system-node-critical.
 */
export function isNodeCriticalPod(pod: Pod): boolean {
  if (pod.spec.priorityClassName !== 'system-node-critical') return false;
  const ann = pod.metadata.annotations ?? {};
  const source = ann['kubernetes.io/config.source'];
  const isStatic = source !== undefined && source !== 'apiserver';
  return isStatic || ann['kubernetes.io/config.mirror'] !== undefined || (pod.spec.priority ?? 0) >= SYSTEM_CRITICAL_PRIORITY;
}

/** The facts GetContainerOOMScoreAdjust needs besides the QoS class and the container's request (runtime ContainerConfig.oomScore). */
function oomScoreFacts(pod: Pod, c: Container): Pick<ContainerConfig, 'oomScore'> {
  const nodeCritical = isNodeCriticalPod(pod);
  const sidecar = c.restartPolicy === 'Always' && (pod.spec.initContainers ?? []).some((i) => i.name === c.name);
  const regular = sidecar && pod.spec.containers.length ? Math.min(...pod.spec.containers.map((x) => containerRequests(x).memory ?? 0)) : undefined;
  if (!nodeCritical && regular === undefined) return {};
  return { oomScore: { ...(nodeCritical ? { nodeCritical } : {}), ...(regular !== undefined ? { sidecarMinRegularMemoryRequestBytes: regular } : {}) } };
}

/**
 * kubelet verifyRunAsNonRoot: with runAsNonRoot, the uid must be known and
 * non-zero: from runAsUser, else from the image's USER when it is numeric.
 */
export function verifyRunAsNonRoot(pod: Pod, c: Container, sec: ContainerSecurity, imageUser: string | undefined): void {
  if (!sec.runAsNonRoot) return;
  const podRef = `${pod.metadata.name}_${pod.metadata.namespace ?? 'default'}(${pod.metadata.uid})`;
  if (sec.runAsUser !== undefined) {
    if (sec.runAsUser === 0) throw createContainerConfigError(c.name, `container's runAsUser breaks non-root policy (pod: "${podRef}", container: ${c.name})`);
    return;
  }
  const user = (imageUser ?? '').split(':')[0]!;
  if (user === '' || user === 'root' || user === '0') throw createContainerConfigError(c.name, `container has runAsNonRoot and image will run as root (pod: "${podRef}", container: ${c.name})`);
  if (!/^\d+$/.test(user)) throw createContainerConfigError(c.name, `container has runAsNonRoot and image has non-numeric user (${user}), cannot verify user is non-root (pod: "${podRef}", container: ${c.name})`);
}

// ------------------------------------------------------------- sandbox

export interface ResolvConf {
  nameservers: string[];
  searches: string[];
  options: string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], searches: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [k, ...rest] = line.split(/\s+/);
    if (k === 'nameserver' && rest[0]) out.nameservers.push(rest[0]);
    else if (k === 'search' || k === 'domain') out.searches = rest;
    else if (k === 'options') out.options.push(...rest);
  }
  return out;
}

/** DNS for the sandbox from dnsPolicy and dnsConfig (kubelet pkg/kubelet/network/dns). No cluster DNS exists: ClusterFirst falls back to Default, as kubelet does without --cluster-dns. */
export function computeDNS(pod: Pod, host: ResolvConf): ResolvConf {
  const policy = pod.spec.dnsPolicy ?? 'ClusterFirst';
  const base: ResolvConf = policy === 'None' ? { nameservers: [], searches: [], options: [] } : { ...host, options: [...host.options] };
  const dc = pod.spec.dnsConfig;
  if (dc) {
    for (const n of dc.nameservers ?? []) if (!base.nameservers.includes(n)) base.nameservers.push(n);
    for (const s of dc.searches ?? []) if (!base.searches.includes(s)) base.searches.push(s);
    const opts = new Map<string, string>();
    for (const o of base.options) {
      const [k, v] = o.split(':');
      opts.set(k!, o);
      void v;
    }
    for (const o of dc.options ?? []) opts.set(o.name, o.value !== undefined ? `${o.name}:${o.value}` : o.name);
    base.options = [...opts.values()];
  }
  base.nameservers = base.nameservers.slice(0, 3);
  base.searches = base.searches.slice(0, 32);
  return base;
}

/** Hostname per kubelet: spec.hostnameOverride, else spec.hostname or the pod name, truncated to 63 with trailing '-'/'.' removed; the node's with hostNetwork. */
export function podHostname(pod: Pod, nodeHostname?: string): string {
  if (pod.spec.hostNetwork) {
    if (nodeHostname === undefined) throw new NodeletError('InvalidArgument', 'ERR_NODE_HOSTNAME_REQUIRED', `pod "${pod.metadata.name}" uses the host network: its hostname is the node's, which the caller must pass`);
    return nodeHostname;
  }
  // GeneratePodHostNameAndDomain: hostnameOverride first (validation keeps it off hostNetwork pods)
  const h = pod.spec.hostnameOverride ?? (pod.spec.hostname || pod.metadata.name || '');
  return h.length > 63 ? h.slice(0, 63).replace(/[-.]+$/, '') : h;
}

export function portMappings(pod: Pod): PortMapping[] {
  const out: PortMapping[] = [];
  for (const c of [...(pod.spec.initContainers ?? []), ...pod.spec.containers]) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      out.push({ containerPort: p.containerPort, hostPort: p.hostPort, protocol: p.protocol ?? 'TCP', ...(p.hostIP ? { hostIP: p.hostIP } : {}) });
    }
  }
  return out;
}

export interface SandboxConfigInput {
  /** The host's resolver configuration (src/host/node.ts readHostResolvConf), the base of dnsPolicy Default/ClusterFirst. */
  hostResolvConf: ResolvConf;
  /** The node's hostname: a hostNetwork pod's. */
  nodeHostname: string;
  /** kubelet's --pod-max-pids (podPidsLimit): pids.max of the pod's cgroup; -1 or unset: none */
  podPidsLimit?: number;
}

export function buildSandboxConfig(pod: Pod, opts: SandboxConfigInput): PodSandboxConfig {
  if (!pod.metadata.uid || !pod.metadata.name) throw new NodeletError('InvalidArgument', 'ERR_POD_INVALID', 'pod has no name or uid: apply defaults first');
  return {
    uid: pod.metadata.uid,
    name: pod.metadata.name,
    namespace: pod.metadata.namespace ?? 'default',
    hostname: podHostname(pod, opts.nodeHostname),
    hostNetwork: pod.spec.hostNetwork ?? false,
    hostPID: pod.spec.hostPID ?? false,
    hostIPC: pod.spec.hostIPC ?? false,
    shareProcessNamespace: pod.spec.shareProcessNamespace ?? false,
    ...(pod.spec.securityContext?.sysctls?.length ? { sysctls: Object.fromEntries(pod.spec.securityContext.sysctls.map((s) => [s.name, s.value])) } : {}),
    dns: computeDNS(pod, opts.hostResolvConf),
    hostAliases: (pod.spec.hostAliases ?? []).map((h) => ({ ip: h.ip, hostnames: h.hostnames ?? [] })),
    portMappings: portMappings(pod),
    qosClass: getPodQOS(pod),
    resources: { ...podResources(pod), ...(opts.podPidsLimit !== undefined && opts.podPidsLimit > 0 ? { pidsLimit: opts.podPidsLimit } : {}) },
    labels: { ...(pod.metadata.labels ?? {}) },
    annotations: { ...(pod.metadata.annotations ?? {}) },
  };
}

export type { PodObjects };
