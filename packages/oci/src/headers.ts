/** One challenge of a `WWW-Authenticate` header (RFC 9110 section 11.6.1). */
export interface AuthChallenge {
  /** Auth scheme in lowercase, e.g. `basic` or `bearer`. */
  scheme: string;
  /** Parameters with lowercase names; values are unquoted. */
  params: Record<string, string>;
  token68?: string;
}

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;

class Cursor {
  position = 0;
  constructor(readonly text: string) {}

  get done(): boolean {
    return this.position >= this.text.length;
  }

  peek(offset = 0): string {
    return this.text.charAt(this.position + offset);
  }

  skipWhitespace(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.position++;
  }

  skipSeparators(): void {
    while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === ',') this.position++;
  }

  readWhile(pattern: RegExp): string {
    const start = this.position;
    while (!this.done && pattern.test(this.peek())) this.position++;
    return this.text.slice(start, this.position);
  }

  /** Reads a quoted-string starting at `"`; an unterminated string ends at the end of input. */
  readQuoted(): string {
    this.position++;
    let value = '';
    while (!this.done) {
      const char = this.peek();
      this.position++;
      if (char === '"') return value;
      if (char === '\\' && !this.done) {
        value += this.peek();
        this.position++;
      } else {
        value += char;
      }
    }
    return value;
  }
}

// Looks ahead for `token BWS "="` that starts an auth-param, telling it apart from a token68
// such as `abc==` that ends at a comma or at the end of the header.
function atAuthParam(cursor: Cursor): boolean {
  const saved = cursor.position;
  try {
    if (cursor.readWhile(TCHAR) === '') return false;
    cursor.skipWhitespace();
    if (cursor.peek() !== '=') return false;
    while (cursor.peek() === '=') cursor.position++;
    cursor.skipWhitespace();
    return !(cursor.done || cursor.peek() === ',');
  } finally {
    cursor.position = saved;
  }
}

/**
 * Parses a `WWW-Authenticate` value into its challenges: several challenges per header,
 * several parameters per challenge, quoted strings that contain commas or escapes, and
 * token68 credentials. Malformed tails are dropped instead of raising.
 */
export function parseWwwAuthenticate(header: string | string[] | undefined): AuthChallenge[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((value) => parseWwwAuthenticate(value));
  const cursor = new Cursor(header);
  const challenges: AuthChallenge[] = [];
  for (;;) {
    cursor.skipSeparators();
    if (cursor.done) break;
    const scheme = cursor.readWhile(TCHAR);
    if (scheme === '') break;
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    challenges.push(challenge);
    const hadSpace = cursor.peek() === ' ' || cursor.peek() === '\t';
    cursor.skipWhitespace();
    if (!hadSpace || cursor.done || cursor.peek() === ',') continue;

    if (!atAuthParam(cursor)) {
      const start = cursor.position;
      const token68 = cursor.readWhile(TOKEN68_CHAR) + cursor.readWhile(/=/);
      cursor.skipWhitespace();
      if (token68 !== '' && (cursor.done || cursor.peek() === ',')) {
        challenge.token68 = token68;
        continue;
      }
      // Neither a parameter nor a token68: this is the next challenge's scheme.
      cursor.position = start;
      continue;
    }

    for (;;) {
      const name = cursor.readWhile(TCHAR).toLowerCase();
      cursor.skipWhitespace();
      cursor.position++; // the "=" checked by atAuthParam
      cursor.skipWhitespace();
      const value = cursor.peek() === '"' ? cursor.readQuoted() : cursor.readWhile(TCHAR);
      if (!(name in challenge.params)) challenge.params[name] = value;
      cursor.skipWhitespace();
      if (cursor.peek() !== ',') break;
      cursor.skipSeparators();
      if (!atAuthParam(cursor)) break;
    }
  }
  return challenges;
}

/** One link of a `Link` header (RFC 8288). */
export interface LinkValue {
  /** Target exactly as given: relative or absolute. */
  uri: string;
  /** Relation types, lowercased, from the space-separated `rel` parameter. */
  rel: string[];
  params: Record<string, string>;
}

/** Parses a `Link` header; entries without `<…>` are skipped. */
export function parseLinkHeader(header: string | string[] | undefined): LinkValue[] {
  if (header === undefined) return [];
  if (Array.isArray(header)) return header.flatMap((value) => parseLinkHeader(value));
  const cursor = new Cursor(header);
  const links: LinkValue[] = [];
  while (!cursor.done) {
    cursor.skipSeparators();
    if (cursor.peek() !== '<') {
      // Skip a malformed entry up to the next comma.
      while (!cursor.done && cursor.peek() !== ',') cursor.position++;
      continue;
    }
    cursor.position++;
    const end = header.indexOf('>', cursor.position);
    if (end < 0) break;
    const uri = header.slice(cursor.position, end);
    cursor.position = end + 1;
    const params: Record<string, string> = {};
    for (;;) {
      cursor.skipWhitespace();
      if (cursor.peek() !== ';') break;
      cursor.position++;
      cursor.skipWhitespace();
      const name = cursor.readWhile(TCHAR).toLowerCase();
      cursor.skipWhitespace();
      let value = '';
      if (cursor.peek() === '=') {
        cursor.position++;
        cursor.skipWhitespace();
        value = cursor.peek() === '"' ? cursor.readQuoted() : cursor.readWhile(/[^;,\s]/);
      }
      if (name !== '' && !(name in params)) params[name] = value;
    }
    const rel = (params.rel ?? '').toLowerCase().split(/\s+/).filter(Boolean);
    links.push({ uri, rel, params });
  }
  return links;
}

/** Returns the target of the first `rel="next"` link, exactly as given. */
export function nextLink(header: string | string[] | undefined): string | undefined {
  return parseLinkHeader(header).find((link) => link.rel.includes('next'))?.uri;
}

/**
 * Parses `Retry-After` (RFC 9110 section 10.2.3) as delay-seconds or an HTTP-date and
 * returns the wait in seconds relative to `nowMs`, never negative; undefined when invalid.
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  // Only the HTTP-date forms: a weekday name starts each of them.
  if (!/^[A-Za-z]{3}/.test(trimmed)) return undefined;
  const dateMs = Date.parse(trimmed);
  if (Number.isNaN(dateMs)) return undefined;
  return Math.max(0, Math.ceil((dateMs - nowMs) / 1000));
}
