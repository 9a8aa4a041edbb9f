import { defineConfig } from 'vitest/config';

// Measurements that need the test fixtures (bench/exec); never part of the test suite.
export default defineConfig({
  test: { include: ['bench/lib/**/*.test.ts'], pool: 'forks', fileParallelism: false, testTimeout: 600_000, hookTimeout: 120_000 },
});
