#!/usr/bin/env node
// Runs the whole vitest suite once with the database tests on PGlite, then, when
// TEST_DATABASE_URL names a PostgreSQL server, the database tests again on it. Prints one
// closing line `N passed, N failed[, N skipped]` over both runs and exits non-zero on any failure.
// Extra arguments go to vitest (for example a file filter).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const resultsDir = join(root, '.vitest-results');
const vitestBin = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const extraArgs = process.argv.slice(2);

function runVitest(label, args, env) {
  const outputFile = join(resultsDir, `${label}.json`);
  rmSync(outputFile, { force: true });
  const result = spawnSync(
    process.execPath,
    [
      vitestBin,
      'run',
      '--passWithNoTests',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${outputFile}`,
      ...args,
      ...extraArgs,
    ],
    { cwd: root, stdio: 'inherit', env: { ...env, NO_COLOR: '1' } },
  );
  let report;
  try {
    report = JSON.parse(readFileSync(outputFile, 'utf8'));
  } catch {
    // vitest crashed before it wrote a report: count the run as one failure.
    console.error(`vitest (${label}) wrote no report; exit status ${result.status}`);
    return { passed: 0, failed: 1, skipped: 0, status: result.status ?? 1 };
  }
  // A file that failed outside any test (an import error, a failing beforeAll) counts as one
  // failure. A file whose failures are all in its tests adds nothing beyond those tests.
  const failedFilesWithoutTests = (report.testResults ?? []).filter(
    (file) =>
      file.status === 'failed' &&
      !(file.assertionResults ?? []).some((test) => test.status === 'failed'),
  ).length;
  return {
    passed: report.numPassedTests,
    failed: report.numFailedTests + failedFilesWithoutTests,
    skipped: report.numPendingTests + (report.numTodoTests ?? 0),
    status: result.status ?? 1,
  };
}

mkdirSync(resultsDir, { recursive: true });
const { TEST_DATABASE_URL: databaseUrl, ...baseEnv } = process.env;
const runs = [runVitest('pglite', [], baseEnv)];
if (databaseUrl) {
  console.log(`\nDatabase tests again on PostgreSQL (TEST_DATABASE_URL is set)\n`);
  runs.push(
    runVitest('postgres', ['--project', 'db'], { ...baseEnv, TEST_DATABASE_URL: databaseUrl }),
  );
}

const total = runs.reduce(
  (sum, run) => ({
    passed: sum.passed + run.passed,
    failed: sum.failed + run.failed,
    skipped: sum.skipped + run.skipped,
  }),
  { passed: 0, failed: 0, skipped: 0 },
);
const failedRun = runs.some((run) => run.status !== 0);
if (failedRun && total.failed === 0) total.failed = 1;
const skipped = total.skipped > 0 ? `, ${total.skipped} skipped` : '';
console.log(`${total.passed} passed, ${total.failed} failed${skipped}`);
process.exit(total.failed > 0 ? 1 : 0);
