import { OciError } from './errors.js';

/** Platform of an index entry (OCI image-spec, image index `platform`). */
export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  features?: string[];
}

/** A platform filter such as `linux/amd64` or `linux/arm64/v8`. */
export interface PlatformFilter {
  os: string;
  architecture: string;
  variant?: string;
}

const FILTER_PART = /^[a-z0-9_.-]+$/;

// Aliases that toolchains report for the same architecture (uname, Debian, Go).
const ARCHITECTURE_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
  i686: '386',
};

// Variants assumed when a descriptor names none, as containerd's platform matcher does:
// arm64 without a variant is v8, and arm without a variant is v7.
const DEFAULT_VARIANTS: Record<string, string> = { arm64: 'v8', arm: 'v7' };

/** Parses `os/architecture[/variant]`, e.g. `linux/arm64/v8`. */
export function parsePlatformFilter(input: string): PlatformFilter {
  const parts = input.trim().toLowerCase().split('/');
  if (parts.length < 2 || parts.length > 3 || !parts.every((part) => FILTER_PART.test(part))) {
    throw new OciError(
      'INVALID_PLATFORM',
      `Invalid platform ${JSON.stringify(input)}: expected "os/architecture[/variant]", for example "linux/amd64" or "linux/arm64/v8".`,
    );
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  const filter: PlatformFilter = { os, architecture: normaliseArchitecture(architecture) };
  if (variant !== undefined) filter.variant = variant;
  return filter;
}

export function formatPlatform(
  platform: Pick<Platform, 'os' | 'architecture' | 'variant'>,
): string {
  const base = `${platform.os}/${platform.architecture}`;
  return platform.variant === undefined || platform.variant === ''
    ? base
    : `${base}/${platform.variant}`;
}

function normaliseArchitecture(architecture: string): string {
  const lower = architecture.toLowerCase();
  return ARCHITECTURE_ALIASES[lower] ?? lower;
}

function effectiveVariant(architecture: string, variant: string | undefined): string | undefined {
  if (variant !== undefined && variant !== '') return variant.toLowerCase();
  return DEFAULT_VARIANTS[architecture];
}

/**
 * Tells whether a platform satisfies a filter. OS and architecture must be equal after alias
 * normalisation. A filter without a variant accepts every variant, and a filter with one
 * requires it. An arm64 platform without a variant counts as v8, an arm one as v7.
 */
export function matchesPlatform(
  platform: Pick<Platform, 'os' | 'architecture' | 'variant'> | undefined,
  filter: PlatformFilter | string,
): boolean {
  if (platform === undefined) return false;
  const expected = typeof filter === 'string' ? parsePlatformFilter(filter) : filter;
  const architecture = normaliseArchitecture(platform.architecture);
  if (platform.os.toLowerCase() !== expected.os.toLowerCase()) return false;
  if (architecture !== normaliseArchitecture(expected.architecture)) return false;
  if (expected.variant === undefined) return true;
  return (
    effectiveVariant(architecture, platform.variant) ===
    effectiveVariant(architecture, expected.variant)
  );
}

/** Tells whether a platform satisfies any of the filters; an empty list accepts everything. */
export function matchesAnyPlatform(
  platform: Pick<Platform, 'os' | 'architecture' | 'variant'> | undefined,
  filters: readonly (PlatformFilter | string)[],
): boolean {
  if (filters.length === 0) return true;
  return filters.some((filter) => matchesPlatform(platform, filter));
}
