import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RegistryError } from '../errors.js';
import { createDigester, type DigestAlgorithm } from '../oci.js';

export interface WrittenBlob {
  digest: string;
  size: number;
}

/**
 * Streams `source` into `path` (created or appended), hashing and counting the bytes on the way.
 * Stops with SIZE_INVALID as soon as more than `maxSize` bytes arrive.
 */
export async function streamToFile(
  source: Readable,
  path: string,
  options: {
    algorithm: DigestAlgorithm;
    maxSize?: number;
    append?: boolean;
    onChunk?: (chunk: Buffer) => void;
  },
): Promise<WrittenBlob> {
  const digester = createDigester(options.algorithm);
  let size = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      size += chunk.length;
      if (options.maxSize !== undefined && size > options.maxSize) {
        callback(
          new RegistryError(
            'SIZE_INVALID',
            `blob is larger than the expected ${options.maxSize} bytes: send exactly the declared size`,
          ),
        );
        return;
      }
      digester.update(chunk);
      options.onChunk?.(chunk);
      callback(null, chunk);
    },
  });
  await pipeline(source, meter, createWriteStream(path, { flags: options.append ? 'a' : 'wx' }));
  return { digest: digester.digest(), size };
}

/** Hashes a whole file by streaming it (used when no running hash of an upload exists). */
export async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<WrittenBlob> {
  const digester = createDigester(algorithm);
  let size = 0;
  await pipeline(createReadStream(path), async function (chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) {
      size += chunk.length;
      digester.update(chunk);
    }
  });
  return { digest: digester.digest(), size };
}

export async function fsyncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
