// writeOciLayout / openImageArchive against the standard tools: skopeo and
// umoci must accept our layouts, and archives they write must read back with
// the same digests. Also checks the built-in busybox image really runs.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImageArchive, writeOciLayout, type LayerEntry } from '../../../src/image/archive.js';
import { decompressLayer, readStream, readTar, sha256, tempDir } from '../../unit/archive/helpers.js';

const run = (cmd: string, args: string[], opts: { cwd?: string } = {}) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });

let dir: string;
let layout: string;
let written: { manifestDigest: string; configDigest: string; diffIds: string[] };
const REF = 'localhost/nodelet/peer-test:v1';
const entries: LayerEntry[] = [
  { path: 'etc', type: 'dir' },
  { path: 'etc/motd', type: 'file', content: 'hello\n', mode: 0o640, uid: 7, gid: 8 },
  { path: 'etc/link', type: 'symlink', linkname: 'motd' },
  { path: 'etc/hard', type: 'hardlink', linkname: 'etc/motd' },
  { path: 'tmp', type: 'dir', mode: 0o1777 },
];

beforeAll(async () => {
  dir = await tempDir();
  layout = path.join(dir, 'layout');
  written = await writeOciLayout(layout, {
    layers: [{ entries }, { entries: [{ path: 'etc', type: 'dir' }, { path: 'etc/.wh.link', type: 'file' }, { path: 'etc/new', type: 'file', content: 'layer 2' }] }],
    config: { cmd: ['/bin/true'], env: ['PATH=/bin'] },
    refName: REF,
  });
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('writeOciLayout output is accepted by skopeo and umoci', () => {
  it('skopeo inspect reports our manifest digest, layers and config', () => {
    const out = JSON.parse(run('skopeo', ['inspect', `oci:${layout}:${REF}`]));
    expect(out.Digest).toBe(written.manifestDigest);
    expect(out.Layers).toHaveLength(2);
    expect(out.Env).toEqual(['PATH=/bin']);
    const raw = JSON.parse(run('skopeo', ['inspect', '--config', `oci:${layout}:${REF}`]));
    expect(raw.rootfs.diff_ids).toEqual(written.diffIds);
  });

  it('umoci lists the tag and unpacks the tree with whiteouts applied', async () => {
    expect(run('umoci', ['ls', '--layout', layout]).trim()).toBe(REF);
    const bundle = path.join(dir, 'bundle');
    run('umoci', ['unpack', '--image', `${layout}:${REF}`, bundle]);
    const root = path.join(bundle, 'rootfs');
    expect((await fs.readdir(path.join(root, 'etc'))).sort()).toEqual(['hard', 'motd', 'new']);
    const st = await fs.stat(path.join(root, 'etc/motd'));
    expect([st.mode & 0o7777, st.uid, st.gid, st.nlink]).toEqual([0o640, 7, 8, 2]);
    expect((await fs.stat(path.join(root, 'tmp'))).mode & 0o7777).toBe(0o1777);
    expect(await fs.readFile(path.join(root, 'etc/new'), 'utf8')).toBe('layer 2');
  });
});

describe('openImageArchive reads what the standard tools write', () => {
  it('skopeo copy to docker-archive: same config, layer digests = diff IDs, blobs verified', async () => {
    const file = path.join(dir, 'docker.tar');
    run('skopeo', ['copy', '-q', `oci:${layout}:${REF}`, `docker-archive:${file}:${REF}`]);
    const a = await openImageArchive(file);
    expect(a.images).toHaveLength(1);
    const img = a.images[0]!;
    expect(img.refName).toBe(REF);
    expect(img.configDigest).toBe(written.configDigest);
    expect(img.layers.map((l) => l.digest)).toEqual(written.diffIds);
    for (const l of img.layers) {
      const blob = await readStream(await a.openBlob(l.digest));
      expect(sha256(blob)).toBe(l.digest);
      expect(blob.length).toBe(l.size);
    }
    const first = await readTar(await readStream(await a.openBlob(img.layers[0]!.digest)));
    expect(first.find((e) => e.name === 'etc/motd')?.content.toString()).toBe('hello\n');
    await a.close();
  });

  it('skopeo copy to oci-archive: same manifest digest', async () => {
    const file = path.join(dir, 'oci.tar');
    run('skopeo', ['copy', '-q', `oci:${layout}:${REF}`, `oci-archive:${file}:${REF}`]);
    const a = await openImageArchive(file);
    expect(a.images.map((i) => [i.refName, i.manifestDigest, i.configDigest])).toEqual([[REF, written.manifestDigest, written.configDigest]]);
    const l = a.images[0]!.layers[1]!;
    const names = (await readTar(decompressLayer(await readStream(await a.openBlob(l.digest)), l.mediaType))).map((e) => e.name);
    expect(names).toEqual(['etc/', 'etc/.wh.link', 'etc/new']);
  });

  it('tar -cf of a layout directory (GNU tar, ./ prefixes) reads back the same', async () => {
    const file = path.join(dir, 'gnu.tar');
    run('tar', ['-C', layout, '-cf', file, '.']);
    const a = await openImageArchive(file);
    expect(a.images[0]!.manifestDigest).toBe(written.manifestDigest);
    expect(sha256(await readStream(await a.openBlob(a.images[0]!.layers[0]!.digest)))).toBe(a.images[0]!.layers[0]!.digest);
  });

  it('a corrupted docker-archive layer fails with an error naming the blob', async () => {
    const file = path.join(dir, 'corrupt.tar');
    run('skopeo', ['copy', '-q', `oci:${layout}:${REF}`, `docker-archive:${file}:${REF}`]);
    const a = await openImageArchive(file);
    const l = a.images[0]!.layers[0]!;
    // find the layer's bytes in the tar (it contains etc/motd's content) and flip one
    const buf = await fs.readFile(file);
    const at = buf.indexOf('hello\n');
    expect(at).toBeGreaterThan(0);
    buf[at] = 'j'.charCodeAt(0);
    await fs.writeFile(file, buf);
    const b = await openImageArchive(file);
    await expect(readStream(await b.openBlob(l.digest))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_BLOB_CORRUPT', message: expect.stringContaining(l.digest) });
  });
});

describe('built-in images (scripts/build-images)', () => {
  const build = path.resolve('images/build');
  it('busybox: unpacks with umoci and runs sh, with the app user and testprog', async () => {
    const bb = path.join(build, 'busybox');
    await expect(fs.stat(path.join(bb, 'index.json')), 'run scripts/build-images first').resolves.toBeTruthy();
    const a = await openImageArchive(bb);
    expect(a.images[0]!.refName).toBe('localhost/nodelet/busybox:v1');
    const cfg = JSON.parse(a.images[0]!.configBytes.toString());
    expect(cfg.config.Cmd).toEqual(['sh']);
    const bundle = path.join(dir, 'bb');
    run('umoci', ['unpack', '--image', `${bb}:localhost/nodelet/busybox:v1`, bundle]);
    const root = path.join(bundle, 'rootfs');
    const out = run('chroot', [root, '/bin/sh', '-c', 'id app; id nobody; stat -c %a /tmp; /usr/local/bin/testprog exit 3; echo rc=$?']);
    expect(out).toContain('uid=1000(app) gid=1000(app)');
    expect(out).toContain('uid=65534(nobody)');
    expect(out).toContain('1777');
    expect(out).toContain('rc=3');
  });

  it('testprog and busybox-nonroot images carry their configs', async () => {
    const t = await openImageArchive(path.join(build, 'testprog'));
    expect(t.images[0]!.refName).toBe('localhost/nodelet/testprog:v1');
    expect(JSON.parse(t.images[0]!.configBytes.toString()).config.Entrypoint).toEqual(['/testprog']);
    const n = await openImageArchive(path.join(build, 'busybox-nonroot'));
    expect(JSON.parse(n.images[0]!.configBytes.toString()).config.User).toBe('app');
  });
});
