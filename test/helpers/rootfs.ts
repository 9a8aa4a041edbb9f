// Test helper: a minimal busybox root filesystem on tmpfs (/dev/shm), built by
// copying the static busybox and linking its applets. Reusable by every area.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const BUSYBOX = '/bin/busybox';

/** A fresh private directory /dev/shm/nodelet-test-<random>/ (removed by the caller). */
export async function makeTestDir(prefix = 'nodelet-test-'): Promise<string> {
  return mkdtemp(join('/dev/shm', `${prefix}${randomBytes(3).toString('hex')}-`));
}

let applets: string[] | undefined;
function busyboxApplets(): string[] {
  applets ??= execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '' && !s.includes('/'));
  return applets;
}

export interface BusyboxRootfsOptions {
  /** Extra files to write: path inside the rootfs -> content. */
  files?: Record<string, string>;
}

/**
 * Populate `dir` (created if missing) as a busybox rootfs: /bin/busybox with
 * every applet linked in /bin, /etc/passwd, /etc/group, /etc/hostname and the
 * empty mount points proc, dev, sys, tmp, run, root, home.
 */
export async function buildBusyboxRootfs(dir: string, opts: BusyboxRootfsOptions = {}): Promise<string> {
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'dev', 'sys', 'tmp', 'run', 'root', 'home', 'var']) {
    await mkdir(join(dir, d), { recursive: true });
  }
  await copyFile(BUSYBOX, join(dir, 'bin/busybox'));
  await Promise.all(busyboxApplets().filter((a) => a !== 'busybox').map((a) => symlink('busybox', join(dir, 'bin', a))));
  await writeFile(
    join(dir, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home:/bin/sh\n',
  );
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\napp:x:1000:\nextra:x:2000:app\n');
  await writeFile(join(dir, 'etc/hostname'), 'busybox\n');
  for (const [p, content] of Object.entries(opts.files ?? {})) {
    await mkdir(join(dir, p, '..'), { recursive: true });
    await writeFile(join(dir, p), content);
  }
  return dir;
}

/** A new test dir holding a busybox rootfs at <dir>/rootfs; `cleanup()` removes it all. */
export async function makeBusyboxRootfs(
  opts: BusyboxRootfsOptions = {},
): Promise<{ dir: string; rootfs: string; cleanup: () => Promise<void> }> {
  const dir = await makeTestDir();
  const rootfs = await buildBusyboxRootfs(join(dir, 'rootfs'), opts);
  return { dir, rootfs, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
