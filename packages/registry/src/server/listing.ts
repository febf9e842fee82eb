import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { RegistryError } from '../errors.js';
import { MediaType, parseDigest } from '../oci.js';
import type { OciStore } from '../store/store.js';

/** Upper bound of `n` for tag and catalog pages; a larger `n` is served in pages of this size. */
export const MAX_PAGE_SIZE = 1000;

const pageQuerySchema = z.object({
  n: z.string().regex(/^\d+$/, 'n must be a non-negative integer').transform(Number).optional(),
  last: z.string().optional(),
});

function parsePage(request: FastifyRequest): { n?: number; last?: string } {
  const result = pageQuerySchema.safeParse(request.query);
  if (!result.success) {
    throw new RegistryError(
      'PAGINATION_NUMBER_INVALID',
      `invalid pagination query: ${result.error.issues[0]?.message ?? 'unknown'}; use ?n=<count>&last=<name>`,
    );
  }
  return result.data;
}

/** Slices a sorted list after `last`, at most `n` entries, with the `Link` of the next page. */
function paginate(
  items: string[],
  page: { n?: number; last?: string },
  path: string,
): { items: string[]; link?: string } {
  const after =
    page.last === undefined ? items : items.filter((item) => item > (page.last as string));
  if (page.n === undefined) return { items: after };
  const n = Math.min(page.n, MAX_PAGE_SIZE);
  const slice = after.slice(0, n);
  const lastItem = slice[slice.length - 1];
  if (after.length <= n || lastItem === undefined) return { items: slice };
  const link = `<${path}?n=${n}&last=${encodeURIComponent(lastItem)}>; rel="next"`;
  return { items: slice, link };
}

export async function listTags(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  repository: string,
): Promise<FastifyReply> {
  const page = parsePage(request);
  if (!store.hasRepository(repository)) {
    throw new RegistryError('NAME_UNKNOWN', `repository ${repository} not found: check the name`);
  }
  const result = paginate(await store.listTags(repository), page, `/v2/${repository}/tags/list`);
  if (result.link) reply.header('Link', result.link);
  return reply.type('application/json').send({ name: repository, tags: result.items });
}

export async function listCatalog(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
): Promise<FastifyReply> {
  const page = parsePage(request);
  const result = paginate(await store.listRepositories(), page, '/v2/_catalog');
  if (result.link) reply.header('Link', result.link);
  return reply.type('application/json').send({ repositories: result.items });
}

/** Referrers API: an image index of the manifests whose subject is `digest`, never a 404. */
export async function listReferrers(
  request: FastifyRequest,
  reply: FastifyReply,
  store: OciStore,
  repository: string,
  digest: string,
): Promise<FastifyReply> {
  parseDigest(digest);
  const query = request.query as Record<string, string | string[] | undefined>;
  const raw = query.artifactType;
  const artifactType = Array.isArray(raw) ? raw[0] : raw;
  const manifests = await store.referrers(repository, digest, artifactType);
  if (artifactType !== undefined) reply.header('OCI-Filters-Applied', 'artifactType');
  return reply
    .type(MediaType.OciIndex)
    .send(
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests })),
    );
}
