// Unmounting what the runtime mounted on the host (a container's rootfs, a
// pod's /dev/shm). Mounting the ImageProvider's Mount[] is src/snapshot's
// mountAll (handles overlay option strings longer than a page).

import { MNT, umount2 } from '../sys/ffi.js';
import { SyscallError } from '../errors.js';

/**
 * Unmount everything stacked on `p` (idempotent): umount2 until EINVAL (not a
 * mount point) or ENOENT. O(1) in the number of host mounts, unlike a
 * mountinfo scan; the container's own mounts live in its mount namespace.
 */
export function unmountAll(p: string): void {
  for (let i = 0; i < 16; i++) {
    try {
      umount2(p, 0);
    } catch (e) {
      if (!(e instanceof SyscallError)) throw e;
      if (e.errnoName === 'EINVAL' || e.errnoName === 'ENOENT') return;
      if (e.errnoName !== 'EBUSY') throw e;
      umount2(p, MNT.DETACH);
    }
  }
}
