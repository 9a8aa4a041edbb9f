// Detect the host's cgroup layout and build the matching driver.

import { readFileSync } from 'node:fs';
import { invalidArgument } from '../errors.js';
import { getLogger } from '../log.js';
import type { CgroupManager } from './types.js';
import { CgroupFs } from './cgroup-fs.js';
import { cgroupPath, checkParentAgainstSelf, mapToMounts, parseProcCgroup } from './common.js';
import { detectCgroupLayout, type CgroupLayout } from './layout.js';
import { CgroupV1Manager, V1_OPTIONAL, V1_REQUIRED } from './v1.js';
import { CgroupV2Manager } from './v2.js';

const log = getLogger('cgroups');

export interface CreateCgroupManagerOptions {
  /** absolute parent cgroup, e.g. "/nodelet" (kubelet: "/kubepods") */
  parent: string;
  /** where cgroup hierarchies are mounted; default /sys/fs/cgroup (a temp dir in unit tests) */
  mountRoot?: string;
  /** text of /proc/self/cgroup (tests); default: read it */
  procSelfCgroup?: string;
  /** a layout instead of detecting one (tests) */
  layout?: CgroupLayout;
}

/** Both drivers offer, besides the contract, their own OOM event counters. */
export type NodeletCgroupManager = CgroupManager & {
  /** `oom`: this cgroup's own limit fired (v2 memory.events oom; v1 memory.failcnt); `oomKill`: processes OOM-killed in it or below. */
  memoryEvents(path: string): Promise<{ oom: number; oomKill: number }>;
};

export async function createCgroupManager(opts: CreateCgroupManagerOptions): Promise<NodeletCgroupManager> {
  const parent = cgroupPath(opts.parent, 'cgroup parent');
  if (parent === '/') {
    throw invalidArgument('ERR_CGROUP_PARENT_ROOT', 'cgroup parent must not be the root cgroup "/": use a dedicated parent such as "/nodelet"');
  }
  const layout = opts.layout ?? detectCgroupLayout(opts.mountRoot);
  // our own cgroup as the mounts show it (a cgroup namespace or a bind mount may show a subtree)
  const self = mapToMounts(parseProcCgroup(opts.procSelfCgroup ?? readFileSync('/proc/self/cgroup', 'utf8')), layout.mountRoots);
  if (layout.version === 'v2') {
    checkParentAgainstSelf(parent, self, ['']);
    log.info('using cgroup v2 (unified)', { root: layout.v2Root, parent });
    return new CgroupV2Manager(parent, new CgroupFs(layout.v2Root!), layout.mountRoots);
  }
  const used = [...V1_REQUIRED, ...V1_OPTIONAL].filter((c) => layout.v1Controllers[c]);
  checkParentAgainstSelf(parent, self, used);
  const mgr = new CgroupV1Manager(parent, layout.v1Controllers, layout.mountRoots);
  log.info(layout.hybrid ? 'using cgroup v1 controllers (hybrid host: the unified hierarchy is ignored)' : 'using cgroup v1', {
    parent,
    controllers: Object.fromEntries(used.map((c) => [c, layout.v1Controllers[c]])),
    ...(layout.hybrid ? { unified: layout.v2Root } : {}),
  });
  return mgr;
}
