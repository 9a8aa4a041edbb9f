// cgroup v2 driver on a pure cgroup-v2 kernel (run inside ../shared/vm/run by
// scripts/test): the same scenarios as the v1 suite on the host.
import { expect, it } from 'vitest';
import { detectCgroupLayout } from '../../src/cgroups/index.js';
import { cgroupScenarios } from '../integration/cgroups/scenarios.js';

it('detects pure cgroup v2', () => {
  expect(detectCgroupLayout()).toEqual({ version: 'v2', hybrid: false, v1Controllers: {}, v2Root: '/sys/fs/cgroup' });
});

cgroupScenarios('v2');
