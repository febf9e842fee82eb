import { defineConfig } from 'vitest/config';

// Three projects: `unit` (fast tests next to the code), `integration` (real processes:
// registries, PostgreSQL, built services) and `db` (tests that touch the database; they run
// on PGlite, and again on PostgreSQL when TEST_DATABASE_URL is set).
const dbTests = '**/*.db.test.ts';
const sourceCondition = { conditions: ['source'] };

export default defineConfig({
  resolve: sourceCondition,
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts'],
          exclude: [dbTests, '**/node_modules/**'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: [
            'packages/*/test/**/*.test.ts',
            'apps/*/test/**/*.test.ts',
            'test/**/*.test.ts',
          ],
          exclude: [dbTests, '**/node_modules/**'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'db',
          include: [dbTests],
          exclude: ['**/node_modules/**'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
