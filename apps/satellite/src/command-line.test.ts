import { describe, expect, it } from 'vitest';
import { parseCommandLine } from './command-line.js';

describe('parseCommandLine', () => {
  it('maps flags to setting names', () => {
    const line = parseCommandLine([
      'run',
      '--ground-control-url',
      'http://127.0.0.1:1',
      '--data-dir=/tmp/x',
      '--insecure',
      '--config',
      'c.json',
    ]);
    expect(line.command).toBe('run');
    expect(line.flags).toEqual({
      groundControlUrl: 'http://127.0.0.1:1',
      dataDir: '/tmp/x',
      insecure: true,
    });
    expect(line.configFile).toBe('c.json');
  });

  it('requires --once for sync', () => {
    expect(() => parseCommandLine(['sync'])).toThrow(/--once/);
    expect(parseCommandLine(['sync', '--once']).once).toBe(true);
  });

  it('rejects unknown commands and flags', () => {
    expect(() => parseCommandLine(['launch'])).toThrow(/Unknown command "launch"/);
    expect(() => parseCommandLine(['run', '--colour'])).toThrow(/Invalid command line/);
  });

  it('defaults to help', () => {
    expect(parseCommandLine([]).command).toBe('help');
    expect(parseCommandLine(['status', '--help']).command).toBe('help');
  });
});
