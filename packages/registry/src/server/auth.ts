import { createHash, timingSafeEqual } from 'node:crypto';
import { RegistryError } from '../errors.js';

export interface Credential {
  username: string;
  password: string;
}

/**
 * Basic authentication for clients. Pull is anonymous unless `pull` lists credentials, and push
 * credentials may pull too. Push needs one of `push`, or of `pull` when `push` is empty, so
 * configuring only pull credentials never leaves push open.
 */
export interface AuthOptions {
  pull?: Credential[];
  push?: Credential[];
  realm?: string;
}

type Access = 'pull' | 'push';

function hashSecret(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Parses `Authorization: Basic ...`; null when absent or not Basic. */
function parseBasic(header: string | undefined): Credential | null {
  if (header === undefined) return null;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!match) return null;
  const decoded = Buffer.from(match[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function listed(list: Credential[], given: Credential): boolean {
  const password = hashSecret(given.password);
  let found = false;
  // Compares every entry so the time taken does not reveal which user matched.
  for (const entry of list) {
    const sameUser = timingSafeEqual(hashSecret(entry.username), hashSecret(given.username));
    const samePassword = timingSafeEqual(hashSecret(entry.password), password);
    found = found || (sameUser && samePassword);
  }
  return found;
}

export class Authenticator {
  readonly realm: string;
  private readonly pull: Credential[];
  private readonly push: Credential[];

  constructor(options: AuthOptions = {}) {
    this.realm = options.realm ?? 'edge-registry';
    this.pull = options.pull ?? [];
    this.push = options.push ?? [];
  }

  /** Credentials that may perform `access`; empty when it is open to anonymous clients. */
  private allowedFor(access: Access): Credential[] {
    if (access === 'pull') {
      return this.pull.length > 0 ? [...this.pull, ...this.push] : [];
    }
    return this.push.length > 0 ? this.push : this.pull;
  }

  /** Throws UNAUTHORIZED (401) or DENIED (403) when the request may not perform `access`. */
  authorize(header: string | undefined, access: Access): void {
    const allowed = this.allowedFor(access);
    if (allowed.length === 0) return;
    const presented = parseBasic(header);
    if (!presented) {
      throw new RegistryError(
        'UNAUTHORIZED',
        `authentication required for ${access}: send Basic credentials`,
      );
    }
    if (listed(allowed, presented)) return;
    if (access === 'push' && listed(this.pull, presented)) {
      throw new RegistryError(
        'DENIED',
        `user ${presented.username} may pull but not push: use push credentials`,
      );
    }
    throw new RegistryError('UNAUTHORIZED', 'invalid username or password: check the credentials');
  }
}
