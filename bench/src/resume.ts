// Resume benchmark: test/large:1 through the fault proxy. The download of its large layer is
// interrupted once at 25, 50, 75 and 90 % of the layer, first by a cut connection (TCP reset)
// and then by `kill -9` of the copying process followed by a restart. Compares the bytes the
// satellite's `sync --once` downloads with those of `skopeo copy --retry-times 3`.
//
//   pnpm bench:resume            full run: 200 MiB layer
//   pnpm bench:resume --smoke    1 MiB layer
//   node bench/dist/resume.js --only kill-75
//                                one case (cut-25 … cut-90, kill-25 … kill-90), both copiers
//
// Each ratio is the bytes read from the upstream over the bytes a clean copy of the same image
// reads (the large layer plus the small base layer, config and manifest), measured per tool.
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import {
  buildTestImages,
  isSmokeMode,
  printTable,
  pushTestImages,
  spawnProcess,
  startFaultProxy,
  startRegistry,
  writeBenchResults,
  type FaultProxy,
  type Figure,
  type RegistryHandle,
  type TestImages,
} from '@edge/testkit';
import {
  BenchError,
  satelliteArgs,
  SKOPEO_BLOB_INFO_CACHE,
  createSatellite,
  createUpstream,
  optionValue,
  resetSatelliteData,
  satelliteEnv,
  selectionsOf,
  startGroundControl,
  waitInSync,
  type GroundControl,
  type SatelliteSite,
} from './replication/environment.js';

/** Size of the large:1 layer in MiB (full run / smoke run). */
const LARGE_LAYER_MIB = { full: 200, smoke: 1 };
/** Points of the interruption, as fractions of the large layer. */
const CUT_FRACTIONS = [0.25, 0.5, 0.75, 0.9];
/** Goal: bytes downloaded over a clean copy's, for the satellite in every case. */
const GOAL_MAX_RATIO = 1.05;
/** skopeo restarts the whole copy on each failure, up to this many times. */
const SKOPEO_RETRY_TIMES = 3;
/** Runs of the interrupted copier allowed before the bench gives up on a case. */
const MAX_RUNS_PER_CASE = 5;
/** Interval of the byte-count polls that decide when to send SIGKILL, in ms. */
const KILL_POLL_MS = 1;
/** Time allowed for the satellite to report the image present after the last run, in ms. */
const IN_SYNC_TIMEOUT_MS = 10_000;
const UPSTREAM_NAME = 'up';
const IMAGE = 'large:1';
const REPOSITORY = 'test/large';

type Interruption = 'cut' | 'kill';

interface Context {
  images: TestImages;
  gc: GroundControl;
  proxy: FaultProxy;
  upstream: RegistryHandle & { username: string; password: string };
  site: SatelliteSite;
  layer: { digest: string; size: number };
}

/** A copier under test: one run from a clean destination, and how to restart it. */
interface Copier {
  label: string;
  reset(): Promise<void>;
  /** Starts one run of the copier and returns its process. */
  spawn(): Promise<ReturnType<typeof spawnProcess>>;
  /** Runs after the last process exited with 0; checks that the image arrived. */
  verify(): Promise<void>;
  /** Bytes kept on disk for a resume (the satellite's partial files), where the copier has some. */
  keptBytes?(): Promise<number>;
}

const manifestSchema = z.looseObject({
  layers: z.array(z.looseObject({ digest: z.string(), size: z.number() })),
});

/** Reads the layer of large:1 that base:1 does not have: the last one of its manifest. */
async function largeLayer(images: TestImages): Promise<{ digest: string; size: number }> {
  const image = images.images[IMAGE];
  if (image === undefined) throw new BenchError(`the test kit built no image named ${IMAGE}`);
  const path = join(images.layoutDir, 'blobs', 'sha256', image.digest.replace('sha256:', ''));
  const layer = manifestSchema.parse(JSON.parse(await readFile(path, 'utf8'))).layers.at(-1);
  if (layer === undefined) throw new BenchError(`${IMAGE} has no layers in ${path}`);
  return layer;
}

/** Sum of the sizes of the files directly in `dir`; 0 when it does not exist. */
async function folderBytes(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  let total = 0;
  for (const name of names) total += (await stat(join(dir, name))).size;
  return total;
}

function satelliteCopier(context: Context): Copier {
  return {
    label: 'satellite',
    reset: () => resetSatelliteData(context.site.dataDir),
    spawn: async () =>
      spawnProcess(process.execPath, satelliteArgs(['sync', '--once']), {
        name: 'satellite sync',
        env: await satelliteEnv(context.gc, context.site),
      }),
    verify: async () => {
      await waitInSync(context.site.dataDir, 1, 1, IN_SYNC_TIMEOUT_MS);
    },
    keptBytes: () => folderBytes(join(context.site.dataDir, 'partial')),
  };
}

function skopeoCopier(context: Context, registries: Set<RegistryHandle>): Copier {
  let destination: RegistryHandle | undefined;
  return {
    label: 'skopeo',
    reset: async () => {
      if (destination !== undefined) {
        registries.delete(destination);
        await destination.stop();
      }
      destination = await startRegistry({ auth: 'none' });
      registries.add(destination);
      await rm(SKOPEO_BLOB_INFO_CACHE, { force: true });
    },
    spawn: () => {
      if (destination === undefined) throw new Error('skopeo copier spawned before its reset');
      const { username, password } = context.upstream;
      return Promise.resolve(
        spawnProcess(
          'skopeo',
          [
            'copy',
            `--retry-times=${SKOPEO_RETRY_TIMES}`,
            '--preserve-digests',
            '--src-tls-verify=false',
            '--dest-tls-verify=false',
            `--src-creds=${username}:${password}`,
            `docker://${new URL(context.proxy.url).host}/${REPOSITORY}:1`,
            `docker://${destination.host}/${REPOSITORY}:1`,
          ],
          { name: 'skopeo copy' },
        ),
      );
    },
    verify: () => Promise.resolve(),
  };
}

interface CaseResult {
  bytes: number;
  runs: number;
  /** After SIGKILL: bytes the proxy had sent minus the bytes kept in partial files. */
  lostAtKill?: number;
  /** TCP queues between the proxy and the copier right before the SIGKILL. */
  queuesAtKill?: SocketQueues;
  /** Bytes the proxy sent from the SIGKILL until the copier's exit was seen. */
  sentAfterKill?: number;
}

/** Bytes queued in the kernel on the proxy's connections to its clients. */
interface SocketQueues {
  /** Send queues of the proxy's sockets: written by the proxy, not yet read by the copier. */
  proxySendQueue: number;
  /** Receive queues of the copier's sockets: arrived, not yet read by the copier. */
  copierReceiveQueue: number;
}

/**
 * Reads the TCP queues of the connections to `port` with `ss` (iproute2). The call blocks
 * the poll for a few milliseconds, which only moves the kill a little later in the transfer.
 */
function socketQueues(port: number): SocketQueues {
  const output = execFileSync('ss', ['-tnH', 'state', 'established'], { encoding: 'utf8' });
  const queues: SocketQueues = { proxySendQueue: 0, copierReceiveQueue: 0 };
  for (const line of output.split('\n')) {
    // With a state filter, ss leaves out the State column: Recv-Q Send-Q Local Peer.
    const [receive, send, local, peer] = line.trim().split(/\s+/);
    if (receive === undefined || send === undefined || local === undefined || peer === undefined)
      continue;
    if (local.endsWith(`:${port}`)) queues.proxySendQueue += Number(send);
    if (peer.endsWith(`:${port}`)) queues.copierReceiveQueue += Number(receive);
  }
  return queues;
}

/**
 * Copies the image once from a clean destination. With `cut`, the proxy resets the layer's
 * connection once after `cutAt` bytes. With `kill`, the copier gets SIGKILL once the proxy
 * has returned `cutAt` bytes, and starts again. Runs that exit non-zero are started again.
 */
async function runCase(
  context: Context,
  copier: Copier,
  interruption: Interruption | undefined,
  cutAt: number,
): Promise<CaseResult> {
  await copier.reset();
  const { proxy, layer } = context;
  proxy.setRules(
    interruption === 'cut'
      ? { cutAfterBytes: cutAt, cutOnce: true, match: (req) => req.url.includes(layer.digest) }
      : {},
  );
  proxy.resetCounters();
  let killed = interruption !== 'kill';
  let lostAtKill: number | undefined;
  let queuesAtKill: SocketQueues | undefined;
  let sentAtKill: number | undefined;
  let sentAfterKill: number | undefined;
  const proxyPort = Number(new URL(proxy.url).port);
  for (let runs = 1; runs <= MAX_RUNS_PER_CASE; runs++) {
    const child = await copier.spawn();
    let poll: NodeJS.Timeout | undefined;
    if (!killed) {
      poll = setInterval(() => {
        if (proxy.counters.responseBytes >= cutAt) {
          killed = true;
          clearInterval(poll);
          queuesAtKill = socketQueues(proxyPort);
          sentAtKill = proxy.counters.responseBytes;
          child.kill9();
        }
      }, KILL_POLL_MS);
    }
    const exit = await child.exited;
    clearInterval(poll);
    if (exit.signal === 'SIGKILL' && copier.keptBytes !== undefined) {
      lostAtKill = proxy.counters.responseBytes - (await copier.keptBytes());
      if (sentAtKill !== undefined) sentAfterKill = proxy.counters.responseBytes - sentAtKill;
    }
    if (exit.code === 0) {
      await copier.verify();
      return {
        bytes: proxy.counters.responseBytes,
        runs,
        ...(lostAtKill === undefined ? {} : { lostAtKill }),
        ...(queuesAtKill === undefined ? {} : { queuesAtKill }),
        ...(sentAfterKill === undefined ? {} : { sentAfterKill }),
      };
    }
    if (exit.signal !== 'SIGKILL') {
      console.error(`${copier.label} run ${runs} exited with code ${exit.code}; starting again`);
    }
  }
  throw new BenchError(
    `${copier.label} did not copy ${IMAGE} within ${MAX_RUNS_PER_CASE} runs ` +
      `(interruption ${interruption ?? 'none'} at ${cutAt} bytes)`,
  );
}

async function main(): Promise<void> {
  const smoke = isSmokeMode();
  const layerMiB = smoke ? LARGE_LAYER_MIB.smoke : LARGE_LAYER_MIB.full;
  const images = await buildTestImages({ largeLayerMiB: layerMiB });
  const registries = new Set<RegistryHandle>();
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const upstream = await startRegistry({ auth: 'basic' });
    registries.add(upstream);
    const { username, password } = upstream;
    if (username === undefined || password === undefined) {
      throw new BenchError('the upstream registry started without basic-auth credentials');
    }
    await pushTestImages(upstream, images, { only: [IMAGE] });
    const proxy = await startFaultProxy(upstream.url);
    cleanups.push(() => proxy.stop());
    const gc = await startGroundControl();
    cleanups.push(() => gc.stop());
    await createUpstream(gc, UPSTREAM_NAME, proxy.url, upstream);
    await gc.api('POST', '/api/v1/groups', {
      name: 'resume',
      selections: selectionsOf(images, [IMAGE], UPSTREAM_NAME),
    });
    const dataDir = await mkdtemp(join(tmpdir(), 'bench-resume-'));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const site: SatelliteSite = {
      name: 'bench-resume',
      dataDir,
      token: await createSatellite(gc, 'bench-resume', 'resume'),
      registry: { kind: 'embedded' },
    };
    const context: Context = {
      images,
      gc,
      proxy,
      upstream: { ...upstream, username, password },
      site,
      layer: await largeLayer(images),
    };
    const copiers = [satelliteCopier(context), skopeoCopier(context, registries)];

    // The first satellite run joins; both clean runs give the denominators of the ratios.
    const clean = new Map<string, number>();
    for (const copier of copiers) {
      clean.set(copier.label, (await runCase(context, copier, undefined, 0)).bytes);
    }

    const figures: Figure[] = [];
    const checks: string[] = [];
    const only = optionValue('--only');
    for (const interruption of ['cut', 'kill'] as const) {
      for (const fraction of CUT_FRACTIONS) {
        if (only !== undefined && only !== `${interruption}-${fraction * 100}`) continue;
        const cutAt = Math.floor(fraction * context.layer.size);
        const ratios = new Map<string, number>();
        const runs = new Map<string, number>();
        let lostAtKill: number | undefined;
        let queuesAtKill: SocketQueues | undefined;
        let sentAfterKill: number | undefined;
        for (const copier of copiers) {
          console.error(`running ${copier.label} ${interruption} at ${fraction * 100}%`);
          const result = await runCase(context, copier, interruption, cutAt);
          ratios.set(copier.label, result.bytes / (clean.get(copier.label) ?? Number.NaN));
          runs.set(copier.label, result.runs);
          lostAtKill ??= result.lostAtKill;
          queuesAtKill ??= result.queuesAtKill;
          sentAfterKill ??= result.sentAfterKill;
        }
        const ours = ratios.get('satellite') ?? Number.NaN;
        const peer = ratios.get('skopeo') ?? Number.NaN;
        const name = `${interruption} at ${fraction * 100}%`;
        figures.push(
          {
            name: `satellite ${name} downloaded/clean`,
            unit: 'ratio',
            value: ours,
            peer,
            ratio: ours / peer,
          },
          {
            name: `skopeo ${name} downloaded/clean`,
            unit: 'ratio',
            value: peer,
            peer: ours,
            ratio: peer / ours,
          },
          { name: `satellite ${name} runs`, unit: 'count', value: runs.get('satellite') ?? 0 },
          { name: `skopeo ${name} runs`, unit: 'count', value: runs.get('skopeo') ?? 0 },
        );
        if (lostAtKill !== undefined) {
          figures.push({
            name: `satellite ${name} bytes sent but not on disk`,
            unit: 'bytes',
            value: lostAtKill,
          });
        }
        if (queuesAtKill !== undefined) {
          figures.push(
            {
              name: `satellite ${name} proxy send queue at kill`,
              unit: 'bytes',
              value: queuesAtKill.proxySendQueue,
            },
            {
              name: `satellite ${name} satellite receive queue at kill`,
              unit: 'bytes',
              value: queuesAtKill.copierReceiveQueue,
            },
          );
        }
        if (sentAfterKill !== undefined) {
          figures.push({
            name: `satellite ${name} bytes sent after the kill signal`,
            unit: 'bytes',
            value: sentAfterKill,
          });
        }
        checks.push(
          `goal ${ours <= GOAL_MAX_RATIO ? 'met' : 'MISSED'}: satellite ${name} ` +
            `${ours.toFixed(3)} (goal <= ${GOAL_MAX_RATIO})`,
        );
      }
    }
    for (const [label, bytes] of clean) {
      figures.push({ name: `${label} clean copy bytes`, unit: 'bytes', value: bytes });
    }

    printTable(figures);
    const path = await writeBenchResults('resume', figures, {
      smoke,
      largeLayerMiB: layerMiB,
      layerBytes: context.layer.size,
      skopeoRetryTimes: SKOPEO_RETRY_TIMES,
      goals: checks,
    });
    console.log(`results written to ${path}`);
    for (const figure of figures) {
      const digits = figure.unit === 'ratio' ? 3 : 0;
      const peer =
        figure.peer === undefined || figure.peer === null
          ? ''
          : `, peer ${figure.peer.toFixed(digits)}`;
      console.log(`${figure.name}: ${figure.value.toFixed(digits)} ${figure.unit}${peer}`);
    }
    for (const check of checks) console.log(check);
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    for (const registry of registries) await registry.stop().catch(() => undefined);
  }
}

await main();
