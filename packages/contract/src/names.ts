import { z } from 'zod';

// Grammar from the OCI distribution spec (path components and tags) and the OCI image spec
// (digests). Kept here so that both apps reject the same names.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
export const REPOSITORY_PATTERN = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
export const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const DIGEST_PATTERN = /^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
/** `os/arch` or `os/arch/variant`, as in `linux/arm64/v8`. */
export const PLATFORM_PATTERN = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;
/** A DNS label: lowercase letters, digits and inner hyphens, at most 63 characters. */
export const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Maximum repository name length, from the distribution spec's recommendation. */
export const REPOSITORY_MAX_LENGTH = 255;

export const repositorySchema = z
  .string()
  .max(REPOSITORY_MAX_LENGTH)
  .regex(REPOSITORY_PATTERN, 'must be an OCI repository name such as "library/alpine"');
export const tagSchema = z.string().regex(TAG_PATTERN, 'must be an OCI tag such as "1.2.3"');
export const digestSchema = z
  .string()
  .regex(DIGEST_PATTERN, 'must be a digest such as "sha256:<64 hex characters>"');
export const platformSchema = z
  .string()
  .regex(PLATFORM_PATTERN, 'must be a platform such as "linux/amd64" or "linux/arm64/v8"');
export const mediaTypeSchema = z.string().min(1).max(255);
/** Names of satellites, groups, configs, registries and users. */
export const nameSchema = z
  .string()
  .regex(NAME_PATTERN, 'must be a lowercase DNS label: a-z, 0-9 and inner "-", 1 to 63 characters');
export const idSchema = z.uuid();
/** RFC 3339 timestamp with a UTC offset, as produced by `Date.prototype.toISOString`. */
export const timestampSchema = z.iso.datetime({ offset: true });
