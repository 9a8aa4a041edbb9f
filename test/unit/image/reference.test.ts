import { describe, expect, it } from 'vitest';
import { familiarReference, formatReference, isLoopbackHost, parseReference } from '../../../src/image/reference.js';

const D = 'sha256:' + 'a'.repeat(64);

describe('parseReference normalisation', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
    ['user/app', 'docker.io/user/app:latest'],
    ['user/app/sub:tag', 'docker.io/user/app/sub:tag'],
    ['localhost/x', 'localhost/x:latest'],
    ['localhost:5000/a/b:tag', 'localhost:5000/a/b:tag'],
    ['127.0.0.1:5000/app:v1', '127.0.0.1:5000/app:v1'],
    ['quay.io/org/app', 'quay.io/org/app:latest'],
    [`host.io/x@${D}`, `host.io/x@${D}`],
    [`host.io/x:v1@${D}`, `host.io/x:v1@${D}`],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    ['[::1]:5000/app:v1', '[::1]:5000/app:v1'],
    ['Registry.Example/app', 'Registry.Example/app:latest'],
    ['a.b-c/d_e/f__g/h-i.j:T_a.g-1', 'a.b-c/d_e/f__g/h-i.j:T_a.g-1'],
    ['localhost:5000', 'docker.io/library/localhost:5000'],
  ])('%s -> %s', (input, want) => {
    expect(formatReference(parseReference(input))).toBe(want);
  });

  it('splits domain, path, tag and digest', () => {
    expect(parseReference(`localhost:5000/a/b:tag@${D}`)).toEqual({ domain: 'localhost:5000', path: 'a/b', tag: 'tag', digest: D });
    expect(parseReference('busybox', { defaultTag: false })).toEqual({ domain: 'docker.io', path: 'library/busybox' });
  });

  it('familiar form', () => {
    expect(familiarReference(parseReference('busybox'))).toBe('busybox:latest');
    expect(familiarReference(parseReference('docker.io/user/app:1'))).toBe('user/app:1');
    expect(familiarReference(parseReference('localhost:5000/a:b'))).toBe('localhost:5000/a:b');
  });
});

describe('parseReference errors', () => {
  it.each([
    ['', /empty reference/],
    ['Busybox', /must be lowercase/],
    ['docker.io/Library/busybox', /must be lowercase/],
    ['busybox:', /invalid tag/],
    ['busybox:-bad', /invalid tag/],
    ['busybox:' + 'a'.repeat(129), /invalid tag/],
    ['busybox@sha256:abc', /invalid sha256 digest/],
    ['busybox@sha256:' + 'A'.repeat(64), /invalid sha256 digest/],
    ['busybox@md5:' + 'a'.repeat(32), /unsupported digest algorithm/],
    ['busybox@', /invalid digest/],
    ['a//b', /empty path component/],
    ['host.io/a/', /empty path component/],
    ['host.io/-a', /invalid path component/],
    ['host.io/a--', /invalid path component/],
    ['host.io/a...b', /invalid path component/],
    ['-host.io/a', /invalid/],
    ['host.io:99999/a', /invalid port/],
    ['bad host/a', /whitespace/],
    ['x/' + 'a'.repeat(260), /longer than 255/],
    [':tag', /missing repository name/],
  ])('%j is refused', (input, why) => {
    let err: (Error & { code?: string }) | undefined;
    try {
      parseReference(input);
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).toBe('ERR_IMAGE_REFERENCE_INVALID');
    expect(err?.message).toMatch(why);
    expect(err?.message).toContain(`"${input}"`);
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['localhost:5000', true],
    ['localhost', true],
    ['127.0.0.1:5000', true],
    ['127.3.2.1', true],
    ['[::1]:5000', true],
    ['128.0.0.1:5000', false],
    ['localhost.example.com', false],
    ['docker.io', false],
  ])('%s -> %s', (h, want) => expect(isLoopbackHost(h)).toBe(want));
});
