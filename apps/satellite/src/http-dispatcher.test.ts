import { createServer } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDispatcher } from './http-dispatcher.js';

// An HTTP forward proxy that tunnels CONNECT requests (as squid does; undici's ProxyAgent
// tunnels every request) and an origin server, both on 127.0.0.1. The proxy records the
// tunnel targets.
describe('createDispatcher', () => {
  const seenByProxy: string[] = [];
  const origin = createServer((req, res) => res.end(`origin ${req.url}`));
  const proxy = createServer((_req, res) => res.writeHead(405).end());
  proxy.on('connect', (req, clientSocket, head) => {
    seenByProxy.push(req.url ?? '');
    const [host, port] = (req.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      clientSocket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(clientSocket);
      clientSocket.pipe(upstream);
    });
    upstream.on('error', () => clientSocket.destroy());
    clientSocket.on('error', () => upstream.destroy());
  });
  let originUrl = '';
  let proxyUrl = '';

  beforeAll(async () => {
    await new Promise<void>((done) => origin.listen(0, '127.0.0.1', done));
    await new Promise<void>((done) => proxy.listen(0, '127.0.0.1', done));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((done) => origin.close(done));
    await new Promise((done) => proxy.close(done));
  });

  it('routes through HTTP_PROXY', async () => {
    const dispatcher = createDispatcher({}, { HTTP_PROXY: proxyUrl });
    const response = await request(`${originUrl}/a`, { dispatcher });
    expect(await response.body.text()).toBe('origin /a');
    expect(seenByProxy).toEqual([originUrl.replace('http://', '')]);
    await dispatcher.close();
  });

  it('bypasses the proxy for NO_PROXY hosts', async () => {
    const dispatcher = createDispatcher({}, { HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' });
    const response = await request(`${originUrl}/b`, { dispatcher });
    expect(await response.body.text()).toBe('origin /b');
    expect(seenByProxy).toHaveLength(1);
    await dispatcher.close();
  });

  it('connects directly without proxy variables', async () => {
    const dispatcher = createDispatcher({}, {});
    const response = await request(`${originUrl}/c`, { dispatcher });
    expect(await response.body.text()).toBe('origin /c');
    expect(seenByProxy).toHaveLength(1);
    await dispatcher.close();
  });
});
