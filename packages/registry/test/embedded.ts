import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  getFreePort,
  spawnProcess,
  waitForHttp,
  type ManagedProcess,
  type RegistryHandle,
} from '@edge/testkit';

/** The built serve command; tests that spawn the registry need `pnpm --filter @edge/registry build`. */
export const CLI_PATH = join(import.meta.dirname, '..', 'dist', 'cli.js');
const READY_TIMEOUT_MS = 15_000;

async function spawnServe(
  args: string[],
  url: string,
  readyStatus: number[],
): Promise<ManagedProcess> {
  const child = spawnProcess(process.execPath, args, { name: 'edge-registry' });
  try {
    await waitForHttp(`${url}/v2/`, {
      process: child,
      timeoutMs: READY_TIMEOUT_MS,
      expectStatus: readyStatus,
    });
  } catch (error) {
    await child.stop();
    throw error;
  }
  return child;
}

/**
 * Starts `node dist/cli.js serve` on a free loopback port over `root` (a fresh folder by default)
 * and returns it in the test kit's registry shape, so skopeo helpers work against it. With
 * `credentials`, the handle carries them for the test kit's skopeo helpers, and readiness accepts
 * the 401 that anonymous requests then get.
 */
export async function startEmbeddedRegistry(
  options: {
    push?: boolean;
    root?: string;
    extraArgs?: string[];
    credentials?: { username: string; password: string };
  } = {},
): Promise<RegistryHandle> {
  const ownsRoot = options.root === undefined;
  const root = options.root ?? (await mkdtemp(join(tmpdir(), 'registry-embedded-')));
  const port = await getFreePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [CLI_PATH, 'serve', '--root', root, '--listen', `127.0.0.1:${port}`];
  args.push(
    '--log-level',
    'warn',
    ...(options.push ? ['--push'] : []),
    ...(options.extraArgs ?? []),
  );
  const readyStatus = options.credentials ? [200, 401] : [200];
  const handle: RegistryHandle = {
    url,
    host: `127.0.0.1:${port}`,
    dataDir: root,
    ...(options.credentials ?? {}),
    process: await spawnServe(args, url, readyStatus),
    stop: async () => {
      await handle.process.stop();
      if (ownsRoot) await rm(root, { recursive: true, force: true });
    },
    restart: async () => {
      await handle.process.stop();
      handle.process = await spawnServe(args, url, readyStatus);
    },
  };
  return handle;
}
