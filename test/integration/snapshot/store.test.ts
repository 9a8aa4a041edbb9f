// SnapshotStore behaviour on the real kernel: diff_id checks, compression,
// idempotence and locking (also across processes), usage tracking that
// survives a restart, removal rules, read-only views, 100-layer overlays,
// driver detection and persistence, file metadata.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { SnapshotStore, mountAll, unmountAll } from '../../../src/snapshot/index.js';
import { isNodeletError } from '../../../src/errors.js';
import { mount, umount2, MNT } from '../../../src/sys/ffi.js';
import { chainIdsOf, diffTrees, gzLayer, makeTar, sha256, streamOf, tempRoot, walkTree, type BuiltLayer } from './helpers.js';

let root: string;
const mounted: string[] = [];
beforeAll(() => {
  root = tempRoot();
});
afterAll(() => {
  for (const m of mounted.reverse()) {
    try {
      unmountAll(m);
    } catch {
      /* keep cleaning */
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
});

function mnt(name: string): string {
  const d = join(root, 'mnt', name);
  fs.mkdirSync(d, { recursive: true });
  mounted.push(d);
  return d;
}

async function apply(store: SnapshotStore, layers: BuiltLayer[]): Promise<string[]> {
  const ids = chainIdsOf(layers);
  for (let i = 0; i < layers.length; i++) {
    const l = layers[i]!;
    await store.applyLayer({ parentChainId: i === 0 ? null : ids[i - 1]!, chainId: ids[i]!, diffId: l.diffId, mediaType: l.mediaType, open: () => streamOf(l.blob) });
  }
  return ids;
}

const errOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

describe('SnapshotStore', () => {
  it('refuses a layer whose content does not match its diff_id and keeps nothing', async () => {
    const store = new SnapshotStore({ root: join(root, 's-diffid') });
    const l = gzLayer(await makeTar([{ name: 'f', data: 'x' }]));
    const wrong = sha256('something else');
    const [chainId] = chainIdsOf([{ ...l, diffId: wrong }]);
    const err = await errOf(store.applyLayer({ parentChainId: null, chainId: chainId!, diffId: wrong, mediaType: l.mediaType, open: () => streamOf(l.blob) }));
    expect(isNodeletError(err, 'ERR_LAYER_DIFFID_MISMATCH'), String(err)).toBe(true);
    expect(String(err)).toContain(l.diffId);
    expect(store.hasChain(chainId!)).toBe(false);
    expect(fs.readdirSync(join(root, 's-diffid', 'tmp'))).toEqual([]);
    expect(fs.readdirSync(join(root, 's-diffid', 'l'))).toEqual([]);
    expect(fs.readdirSync(join(root, 's-diffid', 'chains'))).toEqual([]);
  });

  it('unpacks gzip, zstd and uncompressed layers (media type, else magic bytes) to the same tree', async () => {
    const t = await makeTar([{ name: 'dir/', type: 'directory' }, { name: 'dir/file', data: 'hello '.repeat(1000) }, { name: 'l', type: 'symlink', linkname: 'dir/file' }]);
    const diffId = sha256(t);
    const zst = execFileSync('zstd', ['-c', '-q'], { input: t });
    const variants: [string, Buffer, string][] = [
      ['gzip', gzLayer(t).blob, 'application/vnd.oci.image.layer.v1.tar+gzip'],
      ['docker gzip', gzLayer(t).blob, 'application/vnd.docker.image.rootfs.diff.tar.gzip'],
      ['zstd', zst, 'application/vnd.oci.image.layer.v1.tar+zstd'],
      ['none', t, 'application/vnd.oci.image.layer.v1.tar'],
      ['docker tar that is really gzip (sniffed)', gzLayer(t).blob, 'application/vnd.docker.image.rootfs.diff.tar'],
      ['unknown type, zstd sniffed', zst, 'application/octet-stream'],
    ];
    let first: Map<string, string> | undefined;
    for (const [i, [what, blob, mediaType]] of variants.entries()) {
      const store = new SnapshotStore({ root: join(root, `s-comp-${i}`) });
      await store.applyLayer({ parentChainId: null, chainId: diffId, diffId, mediaType, open: () => streamOf(blob) });
      const tree = walkTree(join(root, `s-comp-${i}`, 'chains', diffId.slice(7), 'fs'));
      expect(tree.get('dir/file'), what).toMatch(/^file .*size=6000/);
      first ??= tree;
      expect(diffTrees(first, tree), what).toEqual([]);
    }
  });

  it('reports corrupt compression and truncated tars with codes, keeping nothing', async () => {
    const store = new SnapshotStore({ root: join(root, 's-corrupt') });
    const t = await makeTar([{ name: 'f', data: Buffer.alloc(10_000, 1) }]);
    const gz = gzLayer(t).blob;
    const bad = Buffer.from(gz);
    bad.fill(0xaa, 20, 60);
    const e1 = await errOf(store.applyLayer({ parentChainId: null, chainId: sha256(t), diffId: sha256(t), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', open: () => streamOf(bad) }));
    expect(isNodeletError(e1, 'ERR_LAYER_DECOMPRESS'), String(e1)).toBe(true);
    const e2 = await errOf(store.applyLayer({ parentChainId: null, chainId: sha256(t), diffId: sha256(t), mediaType: 'application/vnd.oci.image.layer.v1.tar', open: () => streamOf(t.subarray(0, 3000)) }));
    expect(isNodeletError(e2, 'ERR_LAYER_INVALID'), String(e2)).toBe(true);
    expect(await store.listChains()).toEqual([]);
    expect(fs.readdirSync(join(root, 's-corrupt', 'tmp'))).toEqual([]);
  });

  it('a source that fails mid-file leaves no staging dir and no open file descriptors', async () => {
    const store = new SnapshotStore({ root: join(root, 's-srcerr') });
    const t = await makeTar([{ name: 'big', data: randomBytes(2_000_000) }]);
    const fdsBefore = fs.readdirSync('/proc/self/fd').length;
    const err = await errOf(
      store.applyLayer({
        parentChainId: null,
        chainId: sha256(t),
        diffId: sha256(t),
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        open: () =>
          Readable.from(
            (async function* () {
              yield t.subarray(0, 600_000);
              await new Promise((r) => setTimeout(r, 10));
              throw new Error('connection reset by peer');
            })(),
          ),
      }),
    );
    expect(String(err)).toContain('connection reset by peer');
    expect(fs.readdirSync('/proc/self/fd').length).toBe(fdsBefore);
    expect(fs.readdirSync(join(root, 's-srcerr', 'tmp'))).toEqual([]);
    expect(await store.listChains()).toEqual([]);
  });

  it('refuses a layer whose parent chain is missing', async () => {
    const store = new SnapshotStore({ root: join(root, 's-parent') });
    const l = gzLayer(await makeTar([{ name: 'f', data: 'x' }]));
    const err = await errOf(store.applyLayer({ parentChainId: sha256('nope'), chainId: sha256('c'), diffId: l.diffId, mediaType: l.mediaType, open: () => streamOf(l.blob) }));
    expect(isNodeletError(err, 'ERR_SNAPSHOT_PARENT_MISSING')).toBe(true);
  });

  it('is idempotent and unpacks a chain once under concurrent applies', async () => {
    const store = new SnapshotStore({ root: join(root, 's-conc') });
    const l = gzLayer(await makeTar([{ name: 'f', data: 'x' }]));
    let opens = 0;
    const go = () => store.applyLayer({ parentChainId: null, chainId: l.diffId, diffId: l.diffId, mediaType: l.mediaType, open: () => (opens++, streamOf(l.blob)) });
    await Promise.all([go(), go(), go()]);
    await go();
    expect(opens).toBe(1);
    expect(await store.listChains()).toEqual([l.diffId]);
  });

  it('unpacks a chain once when two processes apply it at the same time', async () => {
    const sroot = join(root, 's-xproc');
    const files = Array.from({ length: 200 }, (_, i) => ({ name: `f${i}`, data: randomBytes(2000) })); // incompressible: ~100 slow chunks, the two runs overlap
    const l = gzLayer(await makeTar(files));
    const blobPath = join(root, 'xproc.blob');
    fs.writeFileSync(blobPath, l.blob);
    const run = () =>
      new Promise<string>((res, rej) => {
        const c = spawn(process.execPath, ['node_modules/vite-node/vite-node.mjs', 'test/integration/snapshot/apply-child.ts', sroot, blobPath, l.diffId, l.diffId], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.on('close', (code) => (code === 0 ? res(out.trim()) : rej(new Error(`child exit ${code}: ${err}`))));
      });
    const results = await Promise.all([run(), run()]);
    expect(results.sort()).toEqual(['opened', 'skipped']);
    const store = new SnapshotStore({ root: sroot });
    expect(await store.listChains()).toEqual([l.diffId]);
    expect(fs.readdirSync(join(sroot, 'l'))).toHaveLength(1);
    expect(fs.readdirSync(join(sroot, 'locks'))).toEqual([]);
  }, 60_000);

  it('tracks users across restarts and refuses to remove used or parent chains', async () => {
    const sroot = join(root, 's-use');
    const layers = [gzLayer(await makeTar([{ name: 'a', data: '1' }])), gzLayer(await makeTar([{ name: 'b', data: '2' }]))];
    const ids = await apply(new SnapshotStore({ root: sroot }), layers);
    await new SnapshotStore({ root: sroot }).prepare('ctr-1', ids[1]!);
    const restarted = new SnapshotStore({ root: sroot });
    expect(await restarted.usedChains()).toEqual(new Set(ids));
    expect((await restarted.listSnapshots()).map((r) => r.key)).toEqual(['ctr-1']);
    const e1 = await errOf(restarted.removeChain(ids[1]!));
    expect(isNodeletError(e1, 'ERR_SNAPSHOT_IN_USE')).toBe(true);
    await restarted.remove('ctr-1');
    await restarted.remove('ctr-1'); // idempotent
    expect(await restarted.usedChains()).toEqual(new Set());
    const e2 = await errOf(restarted.removeChain(ids[0]!));
    expect(isNodeletError(e2, 'ERR_SNAPSHOT_IN_USE'), String(e2)).toBe(true);
    expect(String(e2)).toContain('parent');
    await restarted.removeChain(ids[1]!);
    await restarted.removeChain(ids[0]!);
    await restarted.removeChain(ids[0]!); // idempotent
    expect(await restarted.listChains()).toEqual([]);
    expect(fs.readdirSync(join(sroot, 'l'))).toEqual([]);
  });

  it('prepare: unknown chain, duplicate key, empty rootfs, read-only views', async () => {
    const store = new SnapshotStore({ root: join(root, 's-prep') });
    expect(isNodeletError(await errOf(store.prepare('k', sha256('none'))), 'ERR_SNAPSHOT_CHAIN_NOT_FOUND')).toBe(true);
    expect(isNodeletError(await errOf(store.prepare('', null)), 'ERR_SNAPSHOT_INVALID_KEY')).toBe(true);
    const [id] = await apply(store, [gzLayer(await makeTar([{ name: 'only', data: 'x' }]))]);
    await store.prepare('k', id!);
    expect(isNodeletError(await errOf(store.prepare('k', id!)), 'ERR_SNAPSHOT_EXISTS')).toBe(true);
    // an empty writable rootfs
    const m1 = mnt('empty');
    mountAll(await store.prepare('empty', null), m1);
    fs.writeFileSync(join(m1, 'w'), 'w');
    expect(fs.readdirSync(m1)).toEqual(['w']);
    unmountAll(m1);
    // a single-layer read-only view is a read-only bind
    const v = await store.prepare('view', id!, { readonly: true });
    expect(v[0]!.type).toBe('bind');
    const m2 = mnt('view');
    mountAll(v, m2);
    expect(fs.readFileSync(join(m2, 'only'), 'utf8')).toBe('x');
    expect(() => fs.writeFileSync(join(m2, 'n'), 'n')).toThrow(/EROFS/);
    unmountAll(m2);
    unmountAll(m2); // idempotent
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(m2);
    for (const k of ['k', 'empty', 'view']) await store.remove(k);
    expect(fs.readdirSync(join(root, 's-prep', 'active'))).toEqual([]);
  });

  it('mounts a 100-layer image (options longer than a page)', async () => {
    const store = new SnapshotStore({ root: join(root, 's-100') });
    const layers: BuiltLayer[] = [];
    for (let i = 0; i < 100; i++) {
      const entries = [{ name: `f${i}`, data: String(i) }, { name: 'top', data: `layer ${i}` }];
      if (i > 0 && i % 2 === 0) entries.push({ name: `.wh.f${i - 1}`, data: '' });
      layers.push(gzLayer(await makeTar(entries)));
    }
    const ids = await apply(store, layers);
    const mounts = await store.prepare('big', ids[99]!);
    const data = mounts[0]!.options.join(',');
    expect(data.length).toBeGreaterThan(4096);
    const m = mnt('100');
    mountAll(mounts, m);
    const names = fs.readdirSync(m).sort();
    const want = ['top', ...Array.from({ length: 100 }, (_, i) => `f${i}`).filter((_, i) => !(i % 2 === 1 && i < 99))].sort();
    expect(names).toEqual(want);
    expect(fs.readFileSync(join(m, 'top'), 'utf8')).toBe('layer 99');
    unmountAll(m);
    const ro = await store.prepare('big-ro', ids[99]!, { readonly: true });
    mountAll(ro, m);
    expect(fs.readdirSync(m).sort()).toEqual(want);
    unmountAll(m);
    await store.remove('big');
    await store.remove('big-ro');
  }, 60_000);

  it('keeps metadata: mtimes, large PAX uids, hardlinks, setgid dirs, binary-safe xattrs', async () => {
    const store = new SnapshotStore({ root: join(root, 's-meta') });
    const t0 = new Date(1_600_000_000_000);
    const [id] = await apply(store, [
      gzLayer(await makeTar([
        { name: 'd/', type: 'directory', mode: 0o2775, gid: 50, mtime: t0 },
        { name: 'd/f', data: 'data', mtime: t0, pax: { uid: '3000000', gid: '3000001' } },
        { name: 'd/h', type: 'link', linkname: 'd/f' },
        { name: 'd/s', type: 'symlink', linkname: 'f', mtime: t0 },
        { name: 'x', data: 'x', pax: { 'SCHILY.xattr.user.k': 'v=1 with spaces' } },
      ])),
    ]);
    const fsd = join(root, 's-meta', 'chains', id!.slice(7), 'fs');
    const d = fs.lstatSync(join(fsd, 'd'));
    expect([d.mode & 0o7777, d.gid, d.mtimeMs]).toEqual([0o2775, 50, t0.getTime()]);
    const f = fs.lstatSync(join(fsd, 'd', 'f'));
    expect([f.uid, f.gid, f.mtimeMs, f.nlink]).toEqual([3000000, 3000001, t0.getTime(), 2]);
    expect(fs.lstatSync(join(fsd, 'd', 'h')).ino).toBe(f.ino);
    expect(fs.lstatSync(join(fsd, 'd', 's')).mtimeMs).toBe(t0.getTime());
    expect(walkTree(fsd, { xattrs: true }).get('x')).toContain(`user.k=${Buffer.from('v=1 with spaces').toString('hex')}`);
  });

  it("gives the container's root the image root's owner and mode", async () => {
    const store = new SnapshotStore({ root: join(root, 's-rootdir') });
    const ids = await apply(store, [
      gzLayer(await makeTar([{ name: './', type: 'directory', mode: 0o750, uid: 7, gid: 8 }, { name: 'a', data: 'a' }])),
      gzLayer(await makeTar([{ name: 'b', data: 'b' }])),
    ]);
    const m = mnt('rootdir');
    mountAll(await store.prepare('r', ids[1]!), m);
    const st = fs.statSync(m);
    expect([st.mode & 0o7777, st.uid, st.gid]).toEqual([0o750, 7, 8]);
    expect(fs.readdirSync(m).sort()).toEqual(['a', 'b']);
    unmountAll(m);
    await store.remove('r');
  });

  it('removes staging directories left by a dead process, keeps live ones', async () => {
    const sroot = join(root, 's-stale');
    await new SnapshotStore({ root: sroot }).listChains();
    const dead = Number(execFileSync('sh', ['-c', 'echo $$']).toString().trim());
    fs.mkdirSync(join(sroot, 'tmp', `${dead}.abc.chain`, 'fs'), { recursive: true });
    fs.mkdirSync(join(sroot, 'tmp', `${process.pid}.def.chain`), { recursive: true });
    await new SnapshotStore({ root: sroot }).listChains();
    expect(fs.readdirSync(join(sroot, 'tmp'))).toEqual([`${process.pid}.def.chain`]);
  });

  it('persists the driver and refuses a mismatching explicit one', async () => {
    const sroot = join(root, 's-drv');
    expect(new SnapshotStore({ root: sroot, driver: 'copy' }).driver()).toBe('copy');
    expect(new SnapshotStore({ root: sroot }).driver()).toBe('copy');
    expect(() => new SnapshotStore({ root: sroot, driver: 'overlay' }).driver()).toThrow(/ERR_SNAPSHOT_DRIVER_MISMATCH|created with the "copy" driver/);
    expect(new SnapshotStore({ root: join(root, 's-drv2') }).driver()).toBe('overlay');
  });

  it('falls back to the copy driver where overlay cannot be used (store on overlayfs)', async () => {
    const base = join(root, 'ovl');
    for (const s of ['lower', 'upper', 'work', 'merged']) fs.mkdirSync(join(base, s), { recursive: true });
    mount('overlay', join(base, 'merged'), 'overlay', 0, `lowerdir=${join(base, 'lower')},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`);
    try {
      const store = new SnapshotStore({ root: join(base, 'merged', 'store') });
      expect(store.driver()).toBe('copy');
      const ids = await apply(store, [gzLayer(await makeTar([{ name: 'a', data: '1' }, { name: 'b', data: '2' }])), gzLayer(await makeTar([{ name: '.wh.a' }]))]);
      const m = mnt('fallback');
      mountAll(await store.prepare('c', ids[1]!), m);
      expect(fs.readdirSync(m)).toEqual(['b']);
      unmountAll(m);
      await store.remove('c');
    } finally {
      umount2(join(base, 'merged'), MNT.DETACH);
    }
  });
});
