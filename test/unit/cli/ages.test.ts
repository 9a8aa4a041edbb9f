// kubectl's ages (apimachinery duration.HumanDuration) and times (Go's time.RFC1123Z).
import { describe, expect, it } from 'vitest';
import { humanDuration, rfc1123z, since } from '../../../src/cli/describe.js';

const s = 1000;
const m = 60 * s;
const h = 60 * m;
const d = 24 * h;

describe('humanDuration', () => {
  it.each([
    [-5 * s, '<invalid>'],
    [-1 * s, '0s'],
    [0, '0s'],
    [5 * s, '5s'],
    [119 * s, '119s'],
    [2 * m, '2m'],
    [3 * m + 2 * s, '3m2s'],
    [9 * m + 59 * s, '9m59s'],
    [10 * m + 30 * s, '10m'],
    [179 * m, '179m'],
    [3 * h, '3h'],
    [5 * h + 3 * m, '5h3m'],
    [8 * h + 30 * m, '8h'],
    [47 * h, '47h'],
    [2 * d, '2d'],
    [3 * d + 4 * h, '3d4h'],
    [8 * d + 5 * h, '8d'],
    [400 * d, '400d'],
    [2 * 365 * d, '2y'],
    [3 * 365 * d + 3 * d, '3y3d'],
    [9 * 365 * d, '9y'],
  ])('%d ms → %s', (ms, want) => expect(humanDuration(ms)).toBe(want));

  it('since: the age of an RFC 3339 time; <unknown> without one', () => {
    const now = Date.parse('2026-01-02T15:04:05Z');
    expect(since('2026-01-02T15:03:00Z', now)).toBe('65s');
    expect(since(undefined, now)).toBe('<unknown>');
    expect(since('garbage', now)).toBe('<unknown>');
  });
});

describe('rfc1123z', () => {
  it('formats as Go time.RFC1123Z in the given zone', () => {
    expect(rfc1123z('2006-01-02T15:04:05Z', 0)).toBe('Mon, 02 Jan 2006 15:04:05 +0000');
    expect(rfc1123z('2006-01-02T15:04:05Z', -7 * 60)).toBe('Mon, 02 Jan 2006 08:04:05 -0700');
    expect(rfc1123z('2006-01-02T22:04:05Z', 5 * 60 + 30)).toBe('Tue, 03 Jan 2006 03:34:05 +0530');
    expect(rfc1123z(undefined)).toBe('<unknown>');
  });
  it('uses the local zone by default', () => {
    expect(rfc1123z('2026-12-03T08:00:00Z')).toMatch(/^Thu, 03 Dec 2026 \d\d:\d\d:00 [+-]\d{4}$/);
  });
});
