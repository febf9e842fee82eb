import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { TestkitError } from './errors.js';
import { getFreePort } from './ports.js';
import { runCommand, spawnProcess, waitForHttp } from './process.js';
import type { ManagedProcess } from './process.js';
import { startBlobOrigin } from './blob-origin.js';
import type { BlobOrigin } from './blob-origin.js';
import { startTokenServer, usersAuthorizer } from './token-server.js';
import type { TokenServer } from './token-server.js';

/** The docker-registry binary of the Debian package docker-registry 2.8 (CNCF Distribution). */
const REGISTRY_BINARY = '/usr/bin/docker-registry';
/** Start attempts when another process takes the probed port first. */
const REGISTRY_START_ATTEMPTS = 3;
/** Time a registry gets to respond to GET /v2/, in milliseconds; it is usually ready in ~50 ms. */
const REGISTRY_READY_TIMEOUT_MS = 15_000;
/** Time a registry gets to exit after SIGTERM before SIGKILL, in milliseconds. */
const REGISTRY_STOP_TIMEOUT_MS = 5_000;
/** Name of the user created when `users` is not given. */
const DEFAULT_USERNAME = 'tester';
/** auth.token.service of token-mode registries: the `aud` their tokens must carry. */
const TOKEN_SERVICE = 'edge-testkit-registry';
/** auth.token.issuer of token-mode registries: the `iss` their tokens must carry. */
const TOKEN_ISSUER = 'edge-testkit-token-issuer';

export type RegistryAuth = 'none' | 'basic' | 'token';

/** Actions one user may take on the repositories that match `repository`. */
export interface AccessRule {
  /** An exact repository name, or a prefix followed by '*' ('test/*', or '*' for all). */
  repository: string;
  actions: ('pull' | 'push' | 'delete' | '*')[];
}

/** One requested or granted resource scope of the Docker token protocol. */
export interface TokenScope {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Decides what a token request may get. `username` is undefined for anonymous requests. The token
 * server grants the intersection of the requested scopes and the returned `access`.
 */
export type TokenAuthorizer = (request: {
  username?: string;
  password?: string;
  scopes: TokenScope[];
}) => Promise<{ ok: true; subject: string; access: TokenScope[] } | { ok: false }>;

export interface RegistryUser {
  password: string;
  /** Token mode only; default: every action on every repository. */
  access?: AccessRule[];
}

export interface StartRegistryOptions {
  /** Default 'none'. */
  auth?: RegistryAuth;
  /** Blob GET and HEAD return 307 to a second origin that serves the storage folder. */
  redirectBlobs?: boolean;
  /** Token mode: lifetime of issued tokens in seconds (default 300). */
  tokenTtlSeconds?: number;
  /** Users for basic and token mode; default one user with a random password. */
  users?: Record<string, RegistryUser>;
  /** Token mode: decides every token request in place of the users table. */
  tokenAuthorizer?: TokenAuthorizer;
  /** Sets storage.delete.enabled (default true). */
  deleteEnabled?: boolean;
  /** Token mode: name the signing key by libtrust 'kid' (default) or by 'x5c' certificate. */
  tokenKeyHeader?: 'kid' | 'x5c';
}

export interface RegistryHandle {
  /** 'http://127.0.0.1:PORT' */
  url: string;
  /** '127.0.0.1:PORT', for skopeo docker:// references. */
  host: string;
  /** The first user's credentials (basic and token mode). */
  username?: string;
  password?: string;
  /** Storage root (docker-registry `rootdirectory`). */
  dataDir: string;
  /** Token mode: the token server, with a live count of issued tokens. */
  tokenServer?: TokenServer;
  /** redirectBlobs: the origin that serves blob bytes, with live request counters. */
  blobOrigin?: BlobOrigin;
  /** The running docker-registry; replaced by `restart()`. */
  process: ManagedProcess;
  /** Ends the processes by PID and removes the registry's folder. */
  stop(): Promise<void>;
  /** Stops docker-registry (SIGTERM) and starts it again on the same port with the same data. */
  restart(): Promise<void>;
}

const accessRuleSchema = z.object({
  repository: z.string().min(1),
  actions: z.array(z.enum(['pull', 'push', 'delete', '*'])),
});

const optionsSchema = z.object({
  auth: z.enum(['none', 'basic', 'token']).default('none'),
  redirectBlobs: z.boolean().default(false),
  tokenTtlSeconds: z.number().int().default(300),
  users: z
    .record(
      z.string().regex(/^[^:\s]+$/, 'a user name must not contain ":" or white space'),
      z.object({ password: z.string().min(1), access: z.array(accessRuleSchema).optional() }),
    )
    .optional(),
  deleteEnabled: z.boolean().default(true),
  tokenKeyHeader: z.enum(['kid', 'x5c']).default('kid'),
});

type ParsedOptions = z.infer<typeof optionsSchema>;

function parseOptions(options: StartRegistryOptions): ParsedOptions {
  const { tokenAuthorizer: _authorizer, ...plain } = options;
  const result = optionsSchema.safeParse(plain);
  if (!result.success) {
    throw new TestkitError(
      'INVALID_OPTIONS',
      `startRegistry: invalid options: ${z.prettifyError(result.error)}`,
    );
  }
  if (result.data.users && Object.keys(result.data.users).length === 0) {
    throw new TestkitError(
      'INVALID_OPTIONS',
      'startRegistry: `users` is empty; give at least one user or leave it out',
    );
  }
  return result.data;
}

/** Cleanup steps run in reverse order by `stop()` and when a start fails half way. */
class Cleanup {
  private readonly steps: (() => Promise<void>)[] = [];

  add(step: () => Promise<void>): void {
    this.steps.push(step);
  }

  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const step of this.steps.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'registry cleanup failed');
  }
}

async function writeHtpasswd(path: string, users: Record<string, RegistryUser>): Promise<void> {
  // bcrypt only: docker-registry ignores other htpasswd hash types. The file must exist before
  // the registry starts, otherwise it creates one with a random default user.
  let first = true;
  for (const [username, user] of Object.entries(users)) {
    const flags = first ? '-Bbc' : '-Bb';
    await runCommand('htpasswd', [flags, path, username, user.password], {
      secrets: [user.password],
    });
    first = false;
  }
}

interface RegistryConfigInput {
  port: number;
  dataDir: string;
  deleteEnabled: boolean;
  htpasswdPath?: string;
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  redirectBaseUrl?: string;
}

/**
 * Builds the docker-registry configuration. It is written as JSON, which the registry's YAML
 * parser reads as well. No reporting, notifications, proxy or redis sections: without them the
 * registry makes no outgoing connections.
 */
function registryConfig(input: RegistryConfigInput): Record<string, unknown> {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: 'warn', accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: input.dataDir },
      delete: { enabled: input.deleteEnabled },
      // Upload purging runs in the background every 24 h by default; tests gain nothing from it.
      maintenance: { uploadpurging: { enabled: false } },
    },
    // A fixed secret keeps upload state tokens valid across restarts of the same registry.
    http: { addr: `127.0.0.1:${input.port}`, secret: 'edge-testkit-http-secret' },
  };
  if (input.htpasswdPath) {
    config.auth = { htpasswd: { realm: 'edge-testkit', path: input.htpasswdPath } };
  }
  if (input.token) {
    config.auth = {
      token: {
        realm: input.token.realm,
        service: input.token.service,
        issuer: input.token.issuer,
        rootcertbundle: input.token.rootCertBundle,
      },
    };
  }
  if (input.redirectBaseUrl) {
    config.middleware = {
      storage: [{ name: 'redirect', options: { baseurl: input.redirectBaseUrl } }],
    };
  }
  return config;
}

/**
 * Starts docker-registry on `fixedPort`, or on a free port with retries when another process
 * takes the port in between.
 */
async function spawnRegistry(
  dir: string,
  config: Omit<RegistryConfigInput, 'port'>,
  fixedPort?: number,
): Promise<{ process: ManagedProcess; port: number }> {
  let lastError: unknown;
  const attempts = fixedPort === undefined ? REGISTRY_START_ATTEMPTS : 1;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const port = fixedPort ?? (await getFreePort());
    const configPath = join(dir, 'config.yml');
    await writeFile(configPath, JSON.stringify(registryConfig({ ...config, port }), null, 2));
    const child = spawnProcess(REGISTRY_BINARY, ['serve', configPath], {
      name: 'docker-registry',
    });
    try {
      await waitForHttp(`http://127.0.0.1:${port}/v2/`, {
        expectStatus: [200, 401],
        timeoutMs: REGISTRY_READY_TIMEOUT_MS,
        process: child,
      });
      return { process: child, port };
    } catch (err) {
      lastError = err;
      await child.stop('SIGKILL');
      if (!child.output().includes('address already in use')) break;
    }
  }
  throw new TestkitError(
    'REGISTRY_START_FAILED',
    `docker-registry in ${dir} did not start: ${String(lastError)}; ` +
      `check that ${REGISTRY_BINARY} is installed (Debian package docker-registry)`,
    { cause: lastError },
  );
}

/**
 * Starts a real docker-registry 2.8 process on 127.0.0.1 with its own storage folder, in one of
 * three auth modes, optionally redirecting blob reads to a second origin. Call `stop()` in an
 * afterAll hook.
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<RegistryHandle> {
  const opts = parseOptions(options);
  const cleanup = new Cleanup();
  const dir = await mkdtemp(join(tmpdir(), 'edge-testkit-registry-'));
  cleanup.add(() => rm(dir, { recursive: true, force: true }));
  try {
    const dataDir = join(dir, 'data');
    await mkdir(dataDir);
    const users = opts.users ?? {
      [DEFAULT_USERNAME]: { password: randomBytes(12).toString('hex') },
    };
    const [username, firstUser] = Object.entries(users)[0] ?? [];
    let htpasswdPath: string | undefined;
    if (opts.auth === 'basic') {
      htpasswdPath = join(dir, 'htpasswd');
      await writeHtpasswd(htpasswdPath, users);
    }

    let tokenServer: TokenServer | undefined;
    if (opts.auth === 'token') {
      const server = await startTokenServer({
        issuer: TOKEN_ISSUER,
        service: TOKEN_SERVICE,
        ttlSeconds: opts.tokenTtlSeconds,
        authorize: options.tokenAuthorizer ?? usersAuthorizer(users),
        keyHeader: opts.tokenKeyHeader,
      });
      tokenServer = server;
      cleanup.add(() => server.stop());
    }

    let blobOrigin: BlobOrigin | undefined;
    if (opts.redirectBlobs) {
      const origin = await startBlobOrigin(dataDir);
      blobOrigin = origin;
      cleanup.add(() => origin.stop());
    }

    const config: Omit<RegistryConfigInput, 'port'> = {
      dataDir,
      deleteEnabled: opts.deleteEnabled,
      htpasswdPath,
      token: tokenServer && {
        realm: tokenServer.realm,
        service: tokenServer.service,
        issuer: tokenServer.issuer,
        rootCertBundle: tokenServer.certPath,
      },
      redirectBaseUrl: blobOrigin?.url,
    };
    const started = await spawnRegistry(dir, config);
    const withCredentials = opts.auth !== 'none';
    const handle: RegistryHandle = {
      url: `http://127.0.0.1:${started.port}`,
      host: `127.0.0.1:${started.port}`,
      username: withCredentials ? username : undefined,
      password: withCredentials ? firstUser?.password : undefined,
      dataDir,
      tokenServer,
      blobOrigin,
      process: started.process,
      stop: () => cleanup.run(),
      restart: async () => {
        await handle.process.stop('SIGTERM', REGISTRY_STOP_TIMEOUT_MS);
        handle.process = (await spawnRegistry(dir, config, started.port)).process;
      },
    };
    cleanup.add(() => handle.process.stop('SIGTERM', REGISTRY_STOP_TIMEOUT_MS));
    return handle;
  } catch (err) {
    await cleanup.run();
    throw err;
  }
}
