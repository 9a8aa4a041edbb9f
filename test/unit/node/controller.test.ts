import { afterEach, describe, expect, it } from 'vitest';
import { NodeController, NODES, NODES_STATUS, type NodeEvent } from '../../../src/node/controller.js';
import type { HostInfo } from '../../../src/node/host-info.js';
import type { NodeObject } from '../../../src/node/types.js';
import { apiError, FakeClock, FakeKubeClient, flush, hostFixture, silentLogger } from './fakes.js';

let controllers: NodeController[] = [];
afterEach(async () => {
  await Promise.all(controllers.map((c) => c.stop()));
  controllers = [];
});

function setup(opts: { host?: () => HostInfo; existing?: NodeObject } = {}) {
  const clock = new FakeClock();
  const client = new FakeKubeClient(clock);
  if (opts.existing) client.put(NODES, opts.existing);
  const events: NodeEvent[] = [];
  let host = hostFixture();
  const ctl = new NodeController({
    client,
    nodeName: 'n1',
    readHost: async () => (opts.host ? opts.host() : host),
    clock,
    random: () => 0,
    logger: silentLogger,
    onEvent: (e) => events.push(e),
  });
  controllers.push(ctl);
  return { clock, client, ctl, events, setHost: (h: HostInfo) => (host = h) };
}

// the default labels and the annotation kubelet puts on the Node it registers (and reconciles on one it adopts)
const NODE_LABELS_AND_ANNOTATIONS = {
  labels: {
    'kubernetes.io/hostname': 'n1',
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
    'beta.kubernetes.io/os': 'linux',
    'beta.kubernetes.io/arch': 'amd64',
  },
  annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
};

const statusPatches = (c: FakeKubeClient) => c.callsOf('patch', 'nodes', 'status');
const condition = (n: NodeObject | undefined, type: string) => n?.status?.conditions?.find((c) => c.type === type);

describe('NodeController registration', () => {
  it('creates the Node with its status; the round right after finds nothing new to patch', async () => {
    const { clock, client, ctl, events } = setup();
    ctl.start();
    const uid = await ctl.onReady;
    expect(uid).toBe('uid-1');
    expect(ctl.nodeUid).toBe('uid-1');
    const create = client.callsOf('create', 'nodes')[0]!;
    const body = create.body as NodeObject;
    expect(body.metadata).toEqual({ name: 'n1', ...NODE_LABELS_AND_ANNOTATIONS });
    expect(body.status?.capacity).toMatchObject({ cpu: '4', memory: '8Gi', pods: '110' });
    expect(condition(body, 'Ready')).toMatchObject({ status: 'True', reason: 'KubeletReady' });
    // the status round right after registration GETs the Node; within the same second nothing changed
    expect(client.calls.map((c) => `${c.method} ${c.ref.resource}${c.ref.subresource ? '/' + c.ref.subresource : ''}`)).toEqual([
      'create nodes',
      'get nodes',
    ]);
    expect(events.map((e) => e.reason)).toEqual(['NodeHasSufficientMemory', 'NodeHasNoDiskPressure', 'NodeHasSufficientPID']);
    expect(events[0]!.message).toBe('Node n1 status is now: NodeHasSufficientMemory');
    expect(clock.now()).toBe(Date.parse('2026-12-03T07:40:00.000Z'));
  });

  it('adopts an existing Node: GET, reconcile default labels through nodes/status, keep its UID', async () => {
    const existing: NodeObject = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: 'n1', uid: 'old-uid', resourceVersion: '7', labels: { 'kubernetes.io/hostname': 'stale', custom: 'keep' } },
      spec: {},
      status: {},
    };
    const { client, ctl } = setup({ existing });
    ctl.start();
    expect(await ctl.onRegistered).toBe('old-uid');
    await ctl.onReady;
    expect(ctl.nodeUid).toBe('old-uid');
    const [reconcile, status] = statusPatches(client);
    expect(reconcile!.body).toEqual({ metadata: NODE_LABELS_AND_ANNOTATIONS });
    expect(status!.body).toHaveProperty('status.conditions');
    const stored = client.stored<NodeObject>(NODES, 'n1')!;
    expect(stored.metadata.uid).toBe('old-uid');
    expect(stored.metadata.labels).toMatchObject({ custom: 'keep', 'kubernetes.io/hostname': 'n1' });
    expect(condition(stored, 'Ready')?.status).toBe('True');
  });

  it('does not patch labels when the existing Node already has them', async () => {
    const { client, ctl } = setup();
    ctl.start();
    await ctl.onReady;
    await ctl.stop();
    const ctl2 = new NodeController({ client, nodeName: 'n1', readHost: async () => hostFixture(), clock: new FakeClock(Date.parse('2026-12-03T07:41:00Z')), random: () => 0, logger: silentLogger });
    controllers.push(ctl2);
    const before = statusPatches(client).length;
    ctl2.start();
    await ctl2.onReady;
    const after = statusPatches(client).slice(before);
    expect(after).toHaveLength(1); // the first report: heartbeats only
    expect(after[0]!.patchType).toBe('strategic');
    expect(after[0]!.body).not.toHaveProperty('metadata');
    expect(Object.keys((after[0]!.body as { status: object }).status).sort()).toEqual(['$setElementOrder/conditions', 'conditions']);
    expect(ctl2.nodeUid).toBe(ctl.nodeUid);
  });

  it('retries registration with back-off 100 ms doubling to 7 s', async () => {
    const { clock, client, ctl } = setup();
    for (let i = 0; i < 8; i++) client.failNext('create', apiError(503, 'ServiceUnavailable'));
    ctl.start();
    await flush();
    let uid: string | undefined;
    void ctl.onRegistered.then((u) => (uid = u));
    await clock.advance(60_000);
    expect(uid).toBe('uid-1');
    expect(client.callsOf('create', 'nodes')).toHaveLength(9);
    expect(clock.sleeps.slice(0, 8)).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 7000]);
  });

  it('a forbidden create (not AlreadyExists) is retried, not adopted', async () => {
    const { clock, client, ctl } = setup();
    client.failNext('create', apiError(403, 'Forbidden'));
    ctl.start();
    await flush();
    expect(client.callsOf('get', 'nodes')).toHaveLength(0);
    await clock.advance(100);
    await ctl.onReady;
    expect(client.callsOf('create', 'nodes')).toHaveLength(2);
  });
});

describe('NodeController status updates', () => {
  it('checks every 10 s, patches only on change, and at least every 5 minutes', async () => {
    const { clock, client, ctl } = setup();
    ctl.start();
    await ctl.onReady;
    expect(statusPatches(client)).toHaveLength(0);
    const t0 = clock.now();

    await clock.advance(10_000);
    expect(client.callsOf('get', 'nodes')).toHaveLength(2); // checked
    expect(statusPatches(client)).toHaveLength(0); // nothing but heartbeats changed

    ctl.setRuntimeReady(false, 'container runtime is down');
    await flush();
    expect(statusPatches(client)).toHaveLength(1); // woken at once
    const p = statusPatches(client)[0]!.body as { status: { conditions: { type: string; status?: string; reason?: string; message?: string }[] } };
    expect(p.status.conditions.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down' });
    const reportedAt = clock.now();
    expect(condition(client.stored(NODES, 'n1'), 'Ready')).toMatchObject({ status: 'False', lastTransitionTime: '2026-12-03T07:40:10Z' });

    // heartbeat-only rounds until the report frequency
    await clock.advance(4 * 60_000 + 50_000);
    expect(statusPatches(client)).toHaveLength(1);
    await clock.advance(10_000);
    expect(statusPatches(client)).toHaveLength(2);
    expect(statusPatches(client)[1]!.at - reportedAt).toBeGreaterThanOrEqual(5 * 60_000);
    expect(statusPatches(client)[1]!.at - reportedAt).toBeLessThan(5 * 60_000 + 10_000);
    const hb = condition(client.stored(NODES, 'n1'), 'Ready')!;
    expect(hb.lastTransitionTime).toBe('2026-12-03T07:40:10Z');
    expect(Date.parse(hb.lastHeartbeatTime!)).toBeGreaterThan(t0 + 5 * 60_000);
    // the checks were every 10 s (after the woken one)
    const gets = client.callsOf('get', 'nodes').map((c) => c.at);
    for (let i = 3; i < gets.length; i++) expect(gets[i]! - gets[i - 1]!).toBe(10_000);
    expect(gets.length).toBeGreaterThanOrEqual(32);
  });

  it('reports host changes (memory pressure from the real signal) at the next check', async () => {
    const { clock, client, ctl, setHost, events } = setup();
    ctl.start();
    await ctl.onReady;
    setHost(hostFixture({ memory: { totalBytes: 8 * 1024 ** 3, availableBytes: 50 * 1024 ** 2, swapTotalBytes: 0 } }));
    await clock.advance(10_000);
    expect(statusPatches(client)).toHaveLength(1);
    expect(condition(client.stored(NODES, 'n1'), 'MemoryPressure')).toMatchObject({ status: 'True', reason: 'KubeletHasInsufficientMemory' });
    expect(events.map((e) => e.reason)).toContain('NodeHasInsufficientMemory');
    // the signal clears, but the condition holds for the 5 min transition period
    setHost(hostFixture());
    await clock.advance(10_000);
    expect(condition(client.stored(NODES, 'n1'), 'MemoryPressure')?.status).toBe('True');
    await clock.advance(5 * 60_000);
    expect(condition(client.stored(NODES, 'n1'), 'MemoryPressure')?.status).toBe('False');
  });

  it('images: reported when set, as an atomic list', async () => {
    const { clock, client, ctl } = setup();
    ctl.start();
    await ctl.onReady;
    ctl.setImages([
      { names: ['docker.io/library/busybox@sha256:aa', 'docker.io/library/busybox:1.36'], sizeBytes: 100 },
      { names: ['registry.k8s.io/pause:3.10'], sizeBytes: 200 },
    ]);
    await clock.advance(10_000);
    const p = statusPatches(client)[0]!.body as { status: Record<string, unknown> };
    expect(p.status.images).toEqual([
      { names: ['registry.k8s.io/pause:3.10'], sizeBytes: 200 },
      { names: ['docker.io/library/busybox@sha256:aa', 'docker.io/library/busybox:1.36'], sizeBytes: 100 },
    ]);
  });

  it('retries a failed status update within the round, with back-off', async () => {
    const { clock, client, ctl } = setup();
    ctl.start();
    await ctl.onReady;
    ctl.setRuntimeReady(false, 'x');
    client.failNext('patch', apiError(500, 'InternalError'), 'nodes');
    client.failNext('get', apiError(503, 'ServiceUnavailable'), 'nodes');
    await clock.advance(10_000);
    // registration's round, then: get+patch (patch fails), get (fails), get+patch
    expect(client.callsOf('get', 'nodes').length).toBe(4);
    expect(statusPatches(client)).toHaveLength(2);
    expect(condition(client.stored(NODES, 'n1'), 'Ready')?.status).toBe('False');
    expect(clock.sleeps).toContain(200);
    expect(clock.sleeps).toContain(400);
  });

  it('never throws out of its loop (host signals failing), and recovers', async () => {
    let fail = true;
    const { clock, client, ctl } = setup({
      host: () => {
        if (fail) throw new Error('no /proc');
        return hostFixture();
      },
    });
    ctl.start();
    await clock.advance(30_000);
    expect(client.calls).toHaveLength(0);
    fail = false;
    await clock.advance(7_000);
    await ctl.onReady;
  });

  it('registers again when its Node is deleted', async () => {
    const { clock, client, ctl } = setup();
    ctl.start();
    await ctl.onReady;
    await client.delete(NODES, 'n1');
    await clock.advance(10_000);
    expect(client.callsOf('create', 'nodes')).toHaveLength(2);
    expect(ctl.nodeUid).toBe('uid-2');
    expect(client.stored(NODES, 'n1')?.metadata.uid).toBe('uid-2');
  });

  it('reports Ready=False from the start when the runtime is not ready yet', async () => {
    const clock = new FakeClock();
    const client = new FakeKubeClient(clock);
    const ctl = new NodeController({ client, nodeName: 'n1', readHost: async () => hostFixture(), clock, random: () => 0, logger: silentLogger, initialRuntimeReady: false });
    controllers.push(ctl);
    ctl.start();
    await ctl.onReady;
    expect(condition(client.stored(NODES, 'n1'), 'Ready')).toMatchObject({ status: 'False', message: 'container runtime status check may not have completed yet' });
    ctl.setRuntimeReady(true);
    await flush();
    expect(condition(client.stored(NODES, 'n1'), 'Ready')).toMatchObject({ status: 'True', reason: 'KubeletReady' });
  });

  it('stop() ends the loop; onReady rejects when stopped before it', async () => {
    const { clock, client, ctl } = setup();
    client.failNext('create', apiError(503, 'ServiceUnavailable'));
    ctl.start();
    await flush();
    await ctl.stop();
    await expect(ctl.onReady).rejects.toMatchObject({ code: 'ERR_NODE_CONTROLLER_STOPPED' });
    const n = client.calls.length;
    await clock.advance(60_000);
    expect(client.calls.length).toBe(n);
    expect(clock.pendingTimers).toBe(0);
  });

  it('uses the resources of NODES_STATUS', () => {
    expect(NODES_STATUS).toEqual({ group: '', version: 'v1', resource: 'nodes', subresource: 'status' });
  });
});
