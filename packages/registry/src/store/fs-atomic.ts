import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export function isNotFound(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ENOENT';
}

/** Flushes a directory entry so that a rename inside it survives a power loss. */
export async function fsyncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export function tempName(directory: string, prefix: string): string {
  return join(directory, `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

/** Creates `path` (it must not exist) with `bytes` and flushes it to disk. */
export async function writeFileSynced(path: string, bytes: Buffer | string): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `bytes` to `target` atomically: a temporary file in the same directory, fsync, rename,
 * fsync of the directory. Readers see the old file or the new one, never a torn one.
 */
export async function writeFileAtomic(target: string, bytes: Buffer | string): Promise<void> {
  const directory = dirname(target);
  const temp = tempName(directory, `.${basename(target)}`);
  await writeFileSynced(temp, bytes);
  try {
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await fsyncDirectory(directory);
}
