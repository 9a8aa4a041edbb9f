import { defineConfig } from 'vitest/config';

// The cgroup-v2 suite, run inside ../shared/vm/run (pure cgroup v2 kernel).
// Everything there is ~20x slower (TCG), hence the long timeouts.
export default defineConfig({
  test: {
    // The runtime's pod scenarios (OOM as OOMKilled, cpu.max, pids.max, exec,
    // shared pid ns) run here too, on real cgroup v2.
    include: ['test/cgroup-v2/**/*.test.ts', 'test/integration/runtime/pod.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
