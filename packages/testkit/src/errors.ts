/** Stable codes of every error the test kit raises; tests may `switch (err.code)`. */
export type TestkitErrorCode =
  | 'INVALID_OPTIONS'
  | 'PROCESS_START_FAILED'
  | 'COMMAND_FAILED'
  | 'HTTP_NOT_READY'
  | 'REGISTRY_START_FAILED'
  | 'TOKEN_SERVER_FAILED'
  | 'IMAGE_BUILD_FAILED'
  | 'IMAGE_CACHE_INVALID'
  | 'PUSH_FAILED'
  | 'DATABASE_PROVISION_FAILED'
  | 'BENCH_FAILED';

/** The one error class of the test kit: a stable `code`, a message naming the value and the fix. */
export class TestkitError extends Error {
  readonly code: TestkitErrorCode;

  constructor(code: TestkitErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TestkitError';
    this.code = code;
  }
}
