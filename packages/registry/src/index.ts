export { RegistryError, isRegistryError, type RegistryErrorCode } from './errors.js';
export {
  OciStore,
  DEFAULT_GC_GRACE_PERIOD_MS,
  DEFAULT_MAX_MANIFEST_BYTES,
  type OciStoreOptions,
  type ConsistencyProblem,
} from './store/store.js';
export {
  createRegistryServer,
  startRegistryServer,
  type RegistryServerOptions,
  type RunningRegistryServer,
} from './server/app.js';
export type { AuthOptions, Credential } from './server/auth.js';
export type { Descriptor } from './oci.js';
