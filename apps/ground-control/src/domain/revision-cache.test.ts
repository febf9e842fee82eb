import { describe, expect, it } from 'vitest';
import { RevisionCache } from './revision-cache.js';

describe('RevisionCache', () => {
  it('stores a finished read', () => {
    const cache = new RevisionCache(() => true);
    const read = cache.beginRead(['a', 'b']);
    cache.finishRead(
      read,
      new Map([
        ['a', 3],
        ['b', 5],
      ]),
    );
    expect(cache.get('a')).toBe(3);
    expect(cache.get('b')).toBe(5);
  });

  it('drops a read invalidated while it ran', () => {
    const cache = new RevisionCache(() => true);
    const read = cache.beginRead(['a', 'b']);
    // The change to `a` committed after the read's snapshot, so its value 3 may be stale.
    cache.onNotification('a');
    cache.finishRead(
      read,
      new Map([
        ['a', 3],
        ['b', 5],
      ]),
    );
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(5);
  });

  it('drops every read that ran across a clear', () => {
    const cache = new RevisionCache(() => true);
    const read = cache.beginRead(['a']);
    cache.onNotification('*');
    cache.finishRead(read, new Map([['a', 3]]));
    expect(cache.get('a')).toBeUndefined();
    const next = cache.beginRead(['a']);
    cache.finishRead(next, new Map([['a', 4]]));
    expect(cache.get('a')).toBe(4);
  });

  it('invalidates listed ids only', () => {
    const cache = new RevisionCache(() => true);
    cache.finishRead(
      cache.beginRead(['a', 'b', 'c']),
      new Map([
        ['a', 1],
        ['b', 1],
        ['c', 1],
      ]),
    );
    cache.onNotification('a,c');
    expect(cache.get('a')).toBeUndefined();
    expect(cache.get('b')).toBe(1);
    expect(cache.get('c')).toBeUndefined();
  });

  it('serves and stores nothing while untrusted', () => {
    let trusted = true;
    const cache = new RevisionCache(() => trusted);
    cache.finishRead(cache.beginRead(['a']), new Map([['a', 1]]));
    trusted = false;
    expect(cache.get('a')).toBeUndefined();
    cache.finishRead(cache.beginRead(['b']), new Map([['b', 2]]));
    trusted = true;
    expect(cache.get('b')).toBeUndefined();
  });

  it('ignores ids a read did not ask for', () => {
    const cache = new RevisionCache(() => true);
    cache.finishRead(cache.beginRead(['a']), new Map([['z', 9]]));
    expect(cache.get('z')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
