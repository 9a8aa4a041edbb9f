import { describe, expect, it } from 'vitest';
import { compareQuantity, divideQuantity, parseQuantity, quantityMilli, quantityValue, tryParseQuantity } from '../../../src/pod/quantity.js';

describe('quantity', () => {
  const cases: [string | number, number, number][] = [
    // input, milli, value (rounded up)
    ['500m', 500, 1],
    ['0.5', 500, 1],
    ['1', 1000, 1],
    [1, 1000, 1],
    [0.1, 100, 1],
    ['0.1', 100, 1],
    ['128Mi', 128 * 2 ** 20 * 1000, 128 * 2 ** 20],
    ['1Gi', 2 ** 30 * 1000, 2 ** 30],
    ['1G', 1e9 * 1000, 1e9],
    ['1e3', 1e6, 1000],
    ['100k', 1e8, 100000],
    ['1.5Gi', 1.5 * 2 ** 30 * 1000, 1.5 * 2 ** 30],
    ['250u', 1, 1],
    ['.5', 500, 1],
    ['2E-1', 200, 1],
  ];
  for (const [q, milli, value] of cases) {
    it(`parses ${JSON.stringify(q)}`, () => {
      expect(quantityMilli(q)).toBe(milli);
      expect(quantityValue(q)).toBe(value);
    });
  }
  for (const bad of ['128MB', 'abc', '', '1.2.3', 'Mi', '1 Gi', '--1', '1KiB']) {
    it(`rejects ${JSON.stringify(bad)}`, () => {
      expect(tryParseQuantity(bad)).toBeUndefined();
      expect(() => parseQuantity(bad, 'spec.x')).toThrow(/spec.x: invalid quantity/);
    });
  }
  it('compares exactly', () => {
    expect(compareQuantity('1', '1000m')).toBe(0);
    expect(compareQuantity('1Gi', '1G')).toBe(1);
    expect(compareQuantity('0.3', '300m')).toBe(0);
    expect(compareQuantity('2', '500m')).toBe(1);
  });
  it('divides with rounding up', () => {
    expect(divideQuantity('128Mi', '1Mi')).toBe(128);
    expect(divideQuantity('1500m', '1')).toBe(2);
    expect(divideQuantity('250m', '1m')).toBe(250);
  });
});
