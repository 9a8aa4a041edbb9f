// Bounded layers (issue 12): a layer that expands past --max-layer-size, one
// that would eat the store's free-space reserve, one that fills the
// filesystem outright, and one with an oversized PAX header each fail with
// their own error while streaming, and leave no chain and no staging
// directory. The store sits on a 64 MiB tmpfs of its own, so "free space" is
// real and nothing else on the machine is touched.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { SnapshotStore } from '../../../src/snapshot/index.js';
import type { LayerLimits } from '../../../src/snapshot/index.js';
import { isNodeletError } from '../../../src/errors.js';
import { chainIdsOf, gzLayer, makeTar, streamOf, tempRoot } from './helpers.js';

const MiB = 1024 ** 2;
let root: string;
let fsDir: string;

beforeAll(() => {
  root = tempRoot();
  fsDir = join(root, 'small');
  fs.mkdirSync(fsDir);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', fsDir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mounting a 64 MiB tmpfs for the test needs root: ${r.stderr}`);
});
afterAll(() => {
  spawnSync('umount', ['-l', fsDir]);
  fs.rmSync(root, { recursive: true, force: true });
});

function freeBytes(): number {
  const st = fs.statfsSync(fsDir);
  return st.bavail * st.bsize;
}

async function apply(name: string, limits: LayerLimits | undefined, tarBuf: Buffer) {
  const storeRoot = join(fsDir, name);
  const store = new SnapshotStore({ root: storeRoot, driver: 'overlay', limits });
  const layer = gzLayer(tarBuf);
  const [chainId] = chainIdsOf([layer]);
  const err = await store
    .applyLayer({ parentChainId: null, chainId: chainId!, diffId: layer.diffId, mediaType: layer.mediaType, open: () => streamOf(layer.blob) })
    .then(() => undefined, (e: unknown) => e);
  const left = { chain: store.hasChain(chainId!), staging: fs.readdirSync(join(storeRoot, 'tmp')), chains: await store.listChains() };
  fs.rmSync(storeRoot, { recursive: true, force: true });
  return { err, left, blobBytes: layer.blob.length };
}

const zeros = (n: number) => makeTar([{ name: 'big', data: Buffer.alloc(n) }]);

describe('layer bounds while streaming', () => {
  it('a layer past --max-layer-size fails with ERR_LAYER_TOO_LARGE, nothing kept', async () => {
    const { err, left, blobBytes } = await apply('too-large', { maxLayerBytes: 8 * MiB }, await zeros(40 * MiB));
    expect(blobBytes).toBeLessThan(MiB); // a bomb: tiny compressed, large expanded
    expect(isNodeletError(err, 'ERR_LAYER_TOO_LARGE'), String(err)).toBe(true);
    expect(left).toEqual({ chain: false, staging: [], chains: [] });
  });

  it('a layer that would leave less than the reserve fails before the filesystem is full', async () => {
    const before = freeBytes();
    const { err, left } = await apply('reserve', { minFreeBytes: 40 * MiB }, await zeros(50 * MiB));
    expect(isNodeletError(err, 'ERR_LAYER_NO_SPACE'), String(err)).toBe(true);
    const d = (err as { details: { freeBytes: number; reserveBytes: number } }).details;
    expect(d.reserveBytes).toBe(40 * MiB);
    expect(d.freeBytes).toBeLessThan(40 * MiB);
    expect(d.freeBytes).toBeGreaterThan(0); // stopped by the reserve, not by ENOSPC
    expect(left).toEqual({ chain: false, staging: [], chains: [] });
    expect(freeBytes()).toBe(before);
  });

  it('with no reserve, a full filesystem (ENOSPC) is the same clear error, nothing kept', async () => {
    const before = freeBytes();
    const { err, left } = await apply('enospc', { minFreeBytes: 0 }, await zeros(80 * MiB));
    expect(isNodeletError(err, 'ERR_LAYER_NO_SPACE'), String(err)).toBe(true);
    expect((err as Error).message).toContain(join(fsDir, 'enospc'));
    expect(left).toEqual({ chain: false, staging: [], chains: [] });
    expect(freeBytes()).toBe(before);
  });

  it('the default reserve (5% of this 64 MiB filesystem) stops a layer that would fill it', async () => {
    const { err, left } = await apply('default', undefined, await zeros(80 * MiB));
    expect(isNodeletError(err, 'ERR_LAYER_NO_SPACE'), String(err)).toBe(true);
    expect(left).toEqual({ chain: false, staging: [], chains: [] });
  });

  it('a 10 MB PAX header is refused as an invalid layer, nothing kept', async () => {
    const tarBuf = await makeTar([{ name: 'f', data: 'x', pax: { comment: 'a'.repeat(10 * 1000 * 1000) } }]);
    const { err, left } = await apply('pax', undefined, tarBuf);
    expect(isNodeletError(err, 'ERR_LAYER_INVALID'), String(err)).toBe(true);
    expect((err as Error).message).toMatch(/Header exceeds max size/);
    expect(left).toEqual({ chain: false, staging: [], chains: [] });
  });

  it('a layer within the bounds unpacks on the same filesystem', async () => {
    const { err, left } = await apply('fits', { minFreeBytes: 8 * MiB, maxLayerBytes: 40 * MiB }, await zeros(20 * MiB));
    expect(err).toBeUndefined();
    expect(left.chain).toBe(true);
  });
});
