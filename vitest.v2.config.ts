import { defineConfig } from 'vitest/config';

// The cgroup-v2 suite, run inside ../shared/vm/run (pure cgroup v2 kernel).
// Everything there is ~20x slower (TCG), hence the long timeouts.
export default defineConfig({
  test: {
    include: ['test/cgroup-v2/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
