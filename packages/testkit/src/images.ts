import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import {
  chmod,
  copyFile,
  lutimes,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { TestkitError } from './errors.js';
import {
  DOCKER_CONFIG,
  DOCKER_LAYER_GZIP,
  DOCKER_MANIFEST,
  OCI_EMPTY,
  OCI_INDEX,
  OCI_MANIFEST,
} from './media-types.js';
import { runCommand } from './process.js';

/** Bump when the recipe below changes, so caches of the old recipe are not reused. */
const RECIPE_VERSION = 1;
/** The static busybox of the Debian package busybox-static: the root file system of every image. */
const BUSYBOX_PATH = '/bin/busybox';
/** Default size of the pseudo-random layer of large:1, in MiB. */
const DEFAULT_LARGE_LAYER_MIB = 200;
/** Timestamp of every file, history entry and config, so digests do not depend on build time. */
const FIXED_TIME = '2024-01-01T00:00:00Z';
const FIXED_DATE = new Date(FIXED_TIME);
const METADATA_FILE = 'testkit-images.json';
/** Age after which a build folder counts as left by a crash, in milliseconds; a build takes seconds. */
const STALE_BUILD_MS = 60 * 60 * 1000;
const PRNG_CHUNK_BYTES = 1024 * 1024;
const MIB = 1024 * 1024;

/** One tagged test image or artifact inside the OCI layout. */
export interface TestImage {
  /** Short name, e.g. 'app-a:1'. */
  name: string;
  /** Repository it is pushed to, e.g. 'test/app-a'. */
  repository: string;
  tag: string;
  /** Digest of the manifest or index. */
  digest: string;
  mediaType: string;
  /** Size of the manifest or index in bytes. */
  size: number;
  /** Tag of the image inside the OCI layout, e.g. 'app-a-1'. */
  layoutTag: string;
}

/** The referrers tag-schema fallback of OCI distribution-spec 1.1 for app-a:1's artifact. */
export interface ReferrersIndex {
  repository: string;
  /** 'sha256-<hex of the subject digest>' */
  tag: string;
  digest: string;
  bytes: Buffer;
  mediaType: string;
}

export interface TestImages {
  /** OCI image layout that contains every image; read only. */
  layoutDir: string;
  images: Record<string, TestImage>;
  /** Every config and layer blob of the images, each once. */
  blobs: { digest: string; size: number }[];
  /** Sum of `blobs` sizes, in bytes. */
  totalBytes: number;
  referrersIndex: ReferrersIndex;
}

export interface BuildTestImagesOptions {
  /** Size of the pseudo-random layer of large:1, in MiB (default 200). */
  largeLayerMiB?: number;
  /** Folder of the cache (default `<os tmpdir>/edge-testkit-images`). */
  cacheDir?: string;
}

interface ImageSpec {
  name: string;
  repository: string;
  tag: string;
  layoutTag: string;
}

const IMAGE_SPECS: ImageSpec[] = [
  { name: 'base:1', repository: 'test/base', tag: '1', layoutTag: 'base-1' },
  { name: 'app-a:1', repository: 'test/app-a', tag: '1', layoutTag: 'app-a-1' },
  { name: 'app-a:2', repository: 'test/app-a', tag: '2', layoutTag: 'app-a-2' },
  { name: 'app-b:1', repository: 'test/app-b', tag: '1', layoutTag: 'app-b-1' },
  { name: 'arm64:1', repository: 'test/arm64', tag: '1', layoutTag: 'arm64-1' },
  { name: 'multi:1', repository: 'test/multi', tag: '1', layoutTag: 'multi-1' },
  { name: 'docker:1', repository: 'test/docker', tag: '1', layoutTag: 'docker-1' },
  { name: 'large:1', repository: 'test/large', tag: '1', layoutTag: 'large-1' },
  { name: 'app-a:sig', repository: 'test/app-a', tag: 'sig', layoutTag: 'sig-app-a-1' },
];
const REFERRERS_LAYOUT_TAG = 'referrers-app-a-1';

const descriptorSchema = z.object({
  mediaType: z.string(),
  digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
  annotations: z.record(z.string(), z.string()).optional(),
});
type Descriptor = z.infer<typeof descriptorSchema>;

const layoutIndexSchema = z.looseObject({
  manifests: z.array(z.looseObject(descriptorSchema.shape)),
});
const imageManifestSchema = z.looseObject({
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
});
const indexManifestSchema = z.looseObject({ manifests: z.array(descriptorSchema) });

const metadataSchema = z.object({
  recipeVersion: z.literal(RECIPE_VERSION),
  key: z.string(),
  images: z.record(
    z.string(),
    z.object({
      name: z.string(),
      repository: z.string(),
      tag: z.string(),
      digest: z.string(),
      mediaType: z.string(),
      size: z.number(),
      layoutTag: z.string(),
    }),
  ),
  blobs: z.array(z.object({ digest: z.string(), size: z.number() })),
  totalBytes: z.number(),
  referrersIndex: z.object({
    repository: z.string(),
    tag: z.string(),
    digest: z.string(),
    mediaType: z.string(),
  }),
});
type Metadata = z.infer<typeof metadataSchema>;

const LARGE_LAYER_MIB_SCHEMA = z.number().int().min(1).max(4096);

// One build per cache folder and process; parallel vitest workers coordinate through the rename.
const pendingBuilds = new Map<string, Promise<TestImages>>();

/**
 * Builds the deterministic OCI test images offline with umoci and busybox-static, or returns the
 * cached set. The cache key hashes the recipe version, the options and the busybox binary, so the
 * same inputs give the same digests on every run.
 */
export async function buildTestImages(opts: BuildTestImagesOptions = {}): Promise<TestImages> {
  const largeLayerMiB = opts.largeLayerMiB ?? DEFAULT_LARGE_LAYER_MIB;
  const parsed = LARGE_LAYER_MIB_SCHEMA.safeParse(largeLayerMiB);
  if (!parsed.success) {
    throw new TestkitError(
      'INVALID_OPTIONS',
      `buildTestImages: largeLayerMiB ${largeLayerMiB} is invalid; give a whole number from 1 to 4096`,
    );
  }
  const cacheDir = opts.cacheDir ?? join(tmpdir(), 'edge-testkit-images');
  const key = await cacheKey(largeLayerMiB);
  const finalDir = join(cacheDir, key);
  const pending = pendingBuilds.get(finalDir);
  if (pending) return pending;
  const build = loadOrBuild(cacheDir, finalDir, key, largeLayerMiB);
  pendingBuilds.set(finalDir, build);
  build.catch(() => pendingBuilds.delete(finalDir));
  return build;
}

async function cacheKey(largeLayerMiB: number): Promise<string> {
  const busybox = await sha256File(BUSYBOX_PATH).catch((err: unknown) => {
    throw new TestkitError(
      'IMAGE_BUILD_FAILED',
      `cannot read ${BUSYBOX_PATH}: ${String(err)}; install the Debian package busybox-static`,
      { cause: err },
    );
  });
  const recipe = JSON.stringify({ recipeVersion: RECIPE_VERSION, largeLayerMiB, busybox });
  return createHash('sha256').update(recipe).digest('hex').slice(0, 16);
}

async function loadOrBuild(
  cacheDir: string,
  finalDir: string,
  key: string,
  largeLayerMiB: number,
): Promise<TestImages> {
  const cached = await loadCached(finalDir);
  if (cached) return cached;
  await mkdir(cacheDir, { recursive: true });
  await removeStaleBuilds(cacheDir);
  const workDir = join(cacheDir, `.build-${key}-${randomBytes(6).toString('hex')}`);
  try {
    await mkdir(workDir);
    await buildInto(workDir, key, largeLayerMiB);
    try {
      await rename(workDir, finalDir);
    } catch (err) {
      // Another worker renamed its complete build into place first: use that one.
      if (!isErrno(err, 'ENOTEMPTY') && !isErrno(err, 'EEXIST')) throw err;
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  const loaded = await loadCached(finalDir);
  if (!loaded) {
    throw new TestkitError(
      'IMAGE_CACHE_INVALID',
      `test image cache ${finalDir} is unreadable right after a build; delete the folder and retry`,
    );
  }
  return loaded;
}

/** Removes build folders that a crashed process left behind; live builds are far younger. */
async function removeStaleBuilds(cacheDir: string): Promise<void> {
  for (const entry of await readdir(cacheDir, { withFileTypes: true })) {
    if (!entry.isDirectory() || !entry.name.startsWith('.build-')) continue;
    const path = join(cacheDir, entry.name);
    const info = await stat(path).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_BUILD_MS) {
      await rm(path, { recursive: true, force: true });
    }
  }
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && 'code' in err && err.code === code;
}

async function loadCached(finalDir: string): Promise<TestImages | undefined> {
  let text: string;
  try {
    text = await readFile(join(finalDir, METADATA_FILE), 'utf8');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  const result = metadataSchema.safeParse(JSON.parse(text));
  if (!result.success) {
    throw new TestkitError(
      'IMAGE_CACHE_INVALID',
      `test image cache ${finalDir} has invalid metadata (${z.prettifyError(result.error)}); ` +
        'delete the folder to rebuild it',
    );
  }
  const layoutDir = join(finalDir, 'layout');
  const meta = result.data;
  const bytes = await readFile(blobPath(layoutDir, meta.referrersIndex.digest));
  if (sha256Digest(bytes) !== meta.referrersIndex.digest) {
    throw new TestkitError(
      'IMAGE_CACHE_INVALID',
      `test image cache ${finalDir}: referrers index blob does not match its digest; ` +
        'delete the folder to rebuild it',
    );
  }
  return {
    layoutDir,
    images: meta.images,
    blobs: meta.blobs,
    totalBytes: meta.totalBytes,
    referrersIndex: { ...meta.referrersIndex, bytes },
  };
}

function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', 'sha256', digest.replace(/^sha256:/, ''));
}

function sha256Digest(bytes: Buffer | string): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return `sha256:${hash.digest('hex')}`;
}

/**
 * Writes `bytes` of AES-256-CTR keystream keyed by sha256(seed): pseudo-random, incompressible
 * and identical for the same seed. It equals `openssl enc -aes-256-ctr -K <key> -iv 0` over zeros.
 */
async function writePseudoRandomFile(path: string, seed: string, bytes: number): Promise<void> {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(PRNG_CHUNK_BYTES);
  function* keystream(): Generator<Buffer> {
    for (let left = bytes; left > 0; left -= PRNG_CHUNK_BYTES) {
      yield cipher.update(left >= PRNG_CHUNK_BYTES ? zeros : zeros.subarray(0, left));
    }
  }
  await pipeline(Readable.from(keystream()), createWriteStream(path));
}

/**
 * Creates the files that go into the images, with fixed modes so the umask does not matter.
 * NOTE: layers record the files' owner, so a build by a user other than root gives other digests.
 */
async function writeSources(srcDir: string, largeLayerMiB: number): Promise<void> {
  const rootfs = join(srcDir, 'rootfs');
  for (const dir of ['bin', 'etc', 'tmp']) await mkdir(join(rootfs, dir), { recursive: true });
  await copyFile(BUSYBOX_PATH, join(rootfs, 'bin', 'busybox'));
  await chmod(join(rootfs, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'ls', 'cat', 'echo']) {
    await symlink('busybox', join(rootfs, 'bin', applet));
  }
  await writeFile(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n', {
    mode: 0o644,
  });
  await writePseudoRandomFile(join(srcDir, 'a.bin'), 'app-a', 5 * MIB);
  await writePseudoRandomFile(join(srcDir, 'a2.bin'), 'app-a-2', 1 * MIB);
  await writePseudoRandomFile(join(srcDir, 'b.bin'), 'app-b', 3 * MIB);
  await writePseudoRandomFile(join(srcDir, 'arm64.bin'), 'arm64', 2 * MIB);
  await writePseudoRandomFile(join(srcDir, 'large.bin'), 'large', largeLayerMiB * MIB);
  await writeFile(join(srcDir, 'arch.txt'), 'arm64 variant\n');
  await pinModesAndTimes(srcDir);
}

async function pinModesAndTimes(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      await pinModesAndTimes(path);
      await chmod(path, 0o755);
    } else if (entry.isFile() && entry.name !== 'busybox') {
      await chmod(path, 0o644);
    }
    await lutimes(path, FIXED_DATE, FIXED_DATE);
  }
  await lutimes(dir, FIXED_DATE, FIXED_DATE);
}

async function umoci(args: string[]): Promise<void> {
  await runCommand('umoci', args, { name: 'umoci' });
}

/** Builds the images with umoci: each image is a copy of its base plus one more layer. */
async function buildUmociImages(layout: string, srcDir: string): Promise<void> {
  const ref = (tag: string) => `${layout}:${tag}`;
  const insert = (tag: string, source: string, target: string) =>
    umoci(['insert', '--image', ref(tag), '--history.created', FIXED_TIME, source, target]);
  const derive = async (from: string, to: string, source: string, target: string) => {
    await umoci(['tag', '--image', ref(from), to]);
    await insert(to, source, target);
  };

  await umoci(['init', '--layout', layout]);
  await umoci(['new', '--image', ref('base-1')]);
  await umoci([
    'config',
    '--image',
    ref('base-1'),
    '--created',
    FIXED_TIME,
    '--architecture',
    'amd64',
    '--os',
    'linux',
    '--config.cmd',
    '/bin/sh',
    '--no-history',
  ]);
  await insert('base-1', join(srcDir, 'rootfs'), '/');
  await derive('base-1', 'app-a-1', join(srcDir, 'a.bin'), '/data/a.bin');
  await derive('app-a-1', 'app-a-2', join(srcDir, 'a2.bin'), '/data/a2.bin');
  await derive('base-1', 'app-b-1', join(srcDir, 'b.bin'), '/data/b.bin');
  await umoci(['tag', '--image', ref('base-1'), 'arm64-1']);
  await umoci([
    'config',
    '--image',
    ref('arm64-1'),
    '--architecture',
    'arm64',
    '--os',
    'linux',
    '--no-history',
  ]);
  await insert('arm64-1', join(srcDir, 'arm64.bin'), '/data/arm64.bin');
  await insert('arm64-1', join(srcDir, 'arch.txt'), '/etc/arch.txt');
  await derive('base-1', 'large-1', join(srcDir, 'large.bin'), '/data/large.bin');
}

/** Read access and additions to an OCI layout's blobs and index.json. */
class Layout {
  constructor(readonly dir: string) {}

  async readIndex(): Promise<z.infer<typeof layoutIndexSchema>> {
    return layoutIndexSchema.parse(
      JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8')),
    );
  }

  async descriptor(tag: string): Promise<Descriptor> {
    const index = await this.readIndex();
    const found = index.manifests.find(
      (d) => d.annotations?.['org.opencontainers.image.ref.name'] === tag,
    );
    if (!found) {
      throw new TestkitError('IMAGE_BUILD_FAILED', `tag ${tag} not found in layout ${this.dir}`);
    }
    return { mediaType: found.mediaType, digest: found.digest, size: found.size };
  }

  async readBlob(digest: string): Promise<Buffer> {
    return readFile(blobPath(this.dir, digest));
  }

  /** Stores `bytes` as a blob and returns its descriptor. */
  async writeBlob(mediaType: string, bytes: Buffer | string): Promise<Descriptor> {
    const buffer = Buffer.from(bytes);
    const digest = sha256Digest(buffer);
    await writeFile(blobPath(this.dir, digest), buffer);
    return { mediaType, digest, size: buffer.length };
  }

  /** Stores a manifest blob and tags it in index.json. */
  async addTagged(tag: string, mediaType: string, manifest: unknown): Promise<Descriptor> {
    const descriptor = await this.writeBlob(mediaType, JSON.stringify(manifest));
    const index = await this.readIndex();
    index.manifests.push({
      ...descriptor,
      annotations: { 'org.opencontainers.image.ref.name': tag },
    });
    await writeFile(join(this.dir, 'index.json'), JSON.stringify(index));
    return descriptor;
  }
}

/** Adds the manifests umoci cannot make: the index, the Docker image, the artifact, referrers. */
async function addHandMadeManifests(layout: Layout): Promise<Descriptor> {
  const appA = await layout.descriptor('app-a-1');
  const arm64 = await layout.descriptor('arm64-1');
  await layout.addTagged('multi-1', OCI_INDEX, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [
      { ...appA, platform: { architecture: 'amd64', os: 'linux' } },
      { ...arm64, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    ],
  });

  // docker:1 reuses app-b:1's blobs under Docker schema 2 media types: the bytes of an OCI
  // config and gzip layer are valid Docker ones.
  const appB = imageManifestSchema.parse(
    JSON.parse((await layout.readBlob((await layout.descriptor('app-b-1')).digest)).toString()),
  );
  await layout.addTagged('docker-1', DOCKER_MANIFEST, {
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: DOCKER_CONFIG, size: appB.config.size, digest: appB.config.digest },
    layers: appB.layers.map((l) => ({
      mediaType: DOCKER_LAYER_GZIP,
      size: l.size,
      digest: l.digest,
    })),
  });

  const signatureType = 'application/vnd.example.signature.v1+json';
  const emptyConfig = await layout.writeBlob(OCI_EMPTY, '{}');
  const signature = await layout.writeBlob(
    signatureType,
    JSON.stringify({
      critical: { image: { 'docker-manifest-digest': appA.digest } },
      note: 'test',
    }),
  );
  const artifact = await layout.addTagged('sig-app-a-1', OCI_MANIFEST, {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    artifactType: signatureType,
    config: { ...emptyConfig, data: 'e30=' },
    layers: [signature],
    subject: appA,
  });
  return layout.addTagged(REFERRERS_LAYOUT_TAG, OCI_INDEX, {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ ...artifact, artifactType: signatureType }],
  });
}

/** Collects the config and layer blobs of a manifest, following an index to its children. */
async function collectBlobs(
  layout: Layout,
  descriptor: Descriptor,
  into: Map<string, number>,
): Promise<void> {
  const json: unknown = JSON.parse((await layout.readBlob(descriptor.digest)).toString());
  if (descriptor.mediaType === OCI_INDEX) {
    for (const child of indexManifestSchema.parse(json).manifests) {
      await collectBlobs(layout, child, into);
    }
    return;
  }
  const manifest = imageManifestSchema.parse(json);
  for (const blob of [manifest.config, ...manifest.layers]) into.set(blob.digest, blob.size);
}

async function buildInto(workDir: string, key: string, largeLayerMiB: number): Promise<void> {
  const srcDir = join(workDir, 'src');
  const layoutDir = join(workDir, 'layout');
  try {
    await writeSources(srcDir, largeLayerMiB);
    await buildUmociImages(layoutDir, srcDir);
  } catch (err) {
    throw new TestkitError(
      'IMAGE_BUILD_FAILED',
      `building test images in ${workDir} failed: ${String(err)}; ` +
        'check that umoci and busybox-static are installed',
      { cause: err },
    );
  }
  await rm(srcDir, { recursive: true, force: true });
  const layout = new Layout(layoutDir);
  const referrers = await addHandMadeManifests(layout);

  const images: Metadata['images'] = {};
  const blobs = new Map<string, number>();
  for (const spec of IMAGE_SPECS) {
    const descriptor = await layout.descriptor(spec.layoutTag);
    images[spec.name] = { ...spec, ...descriptor };
    await collectBlobs(layout, descriptor, blobs);
  }
  const appA = images['app-a:1'];
  if (!appA) throw new TestkitError('IMAGE_BUILD_FAILED', 'app-a:1 missing after the build');
  const metadata: Metadata = {
    recipeVersion: RECIPE_VERSION,
    key,
    images,
    blobs: [...blobs].map(([digest, size]) => ({ digest, size })),
    totalBytes: [...blobs.values()].reduce((sum, size) => sum + size, 0),
    referrersIndex: {
      repository: 'test/app-a',
      tag: appA.digest.replace('sha256:', 'sha256-'),
      digest: referrers.digest,
      mediaType: OCI_INDEX,
    },
  };
  // The metadata file is written last: a folder without it is an unfinished build.
  await writeFile(join(workDir, METADATA_FILE), JSON.stringify(metadata, null, 2));
}
