// The node agent without root: pod workers, sync, prober and status managers
// and the pod store driven against a fake runtime that records calls and
// fails on demand. Real timers with short back-offs and 1 s probe periods.
import { afterEach, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { NodeAgent, type NodeAgentDeps } from '../../../src/agent/node-agent.js';
import type { Prober } from '../../../src/agent/prober-manager.js';
import type { Pod } from '../../../src/pod/api-types.js';
import type { ProbeResultKind } from '../../../src/pod/probe.js';
import { FakeImages, FakeRuntime } from '../../helpers/fake-runtime.js';

const dirs: string[] = [];
const agents: NodeAgent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'nodelet-agent-'));
  dirs.push(d);
  return d;
}

/** Probe results the test sets per container name and kind; every run is counted. */
class ScriptedProber {
  results = new Map<string, ProbeResultKind>();
  runs: { container: string; kind: string }[] = [];
  constructor(private readonly rt: FakeRuntime) {}
  readonly fn: Prober = async (probe, ctx) => {
    const name = this.rt.containers.get(ctx.containerId)?.name ?? '?';
    const kind = probe === this.rt.containers.get(ctx.containerId)?.config ? '?' : kindOf(probe);
    this.runs.push({ container: name, kind });
    const r = this.results.get(`${name}/${kind}`) ?? 'success';
    return { result: r, output: r === 'success' ? '' : `scripted ${kind} failure` };
  };
}
// probes are told apart by a marker the tests put in their exec command
const kindOf = (p: { exec?: { command?: string[] } }) => p.exec?.command?.[0] ?? '?';

function makeAgent(rt: FakeRuntime, root: string, extra: Partial<NodeAgentDeps> = {}) {
  const volumes = { setUps: [] as string[], tearDowns: [] as string[], async setUp(p: Pod) { this.setUps.push(p.metadata.uid!); return {}; }, async tearDown(uid: string) { this.tearDowns.push(uid); } };
  const images = new FakeImages();
  const a = new NodeAgent({ root, runRoot: path.join(root, 'run'), runtime: rt, images, volumes, backoff: { initialMs: 200, maxMs: 800 }, hostIPs: ['192.0.2.10'], nodeName: 'node-a', ...extra });
  agents.push(a);
  return { agent: a, volumes, images };
}

let uidSeq = 0;
function pod(spec: Partial<Pod['spec']> & { containers: Pod['spec']['containers'] }, name = 'p'): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', uid: `00000000-0000-4000-8000-${String(++uidSeq).padStart(12, '0')}` }, spec: { restartPolicy: 'Always', terminationGracePeriodSeconds: 5, ...spec } } as Pod;
}

const cs = (a: NodeAgent, uid: string, name: string) => [...(a.getPod(uid)?.status.initContainerStatuses ?? []), ...(a.getPod(uid)?.status.containerStatuses ?? [])].find((s) => s.name === name);
const wait = (fn: () => void, timeout = 5000) => vi.waitFor(fn, { timeout, interval: 20 });
const probe = (kind: string, extra: Record<string, unknown> = {}) => ({ exec: { command: [kind] }, periodSeconds: 1, failureThreshold: 1, ...extra });

/** A new agent running a pod whose container `web` fails its liveness probe (every second, threshold 1). */
function failingLiveness() {
  const rt = new FakeRuntime();
  const prober = new ScriptedProber(rt);
  const { agent } = makeAgent(rt, tmp(), { prober: prober.fn });
  const p = pod({ containers: [{ name: 'web', image: 'img:1', livenessProbe: probe('liveness') } as never] });
  prober.results.set('web/liveness', 'failure');
  agent.addPod(p);
  return { rt, prober, agent, p };
}

describe('NodeAgent sync (fake runtime)', () => {
  it('runs a pod: sandbox, image, volumes, container started, Running; status versions only move on change', async () => {
    const rt = new FakeRuntime();
    const { agent, volumes } = makeAgent(rt, tmp());
    const p = pod({ containers: [{ name: 'web', image: 'img:1' }] });
    const changes: string[] = [];
    agent.on('pod', (c) => changes.push(`${c.type}:${c.pod.status.phase}`));
    agent.addPod(p);
    await wait(() => expect(agent.getPod(p.metadata.uid!)?.status.phase).toBe('Running'));
    expect(rt.calls.map((c) => c.op).filter((o) => o !== 'listPodSandboxes')).toEqual(['runPodSandbox', 'createContainer', 'startContainer']);
    expect(volumes.setUps).toEqual([p.metadata.uid]);
    expect(cs(agent, p.metadata.uid!, 'web')?.ready).toBe(true);
    const v = agent.getPod(p.metadata.uid!)!.resourceVersion;
    const n = changes.length;
    agent['workers'].update(p.metadata.uid!); // a sync with nothing new
    await agent.whenIdle(p.metadata.uid!);
    expect(agent.getPod(p.metadata.uid!)!.resourceVersion).toBe(v);
    expect(changes.length).toBe(n);
    expect(changes[0]).toBe('ADDED:Pending');
  });

  it('a crashing container goes through CrashLoopBackOff with growing back-off; the restart count grows', async () => {
    const rt = new FakeRuntime();
    const { agent } = makeAgent(rt, tmp());
    rt.exitOnStart.set('crash', 1);
    const p = pod({ containers: [{ name: 'crash', image: 'img:1' }] });
    agent.addPod(p);
    await wait(() => expect(rt.byName('crash').length).toBeGreaterThanOrEqual(4), 8000);
    const starts = rt.calls.filter((c) => c.op === 'startContainer').map((c) => c.id);
    expect(new Set(starts).size).toBe(starts.length); // a new container per attempt
    const attempts = rt.byName('crash').map((c) => c.attempt);
    expect(attempts.slice(0, 4)).toEqual([0, 1, 2, 3]);
    // as kubelet: the first restart is immediate, then the waits grow (200 ms, 400 ms): finishedAt → next createdAt
    const byAttempt = rt.byName('crash');
    const gap = (i: number) => Date.parse(byAttempt[i + 1]!.createdAt) - Date.parse(byAttempt[i]!.finishedAt!);
    expect(gap(0)).toBeLessThan(150);
    expect(gap(1)).toBeGreaterThanOrEqual(190);
    expect(gap(2)).toBeGreaterThanOrEqual(390);
    await wait(() => expect(cs(agent, p.metadata.uid!, 'crash')?.state.waiting?.reason).toBe('CrashLoopBackOff'));
    expect(cs(agent, p.metadata.uid!, 'crash')!.restartCount).toBeGreaterThanOrEqual(2);
    expect(agent.events({ uid: p.metadata.uid! }).some((e) => e.reason === 'BackOff')).toBe(true);
  });

  it('a failed liveness probe kills and restarts the container, with Unhealthy and Killing events', async () => {
    const { rt, prober, agent, p } = failingLiveness();
    await wait(() => expect(rt.byName('web').length).toBeGreaterThanOrEqual(2), 6000);
    const first = rt.byName('web')[0]!;
    expect(first.state).toBe('exited');
    expect(rt.calls.find((c) => c.op === 'stopContainer' && c.id === first.id)?.args).toEqual({ timeoutSeconds: 5 });
    const ev = agent.events({ uid: p.metadata.uid! });
    expect(ev.some((e) => e.reason === 'Unhealthy' && e.message.startsWith('Liveness probe failed'))).toBe(true);
    expect(ev.some((e) => e.reason === 'Killing' && e.message.includes('failed liveness probe'))).toBe(true);
    prober.results.set('web/liveness', 'success');
    await wait(() => expect(cs(agent, p.metadata.uid!, 'web')?.restartCount).toBeGreaterThanOrEqual(1));
  });

  it('restarts after liveness kills go through CrashLoopBackOff, as after crashes', async () => {
    const { rt, agent, p } = failingLiveness();
    await wait(() => expect(cs(agent, p.metadata.uid!, 'web')?.state.waiting?.reason).toBe('CrashLoopBackOff'), 8000);
    const byAttempt = rt.byName('web');
    expect(byAttempt.length).toBeGreaterThanOrEqual(2);
    // the second restart waited for the back-off (200 ms here) after the killed container exited
    if (byAttempt.length >= 3) expect(Date.parse(byAttempt[2]!.createdAt) - Date.parse(byAttempt[1]!.finishedAt!)).toBeGreaterThanOrEqual(190);
    expect(agent.events({ uid: p.metadata.uid! }).some((e) => e.reason === 'BackOff')).toBe(true);
  });

  it('init containers run one after another before the app; a sidecar keeps running beside it', async () => {
    const rt = new FakeRuntime();
    const { agent } = makeAgent(rt, tmp());
    rt.exitOnStart.set('init-1', 0);
    rt.exitOnStart.set('init-2', 0);
    const p = pod({
      initContainers: [{ name: 'init-1', image: 'i:1' }, { name: 'side', image: 's:1', restartPolicy: 'Always' }, { name: 'init-2', image: 'i:1' }],
      containers: [{ name: 'app', image: 'a:1' }],
    } as never);
    agent.addPod(p);
    await wait(() => expect(agent.getPod(p.metadata.uid!)?.status.phase).toBe('Running'));
    await wait(() => expect(rt.running('app').length).toBe(1));
    const order = rt.calls.filter((c) => c.op === 'startContainer').map((c) => c.name);
    expect(order).toEqual(['init-1', 'side', 'init-2', 'app']);
    expect(rt.running('side').length).toBe(1);
  });

  it('a failing init container under restartPolicy Never fails the pod and the app never starts', async () => {
    const rt = new FakeRuntime();
    const { agent } = makeAgent(rt, tmp());
    rt.exitOnStart.set('init', 3);
    const p = pod({ restartPolicy: 'Never', initContainers: [{ name: 'init', image: 'i:1' }], containers: [{ name: 'app', image: 'a:1' }] });
    agent.addPod(p);
    await wait(() => expect(agent.getPod(p.metadata.uid!)?.status.phase).toBe('Failed'));
    expect(rt.byName('app')).toEqual([]);
  });

  it('graceful deletion runs preStop, stops with the grace period (sidecars last), then removes sandbox and volumes', async () => {
    const rt = new FakeRuntime();
    const { agent, volumes } = makeAgent(rt, tmp());
    const p = pod({
      initContainers: [{ name: 'side', image: 's:1', restartPolicy: 'Always' }],
      containers: [{ name: 'web', image: 'img:1', lifecycle: { preStop: { exec: { command: ['pre-stop'] } } } }],
    } as never);
    const kinds: string[] = [];
    agent.on('pod', (c) => kinds.push(c.type));
    agent.addPod(p);
    await wait(() => expect(rt.running().length).toBe(2));
    await agent.deletePod(p.metadata.uid!, 7);
    const ops = rt.calls.filter((c) => ['execSync', 'stopContainer', 'removePodSandbox'].includes(c.op)).map((c) => `${c.op}:${c.name ?? ''}`);
    expect(ops[0]).toBe('execSync:web');
    expect(ops.indexOf('stopContainer:web')).toBeLessThan(ops.indexOf('stopContainer:side'));
    expect(ops.at(-1)).toBe('removePodSandbox:');
    expect(rt.calls.find((c) => c.op === 'execSync')?.args).toEqual(['pre-stop']);
    expect(rt.calls.find((c) => c.op === 'stopContainer' && c.name === 'side')?.args).toEqual({ timeoutSeconds: 7 });
    expect(volumes.tearDowns).toEqual([p.metadata.uid]);
    expect(agent.getPod(p.metadata.uid!)).toBeUndefined();
    expect(kinds.at(-1)).toBe('DELETED');
    expect(fs.existsSync(path.join(agent['store'].dir, p.metadata.uid!))).toBe(false);
  });

  it('a preStop httpGet without a host goes to the pod IP (the sandbox\'s), not to 127.0.0.1', async () => {
    // the pod's "IP" is 127.0.0.2 (loopback, but not where a hostless request falls back to)
    const hits: string[] = [];
    const srv = http.createServer((req, res) => { hits.push(`${req.socket.localAddress} ${req.url}`); res.end('ok'); });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.2', r));
    try {
      const port = (srv.address() as { port: number }).port;
      const rt = new FakeRuntime();
      const { agent } = makeAgent(rt, tmp());
      const p = pod({ containers: [{ name: 'web', image: 'img:1', lifecycle: { preStop: { httpGet: { path: '/echo?msg=prestop', port } } } }] } as never);
      agent.addPod(p);
      await wait(() => expect(rt.running('web').length).toBe(1));
      for (const sb of rt.sandboxes.values()) sb.ips = ['127.0.0.2'];
      await agent.deletePod(p.metadata.uid!, 5);
      expect(hits).toEqual(['127.0.0.2 /echo?msg=prestop']);
      expect(agent.events({ uid: p.metadata.uid! }).some((e) => e.reason === 'FailedPreStopHook')).toBe(false);
    } finally {
      srv.close();
    }
  });

  it('a sync that throws records FailedSync and is retried; a sandbox that fails is retried with FailedCreatePodSandBox', async () => {
    const rt = new FakeRuntime();
    const { agent } = makeAgent(rt, tmp());
    rt.failNext('listPodSandboxes', new Error('runtime unreachable'));
    rt.failNext('runPodSandbox', new Error('cni exploded'));
    const p = pod({ containers: [{ name: 'web', image: 'img:1' }] });
    agent.addPod(p);
    await wait(() => expect(agent.getPod(p.metadata.uid!)?.status.phase).toBe('Running'), 8000);
    expect(agent.events({ uid: p.metadata.uid! }).some((e) => e.reason === 'FailedSync' && e.message.includes('runtime unreachable'))).toBe(true);
    expect(agent.events({ uid: p.metadata.uid! }).some((e) => e.reason === 'FailedCreatePodSandBox' && e.message.includes('cni exploded'))).toBe(true);
    expect(rt.calls.filter((c) => c.op === 'runPodSandbox').length).toBe(2);
  });

  it('an updated image restarts that container with the new image; labels change without a restart', async () => {
    const rt = new FakeRuntime();
    const { agent } = makeAgent(rt, tmp());
    const p = pod({ containers: [{ name: 'web', image: 'img:1' }, { name: 'other', image: 'o:1' }] });
    agent.addPod(p);
    await wait(() => expect(rt.running().length).toBe(2));
    agent.updatePod({ ...p, metadata: { ...p.metadata, labels: { a: 'b' } }, spec: { ...p.spec, containers: [{ name: 'web', image: 'img:2' }, { name: 'other', image: 'o:1' }] } });
    await wait(() => expect(rt.running('web')[0]?.imageRef).toBe('img:2'));
    expect(rt.byName('other').length).toBe(1);
    expect(agent.getPod(p.metadata.uid!)!.pod.metadata.labels).toEqual({ a: 'b' });
    expect(agent.events({ uid: p.metadata.uid! }).some((e) => e.reason === 'Killing' && e.message === 'Container web definition changed, will be restarted')).toBe(true);
  });
});

describe('NodeAgent downward API volumes after a metadata update', () => {
  /** volumes that record what each projection saw: the labels and annotations of the pod handed to it */
  function recordingVolumes() {
    return {
      seen: [] as { op: string; labels?: Record<string, string>; annotations?: Record<string, string> }[],
      async setUp(p: Pod) { this.seen.push({ op: 'setUp', labels: p.metadata.labels, annotations: p.metadata.annotations }); return { info: '/v/info' }; },
      async update(p: Pod) { this.seen.push({ op: 'update', labels: p.metadata.labels, annotations: p.metadata.annotations }); },
      async tearDown() {},
    };
  }
  const withVolume = (volume: Record<string, unknown>) => pod({ containers: [{ name: 'web', image: 'img:1', volumeMounts: [{ name: 'info', mountPath: '/etc/podinfo' }] }], volumes: [{ name: 'info', ...volume }] } as never);

  it('a label change re-projects a downwardAPI volume showing metadata.labels, with the new labels', async () => {
    const rt = new FakeRuntime();
    const volumes = recordingVolumes();
    const { agent } = makeAgent(rt, tmp(), { volumes });
    const p = withVolume({ downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } });
    p.metadata.labels = { key1: 'value1' };
    agent.addPod(p);
    await wait(() => expect(rt.running('web').length).toBe(1));
    agent.updatePod({ ...p, metadata: { ...p.metadata, labels: { key1: 'value1', key3: 'value3' } } });
    await wait(() => expect(volumes.seen.filter((s) => s.op === 'update').map((s) => s.labels)).toEqual([{ key1: 'value1', key3: 'value3' }]));
    expect(rt.byName('web').length).toBe(1); // no restart
  });

  it('an annotation change re-projects a projected volume whose downwardAPI source shows one annotation', async () => {
    const rt = new FakeRuntime();
    const volumes = recordingVolumes();
    const { agent } = makeAgent(rt, tmp(), { volumes });
    const p = withVolume({ projected: { sources: [{ downwardAPI: { items: [{ path: 'builder', fieldRef: { fieldPath: "metadata.annotations['builder']" } }] } }] } });
    p.metadata.annotations = { builder: 'bar' };
    agent.addPod(p);
    await wait(() => expect(rt.running('web').length).toBe(1));
    agent.updatePod({ ...p, metadata: { ...p.metadata, annotations: { builder: 'foo' } } });
    await wait(() => expect(volumes.seen.filter((s) => s.op === 'update').map((s) => s.annotations?.builder)).toEqual(['foo']));
  });

  it('nothing is projected again when the volumes do not show labels or annotations, or the metadata did not change', async () => {
    const rt = new FakeRuntime();
    const volumes = recordingVolumes();
    const { agent } = makeAgent(rt, tmp(), { volumes });
    const p = withVolume({ downwardAPI: { items: [{ path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } });
    agent.addPod(p);
    await wait(() => expect(rt.running('web').length).toBe(1));
    agent.updatePod({ ...p, metadata: { ...p.metadata, labels: { a: 'b' } } });
    await agent.whenIdle(p.metadata.uid!);
    const q = withVolume({ downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } });
    agent.addPod(q);
    await wait(() => expect(rt.running('web').length).toBe(2));
    agent.updatePod({ ...q, spec: { ...q.spec, activeDeadlineSeconds: 3600 } });
    await agent.whenIdle(q.metadata.uid!);
    expect(volumes.seen.filter((s) => s.op === 'update')).toEqual([]);
  });
});

describe('NodeAgent image pulls', () => {
  it('ErrImagePull, then ImagePullBackOff until the back-off expires, then a new pull that succeeds', async () => {
    const rt = new FakeRuntime();
    const { agent, images } = makeAgent(rt, tmp());
    images.missing.add('reg/x:1');
    images.pullError = new Error('connection refused');
    const p = pod({ containers: [{ name: 'c', image: 'reg/x:1' }] });
    const reasons: string[] = [];
    agent.on('pod', (c) => {
      const r = c.pod.status.containerStatuses?.[0]?.state.waiting?.reason;
      if (r && reasons.at(-1) !== r) reasons.push(r);
    });
    agent.addPod(p);
    await wait(() => expect(reasons).toContain('ImagePullBackOff'));
    expect(reasons.indexOf('ErrImagePull')).toBeGreaterThanOrEqual(0);
    expect(reasons.indexOf('ErrImagePull')).toBeLessThan(reasons.indexOf('ImagePullBackOff'));
    images.pullError = undefined;
    await wait(() => expect(agent.getPod(p.metadata.uid!)?.status.phase).toBe('Running'));
    expect(images.pulls.length).toBeGreaterThanOrEqual(2);
    const ev = agent.events({ uid: p.metadata.uid! });
    expect(ev.some((e) => e.reason === 'Failed' && e.message === 'Failed to pull image "reg/x:1": connection refused')).toBe(true);
    expect(ev.some((e) => e.reason === 'BackOff' && e.message === 'Back-off pulling image "reg/x:1"')).toBe(true);
  });
});

describe('NodeAgent recovery (a restarted daemon)', () => {
  it('re-adopts running containers: probes run again, readiness and restart counts kept, events kept, nothing restarted', async () => {
    const rt = new FakeRuntime();
    const root = tmp();
    const prober = new ScriptedProber(rt);
    const first = makeAgent(rt, root, { prober: prober.fn }).agent;
    rt.exitOnStartTimes.set('web', [1, 1]); // crash once, then run
    const p = pod({ containers: [{ name: 'web', image: 'img:1', readinessProbe: probe('readiness'), livenessProbe: probe('liveness') } as never] });
    first.addPod(p);
    await wait(() => expect(cs(first, p.metadata.uid!, 'web')?.ready).toBe(true), 6000);
    const restarts = cs(first, p.metadata.uid!, 'web')!.restartCount;
    expect(restarts).toBe(1);
    const eventsBefore = first.events({ uid: p.metadata.uid! }).map((e) => e.reason);
    await first.close();
    agents.splice(agents.indexOf(first), 1);

    const runsBefore = prober.runs.length;
    const calls = rt.calls.length;
    const second = makeAgent(rt, root, { prober: prober.fn }).agent;
    const recovered = second.recover();
    expect(recovered.map((v) => v.pod.metadata.uid)).toEqual([p.metadata.uid]);
    // the saved results count from the first sync: Ready stays True (no 0/1 blip), restart count kept
    await wait(() => expect(cs(second, p.metadata.uid!, 'web')?.ready).toBe(true));
    expect(cs(second, p.metadata.uid!, 'web')!.restartCount).toBe(restarts);
    // the probes run again
    await wait(() => expect(prober.runs.length).toBeGreaterThan(runsBefore + 1), 4000);
    // readiness can still flip: a failure after the restart turns it False
    prober.results.set('web/readiness', 'failure');
    await wait(() => expect(cs(second, p.metadata.uid!, 'web')?.ready).toBe(false), 4000);
    expect(rt.calls.slice(calls).filter((c) => ['createContainer', 'startContainer', 'stopContainer'].includes(c.op))).toEqual([]);
    // the events from before the restart are still there
    const after = second.events({ uid: p.metadata.uid! }).map((e) => e.reason);
    for (const r of new Set(eventsBefore)) expect(after).toContain(r);
  });

  it('a liveness failure after recovery restarts the container', async () => {
    const rt = new FakeRuntime();
    const root = tmp();
    const prober = new ScriptedProber(rt);
    const first = makeAgent(rt, root, { prober: prober.fn }).agent;
    const p = pod({ containers: [{ name: 'web', image: 'img:1', livenessProbe: probe('liveness') } as never] });
    first.addPod(p);
    await wait(() => expect(rt.running('web').length).toBe(1));
    await first.close();
    agents.splice(agents.indexOf(first), 1);
    const second = makeAgent(rt, root, { prober: prober.fn }).agent;
    second.recover();
    prober.results.set('web/liveness', 'failure');
    await wait(() => expect(rt.byName('web').length).toBeGreaterThanOrEqual(2), 10_000);
    expect(second.events({ uid: p.metadata.uid! }).some((e) => e.reason === 'Killing')).toBe(true);
  });

  it('a deletion interrupted by a restart is finished by the next agent', async () => {
    const rt = new FakeRuntime();
    const root = tmp();
    const first = makeAgent(rt, root).agent;
    const p = pod({ containers: [{ name: 'web', image: 'img:1' }] });
    first.addPod(p);
    await wait(() => expect(rt.running('web').length).toBe(1));
    // record the deletion, then "crash" before the worker runs it
    first['workers'].close();
    void first.deletePod(p.metadata.uid!, 3);
    await first.close();
    agents.splice(agents.indexOf(first), 1);
    expect(rt.running('web').length).toBe(1);
    const second = makeAgent(rt, root).agent;
    second.recover();
    await wait(() => expect(second.getPod(p.metadata.uid!)).toBeUndefined());
    expect(rt.running('web').length).toBe(0);
    expect(rt.sandboxes.size).toBe(0);
  });
});
