import { parseDigest, type Digest } from './digest.js';
import { OciError } from './errors.js';

/** A fully qualified image reference. */
export interface Reference {
  /** Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  registry: string;
  /** Repository path inside the registry, e.g. `library/nginx` or `team/app/api`. */
  repository: string;
  tag?: string;
  digest?: Digest;
}

export interface ParseReferenceOptions {
  /** Registry used when the input names none; default `docker.io`, as Docker does. */
  defaultRegistry?: string;
}

export const DOCKER_HUB_REGISTRY = 'docker.io';
/** Host that serves the Docker Hub distribution API. */
export const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);
export const DEFAULT_TAG = 'latest';

/** Maximum length of a repository name including the registry, as in the distribution reference grammar. */
const MAX_NAME_LENGTH = 255;

// Distribution reference grammar (distribution/reference and the OCI distribution spec).
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;
const IPV6_HOST = /^\[[a-fA-F0-9:.]+\]$/;

function invalid(input: string, reason: string): OciError {
  return new OciError(
    'INVALID_REFERENCE',
    `Invalid image reference ${JSON.stringify(input.length > 300 ? `${input.slice(0, 300)}…` : input)}: ${reason}.`,
  );
}

/** Validates a registry host as `host[:port]` (DNS name, IPv4 or bracketed IPv6). */
export function isValidRegistryHost(host: string): boolean {
  let name = host;
  let port: string | undefined;
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end < 0) return false;
    name = host.slice(0, end + 1);
    const rest = host.slice(end + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return false;
      port = rest.slice(1);
    }
    if (!IPV6_HOST.test(name)) return false;
  } else {
    const colon = host.lastIndexOf(':');
    if (colon >= 0) {
      name = host.slice(0, colon);
      port = host.slice(colon + 1);
    }
    if (name === '' || !name.split('.').every((part) => DOMAIN_COMPONENT.test(part))) return false;
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) return false;
  return true;
}

/** Validates a repository path such as `library/nginx`. */
export function isValidRepository(repository: string): boolean {
  return repository !== '' && repository.split('/').every((part) => PATH_COMPONENT.test(part));
}

export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

// Docker's rule: the first path component is a registry host only when it contains a dot or
// a colon, is `localhost`, or contains an uppercase letter (repositories are lowercase).
function looksLikeRegistry(component: string): boolean {
  return (
    component.includes('.') ||
    component.includes(':') ||
    component === 'localhost' ||
    component !== component.toLowerCase()
  );
}

/**
 * Parses `[registry/]repository[:tag][@digest]` with Docker Hub normalisation: a missing
 * registry becomes `docker.io`, `index.docker.io` becomes `docker.io`, and a single-component
 * Docker Hub repository gets the `library/` prefix. A missing tag stays missing; use
 * {@link manifestReference} for the `latest` default.
 */
export function parseReference(input: string, options: ParseReferenceOptions = {}): Reference {
  if (input === '') throw invalid(input, 'it is empty');
  if (/\s/.test(input)) throw invalid(input, 'it contains whitespace');

  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const digestText = rest.slice(at + 1);
    try {
      digest = parseDigest(digestText).digest;
    } catch (error) {
      throw invalid(input, `the digest is not valid (${(error as Error).message})`);
    }
    rest = rest.slice(0, at);
  }

  let registry: string | undefined;
  const slash = rest.indexOf('/');
  if (slash >= 0 && looksLikeRegistry(rest.slice(0, slash))) {
    registry = rest.slice(0, slash);
    rest = rest.slice(slash + 1);
    if (!isValidRegistryHost(registry))
      throw invalid(input, `"${registry}" is not a valid registry host`);
  }

  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!isValidTag(tag)) {
      throw invalid(
        input,
        `"${tag}" is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)`,
      );
    }
  }

  let repository = rest;
  if (repository === '') throw invalid(input, 'the repository name is missing');
  if (repository !== repository.toLowerCase()) {
    throw invalid(input, 'repository names must be lowercase');
  }
  if (!isValidRepository(repository)) {
    throw invalid(
      input,
      `"${repository}" is not a valid repository path (lowercase letters and digits separated by . _ __ - or /)`,
    );
  }

  registry = normaliseRegistry(registry ?? options.defaultRegistry ?? DOCKER_HUB_REGISTRY);
  if (registry === DOCKER_HUB_REGISTRY && !repository.includes('/')) {
    repository = `library/${repository}`;
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw invalid(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }

  const reference: Reference = { registry, repository };
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

function normaliseRegistry(registry: string): string {
  return DOCKER_HUB_ALIASES.has(registry.toLowerCase()) ? DOCKER_HUB_REGISTRY : registry;
}

/** Formats a reference as `registry/repository[:tag][@digest]`. */
export function formatReference(reference: Reference): string {
  let text = `${reference.registry}/${reference.repository}`;
  if (reference.tag !== undefined) text += `:${reference.tag}`;
  if (reference.digest !== undefined) text += `@${reference.digest}`;
  return text;
}

/**
 * Formats a reference the way Docker shows it: without `docker.io/` and `library/`.
 */
export function formatFamiliarReference(reference: Reference): string {
  let name = `${reference.registry}/${reference.repository}`;
  if (reference.registry === DOCKER_HUB_REGISTRY) {
    name = reference.repository.startsWith('library/')
      ? reference.repository.slice('library/'.length)
      : reference.repository;
  }
  if (reference.tag !== undefined) name += `:${reference.tag}`;
  if (reference.digest !== undefined) name += `@${reference.digest}`;
  return name;
}

/** Returns what the manifest endpoint needs: the digest when present, else the tag, else `latest`. */
export function manifestReference(reference: Reference): string {
  return reference.digest ?? reference.tag ?? DEFAULT_TAG;
}

/** Returns the host that serves the distribution API for a registry name. */
export function registryEndpointHost(registry: string): string {
  return registry === DOCKER_HUB_REGISTRY ? DOCKER_HUB_ENDPOINT : registry;
}
