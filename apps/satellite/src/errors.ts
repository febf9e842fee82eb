/** Stable error codes of the satellite. Each one names a failure an operator can act on. */
export type SatelliteErrorCode =
  | 'SETTINGS_INVALID'
  | 'CONFIG_FILE_INVALID'
  | 'JOIN_TOKEN_MISSING'
  | 'JOIN_REJECTED'
  | 'IDENTITY_INVALID'
  | 'GROUND_CONTROL_UNREACHABLE'
  | 'GROUND_CONTROL_RESPONSE_INVALID'
  | 'GROUND_CONTROL_REJECTED'
  | 'IDENTITY_REJECTED'
  | 'SATELLITE_REVOKED'
  | 'STATE_FILE_INVALID'
  | 'UPSTREAM_UNKNOWN'
  | 'ARTIFACT_FAILED'
  | 'DISK_SPACE_LOW'
  | 'LOCAL_REGISTRY_FAILED'
  | 'DATA_DIR_LOCKED';

/** An error with a stable `code`; the message says what failed, on which value, and what to do. */
export class SatelliteError extends Error {
  readonly code: SatelliteErrorCode;

  constructor(code: SatelliteErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SatelliteError';
    this.code = code;
  }
}

export function isSatelliteError(
  error: unknown,
  code?: SatelliteErrorCode,
): error is SatelliteError {
  return error instanceof SatelliteError && (code === undefined || error.code === code);
}

/** Returns a short message for logs and status reports, whatever was thrown. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Returns the stable code of an error from this app or from a package that sets `code`. */
export function errorCode(error: unknown): string {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = error.code;
    if (typeof code === 'string') return code;
  }
  return 'INTERNAL';
}
