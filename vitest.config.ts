// Unit tests run in Node, beside the code (src/**/*.test.ts). Browser tests live in e2e/ (Playwright).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'scripts/**/*.test.ts'],
    testTimeout: 60_000,
    pool: 'threads',
    setupFiles: ['scripts/wasmFlags.ts'],
  },
});
