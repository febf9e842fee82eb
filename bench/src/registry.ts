// Pull benchmark of the embedded registry against docker-registry 2.8 (CNCF Distribution)
// holding the same test-kit images: `skopeo copy` of the large layer image and of the whole
// image set, the two servers alternating. Run with `pnpm bench:registry` (`--smoke`: a 1 MiB
// large layer and one pair; `--profile DIR`: the embedded server runs under `node --cpu-prof` and
// the script prints its hottest functions) after `pnpm build`.
import { rm, readFile, writeFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  buildTestImages,
  getFreePort,
  isSmokeMode,
  measureCommand,
  printTable,
  pushTestImages,
  runAlternating,
  spawnProcess,
  startRegistry,
  waitForHttp,
  writeBenchResults,
  type Figure,
  type ManagedProcess,
  type Measurement,
  type RegistryHandle,
  type TestImage,
  type TestImages,
} from '@edge/testkit';
import { formatProfile, summarizeProfile } from './fleet/profile.js';

const CLI_PATH = join(import.meta.dirname, '..', '..', 'packages', 'registry', 'dist', 'cli.js');
/** skopeo's blob location cache (root); removed before each run so no run reuses another's hints. */
const SKOPEO_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';
const PAIRS = 7;
const WARMUP = 1;
const SMOKE_LARGE_LAYER_MIB = 1;

interface Server {
  handle: RegistryHandle;
  pid: number;
}

async function spawnServe(args: string[], url: string): Promise<ManagedProcess> {
  const child = spawnProcess(process.execPath, args, { name: 'edge-registry' });
  await waitForHttp(`${url}/v2/`, { process: child });
  return child;
}

/**
 * Starts `node packages/registry/dist/cli.js serve` over `root` on a free loopback port, under
 * `--cpu-prof` when `profileDir` is set (the profile is written when the server exits).
 */
async function startEmbedded(
  root: string,
  push: boolean,
  profileDir?: string,
): Promise<RegistryHandle> {
  const port = await getFreePort();
  const url = `http://127.0.0.1:${port}`;
  const profile = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir];
  const args = [...profile, CLI_PATH, 'serve', '--root', root, '--listen', `127.0.0.1:${port}`];
  args.push('--log-level', 'warn', ...(push ? ['--push'] : []));
  const handle: RegistryHandle = {
    url,
    host: `127.0.0.1:${port}`,
    dataDir: root,
    process: await spawnServe(args, url),
    stop: () => handle.process.stop(),
    restart: async () => {
      await handle.process.stop();
      handle.process = await spawnServe(args, url);
    },
  };
  return handle;
}

function copyArgs(host: string, image: TestImage, destination: string): string[] {
  const isIndex = image.mediaType.includes('index') || image.mediaType.includes('manifest.list');
  return [
    'copy',
    '--quiet',
    '--preserve-digests',
    ...(isIndex ? ['--all'] : []),
    '--src-tls-verify=false',
    `docker://${host}/${image.repository}:${image.tag}`,
    `oci:${destination}:${image.layoutTag}`,
  ];
}

/** Peak RSS of a running process since its last reset, in bytes (Linux /proc). */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux x86 and arm). */
const CLOCK_TICKS_PER_SECOND = 100;

/** User plus system CPU time of a running process, in milliseconds (Linux /proc). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name in parentheses start at field 3 (state); utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** Resets the peak RSS counter of a process (writing 5 to clear_refs, Linux 4.0 and later). */
async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

async function pullSide(
  server: Server,
  images: TestImage[],
  scratch: string,
): Promise<Measurement> {
  const destination = join(scratch, `out-${server.pid}`);
  await rm(destination, { recursive: true, force: true });
  await rm(SKOPEO_CACHE, { force: true });
  // One shell runs the copies in order, so the figure covers the whole set; GNU time reports
  // the largest RSS among the shell's children, which is skopeo's.
  const script = images
    .map((image) => `skopeo ${copyArgs(server.handle.host, image, destination).join(' ')}`)
    .join(' && ');
  return measureCommand('sh', ['-c', script]);
}

async function compare(
  name: string,
  embedded: Server,
  distribution: Server,
  images: TestImage[],
  scratch: string,
): Promise<Figure[]> {
  await resetPeakRss(embedded.pid);
  await resetPeakRss(distribution.pid);
  const cpuBefore = [await cpuMs(embedded.pid), await cpuMs(distribution.pid)];
  const comparison = await runAlternating({
    name,
    pairs: PAIRS,
    warmup: WARMUP,
    a: { label: 'embedded', run: () => pullSide(embedded, images, scratch) },
    b: { label: 'docker-registry', run: () => pullSide(distribution, images, scratch) },
  });
  const serverA = await peakRss(embedded.pid);
  const serverB = await peakRss(distribution.pid);
  // runAlternating runs each side pairs + warm-up times (no warm-up in smoke mode).
  const runs = comparison.pairs + (isSmokeMode() ? 0 : WARMUP);
  const cpuA = ((await cpuMs(embedded.pid)) - (cpuBefore[0] ?? 0)) / runs;
  const cpuB = ((await cpuMs(distribution.pid)) - (cpuBefore[1] ?? 0)) / runs;
  return [
    ...comparison.figures.map((figure) => ({ ...figure, name: `${name} ${figure.name}` })),
    {
      name: `${name} server peak RSS`,
      unit: 'bytes',
      value: serverA,
      peer: serverB,
      ratio: serverB > 0 ? serverA / serverB : null,
    },
    {
      name: `${name} server cpuMs per run`,
      unit: 'ms',
      value: cpuA,
      peer: cpuB,
      ratio: cpuB > 0 ? cpuA / cpuB : null,
    },
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { smoke: { type: 'boolean', default: false }, profile: { type: 'string' } },
  });
  const smoke = values.smoke || isSmokeMode();
  const profileDir = values.profile === undefined ? undefined : resolve(values.profile);
  const images: TestImages = await buildTestImages(
    smoke ? { largeLayerMiB: SMOKE_LARGE_LAYER_MIB } : {},
  );
  const scratch = await mkdtemp(join(tmpdir(), 'bench-registry-'));
  const root = join(scratch, 'store');
  let distribution: RegistryHandle | undefined;
  let embedded: RegistryHandle | undefined;
  try {
    distribution = await startRegistry();
    await pushTestImages(distribution, images);
    // Filled over the push API, then restarted read-only as a site would run it.
    const filling = await startEmbedded(root, true);
    await pushTestImages(filling, images);
    await filling.stop();
    embedded = await startEmbedded(root, false, profileDir);

    const a: Server = { handle: embedded, pid: embedded.process.pid };
    const b: Server = { handle: distribution, pid: distribution.process.pid };
    const all = Object.values(images.images);
    const large = all.filter((image) => image.name === 'large:1');
    const figures = [
      ...(await compare('large layer', a, b, large, scratch)),
      ...(await compare('image set', a, b, all, scratch)),
    ];
    printTable(figures);
    const path = await writeBenchResults('registry', figures, {
      smoke,
      images: all.map((image) => image.name),
      totalBytes: images.totalBytes,
      client: 'skopeo copy --preserve-digests to an OCI layout',
      peer: 'docker-registry 2.8 (Debian package), filesystem storage',
    });
    process.stdout.write(`results: ${path}\n`);
    if (profileDir !== undefined) {
      await embedded.stop();
      const summary = await summarizeProfile(profileDir);
      process.stdout.write(`${formatProfile('embedded registry, both scenarios', summary)}\n`);
    }
  } finally {
    await embedded?.stop();
    await distribution?.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `bench:registry failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
});
