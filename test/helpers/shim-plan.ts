// Test helper: a minimal valid ShimPlan for a rootfs directory, with the
// defaults containerd/runc give a container (mounts, devices, masked paths,
// the default capability set).
import { join } from 'node:path';
import type { PlanCapabilities, PlanMount, ShimPlan } from '../../src/runtime/shim/plan.js';

const MS = { RDONLY: 0x1, NOSUID: 0x2, NODEV: 0x4, NOEXEC: 0x8, BIND: 0x1000, REC: 0x4000, STRICTATIME: 1 << 24 } as const;

/** containerd's default capability set (0x00000000a80425fb). */
export const DEFAULT_CAPS_HEX = '0x00000000a80425fb';
export const DEFAULT_CAPS: PlanCapabilities = {
  bounding: DEFAULT_CAPS_HEX,
  effective: DEFAULT_CAPS_HEX,
  permitted: DEFAULT_CAPS_HEX,
  inheritable: '0x0000000000000000',
  ambient: '0x0000000000000000',
};

export const DEFAULT_MOUNTS: PlanMount[] = [
  { source: 'proc', target: '/proc', fstype: 'proc', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, mkdir: 'dir' },
  { source: 'tmpfs', target: '/dev', fstype: 'tmpfs', flags: MS.NOSUID | MS.STRICTATIME, data: 'mode=755,size=65536k', mkdir: 'dir' },
  { source: 'devpts', target: '/dev/pts', fstype: 'devpts', flags: MS.NOSUID | MS.NOEXEC, data: 'newinstance,ptmxmode=0666,mode=0620,gid=5', mkdir: 'dir' },
  { source: 'shm', target: '/dev/shm', fstype: 'tmpfs', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, data: 'mode=1777,size=65536k', mkdir: 'dir' },
  { source: 'mqueue', target: '/dev/mqueue', fstype: 'mqueue', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV, mkdir: 'dir' },
  { source: 'sysfs', target: '/sys', fstype: 'sysfs', flags: MS.NOSUID | MS.NOEXEC | MS.NODEV | MS.RDONLY, mkdir: 'dir' },
];

const dev = (name: string, major: number, minor: number) => ({ path: `/dev/${name}`, type: 'c' as const, major, minor, mode: 0o666, uid: 0, gid: 0 });
export const DEFAULT_DEVICES = [dev('null', 1, 3), dev('zero', 1, 5), dev('full', 1, 7), dev('random', 1, 8), dev('urandom', 1, 9), dev('tty', 5, 0)];

export const DEFAULT_MASKED = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];
export const DEFAULT_READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/**
 * A plan running `argv` in `rootfs` with new mnt/pid/ipc/uts/net namespaces,
 * state in `stateDir` and the log at <stateDir>/container.log. No cgroups.
 */
export function minimalShimPlan(rootfs: string, stateDir: string, overrides: Partial<ShimPlan> = {}): ShimPlan {
  return {
    version: 1,
    containerId: `test-${Math.random().toString(16).slice(2, 10)}`,
    stateDir,
    logPath: join(stateDir, 'container.log'),
    logMaxBytes: 10 * 1024 * 1024,
    logMaxFiles: 5,
    namespaces: [{ type: 'mnt' }, { type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'net' }],
    cgroupProcsFiles: [],
    rootfs,
    readonlyRootfs: false,
    mounts: DEFAULT_MOUNTS,
    devices: DEFAULT_DEVICES,
    symlinks: [
      ['/dev/fd', '/proc/self/fd'],
      ['/dev/stdin', '/proc/self/fd/0'],
      ['/dev/stdout', '/proc/self/fd/1'],
      ['/dev/stderr', '/proc/self/fd/2'],
      ['/dev/ptmx', 'pts/ptmx'],
    ],
    maskedPaths: DEFAULT_MASKED,
    readonlyPaths: DEFAULT_READONLY,
    hostname: 'testhost',
    rlimits: [],
    noNewPrivs: true,
    capabilities: DEFAULT_CAPS,
    uid: 0,
    gid: 0,
    additionalGids: [],
    umask: 0o022,
    cwd: '/',
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root'],
    argv: ['/bin/true'],
    tty: false,
    stdin: false,
    ...overrides,
  };
}
