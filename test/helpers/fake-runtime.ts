// A fake ContainerRuntime for unit tests of the agent (no root): sandboxes and
// containers live in memory, every call is recorded, any call can be made to
// fail on demand, and the test decides when a container exits. It models the
// runtime contract the agent relies on (states, attempts, exit events once per
// exit, stop → exit with 143, or 137 past the grace period for containers that
// ignore SIGTERM), not any behaviour of the agent itself.
import { PassThrough } from 'node:stream';
import type {
  ContainerConfig, ContainerExitEvent, ContainerRuntime, ContainerStats, ContainerStatus, ExecResult, ExecSession,
  PodSandboxConfig, PodSandboxStatus,
} from '../../src/runtime/types.js';
import type { ImageProvider, ImageRecord } from '../../src/image/types.js';

export interface Call {
  op: string;
  id?: string;
  name?: string;
  args?: unknown;
}

let seq = 0;
const newId = () => (++seq).toString(16).padStart(8, '0') + Math.random().toString(16).slice(2, 10);

export class FakeRuntime implements ContainerRuntime {
  readonly calls: Call[] = [];
  readonly sandboxes = new Map<string, PodSandboxStatus>();
  readonly containers = new Map<string, ContainerStatus & { config: ContainerConfig }>();
  private readonly listeners = new Set<(e: ContainerExitEvent) => void>();
  private readonly failures = new Map<string, Error[]>();
  /** exec results by argv[0] (hooks, exec probes); default exit 0 */
  execResults = new Map<string, Partial<ExecResult>>();
  /** names of containers that ignore SIGTERM (stop ends with 137 after the timeout) */
  ignoreTerm = new Set<string>();
  /** containers that exit by themselves right after start: name → exit code */
  exitOnStart = new Map<string, number>();
  /** like exitOnStart, but only for this many starts: name → [exit code, times] */
  exitOnStartTimes = new Map<string, [number, number]>();

  /** The next call of `op` throws `err`. */
  failNext(op: string, err: Error): void {
    (this.failures.get(op) ?? this.failures.set(op, []).get(op)!).push(err);
  }

  private enter(op: string, c: Omit<Call, 'op'> = {}): void {
    this.calls.push({ op, ...c });
    const f = this.failures.get(op)?.shift();
    if (f) throw f;
  }

  /** Make a running container exit (as its process would). */
  exit(id: string, exitCode: number, signal?: string): void {
    const c = this.containers.get(id);
    if (!c || c.state !== 'running') throw new Error(`fake: container ${id} is not running`);
    c.state = 'exited';
    c.exitCode = exitCode;
    if (signal) c.signal = signal;
    c.finishedAt = new Date().toISOString();
    c.reason = exitCode === 0 ? 'Completed' : 'Error';
    const ev: ContainerExitEvent = { containerId: id, sandboxId: c.sandboxId, status: this.copy(c) };
    queueMicrotask(() => {
      for (const l of this.listeners) l(ev);
    });
  }

  running(name?: string): (ContainerStatus & { config: ContainerConfig })[] {
    return [...this.containers.values()].filter((c) => c.state === 'running' && (!name || c.name === name));
  }

  byName(name: string): (ContainerStatus & { config: ContainerConfig })[] {
    return [...this.containers.values()].filter((c) => c.name === name).sort((a, b) => a.attempt - b.attempt);
  }

  private copy<T>(v: T): T {
    return structuredClone(v);
  }

  async runPodSandbox(config: PodSandboxConfig): Promise<string> {
    this.enter('runPodSandbox', { name: config.name });
    const id = newId();
    this.sandboxes.set(id, { id, config, state: 'ready', createdAt: new Date(Date.now() + this.sandboxes.size).toISOString(), ips: config.hostNetwork ? [] : ['10.99.0.' + (this.sandboxes.size + 2)], namespaces: {}, cgroupPath: `/fake/${config.uid}` });
    return id;
  }
  async stopPodSandbox(id: string): Promise<void> {
    this.enter('stopPodSandbox', { id });
    const sb = this.sandboxes.get(id);
    if (!sb) return;
    for (const c of this.containers.values()) if (c.sandboxId === id && c.state === 'running') this.exit(c.id, 137, 'SIGKILL');
    sb.state = 'notready';
  }
  async removePodSandbox(id: string): Promise<void> {
    this.enter('removePodSandbox', { id });
    for (const c of [...this.containers.values()]) if (c.sandboxId === id) {
      if (c.state === 'running') this.exit(c.id, 137, 'SIGKILL');
      this.containers.delete(c.id);
    }
    this.sandboxes.delete(id);
  }
  async podSandboxStatus(id: string): Promise<PodSandboxStatus> {
    const sb = this.sandboxes.get(id);
    if (!sb) throw new Error(`fake: no sandbox ${id}`);
    return this.copy(sb);
  }
  async listPodSandboxes(): Promise<PodSandboxStatus[]> {
    this.enter('listPodSandboxes');
    return [...this.sandboxes.values()].map((s) => this.copy(s));
  }
  async createContainer(sandboxId: string, config: ContainerConfig): Promise<string> {
    this.enter('createContainer', { name: config.name, args: { image: config.imageRef, attempt: config.attempt } });
    if (!this.sandboxes.has(sandboxId)) throw new Error(`fake: no sandbox ${sandboxId}`);
    const id = newId();
    this.containers.set(id, {
      id, sandboxId, name: config.name, attempt: config.attempt, state: 'created', createdAt: new Date().toISOString(), oomKilled: false,
      imageRef: config.imageRef, imageId: config.imageId, logPath: config.logPath, labels: config.labels, annotations: config.annotations, config,
    });
    return id;
  }
  async startContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    this.enter('startContainer', { id, name: c?.name });
    if (!c || c.state !== 'created') throw new Error(`fake: container ${id} cannot start`);
    c.state = 'running';
    c.pid = 1000 + this.containers.size;
    c.startedAt = new Date().toISOString();
    const code = this.exitOnStart.get(c.name);
    if (code !== undefined) return this.exit(id, code);
    const times = this.exitOnStartTimes.get(c.name);
    if (times && times[1] > 0) {
      times[1]--;
      this.exit(id, times[0]);
    }
  }
  async stopContainer(id: string, timeoutSeconds: number): Promise<void> {
    const c = this.containers.get(id);
    this.enter('stopContainer', { id, name: c?.name, args: { timeoutSeconds } });
    if (c?.state === 'running') this.ignoreTerm.has(c.name) ? this.exit(id, 137, 'SIGKILL') : this.exit(id, 143, 'SIGTERM');
  }
  async removeContainer(id: string): Promise<void> {
    this.enter('removeContainer', { id });
    this.containers.delete(id);
  }
  async containerStatus(id: string): Promise<ContainerStatus> {
    const c = this.containers.get(id);
    if (!c) throw new Error(`fake: no container ${id}`);
    const { config: _c, ...st } = c;
    return this.copy(st);
  }
  async listContainers(filter?: { sandboxId?: string }): Promise<ContainerStatus[]> {
    return [...this.containers.values()].filter((c) => !filter?.sandboxId || c.sandboxId === filter.sandboxId).map(({ config: _c, ...st }) => this.copy(st));
  }
  async containerStats(id: string): Promise<ContainerStats> {
    return { timestamp: new Date().toISOString(), cpuUsageNanos: 0, memoryWorkingSetBytes: 0, memoryUsageBytes: 0, pids: this.containers.get(id)?.state === 'running' ? 1 : 0 };
  }
  async execSync(id: string, argv: string[]): Promise<ExecResult> {
    this.enter('execSync', { id, name: this.containers.get(id)?.name, args: argv });
    const r = this.execResults.get(argv[0] ?? '') ?? {};
    return { exitCode: 0, stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), timedOut: false, ...r };
  }
  async exec(): Promise<ExecSession> {
    const out = new PassThrough();
    out.end();
    return { stdin: null, stdout: out, stderr: null, resize() {}, kill() {}, exit: Promise.resolve({ exitCode: 0 }) };
  }
  async attach(): Promise<ExecSession> {
    return this.exec();
  }
  onContainerExit(listener: (e: ContainerExitEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  async close(): Promise<void> {}
}

/** An ImageProvider whose images are all present (or all missing, for pull tests). */
export class FakeImages implements ImageProvider {
  readonly pulls: string[] = [];
  missing = new Set<string>();
  pullError?: Error;
  record(ref: string): ImageRecord {
    return {
      id: 'sha256:' + Buffer.from(ref).toString('hex').padEnd(64, '0').slice(0, 64), manifestDigest: 'sha256:' + 'c'.repeat(64), names: [ref], repoDigests: [],
      config: { os: 'linux', architecture: 'amd64', env: ['PATH=/bin'], exposedPorts: [], labels: {}, diffIds: [], cmd: ['sh'] },
      chainIds: [], size: 1, pulledAt: new Date().toISOString(),
    } as ImageRecord;
  }
  async getImage(ref: string): Promise<ImageRecord | undefined> {
    return this.missing.has(ref) ? undefined : this.record(ref);
  }
  async ensureImage(ref: string): Promise<ImageRecord> {
    this.pulls.push(ref);
    if (this.pullError) throw this.pullError;
    this.missing.delete(ref);
    return this.record(ref);
  }
  async prepareRootfs(): Promise<never> {
    throw new Error('fake images: prepareRootfs is the runtime’s business');
  }
  async removeRootfs(): Promise<void> {}
}
