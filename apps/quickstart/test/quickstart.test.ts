// End-to-end runs of the built quickstart: a fresh data folder with --exit-when-synced, then a
// second run that reuses the folder, keeps serving until SIGINT and is checked with skopeo.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RegistryClient } from '@edge/oci';
import { getFreePort, runCommand, spawnProcess, startRegistry } from '@edge/testkit';
import type { ManagedProcess, RegistryHandle } from '@edge/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemoImages, type DemoImageSet } from '../src/demo-images/build.js';
import { pushDemoImages } from '../src/demo-images/push.js';

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const QUICKSTART_MAIN = join(repositoryRoot, 'apps/quickstart/dist/main.js');
/** Sync timeout passed to the quickstart, in seconds; a fresh run took 34 to 48 s on 2 cores. */
const SYNC_TIMEOUT_SECONDS = 90;
/** Time allowed for a whole quickstart run, in ms: the sync timeout plus start and stop. */
const RUN_TIMEOUT_MS = (SYNC_TIMEOUT_SECONDS + 150) * 1000;

/** sha256 of `skopeo inspect --raw` of a full transport reference (`docker://…`, `oci:…`). */
async function rawDigestOf(reference: string, credentials?: string): Promise<string> {
  const { stdout } = await runCommand('skopeo', [
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...(credentials !== undefined ? ['--creds', credentials] : []),
    reference,
  ]);
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`;
}

function rawDigest(reference: string): Promise<string> {
  return rawDigestOf(`docker://${reference}`);
}

function startQuickstart(args: string[]): ManagedProcess {
  return spawnProcess('node', [QUICKSTART_MAIN, ...args], { name: 'quickstart' });
}

async function waitForOutput(proc: ManagedProcess, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => {
    exited = true;
  });
  while (!proc.output().includes(text)) {
    if (exited || Date.now() > deadline) {
      throw new Error(`quickstart never printed "${text}"; output:\n${proc.output()}`);
    }
    await new Promise((done) => setTimeout(done, 200));
  }
}

describe('quickstart', () => {
  let dataDir: string;
  let expected: DemoImageSet;
  const running: ManagedProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'quickstart-test-'));
    // The same builder in this process gives the digests every run must reproduce.
    expected = await buildDemoImages(join(dataDir, 'expected-layout'));
  });

  afterAll(async () => {
    for (const proc of running) await proc.stop('SIGTERM', 60_000);
    await rm(dataDir, { recursive: true, force: true });
  });

  it(
    'fresh run exits 0 once in sync',
    async () => {
      const proc = startQuickstart([
        '--exit-when-synced',
        '--data-dir',
        join(dataDir, 'run'),
        '--gc-port',
        '0',
        '--upstream-port',
        '0',
        '--site-port',
        '0',
        '--timeout',
        String(SYNC_TIMEOUT_SECONDS),
      ]);
      running.push(proc);
      const exit = await proc.exited;
      const output = proc.output();
      expect({ code: exit.code, output }).toMatchObject({ code: 0 });
      expect(output).toContain('data folder');
      expect(output).toContain(': new');
      expect(output).toMatch(/quickstart-site\s+in-sync/);
      expect(output).toMatch(/Ground Control admin password \(shown once\): \S{24}/);
      for (const image of expected.images) {
        expect(output).toContain(`/${image.repository}:${image.tag} ${image.digest}`);
      }
      expect(output.indexOf('stopped satellite')).toBeLessThan(
        output.indexOf('stopped Ground Control'),
      );
      expect(output.indexOf('stopped Ground Control')).toBeLessThan(
        output.indexOf('stopped central registry'),
      );
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'rerun serves upstream digests until SIGINT',
    async () => {
      const gcPort = await getFreePort();
      const upstreamPort = await getFreePort();
      const sitePort = await getFreePort();
      const proc = startQuickstart([
        '--data-dir',
        join(dataDir, 'run'),
        '--gc-port',
        String(gcPort),
        '--upstream-port',
        String(upstreamPort),
        '--site-port',
        String(sitePort),
        '--timeout',
        String(SYNC_TIMEOUT_SECONDS),
      ]);
      running.push(proc);
      await waitForOutput(proc, 'press Ctrl-C to stop', RUN_TIMEOUT_MS);
      const output = proc.output();
      expect(output).toContain('reusing the data of an earlier run');
      expect(output).not.toContain('shown once');
      expect(output).toContain('already joined');

      const site = `127.0.0.1:${sitePort}`;
      const upstream = `127.0.0.1:${upstreamPort}`;
      expect(output).toContain(`skopeo inspect --tls-verify=false docker://${site}/demo/hello:1.0`);
      for (const image of expected.images) {
        const reference = `${image.repository}:${image.tag}`;
        const upstreamDigest = await rawDigest(`${upstream}/${reference}`);
        expect({ reference, digest: upstreamDigest }).toEqual({ reference, digest: image.digest });
        const siteDigest = await rawDigest(`${site}/${reference}`);
        expect({ reference, digest: siteDigest }).toEqual({ reference, digest: upstreamDigest });
        for (const child of image.children) {
          const byDigest = `${image.repository}@${child.digest}`;
          const siteChild = await rawDigest(`${site}/${byDigest}`);
          const upstreamChild = await rawDigest(`${upstream}/${byDigest}`);
          expect({ byDigest, digest: siteChild }).toEqual({ byDigest, digest: upstreamChild });
        }
      }

      await proc.stop('SIGINT', 60_000);
      const exit = await proc.exited;
      expect({ code: exit.code, output: proc.output() }).toMatchObject({ code: 0 });
      expect(proc.output()).toContain('SIGINT received');
      expect(proc.output()).toContain('stopped central registry');
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'SIGINT during start-up stops all',
    async () => {
      const gcPort = await getFreePort();
      const proc = startQuickstart([
        '--data-dir',
        join(dataDir, 'interrupted'),
        '--gc-port',
        String(gcPort),
        '--upstream-port',
        '0',
        '--site-port',
        '0',
      ]);
      running.push(proc);
      await waitForOutput(proc, 'starting Ground Control', RUN_TIMEOUT_MS);
      await proc.stop('SIGINT', 60_000);
      const exit = await proc.exited;
      const output = proc.output();
      expect({ code: exit.code, output }).toMatchObject({ code: 0 });
      expect(output).toContain('stopped Ground Control');
      expect(output).toContain('stopped central registry');
      expect(output).not.toContain('satellite started');
      // Ground Control's port is free again, so no service outlived the quickstart.
      const probe = createServer();
      await new Promise<void>((done, fail) => {
        probe.once('error', fail);
        probe.listen({ host: '127.0.0.1', port: gcPort }, done);
      });
      await new Promise((done) => probe.close(done));
      expect(probe.listening).toBe(false);
    },
    RUN_TIMEOUT_MS,
  );

  it('taken port fails with PORT_IN_USE', async () => {
    const blocker = createServer();
    await new Promise<void>((done) => blocker.listen({ host: '127.0.0.1', port: 0 }, done));
    const address = blocker.address();
    if (address === null || typeof address === 'string') throw new Error('no blocker port');
    try {
      const proc = startQuickstart([
        '--data-dir',
        join(dataDir, 'port-test'),
        '--gc-port',
        String(address.port),
      ]);
      running.push(proc);
      const exit = await proc.exited;
      expect(exit.code).toBe(1);
      expect(proc.output()).toContain('PORT_IN_USE');
      expect(proc.output()).toContain(`port ${address.port} on 127.0.0.1 is not available`);
      expect(proc.output()).toContain('--gc-port');
    } finally {
      await new Promise((done) => blocker.close(done));
    }
  });

  it('foreign data folder is rejected', async () => {
    const folder = join(dataDir, 'expected-layout');
    const before = await readdir(folder);
    const proc = startQuickstart(['--data-dir', folder, '--reset', '--gc-port', '0']);
    running.push(proc);
    const exit = await proc.exited;
    expect(exit.code).toBe(1);
    expect(proc.output()).toContain('DATA_DIR_INVALID');
    expect(proc.output()).toContain('has no quickstart.json');
    // --reset must leave a folder that the quickstart did not make untouched.
    expect(await readdir(folder)).toEqual(before);
  });
});

describe('quickstart with --upstream', () => {
  let dataDir: string;
  let upstream: RegistryHandle;
  let images: DemoImageSet;
  let passwordFile: string;
  const running: ManagedProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'quickstart-upstream-test-'));
    upstream = await startRegistry({ auth: 'basic' });
    images = await buildDemoImages(join(dataDir, 'layout'));
    const client = new RegistryClient({
      plainHttp: [upstream.host],
      credentials: {
        [upstream.host]: { username: upstream.username ?? '', password: upstream.password ?? '' },
      },
    });
    try {
      await pushDemoImages(client, upstream.host, images);
    } finally {
      await client.close();
    }
    passwordFile = join(dataDir, 'upstream-password');
    await writeFile(passwordFile, `${upstream.password ?? ''}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    for (const proc of running) await proc.stop('SIGTERM', 60_000);
    await upstream.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const upstreamArgs = (imageArgs: string[]): string[] => [
    '--exit-when-synced',
    '--data-dir',
    join(dataDir, 'run'),
    '--gc-port',
    '0',
    '--site-port',
    '0',
    '--timeout',
    String(SYNC_TIMEOUT_SECONDS),
    '--upstream',
    upstream.url,
    '--upstream-username',
    upstream.username ?? '',
    '--upstream-password-file',
    passwordFile,
    ...imageArgs.flatMap((image) => ['--image', image]),
  ];

  it(
    'replicates the named images',
    async () => {
      const proc = startQuickstart(upstreamArgs(['demo/hello:1.0', 'demo/multi:1.0']));
      running.push(proc);
      const exit = await proc.exited;
      const output = proc.output();
      expect({ code: exit.code, output }).toMatchObject({ code: 0 });
      expect(output).not.toContain('pushed ');
      expect(output).toMatch(/quickstart-site\s+in-sync/);
      expect(output).toContain(`/etc/containerd/certs.d/${upstream.host}/hosts.toml`);
      expect(output).not.toContain(upstream.password ?? '');

      // The services are stopped now, so the satellite's store is read as an OCI layout.
      const store = join(dataDir, 'run', 'satellite', 'store');
      const credentials = `${upstream.username ?? ''}:${upstream.password ?? ''}`;
      for (const reference of ['demo/hello:1.0', 'demo/multi:1.0']) {
        const upstreamDigest = await rawDigestOf(
          `docker://${upstream.host}/${reference}`,
          credentials,
        );
        const siteDigest = await rawDigestOf(`oci:${store}:${reference}`);
        expect({ reference, digest: siteDigest }).toEqual({ reference, digest: upstreamDigest });
      }
    },
    RUN_TIMEOUT_MS,
  );

  it(
    'missing tag fails with UPSTREAM_FAILED',
    async () => {
      const proc = startQuickstart(upstreamArgs(['demo/hello:1.0', 'demo/absent:9']));
      running.push(proc);
      const exit = await proc.exited;
      const output = proc.output();
      expect({ code: exit.code, output }).toMatchObject({ code: 1 });
      expect(output).toContain('UPSTREAM_FAILED');
      expect(output).toContain('demo/absent:9');
      expect(output).toContain('stopped Ground Control');
    },
    RUN_TIMEOUT_MS,
  );
});
