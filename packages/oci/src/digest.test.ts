import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  createDigester,
  createVerifyingStream,
  digestOf,
  isDigest,
  parseDigest,
} from './digest.js';
import { OciError, type OciErrorCode } from './errors.js';

const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('parseDigest', () => {
  const valid: [string, string][] = [
    [EMPTY_SHA256, 'sha256'],
    [`sha512:${'0'.repeat(128)}`, 'sha512'],
  ];
  it.each(valid)('accepts %s', (input, algorithm) => {
    expect(parseDigest(input).algorithm).toBe(algorithm);
    expect(isDigest(input)).toBe(true);
  });

  const invalid: [string, OciErrorCode][] = [
    ['', 'INVALID_DIGEST'],
    ['sha256', 'INVALID_DIGEST'],
    ['sha256:', 'INVALID_DIGEST'],
    [`sha256:${'a'.repeat(63)}`, 'INVALID_DIGEST'],
    [`sha256:${'a'.repeat(65)}`, 'INVALID_DIGEST'],
    [`sha256:${'A'.repeat(64)}`, 'INVALID_DIGEST'],
    [`sha256:${'g'.repeat(64)}`, 'INVALID_DIGEST'],
    [`sha512:${'a'.repeat(64)}`, 'INVALID_DIGEST'],
    [`SHA256:${'a'.repeat(64)}`, 'INVALID_DIGEST'],
    [`md5:${'a'.repeat(32)}`, 'UNSUPPORTED_DIGEST_ALGORITHM'],
    [`sha384:${'a'.repeat(96)}`, 'UNSUPPORTED_DIGEST_ALGORITHM'],
    [`multihash+base58:${'a'.repeat(40)}`, 'UNSUPPORTED_DIGEST_ALGORITHM'],
  ];
  it.each(invalid)('rejects %j with %s', (input, code) => {
    expect(() => parseDigest(input)).toThrow(OciError);
    expect(() => parseDigest(input)).toThrow(expect.objectContaining({ code }));
    expect(isDigest(input)).toBe(false);
  });
});

describe('digestOf and createDigester', () => {
  it('hashes the empty input', () => {
    expect(digestOf(new Uint8Array())).toBe(EMPTY_SHA256);
  });

  it('matches node:crypto for sha512', () => {
    const expected = `sha512:${createHash('sha512').update('abc').digest('hex')}`;
    expect(digestOf('abc', 'sha512')).toBe(expected);
  });

  it('hashes incrementally and counts bytes', () => {
    const digester = createDigester('sha256');
    digester.update(Buffer.from('ab'));
    digester.update(Buffer.from('c'));
    expect(digester.bytes).toBe(3);
    expect(digester.digest()).toBe(digestOf('abc'));
  });
});

async function drain(source: Readable, verifier: ReturnType<typeof createVerifyingStream>) {
  let received = 0;
  await pipeline(
    source,
    verifier,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        callback();
      },
    }),
  );
  return received;
}

describe('createVerifyingStream', () => {
  const data = Buffer.from('hello world');

  it('passes matching content', async () => {
    const received = await drain(
      Readable.from([data.subarray(0, 4), data.subarray(4)]),
      createVerifyingStream({ expected: digestOf(data), size: data.length }),
    );
    expect(received).toBe(data.length);
  });

  const failing: [string, Buffer, number | undefined, OciErrorCode][] = [
    ['other bytes', Buffer.from('hello worle'), undefined, 'DIGEST_MISMATCH'],
    ['short content', data.subarray(0, 5), data.length, 'SIZE_MISMATCH'],
    ['long content', Buffer.concat([data, data]), data.length, 'SIZE_MISMATCH'],
  ];
  it.each(failing)('fails on %s', async (_name, bytes, size, code) => {
    const verifier = createVerifyingStream(
      size === undefined ? { expected: digestOf(data) } : { expected: digestOf(data), size },
    );
    await expect(drain(Readable.from([bytes]), verifier)).rejects.toMatchObject({ code });
  });
});
