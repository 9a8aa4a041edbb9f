import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_LAYER_BYTES, checkFreeSpace, checkLayerSize, reserveBytes } from '../../../src/snapshot/limits.js';
import { parseByteSize } from '../../../src/cli/globals.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

describe('layer unpack limits', () => {
  it('the default reserve is 5% of the filesystem, at most 1 GiB; an explicit one wins, 0 included', () => {
    expect(reserveBytes({}, 64 * MiB)).toBe(Math.floor(64 * MiB * 0.05));
    expect(reserveBytes({}, 100 * GiB)).toBe(GiB);
    expect(reserveBytes({ minFreeBytes: 0 }, 100 * GiB)).toBe(0);
    expect(reserveBytes({ minFreeBytes: 7 }, 100 * GiB)).toBe(7);
  });

  it('the size bound: default 64 GiB, 0 means none, the error names the bound and the flag', () => {
    expect(checkLayerSize({}, DEFAULT_MAX_LAYER_BYTES)).toBeUndefined();
    expect(checkLayerSize({}, DEFAULT_MAX_LAYER_BYTES + 1)?.code).toBe('ERR_LAYER_TOO_LARGE');
    expect(checkLayerSize({ maxLayerBytes: 0 }, 10 * DEFAULT_MAX_LAYER_BYTES)).toBeUndefined();
    const e = checkLayerSize({ maxLayerBytes: 8 * MiB }, 8 * MiB + 1)!;
    expect(e.message).toContain('8.0 MiB');
    expect(e.message).toContain('--max-layer-size');
  });

  it('free space below the reserve fails with the directory, what is left and what to do', () => {
    const st = (freeBlocks: number) => ({ bavail: freeBlocks, bsize: 4096, blocks: 16384 }); // 64 MiB fs
    expect(checkFreeSpace({}, st(1024), '/s')).toBeUndefined(); // 4 MiB free > 3.2 MiB reserve
    const e = checkFreeSpace({}, st(512), '/s')!; // 2 MiB
    expect(e.code).toBe('ERR_LAYER_NO_SPACE');
    expect(e.details).toMatchObject({ dir: '/s', freeBytes: 2 * MiB, reserveBytes: Math.floor(64 * MiB * 0.05) });
    expect(e.message).toMatch(/image prune/);
    // no reserve: only a full filesystem fails
    expect(checkFreeSpace({ minFreeBytes: 0 }, st(1), '/s')).toBeUndefined();
    expect(checkFreeSpace({ minFreeBytes: 0 }, st(0), '/s')?.code).toBe('ERR_LAYER_NO_SPACE');
  });

  it('size flags take bytes or quantities and refuse the rest', () => {
    expect(parseByteSize('--x', '0')).toBe(0);
    expect(parseByteSize('--x', '512Mi')).toBe(512 * MiB);
    expect(parseByteSize('--x', '2G')).toBe(2e9);
    expect(() => parseByteSize('--x', 'lots')).toThrow(/--x: "lots" is not a size/);
    expect(() => parseByteSize('--x', '-1Gi')).toThrow(/--x/);
  });
});
