import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  getFreePort,
  runCommand,
  spawnProcess,
  waitForHttp,
  type ManagedProcess,
} from '@edge/testkit';

// Runs the built entry point the way an operator does on a fresh machine: no DATABASE_URL, no
// key, no admin password. Only GC_HOST and GC_PORT are set, so the test listens on loopback.

const ENTRY = resolve(import.meta.dirname, '../dist/main.js');
/** PGlite's first boot plus migrations and one argon2 hash take a few seconds on 2 cores. */
const START_TIMEOUT_MS = 60_000;

let workDir: string;
let port: number;
const started: ManagedProcess[] = [];

function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('GC_') && key !== 'DATABASE_URL') env[key] = value;
  }
  return { ...env, GC_HOST: '127.0.0.1', GC_PORT: String(port) };
}

async function start(): Promise<ManagedProcess> {
  const child = spawnProcess(process.execPath, [ENTRY], {
    cwd: workDir,
    env: cleanEnv(),
    name: 'ground-control',
  });
  started.push(child);
  await waitForHttp(`http://127.0.0.1:${port}/readyz`, {
    timeoutMs: START_TIMEOUT_MS,
    process: child,
  });
  return child;
}

async function loginStatus(password: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password }),
  });
  await response.arrayBuffer();
  return response.status;
}

beforeAll(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'gc-startup-'));
  port = await getFreePort();
});

afterAll(async () => {
  for (const child of started) await child.stop('SIGKILL', 1_000);
  await rm(workDir, { recursive: true, force: true });
});

describe('ground-control entry point', () => {
  it('starts on a fresh machine and stops on SIGTERM', async () => {
    const child = await start();
    const dataDir = join(workDir, 'data', 'ground-control');
    const passwordFile = join(dataDir, 'initial-admin-password');
    const password = (await readFile(passwordFile, 'utf8')).trim();
    expect((await stat(passwordFile)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dataDir, 'encryption-key'))).mode & 0o777).toBe(0o600);
    expect(child.output()).toContain(passwordFile);
    expect(child.output()).not.toContain(password);
    expect(await loginStatus(password)).toBe(200);

    await child.stop('SIGTERM', 15_000);
    const exit = await child.exited;
    expect(exit.code).toBe(0);
    expect(child.output()).toContain('stopped');
  });

  it('resets a password from the command line', async () => {
    const oldPassword = (
      await readFile(join(workDir, 'data', 'ground-control', 'initial-admin-password'), 'utf8')
    ).trim();
    const result = await runCommand(
      process.execPath,
      [ENTRY, 'reset-password', '--user', 'admin'],
      {
        cwd: workDir,
        env: cleanEnv(),
      },
    );
    const match = /new password for admin: (\S+)/.exec(result.stdout.toString('utf8'));
    expect(match).not.toBeNull();
    const child = await start();
    expect(await loginStatus(match![1]!)).toBe(200);
    expect(await loginStatus(oldPassword)).toBe(401);
    await child.stop('SIGTERM', 15_000);
  });

  it('names the variable of an invalid setting, not its value', async () => {
    const child = spawnProcess(process.execPath, [ENTRY], {
      cwd: workDir,
      env: { ...cleanEnv(), GC_PORT: 'secret-looking-value' },
    });
    started.push(child);
    const exit = await child.exited;
    expect(exit.code).toBe(2);
    expect(child.output()).toContain('GC_PORT');
    expect(child.output()).not.toContain('secret-looking-value');
  });
});
