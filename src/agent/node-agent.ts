// NodeAgent: the node agent put together along kubelet's seams.
//
//   pod sources ─▶ PodConfig ─▶ NodeAgent (admission, pod records)
//                                   │
//                                   ▼
//                              PodWorkers ──▶ PodSyncer ──▶ ContainerRuntime
//                   (one serial worker per pod:  (SyncPod steps, hooks,
//                    syncing → terminating →      ImagePuller, volumes)
//                    terminated)                     │
//                        ▲                           ▼
//             ProberManager (probe workers) ──  StatusManager ──▶ subscribers
//                        results wake the pod      (local API watch, `run`,
//                                                   cluster status syncer)
//   PodStore: records, back-off, probe results and events survive restarts.
//
// Workers are woken by container exits (runtime.onContainerExit), probe
// result changes, back-off expiry, deletion and a slow periodic resync.
import { EventEmitter } from 'node:events';
import os from 'node:os';
import { describeError, NodeletError } from '../errors.js';
import { getLogger } from '../log.js';
import type { ImageProvider } from '../image/types.js';
import { LocalStorageEvictor, hasLocalStorageLimits, type EvictionTarget } from './eviction.js';
import type { ContainerRuntime, ContainerStatus as RtStatus } from '../runtime/types.js';
import type { Pod, PodObjects, PodStatus } from '../pod/api-types.js';
import { latestStatus } from '../pod/actions.js';
import { Backoff, type BackoffOptions } from '../pod/backoff.js';
import { SysctlAllowlist } from '../pod/sysctls.js';
import { admitSecurity } from '../pod/security-admission.js';
import { appArmorEnabled } from '../host/node.js';
import { runProbe } from '../probe/probers.js';
import { EventRecorder, type RecordedEvent } from './events.js';
import { ImagePuller, type PullProgress } from './image-puller.js';
import { PodConfig, type SourceRejection } from './pod-config.js';
import { PodStore, type PodRecordFile } from './pod-store.js';
import { PodWorkers } from './pod-workers.js';
import { isOrphan, RUN_OWNER_ANNOTATION } from './run-owner.js';
import { ProberManager, type Prober } from './prober-manager.js';
import { StatusManager, type PodChange, type PodView } from './status-manager.js';
import { downwardAPIShowsMetadata, hostIPv4s, PodSyncer, type PodRecord, type VolumePort } from './sync.js';

const log = getLogger('agent');

export type { PodView } from './status-manager.js';
export type AgentEvent = PodChange;

export interface NodeAgentDeps {
  root: string;
  /** run root (the runtime's state is <runRoot>/runtime) */
  runRoot: string;
  runtime: ContainerRuntime;
  images: ImageProvider;
  volumes: VolumePort;
  /** Resolve a built-in image (localhost/nodelet/...) that is not in the store; returns true when imported. */
  importBuiltin?: (ref: string) => Promise<boolean>;
  backoff?: BackoffOptions;
  /** Periodic resync (ms), default 60 s. */
  resyncMs?: number;
  /** local-storage eviction check period (ms), default 10 s as kubelet's housekeeping */
  evictionPeriodMs?: number;
  nodeName?: string;
  /** Container log rotation (kubelet containerLogMaxSize / containerLogMaxFiles): default 10 MiB, 5 files. */
  logMaxBytes?: number;
  logMaxFiles?: number;
  /** Pod log root (<dir>/<ns>_<pod>_<uid>/<container>/<n>.log): default <root>/logs; createAgent passes /var/log/pods. */
  podLogDir?: string;
  /** Symlinks for log shippers (<pod>_<ns>_<container>-<id>.log); none when unset; createAgent passes /var/log/containers. */
  containerLogLinkDir?: string;
  /** kubelet's --seccomp-default: RuntimeDefault seccomp for containers whose pod sets no profile. */
  seccompDefault?: boolean;
  /** kubelet's --pod-max-pids */
  podPidsLimit?: number;
  /** Admits pod sysctls (kubelet --allowed-unsafe-sysctls); default: the safe set only. */
  sysctls?: SysctlAllowlist;
  /** The host's AppArmor is enabled (admission of appArmorProfile); default: read from /sys. */
  appArmorEnabled?: boolean;
  /** The probe implementation (tests inject one); default src/probe/probers.ts runProbe. */
  prober?: Prober;
  /** This host's addresses for status.hostIPs; default the non-loopback IPv4 addresses. */
  hostIPs?: string[];
  /** Node-level admission (kubelet's resource fit: OutOfcpu, OutOfmemory, OutOfpods ...) against the pods admitted so far. */
  admit?: (pod: Pod, admitted: Pod[]) => { reason: string; message: string } | undefined;
}

/** Spec fields an update may change (the API server's ValidatePodUpdate set); validated by the caller. */
function applyUpdate(old: Pod, next: Pod): Pod {
  const byName = new Map([...(next.spec.initContainers ?? []), ...next.spec.containers].map((c) => [c.name, c]));
  const withImage = <T extends { name: string; image?: string }>(cs: T[] | undefined) => cs?.map((c) => ({ ...c, image: byName.get(c.name)?.image ?? c.image }));
  return {
    ...old,
    metadata: { ...old.metadata, labels: next.metadata.labels, annotations: { ...next.metadata.annotations, ...pick(old.metadata.annotations, ['kubernetes.io/config.source']) } },
    spec: {
      ...old.spec,
      containers: withImage(old.spec.containers)!,
      ...(old.spec.initContainers ? { initContainers: withImage(old.spec.initContainers) } : {}),
      activeDeadlineSeconds: next.spec.activeDeadlineSeconds,
      ...{ tolerations: (next.spec as { tolerations?: unknown }).tolerations },
      terminationGracePeriodSeconds: next.spec.terminationGracePeriodSeconds ?? old.spec.terminationGracePeriodSeconds,
    },
  };
}

function pick(o: Record<string, string> | undefined, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of keys) if (o?.[k] !== undefined) out[k] = o[k]!;
  return out;
}

export class NodeAgent extends EventEmitter {
  readonly recorder: EventRecorder;
  readonly config: PodConfig;
  readonly status = new StatusManager();
  private readonly records = new Map<string, PodRecord>();
  private readonly evictor: LocalStorageEvictor;
  private readonly deleting = new Map<string, Promise<void>>();
  private readonly backoff: Backoff;
  private readonly workers: PodWorkers;
  private readonly syncer: PodSyncer;
  private readonly prober: ProberManager;
  private readonly puller: ImagePuller;
  private readonly store: PodStore;
  private readonly resync: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly hostIPs: string[];
  private readonly sysctls: SysctlAllowlist;
  private readonly appArmor: boolean;
  private closed = false;

  constructor(private readonly deps: NodeAgentDeps) {
    super();
    this.setMaxListeners(0);
    this.hostIPs = deps.hostIPs ?? hostIPv4s();
    this.sysctls = deps.sysctls ?? new SysctlAllowlist();
    this.appArmor = deps.appArmorEnabled ?? appArmorEnabled();
    this.backoff = new Backoff(deps.backoff);
    this.store = new PodStore({ root: deps.root });
    this.recorder = new EventRecorder((e) => {
      this.store.saveEvents(e.involvedObject.uid!, () => this.recorder.list({ uid: e.involvedObject.uid! }));
      this.emit('event', e);
    }, 2000, deps.nodeName ?? os.hostname());
    const record = (pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string, fieldPath?: string) => void this.recorder.record(pod, type, reason, message, fieldPath);
    this.puller = new ImagePuller({ images: deps.images, importBuiltin: deps.importBuiltin, backoff: deps.backoff, record, onProgress: (p: PullProgress) => this.emit('pull', p), pulledRecordsFile: `${deps.root}/image-pulls.json` });
    this.prober = new ProberManager({
      runtime: deps.runtime,
      prober: deps.prober ?? runProbe,
      onChange: (uid, kind) => {
        const r = this.records.get(uid);
        if (r) this.persist(r); // results survive a restart
        // a terminating pod's worker is busy (preStop, grace period): publish a readiness flip now, as kubelet's
        // prober updates the status manager directly (SetContainerReadiness)
        if (r && kind === 'readiness' && this.workers.state(uid) === 'terminating') void this.publishReadiness(uid);
        this.workers.update(uid);
      },
      onResult: (e) => {
        const label = e.kind[0]!.toUpperCase() + e.kind.slice(1);
        // kubelet prober.go: a Warning result (redirect to another host) is a success with a ProbeWarning event
        if (e.result === 'warning') this.recorder.record(e.pod, 'Warning', 'ProbeWarning', `${label} probe warning: ${e.output}`, `spec.containers{${e.container}}`);
        else if (e.result !== 'success') this.recorder.record(e.pod, 'Warning', 'Unhealthy', `${label} probe failed: ${e.output.trim()}`, `spec.containers{${e.container}}`);
        if (this.listenerCount('probe')) this.emit('probe', { uid: e.uid, container: e.container, kind: e.kind, result: e.result });
      },
    });
    this.syncer = new PodSyncer({
      root: deps.root,
      runtime: deps.runtime,
      volumes: deps.volumes,
      puller: this.puller,
      prober: this.prober,
      status: this.status,
      backoff: this.backoff,
      record,
      schedule: (uid, at) => this.workers.schedule(uid, at),
      again: (uid) => this.workers.update(uid),
      persist: (r) => this.persist(r),
      onStarted: (e) => this.emit('started', e),
      nodeName: deps.nodeName ?? os.hostname(),
      hostIPs: this.hostIPs,
      seccompDefault: deps.seccompDefault,
      podPidsLimit: deps.podPidsLimit,
      logMaxBytes: deps.logMaxBytes,
      logMaxFiles: deps.logMaxFiles,
      podLogDir: deps.podLogDir,
      containerLogLinkDir: deps.containerLogLinkDir || undefined,
    });
    this.workers = new PodWorkers({
      syncPod: async (uid) => {
        const r = this.records.get(uid);
        if (r) await this.syncer.syncPod(r);
      },
      syncTerminatingPod: async (uid, grace) => {
        const r = this.records.get(uid);
        if (r) await this.syncer.syncTerminatingPod(r, grace);
      },
      syncTerminatedPod: async (uid) => {
        const r = this.records.get(uid);
        if (!r) return;
        await this.syncer.syncTerminatedPod(r);
        this.store.remove(uid);
        this.backoff.resetPrefix(uid + '/');
        this.puller.forgetPod(uid);
        this.records.delete(uid);
        this.recorder.forget(uid);
        this.status.remove(uid);
      },
      onSyncError: (uid, err) => {
        const r = this.records.get(uid);
        if (r) this.recorder.record(r.pod, 'Warning', 'FailedSync', `error syncing pod: ${describeError(err)}`);
      },
    });
    this.status.subscribe((c) => this.emit('pod', c));
    this.config = new PodConfig({
      add: (pod, objects, rejected) => void this.addPod(pod, objects, undefined, rejected),
      update: (pod, objects) => {
        if (this.records.has(pod.metadata.uid!)) this.updatePod(pod, objects);
      },
      delete: (uid, grace) => this.deletePod(uid, grace),
    });
    this.unsubscribe = deps.runtime.onContainerExit((ev) => {
      const uid = ev.status.labels['io.kubernetes.pod.uid'];
      this.prober.stopContainer(ev.containerId);
      if (uid && this.records.has(uid)) this.workers.update(uid);
    });
    this.resync = setInterval(() => {
      this.backoff.gc(Date.now());
      this.workers.resyncAll();
    }, deps.resyncMs ?? 60_000);
    this.resync.unref();
    this.evictor = new LocalStorageEvictor({
      periodMs: deps.evictionPeriodMs,
      targets: async () => {
        const out: EvictionTarget[] = [];
        for (const r of this.records.values()) {
          if (r.terminal || r.eviction || !r.volumePaths || !hasLocalStorageLimits(r.pod)) continue;
          if (this.workers.state(r.pod.metadata.uid!) === 'terminating') continue;
          const running = (await this.syncer.runtimeStatus(r.pod.metadata.uid!)).containers.filter((c) => c.state === 'running');
          out.push({
            pod: r.pod,
            volumePaths: r.volumePaths,
            containers: running.map((c) => ({ name: c.name, rootfsDir: this.deps.images.writableDir?.(c.id), logPath: c.logPath })),
          });
        }
        return out;
      },
      evict: (pod, message) => this.evictPod(pod.metadata.uid!, message),
    });
    this.evictor.start();
  }

  /** kubelet's eviction manager evictPod: a Warning Evicted event, then the pod is killed (1 s grace) and Failed/Evicted. */
  evictPod(uid: string, message: string): void {
    const r = this.records.get(uid);
    if (!r || r.terminal || r.eviction) return;
    this.recorder.record(r.pod, 'Warning', 'Evicted', message);
    r.eviction = { message };
    this.persist(r);
    this.workers.update(uid);
  }

  /** One local-storage eviction round now (tests): the uids evicted. */
  checkEvictions(): Promise<string[]> {
    return this.evictor.check();
  }

  // ------------------------------------------------------------------ pods

  /**
   * Admit and start a pod (kubelet HandlePodAdditions). An existing uid is left as it is.
   * `recovered` restores a pod known before a restart with the verdict it had.
   */
  addPod(pod: Pod, objects: PodObjects = { configMaps: [], secrets: [] }, recovered?: Omit<PodRecordFile, 'pod' | 'objects'>, sourceRejection?: SourceRejection): PodView {
    const uid = pod.metadata.uid!;
    const existing = this.status.get(uid);
    if (existing && this.records.has(uid)) return existing;
    // kubelet's admission (the source's verdict, sysctls, AppArmor and user namespaces, node resources); a recovered pod keeps the verdict it had
    const rejected = recovered ? recovered.failure : (sourceRejection ?? this.sysctls.admit(pod) ?? admitSecurity(pod, this.appArmor) ?? this.deps.admit?.(pod, this.admittedPods()));
    const r: PodRecord = {
      pod, objects, waiting: {}, termMessages: {}, terminal: !!recovered?.terminal || !!rejected,
      ...(rejected ? { failure: rejected } : {}),
      ...(recovered?.probes ? { restoredProbes: recovered.probes } : {}),
    };
    this.records.set(uid, r);
    if (recovered?.backoff) this.restoreBackoff(recovered.backoff);
    this.persist(r);
    // a recovered pod's status is a placeholder until its first sync has looked at its containers
    const view = this.status.add(pod, this.syncer.podStatus(r, [], {}, { sandboxReady: false }), { provisional: !!recovered });
    if (rejected && !recovered) {
      this.recorder.record(pod, 'Warning', rejected.reason, rejected.message);
      log.warn('pod rejected', { pod: `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`, reason: rejected.reason, message: rejected.message });
    }
    this.workers.update(uid);
    return view;
  }

  /**
   * Apply a validated update (src/pod/update.ts validatePodUpdate): labels, annotations and the spec
   * fields an update may change. A changed container image restarts that container, as kubelet does
   * when a container's spec hash changes.
   */
  updatePod(next: Pod, objects?: PodObjects): PodView {
    const uid = next.metadata.uid!;
    const r = this.records.get(uid);
    if (!r) throw new NodeletError('NotFound', 'ERR_POD_NOT_FOUND', `pod ${next.metadata.namespace ?? 'default'}/${next.metadata.name} (uid ${uid}) is not on this node`);
    if (objects && JSON.stringify(objects) !== JSON.stringify(r.objects)) {
      r.objects = objects;
      r.objectsChanged = true;
    }
    // a deletion requested through the update (API server watch) is the source's business: it calls deletePod
    const prev = r.pod;
    r.pod = applyUpdate(r.pod, next);
    // downward API files showing labels or annotations are projected again (the next sync's volume update)
    const metadata = (p: Pod) => JSON.stringify([p.metadata.labels ?? {}, p.metadata.annotations ?? {}]);
    if (metadata(prev) !== metadata(r.pod) && downwardAPIShowsMetadata(r.pod)) r.objectsChanged = true;
    this.persist(r);
    this.status.setPod(uid, r.pod);
    this.workers.update(uid);
    return this.status.get(uid)!;
  }

  /** Pods that hold node resources: admitted, not terminal, not finished deleting. */
  private admittedPods(): Pod[] {
    return [...this.records.values()].filter((r) => !r.terminal).map((r) => r.pod);
  }

  getPod(uid: string): PodView | undefined {
    return this.status.get(uid);
  }

  findPod(namespace: string, name: string): PodView | undefined {
    for (const v of this.status.list()) if (v.pod.metadata.name === name && (v.pod.metadata.namespace ?? 'default') === namespace) return v;
    return undefined;
  }

  listPods(): PodView[] {
    return this.status.list();
  }

  /** Graceful deletion: preStop, stop with grace, tear down sandbox and volumes. Resolves when nothing is left. */
  deletePod(uid: string, gracePeriodSeconds?: number): Promise<void> {
    const r = this.records.get(uid);
    if (!r) return this.deleting.get(uid) ?? Promise.resolve();
    if (r.pod.metadata.deletionTimestamp === undefined) {
      r.pod = {
        ...r.pod,
        metadata: { ...r.pod.metadata, deletionTimestamp: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), deletionGracePeriodSeconds: gracePeriodSeconds ?? r.pod.spec.terminationGracePeriodSeconds ?? 30 },
      };
      this.persist(r); // a daemon restarted meanwhile finishes the deletion
      this.status.setPod(uid, r.pod);
    }
    const done = this.workers.terminate(uid, gracePeriodSeconds ?? r.pod.metadata.deletionGracePeriodSeconds);
    this.deleting.set(uid, done);
    void done.then(() => this.deleting.delete(uid));
    return done;
  }

  /** Runtime containers of a pod (for logs/exec). */
  async podContainers(uid: string): Promise<RtStatus[]> {
    return (await this.syncer.runtimeStatus(uid)).containers;
  }

  get runtime(): ContainerRuntime {
    return this.deps.runtime;
  }

  /** sync durations for /metrics */
  get syncStats(): { count: number; totalMs: number } {
    return this.workers.stats;
  }

  /** Resolves when the pod's worker has no pending sync (tests, run). */
  whenIdle(uid: string): Promise<void> {
    return this.workers.whenIdle(uid);
  }

  /** Stop workers and probes; never stops containers (a restarted agent re-adopts them). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.resync);
    this.evictor.stop();
    this.unsubscribe();
    this.prober.close();
    await this.workers.close();
    for (const r of this.records.values()) this.persist(r);
    this.store.flushEvents();
  }

  /** Re-adopt the pods of the pod store (a daemon restart): records, back-off, probe results and events. */
  recover(): PodView[] {
    const out: PodView[] = [];
    for (const rec of this.store.loadAll()) {
      const uid = rec.pod.metadata.uid!;
      // a live `nodelet run` on this root manages its own pods (a dead one's are reaped: run-owner.ts)
      const owner = rec.pod.metadata.annotations?.[RUN_OWNER_ANNOTATION];
      if (owner && !isOrphan(owner)) continue;
      try {
        this.recorder.restore(this.store.loadEvents(uid));
        this.config.adopt(rec.pod, rec.objects);
        const v = this.addPod(rec.pod, rec.objects, { terminal: !!rec.terminal, failure: rec.failure, backoff: rec.backoff, probes: rec.probes });
        if (rec.pod.metadata.deletionTimestamp) void this.deletePod(uid, rec.pod.metadata.deletionGracePeriodSeconds);
        out.push(v);
      } catch (err) {
        log.warn('cannot recover pod', { uid, error: describeError(err) });
      }
    }
    return out;
  }

  /** Probe results for /metrics: live workers by kind and result. */
  probeResults(): Record<string, number> {
    return this.prober.currentResults();
  }

  /** Probe runs since start by kind and result (nodelet_probe_total). */
  probeTotals(): Record<string, number> {
    return { ...this.prober.totals };
  }

  events(filter?: { uid?: string; name?: string; namespace?: string }): RecordedEvent[] {
    return this.recorder.list(filter);
  }

  // ------------------------------------------------------------------ internals

  /** The status of a terminating pod after a readiness flip, outside its (busy) worker. */
  private async publishReadiness(uid: string): Promise<void> {
    try {
      const st = await this.syncer.runtimeStatus(uid);
      const r = this.records.get(uid);
      if (r && this.workers.state(uid) === 'terminating') this.syncer.updateStatus(r, st);
    } catch {
      /* the terminating sync publishes the status when it is done */
    }
  }

  private persist(r: PodRecord): void {
    const uid = r.pod.metadata.uid!;
    const backoff = Object.fromEntries(Object.entries(this.backoff.toJSON()).filter(([k]) => k.startsWith(uid + '/')));
    this.store.save({
      pod: r.pod, objects: r.objects, backoff, terminal: r.terminal,
      ...(r.failure ? { failure: r.failure } : {}),
      probes: { ...r.restoredProbes, ...this.prober.snapshot(uid) },
    });
  }

  private restoreBackoff(entries: NonNullable<PodRecordFile['backoff']>): void {
    // the Backoff object is shared with the syncer: put the entries into it
    for (const [k, e] of Object.entries(entries)) this.backoff.set(k, e);
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
