// Layer semantics across 3 layers (whiteouts, opaque dirs, replacements,
// special files) checked against `umoci unpack` of the same OCI image, for
// both the overlay and the copy snapshotter.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { SnapshotStore, mountAll, unmountAll } from '../../../src/snapshot/index.js';
import { chainIdsOf, diffTrees, gzLayer, makeTar, streamOf, tempRoot, walkTree, writeOciLayout, type BuiltLayer } from './helpers.js';

const longDir = 'deep/' + 'x'.repeat(120) + '/' + 'y'.repeat(90);
const longName = `${longDir}/${'z'.repeat(140)}.txt`;

async function buildLayers(): Promise<BuiltLayer[]> {
  const l1 = await makeTar([
    { name: './', type: 'directory', mode: 0o751, uid: 3, gid: 4 },
    { name: 'a/', type: 'directory', mode: 0o750, uid: 10, gid: 20 },
    { name: 'a/b/', type: 'directory' },
    { name: 'a/f1', data: 'one', uid: 1000, gid: 1000 },
    { name: 'a/b/f2', data: 'two', mode: 0o600 },
    { name: 'xa', data: 'xattr', pax: { 'SCHILY.xattr.user.nodelet': 'v1' } },
    { name: 'a/hl', type: 'link', linkname: 'a/f1' },
    { name: 'bin/', type: 'directory' },
    { name: 'bin/su', data: '#!/bin/sh\n', mode: 0o4755 },
    { name: 'bin/sg', data: 'g', mode: 0o2711, gid: 5 },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    { name: 'etc/', type: 'directory' },
    { name: 'etc/conf', data: 'v1' },
    { name: 'lnk', type: 'symlink', linkname: 'a/f1' },
    { name: 'abs', type: 'symlink', linkname: '/etc/conf' },
    { name: 'd/', type: 'directory', mode: 0o700 },
    { name: 'd/x', data: 'x' },
    { name: 'd/sub/', type: 'directory' },
    { name: 'd/sub/y', data: 'y' },
    { name: 'keep/', type: 'directory' },
    { name: 'keep/k1', data: 'k1' },
    { name: 'dev/', type: 'directory' },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660, gid: 6 },
    { name: 'run/', type: 'directory' },
    { name: 'run/fifo', type: 'fifo', mode: 0o620 },
    { name: 'deep/', type: 'directory' },
    { name: longDir + '/', type: 'directory' },
    { name: longName, data: 'long' },
    { name: 'gone/', type: 'directory' },
    { name: 'gone/g', data: 'g' },
    { name: 'rdir/', type: 'directory' },
    { name: 'rdir/old', data: 'old' },
    { name: 'big', data: Buffer.alloc(300_000, 7) },
  ]);
  const l2 = await makeTar([
    { name: 'a/', type: 'directory', mode: 0o750, uid: 10, gid: 20 },
    { name: 'a/.wh.f1' },
    { name: 'a/b/', type: 'directory' },
    { name: 'a/b/f3', data: 'three' },
    { name: 'd/', type: 'directory', mode: 0o711 },
    { name: 'd/.wh..wh..opq' },
    { name: 'd/z', data: 'z' },
    { name: 'etc/', type: 'directory' },
    { name: 'etc/conf', data: 'v2-longer', mode: 0o640 },
    { name: '.wh.lnk' },
    { name: 'lnk', data: 'now a file' },
    { name: '.wh.gone' },
    { name: 'keep/', type: 'directory' },
    { name: 'keep/.wh.nonexistent' },
    { name: '.wh.rdir' },
    { name: 'rdir/', type: 'directory', mode: 0o700 },
    { name: 'rdir/new', data: 'new' },
  ]);
  const l3 = await makeTar([
    { name: 'a/', type: 'directory', mode: 0o755 },
    { name: 'a/b/', type: 'directory' },
    { name: 'a/b/.wh..wh..opq' },
    { name: 'etc/', type: 'directory' },
    { name: 'etc/.wh.conf' },
    { name: 'etc/conf/', type: 'directory', mode: 0o700 },
    { name: 'etc/conf/inner', data: 'dir now' },
    { name: 'keep/', type: 'directory' },
    { name: 'keep/.wh..wh..opq' },
    { name: 'gone', data: 'file where a dir was' },
    { name: 'd/', type: 'directory', mode: 0o711 },
    { name: 'd/sub/', type: 'directory' },
    { name: 'd/sub/y2', data: 'y2' },
    { name: '.wh.big' },
  ]);
  return [gzLayer(l1), gzLayer(l2), gzLayer(l3)];
}

describe('layer semantics vs umoci unpack', () => {
  let root: string;
  let layers: BuiltLayer[];
  let expected: Map<string, string>;
  const rootAttrs = (d: string) => {
    const st = fs.statSync(d);
    return [(st.mode & 0o7777).toString(8), st.uid, st.gid];
  };

  beforeAll(async () => {
    root = tempRoot();
    layers = await buildLayers();
    writeOciLayout(join(root, 'layout'), 'v1', layers);
    execFileSync('umoci', ['unpack', '--image', `${join(root, 'layout')}:v1`, join(root, 'bundle')], { stdio: 'pipe' });
    expected = walkTree(join(root, 'bundle', 'rootfs'), { xattrs: true });
  });
  afterAll(() => {
    for (const d of ['mnt-overlay', 'mnt-copy']) if (fs.existsSync(join(root, d))) unmountAll(join(root, d));
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('umoci itself produced the expected shape (sanity of the fixture)', () => {
    expect(expected.has('a/f1')).toBe(false);
    expect(expected.get('a/hl')).toMatch(/^file .*size=3/);
    expect(expected.has('a/b/f2')).toBe(false);
    expect(expected.has('d/x')).toBe(false);
    expect(expected.get('d/z')).toMatch(/^file/);
    expect(expected.get('etc/conf')).toMatch(/^dir mode=700/);
    expect(expected.get('lnk')).toMatch(/^file/);
    expect(expected.get('gone')).toMatch(/^file/);
    expect(expected.has('keep/k1')).toBe(false);
    expect(expected.has('big')).toBe(false);
    expect(expected.has('rdir/old')).toBe(false);
    expect(expected.has('rdir/new')).toBe(true);
    expect(expected.get('bin/su')).toMatch(/mode=4755/);
    expect(expected.get('dev/null')).toMatch(/^chr mode=666/);
    expect(expected.has(longName)).toBe(true);
    expect(rootAttrs(join(root, 'bundle', 'rootfs'))).toEqual(['751', 3, 4]);
    expect(expected.get('xa')).toContain('xattrs=user.nodelet=7631');
  });

  for (const driver of ['overlay', 'copy'] as const) {
    it(`${driver} snapshotter mounts the same tree as umoci`, async () => {
      const store = new SnapshotStore({ root: join(root, `store-${driver}`), driver });
      expect(store.driver()).toBe(driver);
      const ids = chainIdsOf(layers);
      for (let i = 0; i < layers.length; i++) {
        const l = layers[i]!;
        await store.applyLayer({ parentChainId: i === 0 ? null : ids[i - 1]!, chainId: ids[i]!, diffId: l.diffId, mediaType: l.mediaType, open: () => streamOf(l.blob) });
      }
      const mnt = join(root, `mnt-${driver}`);
      fs.mkdirSync(mnt);
      const mounts = await store.prepare(`ctr-${driver}`, ids[2]!);
      expect(mounts[0]!.type).toBe(driver === 'overlay' ? 'overlay' : 'bind');
      mountAll(mounts, mnt);
      try {
        const got = walkTree(mnt, { xattrs: true });
        expect(diffTrees(expected, got)).toEqual([]);
        expect(rootAttrs(mnt)).toEqual(rootAttrs(join(root, 'bundle', 'rootfs')));
        // the container's writes land in its own layer, not in the shared chain
        fs.writeFileSync(join(mnt, 'a', 'written'), 'w');
      } finally {
        unmountAll(mnt);
      }
      const view = await store.prepare(`view-${driver}`, ids[2]!, { readonly: true });
      mountAll(view, mnt);
      try {
        expect(diffTrees(expected, walkTree(mnt, { xattrs: true }))).toEqual([]);
        expect(rootAttrs(mnt)).toEqual(rootAttrs(join(root, 'bundle', 'rootfs')));
        expect(() => fs.writeFileSync(join(mnt, 'x'), 'x')).toThrow(/EROFS/);
      } finally {
        unmountAll(mnt);
      }
      expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(mnt);
      await store.remove(`ctr-${driver}`);
      await store.remove(`view-${driver}`);
      expect(await store.usedChains()).toEqual(new Set());
    });
  }
});
