import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { copyArtifact, RegistryClient } from '@edge/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtures, seededBytes, sha256, SIGNATURE_TYPE } from './fixtures.js';
import { pushFixture, startTestServer, type TestServer } from './http-helpers.js';

// @edge/oci's client and copy helper against two embedded registries: a plain-HTTP source
// and a destination with TLS and Basic credentials for push and pull.
const fixtures = buildFixtures(16 * 1024);
const credentials = { username: 'satellite', password: 'push-secret' };
let scratch: string;
let source: TestServer;
let destination: TestServer;
let client: RegistryClient;

function hostOf(url: string): string {
  return new URL(url).host;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'registry-oci-client-'));
  const key = join(scratch, 'key.pem');
  const cert = join(scratch, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  source = await startTestServer({ push: true });
  for (const manifest of [fixtures.multi, fixtures.signature, fixtures.sbom]) {
    const response = await pushFixture(source.url, manifest);
    if (response.status !== 201)
      throw new Error(`push of ${manifest.name} returned ${response.status}`);
  }
  destination = await startTestServer({
    push: true,
    auth: { pull: [credentials], push: [credentials] },
    tls: { cert: await readFile(cert), key: await readFile(key) },
  });
  client = new RegistryClient({
    plainHttp: [hostOf(source.url)],
    ca: await readFile(cert),
    credentials: { [hostOf(destination.url)]: credentials },
  });
});

afterAll(async () => {
  await client?.close();
  await source?.close();
  await destination?.close();
  await rm(scratch, { recursive: true, force: true });
});

describe('@edge/oci client against the registry', () => {
  it('serves HTTPS with Basic auth', async () => {
    expect(destination.url.startsWith('https://')).toBe(true);
    const ping = await client.ping(hostOf(destination.url));
    expect(ping.apiVersion).toBe('registry/2.0');
  });

  it('copyArtifact copies an index with referrers', async () => {
    const from = { client, repo: { registry: hostOf(source.url), repository: 'test/app' } };
    const to = { client, repo: { registry: hostOf(destination.url), repository: 'site/app' } };
    const result = await copyArtifact(from, to, 'multi', {
      spoolDirectory: scratch,
      referrers: true,
    });
    expect(result.digest).toBe(fixtures.multi.digest);
    const copied = await client.getManifest(to.repo, 'multi');
    expect(copied.bytes).toEqual(fixtures.multi.bytes);
    for (const child of fixtures.multi.children) {
      const manifest = await client.getManifest(to.repo, child.digest);
      expect(manifest.digest).toBe(child.digest);
    }
    expect(await client.listTags(to.repo)).toEqual(['multi']);
  });

  it('referrers API answers the client', async () => {
    const repo = { registry: hostOf(destination.url), repository: 'site/app' };
    const all = await client.referrers(repo, fixtures.app.digest);
    expect(all.source).toBe('api');
    expect(all.descriptors.map((d) => d.digest).sort()).toEqual(
      [fixtures.signature.digest, fixtures.sbom.digest].sort(),
    );
    const filtered = await client.referrers(repo, fixtures.app.digest, {
      artifactType: SIGNATURE_TYPE,
    });
    expect(filtered.descriptors.map((d) => d.digest)).toEqual([fixtures.signature.digest]);
  });

  it('blob HEAD and download through the client', async () => {
    const repo = { registry: hostOf(destination.url), repository: 'site/app' };
    const layer = fixtures.app.blobs[2]!;
    expect(await client.headBlob(repo, layer.digest)).toMatchObject({ size: layer.size });
    const chunks: Buffer[] = [];
    for await (const chunk of client.getBlob(repo, layer.digest)) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks)).toEqual(layer.bytes);
  });

  it('multi-chunk blob over HTTPS', async () => {
    // TLS encrypts each pooled buffer on write; a reused buffer must not corrupt what is sent.
    const bytes = seededBytes('oci-client-tls', 3 * 1024 * 1024 + 4321);
    const digest = sha256(bytes);
    await destination.store.putBlob(Readable.from([bytes]), { digest });
    const repo = { registry: hostOf(destination.url), repository: 'site/app' };
    const chunks: Buffer[] = [];
    for await (const chunk of client.getBlob(repo, digest)) chunks.push(chunk as Buffer);
    const received = Buffer.concat(chunks);
    expect(received.length).toBe(bytes.length);
    expect(sha256(received)).toBe(digest);
  });
});
