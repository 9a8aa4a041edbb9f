// Bounds on what one layer may write while it is unpacked: its uncompressed
// size, and the free space it must leave on the store's filesystem. Both are
// checked while streaming, so a small gzip that expands to gigabytes ("a zip
// bomb") fails long before the filesystem is full. Pure deciders; unpack.ts
// applies them.

import { NodeletError } from '../errors.js';

export interface LayerLimits {
  /** refuse a layer whose uncompressed tar stream exceeds this many bytes (0: no bound) */
  maxLayerBytes?: number;
  /**
   * free space the unpack must leave on the store's filesystem, in bytes; unset: the default reserve
   * (5% of the filesystem, at most 1 GiB); 0: none (the unpack may fill it, ENOSPC still fails cleanly)
   */
  minFreeBytes?: number;
}

/** No real image has layers near this (the largest CUDA layers are ~10 GiB); a bomb hits it even on a huge disk. */
export const DEFAULT_MAX_LAYER_BYTES = 64 * 1024 ** 3;
const DEFAULT_RESERVE_CAP = 1024 ** 3;
/** statfs every this many uncompressed bytes: cheap (one syscall per 16 MiB), overshoot bounded */
export const FREE_SPACE_CHECK_BYTES = 16 * 1024 ** 2;

/** The reserve for a filesystem of `totalBytes`. */
export function reserveBytes(limits: LayerLimits, totalBytes: number): number {
  if (limits.minFreeBytes !== undefined) return limits.minFreeBytes;
  return Math.min(DEFAULT_RESERVE_CAP, Math.floor(totalBytes * 0.05));
}

export function maxLayerBytes(limits: LayerLimits): number {
  return limits.maxLayerBytes ?? DEFAULT_MAX_LAYER_BYTES;
}

function gib(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

/** The error when the uncompressed stream has grown past the bound, or undefined. */
export function checkLayerSize(limits: LayerLimits, bytes: number): NodeletError | undefined {
  const max = maxLayerBytes(limits);
  if (max <= 0 || bytes <= max) return undefined;
  return new NodeletError(
    'InvalidArgument',
    'ERR_LAYER_TOO_LARGE',
    `The layer expands to more than ${gib(max)} (the bound on one layer's uncompressed size); nothing was kept. If the image is genuine, raise --max-layer-size`,
    { details: { maxLayerBytes: max, bytes } },
  );
}

/** The error when the filesystem has less than the reserve left, or undefined. */
export function checkFreeSpace(limits: LayerLimits, fsStat: { bavail: number; bsize: number; blocks: number }, dir: string): NodeletError | undefined {
  const free = fsStat.bavail * fsStat.bsize;
  const reserve = reserveBytes(limits, fsStat.blocks * fsStat.bsize);
  if (free >= reserve && free > 0) return undefined;
  return noSpace(dir, free, reserve);
}

export function noSpace(dir: string, free: number, reserve: number, cause?: unknown): NodeletError {
  return new NodeletError(
    'FailedPrecondition',
    'ERR_LAYER_NO_SPACE',
    `Unpacking the layer would leave less than ${gib(reserve)} free on the filesystem of ${dir} (${gib(free)} left); nothing was kept. Free space (nodelet image prune, nodelet image rm) or lower --image-min-free`,
    { cause, details: { dir, freeBytes: free, reserveBytes: reserve } },
  );
}
