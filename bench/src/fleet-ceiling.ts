// The ceiling of `pnpm bench:fleet`: a bare Fastify server whose state route returns a constant
// 304, so the load generator measures HTTP and Fastify cost alone on this machine. Listens on
// 127.0.0.1 and the port given as the first argument, and prints `listening` when ready.
import Fastify from 'fastify';
import { SATELLITE_API_PREFIX } from '@edge/contract';

const CONSTANT_ETAG = '"1"';

async function main(): Promise<void> {
  const port = Number(process.argv[2]);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`port argument "${process.argv[2] ?? ''}" is invalid; pass 1 to 65535`);
  }
  const app = Fastify({ logger: false });
  app.get(`${SATELLITE_API_PREFIX}/state`, async (_request, reply) =>
    reply.code(304).header('etag', CONSTANT_ETAG).send(),
  );
  const stop = (): void => {
    app.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await app.listen({ host: '127.0.0.1', port });
  process.stdout.write('listening\n');
}

main().catch((error: unknown) => {
  process.stderr.write(
    `fleet ceiling server failed: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
});
