import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/**
 * Closes connections that carry no request once the server starts closing, so a shutdown
 * waits only for requests in flight.
 *
 * Node 20's `server.close()` closes idle keep-alive sockets that served a request, but not a
 * socket a client opened and never sent a request on (Node 20's fetch leaves such a socket
 * after an aborted request). Such a socket kept `close` waiting about 70 s in a test, close to
 * Fastify 5's keep-alive timeout of 72 s. Fastify's `forceCloseConnections: true` would
 * also cut requests in flight, which must keep their grace period.
 */
export class ConnectionTracker {
  /** Requests in flight per open socket. */
  private readonly active = new Map<Socket, number>();
  private closing = false;

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.active.set(socket, 0);
      socket.once('close', () => this.active.delete(socket));
    });
    server.on('request', (request, response) => {
      const socket = request.socket;
      this.active.set(socket, (this.active.get(socket) ?? 0) + 1);
      response.once('close', () => {
        const requests = this.active.get(socket);
        if (requests === undefined) return;
        const left = requests - 1;
        this.active.set(socket, left);
        if (this.closing && left === 0) socket.destroy();
      });
    });
  }

  /** Destroys every socket without a request in flight, and each other one after its response. */
  closeIdle(): void {
    this.closing = true;
    for (const [socket, requests] of this.active) {
      if (requests === 0) socket.destroy();
    }
  }
}
