import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { Referrer } from '@edge/contract';

const timestamps = {
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
};

const id = () =>
  uuid('id')
    .primaryKey()
    .default(sql`gen_random_uuid()`);

export const users = pgTable('users', {
  id: id(),
  username: text('username').notNull().unique(),
  passwordHash: text('password_hash').notNull(),
  role: text('role', { enum: ['admin', 'viewer'] }).notNull(),
  failedLogins: integer('failed_logins').notNull().default(0),
  lockedUntil: timestamp('locked_until', { withTimezone: true }),
  ...timestamps,
});

export const sessions = pgTable(
  'sessions',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull().unique(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('sessions_expires_at').on(table.expiresAt)],
);

export const apiTokens = pgTable(
  'api_tokens',
  {
    id: id(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    tokenHash: text('token_hash').notNull().unique(),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [uniqueIndex('api_tokens_user_name').on(table.userId, table.name)],
);

/** Login attempts per client address in fixed one-minute windows, shared by all replicas. */
export const loginAttempts = pgTable('login_attempts', {
  address: text('address').primaryKey(),
  windowStart: timestamp('window_start', { withTimezone: true }).notNull(),
  count: integer('count').notNull(),
});

export const registries = pgTable('registries', {
  id: id(),
  name: text('name').notNull().unique(),
  kind: text('kind', { enum: ['oci', 'harbor'] }).notNull(),
  url: text('url').notNull(),
  apiUrl: text('api_url'),
  satelliteUrl: text('satellite_url'),
  caBundle: text('ca_bundle'),
  insecure: boolean('insecure').notNull().default(false),
  localPrefix: text('local_prefix'),
  credentialUsername: text('credential_username'),
  credentialSecret: text('credential_secret'),
  pullUsername: text('pull_username'),
  pullSecret: text('pull_secret'),
  ...timestamps,
});

export const configs = pgTable('configs', {
  id: id(),
  name: text('name').notNull().unique(),
  description: text('description').notNull().default(''),
  settings: jsonb('settings').notNull(),
  ...timestamps,
});

export const groups = pgTable('groups', {
  id: id(),
  name: text('name').notNull().unique(),
  description: text('description').notNull().default(''),
  priority: integer('priority').notNull().default(0),
  configId: uuid('config_id').references(() => configs.id, { onDelete: 'restrict' }),
  ...timestamps,
});

export const selections = pgTable(
  'selections',
  {
    id: id(),
    groupId: uuid('group_id')
      .notNull()
      .references(() => groups.id, { onDelete: 'cascade' }),
    position: integer('position').notNull(),
    registryId: uuid('registry_id')
      .notNull()
      .references(() => registries.id, { onDelete: 'restrict' }),
    repository: text('repository').notNull(),
    tag: text('tag'),
    digest: text('digest'),
    platforms: jsonb('platforms').$type<string[] | null>(),
    includeReferrers: boolean('include_referrers').notNull().default(false),
    resolvedDigest: text('resolved_digest'),
    resolvedMediaType: text('resolved_media_type'),
    resolvedSize: bigint('resolved_size', { mode: 'number' }),
    referrers: jsonb('referrers').$type<ReferrerRow[]>().notNull().default([]),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
    errorCode: text('error_code'),
    errorMessage: text('error_message'),
  },
  (table) => [index('selections_group').on(table.groupId, table.position)],
);

/** A referrer as stored: the same shape the satellite protocol sends. */
export type ReferrerRow = Referrer;

export const satellites = pgTable(
  'satellites',
  {
    id: id(),
    name: text('name').notNull().unique(),
    labels: jsonb('labels').$type<Record<string, string>>().notNull().default({}),
    configId: uuid('config_id').references(() => configs.id, { onDelete: 'restrict' }),
    state: text('state', { enum: ['pending', 'active', 'revoked'] })
      .notNull()
      .default('pending'),
    publicKey: jsonb('public_key').$type<Record<string, unknown>>(),
    hostname: text('hostname'),
    version: text('version'),
    joinedAt: timestamp('joined_at', { withTimezone: true }),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    desiredRevision: bigint('desired_revision', { mode: 'number' }).notNull().default(1),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('satellites_state').on(table.state)],
);

export const satelliteGroups = pgTable(
  'satellite_groups',
  {
    satelliteId: uuid('satellite_id')
      .notNull()
      .references(() => satellites.id, { onDelete: 'cascade' }),
    groupId: uuid('group_id')
      .notNull()
      .references(() => groups.id, { onDelete: 'restrict' }),
  },
  (table) => [
    primaryKey({ columns: [table.satelliteId, table.groupId] }),
    index('satellite_groups_group').on(table.groupId),
  ],
);

export const joinTokens = pgTable('join_tokens', {
  id: id(),
  satelliteId: uuid('satellite_id')
    .notNull()
    .references(() => satellites.id, { onDelete: 'cascade' }),
  tokenHash: text('token_hash').notNull().unique(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true }),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

export const satelliteStatus = pgTable('satellite_status', {
  satelliteId: uuid('satellite_id')
    .primaryKey()
    .references(() => satellites.id, { onDelete: 'cascade' }),
  report: jsonb('report').$type<Record<string, unknown>>().notNull(),
  appliedRevision: bigint('applied_revision', { mode: 'number' }).notNull(),
  phase: text('phase').notNull(),
  /** Number of artifacts the report lists as present. */
  presentCount: integer('present_count').notNull().default(0),
  receivedAt: timestamp('received_at', { withTimezone: true }).notNull(),
  /** SHA-256 of the stored report's JSON. A heartbeat that matches it writes only its time. */
  reportHash: text('report_hash'),
});

export const satelliteEvents = pgTable(
  'satellite_events',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    satelliteId: uuid('satellite_id')
      .notNull()
      .references(() => satellites.id, { onDelete: 'cascade' }),
    time: timestamp('time', { withTimezone: true }).notNull().defaultNow(),
    kind: text('kind').notNull(),
    message: text('message').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (table) => [index('satellite_events_satellite').on(table.satelliteId, table.id)],
);

/** Harbor robot accounts, one per satellite and Harbor registry. */
export const robotAccounts = pgTable(
  'robot_accounts',
  {
    satelliteId: uuid('satellite_id')
      .notNull()
      .references(() => satellites.id, { onDelete: 'cascade' }),
    registryId: uuid('registry_id')
      .notNull()
      .references(() => registries.id, { onDelete: 'cascade' }),
    robotId: bigint('robot_id', { mode: 'number' }).notNull(),
    robotName: text('robot_name').notNull(),
    secret: text('secret').notNull(),
    projects: jsonb('projects').$type<string[]>().notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    ...timestamps,
  },
  (table) => [primaryKey({ columns: [table.satelliteId, table.registryId] })],
);

export const auditLog = pgTable(
  'audit_log',
  {
    id: bigserial('id', { mode: 'number' }).primaryKey(),
    time: timestamp('time', { withTimezone: true }).notNull().defaultNow(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    target: text('target').notNull(),
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  },
  (table) => [index('audit_log_time').on(table.time)],
);
