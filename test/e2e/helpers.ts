// e2e helpers: the real CLI as users run it (the `nodelet` bundle,
// dist/bundle/nodelet.cjs, built by npm run build) as a child process with a
// private --root/--run-root on /dev/shm, a unique cgroup parent and CNI conf
// dir, and leak checks (mounts, cgroups, state dirs, processes).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI = path.join(REPO, 'dist/bundle/nodelet.cjs');

export interface Env {
  dir: string;
  root: string;
  runRoot: string;
  cgroupParent: string;
  bridgeName: string;
  /** --pod-log-dir and --container-log-link-dir (never the real /var/log/pods, /var/log/containers) */
  podLogDir: string;
  logLinkDir: string;
  /** global flags */
  globals: string[];
  /** flags for run/daemon */
  nodeFlags: string[];
  cleanup(): Promise<void>;
}

// The CNI bridges outlive their pods (as with kubelet): this process's go when it ends (a run outside
// `unshare --net` would otherwise leave them on the host).
const bridges = new Set<string>();
process.once('exit', () => {
  for (const b of bridges) spawnSyncQuiet('ip', ['link', 'del', b]);
});

export function makeEnv(): Env {
  if (process.getuid?.() !== 0) throw new Error('e2e tests need root');
  if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const rand = randomBytes(4).toString('hex');
  const dir = `/dev/shm/nodelet-test-${rand}`;
  fs.mkdirSync(dir, { recursive: true });
  const root = path.join(dir, 'root');
  const runRoot = path.join(dir, 'run');
  const cgroupParent = `/nodelet-test-${rand}`;
  const subnet = `10.${100 + (parseInt(rand.slice(0, 2), 16) % 100)}.${parseInt(rand.slice(2, 4), 16)}.0/24`;
  const bridgeName = `nlt${rand.slice(0, 8)}`;
  bridges.add(bridgeName);
  const podLogDir = path.join(dir, 'logs');
  const logLinkDir = path.join(dir, 'containers');
  const env: Env = {
    dir, root, runRoot, cgroupParent, bridgeName, podLogDir, logLinkDir,
    globals: ['--log-level', 'warn', '--root', root, '--run-root', runRoot],
    nodeFlags: ['--cgroup-parent', cgroupParent, '--cni-conf-dir', path.join(dir, 'cni'), '--pod-log-dir', podLogDir, '--container-log-link-dir', logLinkDir, '--pod-cidr', subnet, '--bridge-name', bridgeName, '--backoff-initial', '500', '--backoff-max', '4000'],
    async cleanup() {
      for (const p of leakedProcesses(dir)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
      for (const m of mountsUnder(dir)) spawnSyncQuiet('umount', ['-l', m]);
      removeCgroup(cgroupParent);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

function spawnSyncQuiet(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: 'ignore' });
}

export function writeManifest(env: Env, name: string, text: string): string {
  const f = path.join(env.dir, name);
  fs.writeFileSync(f, text);
  return f;
}

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  done: Promise<Result>;
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
}

export function start(args: string[], opts: { env?: Record<string, string> } = {}): Running {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const done = new Promise<Result>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout: out, stderr: err }));
    // a spawn that fails (EACCES on a noexec mount, ENOENT) may never 'close': fail at once, saying why
    child.on('error', (e) => resolve({ code: 127, signal: null, stdout: out, stderr: `${err}spawn ${process.execPath} failed: ${e.message}\n` }));
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    done,
    async waitFor(re, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const m = re.exec(out + '\n' + err);
        if (m) return m[0];
        if (child.exitCode !== null) break;
        await sleep(50);
      }
      throw new Error(`timed out waiting for ${re}\nstdout:\n${out}\nstderr:\n${err}`);
    },
  };
}

export async function run(args: string[], timeoutMs = 60_000, opts: { env?: Record<string, string> } = {}): Promise<Result> {
  const r = start(args, opts);
  const t = setTimeout(() => r.child.kill('SIGKILL'), timeoutMs);
  try {
    return await r.done;
  } finally {
    clearTimeout(t);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export async function waitUntil<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await sleep(100);
  }
}

export function mountsUnder(prefix: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m === prefix || m.startsWith(prefix + '/'));
}

const CGROUP_ROOTS = ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/freezer', '/sys/fs/cgroup/cpuset', '/sys/fs/cgroup/blkio', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'];

/** cgroup directories below the parent (children, not the parent itself) on any hierarchy. */
export function cgroupChildren(parent: string): string[] {
  const out: string[] = [];
  for (const r of CGROUP_ROOTS) {
    const d = path.join(r, parent);
    const walk = (x: string) => {
      let ents: fs.Dirent[];
      try { ents = fs.readdirSync(x, { withFileTypes: true }); } catch { return; }
      for (const e of ents) if (e.isDirectory()) { out.push(path.join(x, e.name)); walk(path.join(x, e.name)); }
    };
    walk(d);
  }
  return [...new Set(out)];
}

export function removeCgroup(parent: string): void {
  for (const r of CGROUP_ROOTS) {
    const d = path.join(r, parent);
    const dirs: string[] = [];
    const walk = (x: string) => {
      let ents: fs.Dirent[];
      try { ents = fs.readdirSync(x, { withFileTypes: true }); } catch { return; }
      for (const e of ents) if (e.isDirectory()) walk(path.join(x, e.name));
      dirs.push(x);
    };
    walk(d);
    for (const x of dirs) try { fs.rmdirSync(x); } catch { /* busy or gone */ }
  }
}

/** pids whose command line or cwd mentions `dir` (shims, containers), other than this process. */
export function leakedProcesses(dir: string): number[] {
  const out: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8');
      if (cmd.includes(dir)) out.push(Number(p));
    } catch { /* gone */ }
  }
  return out;
}

/** Everything a pod may leave behind, as a list of problems (empty = clean). */
export function leftovers(env: Env, opts: { daemon?: boolean } = {}): string[] {
  const problems: string[] = [];
  for (const m of mountsUnder(env.dir)) problems.push(`mount ${m}`);
  // a daemon keeps its QoS-level cgroups (like kubelet's /kubepods/besteffort)
  for (const c of cgroupChildren(env.cgroupParent)) if (!(opts.daemon && /\/(besteffort|burstable)$/.test(c))) problems.push(`cgroup ${c}`);
  const ls = (d: string) => { try { return fs.readdirSync(d); } catch { return []; } };
  for (const x of ls(path.join(env.runRoot, 'runtime', 'sandboxes'))) problems.push(`sandbox state ${x}`);
  for (const x of ls(path.join(env.runRoot, 'runtime', 'containers'))) problems.push(`container state ${x}`);
  for (const x of ls(path.join(env.root, 'pods'))) problems.push(`pod dir ${x}`);
  for (const x of ls(env.podLogDir)) problems.push(`log dir ${x}`);
  for (const x of ls(env.logLinkDir)) problems.push(`log link ${x}`);
  // veths of the pods (the bridge itself is node-level, like cni0, and stays)
  const veths = spawnSync('ip', ['-o', 'link', 'show', 'master', env.bridgeName], { encoding: 'utf8' }).stdout ?? '';
  for (const l of veths.split('\n').filter(Boolean)) problems.push(`veth ${l.split(':')[1]?.trim()}`);
  if (!opts.daemon) for (const p of leakedProcesses(env.dir)) problems.push(`process ${p}: ${fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ')}`);
  return problems;
}

export const BUSYBOX = 'localhost/nodelet/busybox:v1';
export const TESTPROG = 'localhost/nodelet/testprog:v1';
