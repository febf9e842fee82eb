import type { FileHandle } from 'node:fs/promises';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../errors.js';
import { parseDigest } from '../oci.js';
import type { OciStore } from '../store/store.js';
import { etagOf, firstHeader, matchesIfNoneMatch, parseRange } from './http-util.js';
import type { RegistryMetrics } from './metrics.js';
import { ResponseClosedError, writeFileRange, type BufferPool } from './file-body.js';

/** State that the blob GETs of one server share: the buffer pool and the served-bytes counter. */
export interface BlobServing {
  pool: BufferPool;
  metrics: RegistryMetrics;
}

function blobNotFound(digest: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found: push or copy it first`);
}

/** Blobs never change under their digest, so clients may cache them for a year. */
const BLOB_CACHE_CONTROL = 'max-age=31536000';

interface BlobResponse {
  status: 200 | 206 | 304;
  start: number;
  length: number;
}

/**
 * Sets the blob headers on `reply` and chooses the status from the conditional and range headers.
 * Raises RANGE_INVALID (416) for a range outside the blob.
 */
function prepareBlobResponse(
  request: FastifyRequest,
  reply: FastifyReply,
  digest: string,
  size: number,
): BlobResponse {
  const etag = etagOf(digest);
  reply
    .header('Docker-Content-Digest', digest)
    .header('ETag', etag)
    .header('Accept-Ranges', 'bytes')
    .header('Cache-Control', BLOB_CACHE_CONTROL);
  if (matchesIfNoneMatch(firstHeader(request.headers['if-none-match']), etag)) {
    return { status: 304, start: 0, length: 0 };
  }
  const ifRange = firstHeader(request.headers['if-range']);
  const rangeHeader =
    ifRange === undefined || ifRange === etag ? firstHeader(request.headers.range) : undefined;
  const range = parseRange(rangeHeader, size);
  if (range.kind === 'unsatisfiable') {
    reply.header('Content-Range', `bytes */${size}`);
    throw new RegistryError(
      'RANGE_INVALID',
      `range ${rangeHeader ?? ''} is outside blob ${digest} of ${size} bytes: request bytes below ${size}`,
    );
  }

  reply.type('application/octet-stream');
  if (range.kind === 'satisfiable') {
    const length = range.end - range.start + 1;
    reply
      .header('Content-Range', `bytes ${range.start}-${range.end}/${size}`)
      .header('Content-Length', length);
    return { status: 206, start: range.start, length };
  }
  reply.header('Content-Length', size);
  return { status: 200, start: 0, length: size };
}

export async function headBlob(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  digest: string,
): Promise<FastifyReply> {
  parseDigest(digest);
  const found = await store.statBlob(digest);
  if (!found) throw blobNotFound(digest);
  const response = prepareBlobResponse(request, reply, digest, found.size);
  return reply.code(response.status).send();
}

/**
 * Serves a blob GET. The body bypasses Fastify's stream piping: the handler takes over the
 * response (`reply.hijack()`) and copies the file with pooled buffers, because a read stream
 * allocates a new buffer per chunk. The onResponse hook still runs when the response finishes.
 */
export async function getBlob(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  blobs: BlobServing,
  digest: string,
): Promise<FastifyReply> {
  parseDigest(digest);
  const { file, size } = await store.openBlobFile(digest);
  try {
    const response = prepareBlobResponse(request, reply, digest, size);
    if (response.status === 304) return reply.code(304).send();
    await sendBlobBody(request, reply, file, response, blobs, digest);
    return reply;
  } finally {
    await file.close();
  }
}

/** Takes over the response from Fastify and writes the status, headers and the file range. */
async function sendBlobBody(
  request: FastifyRequest,
  reply: FastifyReply,
  file: FileHandle,
  response: BlobResponse,
  blobs: BlobServing,
  digest: string,
): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  const written = { bytes: 0 };
  try {
    for (const [name, value] of Object.entries(reply.getHeaders())) {
      if (value !== undefined) raw.setHeader(name, value);
    }
    raw.writeHead(response.status);
    await writeFileRange(file, response.start, response.length, raw, blobs.pool, written);
    raw.end();
  } catch (error) {
    // No access-log line follows an aborted response (it never finishes), so this line is it.
    if (error instanceof ResponseClosedError || raw.destroyed) {
      request.log.info(
        { digest, bytes: written.bytes, err: error },
        'blob response aborted: the client closed the connection or it failed',
      );
    } else {
      request.log.error({ err: error, digest }, 'blob response failed after its headers were sent');
    }
    raw.destroy();
  } finally {
    blobs.metrics.servedBytes.inc({ kind: 'blob' }, written.bytes);
  }
}

export async function deleteBlob(
  reply: FastifyReply,
  store: OciStore,
  digest: string,
): Promise<FastifyReply> {
  await store.deleteBlob(digest);
  return reply.code(202).header('Content-Length', 0).send();
}
