import { describe, expect, it } from 'vitest';
import { configSettingsSchema, createSatelliteSchema, selectionSchema } from './index.js';

describe('operator API schemas', () => {
  it('rejects unknown fields', () => {
    expect(createSatelliteSchema.safeParse({ name: 'shop-1' }).success).toBe(true);
    expect(createSatelliteSchema.safeParse({ name: 'shop-1', colour: 'red' }).success).toBe(false);
  });

  it('rejects names that are not DNS labels', () => {
    expect(createSatelliteSchema.safeParse({ name: 'Shop_1' }).success).toBe(false);
    expect(createSatelliteSchema.safeParse({ name: '-shop' }).success).toBe(false);
    expect(createSatelliteSchema.safeParse({ name: 'a'.repeat(64) }).success).toBe(false);
  });

  it('requires exactly one of tag and digest', () => {
    const base = { registry: 'central', repository: 'library/alpine' };
    const digest = `sha256:${'0'.repeat(64)}`;
    expect(selectionSchema.safeParse({ ...base, tag: '3' }).success).toBe(true);
    expect(selectionSchema.safeParse({ ...base, digest }).success).toBe(true);
    expect(selectionSchema.safeParse(base).success).toBe(false);
    expect(selectionSchema.safeParse({ ...base, tag: '3', digest }).success).toBe(false);
  });

  it('rejects unknown config settings', () => {
    expect(configSettingsSchema.safeParse({ concurrency: 2 }).success).toBe(true);
    expect(configSettingsSchema.safeParse({ concurency: 2 }).success).toBe(false);
  });
});
