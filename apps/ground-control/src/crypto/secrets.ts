import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { writeFileAtomic } from '../files.js';

const KEY_BYTES = 32;
/** 96-bit nonces, the size GCM is specified for (NIST SP 800-38D). */
const IV_BYTES = 12;
const CIPHERTEXT_VERSION = 'v1';
export const GENERATED_KEY_FILE = 'encryption-key';

/** Raised when a key is malformed or a ciphertext cannot be decrypted with any known key. */
export class SecretBoxError extends Error {
  constructor(
    readonly code: 'KEY_INVALID' | 'KEY_UNKNOWN' | 'CIPHERTEXT_INVALID',
    message: string,
  ) {
    super(message);
    this.name = 'SecretBoxError';
  }
}

interface Key {
  id: string;
  bytes: Buffer;
}

function parseKey(base64: string, variable: string): Key {
  const bytes = Buffer.from(base64, 'base64');
  if (bytes.length !== KEY_BYTES || bytes.toString('base64') !== base64.replace(/\s/g, '')) {
    throw new SecretBoxError(
      'KEY_INVALID',
      `${variable} must be exactly 32 bytes in base64; generate one with \`openssl rand -base64 32\``,
    );
  }
  // The key id is a hash prefix: it identifies the key in ciphertexts without revealing it.
  const id = createHash('sha256').update(bytes).digest('hex').slice(0, 12);
  return { id, bytes };
}

/**
 * AES-256-GCM encryption of secrets at rest. Ciphertexts are `v1:<key id>:<iv>:<tag>:<data>`
 * (base64url parts), so retired keys can still decrypt what they wrote.
 */
export class SecretBox {
  private readonly current: Key;
  private readonly byId: Map<string, Key>;

  constructor(currentKey: string, oldKeys: readonly string[] = []) {
    this.current = parseKey(currentKey, 'GC_ENCRYPTION_KEY');
    this.byId = new Map([[this.current.id, this.current]]);
    for (const old of oldKeys) {
      const key = parseKey(old, 'GC_ENCRYPTION_KEYS_OLD');
      this.byId.set(key.id, key);
    }
  }

  get keyId(): string {
    return this.current.id;
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.bytes, iv);
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [CIPHERTEXT_VERSION, this.current.id, iv, tag, data]
      .map((part) => (typeof part === 'string' ? part : part.toString('base64url')))
      .join(':');
  }

  decrypt(ciphertext: string): string {
    const parts = ciphertext.split(':');
    const [version, keyId, iv, tag, data] = parts;
    if (parts.length !== 5 || version !== CIPHERTEXT_VERSION || !keyId || !iv || !tag || !data) {
      throw new SecretBoxError('CIPHERTEXT_INVALID', 'stored secret is not in the v1 format');
    }
    const key = this.byId.get(keyId);
    if (key === undefined) {
      throw new SecretBoxError(
        'KEY_UNKNOWN',
        `stored secret was encrypted with key id ${keyId}, which is neither GC_ENCRYPTION_KEY ` +
          'nor in GC_ENCRYPTION_KEYS_OLD; add the retired key to GC_ENCRYPTION_KEYS_OLD',
      );
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.bytes, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      const plain = Buffer.concat([
        decipher.update(Buffer.from(data, 'base64url')),
        decipher.final(),
      ]);
      return plain.toString('utf8');
    } catch (error) {
      throw new SecretBoxError(
        'CIPHERTEXT_INVALID',
        `stored secret failed authentication with key id ${keyId}: ${(error as Error).message}`,
      );
    }
  }
}

/**
 * Returns the configured key, or on the embedded database only reads or generates one in the
 * data folder (mode 0600), so that one command starts Ground Control on a fresh machine.
 */
export async function loadOrCreateKey(
  configured: string | undefined,
  dataDir: string,
  logger: Logger,
): Promise<string> {
  if (configured !== undefined) return configured;
  const path = join(dataDir, GENERATED_KEY_FILE);
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const key = randomBytes(KEY_BYTES).toString('base64');
  await writeFileAtomic(path, `${key}\n`, 0o600);
  logger.warn(
    { path },
    'GC_ENCRYPTION_KEY is not set: generated an encryption key into the data folder; ' +
      'back it up, because the stored registry secrets cannot be decrypted without it',
  );
  return key;
}
