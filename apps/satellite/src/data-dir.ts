import { join } from 'node:path';

/**
 * Paths inside the data folder. The layout is documented in the package README, because
 * `satellite status` and benchmarks read or reset these files while the daemon runs.
 */
export interface DataDirLayout {
  root: string;
  /** Satellite id, Ground Control URL and public JWK. */
  identityFile: string;
  /** Ed25519 private key (PKCS#8 PEM), file mode 0600. */
  privateKeyFile: string;
  /** Last desired state received from Ground Control, with its ETag. */
  desiredStateFile: string;
  /** Latest local status (what is present, pending, failed). */
  statusFile: string;
  /** Records of artifacts this satellite placed in the local registry. */
  placementsFile: string;
  /** Partial blob downloads, one file per digest, resumed with Range after a restart. */
  partialsDir: string;
  /** The embedded registry's OCI image layout. */
  storeDir: string;
  /** Addresses the running daemon listens on, and its process id. */
  runtimeFile: string;
  /** Present while Ground Control reports this satellite as revoked. */
  revokedFile: string;
}

export function dataDirLayout(root: string): DataDirLayout {
  return {
    root,
    identityFile: join(root, 'identity.json'),
    privateKeyFile: join(root, 'identity.key'),
    desiredStateFile: join(root, 'desired-state.json'),
    statusFile: join(root, 'status.json'),
    placementsFile: join(root, 'placements.json'),
    partialsDir: join(root, 'partial'),
    storeDir: join(root, 'store'),
    runtimeFile: join(root, 'runtime.json'),
    revokedFile: join(root, 'revoked'),
  };
}
