// bench/start: start+exit latency of a container running `true` from a busybox
// rootfs. Run through bench/start (private mount+net namespace). Options: --rounds N (default 100),
// --pause MS (default 30: idle time before each timed run, so runs do not share kernel state).
//
// Variants, interleaved round by round (order rotated each round):
//   nodelet            createContainer+startContainer+exit+removeContainer in a warm
//                      hostNetwork pod (no new netns), one runtime reused
//   nodelet+netns      the same in a pod with its own pinned network namespace
//                      (the netns exists per pod, created once, as with kubelet)
//   nodelet pod+netns  runPodSandbox (pins net/ipc/uts) + the container + removePodSandbox
//   crun / runc        `crun run` / `runc run` of an OCI bundle on the same rootfs
//                      (same namespaces; +netns adds a new network namespace)
//   unshare floor      `unshare --pid --fork --mount --uts --ipc --net true`
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';

const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const { NodeletRuntime } = await import(path.join(repo, 'dist/runtime/runtime.js'));
const { createCgroupManager } = await import(path.join(repo, 'dist/cgroups/index.js'));
const { createNamespacePinner } = await import(path.join(repo, 'dist/network/index.js'));
const { configureLogging } = await import(path.join(repo, 'dist/log.js'));
configureLogging({ level: 'error' });

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 && args[i + 1] !== undefined ? Number(args[i + 1]) : dflt; };
const rounds = opt('--rounds', 100) || 100;
// Pause before each timed run. A cgroup.procs write waits for an RCU grace period unless
// another one ran just before (the kernel's rcu_sync stays "entered" ~1 grace period after a
// writer): without a pause a tool that follows another cgroup writer rides on its predecessor's
// grace period and looks faster than it is alone.
const pauseMs = opt('--pause', 30);
const rand = randomBytes(3).toString('hex');
const work = fs.mkdtempSync('/dev/shm/nodelet-bench-');
const rootfs = path.join(work, 'rootfs');
const cgParent = `/nodelet-bench-${rand}`;
const peerCg = `/bench-peers-${rand}`;

// ---- a busybox rootfs (like test/helpers/rootfs.ts)
for (const d of ['bin', 'etc', 'proc', 'dev', 'sys', 'tmp', 'root']) fs.mkdirSync(path.join(rootfs, d), { recursive: true });
fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin/busybox'));
for (const a of ['sh', 'true']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\n');

// ---- OCI bundles for crun/runc (one config per variant; rootfs shared)
function bundle(name, withNet) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  const r = spawnSync('crun', ['spec'], { cwd: dir });
  if (r.status !== 0) throw new Error(`crun spec: ${r.stderr}`);
  const spec = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  spec.process.terminal = false;
  spec.process.args = ['/bin/true'];
  spec.root = { path: rootfs, readonly: false };
  spec.linux.namespaces = spec.linux.namespaces.filter((n) => withNet || n.type !== 'network');
  spec.linux.cgroupsPath = `${peerCg}/${name}`;
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(spec));
  return dir;
}
const bundles = { net: bundle('bundle-net', true), nonet: bundle('bundle-nonet', false) };

// ---- nodelet: one warm runtime; the image is a bind of the same rootfs (cached)
const images = {
  record: { id: 'sha256:' + 'b'.repeat(64), config: { env: [], user: '' } },
  async getImage() { return this.record; },
  async ensureImage() { return this.record; },
  async prepareRootfs() { return [{ type: 'bind', source: rootfs, options: ['rbind'] }]; },
  async removeRootfs() {},
};
// CNI is a per-pod cost (bridge/veth/IPAM), not part of a container start: not measured here.
const network = { async setUp() { return { ips: [], interfaceName: 'eth0' }; }, async check() {}, async tearDown() {} };
const cgroups = await createCgroupManager({ parent: cgParent });
const rt = new NodeletRuntime({ runRoot: path.join(work, 'run'), images, cgroups, pinner: createNamespacePinner(), network });
const exits = new Map();
rt.onContainerExit((e) => exits.get(e.containerId)?.(e));
const pod = (name, hostNetwork) => ({
  uid: randomBytes(8).toString('hex'), name, namespace: 'bench', hostname: name, hostNetwork, hostPID: false, hostIPC: false,
  shareProcessNamespace: false, hostAliases: [], portMappings: [], qosClass: 'BestEffort', resources: {}, labels: {}, annotations: {},
});
const ctr = (i) => ({
  name: `c${i}`, attempt: 0, imageRef: 'busybox', imageId: images.record.id, argv: ['/bin/true'], env: [], mounts: [], resources: {},
  tty: false, stdin: false, logPath: path.join(work, 'logs', `c${i}.log`), labels: {}, annotations: {},
  security: { privileged: false, supplementalGroups: [], capabilitiesAdd: [], capabilitiesDrop: [], readOnlyRootFilesystem: false, noNewPrivs: false },
});
const sbHost = await rt.runPodSandbox(pod('bench-host', true));
const sbNet = await rt.runPodSandbox(pod('bench-net', false));
let seq = 0;
async function nodeletRun(sb) {
  const id = await rt.createContainer(sb, ctr(seq++));
  const done = new Promise((r) => exits.set(id, r));
  await rt.startContainer(id);
  const ev = await done;
  exits.delete(id);
  await rt.removeContainer(id);
  if (ev.status.exitCode !== 0) throw new Error(`nodelet container exited ${ev.status.exitCode}: ${ev.status.message ?? ''}`);
}
async function nodeletPod() {
  const sb = await rt.runPodSandbox(pod(`p${seq}`, false));
  await nodeletRun(sb);
  await rt.removePodSandbox(sb);
}

function run(cmd, argv) {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} ${argv.join(' ')}: exit ${code}: ${err}`))));
  });
}
const stateRoot = { crun: path.join(work, 'crun-state'), runc: path.join(work, 'runc-state') };
const peer = (tool, b) => () => run(tool, ['--root', stateRoot[tool], 'run', '-b', bundles[b], `${tool}-${b}-${seq++}`]);

const variants = {
  'nodelet': () => nodeletRun(sbHost),
  'crun': peer('crun', 'nonet'),
  'runc': peer('runc', 'nonet'),
  'nodelet+netns': () => nodeletRun(sbNet),
  'crun+netns': peer('crun', 'net'),
  'runc+netns': peer('runc', 'net'),
  'nodelet pod+netns': nodeletPod,
  'unshare floor': () => run('unshare', ['--pid', '--fork', '--mount', '--uts', '--ipc', '--net', 'true']),
};
const names = Object.keys(variants);
const times = Object.fromEntries(names.map((n) => [n, []]));

try {
  for (const n of names) await variants[n](); // warm-up (page cache, lazy init), not counted
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const n of order) {
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
      const t0 = process.hrtime.bigint();
      await variants[n]();
      times[n].push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
  }
  const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
  const p90 = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length * 0.9)];
  const m = Object.fromEntries(names.map((n) => [n, med(times[n])]));
  console.log(`bench/start: ${rounds} interleaved rounds, busybox \`true\`, ${pauseMs} ms pause before each run, ${new Date().toISOString()}`);
  console.log('variant'.padEnd(20) + 'median ms'.padStart(10) + 'p90 ms'.padStart(9) + '  ratio');
  for (const n of names) {
    const ref = n.startsWith('nodelet') ? (n === 'nodelet' ? ` ${(m[n] / m.crun).toFixed(2)}x crun  ${(m[n] / m.runc).toFixed(2)}x runc` : n === 'nodelet+netns' ? ` ${(m[n] / m['crun+netns']).toFixed(2)}x crun+netns  ${(m[n] / m['runc+netns']).toFixed(2)}x runc+netns` : ` ${(m[n] / m['crun+netns']).toFixed(2)}x crun+netns`) : '';
    console.log(n.padEnd(20) + m[n].toFixed(2).padStart(10) + p90(times[n]).toFixed(2).padStart(9) + ' ' + ref);
  }
} finally {
  await rt.removePodSandbox(sbHost).catch(() => {});
  await rt.removePodSandbox(sbNet).catch(() => {});
  await rt.close();
  for (const ctl of fs.readdirSync('/sys/fs/cgroup')) {
    for (const p of [cgParent, peerCg]) {
      const d = path.join('/sys/fs/cgroup', ctl, p);
      if (!fs.existsSync(d)) continue;
      const dirs = [];
      const walk = (x) => { for (const e of fs.readdirSync(x, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(x, e.name)); dirs.push(x); };
      try { walk(d); } catch {}
      for (const x of dirs) try { fs.rmdirSync(x); } catch {}
    }
  }
  fs.rmSync(work, { recursive: true, force: true });
}
