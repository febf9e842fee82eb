// Benchmark of @edge/oci against skopeo. Both copy the image with the large layer from one
// real docker-registry to another through a proxy that cuts every response after a fixed
// number of bytes, so a client either resumes with Range or starts over.
//
//   pnpm bench:oci            full run: 200 MiB layer, cut every 32 MiB, 3 pairs
//   pnpm bench:oci --smoke    tiny layer, one pair
//
// Each side runs as its own process under GNU time, so peak RSS is the copier's alone.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { copyArtifact, RegistryClient } from '@edge/oci';
// Types only: the measured child must not load the test kit (its registries, proxy and database
// helpers add about 5 to 9 MB of RSS to a process that only copies), so main() imports it lazily.
import type { Figure, Measurement, RegistryHandle } from '@edge/testkit';

const MIB = 1024 * 1024;
/** Size of the pseudo-random layer of large:1 in MiB (full run / smoke run). */
const LAYER_MIB = { full: 200, smoke: 4 };
/** The proxy cuts each response after this many body bytes (full run / smoke run). */
const CUT_EVERY_BYTES = { full: 32 * MIB, smoke: 1 * MIB };
/** Measured pairs after one warm-up round of each side. */
const PAIRS = 3;
/** skopeo's own retry count; it restarts the whole copy on each failure. */
const SKOPEO_RETRY_TIMES = 5;
/** Acceptance limits: downloaded bytes over content size, and peak RSS of the copier. */
const MAX_DOWNLOAD_RATIO = 1.05;
const MAX_PEAK_RSS_BYTES = 150 * 1000 * 1000;

const REPOSITORY = 'test/large';
const TAG = '1';
const CHILD_FLAG = '--copy-child';

/** Child mode: copy one image with @edge/oci and print the copy result as JSON. */
async function runChild(args: string[]): Promise<void> {
  const [sourceHost, destinationHost, spoolDirectory] = args;
  if (sourceHost === undefined || destinationHost === undefined || spoolDirectory === undefined) {
    throw new Error(`usage: node oci.js ${CHILD_FLAG} SOURCE_HOST DESTINATION_HOST SPOOL_DIR`);
  }
  const client = new RegistryClient({ plainHttp: true });
  let receivedBytes = 0;
  try {
    const result = await copyArtifact(
      { client, repo: { registry: sourceHost, repository: REPOSITORY } },
      { client, repo: { registry: destinationHost, repository: REPOSITORY } },
      TAG,
      { spoolDirectory, onProgress: (bytes) => (receivedBytes += bytes) },
    );
    process.stdout.write(`${JSON.stringify({ ...result, receivedBytes })}\n`);
  } finally {
    await client.close();
  }
}

/** GNU time 1.9 (Debian package `time`), which reports peak RSS even when the command fails. */
const GNU_TIME = '/usr/bin/time';

/**
 * Runs a command under GNU time like the test kit's measureCommand, but returns the figures of
 * a failed run as well (with `extra.succeeded` 0), because skopeo failing is a result here.
 */
async function measureRun(
  cmd: string,
  args: string[],
  timeFile: string,
): Promise<Measurement & { succeeded: boolean; stdout: string }> {
  const started = performance.now();
  let stdout = '';
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(GNU_TIME, ['-f', '%U %S %M', '-o', timeFile, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (text: string) => (stdout += text));
    child.on('error', reject);
    child.on('close', (exitCode) => resolve(exitCode));
  });
  const wallMs = performance.now() - started;
  const lines = (await readFile(timeFile, 'utf8')).trim().split('\n');
  const [user, system, maxRssKiB] = (lines.at(-1) ?? '').split(' ').map(Number);
  if (
    user === undefined ||
    system === undefined ||
    maxRssKiB === undefined ||
    [user, system, maxRssKiB].some(Number.isNaN)
  ) {
    throw new Error(`GNU time wrote no figures for ${cmd}: ${lines.join(' | ')}`);
  }
  return {
    wallMs,
    cpuMs: (user + system) * 1000,
    peakRssBytes: maxRssKiB * 1024,
    succeeded: code === 0,
    stdout,
  };
}

/** Reads the received byte count that the child prints as JSON on its last stdout line. */
function receivedBytesOf(stdout: string): number | undefined {
  const last = stdout.trim().split('\n').at(-1) ?? '';
  try {
    const value = (JSON.parse(last) as { receivedBytes?: unknown }).receivedBytes;
    return typeof value === 'number' ? value : undefined;
  } catch {
    return undefined;
  }
}

async function contentBytes(registry: RegistryHandle): Promise<number> {
  const client = new RegistryClient({ plainHttp: true });
  try {
    const fetched = await client.getManifest(
      { registry: registry.host, repository: REPOSITORY },
      TAG,
    );
    if (fetched.manifest.kind !== 'image')
      throw new Error(`${REPOSITORY}:${TAG} is not an image manifest`);
    const blobs = [fetched.manifest.config, ...fetched.manifest.layers];
    return fetched.size + blobs.reduce((sum, blob) => sum + blob.size, 0);
  } finally {
    await client.close();
  }
}

async function main(): Promise<void> {
  const {
    buildTestImages,
    isSmokeMode,
    printTable,
    pushTestImages,
    runAlternating,
    skopeoInspectRawDigest,
    startFaultProxy,
    startRegistry,
    writeBenchResults,
  } = await import('@edge/testkit');
  const smoke = isSmokeMode();
  const layerMiB = smoke ? LAYER_MIB.smoke : LAYER_MIB.full;
  const cutEvery = smoke ? CUT_EVERY_BYTES.smoke : CUT_EVERY_BYTES.full;
  const images = await buildTestImages({ largeLayerMiB: layerMiB });
  const expectedDigest = images.images[`large:${TAG}`]?.digest;
  if (expectedDigest === undefined) throw new Error('the test kit built no large:1 image');

  const source = await startRegistry({ auth: 'none' });
  let destination: RegistryHandle | undefined;
  const proxy = await startFaultProxy(source.url, { cutAfterBytes: cutEvery });
  const spoolRoot = await mkdtemp(join(tmpdir(), 'bench-oci-'));
  try {
    await pushTestImages(source, images, { only: [`large:${TAG}`] });
    const content = await contentBytes(source);

    // A fresh destination registry per run makes every copy cold for both sides, including
    // skopeo's blob-info cache, whose entries name the old registry's port.
    const freshDestination = async () => {
      await destination?.stop();
      destination = await startRegistry({ auth: 'none' });
      proxy.resetCounters();
    };
    const withTransfer = async (
      run: Measurement & { succeeded: boolean; stdout: string },
      label: string,
    ): Promise<Measurement> => {
      if (destination === undefined) throw new Error('no destination registry');
      // Body bytes the proxy wrote towards the copier, including bytes lost in each RST.
      const downloaded = proxy.counters.responseBytes;
      if (run.succeeded) {
        const copied = await skopeoInspectRawDigest(destination, `${REPOSITORY}:${TAG}`);
        if (copied !== expectedDigest) {
          throw new Error(
            `${label} copy arrived as ${copied}, expected ${expectedDigest}: the image is not intact`,
          );
        }
      } else if (label === 'edge-oci') {
        throw new Error('the edge-oci copy failed; its error output is above');
      }
      const { succeeded, stdout, ...measurement } = run;
      const extra: Record<string, number> = {
        downloadedBytes: downloaded,
        downloadRatio: downloaded / content,
        succeeded: succeeded ? 1 : 0,
      };
      // Only the edge-oci child reports what it received; skopeo has the proxy's count alone.
      const received = receivedBytesOf(stdout);
      if (received !== undefined) {
        extra.receivedBytes = received;
        extra.receivedRatio = received / content;
      }
      return { ...measurement, extra };
    };
    const script = fileURLToPath(import.meta.url);
    const timeFile = join(spoolRoot, 'time.txt');

    const comparison = await runAlternating({
      name: 'oci-copy-through-cuts',
      pairs: PAIRS,
      a: {
        label: 'edge-oci',
        before: freshDestination,
        run: async () => {
          const spool = await mkdtemp(join(spoolRoot, 'spool-'));
          try {
            const run = await measureRun(
              process.execPath,
              [script, CHILD_FLAG, proxy.host, destination?.host ?? '', spool],
              timeFile,
            );
            return await withTransfer(run, 'edge-oci');
          } finally {
            await rm(spool, { recursive: true, force: true });
          }
        },
      },
      b: {
        label: 'skopeo',
        before: freshDestination,
        run: async () => {
          const run = await measureRun(
            'skopeo',
            [
              'copy',
              '--quiet',
              '--retry-times',
              String(SKOPEO_RETRY_TIMES),
              '--src-tls-verify=false',
              '--dest-tls-verify=false',
              '--preserve-digests',
              `docker://${proxy.host}/${REPOSITORY}:${TAG}`,
              `docker://${destination?.host ?? ''}/${REPOSITORY}:${TAG}`,
            ],
            timeFile,
          );
          return withTransfer(run, 'skopeo');
        },
      },
    });

    const ours = comparison.a.stats;
    // The limit applies to the bytes the client received. The proxy's count is printed too; it
    // is higher because bytes still in flight at each RST are counted as sent but never arrive.
    const receivedRatio = ours.receivedRatio?.max ?? Number.POSITIVE_INFINITY;
    const proxyRatio = ours.downloadRatio?.max ?? Number.POSITIVE_INFINITY;
    const peakRss = ours.peakRssBytes?.max ?? Number.POSITIVE_INFINITY;
    const figures: Figure[] = [
      ...comparison.figures,
      { name: 'content size', unit: 'bytes', value: content },
      { name: 'edge-oci worst received ratio', unit: 'ratio', value: receivedRatio },
      { name: 'edge-oci worst proxy-side ratio', unit: 'ratio', value: proxyRatio },
      { name: 'edge-oci worst peak RSS', unit: 'bytes', value: peakRss },
    ];
    const path = await writeBenchResults('oci', figures, {
      layerMiB,
      cutEveryBytes: cutEvery,
      pairs: comparison.pairs,
      skopeoRetryTimes: SKOPEO_RETRY_TIMES,
      limits: { maxDownloadRatio: MAX_DOWNLOAD_RATIO, maxPeakRssBytes: MAX_PEAK_RSS_BYTES },
    });
    printTable(figures);
    console.log(`results: ${path}`);
    const passed = receivedRatio <= MAX_DOWNLOAD_RATIO && peakRss < MAX_PEAK_RSS_BYTES;
    console.log(
      `edge-oci: worst received ratio ${receivedRatio.toFixed(3)} (limit ${MAX_DOWNLOAD_RATIO}; proxy-side ${proxyRatio.toFixed(3)}), ` +
        `worst peak RSS ${(peakRss / 1e6).toFixed(1)} MB (limit ${MAX_PEAK_RSS_BYTES / 1e6} MB): ${passed ? 'within limits' : 'OVER LIMITS'}`,
    );
    // The limits are sized for the full run. A smoke run's 1 MiB cuts lose a larger share of
    // bytes in flight at each RST, and the proxy still counts those bytes as sent.
    if (!passed && !smoke) process.exitCode = 1;
    if (smoke) console.log('smoke run: the limits apply to the full run only');
  } finally {
    await destination?.stop();
    await proxy.stop();
    await source.stop();
    await rm(spoolRoot, { recursive: true, force: true });
  }
}

const childIndex = process.argv.indexOf(CHILD_FLAG);
const run = childIndex >= 0 ? runChild(process.argv.slice(childIndex + 1)) : main();
run.catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
