// Crafted hostile layers: each must be refused with ERR_LAYER_UNSAFE_PATH,
// leave no chain behind, and change nothing outside the snapshot (a sentinel
// directory and the whole test root are compared before and after).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { SnapshotStore, mountAll, unmountAll } from '../../../src/snapshot/index.js';
import { isNodeletError } from '../../../src/errors.js';
import { chainIdsOf, diffTrees, gzLayer, makeTar, streamOf, tempRoot, walkTree, type TarEntry } from './helpers.js';

let root: string;
let sentinel: string;
const hostEtcName = `nodelet-hostile-${randomBytes(4).toString('hex')}`;
let passwdBefore: fs.Stats;

beforeAll(() => {
  root = tempRoot();
  sentinel = join(root, 'sentinel');
  fs.mkdirSync(join(sentinel, 'sub'), { recursive: true });
  fs.writeFileSync(join(sentinel, 'f'), 'precious');
  fs.writeFileSync(join(sentinel, 'sub', 'g'), 'precious too');
  passwdBefore = fs.statSync('/etc/passwd');
});
afterAll(() => {
  fs.rmSync(join('/etc', hostEtcName), { force: true, recursive: true });
  for (const d of ['mnt-overlay', 'mnt-copy']) if (fs.existsSync(join(root, d))) unmountAll(join(root, d));
  fs.rmSync(root, { recursive: true, force: true });
});

// From <root>/store-*/tmp/<staging>/fs, four levels up is <root>.
const up4 = '../../../..';

function cases(): [string, TarEntry[]][] {
  const s = sentinel;
  return [
    ['dot-dot file', [{ name: '../x', data: 'evil' }]],
    ['nested dot-dot', [{ name: 'a/', type: 'directory' }, { name: 'a/../../x', data: 'evil' }]],
    ['deep dot-dot to sentinel', [{ name: `a/b/../../${up4}/sentinel/f`, data: 'evil' }]],
    ['absolute name', [{ name: `${s}/abs`, data: 'evil' }]],
    ['absolute into /etc', [{ name: `/etc/${hostEtcName}`, data: 'evil' }]],
    ['symlink to / then write through', [{ name: 'l', type: 'symlink', linkname: '/' }, { name: `l${s}/x`, data: 'evil' }]],
    ['symlink to ../.. then write through', [{ name: 'l', type: 'symlink', linkname: `${up4}/sentinel` }, { name: 'l/x', data: 'evil' }]],
    ['symlink chain escape', [{ name: 's2', type: 'symlink', linkname: s }, { name: 's1', type: 'symlink', linkname: 's2' }, { name: 's1/f', data: 'evil' }]],
    ['dir replaced by symlink then written through', [{ name: 'd/', type: 'directory' }, { name: 'd/ok', data: 'ok' }, { name: 'd', type: 'symlink', linkname: s }, { name: 'd/f', data: 'evil' }]],
    ['hardlink to /etc/passwd', [{ name: 'h', type: 'link', linkname: '/etc/passwd' }]],
    ['hardlink to ../../x', [{ name: 'h', type: 'link', linkname: `${up4}/sentinel/f` }]],
    ['hardlink through a symlink dir', [{ name: 's', type: 'symlink', linkname: s }, { name: 'h', type: 'link', linkname: 's/f' }]],
    ['hardlink to a symlink pointing outside', [{ name: 's', type: 'symlink', linkname: `${up4}/sentinel/f` }, { name: 'h', type: 'link', linkname: 's' }]],
    ['whiteout named ..', [{ name: 'a/', type: 'directory' }, { name: 'a/.wh...' }]],
    ['whiteout named .', [{ name: 'a/', type: 'directory' }, { name: 'a/.wh..' }]],
    ['whiteout through a symlink', [{ name: 'l', type: 'symlink', linkname: s }, { name: 'l/.wh.f' }]],
    ['opaque dir through a symlink', [{ name: 'l', type: 'symlink', linkname: s }, { name: 'l/.wh..wh..opq' }]],
    ['device node with traversal', [{ name: `${up4}/sentinel/null`, type: 'character-device', devmajor: 1, devminor: 3 }]],
    ['fifo through a symlink', [{ name: 'p', type: 'symlink', linkname: s }, { name: 'p/fifo', type: 'fifo' }]],
    ['directory through a symlink', [{ name: 'p', type: 'symlink', linkname: s }, { name: 'p/newdir/', type: 'directory', mode: 0o777 }]],
    ['symlink placed through a symlink', [{ name: 'p', type: 'symlink', linkname: s }, { name: 'p/f', type: 'symlink', linkname: '/' }]],
  ];
}

for (const driver of ['overlay', 'copy'] as const) {
  describe(`hostile layers (${driver})`, () => {
    it('every crafted tar is refused and nothing outside the snapshot changes', async () => {
      const store = new SnapshotStore({ root: join(root, `store-${driver}`), driver });
      store.driver();
      const list = cases();
      expect(list.length).toBeGreaterThanOrEqual(10);
      const before = walkTree(root);
      for (const [what, entries] of list) {
        const layer = gzLayer(await makeTar(entries));
        const [chainId] = chainIdsOf([layer]);
        const err = await store
          .applyLayer({ parentChainId: null, chainId: chainId!, diffId: layer.diffId, mediaType: layer.mediaType, open: () => streamOf(layer.blob) })
          .then(() => undefined, (e: unknown) => e);
        expect(isNodeletError(err, 'ERR_LAYER_UNSAFE_PATH'), `${what}: ${String(err)}`).toBe(true);
        expect((err as Error).message).toContain('Layer entry "');
        expect(store.hasChain(chainId!), what).toBe(false);
        expect(diffTrees(before, walkTree(root)), what).toEqual([]);
      }
      expect(fs.existsSync(join('/etc', hostEtcName))).toBe(false);
      const passwd = fs.statSync('/etc/passwd');
      expect([passwd.ino, passwd.nlink, passwd.mtimeMs]).toEqual([passwdBefore.ino, passwdBefore.nlink, passwdBefore.mtimeMs]);
      expect(fs.readFileSync(join(sentinel, 'f'), 'utf8')).toBe('precious');
      expect(await store.listChains()).toEqual([]);
      expect(fs.readdirSync(join(root, `store-${driver}`, 'tmp'))).toEqual([]);
    });

    it('a symlink from a lower layer is shadowed by a directory, never followed', async () => {
      const store = new SnapshotStore({ root: join(root, `store2-${driver}`), driver });
      const lower = gzLayer(await makeTar([
        { name: 'l', type: 'symlink', linkname: sentinel },
        { name: 'm', type: 'symlink', linkname: `${up4}/sentinel` },
        { name: 'o', type: 'symlink', linkname: sentinel },
      ]));
      const upper = gzLayer(await makeTar([
        { name: 'l/f', data: 'inside' },
        // copy mode deletes for a whiteout: through the lower symlink it would hit the sentinel
        { name: 'm/.wh.f' },
        { name: 'm/sub/', type: 'directory' },
        { name: 'o/.wh..wh..opq' },
      ]));
      const ids = chainIdsOf([lower, upper]);
      const before = walkTree(sentinel);
      await store.applyLayer({ parentChainId: null, chainId: ids[0]!, diffId: lower.diffId, mediaType: lower.mediaType, open: () => streamOf(lower.blob) });
      await store.applyLayer({ parentChainId: ids[0]!, chainId: ids[1]!, diffId: upper.diffId, mediaType: upper.mediaType, open: () => streamOf(upper.blob) });
      expect(diffTrees(before, walkTree(sentinel))).toEqual([]);
      const mnt = join(root, `mnt-${driver}`);
      fs.mkdirSync(mnt, { recursive: true });
      mountAll(await store.prepare('c', ids[1]!), mnt);
      try {
        const tree = walkTree(mnt);
        expect(tree.get('l')).toMatch(/^dir/);
        expect(tree.get('l/f')).toMatch(/^file/);
        expect(tree.get('m')).toMatch(/^dir/);
        expect(tree.get('o')).toMatch(/^dir/);
        expect([...tree.keys()].filter((k) => k.startsWith('o/'))).toEqual([]);
      } finally {
        unmountAll(mnt);
      }
      expect(diffTrees(before, walkTree(sentinel))).toEqual([]);
      await store.remove('c');
    });
  });
}
