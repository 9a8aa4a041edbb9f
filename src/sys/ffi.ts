// The system calls Node does not offer, bound through koffi. Each wrapper is
// one kernel operation, no policy: it throws SyscallError (syscall, errno
// name, path) on failure and returns plain values on success.
//
// Never call setns/unshare from here on the event-loop thread: those change
// the calling thread's namespaces. Namespace creation happens in the C shim.

import koffi from 'koffi';
import { SyscallError } from '../errors.js';

const libc = koffi.load('libc.so.6');

const c = {
  mount: libc.func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)'),
  umount2: libc.func('int umount2(const char *target, int flags)'),
  mknod: libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
  lchown: libc.func('int lchown(const char *path, uint32_t uid, uint32_t gid)'),
  lsetxattr: libc.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)'),
  lgetxattr: libc.func('intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)'),
  llistxattr: libc.func('intptr_t llistxattr(const char *path, void *list, size_t size)'),
  syscall3: libc.func('long syscall(long number, ...)'),
};

const StatfsT = koffi.struct('nodelet_statfs', {
  f_type: 'long',
  f_bsize: 'long',
  f_blocks: 'uint64_t',
  f_bfree: 'uint64_t',
  f_bavail: 'uint64_t',
  f_files: 'uint64_t',
  f_ffree: 'uint64_t',
  f_fsid: koffi.array('int', 2),
  f_namelen: 'long',
  f_frsize: 'long',
  f_flags: 'long',
  f_spare: koffi.array('long', 4),
});
const statfsFn = libc.func('int statfs(const char *path, _Out_ nodelet_statfs *buf)');

function fail(syscall: string, path?: string, extra?: string): never {
  throw new SyscallError(syscall, koffi.errno(), path, extra);
}

// mount(2) flags (include/uapi/linux/mount.h)
export const MS = {
  RDONLY: 0x1,
  NOSUID: 0x2,
  NODEV: 0x4,
  NOEXEC: 0x8,
  REMOUNT: 0x20,
  NOATIME: 0x400,
  BIND: 0x1000,
  MOVE: 0x2000,
  REC: 0x4000,
  PRIVATE: 0x40000,
  SLAVE: 0x80000,
  SHARED: 0x100000,
} as const;

// umount2(2) flags
export const MNT = { FORCE: 1, DETACH: 2, EXPIRE: 4 } as const;
export const UMOUNT_NOFOLLOW = 8;

// file type bits for mknod(2)
export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

export function mount(source: string | null, target: string, fstype: string | null, flags: number, data: string | null = null): void {
  if (c.mount(source, target, fstype, flags, data) !== 0) {
    fail('mount', target, `source=${source ?? ''} type=${fstype ?? ''}${data ? ` data=${data.length > 200 ? data.slice(0, 200) + '…' : data}` : ''}`);
  }
}

export function umount2(target: string, flags = 0): void {
  if (c.umount2(target, flags) !== 0) fail('umount2', target);
}

/** glibc's gnu_dev_makedev. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major >>> 0);
  const mi = BigInt(minor >>> 0);
  return ((ma & 0xfffff000n) << 32n) | ((ma & 0xfffn) << 8n) | ((mi & 0xffffff00n) << 12n) | (mi & 0xffn);
}

export function mknod(path: string, mode: number, major = 0, minor = 0): void {
  if (c.mknod(path, mode, makedev(major, minor)) !== 0) fail('mknod', path);
}

export function lchown(path: string, uid: number, gid: number): void {
  if (c.lchown(path, uid, gid) !== 0) fail('lchown', path);
}

export function lsetxattr(path: string, name: string, value: Buffer | string, flags = 0): void {
  const buf = typeof value === 'string' ? Buffer.from(value) : value;
  if (c.lsetxattr(path, name, buf, buf.length, flags) !== 0) fail('lsetxattr', path, name);
}

/** Returns null when the attribute does not exist (ENODATA). */
export function lgetxattr(path: string, name: string): Buffer | null {
  let size = 256;
  for (;;) {
    const buf = Buffer.alloc(size);
    const n = Number(c.lgetxattr(path, name, buf, size));
    if (n >= 0) return buf.subarray(0, n);
    const errno = koffi.errno();
    if (errno === 61 /* ENODATA */) return null;
    if (errno === 34 /* ERANGE */ && size < 1 << 20) {
      size *= 4;
      continue;
    }
    throw new SyscallError('lgetxattr', errno, path, name);
  }
}

export function llistxattr(path: string): string[] {
  let size = 1024;
  for (;;) {
    const buf = Buffer.alloc(size);
    const n = Number(c.llistxattr(path, buf, size));
    if (n >= 0) return buf.subarray(0, n).toString('latin1').split('\0').filter((s) => s.length > 0);
    const errno = koffi.errno();
    if (errno === 34 /* ERANGE */ && size < 1 << 20) {
      size *= 4;
      continue;
    }
    throw new SyscallError('llistxattr', errno, path);
  }
}

export interface StatfsResult {
  type: number;
  blockSize: number;
  blocks: number;
  blocksFree: number;
  blocksAvailable: number;
  files: number;
  filesFree: number;
  nameMax: number;
  flags: number;
}

export const FS_MAGIC = {
  TMPFS: 0x01021994,
  RAMFS: 0x858458f6,
  OVERLAYFS: 0x794c7630,
  EXT4: 0xef53,
  XFS: 0x58465342,
  BTRFS: 0x9123683e,
  CGROUP2: 0x63677270,
  CGROUP: 0x27e0eb,
  NSFS: 0x6e736673,
  PROC: 0x9fa0,
} as const;

export function statfs(path: string): StatfsResult {
  const out: Record<string, unknown> = {};
  if (statfsFn(path, out) !== 0) fail('statfs', path);
  const n = (v: unknown) => Number(v as number | bigint);
  return {
    type: n(out.f_type) >>> 0,
    blockSize: n(out.f_bsize),
    blocks: n(out.f_blocks),
    blocksFree: n(out.f_bfree),
    blocksAvailable: n(out.f_bavail),
    files: n(out.f_files),
    filesFree: n(out.f_ffree),
    nameMax: n(out.f_namelen),
    flags: n(out.f_flags),
  };
}

const SYS_pidfd_send_signal = 424;
const SYS_pidfd_open = 434;

/** pidfd_open(2): a file descriptor that refers to exactly this process. */
export function pidfdOpen(pid: number): number {
  const fd = Number(c.syscall3(SYS_pidfd_open, 'int', pid, 'unsigned int', 0));
  if (fd < 0) fail('pidfd_open', `pid ${pid}`);
  return fd;
}

/** pidfd_send_signal(2). Returns false if the process is already gone (ESRCH). */
export function pidfdSendSignal(pidfd: number, signal: number): boolean {
  const r = Number(c.syscall3(SYS_pidfd_send_signal, 'int', pidfd, 'int', signal, 'void *', null, 'unsigned int', 0));
  if (r === 0) return true;
  const errno = koffi.errno();
  if (errno === 3 /* ESRCH */) return false;
  throw new SyscallError('pidfd_send_signal', errno, `pidfd ${pidfd}`);
}
