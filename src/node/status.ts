// Pure decisions behind the Node object, after kubelet's node status setters
// (pkg/kubelet/nodestatus/setters.go), its registration (kubelet_node_status.go)
// and the eviction manager's node conditions (pkg/kubelet/eviction):
//
//   computeNodeStatus(input)      → v1 NodeStatus, starting from the status on
//                                   the server so foreign fields and transition
//                                   times survive
//   statusNeedsUpdate(...)        → send now? (any change but heartbeats, or the
//                                   5-minute report frequency)
//   nodeLabels / initialNode / reconcileDefaultLabels → registration
//   parseEvictionThresholds / computePressure / updatePressure → conditions

import { invalidArgument } from '../errors.js';
import { LABEL_OS } from '../pod/admission.js';
import { parseQuantity, tryParseQuantity } from '../pod/quantity.js';
import type { HostInfo } from './host-info.js';
import {
  formatIntegerQuantity,
  formatMilliQuantity,
  nanoToMilli,
  nanoToValue,
  quantitiesEqual,
  toNano,
  type QuantityFormat,
} from './quantity-format.js';
import type { NodeCondition, NodeImage, NodeObject, NodeStatus, NodeSystemInfo, Taint, ContainerImage } from './types.js';
import { NODELET_VERSION } from '../version.js';
import { KUBELET_VERSION, RUNTIME_NAME } from './version.js';

// ---------------------------------------------------------------- configuration

/** kubelet's Linux defaults (pkg/kubelet/eviction/defaults_linux.go). No pid.available: PIDPressure is opt-in. */
export const DEFAULT_EVICTION_HARD: Readonly<Record<string, string>> = Object.freeze({
  'memory.available': '100Mi',
  'nodefs.available': '10%',
  'nodefs.inodesFree': '5%',
  'imagefs.available': '15%',
  'imagefs.inodesFree': '5%',
});

export const DEFAULT_MAX_PODS = 110;
export const DEFAULT_KUBELET_PORT = 10250;
/** nodeStatusMaxImages */
export const DEFAULT_MAX_IMAGES = 50;
/** MaxNamesPerImageInNodeStatus */
export const MAX_NAMES_PER_IMAGE = 5;
/** nodeStatusUpdateFrequency */
export const NODE_STATUS_UPDATE_FREQUENCY_MS = 10_000;
/** nodeStatusReportFrequency */
export const NODE_STATUS_REPORT_FREQUENCY_MS = 5 * 60_000;
/** evictionPressureTransitionPeriod */
export const PRESSURE_TRANSITION_PERIOD_MS = 5 * 60_000;

export const LABEL_HOSTNAME = 'kubernetes.io/hostname';
export const LABEL_ARCH = 'kubernetes.io/arch';
export const LABEL_BETA_OS = 'beta.kubernetes.io/os';
export const LABEL_BETA_ARCH = 'beta.kubernetes.io/arch';
export const ANNOTATION_CONTROLLER_MANAGED_ATTACH = 'volumes.kubernetes.io/controller-managed-attach-detach';

export interface NodeStatusConfig {
  /** --max-pods */
  maxPods: number;
  /** --kube-reserved, e.g. { cpu: '100m', memory: '256Mi' } */
  kubeReserved: Record<string, string>;
  /** --system-reserved */
  systemReserved: Record<string, string>;
  /** --eviction-hard: signal → quantity or percentage */
  evictionHard: Record<string, string>;
  /** daemonEndpoints.kubeletEndpoint.Port */
  kubeletPort: number;
  /** status.declaredFeatures (NodeDeclaredFeatures, beta in 1.36), e.g. ExtendWebSocketsToKubelet; empty: the field is left out */
  declaredFeatures: string[];
  /** nodeStatusMaxImages; -1 reports every image */
  maxImages: number;
  /** containerRuntimeVersion = `${runtimeName}://${runtimeVersion}` */
  runtimeName: string;
  runtimeVersion: string;
  kubeletVersion: string;
}

export function defaultNodeStatusConfig(overrides: Partial<NodeStatusConfig> = {}): NodeStatusConfig {
  return {
    maxPods: DEFAULT_MAX_PODS,
    kubeReserved: {},
    systemReserved: {},
    evictionHard: { ...DEFAULT_EVICTION_HARD },
    kubeletPort: DEFAULT_KUBELET_PORT,
    declaredFeatures: [],
    maxImages: DEFAULT_MAX_IMAGES,
    runtimeName: RUNTIME_NAME,
    runtimeVersion: NODELET_VERSION,
    kubeletVersion: KUBELET_VERSION,
    ...overrides,
  };
}

// ---------------------------------------------------------------- eviction signals

export type EvictionSignal =
  | 'memory.available'
  | 'nodefs.available'
  | 'nodefs.inodesFree'
  | 'imagefs.available'
  | 'imagefs.inodesFree'
  | 'pid.available';

const SIGNALS: readonly EvictionSignal[] = [
  'memory.available',
  'nodefs.available',
  'nodefs.inodesFree',
  'imagefs.available',
  'imagefs.inodesFree',
  'pid.available',
];

export type PressureKind = 'memory' | 'disk' | 'pid';

const SIGNAL_PRESSURE: Record<EvictionSignal, PressureKind> = {
  'memory.available': 'memory',
  'nodefs.available': 'disk',
  'nodefs.inodesFree': 'disk',
  'imagefs.available': 'disk',
  'imagefs.inodesFree': 'disk',
  'pid.available': 'pid',
};

export interface EvictionThreshold {
  signal: EvictionSignal;
  /** an absolute amount (bytes, inodes, pids) … */
  quantity?: number;
  /** … or a fraction of capacity, as kubelet keeps it (a float32) */
  percentage?: number;
}

/** kubelet's parseThresholdStatement for `<signal><` hard thresholds ("10%", "100Mi"). */
export function parseEvictionThresholds(map: Record<string, string>): EvictionThreshold[] {
  const out: EvictionThreshold[] = [];
  for (const [signal, raw] of Object.entries(map)) {
    if (!(SIGNALS as readonly string[]).includes(signal)) {
      throw invalidArgument('ERR_EVICTION_SIGNAL', `eviction threshold: unknown signal ${JSON.stringify(signal)} (one of ${SIGNALS.join(', ')})`, {
        details: { signal },
      });
    }
    const v = String(raw).trim();
    if (v.endsWith('%')) {
      const pct = Number(v.slice(0, -1));
      if (!Number.isFinite(pct) || pct < 0 || pct > 100) {
        throw invalidArgument('ERR_EVICTION_THRESHOLD', `eviction threshold ${signal}: ${JSON.stringify(v)} must be a percentage in 0%..100%`, {
          details: { signal, value: v },
        });
      }
      if (pct === 0) continue; // "0%" disables the threshold, as in kubelet
      out.push({ signal: signal as EvictionSignal, percentage: Math.fround(Math.fround(pct) / 100) });
    } else {
      const q = tryParseQuantity(v);
      if (!q || q.negative) {
        throw invalidArgument('ERR_EVICTION_THRESHOLD', `eviction threshold ${signal}: ${JSON.stringify(v)} is not a quantity or a percentage`, {
          details: { signal, value: v },
        });
      }
      const n = Number(nanoToValue(toNano(q)));
      if (n === 0) continue;
      out.push({ signal: signal as EvictionSignal, quantity: n });
    }
  }
  return out;
}

export interface SignalObservation {
  available: number;
  capacity: number;
}

/** The eviction manager's observations, from host signals. */
export function observeSignals(host: HostInfo): Record<EvictionSignal, SignalObservation> {
  return {
    'memory.available': { available: host.memory.availableBytes, capacity: host.memory.totalBytes },
    'nodefs.available': { available: host.nodefs.availableBytes, capacity: host.nodefs.capacityBytes },
    'nodefs.inodesFree': { available: host.nodefs.inodesFree, capacity: host.nodefs.inodes },
    'imagefs.available': { available: host.imagefs.availableBytes, capacity: host.imagefs.capacityBytes },
    'imagefs.inodesFree': { available: host.imagefs.inodesFree, capacity: host.imagefs.inodes },
    'pid.available': { available: Math.max(0, host.pids.max - host.pids.running), capacity: host.pids.max },
  };
}

/** GetThresholdQuantity: the absolute amount of a threshold against a capacity. */
export function thresholdAmount(t: EvictionThreshold, capacity: number): number {
  if (t.quantity !== undefined) return t.quantity;
  return Math.trunc(capacity * (t.percentage ?? 0));
}

/** The thresholds whose signal is below its threshold (OpLessThan). */
export function thresholdsMet(host: HostInfo, thresholds: EvictionThreshold[]): EvictionThreshold[] {
  const obs = observeSignals(host);
  return thresholds.filter((t) => {
    const o = obs[t.signal];
    // filesystems without inode accounting (capacity 0) never report pressure
    if (o.capacity === 0 && t.percentage !== undefined) return false;
    return thresholdAmount(t, o.capacity) > o.available;
  });
}

export interface Pressure {
  memory: boolean;
  disk: boolean;
  pid: boolean;
}

export function computePressure(host: HostInfo, thresholds: EvictionThreshold[]): Pressure {
  const p: Pressure = { memory: false, disk: false, pid: false };
  for (const t of thresholdsMet(host, thresholds)) p[SIGNAL_PRESSURE[t.signal]] = true;
  return p;
}

/** When each pressure was last observed (ms since epoch). */
export type PressureState = Partial<Record<PressureKind, number>>;

/**
 * The eviction manager's transition period: a pressure condition stays on
 * until `periodMs` after it was last observed, so it does not flap.
 */
export function updatePressure(
  state: PressureState,
  observed: Pressure,
  now: number,
  periodMs: number = PRESSURE_TRANSITION_PERIOD_MS,
): { state: PressureState; pressure: Pressure } {
  const next: PressureState = { ...state };
  const pressure: Pressure = { memory: false, disk: false, pid: false };
  for (const k of ['memory', 'disk', 'pid'] as const) {
    if (observed[k]) next[k] = now;
    const last = next[k];
    pressure[k] = last !== undefined && now - last < periodMs;
    if (!pressure[k]) delete next[k];
  }
  return { state: next, pressure };
}

// ---------------------------------------------------------------- capacity and allocatable

function resourceFormat(name: string): QuantityFormat {
  return name === 'memory' || name === 'ephemeral-storage' || name.startsWith('hugepages-') ? 'BinarySI' : 'DecimalSI';
}

function formatResource(name: string, nano: bigint): string {
  if (name === 'cpu') return formatMilliQuantity(nanoToMilli(nano));
  return formatIntegerQuantity(nanoToValue(nano), resourceFormat(name));
}

const NANO = 1_000_000_000n;

/** Capacity from host signals (cadvisor.CapacityFromMachineInfo + pods + ephemeral-storage + hugepages). */
export function computeCapacity(host: HostInfo, maxPods: number): Record<string, string> {
  const cap: Record<string, string> = {
    cpu: formatMilliQuantity(BigInt(host.cpuCount) * 1000n),
    'ephemeral-storage': formatIntegerQuantity(BigInt(Math.trunc(host.nodefs.capacityBytes)), 'BinarySI'),
    memory: formatIntegerQuantity(BigInt(Math.trunc(host.memory.totalBytes)), 'BinarySI'),
    pods: formatIntegerQuantity(BigInt(maxPods), 'DecimalSI'),
  };
  for (const [size, bytes] of Object.entries(host.hugepages).sort()) {
    cap[`hugepages-${size}`] = formatIntegerQuantity(BigInt(Math.trunc(bytes)), 'BinarySI');
  }
  return cap;
}

function parseReserved(map: Record<string, string>, what: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const [k, v] of Object.entries(map)) out.set(k, toNano(parseQuantity(v, `${what}.${k}`)));
  return out;
}

/**
 * GetNodeAllocatableReservation: kube-reserved + system-reserved + the hard
 * eviction thresholds on memory.available and nodefs.available.
 */
export function allocatableReservation(capacity: Record<string, string>, config: NodeStatusConfig): Map<string, bigint> {
  const res = new Map<string, bigint>();
  const add = (k: string, n: bigint) => res.set(k, (res.get(k) ?? 0n) + n);
  for (const [k, n] of parseReserved(config.kubeReserved, 'kubeReserved')) add(k, n);
  for (const [k, n] of parseReserved(config.systemReserved, 'systemReserved')) add(k, n);
  for (const t of parseEvictionThresholds(config.evictionHard)) {
    const resource = t.signal === 'memory.available' ? 'memory' : t.signal === 'nodefs.available' ? 'ephemeral-storage' : undefined;
    if (!resource) continue;
    const capText = capacity[resource];
    const capValue = capText === undefined ? 0 : Number(nanoToValue(toNano(capText)));
    add(resource, BigInt(thresholdAmount(t, capValue)) * NANO);
  }
  return res;
}

/** allocatable = capacity − reservation (never negative); memory also loses the huge pages. */
export function computeAllocatable(capacity: Record<string, string>, config: NodeStatusConfig): Record<string, string> {
  const reservation = allocatableReservation(capacity, config);
  const nano = new Map<string, bigint>();
  for (const [k, v] of Object.entries(capacity)) {
    let n = toNano(v) - (reservation.get(k) ?? 0n);
    if (n < 0n) n = 0n;
    nano.set(k, n);
  }
  for (const [k, v] of Object.entries(capacity)) {
    if (!k.startsWith('hugepages-') || !nano.has('memory')) continue;
    let m = nano.get('memory')! - toNano(v);
    if (m < 0n) m = 0n;
    nano.set('memory', m);
  }
  const out: Record<string, string> = {};
  for (const [k, n] of nano) out[k] = formatResource(k, n);
  return out;
}

// ---------------------------------------------------------------- conditions

/** metav1.Time on the wire: RFC 3339, whole seconds, UTC. */
export function formatTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

interface PressureText {
  type: string;
  trueReason: string;
  trueMessage: string;
  falseReason: string;
  falseMessage: string;
}

const PRESSURE_CONDITIONS: Record<PressureKind, PressureText> = {
  memory: {
    type: 'MemoryPressure',
    trueReason: 'KubeletHasInsufficientMemory',
    trueMessage: 'kubelet has insufficient memory available',
    falseReason: 'KubeletHasSufficientMemory',
    falseMessage: 'kubelet has sufficient memory available',
  },
  disk: {
    type: 'DiskPressure',
    trueReason: 'KubeletHasDiskPressure',
    trueMessage: 'kubelet has disk pressure',
    falseReason: 'KubeletHasNoDiskPressure',
    falseMessage: 'kubelet has no disk pressure',
  },
  pid: {
    type: 'PIDPressure',
    trueReason: 'KubeletHasInsufficientPID',
    trueMessage: 'kubelet has insufficient PID available',
    falseReason: 'KubeletHasSufficientPID',
    falseMessage: 'kubelet has sufficient PID available',
  },
};

/** errors.NewAggregate(errs).Error(): one message as is, several as "[a, b]" (duplicates dropped). */
export function aggregateMessage(errs: string[]): string {
  const seen: string[] = [];
  for (const e of errs) if (!seen.includes(e)) seen.push(e);
  if (seen.length <= 1) return seen[0] ?? '';
  return `[${seen.join(', ')}]`;
}

/** A condition status change the caller may turn into a node event (NodeReady, NodeHasDiskPressure …). */
export interface NodeConditionEvent {
  type: 'Normal';
  reason: string;
}

const PRESSURE_EVENTS: Record<PressureKind, [string, string]> = {
  memory: ['NodeHasInsufficientMemory', 'NodeHasSufficientMemory'],
  disk: ['NodeHasDiskPressure', 'NodeHasNoDiskPressure'],
  pid: ['NodeHasInsufficientPID', 'NodeHasSufficientPID'],
};

/**
 * The condition setters in kubelet's order: MemoryPressure, DiskPressure,
 * PIDPressure, then Ready. Existing conditions are updated in place (foreign
 * ones kept); missing ones are appended, so a new node lists Ready last. The
 * transition time changes only when a condition's status changes.
 */
export function computeConditions(
  previous: NodeCondition[] | undefined,
  pressure: Pressure,
  readyErrors: string[],
  now: number,
): { conditions: NodeCondition[]; events: NodeConditionEvent[] } {
  const t = formatTime(now);
  const conditions: NodeCondition[] = (previous ?? []).map((c) => ({ ...c }));
  const events: NodeConditionEvent[] = [];

  for (const kind of ['memory', 'disk', 'pid'] as const) {
    const text = PRESSURE_CONDITIONS[kind];
    let c = conditions.find((x) => x.type === text.type);
    const isNew = !c;
    if (!c) c = { type: text.type, status: 'Unknown' };
    c.lastHeartbeatTime = t;
    if (pressure[kind]) {
      if (c.status !== 'True') {
        Object.assign(c, { status: 'True', reason: text.trueReason, message: text.trueMessage, lastTransitionTime: t });
        events.push({ type: 'Normal', reason: PRESSURE_EVENTS[kind][0] });
      }
    } else if (c.status !== 'False') {
      Object.assign(c, { status: 'False', reason: text.falseReason, message: text.falseMessage, lastTransitionTime: t });
      events.push({ type: 'Normal', reason: PRESSURE_EVENTS[kind][1] });
    }
    if (isNew) conditions.push(c);
  }

  const ready: NodeCondition =
    readyErrors.length === 0
      ? { type: 'Ready', status: 'True', lastHeartbeatTime: t, lastTransitionTime: t, reason: 'KubeletReady', message: 'kubelet is posting ready status' }
      : { type: 'Ready', status: 'False', lastHeartbeatTime: t, lastTransitionTime: t, reason: 'KubeletNotReady', message: aggregateMessage(readyErrors) };
  const i = conditions.findIndex((x) => x.type === 'Ready');
  if (i >= 0) {
    const old = conditions[i]!;
    if (old.status === ready.status) ready.lastTransitionTime = old.lastTransitionTime ?? t;
    else events.push({ type: 'Normal', reason: ready.status === 'True' ? 'NodeReady' : 'NodeNotReady' });
    conditions[i] = ready;
  } else {
    conditions.push(ready);
  }
  return { conditions, events };
}

// ---------------------------------------------------------------- images

/** kubelet's Images setter: largest first, at most `max` images (-1: all), 5 names each. */
export function computeImages(images: NodeImage[], max: number = DEFAULT_MAX_IMAGES): ContainerImage[] {
  const sorted = images
    .filter((i) => i.names.length > 0)
    .slice()
    .sort((a, b) => b.sizeBytes - a.sizeBytes || (a.names[0]! < b.names[0]! ? -1 : a.names[0]! > b.names[0]! ? 1 : 0));
  const kept = max > -1 ? sorted.slice(0, max) : sorted;
  return kept.map((i) => ({ names: i.names.slice(0, MAX_NAMES_PER_IMAGE), sizeBytes: i.sizeBytes }));
}

// ---------------------------------------------------------------- the status

export interface NodeStatusInput {
  host: HostInfo;
  /** ms since epoch */
  now: number;
  /** the status currently on the server: transition times, foreign fields and conditions survive */
  previous?: NodeStatus;
  config?: Partial<NodeStatusConfig>;
  /** non-empty: Ready=False (e.g. "container runtime is down") */
  runtimeErrors?: string[];
  /** non-empty: Ready=False (e.g. "container runtime network not ready: …") */
  networkErrors?: string[];
  /** default: computed from `host` against the hard eviction thresholds, with no transition period */
  pressure?: Pressure;
  /** undefined keeps what `previous` reports */
  images?: NodeImage[];
}

export interface NodeStatusResult {
  status: NodeStatus;
  events: NodeConditionEvent[];
}

const REQUIRED_CAPACITY = ['cpu', 'memory', 'pods', 'ephemeral-storage'];

/** Keep the previous text of a quantity when it means the same value (no churn from formatting). */
function keepEqual(prev: Record<string, string> | undefined, next: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(next)) out[k] = prev && prev[k] !== undefined && quantitiesEqual(prev[k], v) ? prev[k]! : v;
  return out;
}

export function computeNodeStatusWithEvents(input: NodeStatusInput): NodeStatusResult {
  const config = defaultNodeStatusConfig(input.config);
  const prev = input.previous ?? {};
  const host = input.host;

  // MachineInfo: capacity keeps resources others advertise (extended resources); allocatable follows capacity.
  const capacity = keepEqual(prev.capacity, { ...(prev.capacity ?? {}), ...computeCapacity(host, config.maxPods) });
  const allocatable = keepEqual(prev.allocatable, computeAllocatable(capacity, config));

  const nodeInfo: NodeSystemInfo = {
    ...(prev.nodeInfo ?? {}),
    machineID: host.machineID,
    systemUUID: host.systemUUID,
    bootID: host.bootID,
    kernelVersion: host.kernelVersion,
    osImage: host.osImage,
    containerRuntimeVersion: `${config.runtimeName}://${config.runtimeVersion}`,
    kubeletVersion: config.kubeletVersion,
    kubeProxyVersion: '',
    operatingSystem: host.operatingSystem,
    architecture: host.architecture,
  };

  const readyErrors = [...(input.runtimeErrors ?? []), ...(input.networkErrors ?? [])];
  const missing = REQUIRED_CAPACITY.filter((r) => capacity[r] === undefined);
  if (missing.length) readyErrors.push(`Missing node capacity for resources: ${missing.join(', ')}`);
  const pressure = input.pressure ?? computePressure(host, parseEvictionThresholds(config.evictionHard));
  const { conditions, events } = computeConditions(prev.conditions, pressure, readyErrors, input.now);

  const status: NodeStatus = {
    ...prev,
    capacity,
    allocatable,
    conditions,
    addresses: [
      { type: 'InternalIP', address: host.nodeIP },
      { type: 'Hostname', address: host.hostname },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: config.kubeletPort } },
    nodeInfo,
  };
  // kubelet sorts what it declares; the API server proxies WebSocket exec/attach/port-forward only to a node declaring ExtendWebSocketsToKubelet
  if (config.declaredFeatures.length) status.declaredFeatures = [...config.declaredFeatures].sort();
  else delete status.declaredFeatures;
  if (input.images !== undefined) {
    const images = computeImages(input.images, config.maxImages);
    if (images.length) status.images = images;
    else delete status.images;
  }
  return { status, events };
}

/** The NodeStatus kubelet's setters would produce (see computeNodeStatusWithEvents for the events). */
export function computeNodeStatus(input: NodeStatusInput): NodeStatus {
  return computeNodeStatusWithEvents(input).status;
}

// ---------------------------------------------------------------- change detection

function isEmpty(v: unknown): boolean {
  return v === undefined || v === null || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);
}

/** apiequality.Semantic.DeepEqual: nil and empty are equal, quantities compare by value. */
export function semanticEqual(a: unknown, b: unknown, quantityMaps = false): boolean {
  if (isEmpty(a) && isEmpty(b)) return true;
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => semanticEqual(x, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) {
    if (quantityMaps) {
      if (ao[k] === undefined || bo[k] === undefined) {
        if (ao[k] !== bo[k]) return false;
      } else if (!quantitiesEqual(ao[k], bo[k])) return false;
    } else if (!semanticEqual(ao[k], bo[k])) return false;
  }
  return true;
}

/** nodeConditionsHaveChanged: compare by type, ignoring lastHeartbeatTime. */
export function nodeConditionsHaveChanged(a: NodeCondition[] | undefined, b: NodeCondition[] | undefined): boolean {
  const x = a ?? [];
  const y = b ?? [];
  if (x.length !== y.length) return true;
  const strip = (c: NodeCondition) => {
    const { lastHeartbeatTime: _drop, ...rest } = c;
    return rest;
  };
  const byType = (l: NodeCondition[]) => l.map(strip).sort((p, q) => (p.type < q.type ? -1 : p.type > q.type ? 1 : 0));
  const sx = byType(x);
  const sy = byType(y);
  return sx.some((c, i) => !semanticEqual(c, sy[i]));
}

/** nodeStatusHasChanged: anything but heartbeat times. */
export function nodeStatusHasChanged(prev: NodeStatus | undefined, next: NodeStatus | undefined): boolean {
  if (!prev && !next) return false;
  if (!prev || !next) return true;
  if (nodeConditionsHaveChanged(prev.conditions, next.conditions)) return true;
  const keys = new Set([...Object.keys(prev), ...Object.keys(next)]);
  keys.delete('conditions');
  for (const k of keys) {
    const quantity = k === 'capacity' || k === 'allocatable';
    if (!semanticEqual(prev[k], next[k], quantity)) return true;
  }
  return false;
}

/**
 * kubelet's tryUpdateNodeStatus rule, evaluated every nodeStatusUpdateFrequency:
 * send when anything but heartbeats changed, and at least every
 * nodeStatusReportFrequency (always on the first report).
 */
export function statusNeedsUpdate(
  prev: NodeStatus | undefined,
  next: NodeStatus,
  lastReportedAt: number | undefined,
  now: number,
  reportFrequencyMs: number = NODE_STATUS_REPORT_FREQUENCY_MS,
): boolean {
  if (lastReportedAt === undefined) return true;
  if (now >= lastReportedAt + reportFrequencyMs) return true;
  return nodeStatusHasChanged(prev, next);
}

// ---------------------------------------------------------------- registration

export interface NodeLabelsInput {
  hostname: string;
  operatingSystem?: string;
  architecture: string;
  /** --node-labels: override the defaults, as kubelet does (with a warning there) */
  extra?: Record<string, string>;
}

/** The labels kubelet's initialNode sets. */
export function nodeLabels(input: NodeLabelsInput): Record<string, string> {
  const os = input.operatingSystem ?? 'linux';
  return {
    [LABEL_HOSTNAME]: input.hostname,
    [LABEL_OS]: os,
    [LABEL_ARCH]: input.architecture,
    [LABEL_BETA_OS]: os,
    [LABEL_BETA_ARCH]: input.architecture,
    ...(input.extra ?? {}),
  };
}

/** The labels updateDefaultLabels reconciles on an existing Node. */
export const DEFAULT_LABELS: readonly string[] = [
  LABEL_HOSTNAME,
  'topology.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
  'failure-domain.beta.kubernetes.io/region',
  'node.kubernetes.io/instance-type',
  'beta.kubernetes.io/instance-type',
  LABEL_OS,
  LABEL_ARCH,
  'node.kubernetes.io/windows-build',
  LABEL_BETA_OS,
  LABEL_BETA_ARCH,
];

/** updateDefaultLabels: set each default label the new node has; an empty value removes it. */
export function reconcileDefaultLabels(
  initial: Record<string, string>,
  existing: Record<string, string> | undefined,
): { labels: Record<string, string>; changed: boolean } {
  const labels = { ...(existing ?? {}) };
  let changed = false;
  for (const k of DEFAULT_LABELS) {
    if (!(k in initial)) continue;
    if (labels[k] !== initial[k]) {
      labels[k] = initial[k]!;
      changed = true;
    }
    if (labels[k] === '') delete labels[k];
  }
  return { labels, changed };
}

export interface InitialNodeInput {
  name: string;
  labels: Record<string, string>;
  status: NodeStatus;
  /** --register-schedulable=false */
  unschedulable?: boolean;
  /** --register-with-taints */
  taints?: Taint[];
}

/** kubelet's initialNode: the Node object POSTed at registration. */
export function initialNode(input: InitialNodeInput): NodeObject {
  const taints = [...(input.taints ?? [])];
  if (input.unschedulable && !taints.some((t) => t.key === 'node.kubernetes.io/unschedulable' && t.effect === 'NoSchedule')) {
    taints.push({ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' });
  }
  const spec: NodeObject['spec'] = {};
  if (input.unschedulable) spec.unschedulable = true;
  if (taints.length) spec.taints = taints;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: input.name,
      labels: { ...input.labels },
      annotations: { [ANNOTATION_CONTROLLER_MANAGED_ATTACH]: 'true' },
    },
    spec,
    status: input.status,
  };
}

/** reconcileCMADAnnotationWithExistingNode: the attach/detach annotation must match ours. */
export function reconcileAttachDetachAnnotation(
  existing: Record<string, string> | undefined,
): { annotations: Record<string, string>; changed: boolean } {
  const annotations = { ...(existing ?? {}) };
  if (annotations[ANNOTATION_CONTROLLER_MANAGED_ATTACH] === 'true') return { annotations, changed: false };
  annotations[ANNOTATION_CONTROLLER_MANAGED_ATTACH] = 'true';
  return { annotations, changed: true };
}
