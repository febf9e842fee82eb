// Adapter over @edge/oci: the registry reports failures as RegistryError with the distribution
// spec's codes, and its store wants one flat manifest shape for images and indexes.
import {
  createDigester,
  digestOf,
  isOciError,
  isValidRepository,
  isValidTag,
  MediaType,
  parseDigest as parseOciDigest,
  parseManifest as parseOciManifest,
  type Descriptor,
  type DigestAlgorithm,
  type Digester,
  type ParsedDigest,
} from '@edge/oci';
import { RegistryError } from './errors.js';

export {
  createDigester,
  digestOf,
  MediaType,
  type Descriptor,
  type DigestAlgorithm,
  type Digester,
  type ParsedDigest,
};

/** Distribution caps host plus name at 255 characters; the name alone gets the same cap here. */
export const MAX_REPOSITORY_NAME_LENGTH = 255;

export function parseDigest(value: string): ParsedDigest {
  try {
    return parseOciDigest(value);
  } catch (error) {
    if (!isOciError(error)) throw error;
    throw new RegistryError('DIGEST_INVALID', error.message, undefined, { cause: error });
  }
}

/** Parses `alg:hex`; null for anything but a valid sha256 or sha512 digest. */
export function tryParseDigest(value: string): ParsedDigest | null {
  try {
    return parseOciDigest(value);
  } catch {
    return null;
  }
}

export function isValidRepositoryName(name: string): boolean {
  return name.length <= MAX_REPOSITORY_NAME_LENGTH && isValidRepository(name);
}

export function assertRepositoryName(name: string): void {
  if (!isValidRepositoryName(name)) {
    throw new RegistryError(
      'NAME_INVALID',
      `invalid repository name ${JSON.stringify(name.slice(0, 300))}: use lower-case path components such as "team/app" (at most ${MAX_REPOSITORY_NAME_LENGTH} characters)`,
    );
  }
}

export function assertTag(tag: string): void {
  if (!isValidTag(tag)) {
    throw new RegistryError(
      'TAG_INVALID',
      `invalid tag ${JSON.stringify(tag.slice(0, 200))}: a tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`,
    );
  }
}

export interface ParsedManifest {
  kind: 'image' | 'index';
  /** The media type from Content-Type or the body, whichever names one. */
  mediaType: string;
  artifactType?: string;
  config?: Descriptor;
  layers: Descriptor[];
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

/**
 * Parses manifest bytes of an OCI image manifest or index or a Docker schema 2 manifest or list.
 * `contentType` is the Content-Type of a push or the stored media type; the size limit is the
 * store's, checked before this call.
 */
export function parseManifest(bytes: Buffer, contentType: string): ParsedManifest {
  let parsed;
  try {
    parsed = parseOciManifest(bytes, contentType, { maxBytes: Number.MAX_SAFE_INTEGER });
  } catch (error) {
    if (!isOciError(error)) throw error;
    throw new RegistryError('MANIFEST_INVALID', error.message, undefined, { cause: error });
  }
  const result: ParsedManifest =
    parsed.kind === 'index'
      ? { kind: 'index', mediaType: parsed.mediaType, layers: [], manifests: parsed.manifests }
      : {
          kind: 'image',
          mediaType: parsed.mediaType,
          config: parsed.config,
          layers: parsed.layers,
          manifests: [],
        };
  if (parsed.artifactType !== undefined) result.artifactType = parsed.artifactType;
  if (parsed.subject !== undefined) result.subject = parsed.subject;
  if (parsed.manifest.annotations !== undefined) result.annotations = parsed.manifest.annotations;
  return result;
}

/** Config and layer descriptors of an image manifest (none for an index). */
export function blobsOf(parsed: ParsedManifest): Descriptor[] {
  return parsed.config ? [parsed.config, ...parsed.layers] : [...parsed.layers];
}
