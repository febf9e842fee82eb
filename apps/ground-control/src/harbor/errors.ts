// Errors of the Harbor client. Each one has a stable `code`, the HTTP status when Harbor sent one,
// and a message that names the request and the next step. Messages never contain the account
// password or a robot secret. They include Harbor's own error text, which does not echo either.

export type HarborClientErrorCode =
  /** Harbor could not be reached: connection refused, DNS failure, TLS failure. */
  | 'HARBOR_UNREACHABLE'
  /** No complete response within the client's timeout. */
  | 'HARBOR_TIMEOUT'
  /** 401: Harbor rejected Ground Control's account (wrong username or password). */
  | 'HARBOR_UNAUTHORIZED'
  /** 403: the account is valid but lacks the role, e.g. system admin for robot accounts. */
  | 'HARBOR_FORBIDDEN'
  /** 404: the robot or project does not exist. */
  | 'HARBOR_NOT_FOUND'
  /** 409: a robot with that name already exists. */
  | 'HARBOR_CONFLICT'
  /** 400 or 422: Harbor rejected the request body or parameters. */
  | 'HARBOR_BAD_REQUEST'
  /** 5xx or another unexpected status. */
  | 'HARBOR_SERVER_ERROR'
  /** A 2xx response whose body does not match Harbor's API document. */
  | 'HARBOR_INVALID_RESPONSE';

export interface HarborClientErrorDetails {
  status?: number | undefined;
  method: string;
  /** Request path without the query string. */
  path: string;
  /** The first `code` of Harbor's `{ errors: [...] }` envelope, e.g. `CONFLICT`. */
  harborCode?: string | undefined;
  /** Harbor's `X-Request-Id`, to find the request in Harbor's logs. */
  requestId?: string | undefined;
  cause?: unknown;
}

export class HarborClientError extends Error {
  readonly code: HarborClientErrorCode;
  readonly status: number | undefined;
  readonly method: string;
  readonly path: string;
  readonly harborCode: string | undefined;
  readonly requestId: string | undefined;

  constructor(code: HarborClientErrorCode, message: string, details: HarborClientErrorDetails) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'HarborClientError';
    this.code = code;
    this.status = details.status;
    this.method = details.method;
    this.path = details.path;
    this.harborCode = details.harborCode;
    this.requestId = details.requestId;
  }
}

/** Maps an HTTP status from Harbor to the client's error code. */
export function errorCodeForStatus(status: number): HarborClientErrorCode {
  if (status === 400 || status === 422) return 'HARBOR_BAD_REQUEST';
  if (status === 401) return 'HARBOR_UNAUTHORIZED';
  if (status === 403) return 'HARBOR_FORBIDDEN';
  if (status === 404) return 'HARBOR_NOT_FOUND';
  if (status === 409) return 'HARBOR_CONFLICT';
  return 'HARBOR_SERVER_ERROR';
}

/** The next step to suggest for each error code, written for an operator. */
export const NEXT_STEP: Record<HarborClientErrorCode, string> = {
  HARBOR_UNREACHABLE: 'check the registry URL, the network path and the TLS settings',
  HARBOR_TIMEOUT: 'check that Harbor is up and not overloaded, then retry',
  HARBOR_UNAUTHORIZED: "check the Harbor account's username and password",
  HARBOR_FORBIDDEN: 'give the Harbor account the system admin role, which robot management needs',
  HARBOR_NOT_FOUND: 'check that the robot or project still exists in Harbor',
  HARBOR_CONFLICT: 'pick another robot name or adopt the existing robot with findRobotByName',
  HARBOR_BAD_REQUEST: 'check the request fields against the message from Harbor',
  HARBOR_SERVER_ERROR: "retry later and check Harbor's logs for the request id",
  HARBOR_INVALID_RESPONSE: 'check that the URL points at Harbor v2 and not at another service',
};
