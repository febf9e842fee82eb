/**
 * Codes of the distribution error envelope. Most come from the OCI distribution spec 1.1.
 * `TAG_INVALID` and `PAGINATION_NUMBER_INVALID` are CNCF Distribution's. `RANGE_INVALID` (416 on
 * a blob GET), `MANIFEST_REFERENCED` (a delete that would leave an index incomplete),
 * `STORE_CORRUPT` and `STORE_LOCKED` belong to this registry.
 */
export type RegistryErrorCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'RANGE_INVALID'
  | 'TAG_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'MANIFEST_REFERENCED'
  | 'PAGINATION_NUMBER_INVALID'
  | 'STORE_CORRUPT'
  | 'STORE_LOCKED';

/** HTTP status that the server sends for each code unless a handler chooses another. */
const DEFAULT_STATUS: Record<RegistryErrorCode, number> = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  RANGE_INVALID: 416,
  TAG_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  MANIFEST_REFERENCED: 409,
  PAGINATION_NUMBER_INVALID: 400,
  STORE_CORRUPT: 500,
  STORE_LOCKED: 500,
};

/** Error raised by the store and the HTTP layer; `code` is stable and safe to switch on. */
export class RegistryError extends Error {
  override readonly name = 'RegistryError';
  readonly status: number;

  constructor(
    readonly code: RegistryErrorCode,
    message: string,
    readonly detail?: unknown,
    options?: { status?: number; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status ?? DEFAULT_STATUS[code];
  }
}

export function isRegistryError(value: unknown): value is RegistryError {
  return value instanceof RegistryError;
}
