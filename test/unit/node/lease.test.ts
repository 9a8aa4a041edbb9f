import { afterEach, describe, expect, it } from 'vitest';
import { formatMicroTime } from '../../../src/node/clock.js';
import { LeaseController, leasesRef } from '../../../src/node/lease.js';
import type { LeaseObject } from '../../../src/node/types.js';
import { apiError, FakeClock, FakeKubeClient, flush, silentLogger } from './fakes.js';

const LEASES = leasesRef();
let controllers: LeaseController[] = [];
afterEach(async () => {
  await Promise.all(controllers.map((c) => c.stop()));
  controllers = [];
});

function setup(uid: string | null = 'node-uid') {
  const clock = new FakeClock();
  const client = new FakeKubeClient(clock);
  const state: { uid: string | undefined } = { uid: uid ?? undefined };
  let repeated = 0;
  const ctl = new LeaseController({
    client,
    nodeName: 'n1',
    nodeUid: () => state.uid,
    clock,
    random: () => 0,
    logger: silentLogger,
    onRepeatedFailure: () => repeated++,
  });
  controllers.push(ctl);
  return { clock, client, ctl, state, repeated: () => repeated };
}

describe('LeaseController', () => {
  it('formats renewTime as metav1.MicroTime', () => {
    expect(formatMicroTime(Date.parse('2026-12-03T07:40:00.123Z'))).toBe('2026-12-03T07:40:00.123000Z');
    expect(formatMicroTime(Date.parse('2026-12-03T07:40:00.123Z') + 0.456)).toBe('2026-12-03T07:40:00.123456Z');
  });

  it('creates the lease with holder, duration 40 s and an ownerReference to the Node', async () => {
    const { client, ctl } = setup();
    ctl.start();
    await flush();
    expect(client.calls.map((c) => `${c.method} ${c.ref.group}/${c.ref.resource} ${c.ref.namespace}`)).toEqual([
      'get coordination.k8s.io/leases kube-node-lease',
      'create coordination.k8s.io/leases kube-node-lease',
    ]);
    expect(client.callsOf('create')[0]!.body).toEqual({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: 'n1',
        namespace: 'kube-node-lease',
        ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'node-uid' }],
      },
      spec: { holderIdentity: 'n1', leaseDurationSeconds: 40, renewTime: '2026-12-03T07:40:00.000000Z' },
    });
  });

  it('renews every 10 s by PUT from the last written lease (no GET)', async () => {
    const { clock, client, ctl } = setup();
    ctl.start();
    await flush();
    await clock.advance(10_000);
    await clock.advance(10_000);
    const updates = client.callsOf('update');
    expect(updates).toHaveLength(2);
    expect(updates.map((u) => (u.body as LeaseObject).spec!.renewTime)).toEqual(['2026-12-03T07:40:10.000000Z', '2026-12-03T07:40:20.000000Z']);
    expect(updates.map((u) => u.at - Date.parse('2026-12-03T07:40:00Z'))).toEqual([10_000, 20_000]);
    expect(client.callsOf('get')).toHaveLength(1); // only the first ensure
    const stored = client.stored<LeaseObject>(LEASES, 'n1')!;
    expect(stored.spec).toMatchObject({ holderIdentity: 'n1', leaseDurationSeconds: 40, renewTime: '2026-12-03T07:40:20.000000Z' });
    expect(stored.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'node-uid' }]);
    expect(ctl.lease?.metadata.resourceVersion).toBe(stored.metadata.resourceVersion);
  });

  it('the renew interval carries 4 % jitter', async () => {
    const clock = new FakeClock();
    const client = new FakeKubeClient(clock);
    const ctl = new LeaseController({ client, nodeName: 'n1', nodeUid: () => 'u', clock, random: () => 1, logger: silentLogger });
    controllers.push(ctl);
    ctl.start();
    await flush();
    expect(clock.sleeps).toEqual([10_400]);
  });

  it('is not created before the Node UID is known; backs off 200 ms doubling to 7 s meanwhile', async () => {
    const { clock, client, ctl, state } = setup(null);
    ctl.start();
    await clock.advance(20_000);
    expect(client.callsOf('create')).toHaveLength(0);
    expect(clock.sleeps.slice(0, 7)).toEqual([200, 400, 800, 1600, 3200, 6400, 7000]);
    state.uid = 'late-uid';
    await clock.advance(7_000);
    expect(client.callsOf('create')).toHaveLength(1);
    expect(client.stored<LeaseObject>(LEASES, 'n1')!.metadata.ownerReferences![0]!.uid).toBe('late-uid');
  });

  it('adopts an existing lease: GET, then PUT with a new renewTime (adding the ownerReference)', async () => {
    const { client, ctl } = setup();
    client.put(LEASES, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: 'n1', namespace: 'kube-node-lease', uid: 'l1', resourceVersion: '9' },
      spec: { holderIdentity: 'n1', leaseDurationSeconds: 40, renewTime: '2026-12-03T07:00:00.000000Z' },
    });
    ctl.start();
    await flush();
    expect(client.calls.map((c) => c.method)).toEqual(['get', 'update']);
    const put = client.callsOf('update')[0]!.body as LeaseObject;
    expect(put.metadata.resourceVersion).toBe('9');
    expect(put.spec!.renewTime).toBe('2026-12-03T07:40:00.000000Z');
    expect(put.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'Node', name: 'n1', uid: 'node-uid' }]);
  });

  it('re-GETs the lease on 409 Conflict and renews from it', async () => {
    const { clock, client, ctl } = setup();
    ctl.start();
    await flush();
    // someone else wrote the lease: our resourceVersion is stale
    const cur = client.stored<LeaseObject>(LEASES, 'n1')!;
    client.put(LEASES, { ...cur, metadata: { ...cur.metadata, resourceVersion: '555' }, spec: { ...cur.spec, holderIdentity: 'n1' } });
    await clock.advance(10_000);
    expect(client.calls.map((c) => c.method)).toEqual(['get', 'create', 'update', 'get', 'update']);
    const last = client.callsOf('update')[1]!.body as LeaseObject;
    expect(last.metadata.resourceVersion).toBe('555');
    expect(client.stored<LeaseObject>(LEASES, 'n1')!.spec!.renewTime).toBe('2026-12-03T07:40:10.000000Z');
  });

  it('retries errors without throwing out of the loop', async () => {
    const { clock, client, ctl, repeated } = setup();
    client.failNext('get', apiError(503, 'ServiceUnavailable'));
    client.failNext('get', apiError(500, 'InternalError'));
    ctl.start();
    await clock.advance(200);
    await clock.advance(400);
    expect(client.callsOf('create')).toHaveLength(1);
    expect(clock.sleeps.slice(0, 2)).toEqual([200, 400]);
    // five failed PUTs in one round: fall back to GET + PUT
    for (let i = 0; i < 5; i++) client.failNext('update', apiError(500, 'InternalError'));
    await clock.advance(10_000);
    expect(repeated()).toBeGreaterThanOrEqual(4);
    const methods = client.calls.map((c) => c.method).slice(-7);
    expect(methods).toEqual(['update', 'update', 'update', 'update', 'update', 'get', 'update']);
    expect(client.stored<LeaseObject>(LEASES, 'n1')!.spec!.renewTime).toBe(formatMicroTime(clock.now()));
  });

  it('re-creates a lease that disappeared (garbage-collected with an old Node)', async () => {
    const { clock, client, ctl, state } = setup();
    ctl.start();
    await flush();
    await client.delete(LEASES, 'n1');
    state.uid = 'new-node-uid';
    await clock.advance(10_000);
    const stored = client.stored<LeaseObject>(LEASES, 'n1')!;
    expect(stored.metadata.ownerReferences![0]!.uid).toBe('new-node-uid');
  });

  it('stop() ends the loop', async () => {
    const { clock, client, ctl } = setup();
    ctl.start();
    await flush();
    await ctl.stop();
    const n = client.calls.length;
    await clock.advance(60_000);
    expect(client.calls.length).toBe(n);
  });
});
