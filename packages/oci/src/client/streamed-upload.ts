import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import type { Digest } from '../digest.js';
import { OciError, redactUrl } from '../errors.js';
import { discardBody } from './body.js';
import type { HttpResponse } from './http.js';
import type { RepositoryRef, StreamedUpload } from './types.js';
import {
  checkCommitted,
  locationOf,
  pushScopes,
  receivedBytes,
  startUpload,
  withDigestQuery,
  type UploadAccess,
} from './upload.js';

/**
 * Bytes buffered between the download and the upload request before `write` waits. This caps
 * the memory that the upload side uses per blob.
 */
const STREAM_BUFFER_BYTES = 256 * 1024;

/**
 * Time allowed for the DELETE that drops an abandoned upload session, in milliseconds. The
 * DELETE only frees the registry's temporary space, which Distribution 2.8 also purges after
 * a week (`storage.maintenance.uploadpurging`, age 168 h by default). So it gets one short
 * attempt instead of the retry budget.
 */
const ABORT_TIMEOUT_MS = 5_000;

/** One upload session fed by one PATCH request whose body is still being written. */
interface Session {
  /** The POST's Location, where the PATCH goes and where an abort sends its DELETE. */
  location: URL;
  body: PassThrough;
  /** The PATCH; it settles only after `body` has ended or failed. */
  response: Promise<HttpResponse>;
  /** Rejects as soon as the PATCH settles before the body ended, so `write` stops waiting. */
  settledEarly: Promise<never>;
  written: number;
  ended: boolean;
}

/**
 * Streams a blob into a registry while it downloads. POST opens a session, and one PATCH
 * carries the bytes as they arrive (chunked transfer coding without Content-Range, the
 * streamed upload of the distribution spec). The closing `PUT ?digest=` goes out only from
 * `commit`, which the downloader calls after the bytes hashed to the digest. `abort` deletes
 * the session, so a mismatched or interrupted copy never becomes a blob in the registry.
 *
 * docker-registry 2.8 cannot continue a session after a cut PATCH, so every `begin` opens a
 * new session and the downloader replays its partial file into it.
 */
export class StreamedBlobUpload implements StreamedUpload {
  #session: Session | undefined;
  #committed = false;
  #error: unknown;

  constructor(
    private readonly access: UploadAccess,
    private readonly repo: RepositoryRef,
    private readonly digest: Digest,
    private readonly signal?: AbortSignal,
  ) {}

  get committed(): boolean {
    return this.#committed;
  }

  get error(): unknown {
    return this.#error;
  }

  begin(): Promise<void> {
    return this.#recording(() => this.#begin());
  }

  write(chunk: Buffer): Promise<void> {
    return this.#recording(() => this.#write(chunk));
  }

  commit(): Promise<void> {
    return this.#recording(() => this.#commit());
  }

  async #recording(step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (error) {
      this.#error ??= error;
      throw error;
    }
  }

  async #begin(): Promise<void> {
    if (this.#session !== undefined) await this.abort();
    this.#committed = false;
    const location = await startUpload(this.access, this.repo, this.signal);
    const body = new PassThrough({ highWaterMark: STREAM_BUFFER_BYTES });
    let bodyTaken = false;
    const response = this.access.requester.request({
      method: 'PATCH',
      host: this.access.host(this.repo),
      url: location,
      scopes: pushScopes(this.repo),
      headers: { 'content-type': 'application/octet-stream' },
      // The body is a live stream, so it cannot be sent twice (for example after a 401).
      body: () => {
        if (bodyTaken) return failedBody(this.digest, location);
        bodyTaken = true;
        return body;
      },
      expect: [202],
      idempotent: false,
      ...(this.signal !== undefined ? { signal: this.signal } : {}),
    });
    response.catch(() => undefined);
    const session: Session = {
      location,
      body,
      response,
      settledEarly: response.then(
        () => {
          throw new OciError(
            'INVALID_RESPONSE',
            `${redactUrl(location)} answered the PATCH of ${this.digest} before its body ended; the registry does not accept streamed uploads.`,
          );
        },
        (error: unknown) => {
          throw error;
        },
      ),
      written: 0,
      ended: false,
    };
    session.settledEarly.catch(() => undefined);
    this.#session = session;
  }

  async #write(chunk: Buffer): Promise<void> {
    const session = this.#requireSession('write');
    session.written += chunk.length;
    if (session.body.write(chunk)) return;
    await Promise.race([once(session.body, 'drain'), session.settledEarly]);
  }

  async #commit(): Promise<void> {
    const session = this.#requireSession('commit');
    session.ended = true;
    session.body.end();
    const patched = await session.response;
    discardBody(patched.body);
    const received = receivedBytes(patched);
    // An empty body has no byte range to report, so only a non-empty one is checked.
    if (session.written > 0 && received !== undefined && received !== session.written) {
      throw new OciError(
        'BLOB_UPLOAD_INVALID',
        `Upload session of ${this.digest} holds ${received} bytes after a streamed PATCH of ${session.written}; the blob is uploaded again from the downloaded file.`,
        { status: patched.status, method: 'PATCH', url: patched.url.toString() },
      );
    }
    const response = await this.access.requester.request({
      method: 'PUT',
      host: this.access.host(this.repo),
      url: withDigestQuery(locationOf(patched), this.digest),
      scopes: pushScopes(this.repo),
      headers: { 'content-length': '0' },
      expect: [201],
      idempotent: false,
      ...(this.signal !== undefined ? { signal: this.signal } : {}),
    });
    checkCommitted(response, this.digest);
    this.#session = undefined;
    this.#committed = true;
  }

  /**
   * Ends the PATCH and deletes the session. A healthy PATCH is ended cleanly, so the registry
   * returns the session's newest Location for the DELETE. Errors are swallowed, because an
   * abandoned session is invisible to pulls and expires on the registry's own schedule.
   */
  async abort(): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    if (session === undefined) return;
    let location = session.location;
    if (!session.ended) {
      session.ended = true;
      session.body.end();
    }
    try {
      const patched = await session.response;
      discardBody(patched.body);
      location = locationOf(patched);
    } catch {
      session.body.destroy();
    }
    try {
      const response = await this.access.requester.request({
        method: 'DELETE',
        host: this.access.host(this.repo),
        url: location,
        scopes: pushScopes(this.repo),
        // After a failed PATCH, Distribution 2.8 returns 404 for the session but keeps its bytes
        // on disk until its upload purging removes them.
        expect: [204, 404],
        idempotent: false,
        signal: AbortSignal.timeout(ABORT_TIMEOUT_MS),
      });
      discardBody(response.body);
    } catch {
      // Best effort, see above.
    }
  }

  #requireSession(step: string): Session {
    const session = this.#session;
    if (session === undefined || session.ended) {
      throw new TypeError(`StreamedBlobUpload.${step} of ${this.digest} called outside begin().`);
    }
    return session;
  }
}

function failedBody(digest: Digest, location: URL): Readable {
  return new Readable({
    read() {
      this.destroy(
        new OciError(
          'BLOB_UPLOAD_INVALID',
          `The streamed PATCH of ${digest} to ${redactUrl(location)} needed a second attempt, which a live stream cannot make; the blob is uploaded again from the downloaded file.`,
        ),
      );
    },
  });
}
