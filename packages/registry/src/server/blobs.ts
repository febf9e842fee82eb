import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../errors.js';
import { parseDigest } from '../oci.js';
import type { OciStore } from '../store/store.js';
import { etagOf, firstHeader, matchesIfNoneMatch, parseRange } from './http-util.js';
import type { RegistryMetrics } from './metrics.js';

/** Blobs never change under their digest, so clients may cache them for a year. */
const BLOB_CACHE_CONTROL = 'max-age=31536000';

export async function getBlob(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  metrics: RegistryMetrics,
  digest: string,
): Promise<FastifyReply> {
  parseDigest(digest);
  const found = await store.statBlob(digest);
  if (!found) {
    throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} not found: push or copy it first`);
  }

  const etag = etagOf(digest);
  reply
    .header('Docker-Content-Digest', digest)
    .header('ETag', etag)
    .header('Accept-Ranges', 'bytes')
    .header('Cache-Control', BLOB_CACHE_CONTROL);
  if (matchesIfNoneMatch(firstHeader(request.headers['if-none-match']), etag)) {
    return reply.code(304).send();
  }
  const ifRange = firstHeader(request.headers['if-range']);
  const rangeHeader =
    ifRange === undefined || ifRange === etag ? firstHeader(request.headers.range) : undefined;
  const range = parseRange(rangeHeader, found.size);
  if (range.kind === 'unsatisfiable') {
    reply.header('Content-Range', `bytes */${found.size}`);
    throw new RegistryError(
      'RANGE_INVALID',
      `range ${rangeHeader ?? ''} is outside blob ${digest} of ${found.size} bytes: request bytes below ${found.size}`,
    );
  }

  reply.type('application/octet-stream');
  if (range.kind === 'satisfiable') {
    reply
      .code(206)
      .header('Content-Range', `bytes ${range.start}-${range.end}/${found.size}`)
      .header('Content-Length', range.end - range.start + 1);
  } else {
    reply.code(200).header('Content-Length', found.size);
  }
  if (request.method === 'HEAD') return reply.send();

  const stream = await store.openBlob(
    digest,
    range.kind === 'satisfiable' ? { start: range.start, end: range.end } : undefined,
  );
  stream.once('close', () => {
    const read =
      'bytesRead' in stream && typeof stream.bytesRead === 'number' ? stream.bytesRead : 0;
    metrics.servedBytes.inc({ kind: 'blob' }, read);
  });
  return reply.send(stream);
}

export async function deleteBlob(
  reply: FastifyReply,
  store: OciStore,
  digest: string,
): Promise<FastifyReply> {
  await store.deleteBlob(digest);
  return reply.code(202).header('Content-Length', 0).send();
}
