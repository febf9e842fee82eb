// Test helper, not part of the public API: a process that writes to a store without pause, so a
// crash test can kill it with SIGKILL at random points. Each operation is journaled as
// `begin <op>` before and `done <op>` after, with synchronous appends that survive SIGKILL.
//
// usage: node dist/testing/crash-writer.js STORE_ROOT JOURNAL_FILE SEED
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isRegistryError } from '../errors.js';
import { digestOf } from '../oci.js';
import { OciStore } from '../store/store.js';

const REPOSITORIES = ['crash/r0', 'crash/r1', 'crash/r2'];
const MAX_BLOB_BYTES = 1024 * 1024;
const CHUNK_BYTES = 64 * 1024;

/** xorshift32, so a failing run can be repeated from its seed. */
function createRandom(seed: number): (limit: number) => number {
  let state = seed >>> 0 || 1;
  return (limit) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % limit;
  };
}

function chunked(bytes: Buffer): Readable {
  return Readable.from(
    (async function* () {
      for (let offset = 0; offset < bytes.length; offset += CHUNK_BYTES) {
        await new Promise((resolve) => setImmediate(resolve));
        yield bytes.subarray(offset, offset + CHUNK_BYTES);
      }
    })(),
  );
}

async function main(): Promise<void> {
  const [root, journal, seedText] = process.argv.slice(2);
  if (root === undefined || journal === undefined) {
    throw new Error('usage: crash-writer.js STORE_ROOT JOURNAL_FILE SEED');
  }
  const random = createRandom(Number(seedText ?? '1'));
  const store = await OciStore.open(root, { gcGracePeriodMs: 0 });
  const log = (line: string): void => appendFileSync(journal, `${line}\n`);
  log('ready');
  for (let step = 0; ; step += 1) {
    const repository = REPOSITORIES[random(REPOSITORIES.length)] as string;
    const choice = random(10);
    try {
      if (choice < 6) {
        await putImage(store, repository, `t${random(6)}`, random, log);
      } else if (choice < 8) {
        const manifests = await store.listManifests(repository);
        const victim = manifests[random(Math.max(1, manifests.length))];
        if (victim) {
          log(`begin delete ${repository} ${victim.digest}`);
          await store.deleteManifest(repository, victim.digest);
          log(`done delete ${repository} ${victim.digest}`);
        }
      } else {
        log('begin gc');
        await store.collectGarbage();
        log('done gc');
      }
    } catch (error) {
      // Deleting an index child is rejected, and with a grace period of 0 a collection may remove
      // blobs before their manifest arrives. Both are expected here and only journaled.
      if (!isRegistryError(error)) throw error;
      log(`rejected ${error.code} step ${step}`);
    }
  }
}

async function putImage(
  store: OciStore,
  repository: string,
  tag: string,
  random: (limit: number) => number,
  log: (line: string) => void,
): Promise<void> {
  // Journaled so that a kill while blobs are written counts as a kill during work. The journal
  // reader applies only put and delete operations, so this line changes no expected tag.
  log(`begin blobs ${repository} ${tag}`);
  const layers: { mediaType: string; digest: string; size: number }[] = [];
  for (let i = 0; i < 1 + random(3); i += 1) {
    const bytes = randomBytes(1 + random(MAX_BLOB_BYTES));
    if (random(2) === 0) {
      const written = await store.putBlob(chunked(bytes), {
        digest: digestOf(bytes),
        size: bytes.length,
      });
      layers.push({ mediaType: 'application/octet-stream', ...written });
    } else {
      const path = join(store.tempDir(), `adopt-${process.pid}-${i}`);
      await writeFile(path, bytes);
      await store.adoptBlobFile(path, digestOf(bytes), bytes.length);
      layers.push({
        mediaType: 'application/octet-stream',
        digest: digestOf(bytes),
        size: bytes.length,
      });
    }
  }

  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', nonce: random(1e9) }),
  );
  const configDescriptor = {
    mediaType: 'application/vnd.oci.image.config.v1+json',
    ...(await store.putBlob(Readable.from([config]))),
  };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: configDescriptor,
      layers,
    }),
  );
  const digest = digestOf(manifest);
  log(`begin put ${repository} ${tag} ${digest}`);
  await store.putManifest(repository, tag, manifest, 'application/vnd.oci.image.manifest.v1+json');
  log(`done put ${repository} ${tag} ${digest}`);
  // Now and then an index over two images of the repository, so deletes meet children.
  const manifests = await store.listManifests(repository);
  const images = manifests.filter((m) => m.mediaType.endsWith('manifest.v1+json')).slice(0, 2);
  if (images.length === 2 && random(3) === 0) {
    const sizes = await Promise.all(
      images.map(async (m) => (await store.statBlob(m.digest))?.size ?? 0),
    );
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: images.map((m, i) => ({
          mediaType: m.mediaType,
          digest: m.digest,
          size: sizes[i],
        })),
      }),
    );
    const indexDigest = digestOf(index);
    log(`begin put ${repository} index ${indexDigest}`);
    await store.putManifest(repository, 'index', index, 'application/vnd.oci.image.index.v1+json');
    log(`done put ${repository} index ${indexDigest}`);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `crash-writer failed: ${error instanceof Error ? error.stack : String(error)}\n`,
  );
  process.exitCode = 1;
});
