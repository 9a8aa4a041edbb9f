// Pod sync (kubelet kuberuntime SyncPod, SyncTerminatingPod, SyncTerminatedPod):
// ask the pure decider (computePodActions, src/pod/actions.ts) what to do and
// carry it out in numbered steps; start and stop containers with their hooks;
// compute the status (computePodStatus) and hand it to the status manager.
// Every dependency is a port: tests drive this with a fake runtime.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describeError, isNodeletError } from '../errors.js';
import type { Container, LifecycleHandler, Pod, PodObjects, PodStatus } from '../pod/api-types.js';
import { computePodActions, killOrder, pastActiveDeadline, type RuntimePodStatus } from '../pod/actions.js';
import type { Backoff } from '../pod/backoff.js';
import { containerLogLinkFor, podLogsDirFor } from '../pod/container-config.js';
import { getLogger } from '../log.js';
import { computePodStatus, type ProbeState } from '../pod/status.js';
import { EVICTION_GRACE_SECONDS } from './eviction.js';
import { podIPsOf } from '../pod/env.js';
import type { ProbeKind, ProbeWorkerState } from '../pod/probe.js';
import type { ContainerRuntime, ContainerStatus as RtStatus, PodSandboxStatus } from '../runtime/types.js';
import { containerConfigForHost, sandboxConfigForHost } from '../host/pod-config.js';
import { readTerminationMessage } from '../host/termination-message.js';
import { httpProbe } from '../probe/probers.js';
import { sleep } from '../sys/proc.js';
import { crashPoint } from '../sys/crash-point.js';
import { primaryIPv4Sync } from '../node/host-info.js';
import { containerFieldPath } from './events.js';
import type { ImagePuller } from './image-puller.js';
import type { ProberManager } from './prober-manager.js';
import type { StatusManager } from './status-manager.js';

/** The agent's in-memory state of one pod. */
export interface PodRecord {
  pod: Pod;
  objects: PodObjects;
  volumePaths?: Record<string, string>;
  /** waiting reasons by container name (ErrImagePull, CrashLoopBackOff, CreateContainerConfigError ...) */
  waiting: Record<string, { reason: string; message?: string }>;
  /** termination messages by container id, read once when the container exits */
  termMessages: Record<string, string>;
  /** phase Succeeded/Failed reached: never changes again */
  terminal: boolean;
  /** the pod failed as a whole: admission refused it, or it ran past activeDeadlineSeconds */
  failure?: { reason: string; message: string };
  /** the eviction manager evicted the pod (local storage over its limits): kill it, Failed/Evicted */
  eviction?: { message: string };
  /** the API objects changed since the volumes were set up: re-project configMap/secret/projected volumes */
  objectsChanged?: boolean;
  /** probe results saved before a daemon restart, handed to the prober when the containers are re-adopted */
  restoredProbes?: Record<string, Partial<Record<ProbeKind, ProbeWorkerState>>>;
}

export interface VolumePort {
  setUp(pod: Pod, ctx: { objects: PodObjects; podIPs: string[]; hostIPs: string[]; nodeName?: string }): Promise<Record<string, string>>;
  /** Re-project the API-data volumes (configMap, secret, downwardAPI, projected) after their sources changed. */
  update(pod: Pod, ctx: { objects: PodObjects; podIPs: string[]; hostIPs: string[]; nodeName?: string }): Promise<void>;
  tearDown(uid: string): Promise<void>;
}

export interface SyncDeps {
  root: string;
  runtime: ContainerRuntime;
  volumes: VolumePort;
  puller: ImagePuller;
  prober: ProberManager;
  status: StatusManager;
  /** container restart back-off (CrashLoopBackOff) */
  backoff: Backoff;
  record(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string): void;
  /** wake the pod's worker no later than `at` */
  schedule(uid: string, at: number): void;
  /** sync the pod again right after this sync */
  again(uid: string): void;
  /** persist the pod's record (pod store) */
  persist(rec: PodRecord): void;
  /** a container was started (nodelet run follows its log) */
  onStarted?(e: { uid: string; name: string; id: string; attempt: number }): void;
  nodeName: string;
  hostIPs: string[];
  seccompDefault?: boolean;
  /** kubelet's --pod-max-pids: pids.max of each pod's cgroup (-1/unset: none) */
  podPidsLimit?: number;
  logMaxBytes?: number;
  logMaxFiles?: number;
  /** kubelet's pod log root (<dir>/<ns>_<pod>_<uid>/<container>/<attempt>.log); default <root>/logs (nodelet's wiring: /var/log/pods) */
  podLogDir?: string;
  /** where the /var/log/containers-style symlinks go (<pod>_<ns>_<container>-<id>.log); none when unset */
  containerLogLinkDir?: string;
}

export type PodRuntimeStatus = RuntimePodStatus & { sandboxStatuses: PodSandboxStatus[] };

/** Container annotation naming the host file bound at terminationMessagePath. */
export const TERMINATION_LOG_ANNOTATION = 'io.nodelet.termination-log';

function specOf(pod: Pod, name: string): Container | undefined {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === name);
}

const log = getLogger('agent.sync');

export class PodSyncer {
  /** containers whose log link this process made or found (adoptLogLinks looks once per container) */
  private readonly linked = new Set<string>();

  constructor(private readonly d: SyncDeps) {}

  private podLogsDir(pod: Pod): string {
    return podLogsDirFor(this.d.podLogDir ?? path.join(this.d.root, 'logs'), pod);
  }

  /** kubelet's legacy symlink for log shippers, made when the container started (a failure is logged, the container runs on). */
  private linkLog(pod: Pod, name: string, id: string, logPath: string): void {
    if (!this.d.containerLogLinkDir) return;
    const link = containerLogLinkFor(this.d.containerLogLinkDir, pod, name, id);
    try {
      fs.mkdirSync(this.d.containerLogLinkDir, { recursive: true, mode: 0o755 });
      fs.rmSync(link, { force: true });
      fs.symlinkSync(logPath, link);
    } catch (err) {
      log.warn('cannot create the container log symlink', { link, target: logPath, err: describeError(err) });
    }
  }

  /** The pod's symlinks in the link dir: those named for it that point into its log directory. */
  private unlinkLogs(pod: Pod): void {
    const dir = this.d.containerLogLinkDir;
    if (!dir) return;
    const prefix = `${pod.metadata.name}_${pod.metadata.namespace ?? 'default'}_`;
    const logs = this.podLogsDir(pod) + path.sep;
    let names: string[] = [];
    try { names = fs.readdirSync(dir); } catch { return; }
    for (const n of names) {
      if (!n.startsWith(prefix)) continue;
      const link = path.join(dir, n);
      try { if (fs.readlinkSync(link).startsWith(logs)) fs.unlinkSync(link); } catch { /* not a link, or gone */ }
    }
  }

  async runtimeStatus(uid: string): Promise<PodRuntimeStatus> {
    const rt = this.d.runtime;
    const sandboxes = (await rt.listPodSandboxes()).filter((s) => s.config.uid === uid);
    const containers: RtStatus[] = [];
    for (const sb of sandboxes) containers.push(...(await rt.listContainers({ sandboxId: sb.id })));
    return { sandboxes, containers, sandboxStatuses: sandboxes };
  }

  /** kubelet SyncPod. */
  async syncPod(r: PodRecord): Promise<void> {
    const pod = r.pod;
    const uid = pod.metadata.uid!;
    const rt = this.d.runtime;
    let st = await this.runtimeStatus(uid);

    // 0. A container still `created` never started: a sync creates and starts in one go, so it is left from a daemon
    // killed in between (the runtime adopts those whose shim ran). Nothing of it ran: it goes, and that attempt starts anew.
    if (st.containers.some((c) => c.state === 'created')) {
      for (const c of st.containers) if (c.state === 'created') await rt.removeContainer(c.id);
      st = await this.runtimeStatus(uid);
    }
    // Re-adopted containers (daemon restart): their probe workers start again with the saved results; the log links
    // of those a killed daemon started without getting to make them.
    this.adoptProbes(r, st);
    this.adoptLogLinks(r, st);

    // 1. Terminal pods stay as they are (phase Succeeded/Failed never changes).
    if (r.terminal) {
      this.updateStatus(r, st);
      return;
    }

    // 2. spec.activeDeadlineSeconds (kubelet's activeDeadlineHandler): past it, kill the pod, Failed/DeadlineExceeded.
    const startTime = this.d.status.status(uid)?.startTime;
    // An eviction (eviction.ts) ends the pod the same way, with kubelet's 1 s grace period; its event is already recorded.
    const deadline = r.eviction ? { reason: 'Evicted', message: r.eviction.message } : pastActiveDeadline(pod, startTime, Date.now());
    if (deadline) {
      if (!r.eviction) this.d.record(pod, 'Normal', deadline.reason, deadline.message);
      r.failure = deadline;
      await this.killPod(r, st.containers, r.eviction ? EVICTION_GRACE_SECONDS : undefined);
      for (const sb of st.sandboxStatuses) if (sb.state === 'ready') await rt.stopPodSandbox(sb.id);
      r.terminal = true;
      this.d.persist(r);
      this.updateStatus(r, await this.runtimeStatus(uid));
      return;
    }
    if (pod.spec.activeDeadlineSeconds !== undefined && startTime) this.d.schedule(uid, Date.parse(startTime) + pod.spec.activeDeadlineSeconds * 1000);

    // 3. Compute what to do.
    const now = Date.now();
    const actions = computePodActions(pod, st, {
      now,
      backoff: this.d.backoff,
      probe: (cid, kind) => this.d.prober.result(cid, kind),
      started: (cid) => this.d.prober.started(cid),
    });
    for (const b of actions.backoffs) {
      r.waiting[b.name] = { reason: 'CrashLoopBackOff', message: b.message };
      this.d.record(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${b.name} in pod ${pod.metadata.name}_${pod.metadata.namespace ?? 'default'}(${uid})`, containerFieldPath(pod, b.name));
    }
    if (actions.nextSyncAt) this.d.schedule(uid, actions.nextSyncAt);

    // 4. Kill the pod if its sandbox changed or everything finished.
    if (actions.killPod) {
      await this.killPod(r, st.containers, undefined);
      for (const sb of st.sandboxStatuses) if (sb.state === 'ready') await rt.stopPodSandbox(sb.id);
      if (!actions.createSandbox) {
        st = await this.runtimeStatus(uid);
        r.terminal = true;
        this.d.persist(r);
        this.updateStatus(r, st);
        return;
      }
    }

    // 5. The sandbox, then the volumes (they may need the pod IP: downward API).
    let sandboxId = actions.sandboxId;
    let podIPs = st.sandboxStatuses.find((s) => s.id === sandboxId)?.ips ?? [];
    if (actions.createSandbox) {
      try {
        sandboxId = await rt.runPodSandbox(sandboxConfigForHost(pod, { podPidsLimit: this.d.podPidsLimit }));
      } catch (err) {
        this.d.record(pod, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${describeError(err)}`);
        this.d.schedule(uid, Date.now() + 5000);
        this.updateStatus(r, st);
        return;
      }
      podIPs = (await rt.podSandboxStatus(sandboxId)).ips;
      st = await this.runtimeStatus(uid);
    }
    if (r.volumePaths && r.objectsChanged) {
      r.objectsChanged = false;
      try {
        await this.d.volumes.update(pod, { objects: r.objects, podIPs, hostIPs: this.d.hostIPs, nodeName: this.d.nodeName });
      } catch (err) {
        r.objectsChanged = true;
        this.d.record(pod, 'Warning', 'FailedMount', describeError(err));
        this.d.schedule(uid, Date.now() + 5000);
      }
    }
    if (!r.volumePaths) {
      try {
        r.volumePaths = await this.d.volumes.setUp(pod, { objects: r.objects, podIPs, hostIPs: this.d.hostIPs, nodeName: this.d.nodeName });
      } catch (err) {
        this.d.record(pod, 'Warning', 'FailedMount', describeError(err));
        for (const c of pod.spec.containers) r.waiting[c.name] = { reason: 'ContainerCreating' };
        this.d.schedule(uid, Date.now() + 5000);
        this.updateStatus(r, st);
        return;
      }
    }

    // 6. Kill containers that must restart (liveness/startup failure, unknown state, changed spec).
    for (const k of actions.containersToKill) {
      this.d.record(pod, 'Normal', 'Killing', k.message, containerFieldPath(pod, k.name));
      await this.stopContainer(r, k.id, specOf(pod, k.name), k.gracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30);
    }

    // 7. The next init container (or sidecar); the app containers wait for it. 8. App containers.
    const starts = actions.initContainerToStart ? [actions.initContainerToStart] : [];
    starts.push(...actions.containersToStart);
    for (const s of starts) {
      for (const u of actions.backoffUpdates) if (u.name === s.name) this.d.backoff.next(u.key, u.eventTime, Date.now());
      await this.startContainer(r, sandboxId!, podIPs, s.name, s.attempt);
    }
    if (actions.backoffUpdates.length) this.d.persist(r);
    // a started sidecar keeps running (no exit event): sync again to start what comes after it
    const init = actions.initContainerToStart;
    if (init && (pod.spec.initContainers ?? []).some((c) => c.name === init.name && c.restartPolicy === 'Always')) this.d.again(uid);

    this.updateStatus(r, await this.runtimeStatus(uid));
  }

  /** kubelet SyncTerminatingPod: preStop hooks, stop every container with the grace period. */
  async syncTerminatingPod(r: PodRecord, grace: number | undefined): Promise<void> {
    const st = await this.runtimeStatus(r.pod.metadata.uid!);
    await this.killPod(r, st.containers, grace);
    this.updateStatus(r, await this.runtimeStatus(r.pod.metadata.uid!));
  }

  /** kubelet SyncTerminatedPod: sandbox, volumes, logs; the record goes with the pod. */
  async syncTerminatedPod(r: PodRecord): Promise<void> {
    const uid = r.pod.metadata.uid!;
    const st = await this.runtimeStatus(uid);
    for (const sb of st.sandboxStatuses) await this.d.runtime.removePodSandbox(sb.id);
    for (const c of st.containers) this.linked.delete(c.id);
    await this.d.volumes.tearDown(uid);
    crashPoint('pod-torn-down', r.pod.metadata.name);
    this.unlinkLogs(r.pod);
    fs.rmSync(this.podLogsDir(r.pod), { recursive: true, force: true });
    this.d.prober.removePod(uid);
  }

  /** The log link of every container that started, made if missing (a daemon killed between the start and the link). */
  private adoptLogLinks(r: PodRecord, st: PodRuntimeStatus): void {
    const dir = this.d.containerLogLinkDir;
    if (!dir) return;
    for (const c of st.containers) {
      if (!c.startedAt || this.linked.has(c.id)) continue;
      this.linked.add(c.id);
      if (!fs.lstatSync(containerLogLinkFor(dir, r.pod, c.name, c.id), { throwIfNoEntry: false })) this.linkLog(r.pod, c.name, c.id, c.logPath);
    }
  }

  /** Probe workers for running containers that have none (a restarted daemon re-adopting them). */
  private adoptProbes(r: PodRecord, st: PodRuntimeStatus): void {
    const podIP = st.sandboxStatuses.find((s) => s.state === 'ready')?.ips[0];
    for (const c of st.containers) {
      if (c.state !== 'running' || this.d.prober.has(c.id)) continue;
      const spec = specOf(r.pod, c.name);
      if (!spec || !(spec.startupProbe || spec.livenessProbe || spec.readinessProbe)) continue;
      this.d.prober.addContainer(r.pod, spec, c.id, { podIP, startedAt: Date.parse(c.startedAt ?? c.createdAt), restored: r.restoredProbes?.[c.id] });
    }
    this.d.prober.prune(r.pod.metadata.uid!, new Set(st.containers.filter((c) => c.state === 'running' || c.state === 'created').map((c) => c.id)));
    r.restoredProbes = undefined;
  }

  updateStatus(r: PodRecord, st: PodRuntimeStatus): void {
    // termination messages, once per exited container (before any status shows it terminated)
    for (const c of st.containers) if (c.state === 'exited' && r.termMessages[c.id] === undefined) r.termMessages[c.id] = this.terminationMessage(r.pod, c);
    const probeStates: Record<string, ProbeState> = {};
    for (const c of st.containers) {
      if (c.state !== 'running') continue;
      const spec = specOf(r.pod, c.name);
      probeStates[c.id] = { started: this.d.prober.started(c.id), ready: this.d.prober.ready(c.id, !!spec?.readinessProbe) };
    }
    const latest = [...st.sandboxStatuses].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))[0];
    this.d.status.setStatus(r.pod.metadata.uid!, this.podStatus(r, st.containers, probeStates, { podIPs: latest?.ips ?? [], sandboxReady: latest?.state === 'ready' }));
  }

  podStatus(r: PodRecord, containers: RtStatus[], probeStates: Record<string, ProbeState>, o: { podIPs?: string[]; sandboxReady: boolean }): PodStatus {
    const status = computePodStatus(r.pod, containers, probeStates, {
      now: new Date(),
      podIPs: o.podIPs ?? [],
      hostIPs: this.d.hostIPs,
      sandboxReady: o.sandboxReady,
      waitingReasons: r.waiting,
      terminationMessages: r.termMessages,
      previous: this.d.status.status(r.pod.metadata.uid!),
      podIsTerminal: r.terminal,
      ...(r.failure ? { reason: r.failure.reason, message: r.failure.message } : {}),
    });
    // kubelet's rejectPod / activeDeadlineHandler: Failed with that reason
    return r.failure ? { ...status, phase: 'Failed' } : status;
  }

  // ------------------------------------------------------------------ containers

  /** kubelet's <pod dir>/containers/<name>/<id>: empty, 0666 so a non-root container can write it. */
  private createTerminationLog(pod: Pod, name: string, attempt: number): string {
    const dir = path.join(this.d.root, 'pods', pod.metadata.uid!, 'containers', name);
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    const file = path.join(dir, `${attempt}-${randomBytes(4).toString('hex')}`);
    fs.writeFileSync(file, '', { mode: 0o666, flag: 'wx' });
    fs.chmodSync(file, 0o666); // past the umask
    return file;
  }

  /** The termination message: read from the host file the runtime reports bound at terminationMessagePath. */
  private terminationMessage(pod: Pod, s: RtStatus): string {
    const spec = specOf(pod, s.name);
    return readTerminationMessage({
      messageFile: s.annotations?.[TERMINATION_LOG_ANNOTATION],
      policy: spec?.terminationMessagePolicy ?? 'File',
      logPath: s.logPath,
      exitCode: s.exitCode ?? 0,
    });
  }

  private async startContainer(r: PodRecord, sandboxId: string, podIPs: string[], name: string, attempt: number): Promise<void> {
    const pod = r.pod;
    const uid = pod.metadata.uid!;
    const c = specOf(pod, name)!;
    const fp = containerFieldPath(pod, name);
    const rt = this.d.runtime;
    // 1. image
    const pulled = await this.d.puller.ensure(pod, c, fp, r.objects);
    if ('waiting' in pulled) {
      r.waiting[name] = pulled.waiting;
      this.d.schedule(uid, pulled.retryAt);
      return;
    }
    // 2. config (env, mounts). The termination message: as kubelet, a host file per container attempt
    // bind-mounted at terminationMessagePath (so /dev/termination-log outlives the container's /dev tmpfs).
    let id: string;
    let logPath: string;
    try {
      const termLog = this.createTerminationLog(pod, c.name, attempt);
      const { config, warnings } = containerConfigForHost({
        pod, container: c, image: pulled.image, attempt,
        podLogsDir: this.podLogsDir(pod),
        volumePaths: r.volumePaths ?? {},
        objects: r.objects, podIPs, hostIPs: this.d.hostIPs, nodeName: this.d.nodeName, seccompDefault: this.d.seccompDefault,
        terminationLogHostPath: termLog,
      });
      config.annotations[TERMINATION_LOG_ANNOTATION] = termLog;
      for (const w of warnings) this.d.record(pod, 'Warning', 'Warning', w, fp);
      // API data volumes (configMap, secret, downwardAPI, projected) are always mounted read-only, as kubelet does
      const apiData = (pod.spec.volumes ?? []).filter((v) => v.configMap || v.secret || v.downwardAPI || v.projected).map((v) => r.volumePaths?.[v.name]).filter((x): x is string => !!x);
      for (const m of config.mounts) if (apiData.some((p) => m.hostPath === p || m.hostPath.startsWith(p + '/'))) m.readOnly = true;
      config.logMaxBytes ??= this.d.logMaxBytes ?? 10 << 20;
      config.logMaxFiles ??= this.d.logMaxFiles ?? 5;
      logPath = config.logPath;
      id = await rt.createContainer(sandboxId, config);
    } catch (err) {
      const reason = isNodeletError(err, 'ERR_CREATE_CONTAINER_CONFIG') ? 'CreateContainerConfigError' : 'CreateContainerError';
      r.waiting[name] = { reason, message: describeError(err) };
      this.d.record(pod, 'Warning', 'Failed', `Error: ${describeError(err)}`, fp);
      this.d.schedule(uid, Date.now() + 5000);
      return;
    }
    this.d.record(pod, 'Normal', 'Created', `Created container ${name}`, fp);
    // 3. start
    try {
      await rt.startContainer(id);
    } catch (err) {
      this.d.record(pod, 'Warning', 'Failed', `Error: ${describeError(err)}`, fp);
      delete r.waiting[name];
      return;
    }
    crashPoint('container-start-recorded', name);
    delete r.waiting[name];
    this.linkLog(pod, name, id, logPath);
    this.linked.add(id);
    this.d.record(pod, 'Normal', 'Started', `Started container ${name}`, fp);
    this.d.onStarted?.({ uid, name, id, attempt });
    // 4. postStart: the container is not Running for the pod until the hook completes (the worker is busy)
    const grace = pod.spec.terminationGracePeriodSeconds ?? 30;
    if (c.lifecycle?.postStart) {
      const err = await this.runHook(c.lifecycle.postStart, id, c, podIPs, grace * 1000);
      if (err) {
        this.d.record(pod, 'Warning', 'FailedPostStartHook', err, fp);
        this.d.record(pod, 'Normal', 'Killing', `FailedPostStartHook`, fp);
        await rt.stopContainer(id, grace);
        return;
      }
    }
    // 5. probes (not for a container that already exited: its exit event has come and gone)
    const now = await rt.containerStatus(id).catch(() => undefined);
    if (now?.state !== 'running') return;
    if (c.startupProbe || c.livenessProbe || c.readinessProbe) this.d.prober.addContainer(pod, c, id, { podIP: podIPs[0], startedAt: Date.parse(now.startedAt ?? now.createdAt) || Date.now() });
  }

  /** Runs a lifecycle handler; returns an error message or undefined. */
  private async runHook(h: LifecycleHandler, id: string, c: Container, podIPs: string[], timeoutMs: number): Promise<string | undefined> {
    try {
      if (h.exec) {
        const res = await this.d.runtime.execSync(id, h.exec.command ?? [], { timeoutMs });
        if (res.exitCode !== 0 || res.timedOut)
          return `Exec lifecycle hook (${JSON.stringify(h.exec.command)}) for Container "${c.name}" failed - error: command exited with ${res.exitCode}, message: ${JSON.stringify(Buffer.concat([res.stdout, res.stderr]).toString('utf8').slice(0, 1024))}`;
      } else if (h.httpGet) {
        const out = await httpProbe(h.httpGet, Math.min(timeoutMs, 30_000), { podIP: podIPs[0], containerId: id, runtime: this.d.runtime, ports: c.ports ?? [] });
        if (out.result !== 'success' && out.result !== 'warning') return `HTTP lifecycle hook (${h.httpGet.path ?? '/'}) for Container "${c.name}" failed - error: ${out.output}`;
      } else if (h.sleep) {
        await sleep(Math.min(h.sleep.seconds * 1000, timeoutMs));
      }
    } catch (err) {
      return describeError(err);
    }
    return undefined;
  }

  /** The IPs of the sandbox the container runs in (the host's for hostNetwork); none when it is gone. */
  private async containerPodIPs(pod: Pod, id: string): Promise<string[]> {
    const rt = this.d.runtime;
    const s = await rt.containerStatus(id).catch(() => undefined);
    const sb = s ? await rt.podSandboxStatus(s.sandboxId).catch(() => undefined) : undefined;
    return podIPsOf(pod, sb?.ips ?? [], this.d.hostIPs);
  }

  private async stopContainer(r: PodRecord, id: string, c: Container | undefined, grace: number): Promise<void> {
    // kubelet (StopLivenessAndStartup, then RemovePod once stopped): liveness/startup stop now; readiness keeps
    // running through preStop and the grace period, so Ready turns False as soon as the probe fails
    this.d.prober.stopContainer(id, ['liveness', 'startup']);
    let remaining = grace;
    if (c?.lifecycle?.preStop) {
      const t0 = Date.now();
      // an httpGet without a host goes to the pod's IP, as postStart's does (kubelet: the pod status's IP)
      const podIPs = c.lifecycle.preStop.httpGet ? await this.containerPodIPs(r.pod, id) : [];
      const err = await Promise.race([this.runHook(c.lifecycle.preStop, id, c, podIPs, grace * 1000), sleep(grace * 1000).then(() => 'preStop hook timed out')]);
      if (err) this.d.record(r.pod, 'Warning', 'FailedPreStopHook', err, containerFieldPath(r.pod, c.name));
      remaining = Math.max(2, grace - Math.floor((Date.now() - t0) / 1000));
    }
    await this.d.runtime.stopContainer(id, remaining);
    this.d.prober.stopContainer(id); // exited: readiness too
  }

  /** Stop every running container: app containers first, then sidecars in reverse order. */
  private async killPod(r: PodRecord, containers: RtStatus[], grace?: number): Promise<void> {
    const g = grace ?? r.pod.spec.terminationGracePeriodSeconds ?? 30;
    for (const wave of killOrder(r.pod, containers)) {
      await Promise.all(
        wave.map(async (s) => {
          if (s.state === 'running') this.d.record(r.pod, 'Normal', 'Killing', `Stopping container ${s.name}`, containerFieldPath(r.pod, s.name));
          await this.stopContainer(r, s.id, specOf(r.pod, s.name), g);
        }),
      );
    }
  }
}

/**
 * Whether a downwardAPI volume (or a projected volume's downwardAPI source) of the pod shows its labels or
 * annotations (fieldPath metadata.labels, metadata.annotations, or one key of them): those files must follow
 * an update of the pod's metadata (kubelet rewrites them on its periodic volume sync).
 */
export function downwardAPIShowsMetadata(pod: Pod): boolean {
  const reads = (items: { fieldRef?: { fieldPath: string } }[] | undefined) =>
    (items ?? []).some((i) => /^metadata\.(labels|annotations)(\[|$)/.test(i.fieldRef?.fieldPath ?? ''));
  return (pod.spec.volumes ?? []).some((v) => reads(v.downwardAPI?.items) || (v.projected?.sources ?? []).some((src) => reads(src.downwardAPI?.items)));
}

/** This host's primary address for status.hostIP(s): one per family, as the API server requires. */
export function hostIPv4s(): string[] {
  return [primaryIPv4Sync()];
}
