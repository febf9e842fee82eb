import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY } from './defaults.js';
import { errorFromResponse, parseErrorEnvelope } from './response-errors.js';
import { backoffDelayMs, isRetryableError, retryAfterMs } from './retry.js';
import { OciError } from '../errors.js';

const context = {
  method: 'GET',
  url: 'https://user:pw@r.example/v2/a/manifests/1?sig=abc',
  status: 404,
};

describe('errorFromResponse', () => {
  it.each([
    [
      404,
      '{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
      'MANIFEST_UNKNOWN',
    ],
    [404, '404 page not found\n', 'NOT_FOUND'],
    [401, '', 'UNAUTHORIZED'],
    [
      403,
      '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
      'DENIED',
    ],
    [429, 'slow down', 'TOO_MANY_REQUESTS'],
    [429, '{"errors":[{"code":"DENIED"}]}', 'TOO_MANY_REQUESTS'],
    [429, '{"errors":[{"code":"TOOMANYREQUESTS"}]}', 'TOO_MANY_REQUESTS'],
    [503, '<html>bad gateway</html>', 'SERVER_ERROR'],
    [
      400,
      '{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"}]}',
      'DIGEST_INVALID',
    ],
    [400, '{"errors":[{"code":"SOMETHING_NEW"}]}', 'HTTP_ERROR'],
    [400, '{"errors":[]}', 'HTTP_ERROR'],
    [400, '{"errors":"nope"}', 'HTTP_ERROR'],
  ])('maps %d %j to %s', (status, body, code) => {
    const error = errorFromResponse({ ...context, status }, body);
    expect(error.code).toBe(code);
    expect(error.status).toBe(status);
    expect(error.method).toBe('GET');
  });

  it('redacts the URL in message and field', () => {
    const error = errorFromResponse(context, '');
    expect(error.url).toBe('https://r.example/v2/a/manifests/1?sig=REDACTED');
    expect(error.message).not.toContain('pw');
    expect(error.message).not.toContain('abc');
  });

  it('uses the not-found code of the call', () => {
    expect(errorFromResponse({ ...context, notFoundCode: 'BLOB_UNKNOWN' }, '').code).toBe(
      'BLOB_UNKNOWN',
    );
  });

  it('keeps the envelope entries', () => {
    expect(
      parseErrorEnvelope('{"errors":[{"code":"NAME_UNKNOWN","detail":{"name":"x"}}]}'),
    ).toEqual([{ code: 'NAME_UNKNOWN', detail: { name: 'x' } }]);
    expect(parseErrorEnvelope('not json')).toBeUndefined();
  });
});

describe('retry helpers', () => {
  it('doubles the backoff up to the cap', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, baseDelayMs: 100, maxDelayMs: 1000 };
    expect([1, 2, 3, 4, 5].map((retry) => backoffDelayMs(retry, policy, () => 0.5))).toEqual([
      50, 100, 200, 400, 500,
    ]);
    expect(backoffDelayMs(3, policy, () => 0)).toBe(0);
  });

  it('caps Retry-After', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, maxRetryAfterMs: 5000 };
    expect(retryAfterMs('3', 0, policy)).toBe(3000);
    expect(retryAfterMs('3600', 0, policy)).toBe(5000);
    expect(retryAfterMs(undefined, 0, policy)).toBeUndefined();
  });

  it.each([
    [new OciError('NETWORK_ERROR', 'x'), true],
    [new OciError('TIMEOUT', 'x'), true],
    [new OciError('SERVER_ERROR', 'x', { status: 502 }), true],
    [new OciError('HTTP_ERROR', 'x', { status: 501 }), false],
    [new OciError('DENIED', 'x', { status: 403 }), false],
    [Object.assign(new Error('reset'), { code: 'ECONNRESET' }), true],
    [new Error('plain'), false],
  ])('classifies %s', (error, expected) => {
    expect(isRetryableError(error)).toBe(expected);
  });
});
