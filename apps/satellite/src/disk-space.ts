import { statfs } from 'node:fs/promises';
import { SatelliteError } from './errors.js';

/** Free bytes available to this process on the file system holding `path`. */
export async function freeBytes(path: string): Promise<number> {
  const stats = await statfs(path);
  return stats.bavail * stats.bsize;
}

/**
 * Throws DISK_SPACE_LOW when writing `bytes` more under `path` would leave less than
 * `minFreeBytes` free, so a large layer never fills the disk that the site also runs on.
 */
export async function checkDiskSpace(
  path: string,
  bytes: number,
  minFreeBytes: number,
): Promise<void> {
  const free = await freeBytes(path);
  if (free - bytes < minFreeBytes) {
    throw new SatelliteError(
      'DISK_SPACE_LOW',
      `Not enough disk space in ${path} for ${bytes} more bytes: ${free} bytes free, and ${minFreeBytes} must stay free (--min-free-bytes). Free space or remove artifacts from the desired state.`,
    );
  }
}
