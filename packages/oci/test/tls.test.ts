import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer, type Server } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, startRegistry, type RegistryHandle } from '@edge/testkit';
import { ProxyAgent } from 'undici';
import { RegistryClient } from '../src/index.js';

// A TLS-terminating reverse proxy (as nginx in front of a registry would be) with a
// self-signed certificate, forwarding to a real docker-registry 2.8 on plain HTTP.
let registry: RegistryHandle;
let server: Server;
let work: string;
let certificate: string;
let host: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'oci-tls-test-'));
  const keyPath = join(work, 'key.pem');
  const certPath = join(work, 'cert.pem');
  await runCommand('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
  ]);
  certificate = await readFile(certPath, 'utf8');
  registry = await startRegistry({ auth: 'none' });
  const target = new URL(registry.url);
  server = createServer(
    { key: await readFile(keyPath), cert: certificate },
    (incoming, outgoing) => {
      const forwarded = httpRequest(
        {
          host: target.hostname,
          port: target.port,
          method: incoming.method,
          path: incoming.url,
          headers: incoming.headers,
        },
        (response) => {
          outgoing.writeHead(response.statusCode ?? 502, response.headers);
          response.pipe(outgoing);
        },
      );
      forwarded.on('error', () => outgoing.destroy());
      incoming.pipe(forwarded);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await registry?.stop();
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('TLS options', () => {
  it('rejects an untrusted certificate', async () => {
    const client = new RegistryClient({ retry: { maxAttempts: 1 } });
    const error = await client.ping(host).catch((caught: unknown) => caught);
    await client.close();
    expect(error).toMatchObject({ code: 'NETWORK_ERROR' });
    expect((error as Error).message).toContain(host);
  });

  it('trusts a given CA bundle', async () => {
    const client = new RegistryClient({ ca: certificate });
    await expect(client.ping(host)).resolves.toMatchObject({ apiVersion: 'registry/2.0' });
    await client.close();
  });

  it('skips verification when insecure', async () => {
    const client = new RegistryClient({ insecure: true });
    await expect(client.ping(host)).resolves.toMatchObject({ apiVersion: 'registry/2.0' });
    await client.close();
  });
});

describe('dispatcher option', () => {
  it('routes requests through an HTTP proxy', async () => {
    // A minimal forward proxy that only tunnels CONNECT, as corporate proxies do for TLS.
    const tunnels: string[] = [];
    const proxy = createHttpServer();
    proxy.on('connect', (request, socket, head) => {
      tunnels.push(request.url ?? '');
      const [targetHost, targetPort] = (request.url ?? '').split(':');
      const upstream = connect(Number(targetPort), targetHost, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const agent = new ProxyAgent({
      uri: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      requestTls: { ca: certificate },
    });
    try {
      const client = new RegistryClient({ dispatcher: agent });
      await expect(client.ping(host)).resolves.toMatchObject({ apiVersion: 'registry/2.0' });
      await client.close();
      expect(tunnels).toContain(host);
    } finally {
      await agent.close();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});
