import { describe, expect, it } from 'vitest';
import {
  aggregateMessage,
  computeAllocatable,
  computeCapacity,
  computeImages,
  computeNodeStatus,
  computeNodeStatusWithEvents,
  computePressure,
  defaultNodeStatusConfig,
  formatTime,
  initialNode,
  nodeLabels,
  nodeStatusHasChanged,
  parseEvictionThresholds,
  reconcileDefaultLabels,
  statusNeedsUpdate,
  updatePressure,
} from '../../../src/node/status.js';
import type { NodeCondition, NodeStatus } from '../../../src/node/types.js';
import { hostFixture } from './fakes.js';

const T0 = Date.parse('2026-12-03T07:40:00.000Z');
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const cond = (s: NodeStatus, type: string) => s.conditions!.find((c) => c.type === type)!;

describe('capacity and allocatable', () => {
  it('reports capacity like cAdvisor + kubelet, in canonical quantities', () => {
    const cap = computeCapacity(hostFixture({ memory: { totalBytes: 16318004 * 1024, availableBytes: 0, swapTotalBytes: 0 } }), 110);
    expect(cap).toEqual({
      cpu: '4',
      'ephemeral-storage': '100Gi',
      memory: '16318004Ki',
      pods: '110',
      'hugepages-1Gi': '0',
      'hugepages-2Mi': '0',
    });
  });

  it('allocatable = capacity - kube-reserved - system-reserved - hard eviction (100Mi, 10% nodefs)', () => {
    const host = hostFixture({ memory: { totalBytes: 16318004 * 1024, availableBytes: 0, swapTotalBytes: 0 }, nodefs: { capacityBytes: 103865303040, availableBytes: 0, inodes: 1, inodesFree: 1 } });
    const config = defaultNodeStatusConfig({ kubeReserved: { cpu: '100m', memory: '256Mi' }, systemReserved: { cpu: '150m', memory: '0.5Gi', 'ephemeral-storage': '1Gi' } });
    const cap = computeCapacity(host, config.maxPods);
    const alloc = computeAllocatable(cap, config);
    expect(alloc.cpu).toBe('3750m');
    // 16318004Ki - 256Mi - 512Mi - 100Mi = (16318004 - 262144 - 524288 - 102400) Ki
    expect(alloc.memory).toBe(`${16318004 - 262144 - 524288 - 102400}Ki`);
    expect(alloc.pods).toBe('110');
    // nodefs.available<10%: int64(cap * float32(0.1)), as kubelet computes it
    const evict = Math.trunc(103865303040 * Math.fround(0.1));
    expect(alloc['ephemeral-storage']).toBe(String(103865303040 - GiB - evict));
    expect(evict).not.toBe(103865303040 / 10); // the float32 percentage is visible
  });

  it('defaults: memory minus 100Mi, storage minus 10%, never negative, huge pages out of memory', () => {
    const host = hostFixture({ memory: { totalBytes: 50 * MiB, availableBytes: 0, swapTotalBytes: 0 }, hugepages: { '2Mi': 0 } });
    const config = defaultNodeStatusConfig();
    const alloc = computeAllocatable(computeCapacity(host, 110), config);
    expect(alloc.memory).toBe('0');
    const host2 = hostFixture({ memory: { totalBytes: 4 * GiB, availableBytes: 0, swapTotalBytes: 0 }, hugepages: { '2Mi': 512 * MiB } });
    const alloc2 = computeAllocatable(computeCapacity(host2, 110), config);
    expect(alloc2.memory).toBe(`${4 * 1024 - 100 - 512}Mi`);
    expect(alloc2['hugepages-2Mi']).toBe('512Mi');
  });

  it('--max-pods and eviction overrides', () => {
    const config = defaultNodeStatusConfig({ maxPods: 20, evictionHard: { 'memory.available': '1Gi' } });
    const alloc = computeAllocatable(computeCapacity(hostFixture(), config.maxPods), config);
    expect(alloc.pods).toBe('20');
    expect(alloc.memory).toBe('7Gi');
    expect(alloc['ephemeral-storage']).toBe('100Gi'); // no nodefs threshold
  });
});

describe('eviction thresholds and pressure', () => {
  it('parses kubelet threshold statements', () => {
    expect(parseEvictionThresholds({ 'memory.available': '100Mi', 'nodefs.available': '10%', 'pid.available': '0%' })).toEqual([
      { signal: 'memory.available', quantity: 100 * MiB },
      { signal: 'nodefs.available', percentage: Math.fround(0.1) },
    ]);
    expect(() => parseEvictionThresholds({ 'cpu.available': '1' })).toThrow(/unknown signal/);
    expect(() => parseEvictionThresholds({ 'memory.available': '110%' })).toThrow(/percentage/);
    expect(() => parseEvictionThresholds({ 'memory.available': 'lots' })).toThrow(/quantity/);
  });

  const defaults = parseEvictionThresholds(defaultNodeStatusConfig().evictionHard);

  it('memory.available < 100Mi → MemoryPressure', () => {
    expect(computePressure(hostFixture({ memory: { totalBytes: 8 * GiB, availableBytes: 100 * MiB, swapTotalBytes: 0 } }), defaults).memory).toBe(false);
    expect(computePressure(hostFixture({ memory: { totalBytes: 8 * GiB, availableBytes: 100 * MiB - 1, swapTotalBytes: 0 } }), defaults)).toEqual({ memory: true, disk: false, pid: false });
  });

  it('nodefs < 10%, nodefs inodes < 5%, imagefs < 15% → DiskPressure', () => {
    const fs = (avail: number, inodesFree = 1000) => ({ capacityBytes: 1000 * GiB, availableBytes: avail * GiB, inodes: 10000, inodesFree });
    expect(computePressure(hostFixture({ nodefs: fs(99), imagefs: fs(500) }), defaults).disk).toBe(true);
    expect(computePressure(hostFixture({ nodefs: fs(500, 499), imagefs: fs(500) }), defaults).disk).toBe(true);
    expect(computePressure(hostFixture({ nodefs: fs(500), imagefs: fs(149) }), defaults).disk).toBe(true);
    expect(computePressure(hostFixture({ nodefs: fs(500), imagefs: fs(151) }), defaults).disk).toBe(false);
    // a filesystem without inode accounting never has inode pressure
    expect(computePressure(hostFixture({ nodefs: { ...fs(500), inodes: 0, inodesFree: 0 }, imagefs: fs(500) }), defaults).disk).toBe(false);
  });

  it('PIDPressure only with a pid.available threshold (opt-in, as in kubelet)', () => {
    const host = hostFixture({ pids: { max: 1000, running: 990 } });
    expect(computePressure(host, defaults).pid).toBe(false);
    expect(computePressure(host, parseEvictionThresholds({ 'pid.available': '5%' })).pid).toBe(true);
    expect(computePressure(hostFixture({ pids: { max: 1000, running: 900 } }), parseEvictionThresholds({ 'pid.available': '5%' })).pid).toBe(false);
  });

  it('keeps a pressure condition for the transition period after the signal clears', () => {
    let r = updatePressure({}, { memory: true, disk: false, pid: false }, T0);
    expect(r.pressure.memory).toBe(true);
    r = updatePressure(r.state, { memory: false, disk: false, pid: false }, T0 + 4 * 60_000);
    expect(r.pressure.memory).toBe(true);
    r = updatePressure(r.state, { memory: false, disk: false, pid: false }, T0 + 5 * 60_000);
    expect(r.pressure.memory).toBe(false);
    expect(r.state).toEqual({});
  });
});

describe('computeNodeStatus', () => {
  const host = hostFixture();

  it('produces the fields kubelet reports', () => {
    const s = computeNodeStatus({ host, now: T0 + 999 });
    expect(s.addresses).toEqual([
      { type: 'InternalIP', address: '10.1.2.3' },
      { type: 'Hostname', address: 'n1' },
    ]);
    expect(s.daemonEndpoints).toEqual({ kubeletEndpoint: { Port: 10250 } });
    expect(s.nodeInfo).toEqual({
      machineID: host.machineID,
      systemUUID: host.systemUUID,
      bootID: host.bootID,
      kernelVersion: '6.1.0-test',
      osImage: 'Debian GNU/Linux 12 (bookworm)',
      containerRuntimeVersion: 'nodelet://0.1.0',
      kubeletVersion: 'v1.36.3',
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: 'amd64',
    });
    expect(s.capacity).toMatchObject({ cpu: '4', memory: '8Gi', pods: '110', 'ephemeral-storage': '100Gi' });
    expect(s.allocatable).toMatchObject({ cpu: '4', memory: `${8 * 1024 - 100}Mi`, pods: '110' });
    expect(s.conditions!.map((c) => c.type)).toEqual(['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready']);
    expect(cond(s, 'Ready')).toEqual({
      type: 'Ready',
      status: 'True',
      reason: 'KubeletReady',
      message: 'kubelet is posting ready status',
      lastHeartbeatTime: '2026-12-03T07:40:00Z',
      lastTransitionTime: '2026-12-03T07:40:00Z',
    });
    expect(cond(s, 'MemoryPressure')).toMatchObject({ status: 'False', reason: 'KubeletHasSufficientMemory', message: 'kubelet has sufficient memory available' });
    expect(cond(s, 'DiskPressure')).toMatchObject({ status: 'False', reason: 'KubeletHasNoDiskPressure', message: 'kubelet has no disk pressure' });
    expect(cond(s, 'PIDPressure')).toMatchObject({ status: 'False', reason: 'KubeletHasSufficientPID', message: 'kubelet has sufficient PID available' });
    expect(s).not.toHaveProperty('images');
    expect(s).not.toHaveProperty('declaredFeatures');
  });

  it('pressure conditions follow the real signals', () => {
    const low = hostFixture({ memory: { totalBytes: 8 * GiB, availableBytes: 10 * MiB, swapTotalBytes: 0 } });
    const s = computeNodeStatus({ host: low, now: T0 });
    expect(cond(s, 'MemoryPressure')).toMatchObject({ status: 'True', reason: 'KubeletHasInsufficientMemory', message: 'kubelet has insufficient memory available' });
    const d = computeNodeStatus({ host, now: T0, pressure: { memory: false, disk: true, pid: true } });
    expect(cond(d, 'DiskPressure')).toMatchObject({ status: 'True', reason: 'KubeletHasDiskPressure', message: 'kubelet has disk pressure' });
    expect(cond(d, 'PIDPressure')).toMatchObject({ status: 'True', reason: 'KubeletHasInsufficientPID', message: 'kubelet has insufficient PID available' });
  });

  it('Ready=False with kubelet reason and aggregated message when runtime or network is not ready', () => {
    const one = computeNodeStatus({ host, now: T0, runtimeErrors: ['container runtime is down'] });
    expect(cond(one, 'Ready')).toMatchObject({ status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down' });
    const two = computeNodeStatus({ host, now: T0, runtimeErrors: ['container runtime is down'], networkErrors: ['container runtime network not ready: cni config uninitialized'] });
    expect(cond(two, 'Ready').message).toBe('[container runtime is down, container runtime network not ready: cni config uninitialized]');
    expect(aggregateMessage(['a', 'a'])).toBe('a');
  });

  it('transition times change only when the status changes; heartbeats always', () => {
    const first = computeNodeStatus({ host, now: T0 });
    const second = computeNodeStatus({ host, now: T0 + 10_000, previous: first });
    for (const c of second.conditions!) {
      expect(c.lastHeartbeatTime).toBe('2026-12-03T07:40:10Z');
      expect(c.lastTransitionTime).toBe('2026-12-03T07:40:00Z');
    }
    const notReady = computeNodeStatus({ host, now: T0 + 20_000, previous: second, runtimeErrors: ['container runtime is down'] });
    expect(cond(notReady, 'Ready').lastTransitionTime).toBe('2026-12-03T07:40:20Z');
    expect(cond(notReady, 'MemoryPressure').lastTransitionTime).toBe('2026-12-03T07:40:00Z');
    const stillNotReady = computeNodeStatus({ host, now: T0 + 30_000, previous: notReady, runtimeErrors: ['PLEG is not healthy'] });
    expect(cond(stillNotReady, 'Ready')).toMatchObject({ message: 'PLEG is not healthy', lastTransitionTime: '2026-12-03T07:40:20Z' });
    const pressured = computeNodeStatus({ host, now: T0 + 40_000, previous: stillNotReady, pressure: { memory: true, disk: false, pid: false } });
    expect(cond(pressured, 'MemoryPressure')).toMatchObject({ status: 'True', lastTransitionTime: '2026-12-03T07:40:40Z' });
  });

  it('reports condition changes as node events', () => {
    const first = computeNodeStatusWithEvents({ host, now: T0 });
    expect(first.events.map((e) => e.reason)).toEqual(['NodeHasSufficientMemory', 'NodeHasNoDiskPressure', 'NodeHasSufficientPID']);
    const down = computeNodeStatusWithEvents({ host, now: T0 + 1, previous: first.status, runtimeErrors: ['x'] });
    expect(down.events.map((e) => e.reason)).toEqual(['NodeNotReady']);
    const same = computeNodeStatusWithEvents({ host, now: T0 + 2, previous: down.status, runtimeErrors: ['x'] });
    expect(same.events).toEqual([]);
  });

  it('keeps foreign conditions and fields, and keeps Ready where it is', () => {
    const previous: NodeStatus = {
      conditions: [
        { type: 'NetworkUnavailable', status: 'False', reason: 'RouteCreated', message: 'route ok', lastHeartbeatTime: 'x', lastTransitionTime: 'y' },
        { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'kubelet is posting ready status', lastHeartbeatTime: 'a', lastTransitionTime: '2026-01-01T00:00:00Z' },
      ],
      volumesInUse: ['v1'],
      capacity: { 'example.com/dongle': '2' },
      allocatable: { 'example.com/dongle': '2' },
    };
    const s = computeNodeStatus({ host, now: T0, previous });
    expect(s.conditions!.map((c) => c.type)).toEqual(['NetworkUnavailable', 'Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure']);
    expect(cond(s, 'NetworkUnavailable')).toEqual(previous.conditions![0]);
    expect(cond(s, 'Ready').lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    expect(s.volumesInUse).toEqual(['v1']);
    expect(s.capacity!['example.com/dongle']).toBe('2');
    expect(s.allocatable!['example.com/dongle']).toBe('2');
  });

  it('keeps the server text of a quantity with the same value', () => {
    const first = computeNodeStatus({ host, now: T0 });
    const previous = { ...first, capacity: { ...first.capacity!, memory: String(8 * GiB), cpu: '4000m' } };
    const s = computeNodeStatus({ host, now: T0, previous });
    expect(s.capacity!.memory).toBe(String(8 * GiB));
    expect(s.capacity!.cpu).toBe('4000m');
  });

  it('images: largest first, at most 50, at most 5 names each; undefined keeps the previous list', () => {
    const many = Array.from({ length: 60 }, (_, i) => ({ names: [`img${i}@sha256:${i}`, `img${i}:1`, 'a', 'b', 'c', 'd'], sizeBytes: i * 1000 }));
    const out = computeImages(many);
    expect(out).toHaveLength(50);
    expect(out[0]).toEqual({ names: ['img59@sha256:59', 'img59:1', 'a', 'b', 'c'], sizeBytes: 59000 });
    expect(out[49]!.sizeBytes).toBe(10000);
    expect(computeImages(many, -1)).toHaveLength(60);
    const s = computeNodeStatus({ host, now: T0, images: [{ names: ['small:1'], sizeBytes: 1 }, { names: ['big:1'], sizeBytes: 10 }] });
    expect(s.images).toEqual([
      { names: ['big:1'], sizeBytes: 10 },
      { names: ['small:1'], sizeBytes: 1 },
    ]);
    expect(computeNodeStatus({ host, now: T0, previous: s }).images).toEqual(s.images);
    expect(computeNodeStatus({ host, now: T0, previous: s, images: [] })).not.toHaveProperty('images');
  });
});

describe('statusNeedsUpdate (every 10 s: on change, or every 5 min)', () => {
  const host = hostFixture();
  const base = computeNodeStatus({ host, now: T0 });
  const later = computeNodeStatus({ host, now: T0 + 10_000, previous: base });

  it('always reports the first time', () => {
    expect(statusNeedsUpdate(base, later, undefined, T0)).toBe(true);
  });

  it('heartbeat-only changes wait for the report frequency', () => {
    expect(nodeStatusHasChanged(base, later)).toBe(false);
    expect(statusNeedsUpdate(base, later, T0, T0 + 10_000)).toBe(false);
    expect(statusNeedsUpdate(base, later, T0, T0 + 5 * 60_000 - 1)).toBe(false);
    expect(statusNeedsUpdate(base, later, T0, T0 + 5 * 60_000)).toBe(true);
  });

  it('any other change is sent at once', () => {
    const notReady = computeNodeStatus({ host, now: T0 + 10_000, previous: base, runtimeErrors: ['down'] });
    expect(statusNeedsUpdate(base, notReady, T0, T0 + 10_000)).toBe(true);
    const moreMem = computeNodeStatus({ host: hostFixture({ memory: { totalBytes: 9 * GiB, availableBytes: 6 * GiB, swapTotalBytes: 0 } }), now: T0 + 10_000, previous: base });
    expect(statusNeedsUpdate(base, moreMem, T0, T0 + 10_000)).toBe(true);
    const newIP = computeNodeStatus({ host: hostFixture({ nodeIP: '10.9.9.9' }), now: T0 + 10_000, previous: base });
    expect(statusNeedsUpdate(base, newIP, T0, T0 + 10_000)).toBe(true);
    const withImages = computeNodeStatus({ host, now: T0 + 10_000, previous: base, images: [{ names: ['a:1'], sizeBytes: 1 }] });
    expect(statusNeedsUpdate(base, withImages, T0, T0 + 10_000)).toBe(true);
  });

  it('compares conditions by type and quantities by value', () => {
    const reordered: NodeStatus = { ...later, conditions: [...later.conditions!].reverse() as NodeCondition[] };
    expect(nodeStatusHasChanged(base, reordered)).toBe(false);
    const sameValue: NodeStatus = { ...later, capacity: { ...later.capacity!, memory: String(8 * GiB) } };
    expect(nodeStatusHasChanged(base, sameValue)).toBe(false);
    expect(nodeStatusHasChanged(base, { ...later, images: [] })).toBe(false); // nil == empty
    expect(nodeStatusHasChanged(base, { ...later, conditions: later.conditions!.slice(1) })).toBe(true);
  });
});

describe('registration', () => {
  it('labels as kubelet sets them', () => {
    expect(nodeLabels({ hostname: 'n1', architecture: 'arm64' })).toEqual({
      'kubernetes.io/hostname': 'n1',
      'kubernetes.io/os': 'linux',
      'kubernetes.io/arch': 'arm64',
      'beta.kubernetes.io/os': 'linux',
      'beta.kubernetes.io/arch': 'arm64',
    });
    expect(nodeLabels({ hostname: 'n1', architecture: 'amd64', extra: { 'kubernetes.io/hostname': 'other', team: 'a' } })).toMatchObject({
      'kubernetes.io/hostname': 'other',
      team: 'a',
    });
  });

  it('reconciles only the default labels on an existing node', () => {
    const initial = nodeLabels({ hostname: 'n1', architecture: 'amd64' });
    const r = reconcileDefaultLabels(initial, { 'kubernetes.io/hostname': 'old', 'kubernetes.io/arch': 'amd64', custom: 'keep' });
    expect(r.changed).toBe(true);
    expect(r.labels).toEqual({ ...initial, custom: 'keep' });
    expect(reconcileDefaultLabels(initial, { ...initial, custom: 'x' }).changed).toBe(false);
    // an empty default value removes the label
    expect(reconcileDefaultLabels({ 'kubernetes.io/hostname': '' }, { 'kubernetes.io/hostname': 'x' }).labels).toEqual({});
  });

  it('initialNode carries labels, the attach/detach annotation, taints and status', () => {
    const status = computeNodeStatus({ host: hostFixture(), now: T0 });
    const n = initialNode({ name: 'n1', labels: { a: 'b' }, status, unschedulable: true, taints: [{ key: 'k', value: 'v', effect: 'NoExecute' }] });
    expect(n).toMatchObject({
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n1', labels: { a: 'b' }, annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' } },
      spec: { unschedulable: true, taints: [{ key: 'k', value: 'v', effect: 'NoExecute' }, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }] },
      status,
    });
    expect(initialNode({ name: 'n1', labels: {}, status }).spec).toEqual({});
  });

  it('formats metav1.Time at whole seconds', () => {
    expect(formatTime(Date.parse('2026-12-03T07:40:05.999Z'))).toBe('2026-12-03T07:40:05Z');
  });
});
