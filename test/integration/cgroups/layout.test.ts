import { expect, it } from 'vitest';
import { detectCgroupLayout } from '../../../src/cgroups/index.js';

it('this host is hybrid: v1 for memory/cpu/cpuacct/pids, the unified mount beside them', () => {
  // The project machine is hybrid; the VM suite (test/cgroup-v2) covers pure v2.
  const l = detectCgroupLayout();
  expect(l.version).toBe('v1');
  expect(l.hybrid).toBe(true);
  expect(l.v2Root).toBe('/sys/fs/cgroup/unified');
  for (const c of ['memory', 'cpu', 'cpuacct', 'pids']) expect(l.v1Controllers[c]).toMatch(/^\/sys\/fs\/cgroup\/[a-z,]+$/);
});
