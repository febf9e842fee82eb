import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DATA_DIR,
  DEFAULT_GC_PORT,
  DEFAULT_SITE_PORT,
  DEFAULT_TIMEOUT_SECONDS,
  DEFAULT_UPSTREAM_PORT,
  parseArguments,
} from './args.js';
import { QuickstartError } from './errors.js';

function failure(argv: string[]): QuickstartError {
  try {
    parseArguments(argv);
  } catch (error) {
    if (error instanceof QuickstartError) return error;
    throw error;
  }
  throw new Error(`parseArguments accepted ${argv.join(' ')}`);
}

describe('parseArguments', () => {
  it('applies defaults', () => {
    const options = parseArguments([]);
    expect(options.dataDir).toBe(DEFAULT_DATA_DIR);
    expect(options.gcPort).toBe(DEFAULT_GC_PORT);
    expect(options.upstreamPort).toBe(DEFAULT_UPSTREAM_PORT);
    expect(options.sitePort).toBe(DEFAULT_SITE_PORT);
    expect(options.timeoutSeconds).toBe(DEFAULT_TIMEOUT_SECONDS);
    expect(options.upstream).toBeUndefined();
    expect(options.exitWhenSynced).toBe(false);
    expect(options.reset).toBe(false);
  });

  it('reads ports, folder and flags', () => {
    const options = parseArguments([
      '--gc-port',
      '0',
      '--upstream-port',
      '15000',
      '--site-port',
      '65535',
      '--data-dir',
      '/tmp/q',
      '--reset',
      '--exit-when-synced',
      '--timeout',
      '30',
    ]);
    expect(options.gcPort).toBe(0);
    expect(options.upstreamPort).toBe(15000);
    expect(options.sitePort).toBe(65535);
    expect(options.dataDir).toBe('/tmp/q');
    expect(options.reset).toBe(true);
    expect(options.exitWhenSynced).toBe(true);
    expect(options.timeoutSeconds).toBe(30);
  });

  it('reads an external upstream', () => {
    const options = parseArguments([
      '--upstream',
      'https://registry.example.com/',
      '--upstream-username',
      'puller',
      '--upstream-password-file',
      '/run/secret',
      '--image',
      'team/app:1.0',
      '--image',
      'library/nginx:1.27-alpine',
    ]);
    expect(options.upstream).toEqual({
      url: 'https://registry.example.com',
      username: 'puller',
      passwordFile: '/run/secret',
      images: [
        { repository: 'team/app', tag: '1.0' },
        { repository: 'library/nginx', tag: '1.27-alpine' },
      ],
    });
  });

  it.each([
    [['--gc-port', '65536'], '--gc-port must be at most 65535'],
    [['--site-port', '-1'], 'site-port'],
    [['--upstream-port', 'http'], '--upstream-port must be a port number'],
    [['--timeout', '0'], '--timeout must be at least 1'],
    [['--upstream', 'ftp://x'], '--upstream must be an http:// or https:// URL'],
    [['--upstream', 'http://x', '--image', 'Team/App:1'], '--image must be REPOSITORY:TAG'],
    [['--upstream', 'http://x', '--image', 'team/app'], '--image must be REPOSITORY:TAG'],
    [['--upstream', 'http://x'], 'needs at least one --image'],
    [['--image', 'team/app:1'], '--image needs --upstream'],
    [['--upstream-username', 'u'], 'need --upstream URL'],
    [['--bogus'], "Unknown option '--bogus'"],
    [['extra'], 'run with --help'],
  ])('rejects %j', (argv, message) => {
    const error = failure(argv);
    expect(error.code).toBe('ARGUMENTS_INVALID');
    expect(error.message).toContain(message);
  });
});
