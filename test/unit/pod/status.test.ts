import { describe, expect, it } from 'vitest';
import { computePodStatus } from '../../../src/pod/status.js';
import { applyDefaults } from '../../../src/pod/manifest.js';
import type { Container, Pod, RestartPolicy } from '../../../src/pod/api-types.js';
import type { ContainerStatus } from '../../../src/runtime/types.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
function mkPod(policy: RestartPolicy, apps: Container[], inits: Container[] = []): Pod {
  return applyDefaults({ metadata: { name: 'p' }, spec: { restartPolicy: policy, containers: apps, initContainers: inits } }, { uid: () => 'uid' });
}
const c = (name: string, extra: Partial<Container> = {}): Container => ({ name, image: 'busybox:1', ...extra });
function rs(name: string, state: ContainerStatus['state'], o: Partial<ContainerStatus> = {}): ContainerStatus {
  return {
    id: `${name}${o.attempt ?? 0}`, sandboxId: 's', name, attempt: 0, state, createdAt: iso(T0), startedAt: iso(T0),
    ...(state === 'exited' ? { finishedAt: iso(T0 + 5000), exitCode: 0 } : {}),
    oomKilled: false, imageRef: 'busybox:1', imageId: 'sha256:abc', logPath: '/l', labels: {}, annotations: {}, ...o,
  };
}
const base = { now: new Date(T0 + 10_000), podIPs: ['10.0.0.5'], hostIPs: ['192.0.2.1'], sandboxReady: true };
const cond = (s: ReturnType<typeof computePodStatus>, t: string) => s.conditions!.find((x) => x.type === t)!;

describe('computePodStatus', () => {
  it('pending with ContainerCreating before anything runs', () => {
    const s = computePodStatus(mkPod('Always', [c('a')]), [], {}, { ...base, sandboxReady: false, podIPs: [] });
    expect(s.phase).toBe('Pending');
    expect(s.containerStatuses![0]!.state).toEqual({ waiting: { reason: 'ContainerCreating' } });
    expect(cond(s, 'Ready').status).toBe('False');
    expect(cond(s, 'PodReadyToStartContainers').status).toBe('False');
  });
  it('running and ready without a readiness probe; ids, ips, qos', () => {
    const s = computePodStatus(mkPod('Always', [c('a')]), [rs('a', 'running')], {}, base);
    expect(s.phase).toBe('Running');
    expect(s.containerStatuses![0]).toMatchObject({ ready: true, started: true, restartCount: 0, containerID: 'nodelet://a0', imageID: 'sha256:abc', image: 'busybox:1', state: { running: { startedAt: '2026-01-01T00:00:00Z' } } });
    expect(s).toMatchObject({ podIP: '10.0.0.5', podIPs: [{ ip: '10.0.0.5' }], hostIP: '192.0.2.1', qosClass: 'BestEffort' });
    expect(cond(s, 'Ready').status).toBe('True');
    expect(cond(s, 'ContainersReady').status).toBe('True');
  });
  it('readiness drives ready and keeps lastTransitionTime stable', () => {
    const pod = mkPod('Always', [c('a', { readinessProbe: { exec: { command: ['true'] } } })]);
    const s1 = computePodStatus(pod, [rs('a', 'running')], { a0: { ready: false, started: true } }, base);
    expect(s1.containerStatuses![0]!.ready).toBe(false);
    expect(cond(s1, 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady', message: 'containers with unready status: [a]' });
    const s2 = computePodStatus(pod, [rs('a', 'running')], { a0: { ready: false, started: true } }, { ...base, now: new Date(T0 + 20_000), previous: s1 });
    expect(cond(s2, 'Ready').lastTransitionTime).toBe(cond(s1, 'Ready').lastTransitionTime);
    const s3 = computePodStatus(pod, [rs('a', 'running')], { a0: { ready: true, started: true } }, { ...base, now: new Date(T0 + 30_000), previous: s2 });
    expect(cond(s3, 'Ready')).toMatchObject({ status: 'True', lastTransitionTime: '2026-01-01T00:00:30Z' });
    expect(s3.startTime).toBe(s1.startTime);
  });
  it('CrashLoopBackOff: waiting with the exit as lastState', () => {
    const s = computePodStatus(mkPod('Always', [c('a')]), [rs('a', 'exited', { attempt: 2, exitCode: 3 })], {}, { ...base, waitingReasons: { a: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=a' } } });
    const st = s.containerStatuses![0]!;
    expect(st.state).toEqual({ waiting: { reason: 'CrashLoopBackOff', message: 'back-off 40s restarting failed container=a' } });
    expect(st.lastState.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(st.restartCount).toBe(2);
    expect(s.phase).toBe('Running');
  });
  it('terminated reasons: Completed, Error, OOMKilled, signal; termination message', () => {
    const pod = mkPod('Never', [c('a'), c('b'), c('d'), c('e')]);
    const s = computePodStatus(pod, [rs('a', 'exited'), rs('b', 'exited', { exitCode: 1 }), rs('d', 'exited', { exitCode: 137, oomKilled: true }), rs('e', 'exited', { exitCode: undefined, signal: 'SIGKILL' })], {}, { ...base, terminationMessages: { b0: 'boom' } });
    const t = s.containerStatuses!.map((x) => x.state.terminated!);
    expect(t.map((x) => x.reason)).toEqual(['Completed', 'Error', 'OOMKilled', 'Error']);
    expect(t[1]!.message).toBe('boom');
    expect(t[3]).toMatchObject({ exitCode: 137, signal: 9 });
    expect(s.phase).toBe('Failed');
  });
  const phases: [string, RestartPolicy, ContainerStatus[], string][] = [
    ['Never, all succeeded', 'Never', [rs('a', 'exited'), rs('b', 'exited')], 'Succeeded'],
    ['OnFailure, all succeeded', 'OnFailure', [rs('a', 'exited'), rs('b', 'exited')], 'Succeeded'],
    ['Always, all exited → Running (restarting)', 'Always', [rs('a', 'exited'), rs('b', 'exited')], 'Running'],
    ['OnFailure, one failed → Running (restarting)', 'OnFailure', [rs('a', 'exited', { exitCode: 1 }), rs('b', 'exited')], 'Running'],
    ['one running one exited', 'Never', [rs('a', 'running'), rs('b', 'exited', { exitCode: 1 })], 'Running'],
    ['one not created yet', 'Always', [rs('a', 'running')], 'Pending'],
  ];
  for (const [name, policy, st, phase] of phases) {
    it(`phase: ${name}`, () => expect(computePodStatus(mkPod(policy, [c('a'), c('b')]), st, {}, base).phase).toBe(phase));
  }
  it('init containers: PodInitializing, Initialized condition, failed init with Never → Failed', () => {
    const pod = mkPod('Never', [c('a')], [c('i1'), c('i2')]);
    const s = computePodStatus(pod, [rs('i1', 'exited')], {}, base);
    expect(s.phase).toBe('Pending');
    expect(s.initContainerStatuses![1]!.state.waiting!.reason).toBe('PodInitializing');
    expect(s.containerStatuses![0]!.state.waiting!.reason).toBe('PodInitializing');
    expect(cond(s, 'Initialized')).toMatchObject({ status: 'False', reason: 'ContainersNotInitialized', message: 'containers with incomplete status: [i2]' });
    const f = computePodStatus(pod, [rs('i1', 'exited', { exitCode: 2 })], {}, base);
    expect(f.phase).toBe('Failed');
    const ok = computePodStatus(pod, [rs('i1', 'exited'), rs('i2', 'exited'), rs('a', 'running')], {}, base);
    expect(cond(ok, 'Initialized').status).toBe('True');
    expect(ok.phase).toBe('Running');
  });
  it('a regular init container that exited 0 is ready (kubelet), one that failed or runs is not; sidecars follow readiness', () => {
    const pod = mkPod('Always', [c('a')], [c('i1'), c('i2'), c('s', { restartPolicy: 'Always' })]);
    const run = computePodStatus(pod, [rs('i1', 'exited'), rs('i2', 'running')], {}, base);
    expect(run.initContainerStatuses!.map((s) => [s.name, s.ready])).toEqual([['i1', true], ['i2', false], ['s', false]]);
    const failed = computePodStatus(pod, [rs('i1', 'exited', { exitCode: 1 })], {}, { ...base, waitingReasons: {} });
    expect(failed.initContainerStatuses![0]!.ready).toBe(false);
    const crashLoop = computePodStatus(pod, [rs('i1', 'exited', { exitCode: 1 })], {}, { ...base, waitingReasons: { i1: { reason: 'CrashLoopBackOff' } } });
    expect(crashLoop.initContainerStatuses![0]!.ready).toBe(false);
    const done = computePodStatus(pod, [rs('i1', 'exited'), rs('i2', 'exited'), rs('s', 'running'), rs('a', 'running')], { s0: { ready: true, started: true } }, base);
    expect(done.initContainerStatuses!.map((s) => s.ready)).toEqual([true, true, true]);
    expect(done.initContainerStatuses![0]!.started).toBe(false);
    const sideUnready = computePodStatus(pod, [rs('i1', 'exited'), rs('i2', 'exited'), rs('s', 'running'), rs('a', 'running')], { s0: { ready: false, started: true } }, base);
    expect(sideUnready.initContainerStatuses![2]!.ready).toBe(false);
    expect(cond(sideUnready, 'Ready').message).toBe('containers with unready status: [s]');
  });
  it('readiness gates: Ready False (ReadinessGatesNotReady) while the containers are ready; ContainersReady True', () => {
    const pod = mkPod('Always', [c('a')]);
    pod.spec.readinessGates = [{ conditionType: 'example.com/g1' }];
    const s = computePodStatus(pod, [rs('a', 'running')], {}, base);
    expect(cond(s, 'ContainersReady').status).toBe('True');
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'ReadinessGatesNotReady', message: 'corresponding condition of pod readiness gate "example.com/g1" does not exist.' });
    const unready = computePodStatus(pod, [rs('a', 'running')], { a0: { ready: false, started: true } }, base);
    expect(cond(unready, 'Ready')).toMatchObject({ status: 'False', reason: 'ContainersNotReady' });
  });
  it('sidecar not started keeps the pod Pending; terminal phase sticks', () => {
    const pod = mkPod('Never', [c('a')], [c('s', { restartPolicy: 'Always', startupProbe: { exec: { command: ['true'] } } })]);
    const s = computePodStatus(pod, [rs('s', 'running')], { s0: { ready: false, started: false } }, base);
    expect(s.phase).toBe('Pending');
    // kubelet: still Running while the sidecar runs after the app container finished
    const stopping = computePodStatus(pod, [rs('s', 'running'), rs('a', 'exited')], { s0: { ready: true, started: true } }, base);
    expect(stopping.phase).toBe('Running');
    const done = computePodStatus(pod, [rs('s', 'exited', { exitCode: 137, signal: 'SIGTERM' }), rs('a', 'exited')], {}, base);
    expect(done.phase).toBe('Succeeded');
    expect(cond(done, 'Ready').reason).toBe('PodCompleted');
    const after = computePodStatus(pod, [], {}, { ...base, previous: done });
    expect(after.phase).toBe('Succeeded');
  });
  describe('phase with container restartPolicy / restartPolicyRules (getPhase, ContainerRestartRules)', () => {
    const on42: Partial<Container> = { restartPolicy: 'Never', restartPolicyRules: [{ action: 'Restart', exitCodes: { operator: 'In', values: [42] } }] };
    const crashLoop = { waitingReasons: { a: { reason: 'CrashLoopBackOff', message: 'back-off 10s' } } };
    const cases: [string, Pod, ContainerStatus[], Record<string, unknown>, string][] = [
      ['Never pod, rule Restart on 42: exited 42 → Running (restarting)', mkPod('Never', [c('a', on42)]), [rs('a', 'exited', { exitCode: 42 })], {}, 'Running'],
      ['… in back-off → Running', mkPod('Never', [c('a', on42)]), [rs('a', 'exited', { exitCode: 42 })], crashLoop, 'Running'],
      ['… then exited 0 → Succeeded', mkPod('Never', [c('a', on42)]), [rs('a', 'exited', { attempt: 1 })], {}, 'Succeeded'],
      ['… exited 1 (no rule) → Failed', mkPod('Never', [c('a', on42)]), [rs('a', 'exited', { exitCode: 1 })], {}, 'Failed'],
      ['Always pod, container Never exited 0 → Succeeded', mkPod('Always', [c('a', { restartPolicy: 'Never' })]), [rs('a', 'exited')], {}, 'Succeeded'],
      ['Always pod, container Never exited 1 → Failed', mkPod('Always', [c('a', { restartPolicy: 'Never' })]), [rs('a', 'exited', { exitCode: 1 })], {}, 'Failed'],
      ['Always pod, one container Never done, one Always exited → Running', mkPod('Always', [c('a', { restartPolicy: 'Never' }), c('b')]), [rs('a', 'exited'), rs('b', 'exited')], {}, 'Running'],
      ['Never pod, container OnFailure exited 1 → Running (restarting)', mkPod('Never', [c('a', { restartPolicy: 'OnFailure' })]), [rs('a', 'exited', { exitCode: 1 })], {}, 'Running'],
      ['Never pod, container Always exited 0 → Running', mkPod('Never', [c('a', { restartPolicy: 'Always' })]), [rs('a', 'exited')], {}, 'Running'],
      ['terminal pod: restartable or not, Failed on a failure', mkPod('Never', [c('a', on42)]), [rs('a', 'exited', { exitCode: 42 })], { podIsTerminal: true }, 'Failed'],
      ['Always pod, init Never failed → Failed', mkPod('Always', [c('a')], [c('i', { restartPolicy: 'Never' })]), [rs('i', 'exited', { exitCode: 1 })], {}, 'Failed'],
      ['Always pod, init Never + rule: exit 42 → Pending (retrying)', mkPod('Always', [c('a')], [c('i', on42)]), [rs('i', 'exited', { exitCode: 42 })], {}, 'Pending'],
      ['Never pod, init OnFailure failed → Pending (retrying)', mkPod('Never', [c('a')], [c('i', { restartPolicy: 'OnFailure' })]), [rs('i', 'exited', { exitCode: 1 })], {}, 'Pending'],
      ['Never pod, init OnFailure in back-off → Pending', mkPod('Never', [c('a')], [c('i', { restartPolicy: 'OnFailure' })]), [rs('i', 'exited', { exitCode: 1 })], { waitingReasons: { i: { reason: 'CrashLoopBackOff' } } }, 'Pending'],
    ];
    for (const [name, pod, st, o, phase] of cases) it(name, () => expect(computePodStatus(pod, st, {}, { ...base, ...o }).phase).toBe(phase));
  });
});
