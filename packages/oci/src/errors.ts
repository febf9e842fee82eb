/**
 * Stable error codes of this package. The registry codes come from the OCI distribution
 * specification's error table; the others describe failures detected on the client side.
 */
export type OciErrorCode =
  // Registry error codes (OCI distribution spec), plus the ones docker-registry 2.8 adds.
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
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOO_MANY_REQUESTS'
  // Input the caller or a registry gave that this package cannot accept.
  | 'INVALID_REFERENCE'
  | 'INVALID_DIGEST'
  | 'UNSUPPORTED_DIGEST_ALGORITHM'
  | 'INVALID_MANIFEST'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'MANIFEST_TOO_LARGE'
  | 'INVALID_PLATFORM'
  // Transfer and protocol failures.
  | 'DIGEST_MISMATCH'
  | 'SIZE_MISMATCH'
  | 'INVALID_RESPONSE'
  | 'AUTH_FAILED'
  | 'TOO_MANY_REDIRECTS'
  | 'PAGINATION_LOOP'
  | 'TIMEOUT'
  | 'DEADLINE_EXCEEDED'
  | 'NETWORK_ERROR'
  | 'SERVER_ERROR'
  | 'NOT_FOUND'
  | 'HTTP_ERROR'
  | 'ABORTED';

/** One entry of the registry error envelope `{"errors":[{code,message,detail}]}`. */
export interface RegistryErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

export interface OciErrorOptions {
  status?: number;
  method?: string;
  /** Request URL; it is redacted before it is stored. */
  url?: string;
  registryErrors?: RegistryErrorEntry[];
  /** Seconds the server asked the client to wait (from `Retry-After`). */
  retryAfterSeconds?: number;
  cause?: unknown;
}

/** Error raised for every failure this package detects; switch on `code`. */
export class OciError extends Error {
  override readonly name = 'OciError';
  readonly code: OciErrorCode;
  readonly status: number | undefined;
  readonly method: string | undefined;
  /** Request URL with user info and query values removed. */
  readonly url: string | undefined;
  readonly registryErrors: RegistryErrorEntry[];
  readonly retryAfterSeconds: number | undefined;

  constructor(code: OciErrorCode, message: string, options: OciErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
    this.method = options.method;
    this.url = options.url === undefined ? undefined : redactUrl(options.url);
    this.registryErrors = options.registryErrors ?? [];
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isOciError(value: unknown, code?: OciErrorCode): value is OciError {
  return value instanceof OciError && (code === undefined || value.code === code);
}

/**
 * Removes user info and every query value from a URL, because pre-signed blob URLs and
 * upload session URLs carry credentials or session state in the query string. Parameter
 * names are kept so a log still shows the shape of the request.
 */
export function redactUrl(input: string | URL): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    return '<invalid URL>';
  }
  url.username = '';
  url.password = '';
  const names = [...url.searchParams.keys()];
  if (names.length > 0) {
    url.search = names.map((name) => `${encodeURIComponent(name)}=REDACTED`).join('&');
  }
  url.hash = '';
  return url.toString();
}
