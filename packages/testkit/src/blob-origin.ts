import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve, sep } from 'node:path';

/** A second origin that serves a registry's storage folder, as pre-signed object storage does. */
export interface BlobOrigin {
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** Requests received. */
  readonly requests: number;
  /** Requests rejected with 400 because they carried an Authorization header. */
  readonly rejectedWithAuthorization: number;
  stop(): Promise<void>;
}

type ByteRange = { start: number; end: number } | 'unsatisfiable' | undefined;

/** Parses a single `bytes=` range against `size`; multiple ranges are served as a whole body. */
function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

function sendError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(`${message}\n`);
}

async function serveFile(root: string, req: IncomingMessage, res: ServerResponse) {
  const pathname = decodeURIComponent(new URL(req.url ?? '/', 'http://origin.invalid').pathname);
  const path = resolve(root, `.${pathname}`);
  const info = path.startsWith(root + sep) ? await stat(path).catch(() => undefined) : undefined;
  if (!info?.isFile()) {
    sendError(res, 404, `file ${pathname} not found in the registry storage folder`);
    return;
  }

  const headers = {
    'accept-ranges': 'bytes',
    'content-type': 'application/octet-stream',
    etag: `"${info.size}-${info.mtimeMs}"`,
  };
  const range = parseRange(req.headers.range, info.size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, {
      ...headers,
      'content-range': `bytes */${info.size}`,
      'content-length': 0,
    });
    res.end();
    return;
  }

  const { start, end } = range ?? { start: 0, end: info.size - 1 };
  res.writeHead(range ? 206 : 200, {
    ...headers,
    'content-length': end - start + 1,
    ...(range ? { 'content-range': `bytes ${start}-${end}/${info.size}` } : {}),
  });
  if (req.method === 'HEAD' || info.size === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(path, { start, end });
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

/**
 * Starts a static file server on 127.0.0.1 over `rootDir` for docker-registry's redirect
 * middleware: GET and HEAD with single Range support (206, 416), and 400 for any request with
 * an Authorization header, as S3-style pre-signed URLs reject a second credential.
 */
export async function startBlobOrigin(rootDir: string): Promise<BlobOrigin> {
  const root = resolve(rootDir);
  let requests = 0;
  let rejectedWithAuthorization = 0;
  const server = createServer((req, res) => {
    requests++;
    if (req.headers.authorization !== undefined) {
      rejectedWithAuthorization++;
      sendError(res, 400, 'requests to the blob origin must not carry Authorization');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      sendError(res, 405, `method ${req.method} is not allowed`);
      return;
    }
    serveFile(root, req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, `reading the file failed: ${String(err)}`);
      else res.destroy();
    });
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolveListen());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return requests;
    },
    get rejectedWithAuthorization() {
      return rejectedWithAuthorization;
    },
    stop: async () => {
      const closed = new Promise<void>((resolveClose) => server.close(() => resolveClose()));
      server.closeAllConnections();
      await closed;
    },
  };
}
