import type { Readable } from 'node:stream';
import type { OciError } from '../errors.js';

/**
 * Reads a whole body into memory, failing with `tooLarge()` as soon as it passes `maxBytes`.
 * Only for manifests, token responses and listings, which are small and capped.
 */
export async function readCapped(
  body: Readable,
  maxBytes: number,
  tooLarge: (received: number) => OciError,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      length += chunk.length;
      if (length > maxBytes) throw tooLarge(length);
      chunks.push(chunk);
    }
  } finally {
    body.on('error', () => undefined);
    body.destroy();
  }
  return Buffer.concat(chunks, length);
}

/** Bytes drained from an unwanted body so its connection can be reused; larger bodies are cut. */
const DISCARD_DRAIN_BYTES = 64 * 1024;

/**
 * Drops a response body without raising: undici's body stream emits an abort error when it
 * is destroyed unread, so a no-op listener absorbs that, and small bodies are drained so the
 * keep-alive connection stays usable.
 */
export function discardBody(body: Readable): void {
  body.on('error', () => undefined);
  const dump = (body as Readable & { dump?: (options: { limit: number }) => Promise<void> }).dump;
  if (typeof dump === 'function') {
    dump.call(body, { limit: DISCARD_DRAIN_BYTES }).catch(() => undefined);
  } else {
    body.destroy();
  }
}
