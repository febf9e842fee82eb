export { startHarborDouble } from './double.js';
export type { HarborDouble, StartHarborDoubleOptions } from './double.js';
export type { HarborDoubleCounters } from './context.js';
export type { HarborErrorBody, HarborErrorCode } from './errors.js';
export type { HarborClock, HarborProjectRecord, HarborUser } from './store.js';
export type { HarborTokenGrant, HarborTokenRequest } from './token-authorizer.js';
export type { ProjectJson, RobotJson, RobotPermissionJson } from './views.js';
