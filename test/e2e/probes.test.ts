// Probe timing, restart policies, sidecars and lifecycle hooks through the
// daemon (short periods; back-off 0.5 s doubling to 4 s via the test flags).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BUSYBOX, makeEnv, run, sleep, type Env } from './helpers.js';
import { api, cstatus, startDaemon, stopAndClean, waitPod, type DaemonHandle } from './daemon-helpers.js';

let env: Env;
let daemon: DaemonHandle;
beforeAll(async () => {
  env = makeEnv();
  daemon = await startDaemon(env);
});
afterAll(() => stopAndClean(daemon, env));

async function create(yaml: string): Promise<void> {
  const r = await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods', yaml, 'application/yaml');
  if (r.status !== 201) throw new Error(`create failed: ${r.body}`);
}
async function exec(pod: string, command: string[], container?: string): Promise<number> {
  const r = await api(daemon.socket, 'POST', `/api/v1/namespaces/default/pods/${pod}/exec`, JSON.stringify({ command, container }));
  if (r.status !== 200) throw new Error(`exec failed: ${r.body}`);
  return r.json.exitCode;
}
async function events(pod: string): Promise<any[]> {
  return (await api(daemon.socket, 'GET', `/api/v1/events?fieldSelector=involvedObject.name=${pod}`)).json.items;
}
const cond = (p: any, t: string) => p.status.conditions.find((c: any) => c.type === t)?.status;

describe('probes', () => {
  it('liveness: restarts the container after failureThreshold × periodSeconds of failures, with Unhealthy and Killing events', async () => {
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: live }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "touch /tmp/ok; exec sleep 1000"]
      livenessProbe: { exec: { command: ["test", "-f", "/tmp/ok"] }, periodSeconds: 1, failureThreshold: 3 }
`);
    await waitPod(daemon.socket, 'live', (p) => cstatus(p, 'c')?.state?.running);
    await sleep(1500);
    expect(cstatus(await waitPod(daemon.socket, 'live', () => true), 'c').restartCount).toBe(0);
    const t0 = Date.now();
    expect(await exec('live', ['rm', '/tmp/ok'])).toBe(0);
    const p = await waitPod(daemon.socket, 'live', (x) => cstatus(x, 'c')?.restartCount === 1 && cstatus(x, 'c')?.state?.running, 15_000);
    const dt = Date.now() - t0;
    expect(dt).toBeGreaterThanOrEqual(2000); // 3 failures 1 s apart: at least 2 s after the first failing probe
    expect(dt).toBeLessThan(9000);
    expect(cstatus(p, 'c').lastState.terminated.exitCode).toBe(137);
    const ev = await events('live');
    expect(ev.find((e) => e.reason === 'Unhealthy')?.message).toMatch(/^Liveness probe failed/);
    expect(ev.find((e) => e.reason === 'Unhealthy')?.count).toBeGreaterThanOrEqual(3);
    expect(ev.find((e) => e.reason === 'Killing')?.message).toMatch(/failed liveness probe, will be restarted/);
  });

  it('readiness: http probe flips Ready and ContainersReady both ways without restarting', async () => {
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: ready }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: web
      image: ${BUSYBOX}
      command: ["testprog", "serve-http", "8080", "--ready-file", "/tmp/ready"]
      readinessProbe: { httpGet: { path: /readyz, port: 8080 }, periodSeconds: 1, failureThreshold: 1 }
`);
    let p = await waitPod(daemon.socket, 'ready', (x) => cstatus(x, 'web')?.state?.running);
    await sleep(1500);
    p = await waitPod(daemon.socket, 'ready', () => true);
    expect(cond(p, 'Ready')).toBe('False');
    expect(cstatus(p, 'web').ready).toBe(false);
    await exec('ready', ['touch', '/tmp/ready']);
    p = await waitPod(daemon.socket, 'ready', (x) => cond(x, 'Ready') === 'True', 5000);
    expect(cond(p, 'ContainersReady')).toBe('True');
    await exec('ready', ['rm', '/tmp/ready']);
    p = await waitPod(daemon.socket, 'ready', (x) => cond(x, 'Ready') === 'False', 5000);
    expect(cstatus(p, 'web').restartCount).toBe(0);
    expect((await events('ready')).some((e) => e.reason === 'Unhealthy' && /^Readiness probe failed: HTTP probe failed with statuscode: 500/.test(e.message))).toBe(true);
  });

  it('startup probe holds the liveness probe until it succeeds', async () => {
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: startup }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "exec sleep 1000"]
      startupProbe: { exec: { command: ["test", "-f", "/tmp/started"] }, periodSeconds: 1, failureThreshold: 30 }
      livenessProbe: { exec: { command: ["false"] }, periodSeconds: 1, failureThreshold: 1 }
`);
    await waitPod(daemon.socket, 'startup', (x) => cstatus(x, 'c')?.state?.running);
    await sleep(3000);
    let p = await waitPod(daemon.socket, 'startup', () => true);
    expect(cstatus(p, 'c').restartCount).toBe(0); // liveness (always failing) did not run yet
    expect(cstatus(p, 'c').started).toBe(false);
    await exec('startup', ['touch', '/tmp/started']);
    p = await waitPod(daemon.socket, 'startup', (x) => cstatus(x, 'c')?.restartCount >= 1, 10_000);
    expect((await events('startup')).some((e) => /Liveness probe failed/.test(e.message))).toBe(true);
  });
});

describe('restart policies', () => {
  it('Always restarts a container that exits 0, with growing back-off and CrashLoopBackOff', async () => {
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: always }
spec:
  restartPolicy: Always
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "echo hi"] }
`);
    const p = await waitPod(daemon.socket, 'always', (x) => cstatus(x, 'c')?.restartCount >= 3 && cstatus(x, 'c')?.state?.waiting?.reason === 'CrashLoopBackOff', 20_000);
    const c = cstatus(p, 'c');
    expect(c.lastState.terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(c.state.waiting.message).toMatch(/^back-off [1-4]s restarting failed container=c pod=always_default/);
    expect(p.status.phase).toBe('Running');
    const backoff = (await events('always')).find((e) => e.reason === 'BackOff');
    expect(backoff.count).toBeGreaterThanOrEqual(2);
  });

  it('Never leaves a failed container failed (phase Failed, reason Error); OnFailure does not restart exit 0 (Succeeded)', async () => {
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: never }
spec:
  restartPolicy: Never
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "exit 3"] }
`);
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: onfailure }
spec:
  restartPolicy: OnFailure
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "exit 0"] }
`);
    const n = await waitPod(daemon.socket, 'never', (x) => x.status.phase === 'Failed');
    expect(cstatus(n, 'c').state.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
    expect(cstatus(n, 'c').restartCount).toBe(0);
    const o = await waitPod(daemon.socket, 'onfailure', (x) => x.status.phase === 'Succeeded');
    expect(cstatus(o, 'c').restartCount).toBe(0);
    await sleep(1000);
    expect(cstatus(await waitPod(daemon.socket, 'onfailure', () => true), 'c').restartCount).toBe(0);
  });
});

describe('describe pod', () => {
  it('explains a crash-looping container: last state, exit code meaning, last log lines, BackOff events', async () => {
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: crashy }
spec:
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "echo loading config; echo config is broken >&2; exit 3"]
      livenessProbe: { exec: { command: ["true"] }, periodSeconds: 7 }
`);
    await waitPod(daemon.socket, 'crashy', (x) => cstatus(x, 'c')?.state?.waiting?.reason === 'CrashLoopBackOff');
    // The container flips between back-off and a short run (back-off 0.5–4 s here): a state seen through a
    // fresh CLI process is retried until one observation lands inside a back-off window.
    const settle = { timeout: 30_000, interval: 100 };
    await vi.waitFor(async () => {
      const d = await run([...env.globals, 'describe', 'pod', 'crashy', '--socket', daemon.socket]);
      expect(d.code).toBe(0);
      expect(d.stdout).toMatch(/State:\s+Waiting\n\s+Reason:\s+CrashLoopBackOff/);
      expect(d.stdout).toMatch(/Last State:\s+Terminated\n\s+Reason:\s+Error\n\s+Exit Code:\s+3 \(the process exited with an error\)/);
      expect(d.stdout).toMatch(/Liveness:\s+exec \[true\] delay=0s timeout=1s period=7s #success=1 #failure=3/);
      expect(d.stdout).toMatch(/Last Log Lines:\n\s+loading config\n\s+config is broken/);
      expect(d.stdout).toMatch(/Warning\s+BackOff/);
    }, settle);
    const prev = await run([...env.globals, 'logs', 'crashy', '-p', '--socket', daemon.socket]);
    expect(prev.stdout).toBe('loading config\nconfig is broken\n');
    // -p: the current container may be a fresh attempt that has not written yet when the back-off ends mid-test;
    // every terminated attempt wrote the same two lines.
    const ts = await run([...env.globals, 'logs', 'crashy', '-p', '--timestamps', '--tail', '1', '--socket', daemon.socket]);
    expect(ts.stdout).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z config is broken\n$/);
    const nope = await run([...env.globals, 'logs', 'crashy', '-c', 'nope', '--socket', daemon.socket]);
    expect(nope.code).not.toBe(0);
    expect(nope.stderr).toContain('container nope is not valid for pod crashy');
    await vi.waitFor(async () => {
      const g = await run([...env.globals, 'get', 'pods', 'crashy', '--socket', daemon.socket]);
      expect(g.stdout).toMatch(/crashy\s+0\/1\s+CrashLoopBackOff\s+\d+ \(\d+s ago\)/);
    }, settle);
  });
});

describe('image pulls', () => {
  it('ErrImagePull then ImagePullBackOff for an image that cannot be pulled', async () => {
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: nopull }
spec:
  containers:
    - { name: c, image: 127.0.0.1:1/nodelet/missing:v1, imagePullPolicy: IfNotPresent }
`);
    const seen = new Set<string>();
    await waitPod(daemon.socket, 'nopull', (x) => {
      const r = cstatus(x, 'c')?.state?.waiting?.reason;
      if (r) seen.add(r);
      return seen.has('ImagePullBackOff');
    }, 30_000);
    expect(seen.has('ErrImagePull')).toBe(true);
    const ev = await events('nopull');
    expect(ev.some((e) => e.reason === 'Failed' && /Failed to pull image "127.0.0.1:1\/nodelet\/missing:v1"/.test(e.message))).toBe(true);
    expect(ev.some((e) => e.reason === 'BackOff' && /Back-off pulling image/.test(e.message))).toBe(true);
  });
});

describe('sidecars and hooks', () => {
  it('starts a native sidecar before the app containers; postStart runs before the container counts as running', async () => {
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: sidecar }
spec:
  terminationGracePeriodSeconds: 1
  volumes: [{ name: w, emptyDir: {} }]
  initContainers:
    - name: side
      image: ${BUSYBOX}
      restartPolicy: Always
      command: ["sh", "-c", "echo side >> /w/order; exec sleep 1000"]
      volumeMounts: [{ name: w, mountPath: /w }]
  containers:
    - name: app
      image: ${BUSYBOX}
      command: ["sh", "-c", "echo app >> /w/order; exec sleep 1000"]
      volumeMounts: [{ name: w, mountPath: /w }]
      lifecycle:
        postStart: { exec: { command: ["sh", "-c", "echo hook >> /w/order"] } }
`);
    const p = await waitPod(daemon.socket, 'sidecar', (x) => cstatus(x, 'app')?.state?.running);
    expect(p.status.initContainerStatuses[0].state.running).toBeTruthy();
    const r = await api(daemon.socket, 'POST', '/api/v1/namespaces/default/pods/sidecar/exec', JSON.stringify({ command: ['cat', '/w/order'], container: 'app' }));
    // the sidecar ran first; the app and its hook after it (the hook runs alongside the app's command)
    expect(r.json.stdout.split('\n').filter(Boolean).sort()).toEqual(['app', 'hook', 'side']);
    expect(r.json.stdout.split('\n')[0]).toBe('side');
    expect(r.json.stdout).toContain('hook');
  });

  it('a failing postStart hook kills the container (FailedPostStartHook) and it is restarted', async () => {
    await create(`
apiVersion: v1
kind: Pod
metadata: { name: badhook }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "exec sleep 1000"]
      lifecycle:
        postStart: { exec: { command: ["sh", "-c", "echo broken hook; exit 1"] } }
`);
    await waitPod(daemon.socket, 'badhook', (x) => cstatus(x, 'c')?.restartCount >= 1, 15_000);
    const ev = await events('badhook');
    expect(ev.find((e) => e.reason === 'FailedPostStartHook')?.message).toMatch(/broken hook/);
  });
});
