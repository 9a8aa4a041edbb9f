#!/usr/bin/env node
// The NodeConformance test images (images/conformance/images.mjs), run by scripts/conformance-images:
//   node images/conformance/build.mjs build OUTDIR BINDIR BUSYBOX K8SDIR
//        (OUTDIR/netutil: the curl/nc binary of images/conformance/netutil, built beforehand)
//        one OCI image layout OUTDIR/layout (every image, ref name = <path>:<tag>) + OUTDIR/images.json
//   node images/conformance/build.mjs push OUTDIR HOST
//        pushes every image of OUTDIR/layout to the plain-HTTP registry HOST (127.0.0.1:PORT) over the
//        distribution API (blob upload POST + PUT, manifest PUT)
//   node images/conformance/build.mjs repo-list HOST FILE
//        writes the KUBE_TEST_REPO_LIST file: every registry key of test/utils/image/manifest.go -> HOST/...
// Uses the compiled dist/ (writeOciLayout), like images/build.mjs.
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { writeOciLayout, REF_NAME_ANNOTATION } from '../../dist/image/archive.js';
import { images, pause, repoList } from './images.mjs';

const [cmd, ...args] = process.argv.slice(2);
const die = (msg) => {
  console.error(`conformance-images: ${msg}`);
  process.exit(1);
};
const blobFile = (layout, digest) => join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
const readJson = (f) => JSON.parse(readFileSync(f, 'utf8'));

/** The files of prepare_registry.sh's layout for one image (an index over one manifest), under var/registry/NAME. */
function fakeRegistryEntries(layout, name, tag, manifestDigest) {
  const at = (kind, digest) => {
    const hex = digest.slice('sha256:'.length);
    return `var/registry/${name}/${kind}/sha256/${hex.slice(0, 2)}/${hex}/data`;
  };
  const manifestBytes = readFileSync(blobFile(layout, manifestDigest));
  const manifest = JSON.parse(manifestBytes);
  const index = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: manifest.mediaType, digest: manifestDigest, size: manifestBytes.length, platform: { architecture: 'amd64', os: 'linux' } }],
  }));
  const indexDigest = 'sha256:' + createHash('sha256').update(index).digest('hex');
  const entries = [
    { path: `var/registry/${name}/manifests/${tag}`, type: 'file', mode: 0o644, content: `${indexDigest}\n` },
    { path: at('manifests', indexDigest), type: 'file', mode: 0o644, content: index },
    { path: at('manifests', manifestDigest), type: 'file', mode: 0o644, content: manifestBytes },
  ];
  for (const d of [manifest.config, ...manifest.layers]) {
    entries.push({ path: at('blobs', d.digest), type: 'file', mode: 0o644, content: readFileSync(blobFile(layout, d.digest)) });
  }
  return entries;
}

async function build(outDir, bin, busybox, k8sDir) {
  const tmp = mkdtempSync(join(outDir, '.layout.tmp-'));
  chmodSync(tmp, 0o755);
  const summary = {};
  try {
    const ctx = { bin, busybox, k8sDir, netutil: join(outDir, 'netutil'), bash: process.env.BASH_STATIC || undefined };
    const add = async (img) => {
      const r = await writeOciLayout(tmp, { layers: img.layers(ctx), config: img.config, refName: img.ref, compression: 'gzip' });
      summary[img.ref] = r.manifestDigest;
      console.error(`conformance-images: ${img.ref} (${r.manifestDigest})`);
      return r;
    };
    const p = await add(pause);
    ctx.fakeRegistry = fakeRegistryEntries(tmp, 'pause', 'testing', p.manifestDigest);
    for (const img of images) await add(img);
    rmSync(join(outDir, 'layout'), { recursive: true, force: true });
    renameSync(tmp, join(outDir, 'layout'));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  writeFileSync(join(outDir, 'images.json'), JSON.stringify(summary, null, 2) + '\n');
}

async function ok(res, what, want) {
  const body = await res.body.text();
  if (!want.includes(res.statusCode)) throw new Error(`${what}: HTTP ${res.statusCode} ${body.slice(0, 300)}`);
}

async function pushBlob(base, repo, layout, digest) {
  const head = await request(`${base}/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  await head.body.dump();
  if (head.statusCode === 200) return;
  const post = await request(`${base}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await ok(post, `POST ${repo} blob upload`, [202]);
  const loc = new URL(String(post.headers.location), base);
  loc.searchParams.set('digest', digest);
  const data = readFileSync(blobFile(layout, digest));
  const put = await request(loc.toString(), {
    method: 'PUT',
    headers: { 'content-type': 'application/octet-stream', 'content-length': String(data.length) },
    body: data,
  });
  await ok(put, `PUT ${repo} blob ${digest}`, [201]);
}

async function push(outDir, host) {
  const layout = join(outDir, 'layout');
  const base = `http://${host}`;
  const index = readJson(join(layout, 'index.json'));
  let n = 0;
  for (const d of index.manifests) {
    const ref = d.annotations?.[REF_NAME_ANNOTATION];
    if (!ref) continue;
    const colon = ref.lastIndexOf(':');
    const repo = ref.slice(0, colon);
    const tag = ref.slice(colon + 1);
    const manifestBytes = readFileSync(blobFile(layout, d.digest));
    const manifest = JSON.parse(manifestBytes);
    for (const b of [manifest.config, ...manifest.layers]) await pushBlob(base, repo, layout, b.digest);
    const put = await request(`${base}/v2/${repo}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'content-type': manifest.mediaType },
      body: manifestBytes,
    });
    await ok(put, `PUT ${repo}:${tag} manifest`, [201]);
    n++;
  }
  console.error(`conformance-images: pushed ${n} images to ${host}`);
}

function writeRepoList(host, file) {
  const lines = Object.entries(repoList(host)).map(([k, v]) => `${k}: ${v}`);
  writeFileSync(file, lines.join('\n') + '\n');
}

try {
  if (cmd === 'build' && args.length === 4) await build(...args);
  else if (cmd === 'push' && args.length === 2) await push(...args);
  else if (cmd === 'repo-list' && args.length === 2) writeRepoList(...args);
  else die('usage: build.mjs build OUTDIR BINDIR BUSYBOX K8SDIR | push OUTDIR HOST | repo-list HOST FILE');
} catch (e) {
  die(e.stack ?? String(e));
}
