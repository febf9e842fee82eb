import { ERROR_STATUS, type ErrorCode } from '@edge/contract';

export interface AppErrorOptions {
  details?: Record<string, unknown>;
  cause?: unknown;
  /** Extra response headers, such as `Retry-After`. */
  headers?: Record<string, string>;
}

/** The one error class of Ground Control; the error handler renders it as the error envelope. */
export class AppError extends Error {
  readonly statusCode: number;
  readonly details: Record<string, unknown> | undefined;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(message, { cause: options.cause });
    this.name = 'AppError';
    this.statusCode = ERROR_STATUS[code];
    this.details = options.details;
    this.headers = options.headers ?? {};
  }
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

export function notFound(resource: string, name: string): AppError {
  return new AppError('NOT_FOUND', `${resource} "${name}" not found; list them to see the names`, {
    details: { resource, name },
  });
}

export function alreadyExists(resource: string, name: string): AppError {
  return new AppError(
    'ALREADY_EXISTS',
    `${resource} "${name}" already exists; choose another name or update the existing one`,
    { details: { resource, name } },
  );
}

export function inUse(resource: string, name: string, referencedBy: string[]): AppError {
  return new AppError(
    'IN_USE',
    `${resource} "${name}" is still used by ${referencedBy.join(', ')}; remove those references first`,
    { details: { resource, name, referencedBy } },
  );
}

export function unauthenticated(message: string): AppError {
  return new AppError('UNAUTHENTICATED', message);
}

export function forbidden(message: string): AppError {
  return new AppError('FORBIDDEN', message);
}
