import { describe, expect, it } from 'vitest';
import type { StatusReport } from '@edge/contract';
import { diffReports } from './status.js';

const artifact = {
  localRepository: 'test/app-a',
  tag: '1',
  digest: `sha256:${'a'.repeat(64)}`,
  state: 'pending' as const,
  bytesDone: 0,
  bytesTotal: 10,
};

function report(overrides: Partial<StatusReport> = {}): StatusReport {
  return {
    protocolVersion: 1,
    appliedRevision: 1,
    phase: 'syncing',
    artifacts: [artifact],
    storage: { usedBytes: 0, freeBytes: 0 },
    version: '0.1.0',
    errors: [],
    ...overrides,
  };
}

describe('diffReports', () => {
  it('yields nothing for a heartbeat', () => {
    expect(diffReports(report(), report({ artifacts: [{ ...artifact, bytesDone: 5 }] }))).toEqual(
      [],
    );
  });

  it('lists phase, revision and artifact changes', () => {
    const next = report({
      phase: 'in-sync',
      appliedRevision: 2,
      artifacts: [{ ...artifact, state: 'present' }],
    });
    expect(diffReports(report(), next).map((event) => event.kind)).toEqual([
      'phase',
      'applied-revision',
      'artifact',
    ]);
  });

  it('reports removed artifacts and new errors', () => {
    const next = report({
      artifacts: [],
      errors: [{ code: 'DISK_FULL', message: 'no space left' }],
    });
    expect(diffReports(report(), next).map((event) => event.kind)).toEqual(['artifact', 'errors']);
  });
});
