/** Stable codes of quickstart failures; scripts may branch on them, never on the message. */
export type QuickstartErrorCode =
  | 'ARGUMENTS_INVALID'
  | 'PORT_IN_USE'
  | 'DATA_DIR_INVALID'
  | 'SERVICE_FAILED'
  | 'SERVICE_TIMEOUT'
  | 'BUILD_MISSING'
  | 'GROUND_CONTROL_REQUEST_FAILED'
  | 'UPSTREAM_FAILED'
  | 'SYNC_TIMEOUT'
  | 'SYNC_FAILED';

/** A quickstart failure; the message states what failed, on which value and what to do next. */
export class QuickstartError extends Error {
  constructor(
    readonly code: QuickstartErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'QuickstartError';
  }
}
