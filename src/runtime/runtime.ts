// NodeletRuntime: the CRI-shaped ContainerRuntime over the native shim,
// cgroups (src/cgroups), namespace pinning + CNI (src/network) and the image
// provider's rootfs mounts. Decisions are made by pure functions
// (computeShimPlan, computeHostsFile, computeResolvConf, computeExitStatus);
// this file carries them out in numbered steps, rolls back on failure and
// persists every record atomically so a restarted daemon can re-adopt.
//
// Layout under runRoot:
//   sandboxes/<id>/sandbox.json  hosts  hostname  resolv.conf  shm/  ns/{net,ipc,uts}  pod-init/
//   containers/<id>/container.json  plan.json  rootfs/  shim/ (the shim's state dir)

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NodeletError, describeError, failedPrecondition, internal, invalidArgument, isNodeletError, notFound } from '../errors.js';
import { getLogger, type Logger } from '../log.js';
import { sysctlProcPath } from '../sys/sysctl.js';
import type { ImageProvider } from '../image/types.js';
import type { CgroupManager } from '../cgroups/types.js';
import type { NamespacePinner, PinnedNamespaces, PodNetwork, PodNetworkRequest } from '../network/types.js';
import { encodeExecFrame, ShimClient, ShimStartError, type ShimState } from './shim/index.js';
import type { ShimPlan } from './shim/plan.js';
import type { ExecRequestLike } from './shim/encode.js';
import type {
  ContainerConfig, ContainerExitEvent, ContainerRuntime, ContainerStats, ContainerStatus, ExecOptions, ExecResult, ExecSession, ExecStreamOptions,
  PodSandboxConfig, PodSandboxStatus,
} from './types.js';
import { computeShimPlan, containerOomScoreAdj, type PlanSandbox } from './compute-plan.js';
import { computeHostsFile, computeResolvConf } from './sandbox-files.js';
import { resolveUserInRootfs } from './user.js';
import { loadSeccompFor } from './seccomp/index.js';
import { newId } from './store.js';
import { writeFileAtomic, writeJsonAtomic } from '../sys/atomic.js';
import { processRunning, processStartTime, readJsonIfExists, sleep, waitAtMost } from '../sys/proc.js';
import { hostOps, type HostOps } from '../sys/host.js';
import { computePodInitPlan } from './pod-init.js';
import { computeExitStatus } from './exit-status.js';
import { crashPoint } from '../sys/crash-point.js';

export interface NodeletRuntimeOptions {
  /** Runtime state (mounts, pinned namespaces, shim state): e.g. /run/nodelet. */
  runRoot: string;
  /** Persistent state root (unused by the runtime itself; kept for symmetry with the CLI). */
  root?: string;
  images: ImageProvider;
  cgroups: CgroupManager;
  pinner: NamespacePinner;
  network: PodNetwork;
  shim?: ShimClient;
  logger?: Logger;
  /** Size of each pod's /dev/shm tmpfs (default 64 MiB, docker's default). */
  shmSizeBytes?: number;
  /** Host binary used as the pod-init (shared PID namespace holder); default /bin/busybox (static). */
  podInitBinary?: string;
  /** The runtime's mounts, process signals and host reads (/proc, /etc, /dev); default the real host (src/sys/host.ts). */
  host?: HostOps;
}

interface SandboxRecord {
  id: string;
  config: PodSandboxConfig;
  createdAt: string;
  state: 'ready' | 'notready';
  ips: string[];
  namespaces: PinnedNamespaces;
  cgroupPath: string;
  /** /dev/shm source for containers (our tmpfs, or the host's /dev/shm with hostIPC) */
  shmPath: string;
  shmMounted: boolean;
  networkSetUp: boolean;
  /** shared PID namespace holder */
  podInit?: { stateDir: string; cgroupPath: string; pid?: number };
}

interface ContainerRecord {
  id: string;
  sandboxId: string;
  config: ContainerConfig;
  createdAt: string;
  cgroupPath: string;
  rootfs: string;
  stateDir: string;
  /** what exec needs from the plan */
  exec: Pick<ShimPlan, 'env' | 'cwd' | 'uid' | 'gid' | 'additionalGids' | 'capabilities' | 'noNewPrivs' | 'cgroupProcsFiles' | 'seccomp'>;
  started: boolean;
  startedAt?: string;
  pid?: number;
  /** final status once known (exit observed or start failed) */
  final?: Pick<ContainerStatus, 'finishedAt' | 'exitCode' | 'signal' | 'oomKilled' | 'oomScope' | 'reason' | 'message'>;
  exitReported?: boolean;
}

interface Live {
  rec: ContainerRecord;
  /** resolves when the container's exit has been recorded */
  exited?: Promise<void>;
  abort?: AbortController;
  /** the plan computed at create time (re-read from plan.json after a restart) */
  plan?: ShimPlan;
  /** encoded exec requests by argv (probes and hooks repeat theirs; the request depends only on the container and argv) */
  execFrames?: Map<string, Buffer>;
}

const EXEC_FRAMES_KEPT = 8;
/** In a container directory until its container.json exists: "<pid>:<start time>" of the creating process. */
const CREATOR_FILE = 'creator';
/** At recovery, how long a shim spawned by a dead daemon may take to report (ShimClient's start timeout). */
const SHIM_START_WAIT_MS = 30_000;

const SIGNALS = os.constants.signals as Record<string, number>;

export class NodeletRuntime implements ContainerRuntime {
  private readonly opts: NodeletRuntimeOptions;
  private readonly log: Logger;
  private readonly shim: ShimClient;
  private readonly host: HostOps;
  private readonly sandboxes = new Map<string, SandboxRecord>();
  private readonly containers = new Map<string, Live>();
  private readonly listeners = new Set<(e: ContainerExitEvent) => void>();
  private readonly pendingEvents: ContainerExitEvent[] = [];
  private readonly capLastCap: number;
  private readonly capAvailable: bigint | undefined;
  private readonly nofileHard: number;
  private readonly oomFloor: number | undefined;
  private closed = false;
  /** "<pid>:<start time>": this process, as CREATOR_FILE names it */
  private readonly self = `${process.pid}:${processStartTime(process.pid) ?? 0}`;
  private readonly warned = new Set<string>();

  constructor(opts: NodeletRuntimeOptions) {
    this.opts = opts;
    this.log = opts.logger ?? getLogger('runtime');
    this.shim = opts.shim ?? new ShimClient();
    this.host = opts.host ?? hostOps;
    fs.mkdirSync(path.join(opts.runRoot, 'sandboxes'), { recursive: true, mode: 0o711 });
    fs.mkdirSync(path.join(opts.runRoot, 'containers'), { recursive: true, mode: 0o711 });
    const capLastCap = this.host.readFile('/proc/sys/kernel/cap_last_cap');
    if (capLastCap === undefined) throw internal('ERR_HOST_PROC', 'Cannot read /proc/sys/kernel/cap_last_cap: is /proc mounted?');
    this.capLastCap = Number(capLastCap.trim());
    const status = this.readOr('/proc/self/status', '');
    this.nofileHard = parseNofileHard(this.readOr('/proc/self/limits', ''));
    const bnd = /^CapBnd:\s*([0-9a-f]+)/m.exec(status)?.[1];
    this.capAvailable = bnd ? BigInt('0x' + bnd) : undefined;
    this.oomFloor = oomScoreAdjFloor(status, this.readOr('/proc/self/oom_score_adj', '0'));
  }

  private readOr(file: string, dflt: string): string {
    return this.host.readFile(file) ?? dflt;
  }

  /** Open a runtime over existing state (after a daemon restart or SIGKILL) and re-adopt everything. */
  static async open(opts: NodeletRuntimeOptions): Promise<NodeletRuntime> {
    const rt = new NodeletRuntime(opts);
    await rt.recover();
    return rt;
  }

  private sbDir(id: string) { return path.join(this.opts.runRoot, 'sandboxes', id); }
  private ctrDir(id: string) { return path.join(this.opts.runRoot, 'containers', id); }
  private saveSandbox(sb: SandboxRecord) { writeJsonAtomic(path.join(this.sbDir(sb.id), 'sandbox.json'), sb, { mode: 0o600 }); }
  private saveContainer(rec: ContainerRecord) { writeJsonAtomic(path.join(this.ctrDir(rec.id), 'container.json'), rec, { mode: 0o600 }); }

  // ---------------------------------------------------------------- sandboxes

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    this.checkOpen();
    if (!config.uid || !config.name) throw invalidArgument('ERR_SANDBOX_CONFIG_INVALID', 'Pod sandbox needs metadata.uid and metadata.name', { details: { field: !config.uid ? 'uid' : 'name' } });
    const id = newId();
    const dir = this.sbDir(id);
    const undo: (() => Promise<void> | void)[] = [];
    const sb: SandboxRecord = {
      id, config, createdAt: new Date().toISOString(), state: 'ready', ips: [], namespaces: {},
      cgroupPath: this.opts.cgroups.podPath(config.uid, config.qosClass), shmPath: '/dev/shm', shmMounted: false, networkSetUp: false,
    };
    const log = this.log.child({ sandbox: id.slice(0, 12), pod: `${config.namespace}/${config.name}` });
    try {
      fs.mkdirSync(dir, { mode: 0o711 });
      undo.push(() => fs.rmSync(dir, { recursive: true, force: true }));
      fs.writeFileSync(path.join(dir, CREATOR_FILE), this.self); // who is creating it, until sandbox.json exists
      // Step 1: pin the pod's namespaces (no pause process).
      const hostname = config.hostname || config.name;
      if (!config.hostNetwork || !config.hostIPC) {
        sb.namespaces = await this.opts.pinner.pin({
          dir: path.join(dir, 'ns'), net: !config.hostNetwork, ipc: !config.hostIPC, uts: !config.hostNetwork,
          hostname: config.hostNetwork ? undefined : hostname,
          sysctls: sysctlPaths(config.sysctls),
        });
        undo.push(() => this.opts.pinner.unpin(sb.namespaces));
        crashPoint('sandbox-pinned', config.name);
      }
      // Step 2: the pod cgroup, with the pod-level limits.
      await this.opts.cgroups.create(sb.cgroupPath, {
        memoryMaxBytes: config.resources.memoryLimitBytes, cpuLimitMilli: config.resources.cpuLimitMilli, cpuRequestMilli: config.resources.cpuRequestMilli,
        pidsMax: config.resources.pidsLimit,
      });
      undo.push(() => this.opts.cgroups.remove(sb.cgroupPath));
      this.saveSandbox(sb); // recorded before networking so a crash mid-setUp can still be torn down
      // Step 3: CNI.
      if (!config.hostNetwork) {
        sb.networkSetUp = true;
        undo.push(() => this.opts.network.tearDown(this.netReq(sb)));
        const res = await this.opts.network.setUp(this.netReq(sb));
        sb.ips = res.ips;
      }
      // Step 4: /dev/shm shared by the pod's containers.
      if (!config.hostIPC) {
        sb.shmPath = path.join(dir, 'shm');
        fs.mkdirSync(sb.shmPath, { mode: 0o755 });
        this.host.mountTmpfs(sb.shmPath, { mode: 0o1777, sizeBytes: this.opts.shmSizeBytes ?? 64 * 1024 * 1024 });
        sb.shmMounted = true;
        undo.push(() => this.host.unmountAll(sb.shmPath));
      }
      // Step 5: hosts, hostname, resolv.conf.
      const hostsFile = computeHostsFile({
        hostname, podIPs: sb.ips, hostAliases: config.hostAliases, hostNetwork: config.hostNetwork,
        hostHostsFile: config.hostNetwork ? this.readOr('/etc/hosts', '') : undefined,
      });
      writeFileAtomic(path.join(dir, 'hosts'), hostsFile, { mode: 0o644 });
      writeFileAtomic(path.join(dir, 'hostname'), (config.hostNetwork ? this.host.hostname() : hostname) + '\n', { mode: 0o644 });
      const resolv = computeResolvConf({ dns: config.dns, hostNetwork: config.hostNetwork, hostResolvConf: this.readOr('/etc/resolv.conf', '') });
      if (resolv.droppedNameservers.length) log.warn('dropped loopback nameservers from the pod resolv.conf (unreachable from the pod network namespace)', { dropped: resolv.droppedNameservers });
      writeFileAtomic(path.join(dir, 'resolv.conf'), resolv.content, { mode: 0o644 });
      // Step 6: the shared PID namespace holder (pod-init) when asked for.
      if (config.shareProcessNamespace && !config.hostPID) {
        const initDir = path.join(dir, 'pod-init');
        fs.mkdirSync(path.join(initDir, 'rootfs'), { recursive: true });
        sb.podInit = { stateDir: path.join(initDir, 'state'), cgroupPath: `${sb.cgroupPath}/pod-init` };
        await this.opts.cgroups.create(sb.podInit.cgroupPath, {});
        undo.push(() => this.opts.cgroups.remove(sb.podInit!.cgroupPath));
        const plan = computePodInitPlan({
          sandboxId: id, dir: initDir, binary: this.opts.podInitBinary ?? '/bin/busybox', namespaces: sb.namespaces,
          cgroupProcsFiles: this.opts.cgroups.procsFiles(sb.podInit.cgroupPath), nofileHardLimit: this.nofileHard, oomScoreAdjFloor: this.oomFloor,
        });
        undo.push(() => this.opts.cgroups.killAll(sb.podInit!.cgroupPath));
        const st = await this.shim.start(plan);
        sb.podInit.pid = st.pid;
      }
      this.saveSandbox(sb);
      this.sandboxes.set(id, sb);
      log.info('pod sandbox ready', { ips: sb.ips });
      return id;
    } catch (e) {
      log.error('pod sandbox setup failed; rolling back', { error: describeError(e) });
      for (const u of undo.reverse()) {
        try { await u(); } catch (ue) { log.warn('rollback step failed', { error: describeError(ue) }); }
      }
      throw e;
    }
  }

  private netReq(sb: SandboxRecord): PodNetworkRequest {
    return {
      sandboxId: sb.id, podName: sb.config.name, podNamespace: sb.config.namespace, podUid: sb.config.uid,
      netnsPath: sb.namespaces.net ?? '', portMappings: sb.config.portMappings,
    };
  }

  async stopPodSandbox(id: string): Promise<void> {
    const sb = this.sandboxes.get(id);
    if (!sb) return; // idempotent: unknown sandbox is already stopped (CRI semantics)
    for (const live of [...this.containers.values()]) {
      if (live.rec.sandboxId === id) await this.stopContainer(live.rec.id, 0);
    }
    if (sb.podInit) await this.opts.cgroups.killAll(sb.podInit.cgroupPath).catch(() => undefined);
    if (sb.networkSetUp) {
      await this.opts.network.tearDown(this.netReq(sb));
      sb.networkSetUp = false;
    }
    sb.state = 'notready';
    this.saveSandbox(sb);
  }

  async removePodSandbox(id: string): Promise<void> {
    const sb = this.sandboxes.get(id);
    if (!sb) return;
    await this.stopPodSandbox(id);
    for (const live of [...this.containers.values()]) {
      if (live.rec.sandboxId === id) await this.removeContainer(live.rec.id);
    }
    if (sb.podInit) await this.opts.cgroups.remove(sb.podInit.cgroupPath);
    await this.opts.pinner.unpin(sb.namespaces);
    crashPoint('sandbox-remove-unpinned', sb.config.name);
    if (sb.shmMounted) this.host.unmountAll(sb.shmPath);
    await this.opts.cgroups.remove(sb.cgroupPath);
    fs.rmSync(this.sbDir(id), { recursive: true, force: true });
    this.sandboxes.delete(id);
  }

  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    return this.sandboxStatus(this.getSandbox(id));
  }

  async listPodSandboxes(): Promise<PodSandboxStatus[]> {
    return [...this.sandboxes.values()].map((sb) => this.sandboxStatus(sb));
  }

  private sandboxStatus(sb: SandboxRecord): PodSandboxStatus {
    return {
      id: sb.id, config: sb.config, state: sb.state, createdAt: sb.createdAt, ips: sb.ips,
      namespaces: { ...sb.namespaces, ...(sb.podInit?.pid ? { pid: `/proc/${sb.podInit.pid}/ns/pid` } : {}) },
      cgroupPath: sb.cgroupPath,
    };
  }

  private getSandbox(id: string): SandboxRecord {
    const sb = this.sandboxes.get(id) ?? [...this.sandboxes.values()].find((s) => id.length >= 4 && s.id.startsWith(id));
    if (!sb) throw notFound('ERR_SANDBOX_NOT_FOUND', `Pod sandbox ${id} not found (list them with "nodelet runtime ps")`, { details: { sandboxId: id } });
    return sb;
  }

  // --------------------------------------------------------------- containers

  async createContainer(sandboxId: string, config: ContainerConfig): Promise<string> {
    this.checkOpen();
    const sb = this.getSandbox(sandboxId);
    if (sb.state !== 'ready') throw failedPrecondition('ERR_SANDBOX_NOT_READY', `Pod sandbox ${sb.id.slice(0, 12)} is not ready (stopped); create a new sandbox`);
    const id = newId();
    const dir = this.ctrDir(id);
    const rootfs = path.join(dir, 'rootfs');
    const stateDir = path.join(dir, 'shim');
    const cgroupPath = `${sb.cgroupPath}/${id}`;
    const log = this.log.child({ container: id.slice(0, 12), name: config.name });
    const undo: (() => Promise<void> | void)[] = [];
    try {
      // Step 1: the image, and the container cgroup under the pod's.
      const image = await this.opts.images.getImage(config.imageId || config.imageRef);
      if (!image) throw notFound('ERR_IMAGE_NOT_FOUND', `Image "${config.imageRef}" (${config.imageId}) is not present: pull it first`, { details: { image: config.imageRef } });
      fs.mkdirSync(rootfs, { recursive: true, mode: 0o711 });
      fs.mkdirSync(stateDir, { mode: 0o700 });
      undo.push(() => fs.rmSync(dir, { recursive: true, force: true }));
      fs.writeFileSync(path.join(dir, CREATOR_FILE), this.self); // who is creating it, until container.json exists
      const r = config.resources;
      await this.opts.cgroups.create(cgroupPath, { memoryMaxBytes: r.memoryLimitBytes, cpuLimitMilli: r.cpuLimitMilli, cpuRequestMilli: r.cpuRequestMilli, pidsMax: r.pidsLimit });
      undo.push(() => this.opts.cgroups.remove(cgroupPath));
      const procsFiles = this.opts.cgroups.procsFiles(cgroupPath);
      // Step 2: the rootfs.
      undo.push(() => this.opts.images.removeRootfs(id));
      const mounts = await this.opts.images.prepareRootfs(id, image.id);
      this.host.mountAll(mounts, rootfs);
      crashPoint('container-mounted', config.name);
      undo.push(() => this.host.unmountAll(rootfs));
      // Step 3: who the process runs as (image USER against the rootfs's /etc/passwd).
      const sec = config.security;
      const user = resolveUserInRootfs(rootfs, {
        imageUser: image.config.user, runAsUser: sec.runAsUser, runAsGroup: sec.runAsGroup, supplementalGroups: sec.supplementalGroups,
        supplementalGroupsPolicy: sec.supplementalGroupsPolicy,
      });
      // Step 4: the plan.
      const { plan, warnings } = computeShimPlan({
        containerId: id, stateDir, rootfs, config, sandbox: this.planSandbox(sb), image: image.config, user,
        cgroupVersion: this.opts.cgroups.version, cgroupProcsFiles: procsFiles, oomCounterFile: this.opts.cgroups.oomCounterFile(cgroupPath),
        oomScoreAdj: containerOomScoreAdj(sb.config.qosClass, config, this.host.totalMemoryBytes()),
        capLastCap: this.capLastCap, capAvailable: this.capAvailable, nofileHardLimit: this.nofileHard, oomScoreAdjFloor: this.oomFloor,
        hostDevices: sec.privileged ? this.host.listDevices() : undefined,
        seccompLocalhost: loadSeccompFor(sec, this.opts.root),
        fileVolumeSources: new Set(config.mounts.map((m) => m.hostPath).filter((p) => fs.statSync(p, { throwIfNoEntry: false })?.isFile())),
      });
      for (const w of warnings) {
        // host-wide facts (clamped rlimits, missing capabilities) are warned about once, then logged at debug
        if (this.warned.has(w)) log.debug(w);
        else { this.warned.add(w); log.warn(w); }
      }
      fs.mkdirSync(path.dirname(config.logPath), { recursive: true });
      writeJsonAtomic(path.join(dir, 'plan.json'), plan, { mode: 0o600 });
      const rec: ContainerRecord = {
        id, sandboxId: sb.id, config, createdAt: new Date().toISOString(), cgroupPath, rootfs, stateDir, started: false,
        exec: { env: plan.env, cwd: plan.cwd, uid: plan.uid, gid: plan.gid, additionalGids: plan.additionalGids, capabilities: plan.capabilities, noNewPrivs: plan.noNewPrivs, cgroupProcsFiles: procsFiles, seccomp: plan.seccomp },
      };
      this.saveContainer(rec);
      this.containers.set(id, { rec, plan });
      crashPoint('container-created', config.name);
      return id;
    } catch (e) {
      for (const u of undo.reverse()) {
        try { await u(); } catch (ue) { log.warn('rollback step failed', { error: describeError(ue) }); }
      }
      if (isNodeletError(e)) throw e;
      throw internal('ERR_CONTAINER_CREATE', `Cannot create container "${config.name}": ${describeError(e)}`, { cause: e });
    }
  }

  private planSandbox(sb: SandboxRecord): PlanSandbox {
    const dir = this.sbDir(sb.id);
    return {
      config: sb.config, namespaces: sb.namespaces,
      sharedPidNs: sb.podInit?.pid ? `/proc/${sb.podInit.pid}/ns/pid` : undefined,
      hostsPath: path.join(dir, 'hosts'), hostnamePath: path.join(dir, 'hostname'), resolvConfPath: path.join(dir, 'resolv.conf'), shmPath: sb.shmPath,
      hostHostname: this.host.hostname(),
    };
  }

  async startContainer(id: string): Promise<void> {
    this.checkOpen();
    const live = this.getLive(id);
    const rec = live.rec;
    if (rec.started) throw failedPrecondition('ERR_CONTAINER_STATE', `Container ${rec.id.slice(0, 12)} ("${rec.config.name}") was already started; create a new one`);
    const plan = live.plan ?? readJsonIfExists<ShimPlan>(path.join(this.ctrDir(rec.id), 'plan.json'), { ignoreInvalid: true });
    live.plan = undefined;
    if (!plan) throw internal('ERR_CONTAINER_STATE', `Container ${rec.id.slice(0, 12)} has no plan.json`);
    rec.started = true;
    let st: ShimState;
    try {
      st = await this.shim.start(plan);
    } catch (e) {
      // kubelet's StartError: exit code 128, the failing stage/errno in the message.
      await this.opts.cgroups.killAll(rec.cgroupPath).catch(() => undefined);
      const msg = e instanceof ShimStartError ? e.message : describeError(e);
      rec.final = { finishedAt: new Date().toISOString(), exitCode: 128, oomKilled: false, reason: 'StartError', message: msg };
      this.saveContainer(rec);
      this.emitExit(rec);
      throw e instanceof NodeletError ? e : internal('ERR_CONTAINER_START', `Cannot start container "${rec.config.name}": ${msg}`, { cause: e });
    }
    crashPoint('container-started', rec.config.name);
    rec.pid = st.pid;
    rec.startedAt = st.startedAt;
    this.saveContainer(rec);
    this.watch(live);
    if (st.status === 'exited') await live.exited; // very fast exit: recorded before returning
  }

  /** Wait (in the background) for the shim's exit record, then record and announce it. */
  private watch(live: Live): void {
    const ac = new AbortController();
    live.abort = ac;
    live.exited = this.shim.waitExit(live.rec.stateDir, ac.signal).then(
      (st) => {
        crashPoint('exit-recorded', live.rec.config.name);
        return this.recordExit(live.rec, st);
      },
      (e) => {
        if (ac.signal.aborted) return;
        // The shim died without an exit record (ERR_SHIM_LOST): the exit code is lost.
        this.log.error('waiting for container exit failed', { container: live.rec.id.slice(0, 12), error: describeError(e) });
        return this.recordLost(live.rec, describeError(e));
      },
    );
  }

  private async recordLost(rec: ContainerRecord, why: string): Promise<void> {
    if (rec.final) return;
    rec.final = { finishedAt: new Date().toISOString(), exitCode: 255, oomKilled: false, reason: 'Unknown', message: `the container monitor (shim) died without recording an exit status: ${why}` };
    await this.opts.cgroups.killAll(rec.cgroupPath).catch(() => undefined);
    this.emitExit(rec);
  }

  private async recordExit(rec: ContainerRecord, st: ShimState): Promise<void> {
    if (rec.final) return;
    const sb = this.sandboxes.get(rec.sandboxId);
    let containerOoms = 0;
    let podOoms = 0;
    // Only a SIGKILL can be the OOM killer: read the cgroup counters then (the hot path of a clean exit skips them).
    if (st.oomKilled || st.signal === 'SIGKILL' || st.exitCode === 137) {
      try { containerOoms = (await this.opts.cgroups.stats(rec.cgroupPath)).oomKills; } catch { /* cgroup gone */ }
      if (sb) try { podOoms = (await this.opts.cgroups.stats(sb.cgroupPath)).oomKills; } catch { /* gone */ }
    }
    rec.final = computeExitStatus({ state: st, containerOomKills: containerOoms, podOomKills: podOoms, containerHasMemoryLimit: rec.config.resources.memoryLimitBytes !== undefined, podHasMemoryLimit: sb?.config.resources.memoryLimitBytes !== undefined });
    rec.pid = st.pid;
    // With its own PID namespace the kernel already killed everything when the init died;
    // in a shared (or the host's) PID namespace the rest of the cgroup is killed here.
    if (!this.ownPidNamespace(rec)) await this.opts.cgroups.killAll(rec.cgroupPath).catch(() => undefined);
    this.emitExit(rec);
  }

  private ownPidNamespace(rec: ContainerRecord): boolean {
    const c = this.sandboxes.get(rec.sandboxId)?.config;
    return !!c && !c.hostPID && !c.shareProcessNamespace;
  }

  /** Persist the final status and announce it (queued until a listener exists, e.g. right after open()). */
  private emitExit(rec: ContainerRecord): void {
    if (rec.exitReported) return;
    const ev: ContainerExitEvent = { containerId: rec.id, sandboxId: rec.sandboxId, status: this.statusOf(rec) };
    rec.exitReported = this.listeners.size > 0;
    this.saveContainer(rec);
    if (rec.exitReported) {
      crashPoint('exit-reported', rec.config.name);
      this.deliver(ev);
    } else this.pendingEvents.push(ev);
  }

  private deliver(ev: ContainerExitEvent): void {
    for (const l of this.listeners) {
      try { l(ev); } catch (e) { this.log.error('container exit listener threw', { error: describeError(e) }); }
    }
  }

  async stopContainer(id: string, timeoutSeconds: number): Promise<void> {
    const live = this.findLive(id);
    if (!live) return;
    const rec = live.rec;
    if (rec.started && !rec.final && rec.pid) {
      const sig = SIGNALS[(rec.config.stopSignal ?? 'SIGTERM').toUpperCase().replace(/^(?!SIG)/, 'SIG')] ?? SIGNALS.SIGTERM!;
      const proc = this.host.openProcess(rec.pid); // undefined: already gone
      try {
        if (proc && timeoutSeconds > 0 && proc.signal(sig)) {
          crashPoint('stop-signalled', rec.config.name);
          await waitAtMost(live.exited, timeoutSeconds * 1000);
        }
        if (!rec.final && proc) proc.signal(SIGNALS.SIGKILL!);
      } finally {
        proc?.close();
      }
    }
    // Whatever the init left behind in its cgroup dies too (cgroup.kill on v2). An exited
    // container with its own PID namespace has an empty cgroup already (the kernel saw to it).
    if (!(rec.final && rec.final.reason !== 'Unknown' && this.ownPidNamespace(rec)) && rec.started) {
      await this.opts.cgroups.killAll(rec.cgroupPath).catch((e) => this.log.warn('cgroup killAll failed', { error: describeError(e) }));
    }
    if (rec.started && !rec.final && live.exited) await live.exited;
  }

  async removeContainer(id: string): Promise<void> {
    const live = this.findLive(id);
    if (!live) return;
    const rec = live.rec;
    await this.stopContainer(rec.id, 0);
    live.abort?.abort();
    // exit.json is the shim's last write: once it is there the state dir can go. Otherwise wait for the shim.
    if (rec.started && !(rec.final && rec.final.reason !== 'StartError' && rec.final.reason !== 'Unknown')) await this.waitShimGone(rec.stateDir);
    this.host.unmountAll(rec.rootfs);
    crashPoint('remove-unmounted', rec.config.name);
    await this.opts.images.removeRootfs(rec.id);
    await this.opts.cgroups.remove(rec.cgroupPath);
    crashPoint('remove-state-removed', rec.config.name);
    fs.rmSync(this.ctrDir(rec.id), { recursive: true, force: true });
    this.containers.delete(rec.id);
  }

  private async waitShimGone(stateDir: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (!(await this.shim.shimAlive(stateDir).catch(() => false))) return;
      await sleep(5);
    }
    this.log.warn('shim still alive after container exit', { stateDir });
  }

  async containerStatus(id: string): Promise<ContainerStatus> {
    return this.statusOf(this.getLive(id).rec);
  }

  async listContainers(filter?: { sandboxId?: string }): Promise<ContainerStatus[]> {
    return [...this.containers.values()].filter((l) => !filter?.sandboxId || l.rec.sandboxId === filter.sandboxId).map((l) => this.statusOf(l.rec));
  }

  async containerStats(id: string): Promise<ContainerStats> {
    const rec = this.getLive(id).rec;
    const s = await this.opts.cgroups.stats(rec.cgroupPath);
    return { timestamp: new Date().toISOString(), cpuUsageNanos: s.cpuUsageNanos, memoryWorkingSetBytes: s.memoryWorkingSetBytes, memoryUsageBytes: s.memoryUsageBytes, pids: s.pids };
  }

  private statusOf(rec: ContainerRecord): ContainerStatus {
    const c = rec.config;
    const state = rec.final ? 'exited' : rec.started ? (rec.pid ? 'running' : 'unknown') : 'created';
    return {
      id: rec.id, sandboxId: rec.sandboxId, name: c.name, attempt: c.attempt, state,
      ...(rec.pid && state === 'running' ? { pid: rec.pid } : {}),
      createdAt: rec.createdAt, startedAt: rec.startedAt,
      ...(rec.final ?? { oomKilled: false }),
      oomKilled: rec.final?.oomKilled ?? false,
      // containerd reports the identity of the spec's process (uid, gid, additionalGids)
      user: { linux: { uid: rec.exec.uid, gid: rec.exec.gid, supplementalGroups: [...rec.exec.additionalGids] } },
      imageRef: c.imageRef, imageId: c.imageId, logPath: c.logPath, labels: c.labels, annotations: c.annotations,
    };
  }

  async execSync(id: string, argv: string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const { rec, req } = this.execRequest(id, argv, opts.env);
    let requestFrame: Buffer | undefined;
    if (!opts.env?.length) {
      const live = this.getLive(id);
      const key = `${req.pid}/${opts.stdin === undefined ? 0 : 1}${JSON.stringify(argv)}`;
      requestFrame = live.execFrames?.get(key);
      if (!requestFrame) {
        requestFrame = encodeExecFrame(req, { stdin: opts.stdin !== undefined });
        if ((live.execFrames ??= new Map()).size >= EXEC_FRAMES_KEPT) live.execFrames.clear();
        live.execFrames.set(key, requestFrame);
      }
    }
    return this.shim.exec({ ...req, stateDir: rec.stateDir, timeoutMs: opts.timeoutMs, stdin: opts.stdin, requestFrame });
  }

  async exec(id: string, argv: string[], opts: ExecStreamOptions = {}): Promise<ExecSession> {
    const { rec, req } = this.execRequest(id, argv, opts.env);
    return this.shim.execStream(rec.stateDir, req, { tty: opts.tty, stdin: opts.stdin, size: opts.size });
  }

  async attach(id: string, opts: { stdin?: boolean } = {}): Promise<ExecSession> {
    const rec = this.getLive(id).rec;
    const name = `Container ${rec.id.slice(0, 12)} ("${rec.config.name}")`;
    if (!rec.started || rec.final || !rec.pid) throw failedPrecondition('ERR_CONTAINER_NOT_RUNNING', `${name} is not running; cannot attach`);
    if (opts.stdin && !rec.config.stdin)
      throw failedPrecondition('ERR_ATTACH_NO_STDIN', `${name} does not keep stdin open: set stdin: true in the container's spec to attach with stdin`);
    return this.shim.attach(rec.stateDir, rec.pid, { tty: rec.config.tty, stdin: opts.stdin === true });
  }

  /** Both exec paths go through the container's shim (its exec socket in the state dir). */
  private execRequest(id: string, argv: string[], env?: string[]): { rec: ContainerRecord; req: ExecRequestLike } {
    const rec = this.getLive(id).rec;
    if (!rec.started || rec.final || !rec.pid) throw failedPrecondition('ERR_CONTAINER_NOT_RUNNING', `Container ${rec.id.slice(0, 12)} ("${rec.config.name}") is not running; cannot exec`);
    if (argv.length === 0) throw invalidArgument('ERR_EXEC_INVALID', 'exec needs a command');
    const e = rec.exec;
    return {
      rec,
      req: {
        pid: rec.pid, cgroupProcsFiles: e.cgroupProcsFiles, argv, env: env?.length ? mergeKeys(e.env, env) : e.env, cwd: e.cwd,
        uid: e.uid, gid: e.gid, additionalGids: e.additionalGids, capabilities: e.capabilities, noNewPrivs: e.noNewPrivs, seccomp: e.seccomp,
      },
    };
  }

  onContainerExit(listener: (e: ContainerExitEvent) => void): () => void {
    this.listeners.add(listener);
    const pending = this.pendingEvents.splice(0);
    for (const ev of pending) {
      const rec = this.containers.get(ev.containerId)?.rec;
      if (rec && !rec.exitReported) {
        rec.exitReported = true;
        this.saveContainer(rec);
      }
      this.deliver(ev);
    }
    return () => { this.listeners.delete(listener); };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const live of this.containers.values()) live.abort?.abort();
    await Promise.all([...this.containers.values()].map((l) => l.exited?.catch(() => undefined)));
  }

  private checkOpen(): void {
    if (this.closed) throw failedPrecondition('ERR_RUNTIME_CLOSED', 'The runtime was closed');
  }

  private findLive(id: string): Live | undefined {
    return this.containers.get(id) ?? [...this.containers.values()].find((l) => id.length >= 4 && l.rec.id.startsWith(id));
  }

  private getLive(id: string): Live {
    const l = this.findLive(id);
    if (!l) throw notFound('ERR_CONTAINER_NOT_FOUND', `Container ${id} not found (list them with "nodelet runtime ps")`, { details: { containerId: id } });
    return l;
  }

  // ----------------------------------------------------------------- recovery

  /** Re-read every sandbox and container; re-attach to running shims; record exits that happened meanwhile. */
  async recover(): Promise<void> {
    for (const id of listDir(path.join(this.opts.runRoot, 'sandboxes'))) {
      const sb = readJsonIfExists<SandboxRecord>(path.join(this.sbDir(id), 'sandbox.json'), { ignoreInvalid: true });
      if (sb?.id === id) this.sandboxes.set(id, sb);
      else await this.removeIncomplete('sandbox', id);
    }
    for (const id of listDir(path.join(this.opts.runRoot, 'containers'))) {
      const rec = readJsonIfExists<ContainerRecord>(path.join(this.ctrDir(id), 'container.json'), { ignoreInvalid: true });
      if (rec?.id !== id) {
        await this.removeIncomplete('container', id);
        continue;
      }
      const live: Live = { rec };
      this.containers.set(id, live);
      if (!rec.started && !(await this.adoptUnrecordedStart(rec))) continue;
      if (rec.final) {
        if (!rec.exitReported) this.emitExit(rec);
        continue;
      }
      const st = await this.shim.readState(rec.stateDir).catch(() => undefined);
      if (st?.status === 'exited') {
        live.exited = this.recordExit(rec, st);
        await live.exited;
      } else if (st && (await this.shim.shimAlive(rec.stateDir))) {
        rec.pid = st.pid;
        this.watch(live);
      } else {
        // The shim is gone without an exit record (killed): the exit code is lost, as containerd reports it.
        await this.recordLost(rec, 'found at recovery');
      }
    }
    this.log.info('runtime state recovered', { sandboxes: this.sandboxes.size, containers: this.containers.size });
  }

  /**
   * A sandbox or container directory without its valid record (sandbox.json, container.json): a create killed
   * before writing it, or a remove killed near its end. Nothing in it ever ran (no shim is spawned before the
   * record): whatever is mounted under it (pinned namespaces, /dev/shm, a rootfs), a container's rootfs snapshot,
   * and the directory go; a cgroup made meanwhile goes with the pod's cgroup tree. Left alone while the process
   * creating it (another runtime on this run root: a `nodelet run`) is alive.
   */
  private async removeIncomplete(kind: 'sandbox' | 'container', id: string): Promise<void> {
    const dir = kind === 'sandbox' ? this.sbDir(id) : this.ctrDir(id);
    const creator = readFileOr(path.join(dir, CREATOR_FILE));
    const [pid, start] = creator.split(':');
    if (creator !== this.self && pid && processRunning(Number(pid), start)) {
      this.log.warn(`${kind} directory without its record is being created by another process; left alone`, { dir, creator });
      return;
    }
    this.log.warn(`removing an incomplete ${kind} directory (its create or remove was killed midway)`, { dir });
    try {
      this.host.unmountAll(dir, { submounts: true });
      if (kind === 'container') await this.opts.images.removeRootfs(id);
      fs.rmSync(dir, { recursive: true, force: true });
    } catch (e) {
      this.log.warn(`cannot remove an incomplete ${kind} directory`, { dir, error: describeError(e) });
    }
  }

  /**
   * A record without `started` whose shim ran anyway: the daemon died between spawning the shim and saving
   * the start (the shim outlives it and records state.json, then exit.json). The shim's state wins: the record
   * becomes started with the shim's pid and start time, and recovery goes on as for any started container.
   * A shim still starting (spawned, no state.json yet) is waited for. False when nothing ever ran: the
   * container stays `created` (the agent replaces it).
   */
  private async adoptUnrecordedStart(rec: ContainerRecord): Promise<boolean> {
    let st = await this.shim.readState(rec.stateDir).catch(() => undefined);
    for (const end = Date.now() + SHIM_START_WAIT_MS; !st && Date.now() < end && this.shimStarting(rec.stateDir); ) {
      await sleep(20);
      st = await this.shim.readState(rec.stateDir).catch(() => undefined);
    }
    if (!st) return false;
    rec.started = true;
    rec.pid = st.pid;
    rec.startedAt = st.startedAt;
    this.saveContainer(rec);
    this.log.warn('container started by a shim the daemon never recorded (daemon killed while starting it): adopted', { container: rec.id.slice(0, 12), name: rec.config.name, state: st.status });
    return true;
  }

  /** A live `nodelet-shim run <stateDir>` process (spawned, not yet reporting in state.json). */
  private shimStarting(stateDir: string): boolean {
    let pids: string[];
    try { pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)); } catch { return false; }
    const want = `\0run\0${stateDir}\0`;
    return pids.some((p) => this.host.readFile(`/proc/${p}/cmdline`)?.includes(want) && processRunning(Number(p)));
  }
}

// ------------------------------------------------------------------ helpers

function readFileOr(f: string, dflt = ''): string {
  try { return fs.readFileSync(f, 'utf8'); } catch { return dflt; }
}

function listDir(d: string): string[] {
  try { return fs.readdirSync(d).filter((n) => /^[0-9a-f]{64}$/.test(n)); } catch { return []; }
}

function mergeKeys(base: string[], extra: string[]): string[] {
  const m = new Map<string, string>();
  for (const kv of [...base, ...extra]) m.set(kv.split('=', 1)[0]!, kv);
  return [...m.values()];
}

/** The daemon's own hard RLIMIT_NOFILE, from the text of /proc/self/limits. */
function parseNofileHard(limits: string): number {
  const line = limits.split('\n').find((l) => l.startsWith('Max open files'));
  const hard = line?.trim().split(/\s+/)[4];
  return hard === undefined ? 1024 : hard === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(hard);
}

/** Without CAP_SYS_RESOURCE (bit 24) the daemon cannot go below its own oom_score_adj (texts of /proc/self/status and oom_score_adj). */
function oomScoreAdjFloor(status: string, ownOomScoreAdj: string): number | undefined {
  const capEff = /^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1];
  if (capEff && (BigInt('0x' + capEff) & (1n << 24n)) !== 0n) return undefined;
  return Number(ownOomScoreAdj.trim()) || 0;
}

/** Sandbox sysctls keyed by their /proc/sys path, for the pinner. */
function sysctlPaths(sysctls: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!sysctls || Object.keys(sysctls).length === 0) return undefined;
  return Object.fromEntries(Object.entries(sysctls).map(([k, v]) => [sysctlProcPath(k), v]));
}
