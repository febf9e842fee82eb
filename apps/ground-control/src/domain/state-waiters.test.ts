import { describe, expect, it } from 'vitest';
import { StateWaiters } from './state-waiters.js';

describe('StateWaiters', () => {
  it('wakes only the named satellites', async () => {
    const waiters = new StateWaiters();
    const a = waiters.wait('a', 10_000);
    const b = waiters.wait('b', 50);
    waiters.onNotification('a,c');
    expect(await a.changed).toBe(true);
    expect(await b.changed).toBe(false);
    expect(waiters.size).toBe(0);
  });

  it('wakes everyone for a star', async () => {
    const waiters = new StateWaiters();
    const pending = [waiters.wait('a', 10_000), waiters.wait('b', 10_000)];
    waiters.onNotification('*');
    expect(await Promise.all(pending.map((waiter) => waiter.changed))).toEqual([true, true]);
  });

  it('releases waiters as unchanged on close', async () => {
    const waiters = new StateWaiters();
    const waiter = waiters.wait('a', 10_000);
    waiters.close();
    expect(await waiter.changed).toBe(false);
    expect(await waiters.wait('b', 10_000).changed).toBe(false);
  });
});
