import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SecretBox, SecretBoxError } from './secrets.js';

const key = () => randomBytes(32).toString('base64');

describe('SecretBox', () => {
  it('round-trips and never repeats a ciphertext', () => {
    const box = new SecretBox(key());
    const first = box.encrypt('robot secret');
    expect(first).not.toContain('robot secret');
    expect(box.encrypt('robot secret')).not.toBe(first);
    expect(box.decrypt(first)).toBe('robot secret');
  });

  it('decrypts with a retired key', () => {
    const old = key();
    const ciphertext = new SecretBox(old).encrypt('from before');
    expect(new SecretBox(key(), [old]).decrypt(ciphertext)).toBe('from before');
    expect(() => new SecretBox(key()).decrypt(ciphertext)).toThrow(SecretBoxError);
  });

  it('detects tampering', () => {
    const box = new SecretBox(key());
    const parts = box.encrypt('value').split(':');
    parts[4] = Buffer.from('other').toString('base64url');
    expect(() => box.decrypt(parts.join(':'))).toThrow(/failed authentication/);
  });

  it('rejects keys of the wrong size', () => {
    expect(() => new SecretBox(randomBytes(16).toString('base64'))).toThrow(/32 bytes/);
  });
});
