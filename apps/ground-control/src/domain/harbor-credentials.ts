import { AppError } from '../errors.js';

/** Creates a Harbor API client for one registry; supplied once the Harbor client exists. */
export type HarborClientFactory = (registry: {
  url: string;
  username: string;
  password: string;
  caBundle: string | null;
  insecure: boolean;
}) => unknown;

/**
 * Robot accounts for `kind: harbor` registries.
 *
 * TODO: wire in the Harbor REST client from src/harbor once it has landed: create one robot per
 * satellite with pull access to the union of its groups' projects, update it on membership
 * changes, refresh its secret before expiry and delete it on revoke and delete. Until then,
 * creating a Harbor registry is rejected with NOT_AVAILABLE.
 */
export class HarborCredentials {
  constructor(private readonly factory: HarborClientFactory | undefined) {}

  get available(): boolean {
    return this.factory !== undefined;
  }

  assertAvailable(): void {
    if (!this.available) {
      throw new AppError(
        'NOT_AVAILABLE',
        'registries of kind harbor are not available in this build yet; use kind oci with a ' +
          'pull credential',
      );
    }
  }
}
