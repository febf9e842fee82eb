#!/usr/bin/env node
// Brings the docker-compose.yml stack up, runs system checks through its public APIs, and brings
// it down again. It needs a Docker engine, and where none responds it starts nothing and exits 3.
//
// NOTE: no machine where this project's CI runs has a Docker engine, so only the "no engine"
// path has run. The checks below cover joining, syncing and digests; the fault, revocation and
// group-change scenarios run against real processes in apps/*/test, not against this stack.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const USAGE = `usage: node scripts/test-compose.mjs [--keep] [--timeout-seconds N]

Builds the images, starts docker-compose.yml under a fresh project name with generated
secrets, waits until both satellites report the demo group in sync, compares the manifest
digests of the central registry, Zot and the embedded registry (over the registry API, and
with skopeo inspect --raw when skopeo is installed), then runs "down -v".

  --keep                leave the stack running after the checks (stop it with the printed command)
  --timeout-seconds N   time allowed for build, start and sync, in seconds (default 900)

Exit status:
  0  every check passed
  1  a check failed, or the stack did not start (the service logs are printed)
  2  invalid command line
  3  no Docker engine: "docker info" failed, or neither "docker compose" nor "docker-compose"
     works. Nothing was started.`;

const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const EXIT_NO_ENGINE = 3;

/** Default for --timeout-seconds: a first image build downloads Node and every dependency. */
const DEFAULT_TIMEOUT_SECONDS = 900;
/** Pause between polls of Ground Control, in ms. */
const POLL_MS = 2_000;
/** Limit for each HTTP request to the stack, in ms. */
const REQUEST_TIMEOUT_MS = 10_000;

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const COMPOSE_FILE = join(REPO_ROOT, 'docker-compose.yml');

// Published addresses and names, as docker-compose.yml and deploy/compose/bootstrap.mjs set them.
const GROUND_CONTROL_URL = 'http://127.0.0.1:8080';
const SATELLITES = ['site-zot', 'site-embedded'];
const DEMO_REPOSITORY = 'demo/hello';
const DEMO_TAG = '1.0';
const REGISTRIES = {
  central: '127.0.0.1:5000',
  zot: '127.0.0.1:5001',
  embedded: '127.0.0.1:5050',
};
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** Runs a command and resolves with its status and output. It never rejects. */
function run(command, args, { quiet = true } = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      stdio: ['ignore', quiet ? 'pipe' : 'inherit', quiet ? 'pipe' : 'inherit'],
    });
    const chunks = [];
    child.stdout?.on('data', (chunk) => chunks.push(chunk));
    child.stderr?.on('data', (chunk) => chunks.push(chunk));
    child.on('error', (error) => resolve({ code: null, output: error.message, stdout: '' }));
    child.on('close', (code) => {
      const output = Buffer.concat(chunks);
      resolve({ code, output: output.toString('utf8'), stdout: output });
    });
  });
}

/** Returns the compose command that works here, or a reason why there is no engine. */
async function findCompose() {
  const info = await run('docker', ['info', '--format', '{{.ServerVersion}}']);
  if (info.code !== 0) {
    return { reason: `"docker info" failed: ${info.output.trim().split('\n').at(-1) ?? ''}` };
  }
  if ((await run('docker', ['compose', 'version'])).code === 0)
    return { compose: ['docker', 'compose'] };
  if ((await run('docker-compose', ['version'])).code === 0) return { compose: ['docker-compose'] };
  return { reason: 'the engine responds, but neither "docker compose" nor "docker-compose" works' };
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function sha256(bytes) {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function fetchWithTimeout(url, init = {}) {
  return fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
}

async function logIn(password, deadline) {
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const response = await fetchWithTimeout(`${GROUND_CONTROL_URL}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password }),
      });
      if (response.ok) return (await response.json()).token;
      last = `status ${response.status}: ${(await response.text()).slice(0, 200)}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(POLL_MS);
  }
  throw new Error(
    `logging in to Ground Control at ${GROUND_CONTROL_URL} timed out (last: ${last})`,
  );
}

async function waitForSync(token, deadline) {
  let last = 'no fleet view yet';
  while (Date.now() < deadline) {
    try {
      const response = await fetchWithTimeout(`${GROUND_CONTROL_URL}/api/v1/fleet`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (response.ok) {
        const fleet = await response.json();
        const categories = Object.fromEntries(
          fleet.items.map((item) => [item.name, item.category]),
        );
        last = JSON.stringify(categories);
        if (SATELLITES.every((name) => categories[name] === 'in-sync')) return categories;
      } else {
        last = `status ${response.status}`;
      }
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await sleep(POLL_MS);
  }
  throw new Error(`the satellites did not report in sync before the timeout (last: ${last})`);
}

async function manifestDigest(host) {
  const url = `http://${host}/v2/${DEMO_REPOSITORY}/manifests/${DEMO_TAG}`;
  const response = await fetchWithTimeout(url, { headers: { accept: MANIFEST_ACCEPT } });
  if (!response.ok) throw new Error(`GET ${url} returned ${response.status}`);
  return sha256(Buffer.from(await response.arrayBuffer()));
}

async function skopeoDigest(host) {
  const reference = `docker://${host}/${DEMO_REPOSITORY}:${DEMO_TAG}`;
  const result = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', reference]);
  if (result.code !== 0)
    throw new Error(`skopeo inspect --raw ${reference} failed: ${result.output}`);
  return sha256(result.stdout);
}

async function compareDigests() {
  const failures = [];
  const digests = {};
  for (const [name, host] of Object.entries(REGISTRIES)) digests[name] = await manifestDigest(host);
  const hasSkopeo = (await run('skopeo', ['--version'])).code === 0;
  if (hasSkopeo) {
    for (const [name, host] of Object.entries(REGISTRIES)) {
      const viaSkopeo = await skopeoDigest(host);
      if (viaSkopeo !== digests[name]) {
        failures.push(`${name}: skopeo reports ${viaSkopeo}, the registry API ${digests[name]}`);
      }
    }
  } else {
    console.log('skopeo is not installed: compared digests over the registry API only');
  }
  for (const name of ['zot', 'embedded']) {
    if (digests[name] !== digests.central) {
      failures.push(`${name} serves ${digests[name]}, the central registry ${digests.central}`);
    }
  }
  return { digests, failures };
}

async function main() {
  let options;
  try {
    options = parseArgs({
      options: {
        keep: { type: 'boolean' },
        'timeout-seconds': { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : error}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (options.help) {
    console.log(USAGE);
    return 0;
  }
  const timeoutSeconds = Number(options['timeout-seconds'] ?? DEFAULT_TIMEOUT_SECONDS);
  if (!Number.isInteger(timeoutSeconds) || timeoutSeconds <= 0) {
    console.error(
      `--timeout-seconds must be a positive whole number, not "${options['timeout-seconds']}"`,
    );
    return EXIT_USAGE;
  }

  const found = await findCompose();
  if (found.compose === undefined) {
    console.error(
      `test:compose needs a Docker engine and found none (${found.reason}).\n` +
        'Nothing was started. Run it on a host with Docker Engine and the compose plugin (or ' +
        'docker-compose); CI validates the file with "docker-compose -f docker-compose.yml config -q" instead.',
    );
    return EXIT_NO_ENGINE;
  }

  const workDir = await mkdtemp(join(tmpdir(), 'edge-compose-test-'));
  const envFile = join(workDir, 'compose.env');
  const project = `edge-compose-test-${randomBytes(3).toString('hex')}`;
  const compose = (args, runOptions) =>
    run(
      found.compose[0],
      [
        ...found.compose.slice(1),
        '-p',
        project,
        '-f',
        COMPOSE_FILE,
        '--env-file',
        envFile,
        ...args,
      ],
      runOptions,
    );
  const down = `${found.compose.join(' ')} -p ${project} -f ${COMPOSE_FILE} --env-file ${envFile} down -v`;

  let stopping = false;
  const bringDown = async () => {
    if (stopping || options.keep) return;
    stopping = true;
    console.log(`stopping the stack: ${down}`);
    await compose(['down', '-v', '--remove-orphans'], { quiet: false });
    await rm(workDir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    void bringDown().then(() => process.exit(130));
  });

  try {
    const generated = await run('node', [
      join(REPO_ROOT, 'deploy/compose/generate-env.mjs'),
      envFile,
    ]);
    if (generated.code !== 0) throw new Error(`generating ${envFile} failed: ${generated.output}`);
    const password = /^GC_ADMIN_PASSWORD=(.*)$/m.exec(await readFile(envFile, 'utf8'))?.[1] ?? '';

    const deadline = Date.now() + timeoutSeconds * 1000;
    console.log(`starting project ${project} (images build on the first run)`);
    const up = await compose(['up', '-d', '--build'], { quiet: false });
    if (up.code !== 0) throw new Error(`"up -d --build" exited with ${up.code}`);

    const token = await logIn(password, deadline);
    const categories = await waitForSync(token, deadline);
    console.log(`fleet: ${JSON.stringify(categories)}`);
    const { digests, failures } = await compareDigests();
    console.log(`digests of ${DEMO_REPOSITORY}:${DEMO_TAG}: ${JSON.stringify(digests)}`);
    if (failures.length > 0) throw new Error(failures.join('; '));
    console.log('test:compose passed: both satellites in sync, digests equal the central registry');
    if (options.keep) console.log(`the stack keeps running; stop it with: ${down}`);
    return 0;
  } catch (error) {
    console.error(`test:compose failed: ${error instanceof Error ? error.message : error}`);
    const logs = await compose(['logs', '--no-color', '--tail', '80']);
    console.error(logs.output);
    return EXIT_FAILED;
  } finally {
    await bringDown();
  }
}

process.exitCode = await main();
