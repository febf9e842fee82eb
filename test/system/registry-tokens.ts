// Registry token requests made the way a pulling client makes them, so that a test can hold a
// token issued before a change of access and check when the registry stops accepting it.
import { MANIFEST_ACCEPT } from '@edge/testkit';
import type { RegistryHandle } from '@edge/testkit';
import type { UpstreamCredential } from './harness.js';

/** Requests a pull token for `repository`, or returns undefined when the token server rejects it. */
export async function requestPullToken(
  registry: RegistryHandle,
  credential: UpstreamCredential,
  repository: string,
): Promise<string | undefined> {
  const tokenServer = registry.tokenServer;
  if (!tokenServer) throw new Error(`registry ${registry.url} does not run in token mode`);
  const url = new URL(tokenServer.realm);
  url.searchParams.set('service', tokenServer.service);
  url.searchParams.set('scope', `repository:${repository}:pull`);
  const basic = Buffer.from(`${credential.username}:${credential.password}`).toString('base64');
  const response = await fetch(url, { headers: { authorization: `Basic ${basic}` } });
  const body = (await response.json()) as { token?: string };
  return response.status === 200 ? body.token : undefined;
}

/** Status of a manifest GET on the registry with a bearer token. */
export async function manifestStatus(
  registry: RegistryHandle,
  token: string,
  repository: string,
  reference: string,
): Promise<number> {
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${reference}`, {
    headers: { authorization: `Bearer ${token}`, accept: MANIFEST_ACCEPT },
  });
  await response.arrayBuffer();
  return response.status;
}

/**
 * Requests a pull token that docker-registry 2.8 accepts for about `lifetimeSeconds` only.
 * The registry accepts a token up to 60 s after its `exp`, so the token server issues it with
 * a lifetime of `lifetimeSeconds - 60`. Afterwards the token server gets `restoreTtlSeconds`.
 */
export async function requestShortLivedPullToken(
  registry: RegistryHandle,
  credential: UpstreamCredential,
  repository: string,
  lifetimeSeconds: number,
  restoreTtlSeconds: number,
): Promise<string> {
  const tokenServer = registry.tokenServer;
  if (!tokenServer) throw new Error(`registry ${registry.url} does not run in token mode`);
  tokenServer.setTtlSeconds(lifetimeSeconds - REGISTRY_EXPIRY_LEEWAY_SECONDS);
  try {
    const token = await requestPullToken(registry, credential, repository);
    if (token === undefined) {
      throw new Error(`the token server rejected ${credential.username} for ${repository}`);
    }
    return token;
  } finally {
    tokenServer.setTtlSeconds(restoreTtlSeconds);
  }
}

/** Time docker-registry 2.8 still accepts a token after its `exp` claim, in seconds. */
const REGISTRY_EXPIRY_LEEWAY_SECONDS = 60;
