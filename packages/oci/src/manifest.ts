import { z } from 'zod';
import { isDigest, type Digest } from './digest.js';
import { OciError } from './errors.js';
import {
  essenceOf,
  isImageManifestMediaType,
  isIndexMediaType,
  MediaType,
  SCHEMA1_MEDIA_TYPES,
  type ImageManifestMediaType,
  type IndexMediaType,
  type ManifestMediaType,
} from './media-types.js';
import type { Platform } from './platform.js';

/** Default cap on manifest bodies in bytes (4 MiB), so a hostile registry cannot exhaust memory. */
export const DEFAULT_MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

// RFC 6838 media type: type "/" subtype, each restricted-name characters, optional +suffix.
const MEDIA_TYPE_PATTERN =
  /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

// Content-Type values some registries send for manifests without naming the real type.
const GENERIC_CONTENT_TYPES = new Set([
  'application/json',
  'application/octet-stream',
  'binary/octet-stream',
  'text/plain',
]);

export const platformSchema = z.looseObject({
  architecture: z.string().min(1),
  os: z.string().min(1),
  'os.version': z.string().optional(),
  'os.features': z.array(z.string()).optional(),
  variant: z.string().optional(),
  features: z.array(z.string()).optional(),
});

export const descriptorSchema = z.looseObject({
  mediaType: z.string().regex(MEDIA_TYPE_PATTERN, 'must be a media type such as "type/subtype"'),
  digest: z.string().refine(isDigest, 'must be a sha256 or sha512 digest'),
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  data: z.base64().optional(),
  artifactType: z.string().regex(MEDIA_TYPE_PATTERN).optional(),
  platform: platformSchema.optional(),
});

/** Content descriptor (OCI image-spec); unknown fields are kept. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  data?: string;
  artifactType?: string;
  platform?: Platform;
  [key: string]: unknown;
}

const annotationsSchema = z.record(z.string(), z.string()).optional();

export const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().regex(MEDIA_TYPE_PATTERN).optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema,
});

export const imageIndexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().regex(MEDIA_TYPE_PATTERN).optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: annotationsSchema,
});

/** OCI image manifest, also the shape of a Docker schema 2 manifest. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** OCI image index, also the shape of a Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** Docker image manifest v2 schema 2; the body must name its media type. */
export type DockerManifest = ImageManifest & { mediaType: typeof MediaType.DockerManifest };
/** Docker manifest list; the body must name its media type. */
export type DockerManifestList = ImageIndex & { mediaType: typeof MediaType.DockerManifestList };

export interface ParsedImageManifest {
  kind: 'image';
  mediaType: ImageManifestMediaType;
  manifest: ImageManifest;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
}

export interface ParsedIndex {
  kind: 'index';
  mediaType: IndexMediaType;
  manifest: ImageIndex;
  manifests: Descriptor[];
  subject?: Descriptor;
  artifactType?: string;
}

export type ParsedManifest = ParsedImageManifest | ParsedIndex;

export interface ParseManifestOptions {
  maxBytes?: number;
}

function invalid(reason: string): OciError {
  return new OciError('INVALID_MANIFEST', `Invalid manifest: ${reason}.`);
}

function schema1Error(source: string): OciError {
  return new OciError(
    'UNSUPPORTED_MEDIA_TYPE',
    `Docker image manifest schema 1 is not supported (${source}): convert the image to schema 2 or OCI, for example by pushing it again with a current Docker or skopeo.`,
  );
}

function unsupportedType(mediaType: string, source: string): OciError {
  return new OciError(
    'UNSUPPORTED_MEDIA_TYPE',
    `Unsupported manifest media type "${mediaType}" (${source}): expected an OCI image manifest or index, or a Docker schema 2 manifest or manifest list.`,
  );
}

function declaredType(contentType: string | undefined): ManifestMediaType | undefined {
  if (contentType === undefined) return undefined;
  const essence = essenceOf(contentType);
  if (essence === '' || GENERIC_CONTENT_TYPES.has(essence)) return undefined;
  if (SCHEMA1_MEDIA_TYPES.includes(essence)) throw schema1Error(`Content-Type ${essence}`);
  if (isIndexMediaType(essence) || isImageManifestMediaType(essence)) return essence;
  throw unsupportedType(essence, 'Content-Type');
}

function decodeJson(bytes: Uint8Array): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw invalid('the body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw invalid(`the body is not valid JSON (${(error as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('the body is not a JSON object');
  }
  return value as Record<string, unknown>;
}

// Kind detection order: Content-Type, then the body's mediaType, then the body's shape.
function detectMediaType(
  body: Record<string, unknown>,
  declared: ManifestMediaType | undefined,
): ManifestMediaType {
  if (body.schemaVersion === 1 || 'fsLayers' in body) throw schema1Error('schemaVersion 1 body');
  const bodyType = body.mediaType;
  if (bodyType !== undefined) {
    if (typeof bodyType !== 'string') throw invalid('"mediaType" is not a string');
    if (SCHEMA1_MEDIA_TYPES.includes(bodyType)) throw schema1Error(`mediaType ${bodyType}`);
    if (!isIndexMediaType(bodyType) && !isImageManifestMediaType(bodyType)) {
      throw unsupportedType(bodyType, 'body mediaType');
    }
    if (declared !== undefined && declared !== bodyType) {
      throw invalid(`the Content-Type ${declared} differs from the body's mediaType ${bodyType}`);
    }
    return bodyType;
  }
  if (declared !== undefined) return declared;
  if (Array.isArray(body.manifests)) return MediaType.OciIndex;
  if (typeof body.config === 'object' && body.config !== null) return MediaType.OciManifest;
  throw invalid('it has no mediaType and neither "manifests" nor "config"');
}

function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((issue) => `${issue.path.length > 0 ? issue.path.join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Parses manifest bytes into an image manifest or an index, keeping unknown fields. The
 * kind comes from `contentType` when it names a manifest type, then from the body's
 * `mediaType`, then from its shape. Docker schema 1 raises `UNSUPPORTED_MEDIA_TYPE`.
 */
export function parseManifest(
  bytes: Uint8Array,
  contentType?: string,
  options: ParseManifestOptions = {},
): ParsedManifest {
  const maxBytes = options.maxBytes ?? DEFAULT_MANIFEST_MAX_BYTES;
  if (bytes.byteLength > maxBytes) {
    throw new OciError(
      'MANIFEST_TOO_LARGE',
      `Manifest of ${bytes.byteLength} bytes exceeds the limit of ${maxBytes} bytes: raise the manifest size limit if this registry really serves such manifests.`,
    );
  }
  const declared = declaredType(contentType);
  const body = decodeJson(bytes);
  const mediaType = detectMediaType(body, declared);

  if (isIndexMediaType(mediaType)) {
    const result = imageIndexSchema.safeParse(body);
    if (!result.success) throw invalid(`not a valid ${mediaType}: ${formatIssues(result.error)}`);
    const manifest = result.data as ImageIndex;
    const parsed: ParsedIndex = {
      kind: 'index',
      mediaType,
      manifest,
      manifests: manifest.manifests,
    };
    if (manifest.subject !== undefined) parsed.subject = manifest.subject;
    if (manifest.artifactType !== undefined) parsed.artifactType = manifest.artifactType;
    return parsed;
  }

  const result = imageManifestSchema.safeParse(body);
  if (!result.success) throw invalid(`not a valid ${mediaType}: ${formatIssues(result.error)}`);
  const manifest = result.data as ImageManifest;
  const parsed: ParsedImageManifest = {
    kind: 'image',
    mediaType,
    manifest,
    config: manifest.config,
    layers: manifest.layers,
  };
  if (manifest.subject !== undefined) parsed.subject = manifest.subject;
  if (manifest.artifactType !== undefined) parsed.artifactType = manifest.artifactType;
  return parsed;
}

/** Returns the descriptors a manifest points to (config and layers, or child manifests), subject excluded. */
export function referencedDescriptors(parsed: ParsedManifest): Descriptor[] {
  return parsed.kind === 'index' ? [...parsed.manifests] : [parsed.config, ...parsed.layers];
}

/**
 * Returns the artifact type as the referrers API reports it (OCI distribution spec):
 * `artifactType` when set, else the config media type of an image manifest.
 */
export function artifactTypeOf(parsed: ParsedManifest): string | undefined {
  if (parsed.artifactType !== undefined) return parsed.artifactType;
  return parsed.kind === 'image' ? parsed.config.mediaType : undefined;
}
