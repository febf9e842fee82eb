import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSatelliteError } from './errors.js';
import { loadSettings } from './settings.js';

describe('loadSettings', () => {
  let folder = '';
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'satellite-settings-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('applies defaults', async () => {
    const settings = await loadSettings({ flags: {}, env: {} });
    expect(settings.registry).toBe('embedded');
    expect(settings.registryListen).toBe('0.0.0.0:5050');
    expect(settings.dataDir).toBe(join(process.cwd(), 'data/satellite'));
    expect(settings.insecure).toBe(false);
  });

  it('prefers flag over env over file', async () => {
    const file = join(folder, 'config.json');
    await writeFile(
      file,
      JSON.stringify({ dataDir: '/from-file', logLevel: 'warn', registryListen: '127.0.0.1:1' }),
    );
    const settings = await loadSettings({
      flags: { dataDir: '/from-flag' },
      env: { SATELLITE_DATA_DIR: '/from-env', SATELLITE_LOG_LEVEL: 'debug' },
      configFile: file,
    });
    expect(settings.dataDir).toBe('/from-flag');
    expect(settings.logLevel).toBe('debug');
    expect(settings.registryListen).toBe('127.0.0.1:1');
  });

  it('names the setting but never the secret value', async () => {
    const error = await loadSettings({
      flags: { registry: 'external', registryUsername: 'edge', registryPassword: 's3cr3t-pw' },
      env: { SATELLITE_GROUND_CONTROL_URL: 'ftp://s3cr3t-host' },
    }).catch((caught: unknown) => caught);
    expect(isSatelliteError(error, 'SETTINGS_INVALID')).toBe(true);
    const message = (error as Error).message;
    expect(message).toContain('--ground-control-url / SATELLITE_GROUND_CONTROL_URL');
    expect(message).toContain('--registry-url / SATELLITE_REGISTRY_URL');
    expect(message).not.toContain('s3cr3t');
  });

  it('rejects unknown keys in the config file', async () => {
    const file = join(folder, 'bad.json');
    await writeFile(file, JSON.stringify({ dataDirectory: '/x' }));
    await expect(loadSettings({ flags: {}, env: {}, configFile: file })).rejects.toThrow(
      /dataDirectory/,
    );
  });

  it('parses booleans and numbers from text', async () => {
    const settings = await loadSettings({
      flags: {},
      env: { SATELLITE_INSECURE: 'true', SATELLITE_SHUTDOWN_TIMEOUT_SECONDS: '7' },
    });
    expect(settings.insecure).toBe(true);
    expect(settings.shutdownTimeoutSeconds).toBe(7);
  });
});
