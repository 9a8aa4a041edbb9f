// The runtime's port to the host: every kernel or host contact of
// src/runtime/runtime.ts that needs root or reads this machine's state goes
// through HostOps, so the runtime can be unit tested with a fake (no root, no
// mounts, no signals). `hostOps` is the real implementation and the default of
// NodeletRuntimeOptions.host.
//
// Not in here, because they are already ports of their own: the shim
// (ShimClient), cgroups (CgroupManager), namespaces and CNI (NamespacePinner,
// PodNetwork) and images (ImageProvider). Plain file work under the run root
// (records, hosts files) stays on node:fs: it needs no privileges.

import * as fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { DeviceNode, Mount } from '../cri/types.js';
import { MS, mount, pidfdOpen, pidfdSendSignal } from './ffi.js';
import { mountAll, unmountAll, type UnmountOptions } from './mounts.js';

/** A character or block device node of the host (for privileged containers). */
export type HostDevice = DeviceNode;

/** A handle on one process that a reused pid cannot redirect (a pidfd). */
export interface ProcessHandle {
  /** Send a signal (number); false if the process has exited. */
  signal(sig: number): boolean;
  close(): void;
}

export interface TmpfsOptions {
  /** size= in bytes */
  sizeBytes: number;
  /** mode= of the root directory, e.g. 0o1777 */
  mode: number;
  /** nosuid, nodev, noexec (default: all three) */
  nosuid?: boolean;
  nodev?: boolean;
  noexec?: boolean;
}

export interface HostOps {
  /** Mount a fresh tmpfs on target (an existing directory). */
  mountTmpfs(target: string, opts: TmpfsOptions): void;
  /** Perform mounts described as data on target, in order (src/sys/mounts.ts mountAll). */
  mountAll(mounts: Mount[], target: string): void;
  /** Unmount target completely (src/sys/mounts.ts unmountAll: stacked mounts, or submounts too). */
  unmountAll(target: string, opts?: UnmountOptions): void;
  /** Open a handle on a running process; undefined if it is already gone. */
  openProcess(pid: number): ProcessHandle | undefined;
  /** A host file's text (/proc, /etc), undefined if it cannot be read. */
  readFile(file: string): string | undefined;
  hostname(): string;
  totalMemoryBytes(): number;
  /** Character and block devices in the host's /dev (one level of subdirectories). */
  listDevices(): HostDevice[];
}

function listAll(d: string): string[] {
  try {
    return fs.readdirSync(d);
  } catch {
    return [];
  }
}

/** The real host: mount(2), umount2(2), pidfd_open(2)/pidfd_send_signal(2), /proc, /dev. */
export const hostOps: HostOps = {
  mountTmpfs(target, o) {
    const flags = (o.nosuid === false ? 0 : MS.NOSUID) | (o.nodev === false ? 0 : MS.NODEV) | (o.noexec === false ? 0 : MS.NOEXEC);
    mount('shm', target, 'tmpfs', flags, `mode=${o.mode.toString(8)},size=${o.sizeBytes}`);
  },
  mountAll,
  unmountAll,
  openProcess(pid) {
    let fd: number;
    try {
      fd = pidfdOpen(pid);
    } catch {
      return undefined; // ESRCH: already gone
    }
    let open = true;
    return {
      signal: (sig) => open && pidfdSendSignal(fd, sig),
      close: () => {
        if (open) fs.closeSync(fd);
        open = false;
      },
    };
  },
  readFile(file) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  },
  hostname: () => os.hostname(),
  totalMemoryBytes: () => os.totalmem(),
  listDevices() {
    const out: HostDevice[] = [];
    const walk = (dir: string, depthLeft: number) => {
      for (const name of listAll(dir)) {
        const p = path.join(dir, name);
        let st: fs.Stats;
        try {
          st = fs.lstatSync(p);
        } catch {
          continue;
        }
        if (st.isDirectory()) {
          if (depthLeft > 0 && !['pts', 'shm', 'mqueue', 'fd'].includes(name)) walk(p, depthLeft - 1);
        } else if (st.isCharacterDevice() || st.isBlockDevice()) {
          const rdev = st.rdev;
          out.push({ path: p, type: st.isCharacterDevice() ? 'c' : 'b', major: (rdev >> 8) & 0xfff, minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
        }
      }
    };
    walk('/dev', 1);
    return out;
  },
};
