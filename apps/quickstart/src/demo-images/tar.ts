/**
 * A small ustar (POSIX.1-1988) writer for the demo image layers. Every header field is fixed
 * except name, mode, size and type, so the same entries always produce the same bytes.
 */

export const TAR_BLOCK_BYTES = 512;

/** Modification time of every entry, in seconds since the epoch (2024-01-01T00:00:00Z). */
export const TAR_MTIME_SECONDS = 1_704_067_200;

/** ustar limits: the name field has 100 bytes and the prefix field 155. */
const NAME_FIELD_BYTES = 100;
const PREFIX_FIELD_BYTES = 155;

/** Largest size that fits the 11 octal digits of the size field: 8 GiB minus one byte. */
const MAX_ENTRY_BYTES = 0o77777777777;

export type TarEntry =
  | { type: 'directory'; path: string; mode?: number }
  | { type: 'file'; path: string; content: Buffer; mode?: number };

const DEFAULT_FILE_MODE = 0o644;
const DEFAULT_DIRECTORY_MODE = 0o755;

function writeString(header: Buffer, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) {
    throw new RangeError(`tar header field of ${length} bytes cannot hold "${value}"`);
  }
  bytes.copy(header, offset);
}

/** Octal number padded with zeros, followed by a NUL, as ustar numeric fields are. */
function writeOctal(header: Buffer, offset: number, length: number, value: number): void {
  writeString(header, offset, length, `${value.toString(8).padStart(length - 1, '0')}\0`);
}

/** Splits a path into the ustar prefix and name fields at a slash, when it is too long for name. */
function splitPath(path: string): { prefix: string; name: string } {
  if (Buffer.byteLength(path) <= NAME_FIELD_BYTES) return { prefix: '', name: path };
  for (let cut = path.indexOf('/'); cut !== -1; cut = path.indexOf('/', cut + 1)) {
    const prefix = path.slice(0, cut);
    const name = path.slice(cut + 1);
    if (
      Buffer.byteLength(prefix) <= PREFIX_FIELD_BYTES &&
      Buffer.byteLength(name) <= NAME_FIELD_BYTES
    ) {
      return { prefix, name };
    }
  }
  throw new RangeError(
    `tar path "${path}" is too long for ustar: use at most 100 bytes after the last split point ` +
      'and 155 before it',
  );
}

function normalisePath(entry: TarEntry): string {
  if (entry.path === '' || entry.path.startsWith('/') || entry.path.split('/').includes('..')) {
    throw new RangeError(
      `tar path "${entry.path}" is invalid: use a relative path without ".." components`,
    );
  }
  const trimmed = entry.path.replace(/\/+$/, '');
  return entry.type === 'directory' ? `${trimmed}/` : trimmed;
}

/** Builds the 512-byte ustar header of one entry, owned by root (uid and gid 0). */
export function tarHeader(entry: TarEntry): Buffer {
  const size = entry.type === 'file' ? entry.content.length : 0;
  if (size > MAX_ENTRY_BYTES) {
    throw new RangeError(`tar entry "${entry.path}" has ${size} bytes; ustar allows at most 8 GiB`);
  }
  const { prefix, name } = splitPath(normalisePath(entry));
  const mode = entry.mode ?? (entry.type === 'file' ? DEFAULT_FILE_MODE : DEFAULT_DIRECTORY_MODE);
  const header = Buffer.alloc(TAR_BLOCK_BYTES);
  writeString(header, 0, 100, name);
  writeOctal(header, 100, 8, mode);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, size);
  writeOctal(header, 136, 12, TAR_MTIME_SECONDS);
  // The checksum is computed with its own field filled with spaces.
  header.fill(' ', 148, 156);
  header.write(entry.type === 'file' ? '0' : '5', 156, 'ascii');
  writeString(header, 257, 6, 'ustar\0');
  writeString(header, 263, 2, '00');
  writeString(header, 265, 32, 'root');
  writeString(header, 297, 32, 'root');
  writeOctal(header, 329, 8, 0);
  writeOctal(header, 337, 8, 0);
  writeString(header, 345, PREFIX_FIELD_BYTES, prefix);
  let checksum = 0;
  for (const byte of header) checksum += byte;
  writeString(header, 148, 8, `${checksum.toString(8).padStart(6, '0')}\0 `);
  return header;
}

/**
 * Yields the archive block by block: each header, the content padded to 512 bytes, then the two
 * zero blocks that end an archive. Entries keep the caller's order, so parents should come first.
 */
export function* tarBlocks(entries: readonly TarEntry[]): Generator<Buffer> {
  const seen = new Set<string>();
  for (const entry of entries) {
    const path = normalisePath(entry);
    if (seen.has(path)) throw new RangeError(`tar path "${path}" appears twice`);
    seen.add(path);
    yield tarHeader(entry);
    if (entry.type === 'file' && entry.content.length > 0) {
      yield entry.content;
      const padding =
        (TAR_BLOCK_BYTES - (entry.content.length % TAR_BLOCK_BYTES)) % TAR_BLOCK_BYTES;
      if (padding > 0) yield Buffer.alloc(padding);
    }
  }
  yield Buffer.alloc(TAR_BLOCK_BYTES * 2);
}
