// TODO: replace this file with the equivalents from @edge/oci (Digest parsing, createDigester,
// media type constants, parseManifest, Reference name validation) once that package exports them.
import { createHash, type Hash } from 'node:crypto';
import { z } from 'zod';
import { RegistryError } from './errors.js';

export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
} as const;

export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.ociManifest,
  MediaType.ociIndex,
  MediaType.dockerManifest,
  MediaType.dockerManifestList,
];

/** Hex length of each digest algorithm that this registry accepts. */
const DIGEST_HEX_LENGTH = { sha256: 64, sha512: 128 } as const;
export type DigestAlgorithm = keyof typeof DIGEST_HEX_LENGTH;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  digest: string;
}

const DIGEST_PATTERN = /^(sha256|sha512):([a-f0-9]+)$/;

/** Parses `alg:hex`, returning null for any other algorithm or a hex part of the wrong length. */
export function tryParseDigest(value: string): ParsedDigest | null {
  const match = DIGEST_PATTERN.exec(value);
  if (!match) return null;
  const algorithm = match[1] as DigestAlgorithm;
  const hex = match[2] as string;
  if (hex.length !== DIGEST_HEX_LENGTH[algorithm]) return null;
  return { algorithm, hex, digest: value };
}

export function parseDigest(value: string): ParsedDigest {
  const parsed = tryParseDigest(value);
  if (!parsed) {
    throw new RegistryError(
      'DIGEST_INVALID',
      `invalid digest ${JSON.stringify(value.slice(0, 200))}: expected sha256:<64 hex> or sha512:<128 hex>`,
    );
  }
  return parsed;
}

export interface Digester {
  update(chunk: Buffer): void;
  digest(): string;
}

export function createDigester(algorithm: DigestAlgorithm = 'sha256'): Digester {
  const hash: Hash = createHash(algorithm);
  return {
    update: (chunk) => {
      hash.update(chunk);
    },
    digest: () => `${algorithm}:${hash.digest('hex')}`,
  };
}

export function digestOf(bytes: Buffer, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

// Repository name and tag grammar of the OCI distribution spec 1.1.
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_PATTERN = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** Distribution caps host plus name at 255 characters; the name alone gets the same cap here. */
export const MAX_REPOSITORY_NAME_LENGTH = 255;

export function isValidRepositoryName(name: string): boolean {
  return name.length <= MAX_REPOSITORY_NAME_LENGTH && NAME_PATTERN.test(name);
}

export function assertRepositoryName(name: string): void {
  if (!isValidRepositoryName(name)) {
    throw new RegistryError(
      'NAME_INVALID',
      `invalid repository name ${JSON.stringify(name.slice(0, 300))}: use lower-case path components such as "team/app" (at most ${MAX_REPOSITORY_NAME_LENGTH} characters)`,
    );
  }
}

export function isValidTag(tag: string): boolean {
  return TAG_PATTERN.test(tag);
}

export function assertTag(tag: string): void {
  if (!isValidTag(tag)) {
    throw new RegistryError(
      'TAG_INVALID',
      `invalid tag ${JSON.stringify(tag.slice(0, 200))}: a tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`,
    );
  }
}

const descriptorSchema = z.looseObject({
  mediaType: z.string().min(1),
  digest: z.string(),
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  artifactType: z.string().optional(),
  platform: z.looseObject({}).optional(),
});

export type Descriptor = z.infer<typeof descriptorSchema>;

const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export interface ParsedManifest {
  kind: 'image' | 'index';
  mediaType: string;
  artifactType?: string;
  config?: Descriptor;
  layers: Descriptor[];
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

function invalidManifest(message: string, cause?: unknown): RegistryError {
  return new RegistryError('MANIFEST_INVALID', message, undefined, { cause });
}

/**
 * Parses manifest bytes of one of the four supported media types. `declaredMediaType` is the
 * Content-Type of a push or the stored media type; it must agree with the body's `mediaType`.
 */
export function parseManifest(bytes: Buffer, declaredMediaType: string): ParsedManifest {
  if (!MANIFEST_MEDIA_TYPES.includes(declaredMediaType)) {
    throw invalidManifest(
      `unsupported manifest media type ${JSON.stringify(declaredMediaType)}: use one of ${MANIFEST_MEDIA_TYPES.join(', ')}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw invalidManifest(
      'manifest body is not valid JSON: send the manifest bytes unchanged',
      error,
    );
  }
  const bodyMediaType =
    typeof json === 'object' && json !== null && 'mediaType' in json ? json.mediaType : undefined;
  if (bodyMediaType !== undefined && bodyMediaType !== declaredMediaType) {
    throw invalidManifest(
      `manifest mediaType ${JSON.stringify(bodyMediaType)} differs from Content-Type ${JSON.stringify(declaredMediaType)}: send the body's mediaType as Content-Type`,
    );
  }
  const isIndex =
    declaredMediaType === MediaType.ociIndex || declaredMediaType === MediaType.dockerManifestList;
  const result = (isIndex ? indexSchema : imageManifestSchema).safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'unknown';
    throw invalidManifest(`manifest does not match ${declaredMediaType} (${where})`, result.error);
  }
  const data = result.data as z.infer<typeof imageManifestSchema> & z.infer<typeof indexSchema>;
  const descriptors = [
    ...(isIndex ? data.manifests : [data.config, ...data.layers]),
    ...(data.subject ? [data.subject] : []),
  ];
  for (const descriptor of descriptors) {
    if (!tryParseDigest(descriptor.digest)) {
      throw invalidManifest(
        `manifest lists an invalid digest ${JSON.stringify(descriptor.digest.slice(0, 200))}`,
      );
    }
  }
  const parsed: ParsedManifest = {
    kind: isIndex ? 'index' : 'image',
    mediaType: declaredMediaType,
    layers: isIndex ? [] : data.layers,
    manifests: isIndex ? data.manifests : [],
  };
  if (!isIndex) parsed.config = data.config;
  if (data.artifactType !== undefined) parsed.artifactType = data.artifactType;
  if (data.subject !== undefined) parsed.subject = data.subject;
  if (data.annotations !== undefined) parsed.annotations = data.annotations;
  return parsed;
}
