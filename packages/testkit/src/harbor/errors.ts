// Harbor v2.0 error envelope: every failed call returns `{ errors: [{ code, message }] }`, and the
// code decides the status (BAD_REQUEST 400, UNAUTHORIZED 401, FORBIDDEN and DENIED 403, NOT_FOUND
// 404, CONFLICT 409, UNPROCESSABLE_ENTITY 422 for parameter validation, UNKNOWN 500).

export type HarborErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'DENIED'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'UNPROCESSABLE_ENTITY'
  | 'UNKNOWN';

const statusByCode: Record<HarborErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  DENIED: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNPROCESSABLE_ENTITY: 422,
  UNKNOWN: 500,
};

/** A failure that the double sends as Harbor's error envelope. */
export class HarborApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: HarborErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HarborApiError';
    this.status = statusByCode[code];
  }
}

export interface HarborErrorBody {
  errors: { code: string; message: string }[];
}

export function errorBody(code: string, message: string): HarborErrorBody {
  return { errors: [{ code, message }] };
}

export const badRequest = (message: string) => new HarborApiError('BAD_REQUEST', message);
export const unauthorized = () => new HarborApiError('UNAUTHORIZED', 'unauthorized');
export const forbidden = (message = 'forbidden') => new HarborApiError('FORBIDDEN', message);
export const notFound = (message: string) => new HarborApiError('NOT_FOUND', message);
export const conflict = (message: string) => new HarborApiError('CONFLICT', message);
export const unprocessable = (message: string) =>
  new HarborApiError('UNPROCESSABLE_ENTITY', message);
