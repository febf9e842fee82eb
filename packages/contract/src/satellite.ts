import { z } from 'zod';
import {
  digestSchema,
  idSchema,
  mediaTypeSchema,
  nameSchema,
  platformSchema,
  repositorySchema,
  tagSchema,
  timestampSchema,
} from './names.js';

/** Version of the satellite protocol that this package describes. */
export const PROTOCOL_VERSION = 1;
/** Oldest protocol version that Ground Control still serves. */
export const MIN_PROTOCOL_VERSION = 1;
/** Request header that carries the protocol version on requests without a body (GET). */
export const PROTOCOL_VERSION_HEADER = 'edge-protocol-version';

/** Path prefix of the satellite protocol. */
export const SATELLITE_API_PREFIX = '/satellite/v1';

/** `aud` of every satellite JWT. */
export const SATELLITE_JWT_AUDIENCE = 'ground-control';
/** JWS algorithm of satellite JWTs: Ed25519 keys. */
export const SATELLITE_JWT_ALGORITHM = 'EdDSA';
/** Maximum `exp - iat` of a satellite JWT, in seconds; short so a stolen token dies soon. */
export const SATELLITE_JWT_MAX_LIFETIME_SECONDS = 300;
/** Clock difference Ground Control tolerates on `iat` and `exp`, in seconds. */
export const SATELLITE_JWT_CLOCK_SKEW_SECONDS = 60;

/** Maximum long-poll duration in seconds; larger `wait` values are capped to it. */
export const STATE_WAIT_MAX_SECONDS = 60;

/** Upper bounds on status reports, so one satellite cannot make Ground Control store megabytes. */
export const STATUS_MAX_ARTIFACTS = 10_000;
export const STATUS_MAX_ERRORS = 100;
export const STATUS_MESSAGE_MAX_LENGTH = 2_000;

const protocolVersionSchema = z.int().min(1);

/** Ed25519 public key as a JWK (RFC 8037). Private parts are rejected. */
export const ed25519PublicJwkSchema = z
  .looseObject({
    kty: z.literal('OKP'),
    crv: z.literal('Ed25519'),
    // 32 bytes in unpadded base64url are 43 characters.
    x: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'must be a 32-byte base64url value'),
    d: z.undefined({ error: 'must not be present: send only the public key' }).optional(),
    kid: z.string().max(200).optional(),
  })
  .meta({ id: 'Ed25519PublicJwk' });
export type Ed25519PublicJwk = z.infer<typeof ed25519PublicJwkSchema>;

export const joinRequestSchema = z
  .looseObject({
    protocolVersion: protocolVersionSchema,
    token: z.string().min(1).max(200),
    publicKey: ed25519PublicJwkSchema,
    hostname: z.string().min(1).max(253),
    version: z.string().min(1).max(100),
  })
  .meta({ id: 'JoinRequest' });
export type JoinRequest = z.infer<typeof joinRequestSchema>;

export const joinResponseSchema = z
  .looseObject({
    protocolVersion: protocolVersionSchema,
    satelliteId: idSchema,
    name: nameSchema,
  })
  .meta({ id: 'JoinResponse' });
export type JoinResponse = z.infer<typeof joinResponseSchema>;

/** Claims of the JWT that a satellite signs with its Ed25519 key for every call after join. */
export const satelliteJwtClaimsSchema = z.looseObject({
  iss: idSchema,
  sub: idSchema,
  aud: z.union([z.literal(SATELLITE_JWT_AUDIENCE), z.array(z.string()).min(1)]),
  iat: z.int(),
  exp: z.int(),
  jti: z.string().min(1).max(200),
});
export type SatelliteJwtClaims = z.infer<typeof satelliteJwtClaimsSchema>;

export const upstreamCredentialSchema = z
  .looseObject({
    username: z.string(),
    password: z.string(),
    /** When the credential stops working; null for static credentials without an expiry. */
    expiresAt: timestampSchema.nullable(),
  })
  .meta({ id: 'UpstreamCredential' });
export type UpstreamCredential = z.infer<typeof upstreamCredentialSchema>;

export const desiredUpstreamSchema = z
  .looseObject({
    id: idSchema,
    /** Base URL that satellites use, such as `https://harbor.example.com`. */
    url: z.url(),
    /** PEM bundle to trust for this upstream in addition to the system roots. */
    caBundle: z.string().optional(),
    /** Skip TLS verification; meant for tests only. */
    insecure: z.boolean().optional(),
    credential: upstreamCredentialSchema.nullable(),
    /** Prepended with a `/` to the repository to form `localRepository`. */
    localPrefix: z.string().optional(),
  })
  .meta({ id: 'DesiredUpstream' });
export type DesiredUpstream = z.infer<typeof desiredUpstreamSchema>;

export const referrerSchema = z
  .looseObject({
    digest: digestSchema,
    mediaType: mediaTypeSchema,
    artifactType: z.string().optional(),
    size: z.int().min(0),
  })
  .meta({ id: 'Referrer' });
export type Referrer = z.infer<typeof referrerSchema>;

export const desiredArtifactSchema = z
  .looseObject({
    /** `id` of an entry in `upstreams`. */
    upstream: idSchema,
    repository: repositorySchema,
    /** Tag to set locally; null when the selection names a digest. */
    tag: tagSchema.nullable(),
    digest: digestSchema,
    mediaType: mediaTypeSchema,
    size: z.int().min(0),
    /** Platforms to copy from an index; null copies every child. */
    platforms: z.array(platformSchema).nullable(),
    referrers: z.array(referrerSchema),
    localRepository: repositorySchema,
  })
  .meta({ id: 'DesiredArtifact' });
export type DesiredArtifact = z.infer<typeof desiredArtifactSchema>;

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export const weekdaySchema = z.enum(WEEKDAYS);
export type Weekday = z.infer<typeof weekdaySchema>;

/** `HH:MM`, 24-hour clock; `24:00` is allowed as the end of a day. */
export const timeOfDaySchema = z
  .string()
  .regex(/^(?:[01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$/, 'must be a time such as "22:30"');

export const syncWindowSchema = z
  .looseObject({
    days: z.array(weekdaySchema).min(1).max(7),
    start: timeOfDaySchema,
    /** When `end` is not after `start`, the window runs past midnight into the next day. */
    end: timeOfDaySchema,
    /** IANA time zone name such as `Europe/Berlin`. */
    timeZone: z.string().min(1).max(64),
  })
  .meta({ id: 'SyncWindow' });
export type SyncWindow = z.infer<typeof syncWindowSchema>;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const logLevelSchema = z.enum(LOG_LEVELS);
export type LogLevel = z.infer<typeof logLevelSchema>;

export const RUNTIMES = ['containerd', 'cri-o', 'docker', 'podman', 'k3s'] as const;

export const runtimeMirrorSchema = z
  .looseObject({
    /** Container runtimes at the site whose mirror settings the satellite writes or prints. */
    runtimes: z.array(z.enum(RUNTIMES)),
    /** Upstream registry hosts that runtimes should pull through the site registry. */
    mirroredHosts: z.array(z.string().min(1).max(253)),
    /** Let runtimes fall back to the upstream when the site registry lacks an image. */
    fallbackToUpstream: z.boolean(),
  })
  .meta({ id: 'RuntimeMirror' });
export type RuntimeMirror = z.infer<typeof runtimeMirrorSchema>;

export const satelliteConfigSchema = z
  .looseObject({
    /** Long-poll length the satellite requests, and the pause between polls after an error. */
    pollIntervalSeconds: z.int().min(1).max(86_400),
    heartbeatIntervalSeconds: z.int().min(1).max(86_400),
    logLevel: logLevelSchema,
    /** Blob transfers at once. */
    concurrency: z.int().min(1).max(64),
    /** Limit over all downloads; null for no limit. */
    bandwidthBytesPerSecond: z.int().min(1).nullable(),
    /** Copy only inside these windows; an empty list means always. */
    syncWindows: z.array(syncWindowSchema).max(50),
    /** How long a placed artifact that left the desired state stays before removal. */
    removalGracePeriodSeconds: z.int().min(0),
    runtimeMirror: runtimeMirrorSchema.optional(),
  })
  .meta({ id: 'SatelliteConfig' });
export type SatelliteConfig = z.infer<typeof satelliteConfigSchema>;

/** Config a satellite receives when neither it nor any of its groups has one. */
export const DEFAULT_SATELLITE_CONFIG: SatelliteConfig = Object.freeze({
  pollIntervalSeconds: 30,
  heartbeatIntervalSeconds: 60,
  logLevel: 'info',
  concurrency: 4,
  bandwidthBytesPerSecond: null,
  syncWindows: [],
  removalGracePeriodSeconds: 3_600,
});

export const desiredStateSchema = z
  .looseObject({
    protocolVersion: protocolVersionSchema,
    satelliteId: idSchema,
    /** Increases whenever anything in this document changes. */
    revision: z.int().min(1),
    upstreams: z.array(desiredUpstreamSchema),
    artifacts: z.array(desiredArtifactSchema),
    config: satelliteConfigSchema,
  })
  .meta({ id: 'DesiredState' });
export type DesiredState = z.infer<typeof desiredStateSchema>;

export const stateQuerySchema = z.object({
  /** Seconds to hold the request open while the state is unchanged; capped at 60. */
  wait: z.coerce.number().int().min(0).max(86_400).optional(),
});
export type StateQuery = z.infer<typeof stateQuerySchema>;

export const SATELLITE_PHASES = [
  'in-sync',
  'syncing',
  'failed',
  'waiting-for-window',
  'revoked',
] as const;
export const satellitePhaseSchema = z.enum(SATELLITE_PHASES);
export type SatellitePhase = z.infer<typeof satellitePhaseSchema>;

export const ARTIFACT_STATES = ['present', 'pending', 'failed'] as const;
export const artifactStateSchema = z.enum(ARTIFACT_STATES);
export type ArtifactState = z.infer<typeof artifactStateSchema>;

export const artifactStatusSchema = z
  .looseObject({
    localRepository: repositorySchema,
    tag: tagSchema.nullable(),
    digest: digestSchema,
    state: artifactStateSchema,
    /** Reason for a failed or pending state, in words an operator can act on. */
    reason: z.string().max(STATUS_MESSAGE_MAX_LENGTH).optional(),
    bytesDone: z.int().min(0),
    bytesTotal: z.int().min(0),
  })
  .meta({ id: 'ArtifactStatus' });
export type ArtifactStatus = z.infer<typeof artifactStatusSchema>;

export const statusErrorSchema = z
  .looseObject({
    code: z.string().min(1).max(100),
    message: z.string().max(STATUS_MESSAGE_MAX_LENGTH),
  })
  .meta({ id: 'StatusError' });
export type StatusError = z.infer<typeof statusErrorSchema>;

export const statusReportSchema = z
  .looseObject({
    protocolVersion: protocolVersionSchema,
    /** Revision of the desired state last applied in full; 0 before the first one. */
    appliedRevision: z.int().min(0),
    phase: satellitePhaseSchema,
    artifacts: z.array(artifactStatusSchema).max(STATUS_MAX_ARTIFACTS),
    storage: z.looseObject({
      usedBytes: z.int().min(0),
      freeBytes: z.int().min(0),
    }),
    version: z.string().min(1).max(100),
    errors: z.array(statusErrorSchema).max(STATUS_MAX_ERRORS),
  })
  .meta({ id: 'StatusReport' });
export type StatusReport = z.infer<typeof statusReportSchema>;

export const statusResponseSchema = z
  .looseObject({
    protocolVersion: protocolVersionSchema,
    /** Current desired revision, so a satellite that missed a change can fetch it. */
    desiredRevision: z.int().min(1),
  })
  .meta({ id: 'StatusResponse' });
export type StatusResponse = z.infer<typeof statusResponseSchema>;
