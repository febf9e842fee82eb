import { createServer } from 'node:net';
import { QuickstartError } from './errors.js';

export const LOOPBACK = '127.0.0.1';

/**
 * Checks that `port` on 127.0.0.1 is free by binding and closing it, and returns it; port 0 returns
 * a free port that the kernel picked. Another process may still take the port before the service
 * binds it. The service then fails to start, and its log names the port.
 */
export function claimPort(port: number, flag: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE' || error.code === 'EACCES') {
        reject(
          new QuickstartError(
            'PORT_IN_USE',
            `port ${port} on ${LOOPBACK} is not available (${error.code}); pass another port ` +
              `with ${flag} PORT, or ${flag} 0 for any free port`,
          ),
        );
        return;
      }
      reject(error);
    });
    server.listen({ host: LOOPBACK, port, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`unexpected listen address ${String(address)} for ${flag}`));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}
