import { describe, expect, it } from 'vitest';
import { withDigestQuery } from './upload.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('withDigestQuery', () => {
  it.each([
    [
      'http://r/v2/a/blobs/uploads/u',
      `http://r/v2/a/blobs/uploads/u?digest=sha256%3A${'a'.repeat(64)}`,
    ],
    [
      'http://r/v2/a/blobs/uploads/u?_state=ab%3D%3D',
      `http://r/v2/a/blobs/uploads/u?_state=ab%3D%3D&digest=sha256%3A${'a'.repeat(64)}`,
    ],
    [
      'https://s/upload?X-Sig=a+b&x=1',
      `https://s/upload?X-Sig=a+b&x=1&digest=sha256%3A${'a'.repeat(64)}`,
    ],
  ])('appends to %s', (input, expected) => {
    expect(withDigestQuery(new URL(input), DIGEST).toString()).toBe(expected);
  });

  it('leaves the input URL unchanged', () => {
    const input = new URL('http://r/u?_state=x');
    withDigestQuery(input, DIGEST);
    expect(input.toString()).toBe('http://r/u?_state=x');
  });
});
