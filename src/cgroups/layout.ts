// Which cgroup hierarchy holds which controller. Pure decider over the text of
// /proc/self/mountinfo, plus a file-based fallback for a directory that is not
// a cgroup mount (unit tests lay out fake cgroup files in a temp dir).

import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { FS_MAGIC, statfs } from '../sys/ffi.js';

export interface CgroupLayout {
  /** v2 when the mount root itself is cgroup2 (unified); v1 otherwise (legacy or hybrid). */
  version: 'v1' | 'v2';
  /** v1 controllers plus a cgroup2 mount beside them (systemd's "hybrid"). */
  hybrid: boolean;
  /** v1 controller name → its hierarchy's mount directory. */
  v1Controllers: Record<string, string>;
  /** Where the cgroup2 hierarchy is mounted (the root itself on v2, e.g. <root>/unified on hybrid). */
  v2Root?: string;
  /**
   * mountinfo's root field of each mount in use — which cgroup of the hierarchy the mount shows — keyed like
   * /proc/self/cgroup (v1 controller name, '' for v2). "/" unless a cgroup namespace or a bind shows a subtree:
   * a container with the host's cgroup namespace on v1 sees its own cgroup at /sys/fs/cgroup/<ctrl> while
   * /proc/self/cgroup names host paths. Absent: every mount shows its hierarchy's root.
   */
  mountRoots?: Record<string, string>;
}

export const V1_CONTROLLERS = new Set([
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'blkio', 'perf_event', 'net_prio',
  'hugetlb', 'pids', 'rdma', 'misc',
]);

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

/** Pure: the layout under `mountRoot` from mountinfo text; null if nothing cgroup is mounted at or under it. */
export function computeCgroupLayout(mountinfo: string, mountRoot: string): CgroupLayout | null {
  const root = trimSlash(mountRoot);
  const v1Controllers: Record<string, string> = {};
  const roots: Record<string, string> = {};
  let v2Root: string | undefined;
  let v2MountRoot = '/';
  let rootIsV2 = false;
  for (const line of mountinfo.split('\n')) {
    if (!line) continue;
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const pre = line.slice(0, sep).split(' ');
    const post = line.slice(sep + 3).split(' ');
    const mountPoint = unescapeMountinfo(pre[4] ?? '');
    const hierarchyRoot = unescapeMountinfo(pre[3] ?? '/');
    const fsType = post[0];
    const superOpts = (post[2] ?? '').split(',');
    if (mountPoint !== root && !mountPoint.startsWith(root + '/')) continue;
    if (fsType === 'cgroup2') {
      // Later mounts shadow earlier ones: keep the last one seen per mount point.
      if (mountPoint === root) rootIsV2 = true;
      if (v2Root === undefined || mountPoint === root) {
        v2Root = mountPoint;
        v2MountRoot = hierarchyRoot;
      }
    } else if (fsType === 'cgroup') {
      for (const opt of superOpts) {
        if (!V1_CONTROLLERS.has(opt)) continue;
        v1Controllers[opt] = mountPoint;
        roots[opt] = hierarchyRoot;
      }
    } else if (mountPoint === root) {
      // Something else (tmpfs) mounted over the root later hides an earlier cgroup2 mount.
      rootIsV2 = false;
    }
  }
  const withRoots = (r: Record<string, string>) => (Object.values(r).some((x) => x !== '/') ? { mountRoots: r } : {});
  if (rootIsV2) return { version: 'v2', hybrid: false, v1Controllers: {}, v2Root: root, ...withRoots({ '': v2MountRoot }) };
  if (Object.keys(v1Controllers).length === 0 && v2Root === undefined) return null;
  if (Object.keys(v1Controllers).length === 0) return { version: 'v2', hybrid: false, v1Controllers: {}, v2Root, ...withRoots({ '': v2MountRoot }) };
  if (v2Root !== undefined) roots[''] = v2MountRoot;
  return { version: 'v1', hybrid: v2Root !== undefined, v1Controllers, ...(v2Root ? { v2Root } : {}), ...withRoots(roots) };
}

/** Fallback for a plain directory laid out like a cgroup mount (tests). */
function layoutFromFiles(root: string): CgroupLayout {
  if (existsSync(join(root, 'cgroup.controllers'))) return { version: 'v2', hybrid: false, v1Controllers: {}, v2Root: root };
  const v1Controllers: Record<string, string> = {};
  let v2Root: string | undefined;
  let entries: string[] = [];
  try {
    entries = readdirSync(root);
  } catch {
    entries = [];
  }
  for (const name of entries.sort()) {
    const dir = join(root, name);
    try {
      if (!statSync(dir).isDirectory()) continue;
    } catch {
      continue;
    }
    if (existsSync(join(dir, 'cgroup.controllers'))) {
      v2Root = dir;
      continue;
    }
    for (const c of name.split(',')) if (V1_CONTROLLERS.has(c)) v1Controllers[c] = dir;
  }
  return { version: 'v1', hybrid: v2Root !== undefined && Object.keys(v1Controllers).length > 0, v1Controllers, ...(v2Root ? { v2Root } : {}) };
}

/**
 * Detect the layout under `mountRoot` (default /sys/fs/cgroup): v2 when the
 * root is a cgroup2 mount (statfs magic), else the v1 controller mounts under
 * it from /proc/self/mountinfo (hybrid when a cgroup2 mount sits beside them).
 */
export function detectCgroupLayout(mountRoot = '/sys/fs/cgroup'): CgroupLayout {
  const root = trimSlash(mountRoot);
  let magic = 0;
  try {
    magic = statfs(root).type;
  } catch {
    magic = 0;
  }
  if (magic === FS_MAGIC.CGROUP2) return { version: 'v2', hybrid: false, v1Controllers: {}, v2Root: root };
  let mountinfo = '';
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    mountinfo = '';
  }
  return computeCgroupLayout(mountinfo, root) ?? layoutFromFiles(root);
}
