import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OciStore, startRegistryServer, type RegistryServerOptions } from '../src/index.js';
import type { Manifest } from './fixtures.js';

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export interface TestServer {
  url: string;
  store: OciStore;
  close(): Promise<void>;
}

/** Starts an in-process registry on 127.0.0.1 (free port) over a fresh store folder. */
export async function startTestServer(
  options: Omit<RegistryServerOptions, 'store'> = {},
): Promise<TestServer> {
  const root = await mkdtemp(join(tmpdir(), 'registry-http-'));
  const store = await OciStore.open(root);
  const server = await startRegistryServer({
    ...options,
    store,
    listen: { host: '127.0.0.1', port: 0 },
  });
  return {
    url: server.url,
    store,
    close: async () => {
      await server.close();
      await store.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Pushes a fixture over HTTP: blobs by monolithic POST, children, then the manifest. */
export async function pushFixture(
  url: string,
  manifest: Manifest,
  headers: Record<string, string> = {},
): Promise<Response> {
  for (const child of manifest.children)
    await pushFixture(url, { ...child, tag: undefined }, headers);
  for (const item of manifest.blobs) {
    const response = await fetch(
      `${url}/v2/${manifest.repository}/blobs/uploads/?digest=${item.digest}`,
      {
        method: 'POST',
        headers: { ...headers, 'Content-Type': 'application/octet-stream' },
        body: item.bytes,
      },
    );
    await response.arrayBuffer();
    if (response.status !== 201)
      throw new Error(`blob push of ${item.digest} returned ${response.status}`);
  }
  const response = await fetch(
    `${url}/v2/${manifest.repository}/manifests/${manifest.tag ?? manifest.digest}`,
    {
      method: 'PUT',
      headers: { ...headers, 'Content-Type': manifest.mediaType },
      body: manifest.bytes,
    },
  );
  await response.arrayBuffer();
  return response;
}

export async function errorCode(response: Response): Promise<string | undefined> {
  const body = (await response.json()) as { errors?: { code?: string }[] };
  return body.errors?.[0]?.code;
}

/** GET with the path sent byte for byte (fetch would normalise `..` and encoded slashes). */
export function rawGet(url: string, path: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: hostname, port, path, method: 'GET' }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
