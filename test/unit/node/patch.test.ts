import { describe, expect, it } from 'vitest';
import {
  createTwoWayMergePatch,
  isEmptyPatch,
  jsonEqual,
  NODE_SCHEMA,
  nodeStatusPatch,
  POD_SCHEMA,
  podStatusPatch,
  type PatchSchema,
} from '../../../src/node/patch.js';
import { computeNodeStatus } from '../../../src/node/status.js';
import { hostFixture } from './fakes.js';
import { applyStrategicPatch } from './smp-apply.js';

const T0 = Date.parse('2026-12-03T07:40:00.000Z');

/** In a typed API object a null member is the same as an absent one (a patch's null deletes). */
function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (typeof v !== 'object' || v === null) return v;
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, dropNulls(x)]));
}

function roundTrip(oldObj: unknown, newObj: unknown, schema: PatchSchema) {
  const patch = createTwoWayMergePatch(oldObj, newObj, schema);
  const applied = applyStrategicPatch(oldObj, patch, schema);
  expect(dropNulls(applied)).toEqual(dropNulls(JSON.parse(JSON.stringify(newObj))));
  return patch;
}

const ready = (status: string, hb = 'h1', tt = 't1') => ({ type: 'Ready', status, lastHeartbeatTime: hb, lastTransitionTime: tt, reason: 'R', message: 'm' });
const mem = (hb = 'h1') => ({ type: 'MemoryPressure', status: 'False', lastHeartbeatTime: hb, lastTransitionTime: 't0', reason: 'KubeletHasSufficientMemory', message: 'ok' });

describe('hand-checked patches', () => {
  it('no change → {}', () => {
    const o = { status: { conditions: [mem(), ready('True')], capacity: { cpu: '4' } } };
    const p = createTwoWayMergePatch(o, JSON.parse(JSON.stringify(o)), NODE_SCHEMA);
    expect(p).toEqual({});
    expect(isEmptyPatch(p)).toBe(true);
  });

  it('a heartbeat: only the changed field with the merge key, plus $setElementOrder', () => {
    const o = { status: { conditions: [mem(), ready('True')] } };
    const n = { status: { conditions: [mem('h2'), ready('True', 'h2')] } };
    expect(createTwoWayMergePatch(o, n, NODE_SCHEMA)).toEqual({
      status: {
        '$setElementOrder/conditions': [{ type: 'MemoryPressure' }, { type: 'Ready' }],
        conditions: [
          { type: 'MemoryPressure', lastHeartbeatTime: 'h2' },
          { type: 'Ready', lastHeartbeatTime: 'h2' },
        ],
      },
    });
  });

  it('a removed condition → $patch: delete after the changes', () => {
    const o = { status: { conditions: [{ type: 'Z', status: 'True' }, mem(), ready('True')] } };
    const n = { status: { conditions: [mem(), ready('False')] } };
    expect(roundTrip(o, n, NODE_SCHEMA)).toEqual({
      status: {
        '$setElementOrder/conditions': [{ type: 'MemoryPressure' }, { type: 'Ready' }],
        conditions: [{ type: 'Ready', status: 'False' }, { $patch: 'delete', type: 'Z' }],
      },
    });
  });

  it('a reorder alone → only $setElementOrder', () => {
    const o = { status: { conditions: [ready('True'), mem()] } };
    const n = { status: { conditions: [mem(), ready('True')] } };
    expect(roundTrip(o, n, NODE_SCHEMA)).toEqual({ status: { '$setElementOrder/conditions': [{ type: 'MemoryPressure' }, { type: 'Ready' }] } });
  });

  it('an added element is sent whole', () => {
    const o = { status: { conditions: [mem()] } };
    const n = { status: { conditions: [mem(), ready('True')] } };
    expect(roundTrip(o, n, NODE_SCHEMA)).toEqual({
      status: { '$setElementOrder/conditions': [{ type: 'MemoryPressure' }, { type: 'Ready' }], conditions: [ready('True')] },
    });
  });

  it('a new list (absent before) is sent whole without $setElementOrder; a removed list is null', () => {
    expect(roundTrip({ status: {} }, { status: { conditions: [mem()] } }, NODE_SCHEMA)).toEqual({ status: { conditions: [mem()] } });
    expect(roundTrip({ status: { conditions: [mem()] } }, { status: {} }, NODE_SCHEMA)).toEqual({ status: { conditions: null } });
  });

  it('deleted map keys → null; changed scalars → the new value', () => {
    const o = { status: { capacity: { cpu: '4', 'example.com/x': '1' }, phase: 'Running' } };
    const n = { status: { capacity: { cpu: '8' }, phase: 'Running' } };
    expect(roundTrip(o, n, NODE_SCHEMA)).toEqual({ status: { capacity: { cpu: '8', 'example.com/x': null } } });
  });

  it('atomic lists (images, containerStatuses) are replaced whole', () => {
    const o = { status: { images: [{ names: ['a'], sizeBytes: 1 }, { names: ['b'], sizeBytes: 2 }] } };
    const n = { status: { images: [{ names: ['a'], sizeBytes: 1 }, { names: ['c'], sizeBytes: 3 }] } };
    expect(roundTrip(o, n, NODE_SCHEMA)).toEqual({ status: { images: n.status.images } });
    const cs = (name: string, ready: boolean) => ({ name, ready, restartCount: 0, image: 'i', imageID: 'x', state: { running: { startedAt: 't' } } });
    const po = { status: { containerStatuses: [cs('a', false), cs('b', false)] } };
    const pn = { status: { containerStatuses: [cs('a', true), cs('b', false)] } };
    expect(roundTrip(po, pn, POD_SCHEMA)).toEqual({ status: { containerStatuses: pn.status.containerStatuses } });
  });

  it('podIPs / hostIPs merge by ip', () => {
    const o = { status: { podIPs: [{ ip: '10.0.0.1' }], hostIPs: [{ ip: '1.1.1.1' }] } };
    const n = { status: { podIPs: [{ ip: '10.0.0.2' }], hostIPs: [{ ip: '1.1.1.1' }, { ip: 'fd00::1' }] } };
    expect(roundTrip(o, n, POD_SCHEMA)).toEqual({
      status: {
        '$setElementOrder/podIPs': [{ ip: '10.0.0.2' }],
        podIPs: [{ ip: '10.0.0.2' }, { $patch: 'delete', ip: '10.0.0.1' }],
        '$setElementOrder/hostIPs': [{ ip: '1.1.1.1' }, { ip: 'fd00::1' }],
        hostIPs: [{ ip: 'fd00::1' }],
      },
    });
  });

  it('a type change replaces the value', () => {
    expect(roundTrip({ a: { b: 1 } }, { a: 'x' }, {})).toEqual({ a: 'x' });
    expect(roundTrip({ a: null }, { a: [1] }, {})).toEqual({ a: [1] });
  });

  it('merged scalar lists use $deleteFromPrimitiveList and $setElementOrder', () => {
    const o = { metadata: { finalizers: ['a', 'b'] } };
    const n = { metadata: { finalizers: ['b', 'c'] } };
    expect(roundTrip(o, n, NODE_SCHEMA)).toEqual({
      metadata: { finalizers: ['c'], '$deleteFromPrimitiveList/finalizers': ['a'], '$setElementOrder/finalizers': ['b', 'c'] },
    });
  });
});

describe('nodeStatusPatch (kubelet PatchNodeStatus)', () => {
  const host = hostFixture();
  const node = (status: unknown, extra: Record<string, unknown> = {}) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'n1', uid: 'u1', resourceVersion: '5', labels: { a: 'b' } },
    spec: { podCIDR: '10.0.0.0/24' },
    status,
    ...extra,
  });

  it('a heartbeat round: conditions only', () => {
    const s1 = computeNodeStatus({ host, now: T0 });
    const s2 = computeNodeStatus({ host, now: T0 + 10_000, previous: s1 });
    const p = nodeStatusPatch(node(s1), node(s2));
    expect(Object.keys(p)).toEqual(['status']);
    expect(Object.keys(p.status as object).sort()).toEqual(['$setElementOrder/conditions', 'conditions']);
    expect((p.status as { conditions: unknown[] }).conditions).toEqual(
      ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'].map((type) => ({ type, lastHeartbeatTime: '2026-12-03T07:40:10Z' })),
    );
    expect(applyStrategicPatch(node(s1), p, NODE_SCHEMA)).toEqual(node(s2));
  });

  it('changed addresses are replaced whole with a $patch: replace element', () => {
    const s1 = computeNodeStatus({ host, now: T0 });
    const s2 = computeNodeStatus({ host: hostFixture({ nodeIP: '10.9.9.9' }), now: T0, previous: s1 });
    const p = nodeStatusPatch(node(s1), node(s2));
    expect(p).toEqual({
      status: {
        addresses: [
          { type: 'InternalIP', address: '10.9.9.9' },
          { type: 'Hostname', address: 'n1' },
          { $patch: 'replace' },
        ],
      },
    });
    expect(applyStrategicPatch(node(s1), p, NODE_SCHEMA)).toEqual(node(s2));
  });

  it('first addresses are an ordinary merge; spec changes are never sent', () => {
    const s = computeNodeStatus({ host, now: T0 });
    const p = nodeStatusPatch(node({}), { ...node(s), spec: { podCIDR: 'changed' } });
    expect(p).not.toHaveProperty('spec');
    expect((p.status as { addresses: unknown }).addresses).toEqual(s.addresses);
  });

  it('label reconciliation rides in metadata', () => {
    const n1 = node({});
    const n2 = { ...n1, metadata: { ...n1.metadata, labels: { a: 'b', 'kubernetes.io/hostname': 'n1' } } };
    expect(nodeStatusPatch(n1, n2)).toEqual({ metadata: { labels: { 'kubernetes.io/hostname': 'n1' } } });
  });
});

describe('podStatusPatch (kubelet PatchPodStatus)', () => {
  const base = {
    phase: 'Pending',
    conditions: [
      { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: 't1' },
      { type: 'Ready', status: 'False', lastProbeTime: null, lastTransitionTime: 't1', reason: 'ContainersNotReady' },
    ],
    hostIP: '10.1.2.3',
    hostIPs: [{ ip: '10.1.2.3' }],
    startTime: 't0',
  };

  it('carries the uid as a precondition and only what changed', () => {
    const next = {
      ...base,
      phase: 'Running',
      conditions: [base.conditions[0], { type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: 't2' }],
      podIP: '10.244.0.5',
      podIPs: [{ ip: '10.244.0.5' }],
    };
    const { patch, unchanged } = podStatusPatch('pod-uid', base, next);
    expect(unchanged).toBe(false);
    expect(patch).toEqual({
      metadata: { uid: 'pod-uid' },
      status: {
        phase: 'Running',
        '$setElementOrder/conditions': [{ type: 'Initialized' }, { type: 'Ready' }],
        conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: 't2', reason: null }],
        podIP: '10.244.0.5',
        podIPs: [{ ip: '10.244.0.5' }],
      },
    });
    const applied = applyStrategicPatch({ metadata: { name: 'p' }, status: base }, patch, POD_SCHEMA) as { status: unknown; metadata: unknown };
    expect(dropNulls(applied.status)).toEqual(dropNulls(next));
  });

  it('an unchanged status is flagged', () => {
    expect(podStatusPatch('u', base, JSON.parse(JSON.stringify(base)))).toEqual({ patch: { metadata: { uid: 'u' } }, unchanged: true });
  });
});

// ---------------------------------------------------------------- randomized round trips

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomPodStatus(r: () => number) {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const subset = <T>(xs: T[]) => xs.filter(() => r() < 0.6).sort(() => r() - 0.5);
  const condTypes = ['PodScheduled', 'PodReadyToStartContainers', 'Initialized', 'ContainersReady', 'Ready', 'DisruptionTarget'];
  const s: Record<string, unknown> = {};
  if (r() < 0.8) s.phase = pick(['Pending', 'Running', 'Succeeded', 'Failed']);
  if (r() < 0.9)
    s.conditions = subset(condTypes).map((type) => {
      const c: Record<string, unknown> = { type, status: pick(['True', 'False']) };
      if (r() < 0.5) c.reason = pick(['A', 'B']);
      if (r() < 0.5) c.lastTransitionTime = pick(['t1', 't2', 't3']);
      if (r() < 0.3) c.lastProbeTime = null;
      return c;
    });
  if (r() < 0.7) s.podIPs = subset(['10.0.0.1', '10.0.0.2', 'fd00::1']).map((ip) => ({ ip }));
  if (r() < 0.7) s.hostIPs = subset(['1.1.1.1', 'fd00::9']).map((ip) => ({ ip }));
  if (r() < 0.7)
    s.containerStatuses = subset(['a', 'b', 'c']).map((name) => ({
      name,
      ready: r() < 0.5,
      restartCount: Math.floor(r() * 3),
      state: r() < 0.5 ? { running: { startedAt: pick(['t1', 't2']) } } : { waiting: { reason: 'ContainerCreating' } },
    }));
  if (r() < 0.4) s.initContainerStatuses = subset(['i1', 'i2']).map((name) => ({ name, ready: r() < 0.5 }));
  if (r() < 0.5) s.message = pick(['x', 'y']);
  if (r() < 0.5) s.qosClass = pick(['BestEffort', 'Burstable']);
  return s;
}

function randomNodeStatus(r: () => number) {
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)]!;
  const subset = <T>(xs: T[]) => xs.filter(() => r() < 0.7).sort(() => r() - 0.5);
  const s: Record<string, unknown> = {};
  s.capacity = Object.fromEntries(subset(['cpu', 'memory', 'pods', 'ephemeral-storage', 'hugepages-2Mi']).map((k) => [k, pick(['1', '2', '4Gi'])]));
  s.conditions = subset(['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready', 'NetworkUnavailable']).map((type) => ({
    type,
    status: pick(['True', 'False', 'Unknown']),
    lastHeartbeatTime: pick(['h1', 'h2']),
    lastTransitionTime: pick(['t1', 't2']),
    ...(r() < 0.5 ? { reason: pick(['A', 'B']), message: pick(['m1', 'm2']) } : {}),
  }));
  if (r() < 0.8) s.images = subset(['a', 'b', 'c']).map((n) => ({ names: [n], sizeBytes: Math.floor(r() * 10) }));
  if (r() < 0.8) s.nodeInfo = { kubeletVersion: pick(['v1.36.3', 'v1.35.0']), bootID: pick(['b1', 'b2']), kubeProxyVersion: '' };
  if (r() < 0.8) s.daemonEndpoints = { kubeletEndpoint: { Port: pick([10250, 10251]) } };
  return s;
}

describe('randomized round trips: apply(old, patch(old, new)) == new', () => {
  it('pod status (500 pairs)', () => {
    const r = rng(42);
    for (let i = 0; i < 500; i++) {
      const o = { metadata: { name: 'p' }, status: randomPodStatus(r) };
      const n = { metadata: { name: 'p' }, status: randomPodStatus(r) };
      roundTrip(o, n, POD_SCHEMA);
    }
  });

  it('node status (500 pairs), also through nodeStatusPatch with addresses', () => {
    const r = rng(7);
    for (let i = 0; i < 500; i++) {
      const o = { metadata: { name: 'n' }, status: randomNodeStatus(r) };
      const n = { metadata: { name: 'n' }, status: randomNodeStatus(r) };
      roundTrip(o, n, NODE_SCHEMA);
      const addrs = (ip: string) => [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: 'n' }];
      const oa = { ...o, status: { ...o.status, addresses: addrs(r() < 0.5 ? '1.1.1.1' : '2.2.2.2') } };
      const na = { ...n, status: { ...n.status, addresses: r() < 0.3 ? [{ type: 'InternalIP', address: '3.3.3.3' }] : addrs('1.1.1.1') } };
      const p = nodeStatusPatch(oa, na);
      expect(applyStrategicPatch(oa, p, NODE_SCHEMA)).toEqual(na);
    }
  });

  it('jsonEqual treats undefined members as absent', () => {
    expect(jsonEqual({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(jsonEqual([1, { a: [2] }], [1, { a: [2] }])).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: '1' })).toBe(false);
  });
});
