// computeShimPlan: the pure decision of everything the C shim does for one
// container (namespaces, mounts, devices, masked paths, capabilities, user,
// rlimits, env, cwd), as containerd's CRI plugin + runc's defaults would
// produce it. No I/O: every fact about the host comes in as input.

import path from 'node:path';
import { invalidArgument } from '../errors.js';
import { MS } from '../sys/ffi.js';
import type { ImageConfig } from '../image/types.js';
import type { ContainerConfig, PodSandboxConfig } from './types.js';
import type { PlanDevice, PlanMount, PlanNamespace, PlanRlimit, ShimPlan } from './shim/plan.js';
import { capabilityNumber, computeCapabilitySet, maskToHex } from './capabilities.js';
import type { ResolvedUser } from './user.js';
import { computeSeccompFilter, type SeccompProfile } from './seccomp/index.js';
import { GUARANTEED_OOM_SCORE_ADJ, oomScoreAdj } from '../cgroups/qos.js';
import type { QosClass } from '../cri/types.js';

const MS_RELATIME = 1 << 21;
const MS_STRICTATIME = 1 << 24;
export const RLIMIT_NOFILE = 7;
/** containerd's CRI containers inherit containerd's LimitNOFILE=1048576. */
export const DEFAULT_NOFILE = 1048576;
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
export const DEFAULT_LOG_MAX_FILES = 5;

/** runc's default masked paths (libcontainer/specconv). */
export const MASKED_PATHS = [
  '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
/** runc's default read-only paths. */
export const READONLY_PATHS = ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_DEVICES: PlanDevice[] = [
  { path: '/dev/null', type: 'c', major: 1, minor: 3, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/zero', type: 'c', major: 1, minor: 5, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/full', type: 'c', major: 1, minor: 7, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/random', type: 'c', major: 1, minor: 8, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/urandom', type: 'c', major: 1, minor: 9, mode: 0o666, uid: 0, gid: 0 },
  { path: '/dev/tty', type: 'c', major: 5, minor: 0, mode: 0o666, uid: 0, gid: 0 },
];

export const DEFAULT_SYMLINKS: [string, string][] = [
  ['/dev/fd', '/proc/self/fd'],
  ['/dev/stdin', '/proc/self/fd/0'],
  ['/dev/stdout', '/proc/self/fd/1'],
  ['/dev/stderr', '/proc/self/fd/2'],
  ['/dev/ptmx', 'pts/ptmx'],
  ['/dev/core', '/proc/kcore'],
];

/** The sandbox facts a container's plan depends on. */
export interface PlanSandbox {
  config: PodSandboxConfig;
  /** pinned namespaces of the pod (absent with hostNetwork / hostIPC) */
  namespaces: { net?: string; ipc?: string; uts?: string };
  /** pid namespace to join when shareProcessNamespace (the pod-init's /proc/PID/ns/pid) */
  sharedPidNs?: string;
  hostsPath: string;
  hostnamePath: string;
  resolvConfPath: string;
  /** the pod's /dev/shm tmpfs on the host */
  shmPath: string;
  /** the host's hostname (HOSTNAME for hostNetwork pods) */
  hostHostname?: string;
}

export interface ShimPlanInput {
  containerId: string;
  stateDir: string;
  rootfs: string;
  config: ContainerConfig;
  sandbox: PlanSandbox;
  image?: Pick<ImageConfig, 'env' | 'workingDir'>;
  user: ResolvedUser;
  cgroupVersion: 'v1' | 'v2';
  cgroupProcsFiles: string[];
  oomCounterFile?: string;
  oomScoreAdj?: number;
  /**
   * Lowest oom_score_adj the daemon may set: without CAP_SYS_RESOURCE the
   * kernel refuses values below the caller's own (EACCES); undefined = no floor.
   */
  oomScoreAdjFloor?: number;
  /** /proc/sys/kernel/cap_last_cap */
  capLastCap: number;
  /** the daemon's own bounding set (CapBnd): nothing outside it can be granted */
  capAvailable?: bigint;
  /** the daemon's own hard RLIMIT_NOFILE: the plan never asks for more */
  nofileHardLimit: number;
  /** host devices for privileged containers (from /dev) */
  hostDevices?: PlanDevice[];
  /** Volume host paths that are files, not directories: their targets are created as files. */
  fileVolumeSources?: ReadonlySet<string>;
  /** The Localhost seccomp profile, already read (seccomp loadSeccompFor); needed only for type Localhost. */
  seccompLocalhost?: SeccompProfile;
  /** Node's process.arch of the host (the seccomp filter's native architecture); default process.arch. */
  hostArch?: string;
}

export interface ShimPlanResult {
  plan: ShimPlan;
  /** things clamped or dropped, for a warning log */
  warnings: string[];
}

function checkContainerPath(p: string, field: string): void {
  if (!p.startsWith('/') || p.split('/').includes('..')) {
    throw invalidArgument('ERR_CONTAINER_CONFIG_INVALID', `${field} "${p}" must be an absolute path without ".."`, { details: { field, value: p } });
  }
}

/** Merge KEY=VALUE lists, later ones replacing earlier keys (order of first appearance kept). */
export function mergeEnv(...lists: string[][]): string[] {
  const m = new Map<string, string>();
  for (const list of lists) {
    for (const kv of list) {
      const i = kv.indexOf('=');
      const k = i < 0 ? kv : kv.slice(0, i);
      if (k === '') continue;
      m.set(k, kv);
    }
  }
  return [...m.values()];
}

/**
 * kubelet's GetContainerOOMScoreAdjust (pkg/kubelet/qos/policy.go, default feature gates): a node-critical
 * pod (IsNodeCriticalPod: critical, i.e. static/mirror or priority >= 2e9, and priorityClassName
 * system-node-critical) gets -997 whatever its class; else Guaranteed -997, BestEffort 1000, Burstable
 * 1000 - 1000*request/capacity within [3, 999]; a sidecar takes the lower of its own score and that of the
 * regular container with the smallest request (the clamp is monotonic, so min after clamping is the same).
 */
export function containerOomScoreAdj(qos: QosClass, config: Pick<ContainerConfig, 'resources' | 'oomScore'>, memoryCapacityBytes: number): number {
  if (config.oomScore?.nodeCritical) return GUARANTEED_OOM_SCORE_ADJ;
  const own = oomScoreAdj(qos, config.resources.memoryRequestBytes, memoryCapacityBytes);
  const regular = config.oomScore?.sidecarMinRegularMemoryRequestBytes;
  if (qos !== 'Burstable' || regular === undefined) return own;
  return Math.min(own, oomScoreAdj(qos, regular, memoryCapacityBytes));
}

/** oom_score_adj never below what the daemon may set (kubelet logs and continues when the write fails). */
export function clampOomScoreAdj(want: number | undefined, floor: number | undefined): { value?: number; warning?: string } {
  if (want === undefined) return {};
  if (floor === undefined || want >= floor) return { value: want };
  return { value: floor, warning: `oom_score_adj ${want} raised to ${floor}: lowering it needs CAP_SYS_RESOURCE, which the daemon lacks` };
}

export function computeRlimits(nofileHardLimit: number): { rlimits: PlanRlimit[]; warnings: string[] } {
  const warnings: string[] = [];
  let nofile = DEFAULT_NOFILE;
  if (nofile > nofileHardLimit) {
    warnings.push(`RLIMIT_NOFILE ${DEFAULT_NOFILE} clamped to the daemon's hard limit ${nofileHardLimit} (no CAP_SYS_RESOURCE to raise it)`);
    nofile = nofileHardLimit;
  }
  return { rlimits: [{ resource: RLIMIT_NOFILE, soft: nofile, hard: nofile }], warnings };
}

function computeNamespaces(sb: PlanSandbox): PlanNamespace[] {
  const c = sb.config;
  const joins: PlanNamespace[] = [];
  const creates: PlanNamespace[] = [];
  if (!c.hostNetwork) {
    if (!sb.namespaces.net) throw invalidArgument('ERR_SANDBOX_STATE', `Sandbox of pod ${c.namespace}/${c.name} has no network namespace`);
    joins.push({ type: 'net', path: sb.namespaces.net });
  }
  if (!c.hostIPC) {
    if (!sb.namespaces.ipc) throw invalidArgument('ERR_SANDBOX_STATE', `Sandbox of pod ${c.namespace}/${c.name} has no IPC namespace`);
    joins.push({ type: 'ipc', path: sb.namespaces.ipc });
  }
  if (!c.hostNetwork && sb.namespaces.uts) joins.push({ type: 'uts', path: sb.namespaces.uts });
  if (!c.hostPID) {
    if (c.shareProcessNamespace) {
      if (!sb.sharedPidNs) throw invalidArgument('ERR_SANDBOX_STATE', `Sandbox of pod ${c.namespace}/${c.name} shares its PID namespace but has none`);
      joins.push({ type: 'pid', path: sb.sharedPidNs });
    } else creates.push({ type: 'pid' });
  }
  creates.push({ type: 'mnt' });
  return [...joins, ...creates];
}

/** /sys/fs/cgroup: v2 → a cgroup2 mount; v1 → a tmpfs with a read-only bind of the container's own cgroup per controller (runc's layout). */
function cgroupMounts(inp: ShimPlanInput, rw: boolean): PlanMount[] {
  const ro = rw ? 0 : MS.RDONLY;
  const base = MS.NOSUID | MS.NOEXEC | MS.NODEV;
  if (inp.cgroupVersion === 'v2') {
    return [{ source: 'cgroup', target: '/sys/fs/cgroup', fstype: 'cgroup2', flags: base | MS_RELATIME | ro }];
  }
  const out: PlanMount[] = [{ source: 'tmpfs', target: '/sys/fs/cgroup', fstype: 'tmpfs', flags: base, data: 'mode=755,size=64k' }];
  for (const f of inp.cgroupProcsFiles) {
    const dir = path.dirname(f);
    const m = /^\/sys\/fs\/cgroup\/([^/]+)\//.exec(f);
    if (!m) continue;
    out.push({ source: dir, target: `/sys/fs/cgroup/${m[1]}`, fstype: 'bind', flags: MS.BIND | base | ro, mkdir: 'dir' });
  }
  return out;
}

export function computeShimPlan(inp: ShimPlanInput): ShimPlanResult {
  const { config, sandbox } = inp;
  const sec = config.security;
  const warnings: string[] = [];
  if (config.argv.length === 0 || config.argv[0] === '') {
    throw invalidArgument('ERR_CONTAINER_CONFIG_INVALID', `Container "${config.name}" has no command: set command/args or use an image with an entrypoint/cmd`, { details: { field: 'argv' } });
  }
  if (sec.runAsNonRoot && inp.user.uid === 0) {
    throw invalidArgument('ERR_CONTAINER_RUN_AS_NON_ROOT', `Container "${config.name}" has runAsNonRoot and would run as root (uid 0): set runAsUser or use an image with a non-root USER`, { details: { field: 'securityContext.runAsNonRoot' } });
  }
  for (const m of config.mounts) {
    checkContainerPath(m.containerPath, 'volumeMount.mountPath');
    if (!m.hostPath.startsWith('/')) throw invalidArgument('ERR_CONTAINER_CONFIG_INVALID', `Volume host path "${m.hostPath}" must be absolute`, { details: { field: 'hostPath' } });
  }
  if (config.workingDir !== undefined && config.workingDir !== '') checkContainerPath(config.workingDir, 'workingDir');

  const privileged = sec.privileged;
  const unmasked = privileged || sec.procMount === 'Unmasked';
  const base = MS.NOSUID | MS.NOEXEC | MS.NODEV;
  const userTargets = new Set(config.mounts.map((m) => path.posix.normalize(m.containerPath)));
  const fileBindFlags = MS.BIND | (sec.readOnlyRootFilesystem ? MS.RDONLY : 0);

  const system: PlanMount[] = [
    { source: 'proc', target: '/proc', fstype: 'proc', flags: base, mkdir: 'dir' },
    { source: 'tmpfs', target: '/dev', fstype: 'tmpfs', flags: MS.NOSUID | MS_STRICTATIME, data: 'mode=755,size=65536k', mkdir: 'dir' },
    { source: 'devpts', target: '/dev/pts', fstype: 'devpts', flags: MS.NOSUID | MS.NOEXEC, data: 'newinstance,ptmxmode=0666,mode=0620,gid=5', mkdir: 'dir' },
    { source: sandbox.shmPath, target: '/dev/shm', fstype: 'bind', flags: MS.BIND | base, mkdir: 'dir' },
    { source: 'mqueue', target: '/dev/mqueue', fstype: 'mqueue', flags: base, mkdir: 'dir' },
    // sysfs superblocks are per network namespace and shared by the pod's containers: mounting it
    // MS_RDONLY would make it read-only for a privileged container of the same pod too. Mount it
    // read-write and make this container's view read-only with a bind remount.
    { source: 'sysfs', target: '/sys', fstype: 'sysfs', flags: base, mkdir: 'dir' },
    ...(privileged ? [] : [{ source: path.join(inp.rootfs, 'sys'), target: '/sys', fstype: 'bind', flags: MS.BIND | MS.REC | base | MS.RDONLY }]),
    ...cgroupMounts(inp, privileged),
    { source: sandbox.hostsPath, target: '/etc/hosts', fstype: 'bind', flags: fileBindFlags, mkdir: 'file' },
    { source: sandbox.hostnamePath, target: '/etc/hostname', fstype: 'bind', flags: fileBindFlags, mkdir: 'file' },
    { source: sandbox.resolvConfPath, target: '/etc/resolv.conf', fstype: 'bind', flags: fileBindFlags, mkdir: 'file' },
  ];
  // A volume mounted on a default destination replaces the default (containerd does the same).
  const mounts = system.filter((m) => !userTargets.has(m.target));
  // Volumes: parents before children (containerd's orderedMounts: by path depth).
  const vols = [...config.mounts].sort((a, b) => depth(a.containerPath) - depth(b.containerPath));
  for (const v of vols) {
    mounts.push({
      source: v.hostPath,
      target: path.posix.normalize(v.containerPath),
      fstype: 'bind',
      flags: MS.BIND | MS.REC | (v.readOnly ? MS.RDONLY : 0) | PROPAGATION[v.propagation ?? 'private'],
      // runc creates a missing target like its source: a file for a file bind (subPath, termination log)
      mkdir: inp.fileVolumeSources?.has(v.hostPath) ? 'file' : 'dir',
    });
  }

  const devices = [...DEFAULT_DEVICES];
  if (privileged && inp.hostDevices) {
    const have = new Set(devices.map((d) => d.path));
    for (const d of inp.hostDevices) if (!have.has(d.path) && d.path !== '/dev/ptmx' && !d.path.startsWith('/dev/pts/')) devices.push(d);
  }

  const capSet = computeCapabilitySet({ privileged, add: sec.capabilitiesAdd, drop: sec.capabilitiesDrop, capLastCap: inp.capLastCap, available: inp.capAvailable });
  const caps = maskToHex(capSet);
  const missing = sec.capabilitiesAdd.filter((a) => !/^(CAP_)?ALL$/i.test(a) && !(capSet & (1n << BigInt(capabilityNumber(a)))) && !sec.capabilitiesDrop.some((d) => capabilityNumber(d) === capabilityNumber(a)));
  if (missing.length) warnings.push(`capabilities ${missing.join(', ')} not granted: the daemon itself does not hold them`);
  const rl = computeRlimits(inp.nofileHardLimit);
  warnings.push(...rl.warnings);
  const oom = clampOomScoreAdj(inp.oomScoreAdj, inp.oomScoreAdjFloor);
  if (oom.warning) warnings.push(oom.warning);

  const hostname = sandbox.config.hostNetwork ? sandbox.hostHostname : sandbox.config.hostname || sandbox.config.name;
  const env = mergeEnv(
    [`PATH=${DEFAULT_PATH}`],
    hostname ? [`HOSTNAME=${hostname}`] : [],
    inp.image?.env ?? [],
    config.env,
  );
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${inp.user.home || '/'}`);
  if (config.tty && !env.some((e) => e.startsWith('TERM='))) env.push('TERM=xterm');

  const cwd = config.workingDir || inp.image?.workingDir || '/';
  const namespaces = computeNamespaces(sandbox);
  // the capability-dependent parts of RuntimeDefault follow the container's effective set
  const seccomp = computeSeccompFilter({ spec: sec.seccomp, privileged, capabilities: capSet, localhost: inp.seccompLocalhost, hostArch: inp.hostArch });

  const plan: ShimPlan = {
    version: 1,
    containerId: inp.containerId,
    stateDir: inp.stateDir,
    logPath: config.logPath,
    logMaxBytes: config.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES,
    logMaxFiles: config.logMaxFiles ?? DEFAULT_LOG_MAX_FILES,
    namespaces,
    cgroupProcsFiles: inp.cgroupProcsFiles,
    ...(inp.oomCounterFile ? { oomCounterFile: inp.oomCounterFile } : {}),
    ...(oom.value !== undefined ? { oomScoreAdj: oom.value } : {}),
    rootfs: inp.rootfs,
    readonlyRootfs: sec.readOnlyRootFilesystem,
    mounts,
    devices,
    symlinks: DEFAULT_SYMLINKS.map(([a, b]) => [a, b]),
    maskedPaths: unmasked ? [] : [...MASKED_PATHS],
    readonlyPaths: unmasked ? [] : [...READONLY_PATHS],
    rlimits: rl.rlimits,
    noNewPrivs: !privileged && sec.noNewPrivs,
    capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: maskToHex(0n), ambient: maskToHex(0n) },
    ...(seccomp ? { seccomp } : {}),
    uid: inp.user.uid,
    gid: inp.user.gid,
    additionalGids: inp.user.additionalGids,
    umask: 0o022,
    cwd,
    env,
    argv: config.argv,
    tty: config.tty,
    stdin: config.stdin,
    ...(config.stdin && config.stdinOnce ? { stdinOnce: true } : {}),
  };
  return { plan, warnings };
}

/** mountPropagation → the recursive propagation flag the shim applies after binding (k8s default: private). */
const PROPAGATION = { private: MS.PRIVATE, rslave: MS.SLAVE, rshared: MS.SHARED } as const;

const depth = (p: string) => path.posix.normalize(p).split('/').filter(Boolean).length;
