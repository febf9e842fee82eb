import { z } from 'zod';
import {
  digestSchema,
  idSchema,
  nameSchema,
  platformSchema,
  repositorySchema,
  tagSchema,
  timestampSchema,
} from './names.js';
import {
  satelliteConfigSchema,
  satellitePhaseSchema,
  statusReportSchema,
  referrerSchema,
} from './satellite.js';

/** Path prefix of the operator API. */
export const OPERATOR_API_PREFIX = '/api/v1';

/** Page sizes of list endpoints: the default, and the maximum a caller may request. */
export const DEFAULT_PAGE_LIMIT = 50;
export const MAX_PAGE_LIMIT = 500;

/** Bounds on operator input, so that no single request makes Ground Control store megabytes. */
export const MAX_SELECTIONS_PER_GROUP = 1_000;
export const MAX_LABELS = 64;
export const MAX_GROUPS_PER_SATELLITE = 100;
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_SECRET_LENGTH = 4_096;
export const MAX_CA_BUNDLE_LENGTH = 65_536;
/** Join tokens live 24 hours by default and at most 30 days. */
export const DEFAULT_JOIN_TOKEN_TTL_SECONDS = 86_400;
export const MAX_JOIN_TOKEN_TTL_SECONDS = 30 * 86_400;

const labelKeySchema = z
  .string()
  .regex(/^[a-z0-9]([a-z0-9._/-]{0,61}[a-z0-9])?$/, 'must be a label key such as "region"');
const labelValueSchema = z.string().max(63);
export const labelsSchema = z
  .record(labelKeySchema, labelValueSchema)
  .refine((labels) => Object.keys(labels).length <= MAX_LABELS, {
    message: `must have at most ${MAX_LABELS} labels`,
  });

const descriptionSchema = z.string().max(1_000);

export const pageQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(MAX_PAGE_LIMIT).optional(),
  cursor: z.string().max(500).optional(),
});

export const nameParamsSchema = z.strictObject({ name: nameSchema });
export const idParamsSchema = z.strictObject({ id: idSchema });

// Users and authentication

export const ROLES = ['admin', 'viewer'] as const;
export const roleSchema = z.enum(ROLES);
export type Role = z.infer<typeof roleSchema>;

const passwordSchema = z.string().min(MIN_PASSWORD_LENGTH).max(1_024);

export const loginRequestSchema = z
  .strictObject({ username: nameSchema, password: z.string().min(1).max(1_024) })
  .meta({ id: 'LoginRequest' });
export type LoginRequest = z.infer<typeof loginRequestSchema>;

export const userSchema = z
  .strictObject({
    id: idSchema,
    username: nameSchema,
    role: roleSchema,
    createdAt: timestampSchema,
    /** Until when logins are rejected after too many failures; null when not locked. */
    lockedUntil: timestampSchema.nullable(),
  })
  .meta({ id: 'User' });
export type User = z.infer<typeof userSchema>;

export const loginResponseSchema = z
  .strictObject({ token: z.string(), expiresAt: timestampSchema, user: userSchema })
  .meta({ id: 'LoginResponse' });
export type LoginResponse = z.infer<typeof loginResponseSchema>;

export const createUserSchema = z
  .strictObject({ username: nameSchema, password: passwordSchema, role: roleSchema })
  .meta({ id: 'CreateUser' });
export type CreateUser = z.infer<typeof createUserSchema>;

export const updateUserSchema = z
  .strictObject({ password: passwordSchema.optional(), role: roleSchema.optional() })
  .meta({ id: 'UpdateUser' });
export type UpdateUser = z.infer<typeof updateUserSchema>;

export const userListSchema = z.strictObject({ items: z.array(userSchema) });

export const createApiTokenSchema = z
  .strictObject({ name: nameSchema, expiresInDays: z.int().min(1).max(3_650).optional() })
  .meta({ id: 'CreateApiToken' });
export type CreateApiToken = z.infer<typeof createApiTokenSchema>;

export const apiTokenSchema = z
  .strictObject({
    id: idSchema,
    name: nameSchema,
    createdAt: timestampSchema,
    expiresAt: timestampSchema.nullable(),
    lastUsedAt: timestampSchema.nullable(),
  })
  .meta({ id: 'ApiToken' });
export type ApiToken = z.infer<typeof apiTokenSchema>;

export const createdApiTokenSchema = z
  .strictObject({ apiToken: apiTokenSchema, token: z.string() })
  .meta({ id: 'CreatedApiToken' });
export const apiTokenListSchema = z.strictObject({ items: z.array(apiTokenSchema) });

// Registries

export const REGISTRY_KINDS = ['oci', 'harbor'] as const;
export const registryKindSchema = z.enum(REGISTRY_KINDS);
export type RegistryKind = z.infer<typeof registryKindSchema>;

export const registryCredentialSchema = z.strictObject({
  username: z.string().min(1).max(255),
  password: z.string().min(1).max(MAX_SECRET_LENGTH),
});
export type RegistryCredential = z.infer<typeof registryCredentialSchema>;

const httpUrlSchema = z.url({ protocol: /^https?$/ }).max(2_000);
const localPrefixSchema = repositorySchema;

export const createRegistrySchema = z
  .strictObject({
    name: nameSchema,
    kind: registryKindSchema,
    /** URL Ground Control uses for the distribution API (tag resolution). */
    url: httpUrlSchema,
    /** `kind: harbor` only: base URL of Harbor's REST API when it differs from `url`. */
    apiUrl: httpUrlSchema.optional(),
    /** URL satellites use; defaults to `url`. */
    satelliteUrl: httpUrlSchema.optional(),
    caBundle: z.string().max(MAX_CA_BUNDLE_LENGTH).optional(),
    insecure: z.boolean().optional(),
    localPrefix: localPrefixSchema.optional(),
    /** Ground Control's own account: for Harbor one allowed to manage robot accounts. */
    credential: registryCredentialSchema.optional(),
    /** `kind: oci` only: the credential satellites receive; defaults to `credential`. */
    pullCredential: registryCredentialSchema.optional(),
    /** Skip the connectivity check that runs on create and update. */
    skipCheck: z.boolean().optional(),
  })
  .meta({ id: 'CreateRegistry' });
export type CreateRegistry = z.infer<typeof createRegistrySchema>;

export const updateRegistrySchema = z
  .strictObject({
    url: httpUrlSchema.optional(),
    apiUrl: httpUrlSchema.nullable().optional(),
    satelliteUrl: httpUrlSchema.nullable().optional(),
    caBundle: z.string().max(MAX_CA_BUNDLE_LENGTH).nullable().optional(),
    insecure: z.boolean().optional(),
    localPrefix: localPrefixSchema.nullable().optional(),
    credential: registryCredentialSchema.nullable().optional(),
    pullCredential: registryCredentialSchema.nullable().optional(),
    skipCheck: z.boolean().optional(),
  })
  .meta({ id: 'UpdateRegistry' });
export type UpdateRegistry = z.infer<typeof updateRegistrySchema>;

/** A registry as the API shows it: secrets are write-only, so only their presence shows. */
export const registrySchema = z
  .strictObject({
    id: idSchema,
    name: nameSchema,
    kind: registryKindSchema,
    url: z.string(),
    apiUrl: z.string().nullable(),
    satelliteUrl: z.string(),
    caBundle: z.string().nullable(),
    insecure: z.boolean(),
    localPrefix: z.string().nullable(),
    credentialUsername: z.string().nullable(),
    hasCredential: z.boolean(),
    pullCredentialUsername: z.string().nullable(),
    hasPullCredential: z.boolean(),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  })
  .meta({ id: 'Registry' });
export type Registry = z.infer<typeof registrySchema>;
export const registryListSchema = z.strictObject({ items: z.array(registrySchema) });

// Groups and selections

export const selectionSchema = z
  .strictObject({
    /** Registry name. */
    registry: nameSchema,
    repository: repositorySchema,
    tag: tagSchema.optional(),
    digest: digestSchema.optional(),
    platforms: z.array(platformSchema).min(1).max(32).optional(),
    includeReferrers: z.boolean().optional(),
  })
  .refine((selection) => (selection.tag === undefined) !== (selection.digest === undefined), {
    message: 'must name exactly one of "tag" and "digest"',
  })
  .meta({ id: 'Selection' });
export type Selection = z.infer<typeof selectionSchema>;

export const resolutionErrorSchema = z.strictObject({ code: z.string(), message: z.string() });

export const resolvedSelectionSchema = z
  .strictObject({
    registry: nameSchema,
    repository: z.string(),
    tag: z.string().nullable(),
    digest: z.string().nullable(),
    platforms: z.array(z.string()).nullable(),
    includeReferrers: z.boolean(),
    /** Result of the last successful resolution; null before the first. */
    resolved: z
      .strictObject({
        digest: z.string(),
        mediaType: z.string(),
        size: z.int(),
        referrers: z.array(referrerSchema),
        resolvedAt: timestampSchema,
      })
      .nullable(),
    /** Error of the last resolution attempt; null when it succeeded. */
    error: resolutionErrorSchema.nullable(),
  })
  .meta({ id: 'ResolvedSelection' });
export type ResolvedSelection = z.infer<typeof resolvedSelectionSchema>;

const selectionsSchema = z.array(selectionSchema).max(MAX_SELECTIONS_PER_GROUP);

export const createGroupSchema = z
  .strictObject({
    name: nameSchema,
    description: descriptionSchema.optional(),
    /** Among a satellite's groups, the config of the group with the highest priority applies. */
    priority: z.int().min(-1_000_000).max(1_000_000).optional(),
    config: nameSchema.nullable().optional(),
    selections: selectionsSchema.optional(),
  })
  .meta({ id: 'CreateGroup' });
export type CreateGroup = z.infer<typeof createGroupSchema>;

export const updateGroupSchema = z
  .strictObject({
    description: descriptionSchema.optional(),
    priority: z.int().min(-1_000_000).max(1_000_000).optional(),
    config: nameSchema.nullable().optional(),
    /** Replaces every selection of the group. */
    selections: selectionsSchema.optional(),
  })
  .meta({ id: 'UpdateGroup' });
export type UpdateGroup = z.infer<typeof updateGroupSchema>;

export const groupSchema = z
  .strictObject({
    id: idSchema,
    name: nameSchema,
    description: z.string(),
    priority: z.int(),
    config: nameSchema.nullable(),
    selections: z.array(resolvedSelectionSchema),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  })
  .meta({ id: 'Group' });
export type Group = z.infer<typeof groupSchema>;
export const groupListSchema = z.strictObject({ items: z.array(groupSchema) });

export const resolveResultSchema = z
  .strictObject({
    group: groupSchema,
    /** True when a digest or referrer changed, so member satellites got a new revision. */
    changed: z.boolean(),
  })
  .meta({ id: 'ResolveResult' });

// Configs

/** Settings of a config document; fields left out take the defaults. */
export const configSettingsSchema = satelliteConfigSchema.partial().strict();

export const createConfigSchema = z
  .strictObject({
    name: nameSchema,
    description: descriptionSchema.optional(),
    settings: configSettingsSchema,
  })
  .meta({ id: 'CreateConfig' });
export type CreateConfig = z.infer<typeof createConfigSchema>;

export const updateConfigSchema = z
  .strictObject({
    description: descriptionSchema.optional(),
    settings: configSettingsSchema.optional(),
  })
  .meta({ id: 'UpdateConfig' });
export type UpdateConfig = z.infer<typeof updateConfigSchema>;

export const configDocumentSchema = z
  .strictObject({
    id: idSchema,
    name: nameSchema,
    description: z.string(),
    settings: satelliteConfigSchema.partial(),
    createdAt: timestampSchema,
    updatedAt: timestampSchema,
  })
  .meta({ id: 'ConfigDocument' });
export type ConfigDocument = z.infer<typeof configDocumentSchema>;
export const configListSchema = z.strictObject({ items: z.array(configDocumentSchema) });

// Satellites

export const SATELLITE_STATES = ['pending', 'active', 'revoked'] as const;
export const satelliteStateSchema = z.enum(SATELLITE_STATES);
export type SatelliteState = z.infer<typeof satelliteStateSchema>;

const groupNamesSchema = z.array(nameSchema).max(MAX_GROUPS_PER_SATELLITE);

export const createSatelliteSchema = z
  .strictObject({
    name: nameSchema,
    labels: labelsSchema.optional(),
    groups: groupNamesSchema.optional(),
    config: nameSchema.nullable().optional(),
    joinTokenTtlSeconds: z.int().min(60).max(MAX_JOIN_TOKEN_TTL_SECONDS).optional(),
  })
  .meta({ id: 'CreateSatellite' });
export type CreateSatellite = z.infer<typeof createSatelliteSchema>;

export const updateSatelliteSchema = z
  .strictObject({
    labels: labelsSchema.optional(),
    groups: groupNamesSchema.optional(),
    config: nameSchema.nullable().optional(),
  })
  .meta({ id: 'UpdateSatellite' });
export type UpdateSatellite = z.infer<typeof updateSatelliteSchema>;

export const satelliteSchema = z
  .strictObject({
    id: idSchema,
    name: nameSchema,
    labels: z.record(z.string(), z.string()),
    groups: z.array(nameSchema),
    config: nameSchema.nullable(),
    state: satelliteStateSchema,
    hostname: z.string().nullable(),
    version: z.string().nullable(),
    joinedAt: timestampSchema.nullable(),
    lastSeenAt: timestampSchema.nullable(),
    revokedAt: timestampSchema.nullable(),
    desiredRevision: z.int(),
    appliedRevision: z.int().nullable(),
    phase: satellitePhaseSchema.nullable(),
    createdAt: timestampSchema,
  })
  .meta({ id: 'Satellite' });
export type Satellite = z.infer<typeof satelliteSchema>;

export const joinTokenSchema = z
  .strictObject({ token: z.string(), expiresAt: timestampSchema })
  .meta({ id: 'JoinToken' });
export type JoinToken = z.infer<typeof joinTokenSchema>;

export const createdSatelliteSchema = z
  .strictObject({ satellite: satelliteSchema, joinToken: joinTokenSchema })
  .meta({ id: 'CreatedSatellite' });

export const newJoinTokenSchema = z
  .strictObject({ ttlSeconds: z.int().min(60).max(MAX_JOIN_TOKEN_TTL_SECONDS).optional() })
  .meta({ id: 'NewJoinToken' });

export const satelliteListQuerySchema = pageQuerySchema.extend({
  /** `key=value`; only satellites with that label. */
  label: z
    .string()
    .regex(/^[^=]+=.*$/, 'must be "key=value"')
    .max(200)
    .optional(),
  state: satelliteStateSchema.optional(),
});
export type SatelliteListQuery = z.infer<typeof satelliteListQuerySchema>;

export const satelliteListSchema = z
  .strictObject({ items: z.array(satelliteSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'SatelliteList' });

export const satelliteEventSchema = z
  .strictObject({
    time: timestampSchema,
    kind: z.string(),
    message: z.string(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'SatelliteEvent' });
export type SatelliteEvent = z.infer<typeof satelliteEventSchema>;

export const satelliteStatusSchema = z
  .strictObject({
    satelliteId: idSchema,
    name: nameSchema,
    desiredRevision: z.int(),
    /** Latest status report; null before the first one. */
    report: statusReportSchema.nullable(),
    receivedAt: timestampSchema.nullable(),
    events: z.array(satelliteEventSchema),
  })
  .meta({ id: 'SatelliteStatus' });
export type SatelliteStatus = z.infer<typeof satelliteStatusSchema>;

// Fleet

export const FLEET_CATEGORIES = [
  'in-sync',
  'syncing',
  'failed',
  'stale',
  'never-seen',
  'revoked',
] as const;
export const fleetCategorySchema = z.enum(FLEET_CATEGORIES);
export type FleetCategory = z.infer<typeof fleetCategorySchema>;

export const fleetQuerySchema = pageQuerySchema.extend({
  category: fleetCategorySchema.optional(),
});

export const fleetEntrySchema = z
  .strictObject({
    id: idSchema,
    name: nameSchema,
    category: fleetCategorySchema,
    desiredRevision: z.int(),
    appliedRevision: z.int().nullable(),
    /** Desired artifacts the last report did not list as present. */
    missingArtifacts: z.int(),
    lastSeenAt: timestampSchema.nullable(),
  })
  .meta({ id: 'FleetEntry' });
export type FleetEntry = z.infer<typeof fleetEntrySchema>;

export const fleetSchema = z
  .strictObject({
    counts: z.strictObject({
      total: z.int(),
      'in-sync': z.int(),
      syncing: z.int(),
      failed: z.int(),
      stale: z.int(),
      'never-seen': z.int(),
      revoked: z.int(),
    }),
    items: z.array(fleetEntrySchema),
    nextCursor: z.string().nullable(),
  })
  .meta({ id: 'Fleet' });
export type Fleet = z.infer<typeof fleetSchema>;

// Audit

export const auditEntrySchema = z
  .strictObject({
    id: z.string(),
    time: timestampSchema,
    /** `user:<name>`, `token:<name>`, `satellite:<id>` or `system`. */
    actor: z.string(),
    action: z.string(),
    target: z.string(),
    details: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEntry' });
export type AuditEntry = z.infer<typeof auditEntrySchema>;

export const auditQuerySchema = pageQuerySchema.extend({
  action: z.string().max(100).optional(),
});

export const auditListSchema = z
  .strictObject({ items: z.array(auditEntrySchema), nextCursor: z.string().nullable() })
  .meta({ id: 'AuditList' });
