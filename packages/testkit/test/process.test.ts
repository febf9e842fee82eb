import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { getFreePort, spawnProcess, TestkitError, waitForHttp } from '../src/index.js';

describe('getFreePort', () => {
  it('returns a port that can be bound on 127.0.0.1', async () => {
    const port = await getFreePort();
    expect(port).toBeGreaterThan(0);
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

describe('spawnProcess', () => {
  it('captures output and reports the exit code', async () => {
    const child = spawnProcess('/bin/sh', ['-c', 'echo hello-out; echo hello-err >&2; exit 3']);
    const exit = await child.exited;
    expect(exit.code).toBe(3);
    expect(child.output()).toContain('hello-out');
    expect(child.output()).toContain('hello-err');
  });

  it('sends SIGKILL when SIGTERM is ignored', async () => {
    const child = spawnProcess('/bin/sh', [
      '-c',
      'trap "" TERM; echo ready; while :; do sleep 0.05; done',
    ]);
    await expect.poll(() => child.output(), { timeout: 10_000 }).toContain('ready');
    await child.stop('SIGTERM', 300);
    const exit = await child.exited;
    expect(exit.signal).toBe('SIGKILL');
  });

  it('kill9 ends the process at once', async () => {
    const child = spawnProcess('/bin/sleep', ['30']);
    child.kill9();
    const exit = await child.exited;
    expect(exit.signal).toBe('SIGKILL');
  });
});

describe('waitForHttp', () => {
  it('waits until the expected status arrives', async () => {
    let calls = 0;
    const server = createServer((_req, res) => {
      calls++;
      res.statusCode = calls < 3 ? 503 : 401;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    await waitForHttp(`http://127.0.0.1:${address.port}/`, { expectStatus: [200, 401] });
    expect(calls).toBe(3);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('times out with HTTP_NOT_READY', async () => {
    const port = await getFreePort();
    const error = await waitForHttp(`http://127.0.0.1:${port}/`, { timeoutMs: 200 }).catch(
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(TestkitError);
    expect((error as TestkitError).code).toBe('HTTP_NOT_READY');
  });

  it('fails fast with the output of a process that exited', async () => {
    const port = await getFreePort();
    const child = spawnProcess('/bin/sh', ['-c', 'echo boom-before-listen; exit 1']);
    const error = await waitForHttp(`http://127.0.0.1:${port}/`, {
      timeoutMs: 10_000,
      process: child,
    }).catch((err: unknown) => err);
    expect((error as TestkitError).code).toBe('HTTP_NOT_READY');
    expect((error as TestkitError).message).toContain('boom-before-listen');
  });
});
