import { readFile } from 'node:fs/promises';
import { RegistryClient } from '@edge/oci';
import type { ExternalUpstream, ImageSelection } from './args.js';
import type { ChildService } from './children.js';
import type { DataDir } from './data-dir.js';
import type { RunningServices } from './running-services.js';
import { buildDemoImages } from './demo-images/build.js';
import { pushDemoImages } from './demo-images/push.js';
import { QuickstartError } from './errors.js';
import { LOOPBACK } from './ports.js';
import { startUpstreamRegistry } from './services.js';
import type { UpstreamEntry } from './setup.js';

export interface PreparedUpstream {
  entry: UpstreamEntry;
  images: ImageSelection[];
  /** The central registry the quickstart started; undefined for --upstream. */
  service: ChildService | undefined;
}

/** Starts the embedded registry with push on, builds the demo images and pushes them. */
export async function startDemoUpstream(
  paths: DataDir,
  port: number,
  progress: (line: string) => void,
  services: RunningServices,
): Promise<PreparedUpstream> {
  const service = await startUpstreamRegistry(paths, port, services);
  const host = `${LOOPBACK}:${port}`;
  progress(`central registry ready at http://${host} (log: ${service.logFile})`);
  const set = await buildDemoImages(paths.demoLayout);
  const client = new RegistryClient({ plainHttp: [host] });
  try {
    await pushDemoImages(client, host, set);
  } catch (error) {
    throw new QuickstartError(
      'UPSTREAM_FAILED',
      `pushing the demo images to http://${host} failed: ` +
        `${error instanceof Error ? error.message : String(error)}; read ${service.logFile}`,
      { cause: error },
    );
  } finally {
    await client.close();
  }
  for (const image of set.images) {
    progress(`pushed ${host}/${image.repository}:${image.tag} ${image.digest}`);
  }
  return {
    entry: { url: `http://${host}`, credential: undefined },
    images: set.images.map((image) => ({ repository: image.repository, tag: image.tag })),
    service,
  };
}

/**
 * Reads the credentials of --upstream: the user from the flag or QUICKSTART_UPSTREAM_USERNAME,
 * the password from the first line of --upstream-password-file or QUICKSTART_UPSTREAM_PASSWORD.
 */
export async function externalUpstream(upstream: ExternalUpstream): Promise<PreparedUpstream> {
  const username = upstream.username ?? process.env.QUICKSTART_UPSTREAM_USERNAME;
  let password = process.env.QUICKSTART_UPSTREAM_PASSWORD;
  if (upstream.passwordFile !== undefined) {
    try {
      password = (await readFile(upstream.passwordFile, 'utf8')).split(/\r?\n/)[0];
    } catch (error) {
      throw new QuickstartError(
        'ARGUMENTS_INVALID',
        `--upstream-password-file ${upstream.passwordFile} could not be read ` +
          `(${(error as NodeJS.ErrnoException).code ?? 'error'}); check the path and its permissions`,
      );
    }
  }
  const hasUser = username !== undefined && username !== '';
  const hasPassword = password !== undefined && password !== '';
  if (hasUser !== hasPassword) {
    throw new QuickstartError(
      'ARGUMENTS_INVALID',
      'an upstream credential needs both a user (--upstream-username or ' +
        'QUICKSTART_UPSTREAM_USERNAME) and a password (--upstream-password-file or ' +
        'QUICKSTART_UPSTREAM_PASSWORD)',
    );
  }
  return {
    entry: {
      url: upstream.url,
      credential:
        username !== undefined && password !== undefined && hasUser
          ? { username, password }
          : undefined,
    },
    images: upstream.images,
    service: undefined,
  };
}
