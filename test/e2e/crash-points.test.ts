// A daemon killed (SIGKILL) at any named instant of a container's life
// (src/sys/crash-point.ts) converges after a restart: the runtime's state (the
// shim's state.json/exit.json, container.json) wins over the agent's, exit codes
// are reported, restarts and back-off go on, nothing runs twice, and deleting
// the pods leaves nothing behind. Real daemon, runtime, cgroups and CNI.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX, leftovers, makeEnv, sleep, start, waitUntil, type Env } from './helpers.js';
import { api, cstatus, getPod, stopAndClean, waitPod, type DaemonHandle } from './daemon-helpers.js';

let env: Env | undefined;
let daemon: DaemonHandle | undefined;
let stopSampling: (() => void) | undefined;
afterEach(async () => {
  stopSampling?.();
  stopSampling = undefined;
  await stopAndClean(daemon, env);
  daemon = undefined;
  env = undefined;
});

/** daemon-helpers' startDaemon, with an environment for the child and short back-offs. */
async function startDaemon(e: Env, childEnv: Record<string, string> = {}): Promise<DaemonHandle> {
  const socket = path.join(e.dir, 'nodelet.sock');
  const manifestDir = path.join(e.dir, 'manifests');
  fs.mkdirSync(manifestDir, { recursive: true });
  const proc = start([...e.globals, 'daemon', ...e.nodeFlags, '--backoff-initial', '200', '--backoff-max', '800', '--socket', socket, '--manifest-dir', manifestDir, '--rescan', '1000'], { env: childEnv });
  await waitUntil(async () => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`daemon exited early:\n${proc.stderr()}`);
    return (await api(socket, 'GET', '/healthz').catch(() => undefined))?.status === 200;
  }, 20_000, `daemon socket ${socket}\n${proc.stderr()}`);
  return {
    proc, socket, manifestDir,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
      await proc.done;
    },
  };
}

const alwaysPod = `
apiVersion: v1
kind: Pod
metadata: { name: always }
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - { name: crash, image: ${BUSYBOX}, command: ["sh", "-c", "echo run; sleep 0.2; exit 1"] }
    - { name: steady, image: ${BUSYBOX}, command: ["sh", "-c", "exec sleep 1000"] }
`;
const neverPod = `
apiVersion: v1
kind: Pod
metadata: { name: never }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 2
  containers:
    - { name: once, image: ${BUSYBOX}, command: ["sh", "-c", "echo once; sleep 0.2; exit 3"] }
`;

interface Rec { config: { name: string; labels: Record<string, string> }; cgroupPath: string; stateDir: string }

function alive(pid: number): boolean {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(st);
  } catch {
    return false;
  }
}

/** Per pod uid and container name: containers with processes in their cgroup, and shims that have not recorded an exit. */
function runningByName(e: Env): Map<string, { cgroups: number; shims: number }> {
  const out = new Map<string, { cgroups: number; shims: number }>();
  const dir = path.join(e.runRoot, 'runtime', 'containers');
  let ids: string[] = [];
  try { ids = fs.readdirSync(dir); } catch { return out; }
  for (const id of ids) {
    let rec: Rec;
    try { rec = JSON.parse(fs.readFileSync(path.join(dir, id, 'container.json'), 'utf8')); } catch { continue; }
    const key = `${rec.config.labels['io.kubernetes.pod.uid']}/${rec.config.name}`;
    const n = out.get(key) ?? { cgroups: 0, shims: 0 };
    for (const h of ['/sys/fs/cgroup/pids', '/sys/fs/cgroup']) {
      let procs: string;
      try { procs = fs.readFileSync(path.join(h, rec.cgroupPath, 'cgroup.procs'), 'utf8'); } catch { continue; }
      if (procs.split('\n').some((p) => p && alive(Number(p)))) n.cgroups++;
      break;
    }
    try {
      const st = JSON.parse(fs.readFileSync(path.join(rec.stateDir, 'state.json'), 'utf8'));
      if (!fs.existsSync(path.join(rec.stateDir, 'exit.json')) && alive(st.shimPid)) n.shims++;
    } catch { /* no shim yet, or gone */ }
    out.set(key, n);
  }
  return out;
}

/** Samples runningByName every 50 ms; every (uid, name) seen running more than once at an instant. */
function sampleDuplicates(e: Env): { duplicates: string[]; samples: () => number } {
  const duplicates: string[] = [];
  let samples = 0;
  const t = setInterval(() => {
    samples++;
    for (const [k, n] of runningByName(e)) if (n.cgroups > 1 || n.shims > 1) duplicates.push(`${k}: ${n.cgroups} cgroups with processes, ${n.shims} live shims`);
  }, 50);
  stopSampling = () => clearInterval(t);
  return { duplicates, samples: () => samples };
}

async function create(socket: string): Promise<void> {
  for (const body of [alwaysPod, neverPod]) expect((await api(socket, 'POST', '/api/v1/namespaces/default/pods', body, 'application/yaml')).status).toBe(201);
}

/** The daemon must die by its own SIGKILL at the crash point. */
async function diesAt(d: DaemonHandle, point: string): Promise<void> {
  const r = await Promise.race([d.proc.done, sleep(20_000).then(() => undefined)]);
  if (!r) throw new Error(`the daemon did not reach crash point ${point} within 20 s\n${d.proc.stderr().slice(-3000)}`);
  expect(r.signal).toBe('SIGKILL');
}

const neverFailed = (p: any) => p.status?.phase === 'Failed' && cstatus(p, 'once')?.state?.terminated?.exitCode === 3;

/** The Always pod restarts on (restartCount grows past `from` by 2), its steady container runs, its crash exits are exit code 1. */
async function alwaysConverges(socket: string, from = 0): Promise<any> {
  const p = await waitPod(socket, 'always', (x) => cstatus(x, 'crash')?.restartCount >= from + 2 && cstatus(x, 'steady')?.state?.running, 25_000);
  const crash = cstatus(p, 'crash');
  expect(crash.lastState?.terminated?.exitCode).toBe(1);
  expect(crash.state.waiting?.reason).not.toBe('ContainerCreating');
  return p;
}

/** DELETE each pod; the daemon may die while serving one. Returns the names whose DELETE was answered. */
async function deleteAll(socket: string): Promise<string[]> {
  const acked: string[] = [];
  for (const n of ['always', 'never']) {
    try {
      if ((await api(socket, 'DELETE', `/api/v1/namespaces/default/pods/${n}?gracePeriodSeconds=2`)).status === 200) acked.push(n);
    } catch {
      break; // the daemon died
    }
  }
  return acked;
}

/** A client retries a DELETE that got no answer, unless the pod shows it was taken (deletionTimestamp). */
async function retryDeletes(socket: string, acked: string[]): Promise<void> {
  for (const n of ['always', 'never']) {
    if (acked.includes(n)) continue;
    const p = await getPod(socket, n);
    if (p && !p.metadata.deletionTimestamp) await api(socket, 'DELETE', `/api/v1/namespaces/default/pods/${n}?gracePeriodSeconds=2`);
  }
}

/** leftovers(), and the containers' rootfs snapshots. */
function left(e: Env): string[] {
  const active = path.join(e.root, 'snapshots', 'active');
  return [...leftovers(e, { daemon: true }), ...(fs.existsSync(active) ? fs.readdirSync(active).map((x) => `snapshot ${x}`) : [])];
}

async function gone(socket: string): Promise<void> {
  await waitUntil(async () => (await getPod(socket, 'always')) === undefined && (await getPod(socket, 'never')) === undefined, 25_000, 'pods deleted').catch(async (e) => {
    const st = await Promise.all(['always', 'never'].map((n) => getPod(socket, n)));
    throw new Error(`${(e as Error).message}: ${JSON.stringify(st.map((p) => p && { name: p.metadata.name, deletion: p.metadata.deletionTimestamp, phase: p.status?.phase, containers: p.status?.containerStatuses?.map((c: any) => [c.name, c.state]) }))}\n${daemon?.proc.stderr().slice(-3000)}`);
  });
  await waitUntil(() => left(env!).length === 0, 10_000, 'clean state').catch((e) => {
    const cdir = path.join(env!.runRoot, 'runtime', 'containers');
    const what = (fs.existsSync(cdir) ? fs.readdirSync(cdir) : []).map((id) => `${id.slice(0, 12)}: [${fs.readdirSync(path.join(cdir, id)).join(' ')}]`);
    throw new Error(`${(e as Error).message}: ${left(env!).join('; ')} ${what.join(', ')}`);
  });
}

const hooks = (point: string) => ({ NODELET_TEST_HOOKS: '1', NODELET_CRASH_AT: point });

/** The id of the steady container whose shim is alive (it runs), if any. */
function runningSteady(e: Env): string | undefined {
  const dir = path.join(e.runRoot, 'runtime', 'containers');
  for (const id of fs.existsSync(dir) ? fs.readdirSync(dir) : []) {
    try {
      const rec: Rec = JSON.parse(fs.readFileSync(path.join(dir, id, 'container.json'), 'utf8'));
      const st = JSON.parse(fs.readFileSync(path.join(rec.stateDir, 'state.json'), 'utf8'));
      if (rec.config.name === 'steady' && !fs.existsSync(path.join(rec.stateDir, 'exit.json')) && alive(st.shimPid)) return id;
    } catch { /* not started */ }
  }
  return undefined;
}

describe('a daemon SIGKILLed at a crash point converges after a restart', () => {
  // Points reached while the pods start and run (<point>@<container>[:<n-th time>]): kill there, restart, the pods
  // converge (exit codes reported, restarts go on, a running container is kept, not restarted), then delete.
  for (const point of [
    'sandbox-pinned@always', 'container-mounted@once', 'container-created@once', 'container-created@crash:2', 'container-started@once', 'container-started@steady',
    'container-start-recorded@steady', 'exit-recorded@once', 'exit-reported@crash',
  ]) {
    it(`while running: ${point}`, async () => {
      env = makeEnv();
      const dup = sampleDuplicates(env);
      daemon = await startDaemon(env, hooks(point));
      await create(daemon.socket);
      await diesAt(daemon, point);
      const steady = runningSteady(env);
      daemon = await startDaemon(env);
      const first = await waitPod(daemon.socket, 'always', (x) => !!cstatus(x, 'crash'));
      const p = await alwaysConverges(daemon.socket, cstatus(first, 'crash').restartCount);
      if (steady) expect(cstatus(p, 'steady').containerID).toBe(`nodelet://${steady}`);
      expect(cstatus(p, 'steady').restartCount).toBe(0);
      // the log shippers' link of the running container (made when the agent saw it start) is there
      const steadyId = cstatus(p, 'steady').containerID.replace('nodelet://', '');
      await waitUntil(() => fs.existsSync(path.join(env!.logLinkDir, `always_default_steady-${steadyId}.log`)), 5_000, 'log link of the steady container');
      const never = await waitPod(daemon.socket, 'never', neverFailed, 20_000);
      expect(cstatus(never, 'once').restartCount).toBe(0);
      await deleteAll(daemon.socket);
      await gone(daemon.socket);
      expect(dup.samples()).toBeGreaterThan(20);
      expect(dup.duplicates).toEqual([]);
    });
  }

  // Points reached while the pods are deleted: kill there, restart, the deletion finishes and leaves nothing.
  for (const point of ['stop-signalled@steady', 'remove-unmounted@steady', 'remove-state-removed@once', 'sandbox-remove-unpinned@always', 'pod-torn-down@never']) {
    it(`while deleting: ${point}`, async () => {
      env = makeEnv();
      const dup = sampleDuplicates(env);
      daemon = await startDaemon(env, hooks(point));
      await create(daemon.socket);
      await alwaysConverges(daemon.socket);
      await waitPod(daemon.socket, 'never', neverFailed, 20_000);
      const acked = await deleteAll(daemon.socket);
      await diesAt(daemon, point);
      daemon = await startDaemon(env);
      // an answered DELETE is finished by the restarted daemon on its own; one without an answer is sent again
      await retryDeletes(daemon.socket, acked);
      await gone(daemon.socket);
      expect(dup.duplicates).toEqual([]);
    });
  }
});
