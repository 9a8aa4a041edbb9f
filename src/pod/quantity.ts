// Kubernetes resource.Quantity parsing (apimachinery/pkg/api/resource):
// <signedNumber><suffix>, suffix one of the binary SI (Ki Mi Gi Ti Pi Ei),
// decimal SI (n u m "" k M G T P E) or a decimal exponent (e3, E-2).
// Arithmetic is exact (BigInt); conversions round up like Quantity.MilliValue()
// and Quantity.Value().

import { invalidArgument } from '../errors.js';
import type { Quantity } from './api-types.js';

export interface ParsedQuantity {
  /** value = sign * digits * 2^binExp * 10^decExp */
  negative: boolean;
  digits: bigint;
  decExp: number;
  binExp: number;
  /** canonical input text */
  text: string;
}

const RE = /^([+-]?)(\d+\.?\d*|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const BIN: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DEC: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

/** Parse or return undefined when the text is not a valid quantity. */
export function tryParseQuantity(q: Quantity | undefined | null): ParsedQuantity | undefined {
  if (q === undefined || q === null) return undefined;
  let text: string;
  if (typeof q === 'number') {
    if (!Number.isFinite(q)) return undefined;
    text = String(q);
    // String(1e21) = "1e+21": the regex accepts that form.
  } else if (typeof q === 'string') {
    text = q.trim();
  } else {
    return undefined;
  }
  const m = RE.exec(text);
  if (!m) return undefined;
  const [, sign, num, suffix = ''] = m;
  const dot = num!.indexOf('.');
  const intPart = dot < 0 ? num! : num!.slice(0, dot);
  const frac = dot < 0 ? '' : num!.slice(dot + 1);
  const digits = BigInt((intPart + frac).replace(/^0+(?=\d)/, '') || '0');
  let decExp = -frac.length;
  let binExp = 0;
  if (suffix in BIN) binExp = BIN[suffix]!;
  else if (suffix in DEC) decExp += DEC[suffix]!;
  else if (suffix) {
    const e = Number(suffix.slice(1));
    if (!Number.isSafeInteger(e) || Math.abs(e) > 100) return undefined;
    decExp += e;
  }
  return { negative: sign === '-' && digits !== 0n, digits, decExp, binExp, text };
}

export function parseQuantity(q: Quantity | undefined | null, field = 'quantity'): ParsedQuantity {
  const p = tryParseQuantity(q);
  if (!p) {
    throw invalidArgument(
      'ERR_QUANTITY_INVALID',
      `${field}: invalid quantity ${JSON.stringify(q)}: must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (e.g. 500m, 0.5, 128Mi, 1Gi)`,
      { details: { field, value: q } },
    );
  }
  return p;
}

/** value * 10^scale, rounded up (away from zero for positives), as a JS number. */
function scaled(p: ParsedQuantity, scale: number): number {
  let n = p.digits << BigInt(p.binExp);
  const e = p.decExp + scale;
  if (e >= 0) n = n * 10n ** BigInt(e);
  else {
    const d = 10n ** BigInt(-e);
    n = (n + d - 1n) / d;
  }
  const v = Number(n);
  return p.negative ? -v : v;
}

/** Integer value rounded up (bytes for memory). */
/** The exact value in units of 10^-9, rounded up (Kubernetes keeps nano precision). */
export function quantityNano(q: Quantity | ParsedQuantity): bigint {
  const p = typeof q === 'object' ? q : parseQuantity(q);
  let n = p.digits << BigInt(p.binExp);
  const e = p.decExp + 9;
  if (e >= 0) n *= 10n ** BigInt(e);
  else {
    const d = 10n ** BigInt(-e);
    n = (n + d - 1n) / d;
  }
  return p.negative ? -n : n;
}

export function quantityValue(q: Quantity | ParsedQuantity): number {
  return scaled(typeof q === 'object' ? q : parseQuantity(q), 0);
}

/** Millis rounded up (millicores for CPU). */
export function quantityMilli(q: Quantity | ParsedQuantity): number {
  return scaled(typeof q === 'object' ? q : parseQuantity(q), 3);
}

/** Bytes for a memory-like quantity. */
export const toBytes = quantityValue;
/** Millicores for a CPU quantity. */
export const toMillicores = quantityMilli;

/** Compare two quantities exactly: -1, 0, 1. */
export function compareQuantity(a: Quantity | ParsedQuantity, b: Quantity | ParsedQuantity): number {
  const pa = typeof a === 'object' ? a : parseQuantity(a);
  const pb = typeof b === 'object' ? b : parseQuantity(b);
  // Bring both to a common integer scale: multiply by 10^k with k = -min(decExp).
  const k = Math.max(0, -Math.min(pa.decExp, pb.decExp));
  const ia = (pa.digits << BigInt(pa.binExp)) * 10n ** BigInt(pa.decExp + k) * (pa.negative ? -1n : 1n);
  const ib = (pb.digits << BigInt(pb.binExp)) * 10n ** BigInt(pb.decExp + k) * (pb.negative ? -1n : 1n);
  return ia < ib ? -1 : ia > ib ? 1 : 0;
}

/**
 * value / divisor rounded up, as the downward API reports resources
 * (resourceFieldRef with divisor: "1m", "1Mi" ...; minimum 1 when value > 0).
 */
export function divideQuantity(value: Quantity | ParsedQuantity, divisor: Quantity | ParsedQuantity): number {
  const pv = typeof value === 'object' ? value : parseQuantity(value);
  const pd = typeof divisor === 'object' ? divisor : parseQuantity(divisor);
  const k = Math.max(0, -Math.min(pv.decExp, pd.decExp));
  const iv = (pv.digits << BigInt(pv.binExp)) * 10n ** BigInt(pv.decExp + k);
  const id = (pd.digits << BigInt(pd.binExp)) * 10n ** BigInt(pd.decExp + k);
  if (id === 0n) throw invalidArgument('ERR_QUANTITY_INVALID', 'divisor must be greater than zero');
  return Number((iv + id - 1n) / id);
}
