// Failures before exec come back as stage + errno + message, and nothing is left behind.
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ShimClient, ShimStartError } from '../../../src/runtime/shim/index.js';
import { isNodeletError } from '../../../src/errors.js';
import { makeFixture, processesMentioning, type Fixture } from './util.js';

let f: Fixture;
beforeEach(async () => {
  f = await makeFixture();
});
afterEach(async () => {
  await f.cleanup();
});

async function expectStartError(overrides: Parameters<Fixture['plan']>[0]) {
  const plan = f.plan(overrides);
  const err = await f.client.start(plan).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ShimStartError);
  expect(await processesMentioning(plan.stateDir)).toEqual([]);
  const mounts = await readFile('/proc/self/mountinfo', 'utf8');
  expect(mounts).not.toContain(f.rootfs);
  expect(await f.client.readState(plan.stateDir)).toBeUndefined();
  return err as ShimStartError;
}

describe('start failures', () => {
  test('nonexistent binary: stage exec, ENOENT, names the binary', async () => {
    const e = await expectStartError({ argv: ['/bin/nosuch'] });
    expect(e.code).toBe('ERR_CONTAINER_START');
    expect(e.details).toMatchObject({ stage: 'exec', errnoName: 'ENOENT' });
    expect(e.message).toContain('/bin/nosuch');
  });

  test('binary not in PATH: stage exec, ENOENT', async () => {
    const e = await expectStartError({ argv: ['nosuch-cmd'] });
    expect(e.details).toMatchObject({ stage: 'exec', errnoName: 'ENOENT' });
    expect(e.message).toContain('nosuch-cmd');
  });

  test('a non-executable file: stage exec, EACCES', async () => {
    const e = await expectStartError({ argv: ['/etc/passwd'] });
    expect(e.details).toMatchObject({ stage: 'exec', errnoName: 'EACCES' });
    expect(e.message).toContain('cannot run /etc/passwd: permission denied');
  });

  test('a binary on a noexec mount (a store on a noexec /dev/shm, a noexec volume) is named as such, by path and in $PATH', async () => {
    // a copy of busybox on a noexec mount, bound at /opt like a volume
    const opt = join(f.dir, 'noexec');
    mkdirSync(opt, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'noexec,size=8m', 'tmpfs', opt]);
    try {
      copyFileSync('/bin/busybox', join(opt, 'sh'));
      chmodSync(join(opt, 'sh'), 0o755);
      const mounts = [...f.plan().mounts, { source: opt, target: '/opt', fstype: 'bind', flags: 0x1000 | 0x8 /* MS_BIND | MS_NOEXEC */, mkdir: 'dir' as const }];
      const direct = await expectStartError({ argv: ['/opt/sh', '-c', 'true'], mounts });
      expect(direct.details).toMatchObject({ stage: 'exec', errnoName: 'EACCES' });
      expect(direct.message).toContain('cannot run /opt/sh: its filesystem is mounted noexec');
      // found in $PATH only there (a runnable one later in $PATH would win, as with execvp)
      const viaPath = await expectStartError({ argv: ['sh', '-c', 'true'], env: ['PATH=/opt'], mounts });
      expect(viaPath.details).toMatchObject({ stage: 'exec', errnoName: 'EACCES' });
      expect(viaPath.message).toContain('cannot run /opt/sh: its filesystem is mounted noexec');
    } finally {
      execFileSync('umount', [opt]);
    }
  });

  test('missing working directory: stage chdir', async () => {
    const e = await expectStartError({ cwd: '/does/not/exist' });
    expect(e.details).toMatchObject({ stage: 'chdir', errnoName: 'ENOENT' });
    expect(e.message).toContain('/does/not/exist');
  });

  test('a mount source that does not exist: stage mount', async () => {
    const plan = f.plan();
    const e = await expectStartError({ mounts: [...plan.mounts, { source: '/nonexistent-src', target: '/x', fstype: 'bind', flags: 0x1000, mkdir: 'dir' }] });
    expect(e.details).toMatchObject({ stage: 'mount', errnoName: 'ENOENT' });
  });

  test('a bad cgroup.procs file: stage cgroup, the child is killed', async () => {
    const e = await expectStartError({ cgroupProcsFiles: ['/nonexistent/cgroup.procs'] });
    expect(e.details).toMatchObject({ stage: 'cgroup', errnoName: 'ENOENT' });
  });

  test('a namespace path that does not exist: stage namespaces', async () => {
    const e = await expectStartError({ namespaces: [{ type: 'mnt' }, { type: 'pid' }, { type: 'net', path: '/nonexistent/netns' }] });
    expect(e.details).toMatchObject({ stage: 'namespaces', errnoName: 'ENOENT' });
  });

  test('invalid plans are refused before anything runs, naming the field', async () => {
    const bad = f.plan({ cwd: 'relative' });
    await expect(f.client.start(bad)).rejects.toSatisfy((e: unknown) => isNodeletError(e, 'ERR_SHIM_PLAN_INVALID') && /cwd/.test((e as Error).message));
    const nul = f.plan({ env: ['A=b\0c'] });
    await expect(f.client.start(nul)).rejects.toSatisfy((e: unknown) => isNodeletError(e, 'ERR_SHIM_PLAN_INVALID'));
  });

  test('a missing shim binary is a clear error', async () => {
    const c = new ShimClient({ binary: '/nonexistent/nodelet-shim' });
    await expect(c.start(f.plan())).rejects.toSatisfy((e: unknown) => isNodeletError(e, 'ERR_SHIM_UNAVAILABLE'));
  });
});
