// kubelet's stats endpoints from the runtime's container stats and /proc:
//   /stats/summary     the Summary API (k8s.io/kubelet/pkg/apis/stats/v1alpha1) metrics-server
//                      and `kubectl top` read: node cpu/memory/fs/rlimit, pods with their
//                      running containers' cpu (usageNanoCores, usageCoreNanoSeconds) and memory
//   /metrics/resource  the resource metrics (pkg/kubelet/metrics/collectors/resource_metrics.go)
// usageNanoCores is a rate: the difference to the previous sample of the same container
// (kept per container), or, for one never sampled, two samples 200 ms apart.
import fs from 'node:fs';
import os from 'node:os';
import { parseMeminfo, statfsStats, type FsStats } from '../node/host-info.js';
import type { NodeAgent, PodView } from '../agent/node-agent.js';
import type { ContainerStats, ContainerStatus } from '../runtime/types.js';

/** USER_HZ of /proc/stat (100 on every Linux architecture Node runs on). */
const USER_HZ = 100;

/** Non-idle CPU time of the node in nanoseconds (/proc/stat "cpu" line: all but idle and iowait; guest is inside user). */
export function parseProcStatCpuNanos(text: string): number {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return (user + nice + system + irq + softirq + steal) * (1e9 / USER_HZ);
}

export interface NodeSample {
  time: string;
  cpuNanos: number;
  memory: { availableBytes: number; usageBytes: number; workingSetBytes: number; rssBytes: number };
  fs?: FsStats;
  rlimit: { maxpid?: number; curproc?: number };
  startTime: string;
}

export interface PodSample {
  view: PodView;
  containers: { status: ContainerStatus; stats: ContainerStats }[];
}

export interface Sample {
  node: NodeSample;
  pods: PodSample[];
}

const rfc3339 = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

const read = (f: string) => {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return '';
  }
};

/** cgroup v1 mounts the root cpuacct controller at one of these (cpuacct alone or co-mounted with cpu). */
const V1_ROOT_CPUACCT = ['/sys/fs/cgroup/cpuacct/cpuacct.usage', '/sys/fs/cgroup/cpu,cpuacct/cpuacct.usage'];

/**
 * The node's CPU time in nanoseconds, as cadvisor takes it from the root cgroup: on a v1 (or hybrid) host the
 * root cpuacct.usage, which the scheduler keeps exact to the nanosecond; otherwise /proc/stat, counted in 10 ms
 * ticks (the v2 root cpu.stat is made from the same ticks), so a quiet 200 ms may read as no use at all.
 */
export function nodeCpuNanos(readFile: (f: string) => string = read): number {
  for (const f of V1_ROOT_CPUACCT) {
    const v = Number(readFile(f).trim() || NaN);
    if (v > 0) return v;
  }
  return parseProcStatCpuNanos(readFile('/proc/stat'));
}

function readNode(): Omit<NodeSample, 'fs'> {
  const mi = parseMeminfo(read('/proc/meminfo'));
  const total = mi.MemTotal ?? os.totalmem();
  const usage = total - (mi.MemFree ?? os.freemem());
  const inactiveFile = mi['Inactive(file)'] ?? 0;
  const pidMax = Number(read('/proc/sys/kernel/pid_max').trim()) || undefined;
  const procs = Number(read('/proc/loadavg').split(' ')[3]?.split('/')[1]) || undefined;
  return {
    time: rfc3339(Date.now()),
    cpuNanos: nodeCpuNanos(),
    memory: {
      availableBytes: mi.MemAvailable ?? os.freemem(),
      usageBytes: usage,
      workingSetBytes: Math.max(0, usage - inactiveFile),
      rssBytes: Math.max(0, usage - (mi.Cached ?? 0) - (mi.Buffers ?? 0)),
    },
    rlimit: { ...(pidMax ? { maxpid: pidMax } : {}), ...(procs ? { curproc: procs } : {}) },
    startTime: rfc3339(Date.now() - os.uptime() * 1000),
  };
}

/** Samples the node and every running container of the agent's pods. */
export async function takeSample(agent: NodeAgent, root: string): Promise<Sample> {
  const pods: PodSample[] = [];
  for (const view of agent.listPods()) {
    const containers: PodSample['containers'] = [];
    for (const status of await agent.podContainers(view.pod.metadata.uid!).catch(() => [])) {
      if (status.state !== 'running') continue;
      const stats = await agent.runtime.containerStats(status.id).catch(() => undefined);
      if (stats) containers.push({ status, stats });
    }
    pods.push({ view, containers });
  }
  const fsStats = await statfsStats(root).catch(() => undefined);
  return { node: { ...readNode(), ...(fsStats ? { fs: fsStats } : {}) }, pods };
}

/** Remembers the last CPU sample per container (and the node) to turn cumulative time into a rate. */
export class CpuRates {
  private readonly last = new Map<string, { nanos: number; at: number }>();

  /** nanocores since the previous sample of `key`, undefined for the first. */
  rate(key: string, nanos: number, at: number): number | undefined {
    const prev = this.last.get(key);
    this.last.set(key, { nanos, at });
    if (!prev || at <= prev.at || nanos < prev.nanos) return undefined;
    return Math.round(((nanos - prev.nanos) / (at - prev.at)) * 1000); // ns per ms → ns per s
  }

  has(key: string): boolean {
    return this.last.has(key);
  }

  /** Forget keys not seen in this sample (deleted containers). */
  retain(keys: Set<string>): void {
    for (const k of this.last.keys()) if (!keys.has(k)) this.last.delete(k);
  }
}

const NODE_KEY = '<node>';

/**
 * The Summary (stats/v1alpha1). `rates` carries the previous samples; a container (or the node) without one
 * gets its rate from `again()`, a second sample (the caller decides when).
 */
export function buildSummary(nodeName: string, s: Sample, rates: CpuRates, atMs: number): Record<string, unknown> {
  const seen = new Set<string>([NODE_KEY]);
  const cpu = (key: string, nanos: number, time: string) => {
    seen.add(key);
    const r = rates.rate(key, nanos, atMs);
    return { time, ...(r !== undefined ? { usageNanoCores: r } : {}), usageCoreNanoSeconds: Math.round(nanos) };
  };
  const fsOf = (f: FsStats | undefined, time: string) =>
    f ? { time, availableBytes: f.availableBytes, capacityBytes: f.capacityBytes, usedBytes: f.capacityBytes - f.availableBytes, inodesFree: f.inodesFree, inodes: f.inodes, inodesUsed: f.inodes - f.inodesFree } : undefined;
  const n = s.node;
  const nodeFs = fsOf(n.fs, n.time);
  const node = {
    nodeName,
    startTime: n.startTime,
    cpu: cpu(NODE_KEY, n.cpuNanos, n.time),
    memory: { time: n.time, ...n.memory },
    ...(nodeFs ? { fs: nodeFs, runtime: { imageFs: nodeFs, containerFs: nodeFs } } : {}),
    rlimit: { time: n.time, ...n.rlimit },
    systemContainers: [],
  };
  const pods = s.pods.map((p) => {
    const meta = p.view.pod.metadata;
    let podNanos = 0;
    let podWs = 0;
    let podUsage = 0;
    let procs = 0;
    let time = n.time;
    const containers = p.containers.map(({ status, stats }) => {
      podNanos += stats.cpuUsageNanos;
      podWs += stats.memoryWorkingSetBytes;
      podUsage += stats.memoryUsageBytes;
      procs += stats.pids;
      time = stats.timestamp;
      return {
        name: status.name,
        startTime: status.startedAt ?? status.createdAt,
        cpu: cpu(`${meta.uid}/${status.id}`, stats.cpuUsageNanos, stats.timestamp),
        memory: { time: stats.timestamp, usageBytes: stats.memoryUsageBytes, workingSetBytes: stats.memoryWorkingSetBytes },
      };
    });
    return {
      podRef: { name: meta.name, namespace: meta.namespace ?? 'default', uid: meta.uid },
      startTime: p.view.status?.startTime ?? meta.creationTimestamp,
      containers,
      cpu: cpu(`${meta.uid}`, podNanos, time),
      memory: { time, usageBytes: podUsage, workingSetBytes: podWs },
      process_stats: { process_count: procs },
    };
  });
  rates.retain(seen);
  return { node, pods };
}

/** Keys a summary needs a rate for and has none yet (then sample twice). */
export function needsSecondSample(s: Sample, rates: CpuRates): boolean {
  if (!rates.has(NODE_KEY)) return true;
  return s.pods.some((p) => !rates.has(`${p.view.pod.metadata.uid}`) || p.containers.some((c) => !rates.has(`${p.view.pod.metadata.uid}/${c.status.id}`)));
}

const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const secs = (nanos: number) => (nanos / 1e9).toFixed(9).replace(/\.?0+$/, '') || '0';

/** /metrics/resource: kubelet's resource metrics, Prometheus text with sample timestamps (ms). */
export function renderResourceMetrics(s: Sample): string {
  const out: string[] = [];
  const ts = (t: string) => Date.parse(t);
  const family = (name: string, help: string, type: 'counter' | 'gauge', samples: string[]) => {
    out.push(`# HELP ${name} [STABLE] ${help}`, `# TYPE ${name} ${type}`, ...samples);
  };
  const cl = (ns: string, pod: string, c: string) => `{container="${esc(c)}",namespace="${esc(ns)}",pod="${esc(pod)}"}`;
  const pl = (ns: string, pod: string) => `{namespace="${esc(ns)}",pod="${esc(pod)}"}`;
  const cpuC: string[] = [];
  const memC: string[] = [];
  const startC: string[] = [];
  const cpuP: string[] = [];
  const memP: string[] = [];
  for (const p of s.pods) {
    if (p.containers.length === 0) continue;
    const ns = p.view.pod.metadata.namespace ?? 'default';
    const name = p.view.pod.metadata.name!;
    let nanos = 0;
    let ws = 0;
    let t = 0;
    for (const { status, stats } of p.containers) {
      nanos += stats.cpuUsageNanos;
      ws += stats.memoryWorkingSetBytes;
      t = Math.max(t, ts(stats.timestamp));
      cpuC.push(`container_cpu_usage_seconds_total${cl(ns, name, status.name)} ${secs(stats.cpuUsageNanos)} ${ts(stats.timestamp)}`);
      memC.push(`container_memory_working_set_bytes${cl(ns, name, status.name)} ${stats.memoryWorkingSetBytes} ${ts(stats.timestamp)}`);
      const started = Date.parse(status.startedAt ?? status.createdAt);
      if (!Number.isNaN(started)) startC.push(`container_start_time_seconds${cl(ns, name, status.name)} ${(started / 1000).toFixed(3)} ${ts(stats.timestamp)}`);
    }
    cpuP.push(`pod_cpu_usage_seconds_total${pl(ns, name)} ${secs(nanos)} ${t}`);
    memP.push(`pod_memory_working_set_bytes${pl(ns, name)} ${ws} ${t}`);
  }
  family('container_cpu_usage_seconds_total', 'Cumulative cpu time consumed by the container in core-seconds', 'counter', cpuC);
  family('container_memory_working_set_bytes', 'Current working set of the container in bytes', 'gauge', memC);
  family('container_start_time_seconds', 'Start time of the container since unix epoch in seconds', 'gauge', startC);
  family('node_cpu_usage_seconds_total', 'Cumulative cpu time consumed by the node in core-seconds', 'counter', [`node_cpu_usage_seconds_total ${secs(s.node.cpuNanos)} ${ts(s.node.time)}`]);
  family('node_memory_working_set_bytes', 'Current working set of the node in bytes', 'gauge', [`node_memory_working_set_bytes ${s.node.memory.workingSetBytes} ${ts(s.node.time)}`]);
  family('pod_cpu_usage_seconds_total', 'Cumulative cpu time consumed by the pod in core-seconds', 'counter', cpuP);
  family('pod_memory_working_set_bytes', 'Current working set of the pod in bytes', 'gauge', memP);
  out.push('# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise', '# TYPE resource_scrape_error gauge', 'resource_scrape_error 0');
  return out.join('\n') + '\n';
}

/** kubelet_running_pods / kubelet_running_containers (pkg/kubelet/metrics), appended to nodelet's /metrics. */
export function renderRunningMetrics(running: { pods: number; containers: number }): string {
  return [
    '# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox',
    '# TYPE kubelet_running_pods gauge',
    `kubelet_running_pods ${running.pods}`,
    '# HELP kubelet_running_containers [ALPHA] Number of containers currently running',
    '# TYPE kubelet_running_containers gauge',
    `kubelet_running_containers{container_state="running"} ${running.containers}`,
  ].join('\n') + '\n';
}
