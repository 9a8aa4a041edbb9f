// Mount helpers: perform mounts described as data (containerd's mount.Mount,
// src/cri/types.ts) and undo them. Used by the runtime (container rootfs, pod
// /dev/shm), the snapshot store's callers (image mount) and the namespace pinner.
//
// Overlay option strings longer than one page (mount(2) copies at most 4096
// bytes of data) are compacted like containerd does: chdir into the common
// parent of all layer paths and pass them relative. The snapshotter's short
// link names (<root>/l/XXXXXXXX) keep that well under a page for 300+ layers.

import * as fs from 'node:fs';
import type { Mount } from '../cri/types.js';
import { NodeletError, SyscallError } from '../errors.js';
import { MNT, MS, mount, umount2, UMOUNT_NOFOLLOW } from './ffi.js';

const FLAG_OPTS: Record<string, { set?: number; clear?: number }> = {
  ro: { set: MS.RDONLY },
  rw: { clear: MS.RDONLY },
  nosuid: { set: MS.NOSUID },
  suid: { clear: MS.NOSUID },
  nodev: { set: MS.NODEV },
  dev: { clear: MS.NODEV },
  noexec: { set: MS.NOEXEC },
  exec: { clear: MS.NOEXEC },
  noatime: { set: MS.NOATIME },
  bind: { set: MS.BIND },
  rbind: { set: MS.BIND | MS.REC },
  defaults: {},
};

export interface MountPlan {
  flags: number;
  data: string;
}

/** Pure: split mount(8)-style options into mount(2) flags and the fs data string. */
export function computeMountPlan(m: Mount): MountPlan {
  let flags = 0;
  const data: string[] = [];
  for (const o of m.options) {
    const f = FLAG_OPTS[o];
    if (f) {
      if (f.set) flags |= f.set;
      if (f.clear) flags &= ~f.clear;
    } else data.push(o);
  }
  if (m.type === 'bind') flags |= MS.BIND;
  return { flags, data: data.join(',') };
}

const PAGE = 4096;
const PATH_OPTS = ['lowerdir=', 'upperdir=', 'workdir='];

/**
 * Pure: if the overlay data string is too long for one page, rewrite its
 * layer paths relative to their longest common parent directory.
 */
export function compactOverlayData(data: string): { data: string; chdir?: string } {
  if (data.length < PAGE) return { data };
  const opts = data.split(',');
  const paths: string[] = [];
  for (const o of opts) {
    const k = PATH_OPTS.find((p) => o.startsWith(p));
    if (k) paths.push(...o.slice(k.length).split(':'));
  }
  if (paths.length === 0 || !paths.every((p) => p.startsWith('/'))) return { data };
  let common = paths[0]!.split('/').slice(0, -1);
  for (const p of paths) {
    const parts = p.split('/').slice(0, -1);
    let i = 0;
    while (i < common.length && i < parts.length && common[i] === parts[i]) i++;
    common = common.slice(0, i);
  }
  const dir = common.join('/') || '/';
  const rel = (p: string) => (dir === '/' ? p.slice(1) : p.slice(dir.length + 1));
  const out = opts.map((o) => {
    const k = PATH_OPTS.find((p) => o.startsWith(p));
    return k ? k + o.slice(k.length).split(':').map(rel).join(':') : o;
  });
  return { data: out.join(','), chdir: dir };
}

function mountOne(m: Mount, target: string): void {
  const plan = computeMountPlan(m);
  if (m.type === 'bind') {
    mount(m.source, target, null, plan.flags & (MS.BIND | MS.REC), null);
    const extra = plan.flags & (MS.RDONLY | MS.NOSUID | MS.NODEV | MS.NOEXEC | MS.NOATIME);
    if (extra) {
      try {
        mount(null, target, null, MS.REMOUNT | MS.BIND | extra, null);
      } catch (e) {
        umount2(target, MNT.DETACH);
        throw e;
      }
    }
    return;
  }
  let { data, chdir } = m.type === 'overlay' ? compactOverlayData(plan.data) : { data: plan.data, chdir: undefined };
  if (data.length >= PAGE) {
    throw new NodeletError('InvalidArgument', 'ERR_MOUNT_OPTIONS_TOO_LONG', `The ${m.type} mount options for ${target} are ${data.length} bytes, over the 4095 the kernel accepts`, {
      details: { target, length: data.length },
    });
  }
  if (chdir === undefined) {
    mount(m.source, target, m.type, plan.flags, data || null);
    return;
  }
  // mount(2) resolves relative layer paths against the cwd; Node runs JS on one thread
  // and this call is synchronous, so nothing else observes the changed cwd.
  const cwd = process.cwd();
  const absTarget = target.startsWith('/') ? target : `${cwd}/${target}`;
  process.chdir(chdir);
  try {
    mount(m.source, absTarget, m.type, plan.flags, data);
  } finally {
    process.chdir(cwd);
  }
}

/** Perform the mounts, in order, on target; on failure undo the ones already done. */
export function mountAll(mounts: Mount[], target: string): void {
  let done = 0;
  try {
    for (const m of mounts) {
      mountOne(m, target);
      done++;
    }
  } catch (e) {
    for (let i = 0; i < done; i++) {
      try {
        umount2(target, MNT.DETACH);
      } catch {
        /* best effort */
      }
    }
    throw e;
  }
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * Pure: the mount points in a mountinfo text at or below `target` (`/a` holds `/a/b`, not `/ab`; a trailing
 * slash on target is ignored; `\040`-style octal escapes are undone), latest first: the reverse of mountinfo's
 * order, so a mount stacked over another one's parent comes off before what it hides.
 */
export function mountPointsIn(info: string, target: string): string[] {
  const t = target.length > 1 ? target.replace(/\/+$/, '') : target;
  const out: string[] = [];
  for (const line of info.split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = unescapeMountinfo(f[4]!);
    if (mp === t || mp.startsWith(t + '/')) out.push(mp);
  }
  return out.reverse();
}

/** Mount points at or below `target` in this mount namespace, deepest (latest) first (mountPointsIn). */
export function mountsUnder(target: string): string[] {
  return mountPointsIn(fs.readFileSync('/proc/self/mountinfo', 'utf8'), target);
}

export interface UnmountOptions {
  /**
   * Also unmount every mount point BELOW target (a /proc/self/mountinfo scan,
   * deepest first). Default false: only what is stacked on target itself.
   */
  submounts?: boolean;
}

const UNMOUNT_ROUNDS = 64;

/**
 * Unmount target completely; idempotent (a missing target, or one with nothing
 * mounted on it, is done). Symlinks in target are resolved first and the last
 * component is never followed (UMOUNT_NOFOLLOW); a busy mount (EBUSY) is
 * detached (MNT_DETACH) instead. Throws ERR_UNMOUNT_INCOMPLETE if mounts remain
 * after 64 rounds.
 *
 * Two scopes, because the callers need both:
 * - default, stacked only: umount2(target) until the kernel says it is not a
 *   mount point (EINVAL). O(1) in the number of host mounts, which matters on
 *   every container removal of a busy node. For targets nodelet mounted itself
 *   and below which nothing is mounted in this mount namespace: a container's
 *   rootfs (its own mounts live in its mount namespace), a pod's /dev/shm, a
 *   pinned namespace file.
 * - { submounts: true }: also everything mounted below target, found in
 *   /proc/self/mountinfo (a scan of every host mount, deepest first). For a
 *   directory handed in by a user (`nodelet image unmount DIR`), where anything
 *   may have been mounted below.
 */
export function unmountAll(target: string, opts: UnmountOptions = {}): void {
  let real: string;
  try {
    real = fs.realpathSync(target);
  } catch {
    return; // target gone: nothing can be mounted there
  }
  for (let round = 0; round < UNMOUNT_ROUNDS; round++) {
    if (opts.submounts) {
      const mps = mountsUnder(real);
      if (mps.length === 0) return;
      for (const mp of mps) unmountOne(mp);
    } else if (!unmountOne(real)) return;
  }
  throw new NodeletError('Internal', 'ERR_UNMOUNT_INCOMPLETE', `Mounts remain at ${target} after ${UNMOUNT_ROUNDS} unmount rounds`, { details: { target } });
}

/** One umount2 of the topmost mount on mp (detached if busy); false if nothing is mounted there. */
function unmountOne(mp: string): boolean {
  try {
    umount2(mp, UMOUNT_NOFOLLOW);
    return true;
  } catch (e) {
    if (!(e instanceof SyscallError)) throw e;
    if (e.errnoName === 'EINVAL' || e.errnoName === 'ENOENT') return false;
    if (e.errnoName !== 'EBUSY') throw e;
  }
  umount2(mp, MNT.DETACH | UMOUNT_NOFOLLOW);
  return true;
}
