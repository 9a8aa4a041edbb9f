// bench/pull: nodelet pull+unpack vs skopeo+umoci vs podman pull, against a
// local Distribution registry. Run through bench/pull (which puts it in a
// private network namespace). Options: --rounds N (default 5), --keep.
//
// 1. builds a 4-layer image (~250 MB uncompressed) with writeOciLayout:
//    busybox rootfs; ~200 MB of real files from /usr/lib/x86_64-linux-gnu;
//    ~20k small files; a layer of whiteouts deleting part of the large one;
// 2. starts docker-registry on 127.0.0.1 (temporary storage) and pushes it with skopeo;
// 3. N rounds, tool order rotated each round, each run in fresh directories on
//    /dev/shm (removed after the round, never inside a timed part);
// 4. prints medians, MB/s, ratios and the machine's gunzip/sha256 throughput.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const rounds = Number(args[args.indexOf('--rounds') + 1] ?? 0) || 5;
const keep = args.includes('--keep');
const LIB = '/usr/lib/x86_64-linux-gnu';
const BIG_BYTES = 212e6;
const SMALL_FILES = 20000;
const MB = 1e6;

const log = (...a) => console.log(...a);
const work = fs.mkdtempSync('/dev/shm/nodelet-bench-'); // short: podman wants runroot < 50 chars
let registry;

function sh(cmd, argv, opts = {}) {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} exited ${r.status}: ${(r.stderr || '').slice(-2000)}`);
  return r.stdout;
}

/** Runs a command, returning elapsed seconds, or an error string. */
function timed(cmd, argv, opts = {}) {
  return new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], ...opts });
    let err = '';
    c.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
    c.on('error', (e) => resolve({ error: e.message }));
    c.on('close', (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      const lines = err.trim().split('\n');
      const why = lines.filter((l) => /error/i.test(l)).slice(0, 2).join(' | ') || lines.slice(-3).join(' | ');
      resolve(code === 0 ? { seconds: s } : { error: `exit ${code}: ${why}` });
    });
  });
}

function requireTools() {
  const missing = ['docker-registry', 'skopeo', 'umoci', 'podman', 'gzip', 'sha256sum', 'unshare'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
  if (missing.length) throw new Error(`missing tools: ${missing.join(', ')} (run scripts/setup)`);
  if (!fs.existsSync(path.join(repo, 'dist/image/archive.js'))) throw new Error('dist/ missing: run npm run build');
  if (!fs.existsSync(path.join(repo, 'images/build/bin/testprog'))) throw new Error('images/build missing: run scripts/build-images');
}

// ---------------------------------------------------------------------------
// The image

/**
 * Copies an even sample of LIB's regular files (and all its symlinks), ~BIG_BYTES
 * in total, so the layer holds many top-level libraries as well as subtrees.
 */
async function copyBigTree(dest) {
  const all = [];
  const walk = async (rel) => {
    for (const n of (await fsp.readdir(path.join(LIB, rel))).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await fsp.lstat(path.join(LIB, r));
      if (st.isDirectory()) await walk(r);
      else if (st.isFile() || st.isSymbolicLink()) all.push({ r, st });
    }
  };
  await walk('');
  const ratio = BIG_BYTES / all.reduce((s, f) => s + (f.st.isFile() ? f.st.size : 0), 0);
  let seen = 0;
  let total = 0;
  const top = new Set();
  for (const { r, st } of all) {
    if (st.isFile()) {
      seen += st.size;
      if (total + st.size > seen * ratio + 1e6) continue;
    }
    const to = path.join(dest, r);
    await fsp.mkdir(path.dirname(to), { recursive: true });
    if (st.isSymbolicLink()) await fsp.symlink(await fsp.readlink(path.join(LIB, r)), to);
    else {
      await fsp.copyFile(path.join(LIB, r), to);
      await fsp.chmod(to, st.mode & 0o7777);
      total += st.size;
    }
    top.add(r.split('/')[0]);
  }
  return { total, top: [...top].sort() };
}

function smallFilesLayer() {
  const entries = [{ path: 'srv', type: 'dir' }, { path: 'srv/small', type: 'dir' }];
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
  const perDir = 100;
  for (let d = 0; d < SMALL_FILES / perDir; d++) {
    const dir = `srv/small/d${String(d).padStart(3, '0')}`;
    entries.push({ path: dir, type: 'dir' });
    for (let f = 0; f < perDir; f++) {
      const len = 64 + (rnd() % 2000);
      const buf = Buffer.alloc(len);
      for (let i = 0; i < len; i += 4) buf.writeUInt32LE(rnd(), Math.min(i, len - 4));
      entries.push({ path: `${dir}/f${String(f).padStart(3, '0')}`, type: 'file', content: buf.toString('base64').slice(0, len), mode: 0o644 });
    }
  }
  return { entries };
}

/** Deletes every third top-level entry of the big tree and makes one directory opaque. */
function whiteoutLayer(top, opaqueDir) {
  const base = `usr/lib/x86_64-linux-gnu`;
  const entries = [{ path: 'usr', type: 'dir' }, { path: 'usr/lib', type: 'dir' }, { path: base, type: 'dir' }];
  top.filter((n, i) => i % 3 === 0 && n !== opaqueDir).forEach((n) => entries.push({ path: `${base}/.wh.${n}`, type: 'file' }));
  if (opaqueDir) {
    entries.push({ path: `${base}/${opaqueDir}`, type: 'dir' });
    entries.push({ path: `${base}/${opaqueDir}/.wh..wh..opq`, type: 'file' });
    entries.push({ path: `${base}/${opaqueDir}/replaced`, type: 'file', content: 'opaque dir content\n' });
  }
  return { entries: entries.sort((a, b) => (a.path < b.path ? -1 : 1)) };
}

async function buildImage() {
  const { writeOciLayout } = await import(path.join(repo, 'dist/image/archive.js'));
  const { images } = await import(path.join(repo, 'images/busybox/image.mjs'));
  const bigSrc = path.join(work, 'src-big');
  const { total, top } = await copyBigTree(path.join(bigSrc, 'usr/lib/x86_64-linux-gnu'));
  const dirs = top.filter((n) => fs.lstatSync(path.join(bigSrc, 'usr/lib/x86_64-linux-gnu', n)).isDirectory());
  const layers = [
    ...images[0].layers({ busybox: '/bin/busybox', testprog: path.join(repo, 'images/build/bin/testprog') }),
    { dir: bigSrc },
    smallFilesLayer(),
    whiteoutLayer(top, dirs[0]),
  ];
  const layout = path.join(work, 'layout');
  const r = await writeOciLayout(layout, { layers, compression: 'gzip', refName: 'bench:v1', config: { cmd: ['sh'], env: ['PATH=/usr/local/bin:/usr/bin:/bin'] } });
  await fsp.rm(bigSrc, { recursive: true, force: true });
  const manifest = JSON.parse(fs.readFileSync(path.join(layout, 'blobs/sha256', r.manifestDigest.slice(7)), 'utf8'));
  const blobs = manifest.layers.map((l) => path.join(layout, 'blobs/sha256', l.digest.slice(7)));
  const compressed = manifest.layers.reduce((s, l) => s + l.size, 0);
  let uncompressed = 0;
  for (const b of blobs) uncompressed += Number(sh('sh', ['-c', 'gzip -dc "$1" | wc -c', '_', b]).trim());
  log(`image: 4 layers, ${(compressed / MB).toFixed(1)} MB compressed, ${(uncompressed / MB).toFixed(1)} MB uncompressed (big layer copied ${(total / MB).toFixed(0)} MB from ${LIB}, ${SMALL_FILES} small files, ${Math.ceil(top.length / 3)} whiteouts of ${top.length} top-level entries + 1 opaque dir)`);
  return { layout, blobs, compressed, uncompressed, manifestDigest: r.manifestDigest };
}

// ---------------------------------------------------------------------------
// Registry

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startRegistry() {
  const port = await freePort();
  const dir = path.join(work, 'registry');
  fs.mkdirSync(dir);
  const cfg = path.join(dir, 'config.yml');
  fs.writeFileSync(cfg, `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:${port}\n`);
  registry = spawn('docker-registry', ['serve', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  registry.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/`);
      if (r.status === 200) return `127.0.0.1:${port}`;
    } catch {
      /* not up yet */
    }
    if (registry.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not start: ${err}`);
}

// ---------------------------------------------------------------------------
// Contenders: each returns the command to time for a fresh directory.

const podmanConf = () => {
  const f = path.join(work, 'containers.conf');
  fs.writeFileSync(f, '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=16384:16384"]\n[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n');
  return f;
};

function contenders(ref) {
  const conf = podmanConf();
  return {
    nodelet: (d) => [[process.execPath, [path.join(repo, 'dist/cli/main.js'), '--root', `${d}/root`, '--run-root', `${d}/run`, 'pull', '--quiet', ref]]],
    'skopeo+umoci': (d) => [
      ['skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${ref}`, `oci:${d}/oci:v1`]],
      ['umoci', ['unpack', '--image', `${d}/oci:v1`, `${d}/bundle`]],
    ],
    podman: (d) => [
      [
        'unshare',
        ['--mount', '--propagation', 'private', '--', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$@"', 'peer',
          'podman', '--root', `${d}/storage`, '--runroot', `${d}/runroot`, '--tmpdir', `${d}/tmp`, '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
          'pull', '-q', '--tls-verify=false', ref],
        { env: { ...process.env, CONTAINERS_CONF: conf, CONTAINERS_REGISTRIES_CONF: path.join(work, 'registries.conf') } },
      ],
    ],
  };
}

/** After each timed run (not timed): did the tool really produce the image? */
function checks(ref) {
  const ok = (cmd, argv, opts = {}) => spawnSync(cmd, argv, { stdio: 'ignore', ...opts }).status === 0;
  return {
    nodelet: (d) => ok(process.execPath, [path.join(repo, 'dist/cli/main.js'), '--root', `${d}/root`, '--run-root', `${d}/run`, 'image', 'inspect', ref]),
    'skopeo+umoci': (d) => fs.existsSync(`${d}/bundle/rootfs/srv/small/d199/f099`) && fs.existsSync(`${d}/bundle/rootfs/bin/busybox`),
    podman: (d) => spawnSync('podman', ['--root', `${d}/storage`, '--runroot', `${d}/runroot`, '--storage-driver', 'overlay', 'images', '-q'], { encoding: 'utf8' }).stdout?.trim().length > 0,
  };
}

async function runOnce(steps, check, dir) {
  await fsp.mkdir(dir, { recursive: true });
  let total = 0;
  for (const [cmd, argv, opts] of steps(dir)) {
    const r = await timed(cmd, argv, opts);
    if (r.error) return r;
    total += r.seconds;
  }
  if (!check(dir)) return { error: 'the run exited 0 but its result check failed (image missing)' };
  return { seconds: total };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** gunzip and sha256 throughput of this machine on the same layer data, MB/s of uncompressed bytes. */
async function machineLimits(img) {
  const raw = path.join(work, 'uncompressed.tar');
  sh('sh', ['-c', `gzip -dc ${img.blobs.map((b) => `"${b}"`).join(' ')} > "${raw}"`]);
  const best = async (cmd) => {
    const times = [];
    for (let i = 0; i < 3; i++) times.push((await timed('sh', ['-c', cmd])).seconds);
    return Math.min(...times);
  };
  const gunzip = await best(`gzip -dc ${img.blobs.map((b) => `"${b}"`).join(' ')} | wc -c >/dev/null`);
  const sha = await best(`sha256sum "${raw}" >/dev/null`);
  const shaGz = await best(`sha256sum ${img.blobs.map((b) => `"${b}"`).join(' ')} >/dev/null`);
  await fsp.rm(raw);
  return { gunzip: img.uncompressed / MB / gunzip, sha256: img.uncompressed / MB / sha, sha256Compressed: img.compressed / MB / shaGz };
}

async function main() {
  requireTools();
  log(`bench/pull: work dir ${work}, ${rounds} rounds, ${spawnSync('nproc').stdout?.toString().trim()} CPUs`);
  const img = await buildImage();
  const host = await startRegistry();
  fs.writeFileSync(path.join(work, 'registries.conf'), `[[registry]]\nlocation = "${host}"\ninsecure = true\n`);
  const ref = `${host}/bench:v1`;
  sh('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${img.layout}:bench:v1`, `docker://${ref}`]);
  log(`registry: ${ref}`);

  const tools = contenders(ref);
  const verify = checks(ref);
  const names = Object.keys(tools);
  const results = Object.fromEntries(names.map((n) => [n, []]));
  const perRound = []; // {tool: seconds} per round, for paired ratios
  const failures = {};
  for (let r = 0; r < rounds; r++) {
    const order = names.map((_, i) => names[(i + r) % names.length]);
    const line = [];
    const times = {};
    perRound.push(times);
    for (const name of order) {
      if (failures[name]) continue;
      const dir = path.join(work, 'r', `${r}${name[0]}`);
      const res = await runOnce(tools[name], verify[name], dir);
      if (res.error) {
        failures[name] = res.error;
        line.push(`${name} n/a`);
      } else {
        results[name].push(res.seconds);
        times[name] = res.seconds;
        line.push(`${name} ${res.seconds.toFixed(2)}s`);
      }
      // outside the timed part: tmpfs, so deleting does not slow later creates
      await fsp.rm(dir, { recursive: true, force: true });
    }
    log(`round ${r + 1}: ${line.join(', ')}`);
  }

  const limits = await machineLimits(img);
  log('');
  log(`${'tool'.padEnd(14)} ${'median'.padStart(8)} ${'MB/s'.padStart(8)}   runs`);
  const med = {};
  for (const n of names) {
    if (results[n].length === 0) {
      log(`${n.padEnd(14)} ${'n/a'.padStart(8)} ${'n/a'.padStart(8)}   ${failures[n] ?? ''}`);
      continue;
    }
    med[n] = median(results[n]);
    log(`${n.padEnd(14)} ${(med[n].toFixed(2) + 's').padStart(8)} ${(img.uncompressed / MB / med[n]).toFixed(1).padStart(8)}   ${results[n].map((s) => s.toFixed(2)).join(' ')}`);
  }
  log('');
  for (const other of names.filter((n) => n !== 'nodelet')) {
    const ratio = med.nodelet && med[other] ? `${(med[other] / med.nodelet).toFixed(2)}x` : 'n/a';
    const paired = perRound.filter((t) => t.nodelet && t[other]).map((t) => t[other] / t.nodelet);
    const pairedText = paired.length ? `${median(paired).toFixed(2)}x (rounds: ${paired.map((x) => x.toFixed(2)).join(' ')})` : 'n/a';
    log(`nodelet vs ${other}: ratio of medians ${ratio}, median of per-round ratios ${pairedText} (${other} time / nodelet time; goal >= 1.5x)`);
  }
  log(`machine: gunzip ${limits.gunzip.toFixed(0)} MB/s (uncompressed output, gzip -dc | wc), sha256 ${limits.sha256.toFixed(0)} MB/s (sha256sum, uncompressed), sha256 of compressed blobs ${limits.sha256Compressed.toFixed(0)} MB/s of compressed input`);
  log(`floor for one pass over this image: gunzip ${(img.uncompressed / MB / limits.gunzip).toFixed(2)}s + sha256(uncompressed) ${(img.uncompressed / MB / limits.sha256).toFixed(2)}s`);
}

async function cleanup() {
  if (registry && registry.exitCode === null) {
    registry.kill('SIGTERM');
    await new Promise((r) => registry.once('close', r));
  }
  if (!keep) await fsp.rm(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => cleanup().finally(() => process.exit(130)));
main()
  .then(cleanup)
  .catch(async (e) => {
    console.error(`bench/pull: ${e.message}`);
    await cleanup();
    process.exit(1);
  });
