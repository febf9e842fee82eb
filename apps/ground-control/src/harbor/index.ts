export { DEFAULT_ROBOT_PREFIX, HarborClient, createHarborClient } from './client.js';
export type {
  CreateRobotInput,
  CreatedRobot,
  HarborClientOptions,
  HarborHealth,
  HarborProject,
  HarborRegistrySettings,
  HarborRobot,
  RefreshedSecret,
} from './client.js';
export { HarborClientError, errorCodeForStatus } from './errors.js';
export type { HarborClientErrorCode } from './errors.js';
export { DEFAULT_TIMEOUT_MS } from './http.js';
export { HARBOR_NAME_PATTERN, pullProjectsOf, robotPermissionsForProjects } from './permissions.js';
export type { HarborAccess, HarborRobotPermission } from './permissions.js';
