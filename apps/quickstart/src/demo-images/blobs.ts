import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Digest } from '@edge/oci';

/** A blob written to an OCI image layout's `blobs/sha256` folder. */
export interface WrittenBlob {
  digest: Digest;
  size: number;
}

/** Path of a blob in an OCI image layout. */
export function blobPath(layoutDir: string, digest: Digest): string {
  return join(layoutDir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Counts and hashes the bytes that pass through, unchanged. */
export class HashingStream extends Transform {
  readonly #hash = createHash('sha256');
  #size = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.#hash.update(chunk);
    this.#size += chunk.length;
    this.push(chunk);
    done();
  }

  /** Digest and size of everything that passed; call once, after the stream ended. */
  result(): WrittenBlob {
    return { digest: `sha256:${this.#hash.digest('hex')}`, size: this.#size };
  }
}

/**
 * Streams `source` into the layout as a blob named by its sha256: a temporary file in the same
 * folder, fsync, rename, then fsync of the folder, so a crash never leaves a half-written blob
 * under a digest name. `stages` run between the source and the hash (for example gzip).
 */
export async function writeBlob(
  layoutDir: string,
  source: Readable,
  stages: readonly Transform[] = [],
): Promise<WrittenBlob> {
  const folder = join(layoutDir, 'blobs', 'sha256');
  await mkdir(folder, { recursive: true });
  const temporary = join(folder, `.tmp-${randomUUID()}`);
  const hashing = new HashingStream();
  try {
    await pipeline([source, ...stages, hashing, createWriteStream(temporary, { flags: 'wx' })]);
    await fsyncPath(temporary);
    const blob = hashing.result();
    await rename(temporary, blobPath(layoutDir, blob.digest));
    await fsyncPath(folder);
    return blob;
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
