// `satellite sync --once` with the built satellite and the built Ground Control: exit codes,
// sync windows, the bandwidth limit, the disk-space check and a run while Ground Control is down.
// Without `run` the embedded registry serves nothing, so checks read its store directly.
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { OciStore } from '@edge/registry';
import { buildTestImages, pushTestImages, spawnProcess, startRegistry } from '@edge/testkit';
import type { RegistryHandle, TestImages } from '@edge/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeStore } from '../src/reconcile/embedded-registry.js';
import { SATELLITE_MAIN, newDataDir, startGroundControl } from './harness.js';
import type { GroundControlHandle, LocalStatusFile } from './harness.js';

/** Size of the large:1 layer here, in MiB: big enough to time, small enough to stay quick. */
const LARGE_LAYER_MIB = 6;
/** Bandwidth limit of the throttled run, in bytes/s. */
const BANDWIDTH_LIMIT = 2 * 1024 * 1024;

describe('satellite sync --once', () => {
  let images: TestImages;
  let upstream: RegistryHandle;
  let gc: GroundControlHandle;
  let dataDir: string;
  let joinToken: string;
  const cleanups: (() => Promise<void>)[] = [];

  const selection = (name: string) => {
    const image = images.images[name];
    if (!image) throw new Error(`test image ${name} missing`);
    return { registry: 'up', repository: image.repository, tag: image.tag };
  };

  /** Runs `sync --once` to its end and returns the exit code and output. */
  const syncOnce = async (env: Record<string, string> = {}) => {
    const child = spawnProcess('node', [SATELLITE_MAIN, 'sync', '--once'], {
      name: 'satellite sync',
      env: {
        ...process.env,
        SATELLITE_GROUND_CONTROL_URL: gc.url,
        SATELLITE_DATA_DIR: dataDir,
        SATELLITE_TOKEN: joinToken,
        SATELLITE_MIN_FREE_BYTES: '0',
        SATELLITE_LOG_LEVEL: 'info',
        ...env,
      },
    });
    const started = Date.now();
    const exit = await child.exited;
    return { code: exit.code, output: child.output(), durationMs: Date.now() - started };
  };
  const status = async (): Promise<LocalStatusFile> =>
    JSON.parse(await readFile(join(dataDir, 'status.json'), 'utf8')) as LocalStatusFile;
  const storedDigest = async (repository: string, tag: string): Promise<string | undefined> => {
    // The store takes a process lock, so it is closed again before the next satellite run.
    const store = await OciStore.open(join(dataDir, 'store'));
    try {
      return (await store.getManifest(repository, tag))?.digest;
    } finally {
      await closeStore(store);
    }
  };

  beforeAll(async () => {
    images = await buildTestImages({ largeLayerMiB: LARGE_LAYER_MIB });
    upstream = await startRegistry({ auth: 'basic' });
    cleanups.push(() => upstream.stop());
    await pushTestImages(upstream, images, { only: ['base:1', 'app-a:1', 'app-b:1', 'large:1'] });
    gc = await startGroundControl();
    cleanups.push(() => gc.cleanup());
    await gc.api('POST', '/api/v1/registries', {
      name: 'up',
      kind: 'oci',
      url: upstream.url,
      credential: { username: upstream.username, password: upstream.password },
    });
    // A one-minute window twelve hours from now, so that copying is not allowed yet.
    const later = new Date(Date.now() + 12 * 3_600_000);
    const clock = `${String(later.getUTCHours()).padStart(2, '0')}:00`;
    const end = `${String(later.getUTCHours()).padStart(2, '0')}:01`;
    await gc.api('POST', '/api/v1/configs', {
      name: 'windowed',
      settings: {
        syncWindows: [
          {
            days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
            start: clock,
            end,
            timeZone: 'UTC',
          },
        ],
      },
    });
    await gc.api('POST', '/api/v1/groups', {
      name: 'once',
      selections: [selection('base:1'), selection('app-a:1')],
    });
    const created = await gc.api<{ joinToken: { token: string } }>('POST', '/api/v1/satellites', {
      name: 'site-once',
      groups: ['once'],
      config: 'windowed',
    });
    joinToken = created.joinToken.token;
    dataDir = await newDataDir();
  });

  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('waits outside the sync window', async () => {
    const result = await syncOnce();
    expect(result.code).toBe(1);
    expect(result.output).toContain('2 waiting for window');
    const current = await status();
    expect(current.phase).toBe('waiting-for-window');
    for (const artifact of current.artifacts) {
      expect(artifact.state).toBe('pending');
      expect(artifact.reason).toBe('waiting for window');
    }
    expect(await storedDigest('test/base', '1')).toBeUndefined();
  });

  it('copies once the window opens, without the token again', async () => {
    await gc.api('PATCH', '/api/v1/configs/windowed', { settings: { syncWindows: [] } });
    const result = await syncOnce({ SATELLITE_TOKEN: 'consumed-token-is-ignored' });
    expect(result.code).toBe(0);
    expect(result.output).toContain('2/2 artifacts present');
    expect(await storedDigest('test/base', '1')).toBe(images.images['base:1']?.digest);
    expect(await storedDigest('test/app-a', '1')).toBe(images.images['app-a:1']?.digest);
  });

  it('holds downloads to the bandwidth limit', async () => {
    await gc.api('PATCH', '/api/v1/configs/windowed', {
      settings: { syncWindows: [], bandwidthBytesPerSecond: BANDWIDTH_LIMIT },
    });
    await gc.api('PUT', '/api/v1/groups/once/selections', [
      selection('base:1'),
      selection('app-a:1'),
      selection('large:1'),
    ]);
    const result = await syncOnce();
    expect(result.code).toBe(0);
    expect(await storedDigest('test/large', '1')).toBe(images.images['large:1']?.digest);
    // A lower bound only, so that a slow machine cannot make this fail.
    const minimumMs = 0.8 * ((LARGE_LAYER_MIB * 1024 * 1024) / BANDWIDTH_LIMIT) * 1000;
    expect(result.durationMs).toBeGreaterThan(minimumMs);
  });

  it('stops a download that would leave too little disk space', async () => {
    await gc.api('PATCH', '/api/v1/configs/windowed', {
      settings: { syncWindows: [], bandwidthBytesPerSecond: null },
    });
    await gc.api('PUT', '/api/v1/groups/once/selections', [
      selection('base:1'),
      selection('app-a:1'),
      selection('large:1'),
      selection('app-b:1'),
    ]);
    const result = await syncOnce({ SATELLITE_MIN_FREE_BYTES: String(2 ** 52) });
    expect(result.code).toBe(1);
    const appB = (await status()).artifacts.find(
      (artifact) => artifact.localRepository === 'test/app-b',
    );
    expect(appB?.state).toBe('failed');
    expect(appB?.reason).toMatch(/^DISK_SPACE_LOW: /);
    expect(await storedDigest('test/app-b', '1')).toBeUndefined();
    // What was present stays present.
    expect(await storedDigest('test/app-a', '1')).toBe(images.images['app-a:1']?.digest);
  });

  it('reaches Ground Control and the upstream through HTTP_PROXY', async () => {
    // A forward proxy that tunnels CONNECT requests, as squid does, and records the targets.
    const tunnels: string[] = [];
    const proxy = createServer((_request, response) => response.writeHead(405).end());
    proxy.on('connect', (request, client, head) => {
      tunnels.push(request.url ?? '');
      const [host, port] = (request.url ?? '').split(':');
      const target = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        target.write(head);
        target.pipe(client);
        client.pipe(target);
      });
      target.on('error', () => client.destroy());
      client.on('error', () => target.destroy());
    });
    await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      await gc.api('PUT', '/api/v1/groups/once/selections', [
        selection('base:1'),
        selection('app-a:1'),
        selection('large:1'),
        selection('app-b:1'),
      ]);
      const result = await syncOnce({ HTTP_PROXY: proxyUrl, HTTPS_PROXY: proxyUrl });
      expect(result.code).toBe(0);
      expect(await storedDigest('test/app-b', '1')).toBe(images.images['app-b:1']?.digest);
      expect(tunnels).toContain(new URL(gc.url).host);
      expect(tunnels).toContain(upstream.host);
    } finally {
      proxy.closeAllConnections();
      await new Promise((done) => proxy.close(done));
    }
  });

  it('reconciles from the stored state while Ground Control is down', async () => {
    await gc.stop();
    const result = await syncOnce();
    expect(result.code).toBe(0);
    expect(result.output).toContain('Ground Control unreachable');
    expect(result.output).toContain('"source":"stored"');
    expect(await storedDigest('test/app-b', '1')).toBe(images.images['app-b:1']?.digest);
  });
});
