import { describe, expect, it } from 'vitest';
import { formatPlatform, hostPlatform, matchPlatform, normalizePlatform, parsePlatform, selectPlatform } from '../../../src/image/registry/platform.js';

describe('platforms', () => {
  it('parses and normalises', () => {
    expect(parsePlatform('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/x86_64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(parsePlatform('linux/aarch64')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm64/v8')).toEqual({ os: 'linux', architecture: 'arm64' });
    expect(parsePlatform('linux/arm')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    expect(parsePlatform('linux/arm/6')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v6' });
    expect(() => parsePlatform('linux')).toThrow(/os\/arch/);
    expect(() => parsePlatform('linux/amd64/v2/x')).toThrow(/os\/arch/);
    expect(formatPlatform(normalizePlatform({ os: 'Linux', architecture: 'armhf' }))).toBe('linux/arm/v7');
  });
  it('knows the host', () => {
    const h = hostPlatform();
    expect(h.os).toBe('linux');
    expect(h.architecture).toBe(process.arch === 'x64' ? 'amd64' : process.arch);
  });
  const entries = [
    { name: 'arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { name: 'armv6', platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
    { name: 'armv7', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
    { name: 'amd64', platform: { os: 'linux', architecture: 'amd64' } },
    { name: 'win', platform: { os: 'windows', architecture: 'amd64' } },
    { name: 'attestation' },
  ];
  it.each([
    ['linux/amd64', 'amd64'],
    ['linux/arm64', 'arm64'],
    ['linux/arm/v7', 'armv7'],
    ['linux/arm/v6', 'armv6'],
    ['linux/arm/v8', 'armv7'], // best lower compatible variant
    ['windows/amd64', 'win'],
    ['linux/s390x', undefined],
    ['linux/arm/v5', undefined],
  ])('selects %s -> %s', (want, name) => {
    expect(selectPlatform(entries, parsePlatform(want))?.name).toBe(name);
  });
  it('ranks exact variants above compatible ones', () => {
    const want = parsePlatform('linux/amd64/v3');
    expect(matchPlatform(want, { os: 'linux', architecture: 'amd64', variant: 'v3' })).toBeGreaterThan(matchPlatform(want, { os: 'linux', architecture: 'amd64' }));
    expect(matchPlatform(parsePlatform('linux/amd64'), { os: 'linux', architecture: 'amd64', variant: 'v3' })).toBe(0);
  });
});
