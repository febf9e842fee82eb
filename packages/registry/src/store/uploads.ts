import { randomUUID } from 'node:crypto';
import { readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { RegistryError } from '../errors.js';
import { createDigester, parseDigest, type Digester } from '../oci.js';
import { fsyncFile, hashFile, streamToFile } from './blob-files.js';
import { Mutex } from './mutex.js';

/** Upload sessions untouched for a day are removed by garbage collection. */
export const UPLOAD_SESSION_MAX_AGE_MS = 24 * 60 * 60 * 1000;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Session {
  lock: Mutex;
  /** Running sha256 of the bytes so far; absent after a restart, then the file is rehashed. */
  digester?: Digester;
  hashedBytes: number;
}

interface BlobCommitter {
  commitBlobFile(path: string, digest: string): Promise<void>;
  verifyWritten(written: { digest: string; size: number }, expected: { digest?: string }): void;
}

function uploadUnknown(id: string): RegistryError {
  return new RegistryError(
    'BLOB_UPLOAD_UNKNOWN',
    `upload ${id.slice(0, 100)} not found (finished, cancelled or expired): start a new upload`,
  );
}

/**
 * Blob upload sessions of the push API, one file per session under `uploads/`. Sessions survive
 * a restart; a chunk must start where the previous one ended.
 */
export class UploadSessions {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly directory: string,
    private readonly store: BlobCommitter,
  ) {}

  private path(id: string): string {
    return join(this.directory, id);
  }

  async start(): Promise<string> {
    const id = randomUUID();
    await writeFile(this.path(id), Buffer.alloc(0), { flag: 'wx' });
    this.sessions.set(id, {
      lock: new Mutex(),
      digester: createDigester('sha256'),
      hashedBytes: 0,
    });
    return id;
  }

  private async session(id: string): Promise<Session> {
    if (!UUID_PATTERN.test(id)) throw uploadUnknown(id);
    const existing = this.sessions.get(id);
    if (existing) return existing;
    await this.size(id);
    const session: Session = { lock: new Mutex(), hashedBytes: 0 };
    this.sessions.set(id, session);
    return session;
  }

  /** Bytes received so far; BLOB_UPLOAD_UNKNOWN when the session does not exist. */
  async size(id: string): Promise<number> {
    if (!UUID_PATTERN.test(id)) throw uploadUnknown(id);
    try {
      return (await stat(this.path(id))).size;
    } catch {
      throw uploadUnknown(id);
    }
  }

  /**
   * Appends a chunk. `start` (from Content-Range) must equal the bytes received so far, otherwise
   * the chunk is rejected with 416 and the session is left as it was.
   */
  async append(id: string, body: Readable, start?: number): Promise<number> {
    const session = await this.session(id);
    return session.lock.run(async () => {
      const size = await this.size(id);
      if (start !== undefined && start !== size) {
        body.resume();
        throw new RegistryError(
          'BLOB_UPLOAD_INVALID',
          `chunk starts at byte ${start} but the upload has ${size} bytes: resume from byte ${size}`,
          undefined,
          { status: 416 },
        );
      }
      const digester =
        session.digester !== undefined && session.hashedBytes === size
          ? session.digester
          : undefined;
      let appended = 0;
      const onChunk = (chunk: Buffer): void => {
        appended += chunk.length;
        digester?.update(chunk);
      };
      try {
        await streamToFile(body, this.path(id), { algorithm: 'sha256', append: true, onChunk });
      } finally {
        if (digester) session.hashedBytes = size + appended;
      }
      return size + appended;
    });
  }

  /** Appends the optional last chunk, verifies the digest and moves the blob into the store. */
  async finish(
    id: string,
    digest: string,
    body?: Readable,
  ): Promise<{ digest: string; size: number }> {
    const parsed = parseDigest(digest);
    if (body) await this.append(id, body);
    const session = await this.session(id);
    return session.lock.run(async () => {
      const path = this.path(id);
      const size = await this.size(id);
      const written =
        parsed.algorithm === 'sha256' && session.digester && session.hashedBytes === size
          ? { digest: session.digester.digest(), size }
          : await hashFile(path, parsed.algorithm);
      // A digest object is finished once read, so a failed finish falls back to rehashing.
      delete session.digester;
      this.store.verifyWritten(written, { digest });
      await fsyncFile(path);
      await this.store.commitBlobFile(path, digest);
      await rm(path, { force: true });
      this.sessions.delete(id);
      return written;
    });
  }

  async cancel(id: string): Promise<void> {
    await this.size(id);
    await rm(this.path(id), { force: true });
    this.sessions.delete(id);
  }

  /** Removes sessions whose file has not changed for UPLOAD_SESSION_MAX_AGE_MS. */
  async removeStale(now = Date.now()): Promise<void> {
    for (const name of await readdir(this.directory)) {
      const info = await stat(join(this.directory, name)).catch(() => null);
      if (info && now - info.mtimeMs > UPLOAD_SESSION_MAX_AGE_MS) {
        await rm(join(this.directory, name), { force: true });
        this.sessions.delete(name);
      }
    }
  }
}
