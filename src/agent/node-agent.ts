// NodeAgent: kubelet's pod workers + SyncPod over the CRI-shaped runtime.
//
// Each pod has one serial worker (kubelet pod_workers.go): a sync request
// while a sync runs only marks the pod dirty, so a pod's updates never race.
// syncPod asks the pure decider (computePodActions, src/pod/actions.ts) what
// to do and carries it out in numbered steps like kuberuntime SyncPod. It is
// driven by events — container exits (runtime.onContainerExit), probe result
// changes, back-off expiry, deletion — plus a slow periodic resync.
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describeError, isNodeletError, NodeletError } from '../errors.js';
import { getLogger } from '../log.js';
import type { ImageProvider, ImageRecord } from '../image/types.js';
import type { ContainerRuntime, ContainerStatus as RtStatus, PodSandboxStatus } from '../runtime/types.js';
import type { Container, LifecycleHandler, Pod, PodObjects, PodStatus, Probe } from '../pod/api-types.js';
import { computePodActions, killOrder, latestStatus, pastActiveDeadline, type RuntimePodStatus } from '../pod/actions.js';
import { Backoff, backoffKey, type BackoffOptions } from '../pod/backoff.js';
import { buildContainerConfig, buildSandboxConfig, podLogsDirFor } from '../pod/container-config.js';
import { computeProbeState, httpProbe, probeDue, runProbe, type ProbeKind, type ProbeWorkerState } from '../pod/probe.js';
import { computePodStatus, type ProbeState } from '../pod/status.js';
import { readTerminationMessage } from '../pod/termination-message.js';
import { SysctlAllowlist } from '../pod/sysctls.js';
import type { VolumeManager } from '../pod/volumes.js';
import { EventRecorder, type RecordedEvent } from './events.js';

const log = getLogger('agent');

export interface NodeAgentDeps {
  root: string;
  /** run root (the runtime's state is <runRoot>/runtime) */
  runRoot: string;
  runtime: ContainerRuntime;
  images: ImageProvider;
  volumes: VolumeManager;
  /** Resolve a built-in image (localhost/nodelet/...) that is not in the store; returns true when imported. */
  importBuiltin?: (ref: string) => Promise<boolean>;
  backoff?: BackoffOptions;
  /** Periodic resync (ms), default 10 s. */
  resyncMs?: number;
  nodeName?: string;
  /** Container log rotation (kubelet containerLogMaxSize / containerLogMaxFiles): default 10 MiB, 5 files. */
  logMaxBytes?: number;
  logMaxFiles?: number;
  /** kubelet's --seccomp-default: RuntimeDefault seccomp for containers whose pod sets no profile. */
  seccompDefault?: boolean;
  /** Admits pod sysctls (kubelet --allowed-unsafe-sysctls); default: the safe set only. */
  sysctls?: SysctlAllowlist;
}

export interface PodView {
  pod: Pod;
  status: PodStatus;
  resourceVersion: number;
}

interface ProbeWorker {
  kind: ProbeKind;
  probe: Probe;
  state?: ProbeWorkerState;
  timer?: NodeJS.Timeout;
  stopped: boolean;
}

interface PodEntry {
  pod: Pod;
  objects: PodObjects;
  status?: PodStatus;
  version: number;
  volumePaths?: Record<string, string>;
  waiting: Record<string, { reason: string; message?: string }>;
  termMessages: Record<string, string>;
  /** probe workers by `${containerId}/${kind}` */
  probes: Map<string, ProbeWorker>;
  syncing: boolean;
  dirty: boolean;
  timer?: NodeJS.Timeout;
  terminal: boolean;
  /** The pod failed as a whole (phase Failed with this reason): kubelet's admission refused it
   * (nothing created), or it ran past spec.activeDeadlineSeconds (killed). */
  failure?: { reason: string; message: string };
  timerAt?: number;
  deleting?: { grace?: number; done: Promise<void>; resolve: () => void };
  gone: boolean;
  pullFailures: Map<string, number>;
  idle: (() => void)[];
}

export type AgentEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED'; pod: PodView };

function nowIso(): string {
  return new Date().toISOString();
}

function hostIPs(): string[] {
  const out: string[] = [];
  for (const list of Object.values(os.networkInterfaces())) for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') out.push(a.address);
  return out.length ? out : ['127.0.0.1'];
}

function fieldPath(pod: Pod, name: string): string {
  const init = (pod.spec.initContainers ?? []).some((c) => c.name === name);
  return `spec.${init ? 'initContainers' : 'containers'}{${name}}`;
}

function specOf(pod: Pod, name: string): Container | undefined {
  return [...(pod.spec.initContainers ?? []), ...pod.spec.containers].find((c) => c.name === name);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Container annotation naming the host file bound at terminationMessagePath. */
const TERMINATION_LOG_ANNOTATION = 'io.nodelet.termination-log';

export class NodeAgent extends EventEmitter {
  readonly recorder: EventRecorder;
  private readonly pods = new Map<string, PodEntry>();
  private backoff: Backoff;
  private readonly pullBackoff: Backoff;
  private readonly resync: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly hostIPs = hostIPs();
  private closed = false;
  /** sync durations (ms) for /metrics */
  readonly syncStats = { count: 0, totalMs: 0 };

  constructor(private readonly deps: NodeAgentDeps) {
    super();
    this.setMaxListeners(0);
    this.backoff = new Backoff(deps.backoff);
    this.pullBackoff = new Backoff(deps.backoff);
    this.recorder = new EventRecorder((e) => this.emit('event', e), 2000, deps.nodeName ?? os.hostname());
    this.unsubscribe = deps.runtime.onContainerExit((ev) => {
      for (const e of this.pods.values()) {
        if (ev.status.labels['io.kubernetes.pod.uid'] === e.pod.metadata.uid) {
          this.stopProbes(e, ev.containerId);
          this.requestSync(e);
        }
      }
    });
    this.resync = setInterval(() => {
      this.backoff.gc(Date.now());
      for (const e of this.pods.values()) this.requestSync(e);
    }, deps.resyncMs ?? 60_000);
    this.resync.unref();
  }

  // ------------------------------------------------------------------ public

  /** Add or replace a pod (a changed spec with the same uid is not supported: delete and re-add). */
  addPod(pod: Pod, objects: PodObjects = { configMaps: [], secrets: [] }, recovered?: { terminal: boolean; failure?: PodEntry['failure'] }): PodView {
    const uid = pod.metadata.uid!;
    const existing = this.pods.get(uid);
    if (existing && !existing.gone) return this.view(existing);
    // kubelet's admission (sysctls); a recovered pod keeps the verdict it had
    const rejected = recovered ? recovered.failure : (this.deps.sysctls ?? this.defaultSysctls).admit(pod);
    const e: PodEntry = {
      pod, objects, version: 1, waiting: {}, termMessages: {}, probes: new Map(), syncing: false, dirty: false, terminal: !!recovered?.terminal || !!rejected, gone: false,
      pullFailures: new Map(), idle: [], ...(rejected ? { failure: rejected } : {}),
    };
    this.pods.set(uid, e);
    this.persist(e);
    e.status = this.podStatus(e, [], {}, { sandboxReady: false });
    if (rejected && !recovered) {
      this.recorder.record(pod, 'Warning', rejected.reason, rejected.message);
      log.warn('pod rejected', { pod: `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`, reason: rejected.reason, message: rejected.message });
    }
    this.emit('pod', { type: 'ADDED', pod: this.view(e) } satisfies AgentEvent);
    this.requestSync(e);
    return this.view(e);
  }

  getPod(uid: string): PodView | undefined {
    const e = this.pods.get(uid);
    return e && !e.gone ? this.view(e) : undefined;
  }

  findPod(namespace: string, name: string): PodView | undefined {
    for (const e of this.pods.values()) if (!e.gone && e.pod.metadata.name === name && (e.pod.metadata.namespace ?? 'default') === namespace) return this.view(e);
    return undefined;
  }

  listPods(): PodView[] {
    return [...this.pods.values()].filter((e) => !e.gone).map((e) => this.view(e));
  }

  /** Graceful deletion: preStop, stop with grace, tear down sandbox and volumes. Resolves when nothing is left. */
  deletePod(uid: string, gracePeriodSeconds?: number): Promise<void> {
    const e = this.pods.get(uid);
    if (!e || e.gone) return Promise.resolve();
    if (!e.deleting) {
      let resolve!: () => void;
      const done = new Promise<void>((r) => (resolve = r));
      e.deleting = { grace: gracePeriodSeconds, done, resolve };
      if (e.pod.metadata.deletionTimestamp === undefined) {
        e.pod.metadata.deletionTimestamp = nowIso().replace(/\.\d{3}Z$/, 'Z');
        e.pod.metadata.deletionGracePeriodSeconds = gracePeriodSeconds ?? e.pod.spec.terminationGracePeriodSeconds ?? 30;
      }
      this.persist(e); // a daemon restarted meanwhile finishes the deletion
      this.bump(e);
    }
    this.requestSync(e);
    return e.deleting.done;
  }

  /** Runtime containers of a pod (for logs/exec). */
  async podContainers(uid: string): Promise<RtStatus[]> {
    return (await this.runtimeStatus(uid)).containers;
  }

  get runtime(): ContainerRuntime {
    return this.deps.runtime;
  }

  /** Resolves when the pod's worker has no pending sync (tests, run). */
  whenIdle(uid: string): Promise<void> {
    const e = this.pods.get(uid);
    if (!e || (!e.syncing && !e.dirty)) return Promise.resolve();
    return new Promise((r) => e.idle.push(r));
  }

  /** Stop workers and probes; never stops containers (a restarted agent re-adopts them). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.resync);
    this.unsubscribe();
    for (const e of this.pods.values()) {
      if (e.timer) clearTimeout(e.timer);
      for (const w of e.probes.values()) {
        w.stopped = true;
        if (w.timer) clearTimeout(w.timer);
      }
    }
    // let in-flight syncs finish (bounded: a stuck runtime call must not block shutdown)
    const end = Date.now() + 10_000;
    for (const e of this.pods.values()) while (e.syncing && Date.now() < end) await sleep(20);
  }

  /** Re-adopt pods persisted under <root>/pods/<uid>/pod.json (daemon restart). */
  recover(): PodView[] {
    const dir = path.join(this.deps.root, 'pods');
    const out: PodView[] = [];
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return out;
    }
    for (const uid of names) {
      const file = path.join(dir, uid, 'pod.json');
      if (!fs.existsSync(file)) continue;
      try {
        const rec = JSON.parse(fs.readFileSync(file, 'utf8')) as { pod: Pod; objects: PodObjects; backoff?: Record<string, { backoffMs: number; lastUpdate: number }>; terminal?: boolean; failure?: PodEntry['failure'] };
        const v = this.addPod(rec.pod, rec.objects, { terminal: !!rec.terminal, failure: rec.failure });
        const restored = Backoff.fromJSON(rec.backoff ?? {});
        for (const k of Object.keys(rec.backoff ?? {})) if (k.startsWith(uid + '/')) this.restoreBackoff(k, restored);
        if (rec.pod.metadata.deletionTimestamp) void this.deletePod(uid, rec.pod.metadata.deletionGracePeriodSeconds);
        out.push(v);
      } catch (err) {
        log.warn('cannot recover pod record', { file, error: describeError(err) });
      }
    }
    return out;
  }

  private restoreBackoff(key: string, from: Backoff): void {
    const e = from.get(key);
    if (!e) return;
    // replay the entry into our Backoff (same options): next() from an empty entry starts at initial, then doubles
    const merged = Backoff.fromJSON({ ...this.backoff.toJSON(), [key]: e }, { initialMs: this.backoff.initialMs, maxMs: this.backoff.maxMs });
    this.backoff = merged;
  }

  // ------------------------------------------------------------------ worker

  private view(e: PodEntry): PodView {
    const pod: Pod = { ...e.pod, metadata: { ...e.pod.metadata, resourceVersion: String(e.version) }, status: e.status };
    return { pod, status: e.status!, resourceVersion: e.version };
  }

  private bump(e: PodEntry): void {
    e.version++;
    this.emit('pod', { type: 'MODIFIED', pod: this.view(e) } satisfies AgentEvent);
  }

  private persist(e: PodEntry): void {
    const dir = path.join(this.deps.root, 'pods', e.pod.metadata.uid!);
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    const uid = e.pod.metadata.uid!;
    const backoff = Object.fromEntries(Object.entries(this.backoff.toJSON()).filter(([k]) => k.startsWith(uid + '/')));
    const tmp = path.join(dir, `.pod.json.${process.pid}.tmp`);
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify({ pod: e.pod, objects: e.objects, backoff, terminal: e.terminal, ...(e.failure ? { failure: e.failure } : {}) }));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, path.join(dir, 'pod.json'));
  }

  requestSync(e: PodEntry): void {
    if (this.closed || e.gone) return;
    e.dirty = true;
    if (e.syncing) return;
    e.syncing = true;
    void (async () => {
      while (e.dirty && !this.closed && !e.gone) {
        e.dirty = false;
        const t0 = performance.now();
        try {
          await this.syncPod(e);
        } catch (err) {
          log.error('sync failed', { pod: e.pod.metadata.name, error: describeError(err) });
          this.recorder.record(e.pod, 'Warning', 'FailedSync', `error syncing pod: ${describeError(err)}`);
          this.schedule(e, Date.now() + 2000);
        }
        this.syncStats.count++;
        this.syncStats.totalMs += performance.now() - t0;
      }
      e.syncing = false;
      for (const r of e.idle.splice(0)) r();
    })();
  }

  /** Sync the pod no later than `at` (an earlier pending sync is kept: every sync reschedules what it needs). */
  private schedule(e: PodEntry, at: number): void {
    if (this.closed || e.gone) return;
    if (e.timer && e.timerAt !== undefined && e.timerAt <= at) return;
    if (e.timer) clearTimeout(e.timer);
    e.timerAt = at;
    e.timer = setTimeout(() => {
      e.timer = undefined;
      e.timerAt = undefined;
      this.requestSync(e);
    }, Math.max(0, at - Date.now()) + 5);
  }

  private async runtimeStatus(uid: string): Promise<RuntimePodStatus & { sandboxStatuses: PodSandboxStatus[] }> {
    const rt = this.deps.runtime;
    const sandboxes = (await rt.listPodSandboxes()).filter((s) => s.config.uid === uid);
    const containers: RtStatus[] = [];
    for (const sb of sandboxes) containers.push(...(await rt.listContainers({ sandboxId: sb.id })));
    return { sandboxes, containers, sandboxStatuses: sandboxes };
  }

  /** kubelet SyncPod. */
  private async syncPod(e: PodEntry): Promise<void> {
    const pod = e.pod;
    const uid = pod.metadata.uid!;
    const rt = this.deps.runtime;
    let st = await this.runtimeStatus(uid);

    // 0. Deletion (kubelet SyncTerminatingPod + SyncTerminatedPod).
    if (e.deleting) {
      await this.killPod(e, st.containers, e.deleting.grace);
      for (const sb of st.sandboxStatuses) await rt.removePodSandbox(sb.id);
      await this.deps.volumes.tearDown(uid);
      fs.rmSync(path.join(this.deps.root, 'pods', uid), { recursive: true, force: true });
      fs.rmSync(podLogsDirFor(path.join(this.deps.root, 'logs'), pod), { recursive: true, force: true });
      this.backoff.resetPrefix(uid + '/');
      this.pullBackoff.resetPrefix(uid + '/');
      if (e.timer) clearTimeout(e.timer);
      for (const w of e.probes.values()) {
        w.stopped = true;
        if (w.timer) clearTimeout(w.timer);
      }
      e.probes.clear();
      e.gone = true;
      this.pods.delete(uid);
      this.recorder.forget(uid);
      this.emit('pod', { type: 'DELETED', pod: this.view(e) } satisfies AgentEvent);
      e.deleting.resolve();
      return;
    }

    // 1. Terminal pods stay as they are (phase Succeeded/Failed never changes).
    if (e.terminal) {
      this.updateStatus(e, st);
      return;
    }

    // 1b. spec.activeDeadlineSeconds (kubelet's activeDeadlineHandler): past it, kill the pod, Failed/DeadlineExceeded.
    const deadline = pastActiveDeadline(pod, e.status?.startTime, Date.now());
    if (deadline) {
      this.recorder.record(pod, 'Normal', deadline.reason, deadline.message);
      e.failure = deadline;
      await this.killPod(e, st.containers, undefined);
      for (const sb of st.sandboxStatuses) if (sb.state === 'ready') await rt.stopPodSandbox(sb.id);
      e.terminal = true;
      this.persist(e);
      this.updateStatus(e, await this.runtimeStatus(uid));
      return;
    }
    if (pod.spec.activeDeadlineSeconds !== undefined && e.status?.startTime)
      this.schedule(e, Date.parse(e.status.startTime) + pod.spec.activeDeadlineSeconds * 1000);

    // 2. (Termination messages of exited containers are read in updateStatus.)

    // 3. Compute what to do.
    const now = Date.now();
    const actions = computePodActions(pod, st, {
      now,
      backoff: this.backoff,
      probe: (cid, kind) => e.probes.get(`${cid}/${kind}`)?.state?.result,
      started: (cid) => this.startedFor(e, cid),
    });
    for (const b of actions.backoffs) {
      e.waiting[b.name] = { reason: 'CrashLoopBackOff', message: b.message };
      this.recorder.record(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${b.name} in pod ${pod.metadata.name}_${pod.metadata.namespace}(${uid})`, fieldPath(pod, b.name));
    }
    if (actions.nextSyncAt) this.schedule(e, actions.nextSyncAt);

    // 4. Kill the pod if its sandbox changed or everything finished.
    if (actions.killPod) {
      await this.killPod(e, st.containers, undefined);
      for (const sb of st.sandboxStatuses) if (sb.state === 'ready') await rt.stopPodSandbox(sb.id);
      if (!actions.createSandbox) {
        st = await this.runtimeStatus(uid);
        e.terminal = true;
        this.persist(e);
        this.updateStatus(e, st);
        return;
      }
    }

    // 5. Volumes (before the sandbox, as kubelet's WaitForAttachAndMount), then the sandbox.
    let sandboxId = actions.sandboxId;
    let podIPs = st.sandboxStatuses.find((s) => s.id === sandboxId)?.ips ?? [];
    if (actions.createSandbox) {
      try {
        sandboxId = await rt.runPodSandbox(buildSandboxConfig(pod));
      } catch (err) {
        this.recorder.record(pod, 'Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${describeError(err)}`);
        this.schedule(e, Date.now() + 5000);
        this.updateStatus(e, st);
        return;
      }
      podIPs = (await rt.podSandboxStatus(sandboxId)).ips;
      st = await this.runtimeStatus(uid);
    }
    if (!e.volumePaths) {
      try {
        e.volumePaths = await this.deps.volumes.setUp(pod, { objects: e.objects, podIPs, hostIPs: this.hostIPs, nodeName: this.deps.nodeName });
      } catch (err) {
        this.recorder.record(pod, 'Warning', 'FailedMount', describeError(err));
        for (const c of pod.spec.containers) e.waiting[c.name] = { reason: 'ContainerCreating' };
        this.schedule(e, Date.now() + 5000);
        this.updateStatus(e, st);
        return;
      }
    }

    // 6. Kill containers that must restart (liveness/startup failure, unknown state).
    for (const k of actions.containersToKill) {
      const c = specOf(pod, k.name);
      this.recorder.record(pod, 'Normal', 'Killing', `${k.message}`, fieldPath(pod, k.name));
      await this.stopContainer(e, k.id, c, k.gracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30);
    }

    // 7. The next init container (or sidecar); the app containers wait for it.
    const starts = actions.initContainerToStart ? [actions.initContainerToStart] : [];
    // 8. App containers.
    starts.push(...actions.containersToStart);
    for (const s of starts) {
      for (const u of actions.backoffUpdates) if (u.name === s.name) this.backoff.next(u.key, u.eventTime, Date.now());
      await this.startContainer(e, sandboxId!, podIPs, s.name, s.attempt);
    }
    if (actions.backoffUpdates.length) this.persist(e);
    // a started sidecar keeps running (no exit event): sync again to start what comes after it
    const init = actions.initContainerToStart;
    if (init && (pod.spec.initContainers ?? []).some((c) => c.name === init.name && c.restartPolicy === 'Always')) e.dirty = true;

    st = await this.runtimeStatus(uid);
    this.updateStatus(e, st);
  }

  private startedFor(e: PodEntry, cid: string): boolean {
    const w = e.probes.get(`${cid}/startup`);
    return !w || w.state?.result === 'success';
  }

  private updateStatus(e: PodEntry, st: RuntimePodStatus & { sandboxStatuses: PodSandboxStatus[] }): void {
    // termination messages, once per exited container (before any status shows it terminated)
    for (const c of st.containers) if (c.state === 'exited' && e.termMessages[c.id] === undefined) e.termMessages[c.id] = this.terminationMessage(e.pod, c);
    const probeStates: Record<string, ProbeState> = {};
    for (const c of st.containers) {
      if (c.state !== 'running') continue;
      const spec = specOf(e.pod, c.name);
      const started = this.startedFor(e, c.id);
      const rd = e.probes.get(`${c.id}/readiness`);
      probeStates[c.id] = { started, ready: started && (spec?.readinessProbe ? rd?.state?.result === 'success' : true) };
    }
    const ready = [...st.sandboxStatuses].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1))[0];
    const status = this.podStatus(e, st.containers, probeStates, { podIPs: ready?.ips ?? [], sandboxReady: ready?.state === 'ready' });
    if (JSON.stringify(status) !== JSON.stringify(e.status)) {
      e.status = status;
      this.bump(e);
    }
  }

  private readonly defaultSysctls = new SysctlAllowlist();

  private podStatus(e: PodEntry, containers: RtStatus[], probeStates: Record<string, ProbeState>, o: { podIPs?: string[]; sandboxReady: boolean }): PodStatus {
    const status = computePodStatus(e.pod, containers, probeStates, {
      now: new Date(),
      podIPs: o.podIPs ?? [],
      hostIPs: this.hostIPs,
      sandboxReady: o.sandboxReady,
      waitingReasons: e.waiting,
      terminationMessages: e.termMessages,
      previous: e.status,
      podIsTerminal: e.terminal,
      ...(e.failure ? { reason: e.failure.reason, message: e.failure.message } : {}),
    });
    // kubelet's rejectPod / activeDeadlineHandler: Failed with that reason
    return e.failure ? { ...status, phase: 'Failed' } : status;
  }

  // ------------------------------------------------------------------ containers

  /** One import per built-in image ref, shared by every pod that needs it meanwhile. */
  private builtinImports = new Map<string, Promise<boolean>>();

  private async pullImage(e: PodEntry, c: Container): Promise<ImageRecord | undefined> {
    const pod = e.pod;
    const ref = c.image!;
    const policy = c.imagePullPolicy ?? 'IfNotPresent';
    const key = backoffKey(pod.metadata.uid!, c.name);
    const fp = fieldPath(pod, c.name);
    const lastFail = e.pullFailures.get(c.name);
    if (lastFail !== undefined) {
      const until = this.pullBackoff.releaseAt(key, lastFail, Date.now());
      if (until !== undefined) {
        e.waiting[c.name] = { reason: 'ImagePullBackOff', message: `Back-off pulling image "${ref}"` };
        this.recorder.record(pod, 'Normal', 'BackOff', `Back-off pulling image "${ref}"`, fp);
        this.schedule(e, until);
        return undefined;
      }
    }
    try {
      let img = await this.deps.images.getImage(ref);
      let imported = false;
      if (!img && policy !== 'Always' && this.deps.importBuiltin) {
        let p = this.builtinImports.get(ref);
        if (!p) {
          p = this.deps.importBuiltin(ref);
          this.builtinImports.set(ref, p);
          p.catch(() => this.builtinImports.delete(ref)); // a failed import may be retried
        }
        if (await p) img = await this.deps.images.getImage(ref);
        imported = !!img;
      }
      if (img && imported) {
        this.recorder.record(pod, 'Normal', 'Pulled', `Container image "${ref}" imported from the built-in images`, fp);
      } else if (img && policy !== 'Always') {
        this.recorder.record(pod, 'Normal', 'Pulled', `Container image "${ref}" already present on machine`, fp);
      } else {
        if (policy === 'Never') throw new NodeletError('NotFound', 'ERR_IMAGE_NEVER_PULL', `Container image "${ref}" is not present with pull policy of Never`);
        this.recorder.record(pod, 'Normal', 'Pulling', `Pulling image "${ref}"`, fp);
        const t0 = Date.now();
        this.emit('pull', { pod: pod.metadata.name, container: c.name, ref, phase: 'start' });
        img = await this.deps.images.ensureImage(ref, policy, {
          onProgress: (p) => this.emit('pull', { pod: pod.metadata.name, container: c.name, ref, progress: p }),
        });
        this.recorder.record(pod, 'Normal', 'Pulled', `Successfully pulled image "${ref}" in ${((Date.now() - t0) / 1000).toFixed(3)}s`, fp);
      }
      e.pullFailures.delete(c.name);
      this.pullBackoff.reset(key);
      return img;
    } catch (err) {
      const now = Date.now();
      e.pullFailures.set(c.name, now);
      const wait = this.pullBackoff.next(key, now, now);
      const never = isNodeletError(err) && err.code === 'ERR_IMAGE_NEVER_PULL';
      e.waiting[c.name] = { reason: never ? 'ErrImageNeverPull' : 'ErrImagePull', message: describeError(err) };
      this.recorder.record(pod, 'Warning', 'Failed', `Failed to pull image "${ref}": ${describeError(err)}`, fp);
      this.recorder.record(pod, 'Warning', 'Failed', `Error: ${never ? 'ErrImageNeverPull' : 'ErrImagePull'}`, fp);
      // resync soon: it reports ImagePullBackOff until the back-off expires (then pulls again)
      this.schedule(e, now + Math.min(1000, wait / 2));
      return undefined;
    }
  }

  /** kubelet's <pod dir>/containers/<name>/<id>: empty, 0666 so a non-root container can write it. */
  private createTerminationLog(pod: Pod, name: string, attempt: number): string {
    const dir = path.join(this.deps.root, 'pods', pod.metadata.uid!, 'containers', name);
    fs.mkdirSync(dir, { recursive: true, mode: 0o750 });
    const file = path.join(dir, `${attempt}-${randomBytes(4).toString('hex')}`);
    fs.writeFileSync(file, '', { mode: 0o666, flag: 'wx' });
    fs.chmodSync(file, 0o666); // past the umask
    return file;
  }

  /** The file holding the termination message: the bound host file, else (containers created before that)
   * the path inside the container's rootfs, which stays mounted until removal. */
  private terminationMessageFile(s: RtStatus, file: string): string | undefined {
    const host = s.annotations?.[TERMINATION_LOG_ANNOTATION];
    if (host) return host;
    const rootfs = path.join(this.deps.runRoot, 'runtime', 'containers', s.id, 'rootfs');
    try {
      const real = fs.realpathSync(path.join(rootfs, file));
      return real.startsWith(rootfs + '/') ? real : undefined; // not through a symlink out of the rootfs
    } catch {
      return undefined;
    }
  }

  private terminationMessage(pod: Pod, s: RtStatus): string {
    const spec = specOf(pod, s.name);
    return readTerminationMessage({
      messageFile: this.terminationMessageFile(s, spec?.terminationMessagePath ?? '/dev/termination-log'),
      policy: spec?.terminationMessagePolicy ?? 'File',
      logPath: s.logPath,
      exitCode: s.exitCode ?? 0,
    });
  }

  private async startContainer(e: PodEntry, sandboxId: string, podIPs: string[], name: string, attempt: number): Promise<void> {
    const pod = e.pod;
    const c = specOf(pod, name)!;
    const fp = fieldPath(pod, name);
    const rt = this.deps.runtime;
    // 1. image
    const img = await this.pullImage(e, c);
    if (!img) return;
    // 2. config (env, mounts). The termination message: as kubelet, a host file per container attempt
    // bind-mounted at terminationMessagePath (so /dev/termination-log outlives the container's /dev tmpfs).
    let id: string;
    try {
      const termLog = this.createTerminationLog(pod, c.name, attempt);
      const { config, warnings } = buildContainerConfig({
        pod, container: c, image: img, attempt,
        podLogsDir: podLogsDirFor(path.join(this.deps.root, 'logs'), pod),
        volumePaths: e.volumePaths ?? {},
        objects: e.objects, podIPs, hostIPs: this.hostIPs, nodeName: this.deps.nodeName ?? os.hostname(), seccompDefault: this.deps.seccompDefault,
        terminationLogHostPath: termLog,
      });
      config.annotations[TERMINATION_LOG_ANNOTATION] = termLog;
      for (const w of warnings) this.recorder.record(pod, 'Warning', 'Warning', w, fp);
      // API data volumes (configMap, secret, downwardAPI, projected) are always mounted read-only, as kubelet does
      const apiData = (pod.spec.volumes ?? []).filter((v) => v.configMap || v.secret || v.downwardAPI || v.projected).map((v) => e.volumePaths?.[v.name]).filter((x): x is string => !!x);
      for (const m of config.mounts) if (apiData.some((p) => m.hostPath === p || m.hostPath.startsWith(p + '/'))) m.readOnly = true;
      config.logMaxBytes ??= this.deps.logMaxBytes ?? 10 << 20;
      config.logMaxFiles ??= this.deps.logMaxFiles ?? 5;
      id = await rt.createContainer(sandboxId, config);
    } catch (err) {
      const reason = isNodeletError(err) && err.code === 'ERR_CREATE_CONTAINER_CONFIG' ? 'CreateContainerConfigError' : 'CreateContainerError';
      e.waiting[name] = { reason, message: describeError(err) };
      this.recorder.record(pod, 'Warning', 'Failed', `Error: ${describeError(err)}`, fp);
      this.schedule(e, Date.now() + 5000);
      return;
    }
    this.recorder.record(pod, 'Normal', 'Created', `Created container ${name}`, fp);
    // 3. start
    try {
      await rt.startContainer(id);
    } catch (err) {
      this.recorder.record(pod, 'Warning', 'Failed', `Error: ${describeError(err)}`, fp);
      delete e.waiting[name];
      return;
    }
    delete e.waiting[name];
    this.recorder.record(pod, 'Normal', 'Started', `Started container ${name}`, fp);
    this.emit('started', { uid: pod.metadata.uid, name, id, attempt });
    // 4. postStart: the container is not Running for the pod until the hook completes (the worker is busy)
    if (c.lifecycle?.postStart) {
      const err = await this.runHook(c.lifecycle.postStart, id, c, podIPs, (pod.spec.terminationGracePeriodSeconds ?? 30) * 1000);
      if (err) {
        this.recorder.record(pod, 'Warning', 'FailedPostStartHook', err, fp);
        this.recorder.record(pod, 'Normal', 'Killing', `FailedPostStartHook`, fp);
        await rt.stopContainer(id, pod.spec.terminationGracePeriodSeconds ?? 30);
        return;
      }
    }
    // 5. probes (not for a container that already exited: its exit event has come and gone)
    if ((await rt.containerStatus(id).catch(() => undefined))?.state !== 'running') return;
    const startedAt = Date.now();
    for (const [kind, probe] of [['startup', c.startupProbe], ['liveness', c.livenessProbe], ['readiness', c.readinessProbe]] as const)
      if (probe) this.startProbe(e, id, c, kind, probe, podIPs[0], startedAt);
  }

  /** Runs a lifecycle handler; returns an error message or undefined. */
  private async runHook(h: LifecycleHandler, id: string, c: Container, podIPs: string[], timeoutMs: number): Promise<string | undefined> {
    try {
      if (h.exec) {
        const r = await this.deps.runtime.execSync(id, h.exec.command ?? [], { timeoutMs });
        if (r.exitCode !== 0 || r.timedOut)
          return `Exec lifecycle hook (${JSON.stringify(h.exec.command)}) for Container "${c.name}" failed - error: command exited with ${r.exitCode}, message: ${JSON.stringify(Buffer.concat([r.stdout, r.stderr]).toString('utf8').slice(0, 1024))}`;
      } else if (h.httpGet) {
        const out = await httpProbe(h.httpGet, Math.min(timeoutMs, 30_000), { podIP: podIPs[0], containerId: id, runtime: this.deps.runtime, ports: c.ports ?? [] });
        if (out.result !== 'success') return `HTTP lifecycle hook (${h.httpGet.path ?? '/'}) for Container "${c.name}" failed - error: ${out.output}`;
      } else if (h.sleep) {
        await sleep(Math.min(h.sleep.seconds * 1000, timeoutMs));
      }
    } catch (err) {
      return describeError(err);
    }
    return undefined;
  }

  private async stopContainer(e: PodEntry, id: string, c: Container | undefined, grace: number): Promise<void> {
    const rt = this.deps.runtime;
    this.stopProbes(e, id);
    let remaining = grace;
    if (c?.lifecycle?.preStop) {
      const t0 = Date.now();
      const err = await Promise.race([
        this.runHook(c.lifecycle.preStop, id, c, [], grace * 1000),
        sleep(grace * 1000).then(() => 'preStop hook timed out'),
      ]);
      if (err) this.recorder.record(e.pod, 'Warning', 'FailedPreStopHook', err, fieldPath(e.pod, c.name));
      remaining = Math.max(2, grace - Math.floor((Date.now() - t0) / 1000));
    }
    await rt.stopContainer(id, remaining);
  }

  /** Stop every running container: app containers first, then sidecars in reverse order. */
  private async killPod(e: PodEntry, containers: RtStatus[], grace?: number): Promise<void> {
    const g = grace ?? e.pod.spec.terminationGracePeriodSeconds ?? 30;
    for (const wave of killOrder(e.pod, containers)) {
      await Promise.all(
        wave.map(async (s) => {
          if (s.state === 'running') this.recorder.record(e.pod, 'Normal', 'Killing', `Stopping container ${s.name}`, fieldPath(e.pod, s.name));
          await this.stopContainer(e, s.id, specOf(e.pod, s.name), g);
        }),
      );
    }
  }

  // ------------------------------------------------------------------ probes

  private startProbe(e: PodEntry, cid: string, c: Container, kind: ProbeKind, probe: Probe, podIP: string | undefined, startedAt: number): void {
    const w: ProbeWorker = { kind, probe, stopped: false };
    e.probes.set(`${cid}/${kind}`, w);
    const periodMs = (probe.periodSeconds ?? 10) * 1000;
    const label = kind[0]!.toUpperCase() + kind.slice(1);
    const tick = async () => {
      if (w.stopped || e.gone) return;
      const now = Date.now();
      const due = probeDue(w.state, { kind, probe, containerId: cid, running: true, startedAt, started: this.startedFor(e, cid), now });
      w.state = due.state;
      if (due.due) {
        const out = await runProbe(probe, { podIP, containerId: cid, runtime: this.deps.runtime, ports: c.ports ?? [] });
        if (w.stopped) return;
        if (out.result !== 'success') this.recorder.record(e.pod, 'Warning', 'Unhealthy', `${label} probe failed: ${out.output.trim()}`, fieldPath(e.pod, c.name));
        if (this.listenerCount('probe')) this.emit('probe', { uid: e.pod.metadata.uid, container: c.name, kind, result: out.result });
        const next = computeProbeState(w.state, out.result, probe, kind);
        w.state = next.state;
        if (next.changed) this.requestSync(e);
      }
      if (!w.stopped && !e.gone) w.timer = setTimeout(tick, periodMs);
    };
    const delay = Math.max(0, (probe.initialDelaySeconds ?? 0) * 1000 - (Date.now() - startedAt));
    w.timer = setTimeout(tick, delay + Math.floor(Math.random() * Math.min(100, periodMs / 10)));
  }

  private stopProbes(e: PodEntry, cid: string): void {
    for (const [k, w] of e.probes) {
      if (!k.startsWith(cid + '/')) continue;
      w.stopped = true;
      if (w.timer) clearTimeout(w.timer);
      // keep the last state for status (readiness false once stopped is handled by status: not running)
    }
  }

  /** Probe results for /metrics: counts by kind and result. */
  probeResults(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const e of this.pods.values())
      for (const w of e.probes.values()) {
        if (w.stopped || !w.state) continue;
        const k = `${w.kind}/${w.state.result}`;
        out[k] = (out[k] ?? 0) + 1;
      }
    return out;
  }

  events(filter?: { uid?: string; name?: string; namespace?: string }): RecordedEvent[] {
    return this.recorder.list(filter);
  }
}

/** The exit code of a finished pod: 0 when Succeeded, else the first failed container's. */
export function podExitCode(status: PodStatus | undefined): number {
  if (!status) return 1;
  if (status.phase === 'Succeeded') return 0;
  for (const s of [...(status.initContainerStatuses ?? []), ...(status.containerStatuses ?? [])]) {
    const t = s.state.terminated ?? s.lastState?.terminated;
    if (t && t.exitCode !== 0) return t.exitCode;
  }
  return 1;
}

export { latestStatus };
