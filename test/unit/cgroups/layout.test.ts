import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { computeCgroupLayout, detectCgroupLayout } from '../../../src/cgroups/index.js';
import { mapToMounts, parseProcCgroup } from '../../../src/cgroups/common.js';

const hybrid = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 23 0:40 / /proc rw - proc proc rw
`;

describe('computeCgroupLayout (mountinfo)', () => {
  it('hybrid: v1 controllers (co-mounted cpu,cpuacct) plus the unified mount', () => {
    expect(computeCgroupLayout(hybrid, '/sys/fs/cgroup')).toEqual({
      version: 'v1',
      hybrid: true,
      v1Controllers: { cpu: '/sys/fs/cgroup/cpu,cpuacct', cpuacct: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory', pids: '/sys/fs/cgroup/pids' },
      v2Root: '/sys/fs/cgroup/unified',
    });
  });
  it('pure v2', () => {
    const mi = '30 23 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n';
    expect(computeCgroupLayout(mi, '/sys/fs/cgroup/')).toEqual({ version: 'v2', hybrid: false, v1Controllers: {}, v2Root: '/sys/fs/cgroup' });
  });
  it('nothing mounted there → null', () => {
    expect(computeCgroupLayout(hybrid, '/dev/shm/x')).toBeNull();
  });
});

describe('detectCgroupLayout', () => {
  let dir = '';
  afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

  it('a fake directory laid out like v2 or v1', () => {
    dir = mkdtempSync('/dev/shm/nodelet-test-');
    writeFileSync(join(dir, 'cgroup.controllers'), 'cpu memory pids\n');
    expect(detectCgroupLayout(dir)).toEqual({ version: 'v2', hybrid: false, v1Controllers: {}, v2Root: dir });
    rmSync(join(dir, 'cgroup.controllers'));
    for (const d of ['memory', 'cpu,cpuacct', 'pids', 'unified']) mkdirSync(join(dir, d));
    writeFileSync(join(dir, 'unified', 'cgroup.controllers'), '');
    const l = detectCgroupLayout(dir);
    expect(l).toEqual({
      version: 'v1',
      hybrid: true,
      v1Controllers: { memory: join(dir, 'memory'), cpu: join(dir, 'cpu,cpuacct'), cpuacct: join(dir, 'cpu,cpuacct'), pids: join(dir, 'pids') },
      v2Root: join(dir, 'unified'),
    });
  });
});

// podman --privileged --cgroupns=host on a v1 host: each controller mount shows the container's own cgroup
// (mountinfo's root field) while /proc/self/cgroup names host paths.
const hostNs = `600 590 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
601 600 0:29 /machine.slice/libpod-abc.scope /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
602 600 0:32 /machine.slice/libpod-abc.scope /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
603 600 0:36 /machine.slice/libpod-abc.scope /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
604 600 0:38 /machine.slice/libpod-abc.scope /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;

describe('mount roots (cgroup namespaces, bind mounts)', () => {
  it('records the root field of each mount when one shows a subtree', () => {
    const l = computeCgroupLayout(hostNs, '/sys/fs/cgroup')!;
    const r = '/machine.slice/libpod-abc.scope';
    expect(l.mountRoots).toEqual({ cpu: r, cpuacct: r, memory: r, pids: r, '': r });
    expect(computeCgroupLayout(hybrid, '/sys/fs/cgroup')!.mountRoots).toBeUndefined();
  });

  it('maps /proc/self/cgroup paths onto what the mounts show, dropping the ones outside', () => {
    const roots = computeCgroupLayout(hostNs, '/sys/fs/cgroup')!.mountRoots;
    const self = parseProcCgroup('4:memory:/machine.slice/libpod-abc.scope/ci/job\n3:pids:/machine.slice/libpod-abc.scope\n2:cpu,cpuacct:/user.slice\n0::/machine.slice/libpod-abc.scope/x\n');
    expect(mapToMounts(self, roots)).toEqual({ memory: '/ci/job', pids: '/', '': '/x' });
    expect(mapToMounts(self, undefined)).toBe(self);
    // a prefix that is not a path component is not "under"
    expect(mapToMounts({ memory: '/machine.slice/libpod-abc.scope2' }, roots)).toEqual({});
  });
});
