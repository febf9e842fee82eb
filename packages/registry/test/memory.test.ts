import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { RegistryHandle } from '@edge/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciStore } from '../src/index.js';
import { startEmbeddedRegistry } from './embedded.js';

// Serving must stream from disk: the server's peak RSS after sending a 200 MiB blob may exceed
// its peak after an 8 MiB blob by far less than the blob size.
const MIB = 1024 * 1024;
const SMALL_BYTES = 8 * MIB;
const LARGE_BYTES = 200 * MIB;
/** Allowed growth of the peak RSS between the two transfers (stream buffers, GC timing). */
const MAX_PEAK_GROWTH_BYTES = 48 * MIB;

let root: string;
let server: RegistryHandle;
const blobs: Record<'small' | 'large', { digest: string; size: number }> = {
  small: { digest: '', size: 0 },
  large: { digest: '', size: 0 },
};

function randomStream(size: number): Readable {
  let left = size;
  return new Readable({
    read() {
      const chunk = Math.min(left, MIB);
      left -= chunk;
      this.push(chunk > 0 ? randomBytes(chunk) : null);
    },
  });
}

async function peakRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return Number(match?.[1] ?? 0) * 1024;
}

async function download(digest: string): Promise<{ digest: string; size: number }> {
  const response = await fetch(`${server.url}/v2/test/large/blobs/${digest}`);
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'registry-memory-'));
  const store = await OciStore.open(root);
  blobs.small = await store.putBlob(randomStream(SMALL_BYTES));
  blobs.large = await store.putBlob(randomStream(LARGE_BYTES));
  await store.close();
  server = await startEmbeddedRegistry({ root });
});

afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('blob serving memory', () => {
  it('peak RSS does not grow with blob size', async () => {
    expect(await download(blobs.small.digest)).toEqual(blobs.small);
    const afterSmall = await peakRssBytes(server.process.pid);
    expect(await download(blobs.large.digest)).toEqual(blobs.large);
    const afterLarge = await peakRssBytes(server.process.pid);
    expect(afterLarge - afterSmall).toBeLessThan(MAX_PEAK_GROWTH_BYTES);
  });
});
