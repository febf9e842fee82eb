import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('starts with no variables at all', () => {
    const config = loadConfig({}, '/srv');
    expect(config.port).toBe(8080);
    expect(config.host).toBe('0.0.0.0');
    expect(config.databaseUrl).toBeUndefined();
    expect(config.dataDir).toBe('/srv/data/ground-control');
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the variable but never the value', () => {
    let error: unknown;
    try {
      loadConfig({ GC_PORT: 'hunter2-secret', GC_LOG_LEVEL: 'loud' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('GC_PORT');
    expect(message).toContain('GC_LOG_LEVEL');
    expect(message).not.toContain('hunter2-secret');
    expect(message).not.toContain('loud');
  });

  it('requires a key with PostgreSQL', () => {
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u:p@127.0.0.1/db' })).toThrow(
      /GC_ENCRYPTION_KEY/,
    );
  });

  it('splits retired keys', () => {
    const config = loadConfig({ GC_ENCRYPTION_KEYS_OLD: ' a , b ,' });
    expect(config.encryptionKeysOld).toEqual(['a', 'b']);
  });
});
