import { defineConfig } from 'vitest/config';
import { CHIP_V8_FLAGS } from './src/control/v8-flags.js';

// Tests run against compiled workers in dist/ (npm test builds first); two cores, so keep forks modest.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // test processes spawn chips the way the CLI does (src/control/v8-flags.ts)
    execArgv: [...CHIP_V8_FLAGS],
    maxWorkers: 2,
    reporters: ['default', './test/helpers/summary-reporter.ts'],
  },
});
