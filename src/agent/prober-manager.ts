// Prober manager (kubelet prober/prober_manager.go + worker.go): one worker
// per (container, probe kind) running on its own period; results land in a
// cache, and a change of a published result wakes the pod's worker through
// `onChange`. The decisions (when a probe is due, thresholds, on-hold after a
// liveness failure) are the pure functions of src/pod/probe.ts; the socket
// work is src/probe/. Results are exported with `snapshot()` and restored
// with `restore()` so a restarted daemon resumes readiness where it was
// instead of reporting every serving pod unready until the probes re-pass.
import type { Container, Pod, Probe } from '../pod/api-types.js';
import { computeProbeState, probeDue, type ProbeKind, type ProbeOutcome, type ProbeResultKind, type ProbeWorkerState } from '../pod/probe.js';
import type { ContainerRuntime } from '../runtime/types.js';

export type Prober = (probe: Probe, ctx: { podIP?: string; containerId: string; runtime: ContainerRuntime; ports: NonNullable<Container['ports']> }) => Promise<ProbeOutcome>;

export interface ProbeResultEvent {
  uid: string;
  pod: Pod;
  container: string;
  containerId: string;
  kind: ProbeKind;
  /** `warning`: kubelet's probe.Warning (published as a success, recorded as a ProbeWarning event) */
  result: ProbeOutcome['result'];
  output: string;
}

interface Worker {
  uid: string;
  pod: Pod;
  container: Container;
  containerId: string;
  kind: ProbeKind;
  probe: Probe;
  podIP?: string;
  startedAt: number;
  state?: ProbeWorkerState;
  timer?: NodeJS.Timeout;
  stopped: boolean;
}

export interface ProberManagerOptions {
  runtime: ContainerRuntime;
  prober: Prober;
  /** A published result changed (readiness flipped, liveness failed, startup passed): sync the pod. */
  onChange: (uid: string, kind: ProbeKind, containerId: string) => void;
  /** Every probe run (events, metrics). */
  onResult?: (e: ProbeResultEvent) => void;
}

const KINDS: ProbeKind[] = ['startup', 'liveness', 'readiness'];

export class ProberManager {
  private readonly workers = new Map<string, Worker>();
  private closed = false;
  /** total probe runs by `${kind}/${result}` (nodelet_probe_total) */
  readonly totals: Record<string, number> = {};

  constructor(private readonly o: ProberManagerOptions) {}

  /**
   * Start the probe workers of a running container (idempotent per container id).
   * `restored` carries results saved before a daemon restart.
   */
  addContainer(pod: Pod, container: Container, containerId: string, opts: { podIP?: string; startedAt: number; restored?: Partial<Record<ProbeKind, ProbeWorkerState>> }): void {
    if (this.closed) return;
    for (const kind of KINDS) {
      const probe = kind === 'startup' ? container.startupProbe : kind === 'liveness' ? container.livenessProbe : container.readinessProbe;
      if (!probe) continue;
      const key = `${containerId}/${kind}`;
      if (this.workers.has(key)) continue;
      const restored = opts.restored?.[kind];
      const w: Worker = {
        uid: pod.metadata.uid!, pod, container, containerId, kind, probe, podIP: opts.podIP, startedAt: opts.startedAt, stopped: false,
        ...(restored && restored.containerId === containerId ? { state: restored } : {}),
      };
      this.workers.set(key, w);
      const periodMs = (probe.periodSeconds ?? 10) * 1000;
      const delay = Math.max(0, (probe.initialDelaySeconds ?? 0) * 1000 - (Date.now() - opts.startedAt));
      // a small jitter so that many pods started together do not probe in lockstep
      w.timer = setTimeout(() => void this.tick(w), delay + Math.floor(Math.random() * Math.min(100, periodMs / 10)));
    }
  }

  /**
   * Stop a container's workers (all of them: it exited; liveness and startup: it is being stopped, while
   * readiness goes on until it has exited, as kubelet's StopLivenessAndStartup); the last results stay
   * readable until removePod.
   */
  stopContainer(containerId: string, kinds: readonly ProbeKind[] = KINDS): void {
    for (const kind of kinds) {
      const w = this.workers.get(`${containerId}/${kind}`);
      if (!w) continue;
      w.stopped = true;
      if (w.timer) clearTimeout(w.timer);
    }
  }

  /** Forget a pod's workers and results. */
  removePod(uid: string): void {
    for (const [k, w] of this.workers) {
      if (w.uid !== uid) continue;
      w.stopped = true;
      if (w.timer) clearTimeout(w.timer);
      this.workers.delete(k);
    }
  }

  /** Forget the workers of containers of this pod that are no longer present. */
  prune(uid: string, liveContainerIds: Set<string>): void {
    for (const [k, w] of this.workers) {
      if (w.uid !== uid || liveContainerIds.has(w.containerId)) continue;
      w.stopped = true;
      if (w.timer) clearTimeout(w.timer);
      this.workers.delete(k);
    }
  }

  has(containerId: string): boolean {
    return KINDS.some((k) => this.workers.get(`${containerId}/${k}`)?.stopped === false);
  }

  /** The published result of a probe, undefined when the container has no such probe worker. */
  result(containerId: string, kind: ProbeKind): ProbeResultKind | undefined {
    return this.workers.get(`${containerId}/${kind}`)?.state?.result;
  }

  /** Startup probe passed, or the container has none (kubelet's `started`). */
  started(containerId: string): boolean {
    const w = this.workers.get(`${containerId}/startup`);
    return !w || w.state?.result === 'success';
  }

  /** Ready from the readiness probe's view: started, and the readiness probe (if any) succeeded. */
  ready(containerId: string, hasReadinessProbe: boolean): boolean {
    if (!this.started(containerId)) return false;
    if (!hasReadinessProbe) return true;
    return this.result(containerId, 'readiness') === 'success';
  }

  /** Results per container of a pod, for persisting across a daemon restart. */
  snapshot(uid: string): Record<string, Partial<Record<ProbeKind, ProbeWorkerState>>> {
    const out: Record<string, Partial<Record<ProbeKind, ProbeWorkerState>>> = {};
    for (const w of this.workers.values()) if (w.uid === uid && w.state) (out[w.containerId] ??= {})[w.kind] = w.state;
    return out;
  }

  /** Counts of live workers by `${kind}/${result}` (nodelet_probe_results). */
  currentResults(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const w of this.workers.values()) {
      if (w.stopped || !w.state) continue;
      const k = `${w.kind}/${w.state.result}`;
      out[k] = (out[k] ?? 0) + 1;
    }
    return out;
  }

  close(): void {
    this.closed = true;
    for (const w of this.workers.values()) {
      w.stopped = true;
      if (w.timer) clearTimeout(w.timer);
    }
  }

  private async tick(w: Worker): Promise<void> {
    if (w.stopped) return;
    const due = probeDue(w.state, { kind: w.kind, probe: w.probe, containerId: w.containerId, running: true, startedAt: w.startedAt, started: this.started(w.containerId), now: Date.now() });
    w.state = due.state;
    if (due.due) {
      let out: ProbeOutcome;
      try {
        out = await this.o.prober(w.probe, { podIP: w.podIP, containerId: w.containerId, runtime: this.o.runtime, ports: w.container.ports ?? [] });
      } catch (err) {
        out = { result: 'failure', output: (err as Error).message };
      }
      if (w.stopped) return;
      const k = `${w.kind}/${out.result === 'warning' ? 'success' : out.result}`;
      this.totals[k] = (this.totals[k] ?? 0) + 1;
      this.o.onResult?.({ uid: w.uid, pod: w.pod, container: w.container.name, containerId: w.containerId, kind: w.kind, result: out.result, output: out.output });
      const next = computeProbeState(w.state, out.result, w.probe, w.kind);
      w.state = next.state;
      if (next.changed) {
        this.o.onChange(w.uid, w.kind, w.containerId);
        // kubelet: the readiness (and liveness) workers run right after the startup probe succeeds
        if (w.kind === 'startup' && next.state.result === 'success') this.kick(w.containerId, ['liveness', 'readiness']);
      }
    }
    if (!w.stopped) w.timer = setTimeout(() => void this.tick(w), (w.probe.periodSeconds ?? 10) * 1000);
  }

  private kick(containerId: string, kinds: ProbeKind[]): void {
    for (const kind of kinds) {
      const w = this.workers.get(`${containerId}/${kind}`);
      if (!w || w.stopped) continue;
      if (w.timer) clearTimeout(w.timer);
      w.timer = setTimeout(() => void this.tick(w), 0);
    }
  }
}
