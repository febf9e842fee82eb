#!/usr/bin/env node
// One-shot set-up of the compose stack through public APIs only (Node built-ins and fetch):
//   1. pushes a small deterministic demo image into the central registry (OCI distribution API);
//   2. logs in to Ground Control as admin and creates the central registry, a group that
//      selects the demo image, and one satellite per name (operator REST API);
//   3. writes each satellite's join token to <BOOTSTRAP_OUTPUT_DIR>/<satellite>.json as
//      {"token": "..."}, the format of the satellite's --config FILE.
// Running it again changes nothing that exists. A satellite whose token file is missing gets a
// new join token, so a site whose data volume was removed can join again.
//
// Environment (defaults fit docker-compose.yml):
//   BOOTSTRAP_GROUND_CONTROL_URL  Ground Control base URL         (http://ground-control:8080)
//   GC_ADMIN_PASSWORD             password of the admin account   (required)
//   BOOTSTRAP_REGISTRY_URL        central registry, as Ground Control and satellites reach it
//                                                                 (http://central-registry:5000)
//   BOOTSTRAP_REGISTRY_NAME       registry name in Ground Control (central)
//   BOOTSTRAP_GROUP               group name                      (demo)
//   BOOTSTRAP_REPOSITORY          demo image repository           (demo/hello)
//   BOOTSTRAP_TAG                 demo image tag                  (1.0)
//   BOOTSTRAP_SATELLITES          comma-separated satellite names (site-zot,site-embedded)
//   BOOTSTRAP_OUTPUT_DIR          folder for the token files      (/var/run/edge-join)
//   BOOTSTRAP_FILE_OWNER          uid:gid given to each token file, so the satellite's
//                                 non-root user can read it       (1000:1000)
// Exit status: 0 when everything exists, 1 on any failure (the message names the step).
import { createHash, randomBytes } from 'node:crypto';
import { chown, mkdir, open, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** Time to wait for Ground Control's /readyz, in ms. It is long because a first start migrates the database. */
const READY_TIMEOUT_MS = 180_000;
/** Pause between readiness probes, in ms. */
const READY_POLL_MS = 1_000;
/** Limit for each HTTP request, in ms. Creating a registry includes Ground Control's check of it. */
const REQUEST_TIMEOUT_MS = 30_000;
const ADMIN_USERNAME = 'admin';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** A failed step, with a stable code and a message that names what to check. */
class BootstrapError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'BootstrapError';
    this.code = code;
  }
}

function readSettings(env) {
  const password = env.GC_ADMIN_PASSWORD ?? '';
  if (password.length === 0) {
    throw new BootstrapError(
      'SETTINGS_INVALID',
      'GC_ADMIN_PASSWORD is missing: set it to the admin password that Ground Control was started with',
    );
  }
  const satellites = (env.BOOTSTRAP_SATELLITES ?? 'site-zot,site-embedded')
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name !== '');
  if (satellites.length === 0) {
    throw new BootstrapError(
      'SETTINGS_INVALID',
      'BOOTSTRAP_SATELLITES is empty: list at least one satellite name',
    );
  }
  const owner = (env.BOOTSTRAP_FILE_OWNER ?? '1000:1000').split(':').map(Number);
  if (owner.length !== 2 || owner.some((id) => !Number.isInteger(id) || id < 0)) {
    throw new BootstrapError(
      'SETTINGS_INVALID',
      `BOOTSTRAP_FILE_OWNER must be uid:gid such as 1000:1000, not "${env.BOOTSTRAP_FILE_OWNER}"`,
    );
  }
  return {
    groundControlUrl: trimSlash(env.BOOTSTRAP_GROUND_CONTROL_URL ?? 'http://ground-control:8080'),
    password,
    registryUrl: trimSlash(env.BOOTSTRAP_REGISTRY_URL ?? 'http://central-registry:5000'),
    registryName: env.BOOTSTRAP_REGISTRY_NAME ?? 'central',
    group: env.BOOTSTRAP_GROUP ?? 'demo',
    repository: env.BOOTSTRAP_REPOSITORY ?? 'demo/hello',
    tag: env.BOOTSTRAP_TAG ?? '1.0',
    satellites,
    outputDir: env.BOOTSTRAP_OUTPUT_DIR ?? '/var/run/edge-join',
    owner: { uid: owner[0], gid: owner[1] },
  };
}

function trimSlash(url) {
  return url.replace(/\/+$/, '');
}

function log(message) {
  process.stdout.write(`bootstrap: ${message}\n`);
}

function sha256(bytes) {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

// Demo image

/** Builds a ustar archive of one regular file with fixed owner, mode and time. */
function tarOneFile(name, content) {
  const header = Buffer.alloc(512);
  const field = (offset, length, text) => header.write(text, offset, length, 'ascii');
  const octal = (value, length) => value.toString(8).padStart(length - 1, '0');
  field(0, 100, name);
  field(100, 8, octal(0o644, 8));
  field(108, 8, octal(0, 8));
  field(116, 8, octal(0, 8));
  field(124, 12, octal(content.length, 12));
  field(136, 12, octal(0, 12));
  field(148, 8, ' '.repeat(8));
  field(156, 1, '0');
  field(257, 6, 'ustar');
  field(263, 2, '00');
  // The checksum is the byte sum of the header with its own field read as spaces.
  let checksum = 0;
  for (const byte of header) checksum += byte;
  field(148, 8, `${octal(checksum, 7)}\0`);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}

/**
 * Returns the blobs and manifest of the demo image. Its bytes are the same on every run, so
 * the digest is stable. The layer is a few hundred bytes, so it is built in memory.
 */
function buildDemoImage(repository, tag) {
  const text = Buffer.from(`Served by an edge satellite: ${repository}:${tag}\n`);
  const tar = tarOneFile('hello.txt', text);
  // Node's gzip header carries mtime 0, so the compressed bytes are deterministic too.
  const layer = gzipSync(tar, { level: 9 });
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: [sha256(tar)] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: sha256(config), size: config.length },
      layers: [{ mediaType: OCI_LAYER_GZIP, digest: sha256(layer), size: layer.length }],
    }),
  );
  return { blobs: [config, layer], manifest };
}

async function request(url, init = {}) {
  try {
    return await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (error) {
    const method = init.method ?? 'GET';
    throw new BootstrapError(
      'REQUEST_FAILED',
      `${method} ${url} failed: ${error instanceof Error ? error.message : String(error)}; check that the service is running and reachable`,
    );
  }
}

async function expectStatus(response, expected, step) {
  if (expected.includes(response.status)) return response;
  const body = (await response.text()).slice(0, 500);
  throw new BootstrapError(
    'UNEXPECTED_STATUS',
    `${step} failed: ${response.status} from ${response.url}: ${body}`,
  );
}

async function pushBlob(registryUrl, repository, bytes) {
  const digest = sha256(bytes);
  const blobUrl = `${registryUrl}/v2/${repository}/blobs/${digest}`;
  const head = await request(blobUrl, { method: 'HEAD' });
  if (head.status === 200) return;
  const started = await expectStatus(
    await request(`${registryUrl}/v2/${repository}/blobs/uploads/`, { method: 'POST' }),
    [202],
    `starting the upload of ${digest} to ${repository}`,
  );
  await started.body?.cancel();
  const location = started.headers.get('location');
  if (location === null) {
    throw new BootstrapError(
      'UNEXPECTED_STATUS',
      `the registry ${registryUrl} started an upload without a Location header`,
    );
  }
  const uploadUrl = new URL(location, registryUrl);
  uploadUrl.searchParams.set('digest', digest);
  const finished = await expectStatus(
    await request(uploadUrl, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    }),
    [201],
    `uploading ${digest} to ${repository}`,
  );
  await finished.body?.cancel();
}

async function pushDemoImage(settings) {
  const { blobs, manifest } = buildDemoImage(settings.repository, settings.tag);
  for (const blob of blobs) await pushBlob(settings.registryUrl, settings.repository, blob);
  const response = await expectStatus(
    await request(`${settings.registryUrl}/v2/${settings.repository}/manifests/${settings.tag}`, {
      method: 'PUT',
      headers: { 'content-type': OCI_MANIFEST },
      body: manifest,
    }),
    [201],
    `pushing the manifest ${settings.repository}:${settings.tag}`,
  );
  await response.body?.cancel();
  log(
    `pushed ${settings.repository}:${settings.tag} (${sha256(manifest)}) to ${settings.registryUrl}`,
  );
}

// Ground Control operator API

async function waitForReady(groundControlUrl) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${groundControlUrl}/readyz`, {
        signal: AbortSignal.timeout(READY_POLL_MS * 5),
      });
      await response.body?.cancel();
      if (response.ok) return;
      last = `status ${response.status}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  throw new BootstrapError(
    'TIMEOUT',
    `Ground Control at ${groundControlUrl} was not ready after ${READY_TIMEOUT_MS / 1000} s (last: ${last}); check its logs`,
  );
}

function operatorClient(groundControlUrl, token) {
  const call = async (method, path, body, expected, step) => {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await request(`${groundControlUrl}/api/v1${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    await expectStatus(response, expected, step);
    return response.status === 204
      ? null
      : { status: response.status, body: await response.json() };
  };
  return {
    /** Returns the resource, or null when Ground Control returns 404. */
    find: async (path, step) => {
      const result = await call('GET', path, undefined, [200, 404], step);
      return result?.status === 200 ? result.body : null;
    },
    create: async (path, body, step) => (await call('POST', path, body, [201], step))?.body,
  };
}

async function logIn(groundControlUrl, password) {
  const response = await expectStatus(
    await request(`${groundControlUrl}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: ADMIN_USERNAME, password }),
    }),
    [200],
    `logging in to ${groundControlUrl} as ${ADMIN_USERNAME} (check GC_ADMIN_PASSWORD)`,
  );
  const body = await response.json();
  if (typeof body?.token !== 'string') {
    throw new BootstrapError('UNEXPECTED_STATUS', 'the login response has no token field');
  }
  return body.token;
}

async function ensureRegistry(client, settings) {
  const path = `/registries/${settings.registryName}`;
  if ((await client.find(path, `reading registry ${settings.registryName}`)) !== null) {
    log(`registry ${settings.registryName} exists`);
    return;
  }
  await client.create(
    '/registries',
    { name: settings.registryName, kind: 'oci', url: settings.registryUrl },
    `creating registry ${settings.registryName}`,
  );
  log(`created registry ${settings.registryName} (${settings.registryUrl})`);
}

async function ensureGroup(client, settings) {
  if (
    (await client.find(`/groups/${settings.group}`, `reading group ${settings.group}`)) !== null
  ) {
    log(`group ${settings.group} exists`);
    return;
  }
  await client.create(
    '/groups',
    {
      name: settings.group,
      description: 'Demo image pushed by the compose bootstrap',
      selections: [
        { registry: settings.registryName, repository: settings.repository, tag: settings.tag },
      ],
    },
    `creating group ${settings.group}`,
  );
  log(`created group ${settings.group} with ${settings.repository}:${settings.tag}`);
}

async function fileExists(path) {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if (error?.code === 'ENOENT') return false;
    throw error;
  }
}

/** Writes the file through a temp file in the same folder, fsync and rename. */
async function writeSecretFile(path, text, owner) {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  // Only root may give a file away; an unprivileged run keeps its own user as the owner.
  if (process.getuid?.() === 0) await chown(temporary, owner.uid, owner.gid);
  await rename(temporary, path);
}

async function ensureSatellite(client, settings, name) {
  const tokenFile = join(settings.outputDir, `${name}.json`);
  const existing = await client.find(`/satellites/${name}`, `reading satellite ${name}`);
  let token;
  if (existing === null) {
    const created = await client.create(
      '/satellites',
      { name, groups: [settings.group], labels: { site: name } },
      `creating satellite ${name}`,
    );
    token = created.joinToken.token;
    log(`created satellite ${name} in group ${settings.group}`);
  } else if (await fileExists(tokenFile)) {
    log(`satellite ${name} exists and ${tokenFile} is in place`);
    return;
  } else {
    const issued = await client.create(
      `/satellites/${name}/join-token`,
      {},
      `issuing a join token for satellite ${name}`,
    );
    token = issued.token;
    log(`issued a new join token for satellite ${name}, because ${tokenFile} was missing`);
  }
  await writeSecretFile(tokenFile, `${JSON.stringify({ token })}\n`, settings.owner);
  log(`wrote the join token of ${name} to ${tokenFile}`);
}

async function main() {
  const settings = readSettings(process.env);
  await mkdir(settings.outputDir, { recursive: true });
  await pushDemoImage(settings);
  await waitForReady(settings.groundControlUrl);
  const client = operatorClient(
    settings.groundControlUrl,
    await logIn(settings.groundControlUrl, settings.password),
  );
  await ensureRegistry(client, settings);
  await ensureGroup(client, settings);
  for (const name of settings.satellites) await ensureSatellite(client, settings, name);
  log('done');
}

main().catch((error) => {
  const code = error instanceof BootstrapError ? error.code : 'FAILED';
  process.stderr.write(
    `bootstrap failed [${code}]: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
