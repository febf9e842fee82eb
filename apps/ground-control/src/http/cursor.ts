import { AppError } from '../errors.js';

/** Opaque page cursors: the sort key of the last item, base64url-encoded. */
export function encodeCursor(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const value = Buffer.from(cursor, 'base64url').toString('utf8');
  if (value === '' || encodeCursor(value) !== cursor) {
    throw new AppError(
      'VALIDATION_FAILED',
      'cursor is invalid; pass nextCursor from the last page',
      {
        details: { issues: [{ path: 'querystring.cursor', message: 'invalid cursor' }] },
      },
    );
  }
  return value;
}
