import { describe, expect, it } from 'vitest';
import { BatchLoader } from './batch-loader.js';

function deferred<T>() {
  let resolve: (value: T) => void = () => undefined;
  const promise = new Promise<T>((settle) => {
    resolve = settle;
  });
  return { promise, resolve };
}

describe('BatchLoader', () => {
  it('loads ids of one turn in one call', async () => {
    const calls: string[][] = [];
    const loader = new BatchLoader(
      (ids) => {
        calls.push(ids);
        return Promise.resolve(new Map(ids.map((id) => [id, id.toUpperCase()])));
      },
      { maxBatch: 100, maxConcurrent: 1 },
    );
    const values = await Promise.all(['a', 'b', 'a', 'c'].map((id) => loader.load(id)));
    expect(values).toEqual(['A', 'B', 'A', 'C']);
    expect(calls).toEqual([['a', 'b', 'c']]);
  });

  it('splits batches and limits concurrency', async () => {
    const calls: string[][] = [];
    const gates: Array<ReturnType<typeof deferred<void>>> = [];
    const loader = new BatchLoader(
      async (ids) => {
        calls.push(ids);
        const gate = deferred<void>();
        gates.push(gate);
        await gate.promise;
        return new Map(ids.map((id) => [id, id]));
      },
      { maxBatch: 2, maxConcurrent: 2 },
    );
    const pending = ['a', 'b', 'c', 'd', 'e'].map((id) => loader.load(id));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    gates[0]?.resolve();
    await pending[0];
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toHaveLength(3);
    expect(calls[2]).toEqual(['e']);
    for (const gate of gates) gate.resolve();
    expect(await Promise.all(pending)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('returns undefined for a missing id', async () => {
    const loader = new BatchLoader(() => Promise.resolve(new Map([['a', 1]])), {
      maxBatch: 10,
      maxConcurrent: 1,
    });
    expect(await loader.load('missing')).toBeUndefined();
  });

  it('rejects every request of a failed batch', async () => {
    let calls = 0;
    const loader = new BatchLoader(
      () => {
        calls++;
        return Promise.reject(new Error('connection refused'));
      },
      { maxBatch: 10, maxConcurrent: 1 },
    );
    const results = await Promise.allSettled([loader.load('a'), loader.load('b')]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
  });
});
