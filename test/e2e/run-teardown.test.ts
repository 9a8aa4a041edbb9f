// `nodelet run` ends cleanly however it ends: a reader of its output that goes
// away (`| head -1`: EPIPE on stdout or stderr), SIGHUP; and when it cannot
// (SIGKILL), the next `nodelet run` or `nodelet daemon` on the same --root
// removes what it left and says so. A live `run`'s pods are never touched.
// Also: `run` and `daemon` as a non-root user fail at once.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BUSYBOX, CLI, cgroupChildren, leftovers, makeEnv, run, sleep, start, waitUntil, writeManifest, type Env, type Result } from './helpers.js';
import { api, startDaemon, stopAndClean, type DaemonHandle } from './daemon-helpers.js';

let env: Env | undefined;
let daemon: DaemonHandle | undefined;
const children: { kill(sig: NodeJS.Signals): boolean; exitCode: number | null }[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  await stopAndClean(daemon, env && { ...env, cleanup: async () => {
    // containers a failed test left running (their command lines do not name the env's directory)
    for (const pid of cgroupPids(env!)) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await sleep(100);
    await env!.cleanup();
  } });
  daemon = undefined;
  env = undefined;
});

const runArgs = (e: Env, file: string) => [...e.globals, 'run', ...e.nodeFlags, file];

/** A pod that writes a line every 0.2 s (to stdout or stderr) until SIGTERM. */
const ticker = (name: string, toStderr = false) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 5
  containers:
    - name: c
      image: ${BUSYBOX}
      command: ["sh", "-c", "trap 'echo bye; exit 0' TERM; i=0; while :; do i=$((i+1)); echo tick $i ${toStderr ? '>&2' : ''}; sleep 0.2; done"]
`;

const sleeper = (name: string) => `
apiVersion: v1
kind: Pod
metadata: { name: ${name} }
spec:
  terminationGracePeriodSeconds: 2
  containers:
    - { name: main, image: ${BUSYBOX}, command: ["testprog", "sleep", "inf"] }
`;

/** Pids in the cgroups below the env's parent (the containers). */
function cgroupPids(e: Env): number[] {
  const out: number[] = [];
  for (const d of cgroupChildren(e.cgroupParent)) {
    try {
      out.push(...fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number));
    } catch { /* gone */ }
  }
  return [...new Set(out)];
}

/** `nodelet run` with stdout and stderr as pipes, one of which the test can close like `| head -1` does. */
function spawnRun(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  child.stdout!.on('error', () => undefined);
  child.stderr!.on('error', () => undefined);
  const done = new Promise<Result>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout: out, stderr: err })));
  return { child, done, out: () => out, err: () => err };
}

describe('nodelet run: every catchable ending tears the pods down', () => {
  for (const stream of ['stdout', 'stderr'] as const) {
    it(`the reader of ${stream} goes away (EPIPE): stops writing there, tears the pod down, exits 141`, async () => {
      env = makeEnv();
      const f = writeManifest(env, 'tick.yaml', ticker('ticker', stream === 'stderr'));
      const p = spawnRun(runArgs(env, f));
      await waitUntil(() => /\[c\] tick 2/.test(stream === 'stdout' ? p.out() : p.err()), 30_000, `ticks on ${stream}\n${p.err()}`);
      expect(cgroupPids(env).length).toBeGreaterThan(0);
      p.child[stream]!.destroy(); // `| head -2` is done reading
      const t0 = Date.now();
      const r = await Promise.race([p.done, sleep(30_000).then(() => undefined)]);
      expect(r, `still running after the ${stream} reader left\n${p.err()}`).toBeDefined();
      expect(r!.signal).toBeNull(); // not killed by the broken pipe: it exited
      expect(r!.code).toBe(141);
      expect(Date.now() - t0).toBeLessThan(15_000);
      if (stream === 'stdout') expect(r!.stderr).toContain('nodelet run: stdout is gone (EPIPE): stopping pods');
      expect(leftovers(env).join('\n')).toBe('');
    });
  }

  it('SIGHUP (the terminal went away): graceful teardown, exit 129', async () => {
    env = makeEnv();
    const f = writeManifest(env, 'tick.yaml', ticker('hup'));
    const p = start(runArgs(env, f));
    await p.waitFor(/\[c\] tick 1/, 30_000);
    p.child.kill('SIGHUP');
    const r = await p.done;
    expect(r.code).toBe(129);
    expect(r.stderr).toContain('SIGHUP: stopping pods');
    expect(r.stdout).toContain('[c] bye'); // SIGTERM reached the container: a graceful stop
    expect(leftovers(env).join('\n')).toBe('');
  });
});

describe('nodelet run killed with SIGKILL: the next run or daemon on the root removes its pods', () => {
  async function killedRun(e: Env): Promise<number> {
    const f = writeManifest(e, 'orphan.yaml', sleeper('orphan'));
    const p = start(runArgs(e, f));
    children.push(p.child);
    await p.waitFor(/\[main\] sleeping/, 30_000);
    p.child.kill('SIGKILL');
    await p.done;
    // nothing tore it down: the container still runs, with its cgroup and state
    await sleep(300);
    expect(cgroupPids(e).length).toBeGreaterThan(0);
    expect(fs.readdirSync(path.join(e.root, 'pods'))).toHaveLength(1);
    return p.child.pid!;
  }

  it('a second `nodelet run` (of another manifest) warns about the orphan and removes it first', async () => {
    env = makeEnv();
    const pid = await killedRun(env);
    const f = writeManifest(env, 'job.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: second }
spec:
  restartPolicy: Never
  containers:
    - { name: c, image: ${BUSYBOX}, command: ["sh", "-c", "echo second ran"] }
`);
    const r = await run(runArgs(env, f));
    expect(r.stderr).toContain(`warning: removing pod default/orphan: left running by a "nodelet run" (pid ${pid}) that is gone`);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('[c] second ran');
    expect(r.stderr.indexOf('removing pod default/orphan')).toBeLessThan(r.stderr.indexOf('pod/second'));
    expect(cgroupPids(env)).toEqual([]);
    expect(leftovers(env).join('\n')).toBe('');
  });

  it('a daemon started on that root removes the orphan and logs a warning', async () => {
    env = makeEnv();
    const pid = await killedRun(env);
    daemon = await startDaemon(env);
    const d = daemon;
    await waitUntil(() => /removing pod default\/orphan: left running by a \\"nodelet run\\" \(pid \d+\) that is gone/.test(d.proc.stderr()), 20_000, `warning in\n${d.proc.stderr()}`);
    expect(d.proc.stderr()).toContain(`(pid ${pid}) that is gone`);
    await waitUntil(async () => (await api(d.socket, 'GET', '/api/v1/pods')).json.items.length === 0, 20_000, 'the orphan to go');
    await waitUntil(() => cgroupPids(env!).length === 0 && leftovers(env!, { daemon: true }).length === 0, 20_000, `nothing left: ${leftovers(env, { daemon: true }).join(', ')}`);
  });

  it('two `nodelet run`s on one root at once leave each other\'s pods alone', async () => {
    env = makeEnv();
    const a = start(runArgs(env, writeManifest(env, 'a.yaml', sleeper('alpha'))));
    children.push(a.child);
    await a.waitFor(/\[main\] sleeping/, 30_000);
    const b = start(runArgs(env, writeManifest(env, 'b.yaml', sleeper('beta'))));
    children.push(b.child);
    await b.waitFor(/\[main\] sleeping/, 30_000);
    // a third one, start to end, while both run
    const c = await run(runArgs(env, writeManifest(env, 'c.yaml', `
apiVersion: v1
kind: Pod
metadata: { name: gamma }
spec:
  restartPolicy: Never
  containers: [{ name: c, image: ${BUSYBOX}, command: ["true"] }]
`)));
    expect(c.code).toBe(0);
    for (const out of [a.stderr(), b.stderr(), c.stderr]) expect(out).not.toMatch(/removing pod|Killing/);
    expect(fs.readdirSync(path.join(env.root, 'pods'))).toHaveLength(2);
    expect(a.child.exitCode).toBeNull();
    expect(b.child.exitCode).toBeNull();
    a.child.kill('SIGINT');
    b.child.kill('SIGINT');
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect([ra.code, rb.code]).toEqual([130, 130]);
    expect(ra.stdout).toContain('[main] got SIGTERM');
    expect(rb.stdout).toContain('[main] got SIGTERM');
    expect(leftovers(env).join('\n')).toBe('');
  });
});

describe('nodelet run / daemon as a non-root user', () => {
  it('fails at once with what to do, exit 1, touching nothing', async () => {
    env = makeEnv();
    fs.chmodSync(env.dir, 0o777); // even where nobody could create the roots
    const f = writeManifest(env, 'job.yaml', sleeper('nobody'));
    fs.chmodSync(f, 0o644);
    for (const verb of [['run', ...env.nodeFlags, f], ['daemon', '--socket', path.join(env.dir, 'sock')]]) {
      const t0 = Date.now();
      const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...env.globals, ...verb], { encoding: 'utf8', timeout: 20_000 });
      expect(r.error).toBeUndefined();
      expect(r.status, r.stderr).toBe(1);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(r.stderr).toMatch(new RegExp(`^nodelet ${verb[0]}: must run as root \\(it creates namespaces, mounts and cgroups\\): try sudo nodelet .*${verb[0]}`));
      expect(r.stderr).not.toMatch(/unshare|Operation not permitted/);
      expect(fs.existsSync(env.root)).toBe(false);
      expect(fs.existsSync(env.runRoot)).toBe(false);
    }
  });
});
