import { defineConfig } from 'vitest/config';

// Tests run against compiled workers in dist/ (npm test builds first); two cores, so keep forks modest.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
