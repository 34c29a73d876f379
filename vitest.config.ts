import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        // Pure logic: no servers.
        test: {
          name: 'unit',
          include: ['*/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
          exclude: ['test/**', '**/node_modules/**'],
        },
      },
      {
        // Against real servers started once by the global setup.
        test: {
          name: 'integration',
          include: ['test/src/**/*.test.ts'],
          globalSetup: ['test/src/global-setup.ts'],
          setupFiles: ['test/src/setup-runtime.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          // 2 cores: files run one at a time so Temporal workers are not starved.
          fileParallelism: false,
        },
      },
    ],
  },
});
