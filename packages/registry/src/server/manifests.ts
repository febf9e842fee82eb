import type { FastifyReply, FastifyRequest } from 'fastify';
import { RegistryError } from '../errors.js';
import { assertTag, tryParseDigest } from '../oci.js';
import type { OciStore } from '../store/store.js';
import {
  acceptedMediaTypes,
  etagOf,
  firstHeader,
  matchesIfNoneMatch,
  readBody,
} from './http-util.js';
import type { RegistryMetrics } from './metrics.js';

function manifestUnknown(repository: string, reference: string): RegistryError {
  return new RegistryError(
    'MANIFEST_UNKNOWN',
    `manifest ${reference} not found in repository ${repository}: check the tag or digest`,
  );
}

function assertReference(reference: string): void {
  if (reference.includes(':')) {
    if (!tryParseDigest(reference)) {
      throw new RegistryError(
        'DIGEST_INVALID',
        `invalid digest ${JSON.stringify(reference.slice(0, 200))}: expected sha256:<64 hex> or sha512:<128 hex>`,
      );
    }
    return;
  }
  assertTag(reference);
}

export async function getManifest(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  metrics: RegistryMetrics,
  repository: string,
  reference: string,
): Promise<FastifyReply> {
  assertReference(reference);
  const record = store.statManifest(repository, reference);
  if (!record) throw manifestUnknown(repository, reference);
  // Like CNCF Distribution, a manifest whose media type the client did not list is not found.
  const accepted = acceptedMediaTypes(request.headers.accept);
  if (accepted && !accepted.has(record.mediaType)) {
    throw new RegistryError(
      'MANIFEST_UNKNOWN',
      `manifest ${reference} in ${repository} has media type ${record.mediaType}, which the Accept header does not list: add it to Accept`,
    );
  }
  const etag = etagOf(record.digest);
  reply.header('Docker-Content-Digest', record.digest).header('ETag', etag).type(record.mediaType);
  if (matchesIfNoneMatch(firstHeader(request.headers['if-none-match']), etag)) {
    return reply.code(304).send();
  }
  reply.header('Content-Length', record.size);
  if (request.method === 'HEAD') return reply.code(200).send();
  const manifest = await store.getManifest(repository, record.digest);
  if (!manifest) throw manifestUnknown(repository, reference);
  metrics.servedBytes.inc({ kind: 'manifest' }, manifest.bytes.length);
  return reply.code(200).send(manifest.bytes);
}

export async function putManifest(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  repository: string,
  reference: string,
): Promise<FastifyReply> {
  assertReference(reference);
  const contentType =
    (firstHeader(request.headers['content-type']) ?? '').split(';')[0]?.trim() ?? '';
  if (contentType === '') {
    request.raw.resume();
    throw new RegistryError(
      'MANIFEST_INVALID',
      'manifest PUT has no Content-Type: send the manifest media type as Content-Type',
    );
  }
  const bytes = await readBody(request.raw, store.maxManifestBytes);
  const result = await store.putManifest(repository, reference, bytes, contentType);
  reply
    .code(201)
    .header('Location', `/v2/${repository}/manifests/${result.digest}`)
    .header('Docker-Content-Digest', result.digest)
    .header('Content-Length', 0);
  if (result.subject !== undefined) reply.header('OCI-Subject', result.subject);
  return reply.send();
}

export async function deleteManifest(
  reply: FastifyReply,
  store: OciStore,
  repository: string,
  reference: string,
): Promise<FastifyReply> {
  assertReference(reference);
  if (tryParseDigest(reference)) {
    await store.deleteManifest(repository, reference);
  } else {
    await store.deleteTag(repository, reference);
  }
  return reply.code(202).header('Content-Length', 0).send();
}
