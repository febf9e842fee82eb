import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../errors.js';
import { parseDigest } from '../oci.js';
import type { OciStore } from '../store/store.js';
import { firstHeader, hasBody } from './http-util.js';

function queryValue(request: FastifyRequest, key: string): string | undefined {
  const query = request.query as Record<string, string | string[] | undefined>;
  const value = query[key];
  return Array.isArray(value) ? value[0] : value;
}

function uploadLocation(repository: string, id: string): string {
  return `/v2/${repository}/blobs/uploads/${id}`;
}

function sendSession(
  reply: FastifyReply,
  repository: string,
  id: string,
  size: number,
  status: number,
): FastifyReply {
  return reply
    .code(status)
    .header('Location', uploadLocation(repository, id))
    .header('Docker-Upload-UUID', id)
    .header('Range', `0-${Math.max(0, size - 1)}`)
    .header('Content-Length', 0)
    .send();
}

function sendCreated(reply: FastifyReply, repository: string, digest: string): FastifyReply {
  return reply
    .code(201)
    .header('Location', `/v2/${repository}/blobs/${digest}`)
    .header('Docker-Content-Digest', digest)
    .header('Content-Length', 0)
    .send();
}

/** Declared Content-Length, or undefined for chunked or absent lengths. */
function declaredLength(request: FastifyRequest): number | undefined {
  const value = firstHeader(request.headers['content-length']);
  if (value === undefined) return undefined;
  const length = Number(value);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/** POST: a cross-repository mount, a monolithic upload (`digest` with the body) or a new session. */
export async function startUpload(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  repository: string,
): Promise<FastifyReply> {
  const mount = queryValue(request, 'mount');
  // Blobs are visible in every repository of this store, so a mount succeeds whenever the blob
  // exists, whatever `from` names. Otherwise the client gets an ordinary upload session.
  if (mount !== undefined) {
    parseDigest(mount);
    if (await store.hasBlob(mount)) {
      request.raw.resume();
      return sendCreated(reply, repository, mount);
    }
  }
  const digest = queryValue(request, 'digest');
  if (digest !== undefined) {
    parseDigest(digest);
    const length = declaredLength(request);
    const written = await store.putBlob(request.raw, {
      digest,
      ...(length === undefined ? {} : { size: length }),
    });
    return sendCreated(reply, repository, written.digest);
  }
  request.raw.resume();
  const id = await store.uploads.start();
  return sendSession(reply, repository, id, 0, 202);
}

function parseContentRange(header: string | undefined): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const match = /^(?:bytes[ =])?(\d+)-(\d+)$/.exec(header.trim());
  if (!match) {
    throw new RegistryError(
      'BLOB_UPLOAD_INVALID',
      `invalid Content-Range ${JSON.stringify(header.slice(0, 100))}: use <start>-<end>`,
      undefined,
      { status: 416 },
    );
  }
  return { start: Number(match[1]), end: Number(match[2]) };
}

export async function patchUpload(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  repository: string,
  id: string,
): Promise<FastifyReply> {
  const range = parseContentRange(firstHeader(request.headers['content-range']));
  const length = declaredLength(request);
  if (range && length !== undefined && range.end - range.start + 1 !== length) {
    request.raw.resume();
    throw new RegistryError(
      'BLOB_UPLOAD_INVALID',
      `Content-Range ${range.start}-${range.end} does not match Content-Length ${length}: send matching headers`,
      undefined,
      { status: 416 },
    );
  }
  const size = await store.uploads.append(id, request.raw, range?.start);
  return sendSession(reply, repository, id, size, 202);
}

export async function finishUpload(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  repository: string,
  id: string,
): Promise<FastifyReply> {
  const digest = queryValue(request, 'digest');
  if (digest === undefined) {
    request.raw.resume();
    throw new RegistryError(
      'DIGEST_INVALID',
      'upload PUT has no digest query parameter: add ?digest=<digest>',
    );
  }
  parseDigest(digest);
  const written = await store.uploads.finish(
    id,
    digest,
    hasBody(request.raw) ? request.raw : undefined,
  );
  return sendCreated(reply, repository, written.digest);
}

export async function uploadStatus(
  reply: FastifyReply,
  store: OciStore,
  repository: string,
  id: string,
): Promise<FastifyReply> {
  const size = await store.uploads.size(id);
  return sendSession(reply, repository, id, size, 204);
}

export async function cancelUpload(
  reply: FastifyReply,
  store: OciStore,
  id: string,
): Promise<FastifyReply> {
  await store.uploads.cancel(id);
  return reply.code(204).send();
}
