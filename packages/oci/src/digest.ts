import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { OciError } from './errors.js';

/** A content digest in the form `algorithm:hex`, for example `sha256:e3b0…`. */
export type Digest = string;

export type DigestAlgorithm = 'sha256' | 'sha512';

export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = ['sha256', 'sha512'];

/** Hex length per registered algorithm (OCI image-spec, descriptor digests). */
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

// Generic digest grammar from the OCI image-spec: algorithm components joined by + . _ -
// then a colon and an encoded part. Registered algorithms are checked more strictly below.
const DIGEST_GRAMMAR = /^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
  digest: Digest;
}

/**
 * Parses and validates a digest. Only sha256 and sha512 are accepted, with lowercase hex of
 * the exact length, because those are the algorithms the OCI image-spec registers.
 */
export function parseDigest(input: string): ParsedDigest {
  if (!DIGEST_GRAMMAR.test(input)) {
    throw new OciError(
      'INVALID_DIGEST',
      `Invalid digest ${JSON.stringify(truncate(input))}: expected "sha256:<64 lowercase hex>".`,
    );
  }
  const colon = input.indexOf(':');
  const algorithm = input.slice(0, colon);
  const hex = input.slice(colon + 1);
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new OciError(
      'UNSUPPORTED_DIGEST_ALGORITHM',
      `Unsupported digest algorithm "${truncate(algorithm)}" in ${JSON.stringify(truncate(input))}: use sha256 or sha512.`,
    );
  }
  const expectedLength = HEX_LENGTH[algorithm];
  if (hex.length !== expectedLength || !/^[a-f0-9]+$/.test(hex)) {
    throw new OciError(
      'INVALID_DIGEST',
      `Invalid ${algorithm} digest ${JSON.stringify(truncate(input))}: expected ${expectedLength} lowercase hex characters.`,
    );
  }
  return { algorithm, hex, digest: input };
}

export function isDigest(input: unknown): boolean {
  if (typeof input !== 'string') return false;
  try {
    parseDigest(input);
    return true;
  } catch {
    return false;
  }
}

/** Validates a digest and returns it unchanged. */
export function assertDigest(input: string): Digest {
  return parseDigest(input).digest;
}

/** Returns the algorithm of a valid digest. */
export function digestAlgorithm(digest: Digest): DigestAlgorithm {
  return parseDigest(digest).algorithm;
}

/** Incremental hasher over raw bytes. Call `digest()` once, at the end. */
export interface Digester {
  readonly algorithm: DigestAlgorithm;
  /** Bytes hashed so far. */
  readonly bytes: number;
  update(chunk: Uint8Array): void;
  digest(): Digest;
}

export function createDigester(algorithm: DigestAlgorithm = 'sha256'): Digester {
  const hash: Hash = createHash(algorithm);
  let bytes = 0;
  return {
    algorithm,
    get bytes() {
      return bytes;
    },
    update(chunk: Uint8Array) {
      hash.update(chunk);
      bytes += chunk.byteLength;
    },
    digest() {
      return `${algorithm}:${hash.digest('hex')}`;
    },
  };
}

export function digestOf(
  bytes: Uint8Array | string,
  algorithm: DigestAlgorithm = 'sha256',
): Digest {
  return `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`;
}

export interface VerifyingStreamOptions {
  expected: Digest;
  /** Expected byte count; the stream fails as soon as more arrive, or at the end if fewer. */
  size?: number;
  /** Hasher already fed with earlier bytes, so a resumed download verifies the whole blob. */
  digester?: Digester;
}

/**
 * Creates a pass-through stream that hashes what flows through it and fails at the end
 * with `DIGEST_MISMATCH` or `SIZE_MISMATCH`, so a consumer never gets a clean end of stream on bad data.
 */
export function createVerifyingStream(options: VerifyingStreamOptions): Transform {
  const { algorithm } = parseDigest(options.expected);
  const digester = options.digester ?? createDigester(algorithm);
  const size = options.size;
  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      digester.update(chunk);
      if (size !== undefined && digester.bytes > size) {
        callback(sizeError(options.expected, size, digester.bytes, 'more than'));
        return;
      }
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (size !== undefined && digester.bytes !== size) {
        callback(sizeError(options.expected, size, digester.bytes, 'only'));
        return;
      }
      const actual = digester.digest();
      if (actual !== options.expected) {
        callback(
          new OciError(
            'DIGEST_MISMATCH',
            `Content does not match digest ${options.expected}: received bytes hash to ${actual}. Fetch it again or check the source registry.`,
          ),
        );
        return;
      }
      callback();
    },
  });
}

function sizeError(digest: Digest, size: number, received: number, how: string): OciError {
  return new OciError(
    'SIZE_MISMATCH',
    `Content ${digest} has ${how} the ${size} bytes its descriptor declares (received ${received}). Fetch it again or check the source registry.`,
  );
}

function truncate(value: string, max = 80): string {
  return value.length > max ? `${value.slice(0, max)}…` : value;
}
