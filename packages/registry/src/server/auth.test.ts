import { describe, expect, it } from 'vitest';
import { Authenticator } from './auth.js';

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

const reader = { username: 'reader', password: 'read-pass' };
const writer = { username: 'writer', password: 'write-pass' };

describe('Authenticator', () => {
  it('no credentials leave everything open', () => {
    const auth = new Authenticator();
    expect(() => auth.authorize(undefined, 'pull')).not.toThrow();
    expect(() => auth.authorize(undefined, 'push')).not.toThrow();
  });

  it('push credentials alone keep pull anonymous', () => {
    const auth = new Authenticator({ push: [writer] });
    expect(() => auth.authorize(undefined, 'pull')).not.toThrow();
    expect(() => auth.authorize(undefined, 'push')).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED' }),
    );
    expect(() => auth.authorize(basic('writer', 'write-pass'), 'push')).not.toThrow();
  });

  it('pull credentials alone also guard push', () => {
    const auth = new Authenticator({ pull: [reader] });
    expect(() => auth.authorize(undefined, 'push')).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED' }),
    );
    expect(() => auth.authorize(basic('reader', 'read-pass'), 'push')).not.toThrow();
    expect(() => auth.authorize(basic('reader', 'wrong'), 'pull')).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED' }),
    );
  });

  it('pull-only user is denied push', () => {
    const auth = new Authenticator({ pull: [reader], push: [writer] });
    expect(() => auth.authorize(basic('reader', 'read-pass'), 'push')).toThrow(
      expect.objectContaining({ code: 'DENIED' }),
    );
    expect(() => auth.authorize(basic('writer', 'write-pass'), 'pull')).not.toThrow();
    expect(() => auth.authorize('Bearer abc', 'pull')).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED' }),
    );
  });
});
