import { describe, expect, it } from 'vitest';
import { errorCodeForStatus } from './errors.js';

describe('errorCodeForStatus', () => {
  it.each([
    [400, 'HARBOR_BAD_REQUEST'],
    [401, 'HARBOR_UNAUTHORIZED'],
    [403, 'HARBOR_FORBIDDEN'],
    [404, 'HARBOR_NOT_FOUND'],
    [409, 'HARBOR_CONFLICT'],
    [422, 'HARBOR_BAD_REQUEST'],
    [500, 'HARBOR_SERVER_ERROR'],
    [502, 'HARBOR_SERVER_ERROR'],
    [418, 'HARBOR_SERVER_ERROR'],
  ])('maps status %d to %s', (status, code) => {
    expect(errorCodeForStatus(status)).toBe(code);
  });
});
