import { randomBytes, randomInt } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnProcess } from '@edge/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciStore } from '../src/index.js';
import { startEmbeddedRegistry } from './embedded.js';
import { sha256 } from './fixtures.js';

// Kills writers with SIGKILL at random moments and checks the store after each restart. It must
// be consistent: every recorded manifest, child and blob present, every blob file matching its
// digest. Its tags must be those of the acknowledged writes, plus at most the one in flight.
const WRITER_PATH = join(import.meta.dirname, '..', 'dist', 'testing', 'crash-writer.js');
const STORE_KILLS = 20;
const HTTP_KILLS = 8;
/** Random run time before each kill, in milliseconds: from inside the first write to a few writes. */
const MIN_RUN_MS = 20;
const MAX_RUN_MS = 400;
/** How long a writer may take to open the store and journal `ready`, in milliseconds. */
const WRITER_START_TIMEOUT_MS = 10_000;

type Tags = Record<string, string>;

let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'registry-crash-'));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function waitForLine(path: string, line: string): Promise<void> {
  const deadline = Date.now() + WRITER_START_TIMEOUT_MS;
  while (!(await readFile(path, 'utf8').catch(() => '')).includes(line)) {
    if (Date.now() > deadline)
      throw new Error(`${path} has no line ${line} after ${WRITER_START_TIMEOUT_MS} ms`);
    await sleep(10);
  }
}

async function currentTags(root: string): Promise<{ tags: Tags; problems: unknown[] }> {
  const store = await OciStore.open(root);
  try {
    const problems = await store.check({ verifyBlobContent: true });
    const tags: Tags = {};
    for (const repository of await store.listRepositories()) {
      for (const tag of await store.listTags(repository)) {
        tags[`${repository}:${tag}`] = store.statManifest(repository, tag)?.digest ?? 'missing';
      }
    }
    return { tags, problems };
  } finally {
    // The next writer or server must be able to take the store's lock.
    await store.close();
  }
}

/** Applies one journal operation (`put repo tag digest` or `delete repo digest`) to a tag map. */
function apply(tags: Tags, operation: string[]): void {
  const [kind, repository, first, second] = operation;
  if (kind === 'put' && second !== undefined) tags[`${repository}:${first}`] = second;
  if (kind === 'delete') {
    for (const [key, digest] of Object.entries(tags)) {
      if (key.startsWith(`${repository}:`) && digest === first) delete tags[key];
    }
  }
}

/** Expected tags from the journal: after the acknowledged operations, and with the one in flight. */
function expectedFromJournal(text: string, start: Tags): { acknowledged: Tags; withPending: Tags } {
  const acknowledged = { ...start };
  let pending: string[] | undefined;
  for (const line of text.split('\n')) {
    const [state, ...operation] = line.split(' ');
    if (state === 'begin') pending = operation;
    if (state === 'done') {
      apply(acknowledged, operation);
      pending = undefined;
    }
  }
  const withPending = { ...acknowledged };
  if (pending) apply(withPending, pending);
  return { acknowledged, withPending };
}

describe('crash safety', () => {
  it('store survives SIGKILL of a writer', async () => {
    const root = join(scratch, 'store');
    let tags: Tags = {};
    let killedDuringWork = 0;
    for (let round = 0; round < STORE_KILLS; round += 1) {
      const journal = join(scratch, `journal-${round}.txt`);
      const writer = spawnProcess(
        process.execPath,
        [WRITER_PATH, root, journal, String(randomInt(1, 2 ** 31))],
        {
          name: 'crash-writer',
        },
      );
      await waitForLine(journal, 'ready');
      await sleep(randomInt(MIN_RUN_MS, MAX_RUN_MS));
      writer.kill9();
      const exit = await writer.exited;
      expect(exit.signal).toBe('SIGKILL');
      const text = await readFile(journal, 'utf8').catch(() => '');
      if (text.includes('begin')) killedDuringWork += 1;
      const expected = expectedFromJournal(text, tags);
      const actual = await currentTags(root);
      expect(actual.problems).toEqual([]);
      expect([expected.acknowledged, expected.withPending]).toContainEqual(actual.tags);
      tags = actual.tags;
    }
    // Most rounds must have killed the writer in the middle of its work, not before it started.
    expect(killedDuringWork).toBeGreaterThan(STORE_KILLS * 0.8);
  });

  it('store survives SIGKILL of the server during pushes', async () => {
    const root = join(scratch, 'http');
    let tags: Tags = {};
    for (let round = 0; round < HTTP_KILLS; round += 1) {
      const server = await startEmbeddedRegistry({ push: true, root });
      const acknowledged = { ...tags };
      const pending: Tags = {};
      let stopped = false;
      const pushing = (async () => {
        for (let n = 0; !stopped; n += 1) {
          const tag = `r${round}-${n % 3}`;
          const digest = await pushImage(server.url, 'crash/http', tag, pending);
          if (digest) {
            acknowledged[`crash/http:${tag}`] = digest;
            delete pending[`crash/http:${tag}`];
          }
        }
      })().catch(() => undefined);
      await sleep(randomInt(MIN_RUN_MS, MAX_RUN_MS * 2));
      server.process.kill9();
      stopped = true;
      await server.process.exited;
      await pushing;
      const actual = await currentTags(root);
      expect(actual.problems).toEqual([]);
      const allowed = [
        acknowledged,
        ...Object.entries(pending).map(([key, digest]) => ({ ...acknowledged, [key]: digest })),
      ];
      expect(allowed).toContainEqual(actual.tags);
      tags = actual.tags;
    }
  });
});

/** Pushes one image with chunked uploads; returns its digest once the manifest PUT returned 201. */
async function pushImage(
  url: string,
  repository: string,
  tag: string,
  pending: Tags,
): Promise<string | undefined> {
  const layer = randomBytes(randomInt(64 * 1024, 1536 * 1024));
  const start = await fetch(`${url}/v2/${repository}/blobs/uploads/`, { method: 'POST' });
  let location = start.headers.get('location') ?? '';
  const chunk = 256 * 1024;
  for (let offset = 0; offset < layer.length; offset += chunk) {
    const body = layer.subarray(offset, offset + chunk);
    const response = await fetch(`${url}${location}`, {
      method: 'PATCH',
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Range': `${offset}-${offset + body.length - 1}`,
      },
      body,
    });
    location = response.headers.get('location') ?? location;
  }

  const finished = await fetch(`${url}${location}?digest=${sha256(layer)}`, { method: 'PUT' });
  if (finished.status !== 201) return undefined;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', tag }));
  const configPut = await fetch(`${url}/v2/${repository}/blobs/uploads/?digest=${sha256(config)}`, {
    method: 'POST',
    body: config,
  });
  if (configPut.status !== 201) return undefined;
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha256(config),
        size: config.length,
      },
      layers: [
        { mediaType: 'application/octet-stream', digest: sha256(layer), size: layer.length },
      ],
    }),
  );

  pending[`${repository}:${tag}`] = sha256(manifest);
  const put = await fetch(`${url}/v2/${repository}/manifests/${tag}`, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  return put.status === 201 ? sha256(manifest) : undefined;
}
