// resolveSubPath's directory creation on a plain temp dir (no mounts, no root needed).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveSubPath } from '../../../src/volumes/subpath.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodelet-subpath-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('resolveSubPath: missing directories', () => {
  it('take the mode of the volume root, setgid and sticky included (kubelet: SafeMakeDir with GetMode(volumePath))', () => {
    const vol = join(dir, 'vol');
    mkdirSync(vol);
    chmodSync(vol, 0o3777); // an fsGroup emptyDir on tmpfs: 01777 | g+s
    const p = resolveSubPath(vol, 'test-sub/deeper');
    expect(p).toBe(join(vol, 'test-sub/deeper'));
    for (const d of [join(vol, 'test-sub'), p]) {
      const st = statSync(d);
      expect(st.mode & 0o7777).toBe(0o3777);
      expect(st.gid).toBe(statSync(vol).gid); // setgid root: the group carries over
    }
  });
  it('a root without setgid gives plain directories of its mode, whatever the umask', () => {
    const vol = join(dir, 'vol');
    mkdirSync(vol);
    chmodSync(vol, 0o775);
    const old = process.umask(0o077);
    try {
      expect(statSync(resolveSubPath(vol, 'a')).mode & 0o7777).toBe(0o775);
    } finally {
      process.umask(old);
    }
  });
  it('an existing directory keeps its own mode', () => {
    const vol = join(dir, 'vol');
    mkdirSync(join(vol, 'x'), { recursive: true });
    chmodSync(join(vol, 'x'), 0o700);
    chmodSync(vol, 0o2777);
    expect(statSync(resolveSubPath(vol, 'x')).mode & 0o7777).toBe(0o700);
  });
});
