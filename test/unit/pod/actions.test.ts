import { describe, expect, it } from 'vitest';
import { computePodActions, killOrder, type RuntimePodStatus, type ActionOptions } from '../../../src/pod/actions.js';
import { Backoff, backoffKey } from '../../../src/pod/backoff.js';
import { applyDefaults } from '../../../src/pod/manifest.js';
import type { Container, Pod, RestartPolicy } from '../../../src/pod/api-types.js';
import type { ContainerStatus } from '../../../src/runtime/types.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function mkPod(policy: RestartPolicy, apps: string[], inits: (string | [string, 'sidecar'])[] = []): Pod {
  const c = (n: string): Container => ({ name: n, image: 'busybox:1' });
  return applyDefaults(
    {
      metadata: { name: 'p' },
      spec: {
        restartPolicy: policy,
        containers: apps.map(c),
        initContainers: inits.map((i) => (Array.isArray(i) ? { ...c(i[0]), restartPolicy: 'Always' as const } : c(i))),
      },
    },
    { uid: () => 'uid' },
  );
}

let seq = 0;
function cs(name: string, state: ContainerStatus['state'], opts: Partial<ContainerStatus> = {}): ContainerStatus {
  return {
    id: `${name}-${opts.attempt ?? 0}-${seq++}`,
    sandboxId: 'sb1',
    name,
    attempt: 0,
    state,
    createdAt: iso(T0),
    startedAt: iso(T0),
    ...(state === 'exited' ? { finishedAt: iso(T0 + 1000), exitCode: 0 } : {}),
    oomKilled: false,
    imageRef: 'busybox:1',
    imageId: 'sha256:x',
    logPath: '/l',
    labels: {},
    annotations: {},
    ...opts,
  };
}

const ready = (containers: ContainerStatus[]): RuntimePodStatus => ({ sandboxes: [{ id: 'sb1', state: 'ready', createdAt: iso(T0), ips: ['10.0.0.2'] }], containers });
const opts = (o: Partial<ActionOptions> = {}): ActionOptions => ({ now: T0 + 60_000, backoff: new Backoff(), ...o });
const names = (l: { name: string }[]) => l.map((x) => x.name);

describe('computePodActions', () => {
  const table: { name: string; pod: Pod; status: RuntimePodStatus; o?: Partial<ActionOptions>; expect: Record<string, unknown> }[] = [
    { name: 'new pod: create sandbox, start all app containers', pod: mkPod('Always', ['a', 'b']), status: { sandboxes: [], containers: [] }, expect: { createSandbox: true, killPod: true, start: ['a', 'b'] } },
    { name: 'new pod with init containers: first init only', pod: mkPod('Always', ['a'], ['i1', 'i2']), status: { sandboxes: [], containers: [] }, expect: { createSandbox: true, init: 'i1', start: [] } },
    { name: 'init 1 done → init 2', pod: mkPod('Always', ['a'], ['i1', 'i2']), status: ready([cs('i1', 'exited')]), expect: { createSandbox: false, init: 'i2' } },
    { name: 'init running → wait', pod: mkPod('Always', ['a'], ['i1']), status: ready([cs('i1', 'running')]), expect: { init: undefined, start: [] } },
    { name: 'inits done → app containers', pod: mkPod('Always', ['a'], ['i1', 'i2']), status: ready([cs('i1', 'exited'), cs('i2', 'exited')]), expect: { start: ['a'] } },
    { name: 'init failed, Never → kill pod', pod: mkPod('Never', ['a'], ['i1']), status: ready([cs('i1', 'exited', { exitCode: 1 })]), expect: { killPod: true, init: undefined } },
    { name: 'init failed, OnFailure → retry init with next attempt', pod: mkPod('OnFailure', ['a'], ['i1']), status: ready([cs('i1', 'exited', { exitCode: 1 })]), expect: { init: 'i1', initAttempt: 1 } },
    { name: 'sidecar started → next init', pod: mkPod('Always', ['a'], [['s', 'sidecar'], 'i1']), status: ready([cs('s', 'running')]), expect: { init: 'i1' } },
    { name: 'sidecar startup probe pending → wait', pod: mkPod('Always', ['a'], [['s', 'sidecar']]), status: ready([cs('s', 'running', { id: 'sid' })]), o: { started: () => false }, expect: { init: undefined, start: [] } },
    { name: 'sidecar exited after init → restart it, app keeps running', pod: mkPod('Never', ['a'], [['s', 'sidecar']]), status: ready([cs('s', 'exited', { exitCode: 1 }), cs('a', 'running')]), expect: { init: 's', start: [], killPod: false } },
    { name: 'running app: nothing to do', pod: mkPod('Always', ['a']), status: ready([cs('a', 'running')]), expect: { killPod: false, createSandbox: false, start: [], kill: [] } },
    { name: 'Always: exited 0 restarts', pod: mkPod('Always', ['a']), status: ready([cs('a', 'exited')]), expect: { start: ['a'], startAttempt: 1 } },
    { name: 'OnFailure: exited 0 does not restart → kill pod', pod: mkPod('OnFailure', ['a']), status: ready([cs('a', 'exited')]), expect: { start: [], killPod: true } },
    { name: 'OnFailure: exited 1 restarts', pod: mkPod('OnFailure', ['a']), status: ready([cs('a', 'exited', { exitCode: 1 })]), expect: { start: ['a'] } },
    { name: 'Never: exited 1 stays, pod killed when all done', pod: mkPod('Never', ['a', 'b']), status: ready([cs('a', 'exited', { exitCode: 1 }), cs('b', 'exited')]), expect: { start: [], killPod: true } },
    { name: 'Never: one still running keeps the pod', pod: mkPod('Never', ['a', 'b']), status: ready([cs('a', 'exited', { exitCode: 1 }), cs('b', 'running')]), expect: { start: [], killPod: false } },
    { name: 'all apps done with a sidecar running → kill pod (sidecars stop)', pod: mkPod('Never', ['a'], [['s', 'sidecar']]), status: ready([cs('s', 'running'), cs('a', 'exited')]), expect: { killPod: true } },
    // killed now, restarted after it exited through the same back-off as a crash (kubelet)
    { name: 'liveness failure → kill now; the restart waits for the exit', pod: mkPod('Always', ['a']), status: ready([cs('a', 'running', { id: 'A' })]), o: { probe: (id, k) => (id === 'A' && k === 'liveness' ? 'failure' : undefined) }, expect: { kill: ['a'], killReason: 'LivenessProbe', start: [], killPod: false } },
    { name: 'liveness failure with Never → kill only, then pod ends', pod: mkPod('Never', ['a']), status: ready([cs('a', 'running', { id: 'A' })]), o: { probe: () => 'failure' }, expect: { kill: [], killPod: true } },
    { name: 'startup failure → kill now; the restart waits for the exit', pod: mkPod('Always', ['a']), status: ready([cs('a', 'running', { id: 'A' })]), o: { probe: (_id, k) => (k === 'startup' ? 'failure' : undefined) }, expect: { kill: ['a'], killReason: 'StartupProbe', start: [], killPod: false } },
    { name: 'sandbox not ready → recreate and start over', pod: mkPod('Always', ['a']), status: { sandboxes: [{ id: 'sb1', state: 'notready', createdAt: iso(T0), ips: [] }], containers: [cs('a', 'exited')] }, expect: { createSandbox: true, killPod: true, start: ['a'] } },
    { name: 'sandbox gone with Never and containers ran → nothing', pod: mkPod('Never', ['a']), status: { sandboxes: [{ id: 'sb1', state: 'notready', createdAt: iso(T0), ips: [] }], containers: [cs('a', 'exited')] }, expect: { createSandbox: false, start: [] } },
    { name: 'OnFailure, sandbox recreated: succeeded containers not restarted', pod: mkPod('OnFailure', ['a', 'b']), status: { sandboxes: [{ id: 'sb1', state: 'notready', createdAt: iso(T0), ips: [] }], containers: [cs('a', 'exited'), cs('b', 'exited', { exitCode: 2 })] }, expect: { createSandbox: true, start: ['b'] } },
    { name: 'deleting → kill pod, start nothing', pod: mkPod('Always', ['a']), status: ready([cs('a', 'running')]), o: { deleting: true }, expect: { killPod: true, createSandbox: false, start: [] } },
    { name: 'unknown state → kill and restart', pod: mkPod('Always', ['a']), status: ready([cs('a', 'unknown')]), expect: { kill: ['a'], killReason: 'Unknown', start: ['a'] } },
  ];
  for (const t of table) {
    it(t.name, () => {
      const a = computePodActions(t.pod, t.status, opts(t.o));
      const e = t.expect;
      if ('createSandbox' in e) expect(a.createSandbox).toBe(e.createSandbox);
      if ('killPod' in e) expect(a.killPod).toBe(e.killPod);
      if ('start' in e) expect(names(a.containersToStart)).toEqual(e.start);
      if ('startAttempt' in e) expect(a.containersToStart[0]!.attempt).toBe(e.startAttempt);
      if ('init' in e) expect(a.initContainerToStart?.name).toBe(e.init);
      if ('initAttempt' in e) expect(a.initContainerToStart?.attempt).toBe(e.initAttempt);
      if ('kill' in e) expect(names(a.containersToKill)).toEqual(e.kill);
      if ('killReason' in e) expect(a.containersToKill[0]!.reason).toBe(e.killReason);
    });
  }

  it('crash loop: back-off holds the restart, then releases it', () => {
    const pod = mkPod('Always', ['a']);
    const backoff = new Backoff();
    const finished = T0 + 1000;
    const st = ready([cs('a', 'exited', { exitCode: 1, attempt: 3, finishedAt: iso(finished) })]);
    // first restart: not in back-off, records an update
    let a = computePodActions(pod, st, { now: finished + 100, backoff });
    expect(names(a.containersToStart)).toEqual(['a']);
    expect(a.backoffUpdates).toEqual([{ name: 'a', key: backoffKey('uid', 'a', 'busybox:1'), eventTime: finished }]);
    backoff.next(a.backoffUpdates[0]!.key, finished, finished + 100);
    // same exit seen again 5 s later: in back-off (10 s)
    a = computePodActions(pod, st, { now: finished + 5000, backoff });
    expect(a.containersToStart).toEqual([]);
    expect(a.backoffs).toEqual([{ name: 'a', init: false, until: finished + 10_000, message: 'back-off 10s restarting failed container=a pod=p_default(uid)' }]);
    expect(a.nextSyncAt).toBe(finished + 10_000);
    expect(a.killPod).toBe(false);
    a = computePodActions(pod, st, { now: finished + 10_001, backoff });
    expect(names(a.containersToStart)).toEqual(['a']);
  });
});

describe('restart back-off after an image update', () => {
  it('a container whose image changed is restarted at once, and its back-off starts again from the initial delay', () => {
    const pod = mkPod('Always', ['a']);
    const backoff = new Backoff();
    // crash looping on busybox:1, back-off grown to 40 s
    let t = T0;
    for (let i = 0; i < 3; i++) backoff.next(backoffKey('uid', 'a', 'busybox:1'), t, (t += 1000));
    const finished = t + 500;
    const st = ready([cs('a', 'exited', { exitCode: 1, attempt: 3, finishedAt: iso(finished) })]);
    let a = computePodActions(pod, st, { now: finished + 1000, backoff });
    expect(a.containersToStart).toEqual([]);
    expect(a.backoffs[0]!.message).toMatch(/^back-off 40s /);
    // the pod is updated to a new image: no wait, and the next back-off is 10 s again
    const updated = { ...pod, spec: { ...pod.spec, containers: [{ ...pod.spec.containers[0]!, image: 'nginx:1' }] } };
    a = computePodActions(updated, st, { now: finished + 1000, backoff });
    expect(names(a.containersToStart)).toEqual(['a']);
    expect(a.backoffs).toEqual([]);
    const u = a.backoffUpdates[0]!;
    expect(backoff.next(u.key, u.eventTime, finished + 1000)).toBe(10_000);
    // the old image's back-off is untouched (kubelet's entries are per spec hash as well)
    expect(backoff.get(backoffKey('uid', 'a', 'busybox:1'))!.backoffMs).toBe(40_000);
  });
});

describe('computePodActions with container restartPolicy / restartPolicyRules (KEP-5307, kubelet v1.36)', () => {
  const ctr = (name: string, extra: Partial<Container> = {}): Container => ({ name, image: 'busybox:1', ...extra });
  const pod = (policy: RestartPolicy, apps: Container[], inits: Container[] = []): Pod =>
    applyDefaults({ metadata: { name: 'p' }, spec: { restartPolicy: policy, containers: apps, initContainers: inits } }, { uid: () => 'uid' });
  const on42: Partial<Container> = { restartPolicy: 'Never', restartPolicyRules: [{ action: 'Restart', exitCodes: { operator: 'In', values: [42] } }] };
  const notReady = (containers: ContainerStatus[]): RuntimePodStatus => ({ sandboxes: [{ id: 'sb1', state: 'notready', createdAt: iso(T0), ips: [] }], containers });
  const table: { name: string; pod: Pod; status: RuntimePodStatus; o?: Partial<ActionOptions>; expect: Record<string, unknown> }[] = [
    { name: 'Never + Restart on 42: exit 42 restarts', pod: pod('Never', [ctr('a', on42)]), status: ready([cs('a', 'exited', { exitCode: 42 })]), expect: { start: ['a'], startAttempt: 1, killPod: false } },
    { name: 'Never + Restart on 42: exit 0 is done → kill pod', pod: pod('Never', [ctr('a', on42)]), status: ready([cs('a', 'exited', { attempt: 1, exitCode: 0 })]), expect: { start: [], killPod: true } },
    { name: 'Never + Restart on 42: exit 1 is done → kill pod', pod: pod('Always', [ctr('a', on42)]), status: ready([cs('a', 'exited', { exitCode: 1 })]), expect: { start: [], killPod: true } },
    { name: 'Never + Restart on 137: killed by SIGKILL (no exit code) restarts', pod: pod('Never', [ctr('a', { restartPolicy: 'Never', restartPolicyRules: [{ action: 'Restart', exitCodes: { operator: 'In', values: [137] } }] })]), status: ready([cs('a', 'exited', { exitCode: undefined, signal: 'SIGKILL' })]), expect: { start: ['a'] } },
    { name: 'container OnFailure in a Never pod: exit 1 restarts', pod: pod('Never', [ctr('a', { restartPolicy: 'OnFailure' })]), status: ready([cs('a', 'exited', { exitCode: 1 })]), expect: { start: ['a'], killPod: false } },
    { name: 'container OnFailure in a Never pod: exit 0 is done', pod: pod('Never', [ctr('a', { restartPolicy: 'OnFailure' })]), status: ready([cs('a', 'exited')]), expect: { start: [], killPod: true } },
    { name: 'container Never in an Always pod: not restarted; the other keeps the pod', pod: pod('Always', [ctr('a', { restartPolicy: 'Never' }), ctr('b')]), status: ready([cs('a', 'exited', { exitCode: 1 }), cs('b', 'running')]), expect: { start: [], killPod: false } },
    { name: 'container Always in a Never pod: exit 0 restarts', pod: pod('Never', [ctr('a', { restartPolicy: 'Always' }), ctr('b')]), status: ready([cs('a', 'exited'), cs('b', 'exited')]), expect: { start: ['a'], killPod: false } },
    { name: 'init Never in an Always pod: failure kills the pod', pod: pod('Always', [ctr('a')], [ctr('i', { restartPolicy: 'Never' })]), status: ready([cs('i', 'exited', { exitCode: 1 })]), expect: { killPod: true, init: undefined, start: [] } },
    { name: 'init OnFailure in a Never pod: failure retries the init container', pod: pod('Never', [ctr('a')], [ctr('i', { restartPolicy: 'OnFailure' })]), status: ready([cs('i', 'exited', { exitCode: 1 })]), expect: { killPod: false, init: 'i', initAttempt: 1 } },
    { name: 'init Never + Restart on 42 in an Always pod: exit 42 retries', pod: pod('Always', [ctr('a')], [ctr('i', on42)]), status: ready([cs('i', 'exited', { exitCode: 42 })]), expect: { killPod: false, init: 'i' } },
    { name: 'init Never + Restart on 42 in an Always pod: exit 3 kills the pod', pod: pod('Always', [ctr('a')], [ctr('i', on42)]), status: ready([cs('i', 'exited', { exitCode: 3 })]), expect: { killPod: true, init: undefined } },
    { name: 'init Never in an unknown state: no exit code for the rules, the policy fails the pod', pod: pod('Always', [ctr('a')], [ctr('i', on42)]), status: ready([cs('i', 'unknown')]), expect: { killPod: true, init: undefined, kill: [] } },
    { name: 'init succeeded with its own policy → app containers', pod: pod('Always', [ctr('a')], [ctr('i', { restartPolicy: 'Never' })]), status: ready([cs('i', 'exited')]), expect: { start: ['a'] } },
    { name: 'liveness failure, container Never in an Always pod: kill only, pod ends', pod: pod('Always', [ctr('a', { restartPolicy: 'Never' })]), status: ready([cs('a', 'running', { id: 'A' })]), o: { probe: (_id, k) => (k === 'liveness' ? 'failure' : undefined) }, expect: { kill: [], killPod: true } },
    { name: 'liveness failure, container OnFailure in a Never pod: killed, will be restarted', pod: pod('Never', [ctr('a', { restartPolicy: 'OnFailure' })]), status: ready([cs('a', 'running', { id: 'A' })]), o: { probe: (_id, k) => (k === 'liveness' ? 'failure' : undefined) }, expect: { kill: ['a'], killMessage: 'Container a failed liveness probe, will be restarted', killPod: false } },
    { name: 'new sandbox: a container OnFailure that succeeded is not started again (pod Always)', pod: pod('Always', [ctr('a', { restartPolicy: 'OnFailure' }), ctr('b')]), status: notReady([cs('a', 'exited'), cs('b', 'exited')]), expect: { createSandbox: true, start: ['b'] } },
    { name: 'new sandbox: a container Always that succeeded starts again (pod OnFailure)', pod: pod('OnFailure', [ctr('a', { restartPolicy: 'Always' }), ctr('b')]), status: notReady([cs('a', 'exited'), cs('b', 'exited')]), expect: { createSandbox: true, start: ['a'] } },
    { name: 'new sandbox: initialized and nothing to start → no sandbox, not the init containers again', pod: pod('OnFailure', [ctr('a')], [ctr('i')]), status: notReady([cs('i', 'exited'), cs('a', 'exited')]), expect: { createSandbox: false, init: undefined, start: [] } },
  ];
  for (const t of table) {
    it(t.name, () => {
      const a = computePodActions(t.pod, t.status, opts(t.o));
      const e = t.expect;
      if ('createSandbox' in e) expect(a.createSandbox).toBe(e.createSandbox);
      if ('killPod' in e) expect(a.killPod).toBe(e.killPod);
      if ('start' in e) expect(names(a.containersToStart)).toEqual(e.start);
      if ('startAttempt' in e) expect(a.containersToStart[0]!.attempt).toBe(e.startAttempt);
      if ('init' in e) expect(a.initContainerToStart?.name).toBe(e.init);
      if ('initAttempt' in e) expect(a.initContainerToStart?.attempt).toBe(e.initAttempt);
      if ('kill' in e) expect(names(a.containersToKill)).toEqual(e.kill);
      if ('killMessage' in e) expect(a.containersToKill[0]!.message).toBe(e.killMessage);
    });
  }

  it('a restart a rule asks for goes through the same CrashLoopBackOff', () => {
    const p = pod('Never', [ctr('a', on42)]);
    const backoff = new Backoff();
    const finished = T0 + 1000;
    const st = ready([cs('a', 'exited', { exitCode: 42, attempt: 1, finishedAt: iso(finished) })]);
    let a = computePodActions(p, st, { now: finished + 100, backoff });
    expect(names(a.containersToStart)).toEqual(['a']);
    backoff.next(a.backoffUpdates[0]!.key, finished, finished + 100);
    a = computePodActions(p, st, { now: finished + 5000, backoff });
    expect(a.containersToStart).toEqual([]);
    expect(a.backoffs.map((b) => b.message)).toEqual(['back-off 10s restarting failed container=a pod=p_default(uid)']);
    expect(a.killPod).toBe(false);
  });
});

describe('Backoff (kubelet flowcontrol)', () => {
  it('doubles from 10 s to 300 s and resets after 10 minutes of running', () => {
    const b = new Backoff();
    const k = 'uid/a';
    let t = T0;
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) {
      seen.push(b.next(k, t, t));
      t += 1000;
    }
    expect(seen).toEqual([10, 20, 40, 80, 160, 300, 300, 300].map((s) => s * 1000));
    // container ran 11 minutes, then exited: back to 10 s
    const exit = t + 11 * 60_000;
    expect(b.isInBackOffSince(k, exit, exit + 1)).toBe(false);
    expect(b.next(k, exit, exit)).toBe(10_000);
    // survives a daemon restart
    const restored = Backoff.fromJSON(JSON.parse(JSON.stringify(b)));
    expect(restored.isInBackOffSince(k, exit, exit + 5000)).toBe(true);
    expect(restored.isInBackOffSince(k, exit, exit + 10_001)).toBe(false);
  });
});

describe('killOrder', () => {
  it('app containers first, then sidecars in reverse order', () => {
    const pod = mkPod('Always', ['a', 'b'], [['s1', 'sidecar'], ['s2', 'sidecar']]);
    const st = [cs('s1', 'running'), cs('s2', 'running'), cs('a', 'running'), cs('b', 'running'), cs('gone', 'running')];
    expect(killOrder(pod, st).map((w) => names(w))).toEqual([['gone'], ['a', 'b'], ['s2'], ['s1']]);
  });
});

describe('helpers', () => {
  it('backoffWaitingReasons and pastActiveDeadline', async () => {
    const { backoffWaitingReasons, pastActiveDeadline } = await import('../../../src/pod/actions.js');
    expect(backoffWaitingReasons({ backoffs: [{ name: 'a', init: false, until: 1, message: 'back-off 10s' }] })).toEqual({ a: { reason: 'CrashLoopBackOff', message: 'back-off 10s' } });
    const p = mkPod('Always', ['a']);
    p.spec.activeDeadlineSeconds = 30;
    expect(pastActiveDeadline(p, iso(T0), T0 + 29_999)).toBeUndefined();
    expect(pastActiveDeadline(p, iso(T0), T0 + 30_000)).toEqual({ reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' });
    expect(pastActiveDeadline(mkPod('Always', ['a']), iso(T0), T0 + 1e9)).toBeUndefined();
  });
});
