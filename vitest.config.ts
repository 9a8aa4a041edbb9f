import { defineConfig } from 'vitest/config';

// Root-only integration tests share the kernel (mounts, cgroups, netns): run files
// one at a time so their host-level effects never interleave. Unit tests are cheap.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/cgroup-v2/**', 'node_modules/**'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
