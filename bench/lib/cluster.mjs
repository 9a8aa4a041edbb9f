// bench/cluster driver: nodelet as the one node of a real Kubernetes v1.36 control plane, in
// the private network namespace bench/cluster made. Prints figures; see bench/cluster.
//
// Measured:
// - startup: t0 just before `kubectl apply` is spawned; a watch of the Deployment's pods
//   (admin kubeconfig, undici) records, per pod, when we first saw it ADDED, first saw it
//   Running, and first saw it Running with Ready=True (our clock, ms). Total = last Ready - t0.
//   Latency (primary) = Running+Ready - first seen; also creationTimestamp (second precision,
//   floored) → first seen Running, the SLI's definition (its error is +0..1 s).
// - API requests/s: the API server's /metrics before and after an idle window;
//   sum of apiserver_request_total deltas (every client: the node, controller-manager,
//   scheduler, the API server's own loopback client; /metrics itself is not counted), with
//   the largest N's pods Ready and, as the baseline, earlier with the node Ready and no pods.
//   The node's own share: apiserver_flowcontrol_dispatched_requests_total of the flow schemas
//   system-node-high + system-nodes (requests of the group system:nodes: only our node here).
// - daemon CPU: utime+stime of /proc/<pid>/stat over the same window, % of one core;
//   RSS: VmRSS at the window's end. The shims and containers are other processes, not counted.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const SIZES = opt('--sizes', '10,50,100').split(',').map(Number);
const WINDOW_S = Number(opt('--window', '60'));
const SETTLE_S = Number(opt('--settle', '10'));
const PROBE = args.includes('--probe');
if (SIZES.some((n) => !(n > 0 && n <= 105)) || !(WINDOW_S > 0)) throw new Error('usage: bench/cluster [--sizes 10,50,100] [--window 60] [--settle 10] [--probe] (N <= 105: --max-pods is 110)');

const CLI = path.join(REPO, 'dist/bundle/nodelet.cjs');
const CP = path.join(REPO, 'scripts/control-plane');
const IMAGE = 'localhost/nodelet/busybox:v1';
const NODE = 'bench-node';
const rand = randomBytes(3).toString('hex');
const WORK = `/dev/shm/nodelet-bench-cluster-${rand}`;
const ROOT = path.join(WORK, 'root');
const RUN = path.join(WORK, 'run');
const SOCKET = path.join(WORK, 'nodelet.sock');
const CG = `/nodelet-bench-${rand}`;
const BRIDGE = `nlc${rand}`;
const HZ = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
// the whole run is bounded: control plane up, baseline window, each size (apply, Ready, delete), teardown
const DEADLINE_MS = (300 + 2 * (WINDOW_S + SETTLE_S) + SIZES.reduce((s, n) => s + 150 + 4 * n, 0)) * 1000;
const T_START = Date.now();

const log = (...a) => console.log(...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;
const pctl = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] : NaN; };

let cp; // { dir, kubectl, server, agent }
let daemon; // ChildProcess
let daemonLog;
let cleaning;

function remaining() { return T_START + DEADLINE_MS - Date.now(); }
async function until(what, timeoutMs, fn, everyMs = 250) {
  const end = Date.now() + Math.min(timeoutMs, Math.max(0, remaining()));
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${(timeoutMs / 1000).toFixed(0)} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Runs a command to completion with a timeout; never throws on its exit code. */
function run(cmd, argv, { input, env, timeoutMs = 120_000 } = {}) {
  return new Promise((resolve) => {
    const c = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (e) => (err += e.message));
    c.on('close', (code, signal) => { clearTimeout(t); resolve({ code: code ?? (signal ? 128 : 1), stdout: out, stderr: err }); });
    c.stdin.end(input ?? '');
  });
}
async function must(cmd, argv, o) {
  const r = await run(cmd, argv, o);
  if (r.code !== 0) throw new Error(`${path.basename(cmd)} ${argv.join(' ')}: exit ${r.code}: ${r.stderr.trim().slice(-2000)}`);
  return r.stdout;
}
const parseEnv = (text) => Object.fromEntries([...text.matchAll(/^export ([A-Za-z_]\w*)=(.*)$/gm)].map(([, k, v]) => [k, v.replace(/^'(.*)'$/, '$1')]));

// ---------------------------------------------------------------- the API server (admin)
function adminClient(kubeconfigFile) {
  const kc = fs.readFileSync(kubeconfigFile, 'utf8');
  const field = (k) => { const m = new RegExp(`${k}: (\\S+)`).exec(kc); if (!m) throw new Error(`${kubeconfigFile}: no ${k}`); return m[1]; };
  const b64 = (k) => Buffer.from(field(k), 'base64');
  const agent = new Agent({ connect: { ca: b64('certificate-authority-data'), cert: b64('client-certificate-data'), key: b64('client-key-data') } });
  return { server: field('server'), agent };
}
async function apiGet(p, { text = false } = {}) {
  const r = await request(cp.server + p, { dispatcher: cp.agent, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const body = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`GET ${p}: ${r.statusCode} ${body.slice(0, 300)}`);
  return text ? body : JSON.parse(body);
}

/** Watches pods with a label selector from a list's resourceVersion; records our observation times per uid. */
async function watchPods(selector) {
  const pods = new Map(); // uid → { name, created, firstSeen, running, ready }
  const list = await apiGet(`/api/v1/namespaces/default/pods?labelSelector=${encodeURIComponent(selector)}`);
  if (list.items.length) throw new Error(`pods with ${selector} exist before the apply`);
  const ac = new AbortController();
  let failed;
  const see = (type, pod) => {
    const now = Date.now();
    const uid = pod.metadata.uid;
    let p = pods.get(uid);
    if (!p) pods.set(uid, (p = { name: pod.metadata.name, created: Date.parse(pod.metadata.creationTimestamp), firstSeen: now, firstType: type }));
    const phase = pod.status?.phase;
    if (phase === 'Running' && p.running === undefined) p.running = now;
    const ready = pod.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
    if (phase === 'Running' && ready && p.ready === undefined) p.ready = now;
    if (phase === 'Failed' && !failed) failed = `${pod.metadata.name} Failed: ${pod.status?.reason} ${pod.status?.message ?? ''}`;
  };
  const done = (async () => {
    const r = await request(`${cp.server}/api/v1/namespaces/default/pods?watch=1&labelSelector=${encodeURIComponent(selector)}&resourceVersion=${list.metadata.resourceVersion}`,
      { dispatcher: cp.agent, signal: ac.signal, headersTimeout: 30_000, bodyTimeout: 0 });
    if (r.statusCode !== 200) throw new Error(`watch pods: ${r.statusCode} ${await r.body.text()}`);
    let buf = '';
    const dec = new TextDecoder();
    for await (const chunk of r.body) {
      buf += dec.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.trim()) continue;
        const ev = JSON.parse(line);
        if (ev.type === 'ERROR') throw new Error(`watch pods: ${JSON.stringify(ev.object)}`);
        if (ev.type === 'ADDED' || ev.type === 'MODIFIED') see(ev.type, ev.object);
      }
    }
  })().catch((e) => { if (!ac.signal.aborted) failed ??= `watch ended: ${e.message}`; });
  return { pods, failed: () => failed, stop: async () => { ac.abort(); await done; } };
}

/** apiserver_request_total summed (and by verb+resource+subresource), and the node's APF flow schemas. */
async function scrape() {
  const text = await apiGet('/metrics', { text: true });
  let total = 0;
  let node = 0;
  let apf = false;
  const by = new Map();
  for (const line of text.split('\n')) {
    if (line.startsWith('apiserver_request_total{')) {
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      total += v;
      const lab = (k) => new RegExp(`${k}="([^"]*)"`).exec(line)?.[1] ?? '';
      const key = lab('resource') ? `${lab('verb')} ${lab('resource')}${lab('subresource') ? '/' + lab('subresource') : ''}` : `${lab('verb')} /${lab('subresource')}`;
      by.set(key, (by.get(key) ?? 0) + v);
    } else if (line.startsWith('apiserver_flowcontrol_dispatched_requests_total{')) {
      apf = true;
      if (/flow_schema="(system-node-high|system-nodes)"/.test(line)) node += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return { total, node: apf ? node : NaN, by };
}

// ---------------------------------------------------------------- the daemon
function daemonApi(method, p) {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: SOCKET, method, path: p, timeout: 10_000 }, (res) => {
      let b = '';
      res.on('data', (c) => (b += c));
      res.on('end', () => { try { resolve({ status: res.statusCode, json: JSON.parse(b) }); } catch { resolve({ status: res.statusCode, json: undefined }); } });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
function procStat(pid) {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  const rss = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  return { user: Number(f[11]), sys: Number(f[12]), rss, at: Date.now() };
}

// ---------------------------------------------------------------- leftovers (as test/e2e/helpers.ts)
const CGROUP_ROOTS = ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/cpu', '/sys/fs/cgroup/cpuacct', '/sys/fs/cgroup/pids', '/sys/fs/cgroup/freezer', '/sys/fs/cgroup/cpuset', '/sys/fs/cgroup/blkio', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'];
const mountsUnder = (prefix) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m === prefix || m.startsWith(prefix + '/'));
function cgroupDirs(parent, withParent) {
  const out = [];
  for (const r of CGROUP_ROOTS) {
    const walk = (x) => {
      let ents;
      try { ents = fs.readdirSync(x, { withFileTypes: true }); } catch { return; }
      for (const e of ents) if (e.isDirectory()) walk(path.join(x, e.name));
      out.push(x);
    };
    const d = path.join(r, parent);
    if (!fs.existsSync(d)) continue;
    walk(d);
    if (!withParent) out.pop(); // walk pushes d last
  }
  return [...new Set(out)];
}
function processesMentioning(s) {
  const out = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try { const cmd = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8'); if (cmd.includes(s)) out.push({ pid: Number(p), cmd: cmd.replace(/\0/g, ' ').trim() }); } catch { /* gone */ }
  }
  return out;
}
/** What the node's pods left (the daemon's QoS cgroups and the bridge are node-level and may stay while it runs). */
function podLeftovers() {
  const problems = [];
  for (const m of mountsUnder(WORK)) problems.push(`mount ${m}`);
  for (const c of cgroupDirs(CG, false)) if (!/\/(besteffort|burstable)$/.test(c)) problems.push(`cgroup ${c}`);
  const ls = (d) => { try { return fs.readdirSync(d); } catch { return []; } };
  for (const x of ls(path.join(RUN, 'runtime', 'sandboxes'))) problems.push(`sandbox state ${x}`);
  for (const x of ls(path.join(RUN, 'runtime', 'containers'))) problems.push(`container state ${x}`);
  for (const x of ls(path.join(ROOT, 'pods'))) problems.push(`pod dir ${x}`);
  for (const x of ls(path.join(ROOT, 'logs'))) problems.push(`log dir ${x}`);
  const veths = spawnSync('ip', ['-o', 'link', 'show', 'master', BRIDGE], { encoding: 'utf8' }).stdout ?? '';
  for (const l of veths.split('\n').filter(Boolean)) problems.push(`veth ${l.split(':')[1]?.trim()}`);
  return problems;
}

// ---------------------------------------------------------------- steps
async function controlPlaneUp() {
  const t = Date.now();
  const env = { ...process.env, CONTROL_PLANE_OWNER_PID: String(process.pid) }; // its watchdog runs `down` if we die
  delete env.CONTROL_PLANE_DIR;
  const up = await run(CP, ['up'], { env, timeoutMs: 900_000 });
  const vars = parseEnv(up.stdout);
  if (vars.CONTROL_PLANE_DIR) cp = { dir: vars.CONTROL_PLANE_DIR };
  if (up.code !== 0 || !vars.KUBECONFIG) throw new Error(`scripts/control-plane up: exit ${up.code}: ${up.stderr.trim().slice(-3000)}`);
  const c = adminClient(vars.KUBECONFIG);
  const kubectlBin = path.join(vars.CONTROL_PLANE_BIN, 'kubectl');
  const kenv = { KUBECONFIG: vars.KUBECONFIG, CONTROL_PLANE_DIR: vars.CONTROL_PLANE_DIR };
  cp = { ...cp, ...c, kenv, kubectl: (argv, o = {}) => must(kubectlBin, argv, { env: kenv, ...o }) };
  return Date.now() - t;
}

async function startNode() {
  // the image is present before anything is timed (the daemon would import it on first use)
  await must(process.execPath, [CLI, '--log-level', 'error', '--root', ROOT, '--run-root', RUN, 'image', 'import', path.join(REPO, 'images/build/busybox')]);
  const kc = (await must(CP, ['node-kubeconfig', NODE], { env: cp.kenv })).trim();
  fs.mkdirSync(path.join(WORK, 'manifests'), { recursive: true });
  daemonLog = path.join(WORK, 'daemon.log');
  const logFd = fs.openSync(daemonLog, 'a');
  const t = Date.now();
  daemon = spawn(process.execPath, [CLI, '--log-level', 'warn', '--root', ROOT, '--run-root', RUN, 'daemon',
    '--socket', SOCKET, '--manifest-dir', path.join(WORK, 'manifests'), '--cgroup-parent', CG, '--cni-conf-dir', path.join(WORK, 'cni'),
    '--pod-log-dir', path.join(WORK, 'logs'), '--container-log-link-dir', path.join(WORK, 'log-links'),
    '--pod-cidr', '10.79.0.0/16', '--bridge-name', BRIDGE, '--kubeconfig', kc, '--node-name', NODE], { stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  daemon.on('exit', (code, sig) => { if (!cleaning) { log(`daemon exited (${code ?? sig}); its log:\n${daemonTail()}`); fail(new Error('the daemon exited')); } });
  await until(`node ${NODE} Ready`, 120_000, async () => {
    const n = await apiGet(`/api/v1/nodes/${NODE}`).catch(() => undefined);
    return n?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  });
  return Date.now() - t;
}
const daemonTail = () => { try { return fs.readFileSync(daemonLog, 'utf8').split('\n').slice(-30).join('\n'); } catch { return '(no log)'; } };

/** An idle window: request counts and daemon CPU over WINDOW_S. */
async function idleWindow() {
  const m0 = await scrape();
  const s0 = procStat(daemon.pid);
  await sleep(WINDOW_S * 1000);
  const s1 = procStat(daemon.pid);
  const m1 = await scrape();
  const sec = (s1.at - s0.at) / 1000;
  const by = [...m1.by].map(([k, v]) => [k, v - (m0.by.get(k) ?? 0)]).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  return {
    sec,
    reqPerS: (m1.total - m0.total) / sec, // /metrics is not in apiserver_request_total
    nodePerS: (m1.node - m0.node) / sec,
    by,
    cpu: ((s1.user + s1.sys - s0.user - s0.sys) / HZ / sec) * 100,
    user: ((s1.user - s0.user) / HZ / sec) * 100,
    sys: ((s1.sys - s0.sys) / HZ / sec) * 100,
    rss: s1.rss,
  };
}
const fmtWindow = (w) => `${w.reqPerS.toFixed(2)} req/s all clients, ${Number.isNaN(w.nodePerS) ? 'node share n/a' : `${w.nodePerS.toFixed(2)} req/s by the node`}; daemon CPU ${w.cpu.toFixed(2)}% of a core (user ${w.user.toFixed(2)}%, sys ${w.sys.toFixed(2)}%), RSS ${(w.rss / 1048576).toFixed(0)} MB`;
const fmtBy = (w) => w.by.slice(0, 8).map(([k, v]) => `${k} ${(v / w.sec).toFixed(2)}`).join(', ');

function deployment(N) {
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: bench-${N} }
spec:
  replicas: ${N}
  selector: { matchLabels: { app: bench-${N} } }
  template:
    metadata: { labels: { app: bench-${N} } }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
        - name: c
          image: ${IMAGE}
          imagePullPolicy: IfNotPresent
          command: [sleep, '86400']
${PROBE ? "          readinessProbe: { exec: { command: ['true'] }, periodSeconds: 10 }\n" : ''}`;
}

async function nodeEmpty(what, timeoutMs) {
  let last = [];
  await until(what, timeoutMs, async () => {
    const api = (await apiGet(`/api/v1/pods?fieldSelector=spec.nodeName%3D${NODE}`)).items.length;
    const local = (await daemonApi('GET', '/api/v1/pods')).json?.items?.length ?? -1;
    last = podLeftovers();
    return api === 0 && local === 0 && last.length === 0;
  }, 500).catch((e) => { throw new Error(`${e.message}; left: ${last.join(', ') || '(pods still listed)'}`); });
}

async function size(N, steady) {
  const sel = `app=bench-${N}`;
  const w = await watchPods(sel);
  const m0 = await scrape();
  const c0 = procStat(daemon.pid);
  const t0 = Date.now();
  let t1, c1, m1;
  try {
    await cp.kubectl(['apply', '-f', '-'], { input: deployment(N) });
    t1 = await until(`${N} pods Ready`, 120_000 + 3000 * N, () => {
      if (w.failed()) throw new Error(w.failed());
      const ready = [...w.pods.values()].filter((p) => p.ready !== undefined);
      return ready.length >= N ? Math.max(...ready.map((p) => p.ready)) : undefined;
    }, 50);
    c1 = procStat(daemon.pid);
    m1 = await scrape(); // before our watch ends (it would count then)
  } finally {
    await w.stop();
  }
  const pods = [...w.pods.values()];
  const lat = pods.map((p) => p.ready - p.firstSeen);
  const slim = pods.map((p) => p.running - p.created);
  const p99 = pctl(lat, 99);
  log(`N=${String(N).padStart(3)}  all ${N} Ready ${secs(t1 - t0)} after kubectl apply`);
  log(`       startup latency first seen ADDED → Running and Ready (primary, ms precision): p50 ${secs(pctl(lat, 50))}  p99 ${secs(p99)}  max ${secs(Math.max(...lat))}   SLO p99 <= 5 s: ${p99 <= 5000 ? 'met' : 'MISSED'}`);
  log(`       creationTimestamp (1 s, floored) → Running observed: p50 ${secs(pctl(slim, 50))}  p99 ${secs(pctl(slim, 99))}   (first seen ADDED ${secs(Math.min(...pods.map((p) => p.firstSeen)) - t0)} – ${secs(Math.max(...pods.map((p) => p.firstSeen)) - t0)} after the apply)`);
  const cpuMs = ((c1.user + c1.sys - c0.user - c0.sys) / HZ) * 1000;
  log(`       during apply → all Ready: ${m1.node - m0.node} requests by the node (${((m1.node - m0.node) / N).toFixed(1)}/pod), ${m1.total - m0.total} by all clients (finished ones); daemon CPU ${(cpuMs / 1000).toFixed(2)} s (${(cpuMs / N).toFixed(0)} ms/pod), RSS ${(c1.rss / 1048576).toFixed(0)} MB`);
  let steadyW;
  if (steady) {
    await sleep(SETTLE_S * 1000);
    steadyW = await idleWindow();
  }
  const td = Date.now();
  await cp.kubectl(['delete', 'deployment', `bench-${N}`, '--wait=true', '--timeout=120s'], { timeoutMs: 150_000 });
  await nodeEmpty(`node ${NODE} without pods`, 120_000 + 1000 * N);
  log(`       kubectl delete deployment → node has no pods (API, daemon, mounts, cgroups, veths): ${secs(Date.now() - td)}`);
  return steadyW;
}

// ---------------------------------------------------------------- cleanup
async function cleanup() {
  if (cleaning) return cleaning;
  cleaning = (async () => {
    const problems = [];
    if (cp?.kubectl && daemon?.exitCode === null) {
      // a stopped daemon leaves its containers running (by design): the pods go first
      await cp.kubectl(['delete', 'deployments', '--all', '--wait=true', '--timeout=60s'], { timeoutMs: 80_000 }).catch((e) => problems.push(`delete deployments: ${e.message}`));
      await nodeEmpty('node without pods (cleanup)', 90_000).catch((e) => problems.push(e.message));
    }
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      if (await Promise.race([exited.then(() => true), sleep(30_000).then(() => false)]) === false) { problems.push('daemon did not stop on SIGTERM in 30 s'); daemon.kill('SIGKILL'); await exited; }
    }
    if (cp?.dir) {
      const r = await run(CP, ['down'], { env: { CONTROL_PLANE_DIR: cp.dir }, timeoutMs: 120_000 });
      if (r.code !== 0) problems.push(`scripts/control-plane down: exit ${r.code}: ${r.stderr.trim().slice(-500)}`);
    }
    await cp?.agent?.close().catch(() => undefined);
    // what must be gone now; anything found is reported, then removed
    for (const p of processesMentioning(WORK)) { problems.push(`process ${p.pid}: ${p.cmd}`); try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
    if (cp?.dir) for (const p of processesMentioning(cp.dir)) { problems.push(`process ${p.pid}: ${p.cmd}`); try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ } }
    if (cp?.dir && fs.existsSync(cp.dir)) { problems.push(`control plane state ${cp.dir}`); fs.rmSync(cp.dir, { recursive: true, force: true }); }
    for (const m of mountsUnder(WORK).reverse()) { problems.push(`mount ${m}`); spawnSync('umount', ['-l', m], { stdio: 'ignore' }); }
    for (const c of cgroupDirs(CG, true)) {
      if (!/\/(besteffort|burstable)$/.test(c) && path.basename(c) !== path.basename(CG)) problems.push(`cgroup ${c}`);
      try { fs.rmdirSync(c); } catch { /* busy */ }
    }
    for (const c of cgroupDirs(CG, true)) problems.push(`cgroup ${c} (cannot be removed)`);
    const veths = spawnSync('ip', ['-o', 'link', 'show', 'master', BRIDGE], { encoding: 'utf8' }).stdout ?? '';
    for (const l of veths.split('\n').filter(Boolean)) problems.push(`veth ${l.split(':')[1]?.trim()}`);
    spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' }); // node-level, and in our network namespace anyway
    fs.rmSync(WORK, { recursive: true, force: true });
    return problems;
  })();
  return cleaning;
}

let failing;
async function fail(err) {
  if (failing) return;
  failing = true;
  console.error(`bench/cluster: ${err.stack ?? err}`);
  if (daemonLog && !String(err).includes('daemon exited')) console.error(`daemon log (tail):\n${daemonTail()}`);
  const problems = await cleanup();
  if (problems.length) console.error(`bench/cluster: left behind (removed now):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => fail(new Error(`got ${sig}`)));
const deadline = setTimeout(() => fail(new Error(`the run took longer than its bound of ${(DEADLINE_MS / 1000).toFixed(0)} s`)), DEADLINE_MS);

// ---------------------------------------------------------------- main
try {
  fs.mkdirSync(WORK, { recursive: true });
  log(`== bench/cluster: nodelet as the node of a Kubernetes v1.36 control plane on 127.0.0.1 (private network namespace); ${os.cpus().length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GB; ${new Date().toISOString()}`);
  log(`   Deployments of sleeping ${IMAGE} pods (imagePullPolicy IfNotPresent, image present), ${PROBE ? 'exec readiness probe `true` every 10 s' : 'no readiness probe'}; sizes ${SIZES.join(', ')}`);
  const upMs = await controlPlaneUp();
  const nodeMs = await startNode();
  log(`control plane up in ${secs(upMs)}; node ${NODE} Ready ${secs(nodeMs)} after the daemon started`);
  await sleep(SETTLE_S * 1000);
  const base = await idleWindow();
  log(`baseline (node Ready, no pods; ${base.sec.toFixed(0)} s idle window): ${fmtWindow(base)}`);
  log(`       by request (all clients, /s): ${fmtBy(base)}`);
  log('== kubectl apply → all Ready (the node\'s watch, admission, sandbox + container start and status patch; also the');
  log('   controller-manager creating the pods in slow-start batches and kube-scheduler binding them)');
  const largest = Math.max(...SIZES);
  let steady;
  for (const N of SIZES) {
    const w = await size(N, N === largest && !steady);
    steady ??= w;
  }
  log(`== steady state with ${largest} pods (${steady.sec.toFixed(0)} s idle window, ${SETTLE_S} s after all Ready):`);
  log(`   ${largest} pods: ${fmtWindow(steady)}`);
  log(`   0 pods:   ${fmtWindow(base)}`);
  log(`   API requests/s (apiserver_request_total delta over the window, every client; /metrics is not counted in it):`);
  log(`     with ${largest} pods ${steady.reqPerS.toFixed(2)}/s, baseline without pods ${base.reqPerS.toFixed(2)}/s, difference ${(Math.round((steady.reqPerS - base.reqPerS) * 100) / 100 || 0).toFixed(2)}/s`);
  if (!Number.isNaN(steady.nodePerS)) log(`     the node's own (APF flow schemas system-node-high + system-nodes = group system:nodes): with ${largest} pods ${steady.nodePerS.toFixed(2)}/s, without ${base.nodePerS.toFixed(2)}/s`);
  log(`     by request with ${largest} pods (all clients, /s): ${fmtBy(steady)}`);
  clearTimeout(deadline);
  const problems = await cleanup();
  if (problems.length) {
    console.error(`bench/cluster: left behind (removed now):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  log(`cleanup: Deployment deleted, node empty, daemon and control plane stopped; nothing left behind (mounts, cgroups, state, veths, processes, ${WORK}, the control plane's state dir). Total ${secs(Date.now() - T_START)}`);
  process.exit(0);
} catch (e) {
  await fail(e);
}
