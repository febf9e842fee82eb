import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TAR_BLOCK_BYTES, TAR_MTIME_SECONDS, tarBlocks, tarHeader, type TarEntry } from './tar.js';

const run = promisify(execFile);

const LONG_DIRECTORY = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
const ENTRIES: TarEntry[] = [
  { type: 'directory', path: 'etc' },
  { type: 'file', path: 'etc/hello.txt', content: Buffer.from('hello\n') },
  { type: 'file', path: 'etc/empty', content: Buffer.alloc(0) },
  { type: 'file', path: 'etc/tool.sh', mode: 0o755, content: Buffer.alloc(1_000, 0x61) },
  { type: 'directory', path: LONG_DIRECTORY },
  { type: 'file', path: `${LONG_DIRECTORY}/long-name.txt`, content: Buffer.from('deep\n') },
];

describe('tar writer', () => {
  let folder: string;
  let archive: string;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'quickstart-tar-'));
    archive = join(folder, 'layer.tar.gz');
    await writeFile(archive, gzipSync(Buffer.concat([...tarBlocks(ENTRIES)])));
  });

  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('lists entries with tar -tvzf', async () => {
    const { stdout } = await run('tar', ['--utc', '--numeric-owner', '-tvzf', archive]);
    const lines = stdout.trim().split('\n');
    expect(lines).toHaveLength(ENTRIES.length);
    expect(lines[0]).toMatch(/^drwxr-xr-x 0\/0\s+0 2024-01-01 00:00 etc\/$/);
    expect(lines[1]).toMatch(/^-rw-r--r-- 0\/0\s+6 2024-01-01 00:00 etc\/hello\.txt$/);
    expect(lines[2]).toMatch(/^-rw-r--r-- 0\/0\s+0 2024-01-01 00:00 etc\/empty$/);
    expect(lines[3]).toMatch(/^-rwxr-xr-x 0\/0\s+1000 2024-01-01 00:00 etc\/tool\.sh$/);
    expect(lines[5]).toContain(`${LONG_DIRECTORY}/long-name.txt`);
  });

  it('extracts content intact', async () => {
    await run('tar', ['-xzf', archive, '-C', folder]);
    expect(await readFile(join(folder, 'etc/hello.txt'), 'utf8')).toBe('hello\n');
    expect(await readFile(join(folder, 'etc/tool.sh'))).toEqual(Buffer.alloc(1_000, 0x61));
    expect(await readFile(join(folder, LONG_DIRECTORY, 'long-name.txt'), 'utf8')).toBe('deep\n');
  });

  it('pads to blocks and ends with two zero blocks', () => {
    const bytes = Buffer.concat([...tarBlocks(ENTRIES)]);
    expect(bytes.length % TAR_BLOCK_BYTES).toBe(0);
    expect(bytes.subarray(-2 * TAR_BLOCK_BYTES).every((byte) => byte === 0)).toBe(true);
  });

  it('header has ustar magic and checksum', () => {
    const header = tarHeader({ type: 'file', path: 'a.txt', content: Buffer.from('x') });
    expect(header.subarray(257, 263).toString('latin1')).toBe('ustar\0');
    expect(header.subarray(263, 265).toString('latin1')).toBe('00');
    expect(Number.parseInt(header.subarray(136, 147).toString('latin1'), 8)).toBe(
      TAR_MTIME_SECONDS,
    );
    const stored = Number.parseInt(header.subarray(148, 154).toString('latin1'), 8);
    const blanked = Buffer.from(header);
    blanked.fill(' ', 148, 156);
    const sum = blanked.reduce((total, byte) => total + byte, 0);
    expect(stored).toBe(sum);
  });

  it('same entries give same bytes', () => {
    const first = Buffer.concat([...tarBlocks(ENTRIES)]);
    const second = Buffer.concat([...tarBlocks(ENTRIES)]);
    expect(first.equals(second)).toBe(true);
  });

  it.each([
    ['/etc/passwd', 'relative path'],
    ['etc/../../x', 'relative path'],
    ['', 'relative path'],
    [`${'x'.repeat(101)}`, 'too long'],
  ])('rejects path %j', (path, message) => {
    expect(() => tarHeader({ type: 'file', path, content: Buffer.alloc(0) })).toThrow(message);
  });

  it('rejects duplicate paths', () => {
    const duplicate: TarEntry[] = [
      { type: 'file', path: 'a', content: Buffer.alloc(0) },
      { type: 'file', path: 'a', content: Buffer.alloc(0) },
    ];
    expect(() => [...tarBlocks(duplicate)]).toThrow('appears twice');
  });
});
