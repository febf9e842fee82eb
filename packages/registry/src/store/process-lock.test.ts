import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { OciStore } from './store.js';

const roots: string[] = [];

async function freshRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'registry-lock-'));
  roots.push(root);
  return root;
}

afterEach(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

describe('store lock file', () => {
  it('live owner gets STORE_LOCKED', async () => {
    const root = await freshRoot();
    // The parent of this test process is alive for the whole test.
    await writeFile(
      join(root, 'lock'),
      JSON.stringify({ pid: process.ppid, hostname: hostname() }),
    );
    await expect(OciStore.open(root)).rejects.toMatchObject({ code: 'STORE_LOCKED' });
  });

  it('dead owner is taken over', async () => {
    const root = await freshRoot();
    const finished = spawnSync(process.execPath, ['-e', '']);
    await writeFile(
      join(root, 'lock'),
      JSON.stringify({ pid: finished.pid, hostname: hostname() }),
    );
    const store = await OciStore.open(root);
    const owner = JSON.parse(await readFile(join(root, 'lock'), 'utf8')) as { pid: number };
    expect(owner.pid).toBe(process.pid);
    await store.close();
  });

  it('close removes the lock after the last store', async () => {
    const root = await freshRoot();
    const first = await OciStore.open(root);
    const second = await OciStore.open(root);
    await first.close();
    expect((await stat(join(root, 'lock'))).isFile()).toBe(true);
    await second.close();
    await expect(stat(join(root, 'lock'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
