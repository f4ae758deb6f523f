import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    globalSetup: ['__test__/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 300_000,
    // Tests run podman on the fixture stores; keep them from fighting over the same locks.
    fileParallelism: false,
  },
})
