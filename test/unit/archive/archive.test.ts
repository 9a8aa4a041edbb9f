import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { computePlatformChoice, hostPlatform, openImageArchive, parsePlatform, writeOciLayout, type LayerEntry } from '../../../src/image/archive.js';
import { computeChainIds } from '../../../src/image/chain.js';
import { decompressLayer, makeTar, readStream, readTar, sha256, tempDir } from './helpers.js';

const dirs: string[] = [];
async function tmp(): Promise<string> {
  const d = await tempDir();
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await fs.rm(d, { recursive: true, force: true });
});

const sampleEntries: LayerEntry[] = [
  { path: 'bin', type: 'dir' },
  { path: 'bin/tool', type: 'file', mode: 0o4755, uid: 12, gid: 34, content: 'binary!' },
  { path: 'bin/tool-link', type: 'hardlink', linkname: 'bin/tool' },
  { path: 'bin/sh', type: 'symlink', linkname: '/bin/tool' },
  { path: 'dev', type: 'dir' },
  { path: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
  { path: 'dev/sda', type: 'block', mode: 0o660, devmajor: 8, devminor: 0 },
  { path: 'dev/pipe', type: 'fifo', mode: 0o600 },
  { path: 'etc', type: 'dir', mtime: new Date('2020-01-02T03:04:05Z') },
  { path: 'etc/cap', type: 'file', content: Buffer.from([0, 1, 2, 255]), xattrs: { 'user.test': 'hello', 'security.capability': 'x' } },
  { path: 'tmp', type: 'dir', mode: 0o1777 },
  { path: `deep/${'n'.repeat(120)}/${'m'.repeat(120)}`, type: 'file', content: 'long name' },
];

async function layerEntries(dir: string, platform?: string) {
  const a = await openImageArchive(dir, platform ? { platform } : {});
  const img = a.images[0]!;
  const layers = [];
  for (const l of img.layers) layers.push(await readTar(decompressLayer(await readStream(await a.openBlob(l.digest)), l.mediaType)));
  await a.close();
  return { img, layers };
}

describe('writeOciLayout', () => {
  it('writes a layout whose layer holds exactly the entries given, with their metadata', async () => {
    const dir = await tmp();
    const r = await writeOciLayout(dir, { layers: [{ entries: sampleEntries }], refName: 'example.com/x:v1', config: { cmd: ['sh'], env: ['A=1'], exposedPorts: ['80', '53/udp'], user: '12:34', labels: { a: 'b' }, stopSignal: 'SIGINT', workingDir: '/w', entrypoint: ['/bin/tool'] } });
    expect(JSON.parse(await fs.readFile(path.join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
    const { img, layers } = await layerEntries(dir);
    expect(img.refName).toBe('example.com/x:v1');
    expect(img.manifestDigest).toBe(r.manifestDigest);
    expect(img.configDigest).toBe(r.configDigest);
    expect(img.layers[0]!.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
    const cfg = JSON.parse(img.configBytes.toString());
    expect(cfg.rootfs.diff_ids).toEqual(r.diffIds);
    expect(cfg.config).toEqual({ Cmd: ['sh'], Env: ['A=1'], ExposedPorts: { '80/tcp': {}, '53/udp': {} }, User: '12:34', Labels: { a: 'b' }, StopSignal: 'SIGINT', WorkingDir: '/w', Entrypoint: ['/bin/tool'] });
    expect(cfg.architecture).toBe(hostPlatform().architecture);

    const byName = new Map(layers[0]!.map((e) => [e.name, e]));
    expect(layers[0]!.map((e) => e.name)).toEqual(sampleEntries.map((e) => (e.type === 'dir' ? `${e.path}/` : e.path)));
    expect(byName.get('bin/tool')).toMatchObject({ type: 'file', mode: 0o4755, uid: 12, gid: 34, mtime: 0 });
    expect(byName.get('bin/tool')!.content.toString()).toBe('binary!');
    expect(byName.get('bin/tool-link')).toMatchObject({ type: 'link', linkname: 'bin/tool' });
    expect(byName.get('bin/sh')).toMatchObject({ type: 'symlink', linkname: '/bin/tool' });
    expect(byName.get('dev/null')).toMatchObject({ type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 });
    expect(byName.get('dev/sda')).toMatchObject({ type: 'block-device', devmajor: 8, devminor: 0 });
    expect(byName.get('dev/pipe')).toMatchObject({ type: 'fifo', mode: 0o600 });
    expect(byName.get('etc/')!.mtime).toBe(Date.parse('2020-01-02T03:04:05Z'));
    expect(byName.get('etc/cap')!.pax).toMatchObject({ 'SCHILY.xattr.user.test': 'hello', 'SCHILY.xattr.security.capability': 'x' });
    expect(byName.get('tmp/')!.mode).toBe(0o1777);
    expect(byName.get(`deep/${'n'.repeat(120)}/${'m'.repeat(120)}`)!.content.toString()).toBe('long name');
  });

  it('is deterministic: the same input gives the same digests', async () => {
    const a = await writeOciLayout(await tmp(), { layers: [{ entries: sampleEntries }, { entries: [{ path: 'x', type: 'file', content: 'y' }] }] });
    const b = await writeOciLayout(await tmp(), { layers: [{ entries: sampleEntries }, { entries: [{ path: 'x', type: 'file', content: 'y' }] }] });
    expect(b).toEqual(a);
    expect(a.diffIds).toHaveLength(2);
  });

  it.each(['none', 'zstd', 'gzip'] as const)('compression %s: diff IDs are the digests of the uncompressed tars', async (compression) => {
    const dir = await tmp();
    const r = await writeOciLayout(dir, { compression, layers: [{ entries: sampleEntries }] });
    const a = await openImageArchive(dir);
    const l = a.images[0]!.layers[0]!;
    expect(l.mediaType).toBe({ none: 'application/vnd.oci.image.layer.v1.tar', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd', gzip: 'application/vnd.oci.image.layer.v1.tar+gzip' }[compression]);
    const blob = await readStream(await a.openBlob(l.digest));
    expect(sha256(blob)).toBe(l.digest);
    expect(blob.length).toBe(l.size);
    expect(sha256(decompressLayer(blob, l.mediaType))).toBe(r.diffIds[0]);
    if (compression === 'none') expect(l.digest).toBe(r.diffIds[0]);
  });

  it('packs a directory tree: sorted, numeric owners, hardlinks and symlinks kept', async () => {
    const src = await tmp();
    await fs.mkdir(path.join(src, 'b/c'), { recursive: true });
    await fs.writeFile(path.join(src, 'b/c/file'), 'content');
    await fs.link(path.join(src, 'b/c/file'), path.join(src, 'a-hard'));
    await fs.symlink('b/c/file', path.join(src, 'z-sym'));
    await fs.writeFile(path.join(src, 'big'), Buffer.alloc(3 << 20, 7));
    await fs.chown(path.join(src, 'b/c/file'), 1234, 5678);
    await fs.chmod(path.join(src, 'b'), 0o750);
    execFileSync('mknod', ['-m', '600', path.join(src, 'dev-c'), 'c', '10', '1000']);
    execFileSync('mknod', ['-m', '600', path.join(src, 'dev-b'), 'b', '259', '70000']);
    execFileSync('mkfifo', [path.join(src, 'fifo')]);
    const dir = await tmp();
    await writeOciLayout(dir, { layers: [{ dir: src }] });
    const { layers } = await layerEntries(dir);
    const entries = layers[0]!;
    expect(entries.map((e) => e.name)).toEqual(['a-hard', 'b/', 'b/c/', 'b/c/file', 'big', 'dev-b', 'dev-c', 'fifo', 'z-sym']);
    const by = new Map(entries.map((e) => [e.name, e]));
    expect(by.get('a-hard')).toMatchObject({ type: 'file', uid: 1234, gid: 5678 });
    expect(by.get('a-hard')!.content.toString()).toBe('content');
    expect(by.get('b/c/file')).toMatchObject({ type: 'link', linkname: 'a-hard' });
    expect(by.get('b/')!.mode).toBe(0o750);
    expect(by.get('big')!.content.equals(Buffer.alloc(3 << 20, 7))).toBe(true);
    expect(by.get('dev-c')).toMatchObject({ type: 'character-device', devmajor: 10, devminor: 1000, mode: 0o600 });
    expect(by.get('dev-b')).toMatchObject({ type: 'block-device', devmajor: 259, devminor: 70000 });
    expect(by.get('fifo')).toMatchObject({ type: 'fifo' });
    expect(by.get('z-sym')).toMatchObject({ type: 'symlink', linkname: 'b/c/file' });
  });

  it('adds images to an existing layout and replaces an entry of the same ref name', async () => {
    const dir = await tmp();
    const one = await writeOciLayout(dir, { layers: [{ entries: [{ path: 'a', type: 'file', content: '1' }] }], refName: 'one' });
    await writeOciLayout(dir, { layers: [{ entries: [{ path: 'a', type: 'file', content: '2' }] }], refName: 'two' });
    const two = await writeOciLayout(dir, { layers: [{ entries: [{ path: 'a', type: 'file', content: '3' }] }], refName: 'two' });
    const a = await openImageArchive(dir);
    expect(a.images.map((i) => [i.refName, i.manifestDigest])).toEqual([
      ['one', one.manifestDigest],
      ['two', two.manifestDigest],
    ]);
  });

  it('keeps a raw tar layer as given (hostile tests use this)', async () => {
    const raw = await makeTar([{ name: '../escape', content: 'x' }]);
    const dir = await tmp();
    const r = await writeOciLayout(dir, { compression: 'none', layers: [{ tar: raw }] });
    expect(r.diffIds[0]).toBe(sha256(raw));
    const a = await openImageArchive(dir);
    expect((await readStream(await a.openBlob(r.diffIds[0]!))).equals(raw)).toBe(true);
  });

  it('refuses an entry without a linkname, writing no blob', async () => {
    const dir = await tmp();
    await expect(writeOciLayout(dir, { layers: [{ entries: [{ path: 'l', type: 'symlink' }] }] })).rejects.toMatchObject({ code: 'ERR_ARCHIVE_LAYER_ENTRY' });
    expect(await fs.readdir(path.join(dir, 'blobs/sha256'))).toEqual([]);
  });
});

describe('platform selection', () => {
  const amd = { os: 'linux', architecture: 'amd64' };
  const arm64 = { os: 'linux', architecture: 'arm64' };
  const arm64v8 = { os: 'linux', architecture: 'arm64', variant: 'v8' };
  const armv6 = { os: 'linux', architecture: 'arm', variant: 'v6' };
  const armv7 = { os: 'linux', architecture: 'arm', variant: 'v7' };
  it.each([
    ['linux/amd64', [armv7, amd], 1],
    ['linux/arm64/v8', [amd, arm64], 1],
    ['linux/arm64', [arm64v8], 0],
    ['linux/arm/v7', [armv6, armv7], 1],
    ['linux/arm', [armv6, { os: 'linux', architecture: 'arm' }], 1],
    ['linux/arm/v5', [armv6, armv7], -1],
    ['linux/s390x', [amd, undefined, arm64], -1],
    ['windows/amd64', [amd], -1],
  ] as const)('%s among %j -> %i', (want, cands, expected) => {
    expect(computePlatformChoice(parsePlatform(want), [...cands])).toBe(expected);
  });
  it('rejects a malformed platform', () => {
    expect(() => parsePlatform('amd64')).toThrow(expect.objectContaining({ code: 'ERR_IMAGE_PLATFORM_INVALID' }));
    expect(() => parsePlatform('linux//v7')).toThrow(expect.objectContaining({ code: 'ERR_IMAGE_PLATFORM_INVALID' }));
  });
});

/** Two single-platform images joined under a nested image index, as `docker buildx` writes them. */
async function multiPlatformLayout(dir: string) {
  const amd = await writeOciLayout(dir, { layers: [{ entries: [{ path: 'arch', type: 'file', content: 'amd64' }] }], platform: { os: 'linux', architecture: 'amd64' }, refName: 'tmp-amd' });
  const arm = await writeOciLayout(dir, { layers: [{ entries: [{ path: 'arch', type: 'file', content: 'arm64' }] }], platform: { os: 'linux', architecture: 'arm64', variant: 'v8' }, refName: 'tmp-arm' });
  const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'));
  const nested = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index.manifests.map((m: any) => ({ ...m, annotations: undefined })) }));
  await fs.writeFile(path.join(dir, 'blobs/sha256', sha256(nested).slice(7)), nested);
  const top = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(nested), size: nested.length, annotations: { 'org.opencontainers.image.ref.name': 'multi:v1' } }] };
  await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify(top));
  return { amd, arm };
}

describe('openImageArchive', () => {
  it('picks the platform from a nested multi-platform index', async () => {
    const dir = await tmp();
    const { amd, arm } = await multiPlatformLayout(dir);
    const a = await openImageArchive(dir, { platform: 'linux/arm64' });
    expect(a.images.map((i) => [i.refName, i.manifestDigest])).toEqual([['multi:v1', arm.manifestDigest]]);
    const b = await openImageArchive(dir, { platform: 'linux/amd64' });
    expect(b.images[0]!.manifestDigest).toBe(amd.manifestDigest);
    const { layers } = await layerEntries(dir, 'linux/arm64/v8');
    expect(layers[0]![0]!.content.toString()).toBe('arm64');
    await expect(openImageArchive(dir, { platform: 'linux/riscv64' })).rejects.toMatchObject({ code: 'ERR_IMAGE_PLATFORM_NOT_FOUND', message: expect.stringContaining('linux/amd64, linux/arm64/v8') });
  });

  it('fails reading a corrupted layer with an error naming the blob', async () => {
    const dir = await tmp();
    await writeOciLayout(dir, { layers: [{ entries: sampleEntries }] });
    const a = await openImageArchive(dir);
    const l = a.images[0]!.layers[0]!;
    const file = path.join(dir, 'blobs/sha256', l.digest.slice(7));
    const bytes = await fs.readFile(file);
    bytes[bytes.length - 10] ^= 0xff;
    await fs.writeFile(file, bytes);
    await expect(readStream(await a.openBlob(l.digest))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_BLOB_CORRUPT', message: expect.stringContaining(l.digest) });
    await fs.writeFile(file, bytes.subarray(0, 100)); // truncated
    await expect(readStream(await a.openBlob(l.digest))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_BLOB_CORRUPT' });
    await fs.rm(file);
    await expect(a.openBlob(l.digest)).rejects.toMatchObject({ code: 'ERR_ARCHIVE_BLOB_NOT_FOUND' });
  });

  it('treats same-name entries of different platforms as one multi-platform image, and keeps untagged images apart', async () => {
    const dir = await tmp();
    const amd = await writeOciLayout(dir, { layers: [{ entries: [{ path: 'a', type: 'file', content: 'amd' }] }], platform: { os: 'linux', architecture: 'amd64' } });
    const arm = await writeOciLayout(dir, { layers: [{ entries: [{ path: 'a', type: 'file', content: 'arm' }] }], platform: { os: 'linux', architecture: 'arm64' } });
    const amd2 = await writeOciLayout(dir, { layers: [{ entries: [{ path: 'a', type: 'file', content: 'amd2' }] }], platform: { os: 'linux', architecture: 'amd64' } });
    // three untagged entries, two of one platform: all kept
    expect((await openImageArchive(dir)).images.map((i) => i.manifestDigest)).toEqual([amd.manifestDigest, arm.manifestDigest, amd2.manifestDigest]);
    const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'));
    index.manifests = index.manifests.slice(0, 2).map((m: any) => ({ ...m, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }));
    await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    expect((await openImageArchive(dir, { platform: 'linux/arm64' })).images.map((i) => [i.refName, i.manifestDigest])).toEqual([['v1', arm.manifestDigest]]);
    expect((await openImageArchive(dir, { platform: 'linux/amd64' })).images.map((i) => i.manifestDigest)).toEqual([amd.manifestDigest]);
  });

  it('refuses a corrupted config or manifest when opening', async () => {
    const dir = await tmp();
    const r = await writeOciLayout(dir, { layers: [{ entries: sampleEntries }] });
    const cfg = path.join(dir, 'blobs/sha256', r.configDigest.slice(7));
    await fs.writeFile(cfg, (await fs.readFile(cfg, 'utf8')).replace('amd64', 'arm64'));
    await expect(openImageArchive(dir)).rejects.toMatchObject({ code: 'ERR_ARCHIVE_BLOB_CORRUPT', message: expect.stringContaining(r.configDigest) });
    const man = path.join(dir, 'blobs/sha256', r.manifestDigest.slice(7));
    await fs.appendFile(man, ' ');
    await expect(openImageArchive(dir)).rejects.toMatchObject({ code: 'ERR_ARCHIVE_BLOB_CORRUPT', message: expect.stringContaining(r.manifestDigest) });
  });

  it('refuses digests that are not digests (no path tricks through index.json)', async () => {
    const dir = await tmp();
    await writeOciLayout(dir, { layers: [] });
    await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:../../../etc/passwd', size: 1 }] }));
    await expect(openImageArchive(dir)).rejects.toMatchObject({ code: 'ERR_ARCHIVE_INVALID' });
    const a = await writeOciLayout(await tmp(), { layers: [] });
    expect(a.diffIds).toEqual([]);
  });

  it('refuses schema 1 manifests', async () => {
    const dir = await tmp();
    await writeOciLayout(dir, { layers: [] });
    const m = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', fsLayers: [] }));
    await fs.writeFile(path.join(dir, 'blobs/sha256', sha256(m).slice(7)), m);
    await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ digest: sha256(m), size: m.length }] }));
    await expect(openImageArchive(dir)).rejects.toMatchObject({ code: 'ERR_IMAGE_SCHEMA1_UNSUPPORTED' });
  });

  it('reads an OCI layout packed as a tar, with the same digests', async () => {
    const dir = await tmp();
    const r = await writeOciLayout(dir, { layers: [{ entries: sampleEntries }], refName: 'v1' });
    const files = ['oci-layout', 'index.json', ...(await fs.readdir(path.join(dir, 'blobs/sha256'))).map((f) => `./blobs/sha256/${f}`)];
    const entries = [{ name: './', type: 'directory' as const }, { name: './blobs/', type: 'directory' as const }];
    const t = await makeTar([...entries, ...(await Promise.all(files.map(async (f) => ({ name: f, content: await fs.readFile(path.join(dir, f)) }))))]);
    const file = path.join(await tmp(), 'image.tar');
    await fs.writeFile(file, t);
    const { img, layers } = await layerEntries(file);
    expect([img.refName, img.manifestDigest, img.configDigest]).toEqual(['v1', r.manifestDigest, r.configDigest]);
    expect(layers[0]!.length).toBe(sampleEntries.length);
  });

  it.each(['gzip', 'zstd'])('reads a %s-compressed archive (docker save | gzip) and removes its temporary copy on close', async (kind) => {
    const dir = await tmp();
    const r = await writeOciLayout(dir, { layers: [{ entries: sampleEntries }], refName: 'v1' });
    const file = path.join(await tmp(), 'image.tar');
    execFileSync('tar', ['-C', dir, '-cf', file, '.']);
    execFileSync(kind, ['-q', file]);
    const before = new Set(await fs.readdir(os.tmpdir()));
    const a = await openImageArchive(`${file}.${kind === 'gzip' ? 'gz' : 'zst'}`);
    const created = (await fs.readdir(os.tmpdir())).filter((f) => !before.has(f) && f.startsWith('nodelet-archive-'));
    expect(created).toHaveLength(1);
    expect(a.images[0]!.manifestDigest).toBe(r.manifestDigest);
    const l = a.images[0]!.layers[0]!;
    expect(sha256(await readStream(await a.openBlob(l.digest)))).toBe(l.digest);
    await a.close();
    expect(await fs.readdir(os.tmpdir())).not.toContain(created[0]);
  });

  it('reads a docker >= 25 save (OCI layout + manifest.json): full name from io.containerd.image.name, registry digests kept', async () => {
    const dir = await tmp();
    const r = await writeOciLayout(dir, { layers: [{ entries: sampleEntries }], refName: 'latest' });
    const index = JSON.parse(await fs.readFile(path.join(dir, 'index.json'), 'utf8'));
    index.manifests[0].annotations['io.containerd.image.name'] = 'docker.io/library/busybox:latest';
    await fs.writeFile(path.join(dir, 'index.json'), JSON.stringify(index));
    const layer = JSON.parse(await fs.readFile(path.join(dir, 'blobs/sha256', r.manifestDigest.slice(7)), 'utf8')).layers[0].digest;
    await fs.writeFile(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${r.configDigest.slice(7)}`, RepoTags: ['busybox:latest'], Layers: [`blobs/sha256/${layer.slice(7)}`] }]));
    const file = path.join(await tmp(), 'save.tar');
    execFileSync('tar', ['-C', dir, '-cf', file, 'blobs', 'index.json', 'manifest.json', 'oci-layout']);
    const a = await openImageArchive(file);
    expect(a.images.map((i) => [i.refName, i.manifestDigest, i.configDigest])).toEqual([['docker.io/library/busybox:latest', r.manifestDigest, r.configDigest]]);
  });

  it('reads a hand-made old-style docker save archive (layer.tar per layer, symlinked duplicates)', async () => {
    const layer0 = await makeTar([{ name: 'a', content: 'A' }]);
    const layer1 = await makeTar([{ name: 'b', content: 'B' }]);
    const diffIds = [sha256(layer0), sha256(layer1)];
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'] }, rootfs: { type: 'layers', diff_ids: diffIds } }));
    const cfgName = `${sha256(config).slice(7)}.json`;
    const t = await makeTar([
      { name: 'l0/', type: 'directory' },
      { name: 'l0/layer.tar', content: layer0 },
      { name: 'l1/', type: 'directory' },
      { name: 'l1/layer.tar', content: layer1 },
      { name: 'l2/', type: 'directory' },
      { name: 'l2/layer.tar', type: 'symlink', linkname: '../l0/layer.tar' },
      { name: cfgName, content: config },
      { name: 'manifest.json', content: JSON.stringify([{ Config: cfgName, RepoTags: ['busybox:latest', 'example.com/b:v2'], Layers: ['l0/layer.tar', 'l1/layer.tar'] }, { Config: cfgName, RepoTags: null, Layers: ['l2/layer.tar', 'l1/layer.tar'] }]) },
    ]);
    const file = path.join(await tmp(), 'save.tar');
    await fs.writeFile(file, t);
    const a = await openImageArchive(file);
    expect(a.images.map((i) => i.refName)).toEqual(['busybox:latest', 'example.com/b:v2', undefined]);
    const img = a.images[0]!;
    expect(img.configDigest).toBe(sha256(config));
    expect(img.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(img.manifestDigest).toBe(sha256(img.manifestBytes));
    const m = JSON.parse(img.manifestBytes.toString());
    expect(m.config.digest).toBe(img.configDigest);
    expect(img.layers).toEqual([
      { digest: diffIds[0], size: layer0.length, mediaType: 'application/vnd.docker.image.rootfs.diff.tar' },
      { digest: diffIds[1], size: layer1.length, mediaType: 'application/vnd.docker.image.rootfs.diff.tar' },
    ]);
    expect(a.images[2]!.layers.map((l) => l.digest)).toEqual(diffIds);
    expect((await readStream(await a.openBlob(diffIds[0]!))).equals(layer0)).toBe(true);
    expect((await readStream(await a.openBlob(img.configDigest))).equals(config)).toBe(true);
    expect(computeChainIds(diffIds)).toHaveLength(2);
  });

  it('fails a docker save archive whose layer.tar does not match its diff_id, naming the blob', async () => {
    const layer0 = await makeTar([{ name: 'a', content: 'A' }]);
    const diffId = sha256(await makeTar([{ name: 'a', content: 'Z' }]));
    const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [diffId] } }));
    const t = await makeTar([
      { name: 'l0/layer.tar', content: layer0 },
      { name: 'config.json', content: config },
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', RepoTags: ['x:y'], Layers: ['l0/layer.tar'] }]) },
    ]);
    const file = path.join(await tmp(), 'save.tar');
    await fs.writeFile(file, t);
    const a = await openImageArchive(file);
    await expect(readStream(await a.openBlob(diffId))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_BLOB_CORRUPT', message: expect.stringContaining(diffId) });
  });

  it.each([
    ['a parent-directory member', [{ name: '../manifest.json', content: '[]' }]],
    ['an absolute member', [{ name: '/etc/x', content: 'x' }]],
    ['a member hidden below ..', [{ name: 'a/../../b', content: 'x' }]],
  ])('refuses an archive with %s', async (_what, entries) => {
    const file = path.join(await tmp(), 'evil.tar');
    await fs.writeFile(file, await makeTar([{ name: 'manifest.json', content: '[]' }, ...entries]));
    await expect(openImageArchive(file)).rejects.toMatchObject({ code: 'ERR_ARCHIVE_PATH_INVALID' });
  });

  it('does not follow a layer symlink out of the archive', async () => {
    const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: [sha256('x')] } }));
    const t = await makeTar([
      { name: 'l0/layer.tar', type: 'symlink', linkname: '../../../../etc/passwd' },
      { name: 'config.json', content: config },
      { name: 'manifest.json', content: JSON.stringify([{ Config: 'config.json', Layers: ['l0/layer.tar'] }]) },
    ]);
    const file = path.join(await tmp(), 'evil.tar');
    await fs.writeFile(file, t);
    await expect(openImageArchive(file)).rejects.toMatchObject({ code: 'ERR_ARCHIVE_BLOB_NOT_FOUND' });
  });

  it('gives clear errors for missing, compressed and non-archive paths', async () => {
    const d = await tmp();
    await expect(openImageArchive(path.join(d, 'nope.tar'))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_NOT_FOUND' });
    await fs.writeFile(path.join(d, 'x.tar.gz'), gzipSync(await makeTar([{ name: 'a' }])));
    await expect(openImageArchive(path.join(d, 'x.tar.gz'))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_INVALID', message: expect.stringContaining('neither') });
    await fs.writeFile(path.join(d, 'trunc.tar.gz'), gzipSync(await makeTar([{ name: 'a' }])).subarray(0, 30));
    await expect(openImageArchive(path.join(d, 'trunc.tar.gz'))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_INVALID', message: expect.stringContaining('Cannot decompress') });
    await fs.writeFile(path.join(d, 'junk'), Buffer.alloc(2048, 'j'));
    await expect(openImageArchive(path.join(d, 'junk'))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_INVALID' });
    await fs.writeFile(path.join(d, 'plain.tar'), await makeTar([{ name: 'hello', content: 'x' }]));
    await expect(openImageArchive(path.join(d, 'plain.tar'))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_INVALID', message: expect.stringContaining('neither an OCI image layout') });
    // a header with a valid checksum but a garbage size field, and one whose member runs past the end
    const bad = await makeTar([{ name: 'index.json', content: '{}' }]);
    bad.write('9z9z9z9z9z9\0', 124, 'latin1');
    let sum = 0;
    bad.fill(' ', 148, 156);
    for (let i = 0; i < 512; i++) sum += bad[i]!;
    bad.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    await fs.writeFile(path.join(d, 'badsize.tar'), bad);
    await expect(openImageArchive(path.join(d, 'badsize.tar'))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_INVALID', message: expect.stringContaining('invalid size field') });
    const good = await makeTar([{ name: 'index.json', content: 'x'.repeat(5000) }]);
    await fs.writeFile(path.join(d, 'truncated.tar'), good.subarray(0, 2048));
    await expect(openImageArchive(path.join(d, 'truncated.tar'))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_INVALID', message: expect.stringContaining('truncated') });
    await fs.mkdir(path.join(d, 'empty'));
    await expect(openImageArchive(path.join(d, 'empty'))).rejects.toMatchObject({ code: 'ERR_ARCHIVE_INVALID' });
  });
});
