import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ContentStore } from '../../../src/image/content-store.js';
import { tmpRoot } from '../../helpers/registry.js';

const run = promisify(execFile);
const sha = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) rmSync(r, { recursive: true, force: true });
});
function newStore(): { root: string; store: ContentStore } {
  const root = tmpRoot();
  roots.push(root);
  return { root, store: new ContentStore({ root: path.join(root, 'content') }) };
}
const leftovers = (root: string) => readdirSync(path.join(root, 'content/ingest'));

describe('ContentStore', () => {
  it('commits a verified blob and refuses wrong digests and sizes, leaving nothing', async () => {
    const { root, store } = newStore();
    const data = randomBytes(100_000);
    const d = sha(data);
    expect(await store.writeBlob(d, data)).toEqual({ written: true, size: data.length });
    expect(store.has(d)).toBe(true);
    expect((await store.readBlob(d)).equals(data)).toBe(true);
    expect(await store.writeBlob(d, data)).toEqual({ written: false, size: data.length });

    const other = randomBytes(10);
    const wrong = sha(Buffer.from('x'));
    await expect(store.ingest(wrong, 10, (w) => w.write(other))).rejects.toMatchObject({ code: 'ERR_IMAGE_DIGEST_MISMATCH' });
    await expect(store.ingest(sha(other), 11, (w) => w.write(other))).rejects.toMatchObject({ code: 'ERR_IMAGE_BLOB_SIZE_MISMATCH' });
    await expect(store.ingest(sha(other), 5, (w) => w.write(other))).rejects.toMatchObject({ code: 'ERR_IMAGE_BLOB_SIZE_MISMATCH' });
    await expect(
      store.ingest(sha(other), 10, async (w) => {
        await w.write(other.subarray(0, 4));
        throw new Error('network gone');
      }),
    ).rejects.toThrow('network gone');
    expect(store.has(wrong)).toBe(false);
    expect(store.has(sha(other))).toBe(false);
    expect(leftovers(root)).toEqual([]);
    expect(await store.list()).toEqual([d]);
  });

  it('reset() restarts the hash when a server ignores Range', async () => {
    const { store } = newStore();
    const data = randomBytes(1000);
    await store.ingest(sha(data), 1000, async (w) => {
      await w.write(data.subarray(0, 300));
      await w.reset();
      expect(w.offset).toBe(0);
      await w.write(data);
    });
    expect((await store.readBlob(sha(data))).equals(data)).toBe(true);
  });

  it('downloads a blob once when two processes ingest it at the same time', async () => {
    const { root } = newStore();
    const data = randomBytes(160);
    const d = sha(data);
    const log = path.join(root, 'log');
    writeFileSync(log, '');
    const child = path.resolve('test/integration/image/fixtures/ingest-child.ts');
    const args = [child, path.join(root, 'content'), d, data.toString('hex'), log];
    const vn = path.resolve('node_modules/.bin/vite-node');
    const [a, b] = await Promise.all([run(vn, args), run(vn, args)]);
    const results = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
    expect(results.map((r) => r.written).sort()).toEqual([false, true]);
    expect(readFileSync(log, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(readFileSync(path.join(root, 'content/blobs/sha256', d.slice(7))).equals(data)).toBe(true);
    expect(leftovers(root)).toEqual([]);
  }, 60_000);

  it('takes over the lock of a writer that died', async () => {
    const { root, store } = newStore();
    const data = randomBytes(50);
    const d = sha(data);
    await store.list(); // creates the dirs
    const dead = spawnSync('true').pid!;
    writeFileSync(path.join(root, 'content/ingest', `${d.slice(7)}.lock`), `${dead}\n`);
    const t0 = Date.now();
    expect((await store.writeBlob(d, data)).written).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(existsSync(path.join(root, 'content/ingest', `${d.slice(7)}.lock`))).toBe(false);
  });

  it('waits for a live writer in the same process and finds its blob', async () => {
    const { store } = newStore();
    const data = randomBytes(64);
    const d = sha(data);
    let fills = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = store.ingest(d, 64, async (w) => {
      fills++;
      await gate;
      await w.write(data);
    });
    await new Promise((r) => setTimeout(r, 30));
    let waited = false;
    const second = store.ingest(d, 64, async (w) => {
      fills++;
      await w.write(data);
    }, { onWait: () => (waited = true) });
    await new Promise((r) => setTimeout(r, 50));
    release();
    expect((await first).written).toBe(true);
    expect((await second).written).toBe(false);
    expect(fills).toBe(1);
    expect(waited).toBe(true);
  });
});
