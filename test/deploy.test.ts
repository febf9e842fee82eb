// Checks of the deployment files that run without a Docker engine or Helm. The compose file
// validates and sets only documented variables, the charts' values cover their templates, and the
// Dockerfiles point at real files. The compose bootstrap script and the image health check run
// against real Ground Control, satellite and docker-registry processes.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  REPO_ROOT,
  freePort,
  groundControlVariables,
  hasValuePath,
  runToEnd,
  satelliteVariables,
  startChild,
  templateEnvNames,
  templateValuePaths,
  waitFor,
} from './deploy-helpers.js';
import type { Child } from './deploy-helpers.js';

const COMPOSE_FILE = join(REPO_ROOT, 'docker-compose.yml');
const BOOTSTRAP_SCRIPT = join(REPO_ROOT, 'deploy/compose/bootstrap.mjs');
const HEALTHCHECK_SCRIPT = join(REPO_ROOT, 'deploy/docker/healthcheck.mjs');
const GROUND_CONTROL_MAIN = join(REPO_ROOT, 'apps/ground-control/dist/main.js');
const SATELLITE_MAIN = join(REPO_ROOT, 'apps/satellite/dist/main.js');

/** Variables of the Node runtime itself, not of either service. */
const RUNTIME_VARIABLES = new Set(['NODE_ENV']);

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
}

function readCompose(): Record<string, ComposeService> {
  const document = parse(readFileSync(COMPOSE_FILE, 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
  };
  return document.services;
}

/** Returns which of this product's services a compose service runs, from its Dockerfile. */
function productOf(service: ComposeService): 'ground-control' | 'satellite' | undefined {
  const dockerfile = service.build?.dockerfile ?? '';
  if (dockerfile.endsWith('ground-control.Dockerfile')) return 'ground-control';
  if (dockerfile.endsWith('satellite.Dockerfile')) return 'satellite';
  return undefined;
}

/** Variables the bootstrap script reads from `env`. */
function bootstrapVariables(): Set<string> {
  const script = readFileSync(BOOTSTRAP_SCRIPT, 'utf8');
  return new Set([...script.matchAll(/env\.([A-Z][A-Z0-9_]*)/g)].map((match) => match[1] ?? ''));
}

describe('docker-compose.yml', () => {
  it('passes docker-compose config', async () => {
    const result = await runToEnd('docker-compose', ['-f', COMPOSE_FILE, 'config', '-q']);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('pins every pulled image by version', () => {
    for (const [name, service] of Object.entries(readCompose())) {
      if (service.build !== undefined) continue;
      const tag = service.image?.split(':').at(-1) ?? '';
      // A major.minor tag or longer: `registry:2` or `latest` would move under the stack.
      expect(tag, `image of ${name}`).toMatch(/^v?\d+\.\d+/);
    }
  });

  it('sets only documented variables', () => {
    const documented = {
      'ground-control': groundControlVariables(),
      satellite: satelliteVariables(),
    };
    const bootstrap = bootstrapVariables();
    for (const [name, service] of Object.entries(readCompose())) {
      const product = productOf(service);
      const known = product === undefined ? undefined : documented[product];
      const allowed = name === 'bootstrap' ? bootstrap : known;
      if (allowed === undefined) continue;
      for (const variable of Object.keys(service.environment ?? {})) {
        expect(allowed.has(variable), `${name} sets ${variable}`).toBe(true);
      }
    }
  });

  it('gives each satellite a token file from the bootstrap', () => {
    const services = readCompose();
    const bootstrap = services.bootstrap;
    expect(bootstrap).toBeDefined();
    const outputDir = bootstrap?.environment?.BOOTSTRAP_OUTPUT_DIR ?? '';
    const names = (bootstrap?.environment?.BOOTSTRAP_SATELLITES ?? '').split(',');
    const outputVolume = bootstrap?.volumes?.find((volume) => volume.split(':')[1] === outputDir);
    expect(outputVolume, 'bootstrap volume on BOOTSTRAP_OUTPUT_DIR').toBeDefined();
    const volumeName = outputVolume?.split(':')[0];
    const satellites = Object.entries(services).filter(([, s]) => productOf(s) === 'satellite');
    expect(satellites.length).toBe(names.length);
    for (const [name, service] of satellites) {
      const command = service.command ?? [];
      const configFile = command[command.indexOf('--config') + 1] ?? '';
      expect(command, `${name} command`).toContain('--config');
      const mount = service.volumes?.find((volume) => volume.split(':')[0] === volumeName);
      expect(mount, `${name} mounts ${volumeName}`).toBeDefined();
      const mountPoint = mount?.split(':')[1] ?? '';
      expect(posix.dirname(configFile), `${name} --config folder`).toBe(mountPoint);
      expect(names, `${name} token file`).toContain(posix.basename(configFile, '.json'));
      expect(service.depends_on, `${name} waits for the bootstrap`).toMatchObject({
        bootstrap: { condition: 'service_completed_successfully' },
      });
    }
  });

  it('waits on health checks that exist', () => {
    const services = readCompose();
    for (const [name, service] of Object.entries(services)) {
      if (service.depends_on === undefined) continue;
      expect(Array.isArray(service.depends_on), `${name} depends_on has conditions`).toBe(false);
      const targets = Object.entries(service.depends_on);
      for (const [target] of targets) {
        expect(services[target], `${name} depends on ${target}`).toBeDefined();
      }
      const healthy = targets.filter(([, { condition }]) => condition === 'service_healthy');
      for (const [target] of healthy) {
        expect(services[target]?.healthcheck, `${target} health check`).toBeDefined();
      }
    }
  });

  it('publishes ports on loopback only', () => {
    for (const [name, service] of Object.entries(readCompose())) {
      for (const port of service.ports ?? []) {
        expect(port, `${name} port`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
      }
    }
  });
});

describe('Helm charts', () => {
  const charts = [
    { name: 'ground-control', variables: groundControlVariables },
    { name: 'satellite', variables: satelliteVariables },
  ];

  for (const chart of charts) {
    const dir = join(REPO_ROOT, 'deploy/helm', chart.name);

    it(`${chart.name}: Chart.yaml parses`, () => {
      const metadata = parse(readFileSync(join(dir, 'Chart.yaml'), 'utf8')) as Record<
        string,
        unknown
      >;
      expect(metadata.apiVersion).toBe('v2');
      expect(metadata.name).toBe(chart.name);
      expect(metadata.version).toMatch(/^\d+\.\d+\.\d+$/);
      expect(metadata.appVersion).toMatch(/^\d+\.\d+\.\d+$/);
    });

    it(`${chart.name}: values cover the templates`, () => {
      const values: unknown = parse(readFileSync(join(dir, 'values.yaml'), 'utf8'));
      expect(typeof values).toBe('object');
      const paths = templateValuePaths(dir);
      expect(paths.size).toBeGreaterThan(0);
      for (const [path, file] of paths) {
        expect(hasValuePath(values, path), `.Values.${path} in ${file}`).toBe(true);
      }
    });

    it(`${chart.name}: sets only documented variables`, () => {
      const documented = chart.variables();
      const names = templateEnvNames(dir);
      expect(names.size).toBeGreaterThan(0);
      for (const name of names) {
        expect(documented.has(name), `${chart.name} chart sets ${name}`).toBe(true);
      }
    });
  }

  it('satellite: StatefulSet keeps the data folder', () => {
    const template = readFileSync(
      join(REPO_ROOT, 'deploy/helm/satellite/templates/statefulset.yaml'),
      'utf8',
    );
    expect(template).toContain('kind: StatefulSet');
    expect(template).toMatch(/volumeClaimTemplates:\s+- metadata:\s+name: data/);
    expect(template).toMatch(/name: data\s+mountPath: \/var\/lib\/satellite/);
    expect(template).toMatch(/path: \/healthz\s+port: metrics/);
    expect(template).toMatch(/path: \/readyz\s+port: metrics/);
  });
});

describe('Dockerfiles', () => {
  const rootPackage = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    packageManager: string;
  };
  const pnpmVersion = rootPackage.packageManager.split('@')[1];
  const workspacePackages = new Set(
    ['apps', 'packages'].flatMap((folder) =>
      readdirSync(join(REPO_ROOT, folder)).map(
        (name) =>
          (
            JSON.parse(readFileSync(join(REPO_ROOT, folder, name, 'package.json'), 'utf8')) as {
              name: string;
            }
          ).name,
      ),
    ),
  );

  for (const app of ['ground-control', 'satellite'] as const) {
    const path = join(REPO_ROOT, `deploy/docker/${app}.Dockerfile`);
    const text = () => readFileSync(path, 'utf8');
    // Continuation lines joined, so each instruction is one line.
    const instructions = () =>
      text()
        .replace(/\\\n/g, ' ')
        .split('\n')
        .filter((line) => line.trim() !== '' && !line.trimStart().startsWith('#'));

    it(`${app}: pins the Node 20 base image`, () => {
      const bases = instructions().filter((line) => line.startsWith('FROM '));
      expect(bases.length).toBeGreaterThanOrEqual(2);
      for (const line of bases) {
        expect(line.split(/\s+/)[1]).toMatch(/^node:20\.\d+\.\d+-[a-z]+-slim$/);
      }
    });

    it(`${app}: references files that exist`, () => {
      const copies = instructions().filter(
        (line) => line.startsWith('COPY ') && !line.includes('--from='),
      );
      expect(copies.length).toBeGreaterThan(0);
      for (const source of copies.flatMap((line) => line.split(/\s+/).slice(1, -1))) {
        expect(existsSync(join(REPO_ROOT, source)), `COPY ${source}`).toBe(true);
      }
      for (const line of instructions()) {
        for (const match of line.matchAll(/\bcp (\S+)/g)) {
          expect(existsSync(join(REPO_ROOT, match[1] ?? '')), `cp ${match[1]}`).toBe(true);
        }
        for (const match of line.matchAll(/--filter "?(@edge\/[a-z-]+)/g)) {
          expect(workspacePackages.has(match[1] ?? ''), `--filter ${match[1]}`).toBe(true);
        }
      }
    });

    it(`${app}: installs the repository's pnpm`, () => {
      expect(text()).toContain(`pnpm@${pnpmVersion}`);
      expect(text()).toContain('pnpm install --frozen-lockfile');
      expect(text()).toMatch(/deploy --prod --legacy/);
    });

    it(`${app}: runs dist/main.js as non-root`, () => {
      const manifest = JSON.parse(
        readFileSync(join(REPO_ROOT, 'apps', app, 'package.json'), 'utf8'),
      ) as { bin: Record<string, string> };
      expect(manifest.bin[app]).toBe('./dist/main.js');
      // dist/main.js comes from the build, so its source is what must exist.
      expect(existsSync(join(REPO_ROOT, 'apps', app, 'src/main.ts'))).toBe(true);
      const lines = instructions();
      const command = lines.filter((line) => line.startsWith('CMD ')).at(-1) ?? '';
      const argv = JSON.parse(command.slice(4)) as string[];
      expect(argv.slice(0, 2)).toEqual(['node', 'dist/main.js']);
      const user = lines.filter((line) => line.startsWith('USER ')).at(-1) ?? '';
      expect(user).toMatch(/^USER [1-9]\d*:[1-9]\d*$/);
      expect(lines.some((line) => line.startsWith('HEALTHCHECK '))).toBe(true);
      expect(lines.some((line) => line.startsWith('EXPOSE '))).toBe(true);
      expect(lines.some((line) => line.startsWith('VOLUME '))).toBe(true);
    });

    it(`${app}: sets only documented variables`, () => {
      const documented = app === 'ground-control' ? groundControlVariables() : satelliteVariables();
      // Only the final stage's variables reach the service; the build stage's CI=true is pnpm's.
      const lines = instructions();
      const finalStage = lines.slice(lines.findLastIndex((line) => line.startsWith('FROM ')));
      const names = finalStage
        .filter((line) => line.startsWith('ENV '))
        .flatMap((line) => [...line.matchAll(/([A-Z][A-Z0-9_]*)=/g)].map((m) => m[1] ?? ''));
      expect(names.length).toBeGreaterThan(0);
      for (const name of names) {
        if (RUNTIME_VARIABLES.has(name)) continue;
        expect(documented.has(name), `${app} image sets ${name}`).toBe(true);
      }
    });
  }

  it('.dockerignore keeps build output out', () => {
    const patterns = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(patterns).toContain('**/node_modules');
    expect(patterns).toContain('**/dist');
  });
});

describe('scripts/test-compose.mjs', () => {
  const script = join(REPO_ROOT, 'scripts/test-compose.mjs');

  it('exits 3 without a Docker engine', async () => {
    // An empty PATH hides any docker binary, so this path runs on every machine.
    const emptyDir = await mkdtemp(join(tmpdir(), 'edge-no-docker-'));
    try {
      const result = await runToEnd(process.execPath, [script], { ...process.env, PATH: emptyDir });
      expect(result.code).toBe(3);
      expect(result.output).toContain('needs a Docker engine');
      expect(result.output).toContain('Nothing was started');
    } finally {
      await rm(emptyDir, { recursive: true, force: true });
    }
  });

  it('rejects an unknown flag with 2', async () => {
    const result = await runToEnd(process.execPath, [script, '--no-such-flag']);
    expect(result.code).toBe(2);
    expect(result.output).toContain('usage: node scripts/test-compose.mjs');
  });
});

/** Time allowed for Ground Control's first start on PGlite (migrations), in ms. */
const GROUND_CONTROL_START_MS = 90_000;
/** Time allowed for both satellites to report the group in sync, in ms. */
const SYNC_TIMEOUT_MS = 60_000;
const GENERATE_ENV_SCRIPT = join(REPO_ROOT, 'deploy/compose/generate-env.mjs');

/** Returns the KEY=value lines of an environment file as an object. */
function readEnvFile(path: string): Record<string, string> {
  const entries = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => /^[A-Z_]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]);
  return Object.fromEntries(entries) as Record<string, string>;
}

async function startDockerRegistry(
  dir: string,
  name: string,
): Promise<{ url: string; child: Child }> {
  const port = await freePort();
  const config = join(dir, `${name}.yml`);
  await writeFile(
    config,
    [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${join(dir, name)} }, delete: { enabled: true } }`,
      `http: { addr: 127.0.0.1:${port}, secret: deploy-test-${name} }`,
      '',
    ].join('\n'),
  );
  const child = startChild('docker-registry', ['serve', config], process.env);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${url}/v2/`, 15_000, child);
  return { url, child };
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

async function rawDigest(registryUrl: string, reference: string): Promise<string> {
  const host = new URL(registryUrl).host;
  const result = await runToEnd('skopeo', [
    'inspect',
    '--raw',
    '--tls-verify=false',
    `docker://${host}/${reference}`,
  ]);
  expect(result.code, `output: ${result.output}`).toBe(0);
  return createHash('sha256').update(result.output).digest('hex');
}

describe('compose bootstrap against real processes', () => {
  let dir: string;
  const children: Child[] = [];
  let central: string;
  let site: string;
  let groundControl: string;
  let gcPort: number;
  // Secrets from generate-env.mjs, so that Ground Control's own validation accepts them.
  let secrets: Record<string, string>;
  let envFile: string;

  beforeAll(async () => {
    for (const entry of [GROUND_CONTROL_MAIN, SATELLITE_MAIN]) {
      if (!existsSync(entry)) throw new Error(`${entry} is missing: run pnpm build first`);
    }
    dir = await mkdtemp(join(tmpdir(), 'edge-deploy-test-'));
    const centralRegistry = await startDockerRegistry(dir, 'central');
    children.push(centralRegistry.child);
    central = centralRegistry.url;
    // A docker-registry stands in for Zot: both take pushes over the OCI distribution API.
    const siteRegistry = await startDockerRegistry(dir, 'site');
    children.push(siteRegistry.child);
    site = siteRegistry.url;
    envFile = join(dir, 'compose.env');
    const generated = await runToEnd('node', [GENERATE_ENV_SCRIPT, envFile]);
    if (generated.code !== 0) throw new Error(`generate-env.mjs failed: ${generated.output}`);
    secrets = readEnvFile(envFile);
    gcPort = await freePort();
    const gc = startChild('node', [GROUND_CONTROL_MAIN], {
      ...process.env,
      GC_HOST: '127.0.0.1',
      GC_PORT: String(gcPort),
      GC_DATA_DIR: join(dir, 'ground-control'),
      GC_ADMIN_PASSWORD: secrets.GC_ADMIN_PASSWORD,
      GC_ENCRYPTION_KEY: secrets.GC_ENCRYPTION_KEY,
      GC_LOG_LEVEL: 'warn',
    });
    children.push(gc);
    groundControl = `http://127.0.0.1:${gcPort}`;
    await waitFor(`${groundControl}/readyz`, GROUND_CONTROL_START_MS, gc);
  });

  afterAll(async () => {
    for (const child of children.reverse()) await child.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const bootstrapEnv = () => ({
    ...process.env,
    GC_ADMIN_PASSWORD: secrets.GC_ADMIN_PASSWORD,
    BOOTSTRAP_GROUND_CONTROL_URL: groundControl,
    BOOTSTRAP_REGISTRY_URL: central,
    BOOTSTRAP_SATELLITES: 'site-zot,site-embedded',
    BOOTSTRAP_OUTPUT_DIR: join(dir, 'join'),
  });

  it('bootstrap sets up a fleet that syncs', async () => {
    const first = await runToEnd('node', [BOOTSTRAP_SCRIPT], bootstrapEnv());
    expect(first.code, `output: ${first.output}`).toBe(0);
    const tokenFiles = ['site-zot', 'site-embedded'].map((name) =>
      join(dir, 'join', `${name}.json`),
    );
    for (const file of tokenFiles) {
      expect(statSync(file).mode & 0o777, `mode of ${file}`).toBe(0o600);
      const content = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      expect(Object.keys(content)).toEqual(['token']);
      expect(typeof content.token).toBe('string');
    }
    expect(first.output).not.toContain(
      (JSON.parse(readFileSync(tokenFiles[0] ?? '', 'utf8')) as { token: string }).token,
    );

    // A second run finds everything in place and keeps the tokens.
    const hashes = tokenFiles.map(sha256File);
    const second = await runToEnd('node', [BOOTSTRAP_SCRIPT], bootstrapEnv());
    expect(second.code, `output: ${second.output}`).toBe(0);
    expect(second.output).toContain('registry central exists');
    expect(second.output).toContain('group demo exists');
    expect(tokenFiles.map(sha256File)).toEqual(hashes);

    const embeddedPort = await freePort();
    const embeddedMetricsPort = await freePort();
    const satelliteBase = [SATELLITE_MAIN, 'run', '--ground-control-url', groundControl];
    const embedded = startChild(
      'node',
      [
        ...satelliteBase,
        '--config',
        tokenFiles[1] ?? '',
        '--data-dir',
        join(dir, 'site-embedded'),
        '--registry-listen',
        `127.0.0.1:${embeddedPort}`,
        '--metrics-listen',
        `127.0.0.1:${embeddedMetricsPort}`,
        '--log-level',
        'warn',
      ],
      process.env,
    );
    children.push(embedded);
    const external = startChild(
      'node',
      [
        ...satelliteBase,
        '--config',
        tokenFiles[0] ?? '',
        '--data-dir',
        join(dir, 'site-zot'),
        '--registry',
        'external',
        '--registry-url',
        site,
        '--metrics-listen',
        `127.0.0.1:${await freePort()}`,
        '--log-level',
        'warn',
      ],
      process.env,
    );
    children.push(external);

    const login = await fetch(`${groundControl}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: secrets.GC_ADMIN_PASSWORD }),
    });
    expect(login.status).toBe(200);
    const { token } = (await login.json()) as { token: string };
    await waitFor(
      `${groundControl}/api/v1/fleet`,
      SYNC_TIMEOUT_MS,
      external,
      async (response) => {
        const fleet = (await response.json()) as { counts: Record<string, number> };
        return fleet.counts['in-sync'] === 2;
      },
      { headers: { authorization: `Bearer ${token}` } },
    );

    const upstream = await rawDigest(central, 'demo/hello:1.0');
    expect(await rawDigest(`http://127.0.0.1:${embeddedPort}`, 'demo/hello:1.0')).toBe(upstream);
    expect(await rawDigest(site, 'demo/hello:1.0')).toBe(upstream);

    // The image health check, with the listen address as the satellite image sets it.
    const health = await runToEnd('node', [HEALTHCHECK_SCRIPT, 'satellite'], {
      ...process.env,
      SATELLITE_METRICS_LISTEN: `0.0.0.0:${embeddedMetricsPort}`,
    });
    expect(health.code, `output: ${health.output}`).toBe(0);
  });

  it('generate-env keeps an existing file', async () => {
    expect(statSync(envFile).mode & 0o777).toBe(0o600);
    expect(secrets.POSTGRES_PASSWORD).toMatch(/^[0-9a-f]{48}$/);
    const before = sha256File(envFile);
    const again = await runToEnd('node', [GENERATE_ENV_SCRIPT, envFile]);
    expect(again.code).toBe(1);
    expect(again.output).toContain('left unchanged');
    expect(sha256File(envFile)).toBe(before);
  });

  it('compose interpolates the generated secrets', async () => {
    const result = await runToEnd('docker-compose', [
      '-f',
      COMPOSE_FILE,
      '--env-file',
      envFile,
      'config',
    ]);
    expect(result.code, `output: ${result.output}`).toBe(0);
    const config = parse(result.output) as { services: Record<string, ComposeService> };
    const environment = config.services['ground-control']?.environment ?? {};
    expect(environment.DATABASE_URL).toBe(
      `postgres://edge:${secrets.POSTGRES_PASSWORD}@postgres:5432/edge`,
    );
    expect(environment.GC_ENCRYPTION_KEY).toBe(secrets.GC_ENCRYPTION_KEY);
    expect(config.services.bootstrap?.environment?.GC_ADMIN_PASSWORD).toBe(
      secrets.GC_ADMIN_PASSWORD,
    );
  });

  it('health check script reports readiness', async () => {
    const ready = await runToEnd('node', [HEALTHCHECK_SCRIPT, 'ground-control'], {
      ...process.env,
      GC_PORT: String(gcPort),
    });
    expect(ready.code, `output: ${ready.output}`).toBe(0);
    const closed = await runToEnd('node', [HEALTHCHECK_SCRIPT, 'satellite'], {
      ...process.env,
      SATELLITE_METRICS_LISTEN: `0.0.0.0:${await freePort()}`,
    });
    expect(closed.code).toBe(1);
    expect(closed.output).toContain('/readyz failed');
    const unknown = await runToEnd('node', [HEALTHCHECK_SCRIPT, 'registry'], process.env);
    expect(unknown.code).toBe(1);
    expect(unknown.output).toContain('unknown service');
  });
});
