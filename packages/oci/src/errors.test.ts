import { describe, expect, it } from 'vitest';
import { OciError, isOciError, redactUrl } from './errors.js';

describe('redactUrl', () => {
  it.each([
    ['https://user:pw@r.example/v2/a/blobs/x', 'https://r.example/v2/a/blobs/x'],
    [
      'https://s3.example/b?X-Amz-Signature=abc&X-Amz-Credential=k',
      'https://s3.example/b?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED',
    ],
    [
      'http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=secret#frag',
      'http://127.0.0.1:5000/v2/a/blobs/uploads/u?_state=REDACTED',
    ],
    ['not a url', '<invalid URL>'],
  ])('redacts %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });
});

describe('OciError', () => {
  it('stores a redacted URL and the code', () => {
    const error = new OciError('BLOB_UNKNOWN', 'missing', {
      status: 404,
      method: 'GET',
      url: 'http://u:p@h/x?sig=1',
    });
    expect(error.url).toBe('http://h/x?sig=REDACTED');
    expect(error.status).toBe(404);
    expect(isOciError(error, 'BLOB_UNKNOWN')).toBe(true);
    expect(isOciError(error, 'DENIED')).toBe(false);
    expect(isOciError(new Error('x'))).toBe(false);
  });
});
