import { hostname } from 'node:os';
import { readFile, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { RegistryError } from '../errors.js';
import { isNotFound, writeFileSynced } from './fs-atomic.js';

const LOCK_FILE = 'lock';
/** Open stores of this process per resolved root; the lock file goes when the count reaches 0. */
const openCounts = new Map<string, number>();

interface LockOwner {
  pid: number;
  hostname: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM means the process exists but belongs to another user.
    return !(error instanceof Error && 'code' in error && error.code === 'ESRCH');
  }
}

async function readOwner(path: string): Promise<LockOwner | null> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as Partial<LockOwner>;
    if (typeof value.pid !== 'number' || typeof value.hostname !== 'string') return null;
    return { pid: value.pid, hostname: value.hostname };
  } catch (error) {
    if (isNotFound(error) || error instanceof SyntaxError) return null;
    throw error;
  }
}

/**
 * Takes the store's lock file `<root>/lock` for this process. A lock of a process that no longer
 * runs on this host (after a crash) is taken over; a live owner raises STORE_LOCKED.
 */
export async function lockStore(root: string): Promise<void> {
  const key = resolve(root);
  const path = join(root, LOCK_FILE);
  const count = openCounts.get(key) ?? 0;
  if (count > 0) {
    openCounts.set(key, count + 1);
    return;
  }
  const self: LockOwner = { pid: process.pid, hostname: hostname() };
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      await writeFileSynced(path, JSON.stringify(self));
      openCounts.set(key, 1);
      return;
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
    }
    const owner = await readOwner(path);
    const stale = owner === null || (owner.hostname === self.hostname && !isAlive(owner.pid));
    if (!stale) {
      throw new RegistryError(
        'STORE_LOCKED',
        `store ${root} is in use by process ${owner.pid} on ${owner.hostname}: stop that process or use another root`,
      );
    }
    await rm(path, { force: true });
  }
  throw new RegistryError(
    'STORE_LOCKED',
    `could not take the lock file ${path}: another process took it at the same time; try again`,
  );
}

/** Releases this process's hold on the lock; the file is removed when the last store closes. */
export async function unlockStore(root: string): Promise<void> {
  const key = resolve(root);
  const count = openCounts.get(key) ?? 0;
  if (count > 1) {
    openCounts.set(key, count - 1);
    return;
  }
  if (count === 0) return;
  openCounts.delete(key);
  const owner = await readOwner(join(root, LOCK_FILE));
  if (owner?.pid === process.pid) await rm(join(root, LOCK_FILE), { force: true });
}
