// bench/pods driver. Prints medians and ratios; see bench/pods for what it measures.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const ROUNDS = Number(opt('--rounds', '7'));
const SIZES = opt('--sizes', '50,100,250').split(',').map(Number);
// what the `nodelet` command runs (package.json "bin"): the esbuild bundle, not the tsc output
const CLI = path.resolve(process.env.NODELET_BENCH_CLI ?? 'dist/bundle/nodelet.cjs');
const LAYOUT = path.resolve('images/build/busybox');
const IMAGE = 'localhost/nodelet/busybox:v1';
const rand = randomBytes(3).toString('hex');
const WORK = `/dev/shm/nodelet-bench-pods-${rand}`;
const CG = `/nodelet-bench-${rand}`;
fs.mkdirSync(WORK, { recursive: true });
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN; };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const manifest = `apiVersion: v1
kind: Pod
metadata: { name: bench }
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["sh", "-c", "echo ready"]
`;
const podFile = path.join(WORK, 'pod.yaml');
fs.writeFileSync(podFile, manifest);

/** ms from spawn to the first stdout line of `cmd`. Kills nothing: the commands exit by themselves. */
function firstLine(cmd, argv, env = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let first;
    let err = '';
    p.stdout.on('data', (d) => { if (first === undefined && d.toString().includes('\n')) first = Number(process.hrtime.bigint() - t0) / 1e6; });
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => (first === undefined ? reject(new Error(`${cmd} ${argv.join(' ')} exited ${code} without output: ${err.slice(-500)}`)) : resolve(first)));
  });
}

async function startBench() {
  console.log(`== first line of output of a one-container pod (${ROUNDS} rounds, interleaved)`);
  const nRoot = path.join(WORK, 'nodelet-root');
  const nRun = path.join(WORK, 'nodelet-run');
  const nodeletArgs = ['--log-level', 'error', '--root', nRoot, '--run-root', nRun, 'run', '--quiet', '--cgroup-parent', CG, '--cni-conf-dir', path.join(WORK, 'cni'), '--pod-log-dir', path.join(WORK, 'logs'), '--container-log-link-dir', path.join(WORK, 'log-links'), '--pod-cidr', '10.77.0.0/16', '--bridge-name', `nlb${rand}`, podFile];
  // warm-up: imports the built-in image (not timed)
  await firstLine(process.execPath, [CLI, ...nodeletArgs]);
  const pod = path.join(WORK, 'podman');
  const conf = path.join(WORK, 'containers.conf');
  fs.writeFileSync(conf, '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=16384:16384"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n');
  const podmanBase = ['--root', `${pod}/root`, '--runroot', `${pod}/run`, '--tmpdir', `${pod}/tmp`];
  const penv = { CONTAINERS_CONF: conf };
  let podman = !args.includes('--skip-podman') && spawnSync('podman', ['--version']).status === 0;
  if (podman) {
    const r = spawnSync('podman', [...podmanBase, 'pull', '-q', `oci:${LAYOUT}`], { env: { ...process.env, ...penv } });
    const id = r.stdout.toString().trim();
    if (r.status !== 0) { console.log(`podman: cannot load the image (${r.stderr.toString().trim()}); skipping podman`); podman = false; }
    else spawnSync('podman', [...podmanBase, 'tag', id, IMAGE], { env: { ...process.env, ...penv } });
  }
  const podmanOnce = async () => {
    // kube play returns once the pod started; the first line is read with logs -f (podman 4.3 has no kube play --wait)
    const t0 = process.hrtime.bigint();
    const play = spawnSync('podman', [...podmanBase, 'kube', 'play', '--network', 'none', podFile], { env: { ...process.env, ...penv } });
    if (play.status !== 0) throw new Error(`podman kube play: ${play.stderr}`);
    const rest = await firstLine('podman', [...podmanBase, 'logs', '-f', 'bench-c'], penv);
    const total = Number(process.hrtime.bigint() - t0) / 1e6;
    spawnSync('podman', [...podmanBase, 'kube', 'down', podFile], { env: { ...process.env, ...penv } });
    void rest;
    return total;
  };
  if (podman) await podmanOnce(); // warm-up
  const n = [];
  const p = [];
  for (let i = 0; i < ROUNDS; i++) {
    n.push(await firstLine(process.execPath, [CLI, ...nodeletArgs]));
    if (podman) p.push(await podmanOnce());
  }
  console.log(`nodelet run          median ${median(n).toFixed(1)} ms  (${n.map((x) => x.toFixed(0)).join(' ')})`);
  if (podman) {
    console.log(`podman kube play     median ${median(p).toFixed(1)} ms  (${p.map((x) => x.toFixed(0)).join(' ')})`);
    console.log(`ratio nodelet/podman ${(median(n) / median(p)).toFixed(2)} (goal <= 0.5)`);
  }
  console.log('note: nodelet sets up a CNI bridge network per pod; podman runs with --network none');
}

function api(socket, method, p, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, method, path: p, headers: body ? { 'content-type': 'application/yaml' } : {} }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => resolve({ status: res.statusCode, json: b ? JSON.parse(b) : undefined }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

function statTicks(file) {
  const s = fs.readFileSync(file, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]), sys: Number(f[12]), comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')) };
}

function procStat(pid) {
  const t = statTicks(`/proc/${pid}/stat`);
  const rss = Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) * 1024;
  // per thread: the main (event-loop) thread has the process's pid
  const threads = {};
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const x = statTicks(`/proc/${pid}/task/${tid}/stat`);
      const name = Number(tid) === pid ? 'main' : x.comm;
      threads[name] = (threads[name] ?? 0) + x.user + x.sys;
    } catch { /* thread gone */ }
  }
  return { cpuTicks: t.user + t.sys, user: t.user, sys: t.sys, threads, rss };
}

async function density(N) {
  const dir = path.join(WORK, `density-${N}`);
  const socket = path.join(dir, 'sock');
  fs.mkdirSync(dir, { recursive: true });
  const d = spawn(process.execPath, [...(process.env.NODELET_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.NODELET_CPU_PROF] : []), ...(process.env.NODELET_BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []), CLI, '--log-level', 'error', '--root', path.join(WORK, 'nodelet-root'), '--run-root', path.join(dir, 'run'), 'daemon', '--socket', socket, '--manifest-dir', path.join(dir, 'manifests'), '--cgroup-parent', CG, '--cni-conf-dir', path.join(WORK, 'cni'), '--pod-log-dir', path.join(WORK, 'logs'), '--container-log-link-dir', path.join(WORK, 'log-links'), '--pod-cidr', '10.78.0.0/16', '--bridge-name', `nld${rand}`, '--max-pods', '1000'], { stdio: ['ignore', 'ignore', 'inherit'] });
  for (let i = 0; i < 200; i++) { if (fs.existsSync(socket)) break; await sleep(50); }
  const t0 = Date.now();
  for (let i = 0; i < N; i++) {
    const body = `apiVersion: v1
kind: Pod
metadata: { name: p${i} }
spec:
  terminationGracePeriodSeconds: 1
  containers:
    - name: c
      image: ${IMAGE}
      imagePullPolicy: IfNotPresent
      command: ["testprog", "serve-http", "8080"]
      livenessProbe: { exec: { command: ["true"] }, periodSeconds: 10 }
      readinessProbe: { httpGet: { path: /, port: 8080 }, periodSeconds: 10 }
`;
    const r = await api(socket, 'POST', '/api/v1/namespaces/default/pods', body);
    if (r.status !== 201) throw new Error(`create p${i}: ${JSON.stringify(r.json)}`);
  }
  // all Running and Ready
  let ready = 0;
  for (;;) {
    const list = (await api(socket, 'GET', '/api/v1/pods')).json.items;
    ready = list.filter((p) => p.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True').length;
    if (ready === N || Date.now() - t0 > N * 2000 + 60_000) break;
    await sleep(250);
  }
  const startMs = Date.now() - t0;
  await sleep(5000); // settle
  const hz = 100;
  const a = procStat(d.pid);
  const w0 = Date.now();
  await sleep(20_000);
  const b = procStat(d.pid);
  const cpu = ((b.cpuTicks - a.cpuTicks) / hz) / ((Date.now() - w0) / 1000) * 100;
  const secs = (Date.now() - w0) / 1000;
  const pct = (ticks) => `${((ticks / hz / secs) * 100).toFixed(2)}%`;
  const byThread = Object.entries(b.threads).map(([k, v]) => [k, v - (a.threads[k] ?? 0)]).filter(([, v]) => v > 0).sort((x, y) => y[1] - x[1]);
  console.log(`N=${String(N).padStart(3)}  ready ${ready}/${N}  start ${(startMs / N).toFixed(0)} ms/pod (${(startMs / 1000).toFixed(1)} s total)  daemon RSS ${(b.rss / 1048576).toFixed(0)} MB  CPU ${cpu.toFixed(2)}% of a core (steady, 20 s)`);
  console.log(`       CPU user ${pct(b.user - a.user)} sys ${pct(b.sys - a.sys)}; by thread: ${byThread.map(([k, v]) => `${k} ${pct(v)}`).join(', ')}`);
  // teardown (not timed)
  const list = (await api(socket, 'GET', '/api/v1/pods')).json.items;
  await Promise.all(list.map((p) => api(socket, 'DELETE', `/api/v1/namespaces/default/pods/${p.metadata.name}?gracePeriodSeconds=0&wait=1`)));
  d.kill('SIGTERM');
  await new Promise((r) => d.on('close', r));
}

try {
  if (!args.includes('--skip-start')) await startBench();
  if (!args.includes('--skip-density')) {
    console.log('== density: N pods with an exec and an http probe (goal at 250: RSS < 150 MB, CPU < 3%)');
    for (const N of SIZES) await density(N);
  }
} finally {
  for (const f of ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/freezer'])
    for (const sub of ['besteffort', 'burstable', '']) try { fs.rmdirSync(path.join(f, CG, sub)); } catch { /* busy or gone */ }
  // podman leaves its overlay and shm mounts under WORK (WORK/podman itself is no mount point)
  const mounts = spawnSync('findmnt', ['-rn', '-o', 'TARGET']).stdout.toString().split('\n').filter((t) => t.startsWith(`${WORK}/`));
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
  fs.rmSync(WORK, { recursive: true, force: true });
}
