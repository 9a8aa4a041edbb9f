// Canonical resource.Quantity strings as apimachinery prints them
// (Quantity.String / CanonicalizeBytes), so what nodelet sends is exactly what
// the API server stores and returns: a BinarySI value that is a whole number
// of 1024^n prints as "<n>Ki|Mi|Gi…" ("16318004Ki"), below 1024 or not whole as
// a decimal number; a DecimalSI value drops factors of 10 down to a multiple-
// of-3 exponent ("2", "1500m", "110", "10k"). Also exact nano-scaled
// arithmetic on parsed quantities (sums and comparisons without float error).

import { parseQuantity, quantityNano, type ParsedQuantity } from '../pod/quantity.js';
import type { Quantity } from '../pod/api-types.js';

export type QuantityFormat = 'BinarySI' | 'DecimalSI';

const DEC_SUFFIX: Record<number, string> = { [-9]: 'n', [-6]: 'u', [-3]: 'm', 0: '', 3: 'k', 6: 'M', 9: 'G', 12: 'T', 15: 'P', 18: 'E' };
const BIN_SUFFIX = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];

/** A DecimalSI string for `mantissa * 10^exponent` (exponent a multiple of 3 or not). */
function formatDecimal(mantissa: bigint, exponent: number): string {
  if (mantissa === 0n) return '0';
  const neg = mantissa < 0n;
  let m = neg ? -mantissa : mantissa;
  let e = exponent;
  while (m % 10n === 0n) {
    m /= 10n;
    e += 1;
  }
  // bring the exponent down to a multiple of 3
  const r = ((e % 3) + 3) % 3;
  if (r !== 0) {
    m *= 10n ** BigInt(r);
    e -= r;
  }
  let suffix = DEC_SUFFIX[e];
  if (suffix === undefined) {
    // outside n..E: apimachinery falls back to a decimal exponent
    suffix = `e${e}`;
  }
  return `${neg ? '-' : ''}${m}${suffix}`;
}

/** Canonical text of an integer quantity (bytes, counts). */
export function formatIntegerQuantity(value: bigint | number, format: QuantityFormat): string {
  const v = typeof value === 'bigint' ? value : BigInt(Math.trunc(value));
  if (v === 0n) return '0';
  if (format === 'BinarySI' && (v >= 1024n || v <= -1024n)) {
    const neg = v < 0n;
    let m = neg ? -v : v;
    let exp = 0;
    while (m % 1024n === 0n && exp < BIN_SUFFIX.length - 1) {
      m /= 1024n;
      exp++;
    }
    return `${neg ? '-' : ''}${m}${BIN_SUFFIX[exp]}`;
  }
  return formatDecimal(v, 0);
}

/** Canonical text of a milli-valued quantity (CPU millicores), DecimalSI. */
export function formatMilliQuantity(milli: bigint | number): string {
  const v = typeof milli === 'bigint' ? milli : BigInt(Math.trunc(milli));
  return formatDecimal(v, -3);
}

/** value in units of 10^-9, rounded up (Kubernetes keeps nano precision). */
export const toNano = quantityNano;

const NANO = 1_000_000_000n;
const MILLI_PER_NANO = 1_000_000n;

function ceilDiv(a: bigint, b: bigint): bigint {
  if (a >= 0n) return (a + b - 1n) / b;
  return -((-a) / b);
}

/** Quantity.Value() of a nano amount (rounded up). */
export function nanoToValue(n: bigint): bigint {
  return ceilDiv(n, NANO);
}

/** Quantity.MilliValue() of a nano amount (rounded up). */
export function nanoToMilli(n: bigint): bigint {
  return ceilDiv(n, MILLI_PER_NANO);
}

/** Semantic equality of two quantities (apiequality.Semantic compares values, not text). */
export function quantitiesEqual(a: unknown, b: unknown): boolean {
  if ((typeof a !== 'string' && typeof a !== 'number') || (typeof b !== 'string' && typeof b !== 'number')) return a === b;
  try {
    return toNano(a) === toNano(b);
  } catch {
    return a === b;
  }
}
