import type { Command } from 'commander';
import path from 'node:path';
import { configureLogging, type LogLevel } from '../log.js';
import { parseQuantity, quantityValue } from '../pod/quantity.js';
import type { LayerLimits } from '../snapshot/limits.js';

export interface GlobalOptions {
  /** Persistent state: images, content store, snapshots, pod records. */
  root: string;
  /** Runtime state: mounts, pinned namespaces, shim state, sockets. */
  runRoot: string;
  logLevel: LogLevel;
  /** --max-layer-size, --image-min-free */
  layerLimits: LayerLimits;
}

export type GlobalsFn = () => GlobalOptions;

export function globalOptions(program: Command): GlobalOptions {
  const o = program.opts<{ root: string; runRoot: string; logLevel: LogLevel; maxLayerSize?: string; imageMinFree?: string }>();
  configureLogging({ level: o.logLevel });
  const layerLimits: LayerLimits = {};
  if (o.maxLayerSize !== undefined) layerLimits.maxLayerBytes = parseByteSize('--max-layer-size', o.maxLayerSize);
  if (o.imageMinFree !== undefined) layerLimits.minFreeBytes = parseByteSize('--image-min-free', o.imageMinFree);
  return { root: path.resolve(o.root), runRoot: path.resolve(o.runRoot), logLevel: o.logLevel, layerLimits };
}

/** A size flag: bytes or a Kubernetes quantity (512Mi, 20Gi, 1G); 0 allowed. */
export function parseByteSize(flag: string, v: string): number {
  let n: number;
  try {
    n = quantityValue(parseQuantity(v, flag));
  } catch {
    n = NaN;
  }
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${flag}: "${v}" is not a size (bytes, or a quantity such as 512Mi or 20Gi)`);
  return n;
}
