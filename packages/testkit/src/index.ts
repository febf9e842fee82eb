export { TestkitError } from './errors.js';
export type { TestkitErrorCode } from './errors.js';
export { getFreePort } from './ports.js';
export { redact, runCommand, spawnProcess, waitForHttp } from './process.js';
export type {
  CommandResult,
  ManagedProcess,
  ProcessExit,
  SpawnOptions,
  WaitForHttpOptions,
} from './process.js';
export { startRegistry } from './registry.js';
export type {
  AccessRule,
  RegistryAuth,
  RegistryHandle,
  RegistryUser,
  StartRegistryOptions,
  TokenAuthorizer,
  TokenScope,
} from './registry.js';
export { buildTestImages } from './images.js';
export type { BuildTestImagesOptions, ReferrersIndex, TestImage, TestImages } from './images.js';
export { pushTestImages, skopeoInspectRawDigest } from './push.js';
export type { PushTestImagesOptions } from './push.js';
export { MANIFEST_ACCEPT } from './media-types.js';
export { startFaultProxy } from './fault-proxy.js';
export type { FaultProxy, FaultProxyCounters, FaultRules } from './fault-proxy.js';
export {
  intersectScopes,
  libtrustKeyId,
  parseScope,
  startTokenServer,
  usersAuthorizer,
} from './token-server.js';
export type { TokenServer, TokenServerOptions } from './token-server.js';
export { startBlobOrigin } from './blob-origin.js';
export type { BlobOrigin } from './blob-origin.js';
export { provisionTestDatabase, templateDatabaseName } from './database.js';
export type { ProvisionTestDatabaseOptions, TestDatabase } from './database.js';
export {
  isSmokeMode,
  measureCommand,
  measureFunction,
  printTable,
  runAlternating,
  summarize,
  writeBenchResults,
} from './bench.js';
export type {
  BenchComparison,
  BenchSide,
  Figure,
  MeasureCommandOptions,
  Measurement,
  SideResult,
  Stats,
} from './bench.js';
