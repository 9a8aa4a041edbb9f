import { describe, expect, it } from 'vitest';
import { classifyWhiteout, cleanEntryPath, cleanLinkTarget, compressionFromMediaType, sniffCompression, symlinkEscapes } from '../../../src/snapshot/paths.js';
import { isNodeletError } from '../../../src/errors.js';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return isNodeletError(e) ? e.code : String(e);
  }
  return 'no error';
};

describe('cleanEntryPath', () => {
  it.each([
    ['a/b/c', ['a', 'b', 'c']],
    ['./a//b/', ['a', 'b']],
    ['./', []],
    ['.', []],
    ['a/../b', ['b']],
    ['a/b/../../c', ['c']],
    ['.wh..wh..opq', ['.wh..wh..opq']],
    ['...', ['...']],
  ])('%s → %j', (name, parts) => expect(cleanEntryPath(name)).toEqual(parts));

  it.each(['../x', 'a/../../x', '/etc/passwd', '//x', '..', 'a/\0b', './../x'])('refuses %j', (name) => {
    expect(code(() => cleanEntryPath(name))).toBe('ERR_LAYER_UNSAFE_PATH');
  });

  it('names the entry in the error', () => {
    expect(() => cleanEntryPath('x/../../y')).toThrow('"x/../../y"');
  });
});

describe('cleanLinkTarget', () => {
  it('resolves relative to the archive root', () => expect(cleanLinkTarget('b', 'usr/bin/x')).toEqual(['usr', 'bin', 'x']));
  it('refuses targets outside and names the link entry', () => {
    expect(code(() => cleanLinkTarget('h', '/etc/passwd'))).toBe('ERR_LAYER_UNSAFE_PATH');
    expect(() => cleanLinkTarget('h', '../../x')).toThrow(/"h".*hardlink target "\.\.\/\.\.\/x"/);
    expect(code(() => cleanLinkTarget('h', '.'))).toBe('ERR_LAYER_UNSAFE_PATH');
  });
});

describe('symlinkEscapes', () => {
  it.each([
    [['a', 'l'], '../x', false],
    [['a', 'l'], '../../x', true],
    [['l'], '..', true],
    [['l'], '/anything/../..', false],
    [['a', 'b', 'l'], '../../c/../x', false],
    [['l'], 'x/../../y', true],
  ])('%j -> %s escapes=%s', (parts, target, want) => expect(symlinkEscapes(parts, target)).toBe(want));
});

describe('classifyWhiteout', () => {
  it('maps OCI whiteout names', () => {
    expect(classifyWhiteout('a/f', 'f')).toEqual({ kind: 'none' });
    expect(classifyWhiteout('a/.wh.f', '.wh.f')).toEqual({ kind: 'whiteout', name: 'f' });
    expect(classifyWhiteout('a/.wh..hidden', '.wh..hidden')).toEqual({ kind: 'whiteout', name: '.hidden' });
    expect(classifyWhiteout('a/.wh..wh..opq', '.wh..wh..opq')).toEqual({ kind: 'opaque' });
    expect(classifyWhiteout('a/.wh..wh.plnk', '.wh..wh.plnk')).toEqual({ kind: 'meta' });
    expect(classifyWhiteout('x.wh.y', 'x.wh.y')).toEqual({ kind: 'none' });
  });
  it.each(['.wh.', '.wh..', '.wh...'])('refuses %j', (base) => expect(code(() => classifyWhiteout(`d/${base}`, base))).toBe('ERR_LAYER_UNSAFE_PATH'));
});

describe('compression', () => {
  it.each([
    ['application/vnd.oci.image.layer.v1.tar+gzip', 'gzip'],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', 'gzip'],
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', 'gzip'],
    ['application/vnd.oci.image.layer.v1.tar+zstd', 'zstd'],
    ['application/vnd.oci.image.layer.v1.tar', 'none'],
    ['application/vnd.docker.image.rootfs.diff.tar', 'none'],
    ['application/octet-stream', null],
  ])('%s → %s', (mt, want) => expect(compressionFromMediaType(mt)).toBe(want));
  it('sniffs magic bytes', () => {
    expect(sniffCompression(Buffer.from([0x1f, 0x8b, 8]))).toBe('gzip');
    expect(sniffCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0]))).toBe('zstd');
    expect(sniffCompression(Buffer.from('etc/passwd\0'))).toBe('none');
    expect(sniffCompression(Buffer.alloc(0))).toBe('none');
  });
});
