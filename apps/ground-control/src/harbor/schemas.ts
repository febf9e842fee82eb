import { z } from 'zod';

// Response bodies of Harbor's REST API v2.0 as far as the client reads them. Unknown fields are
// ignored, because newer Harbor versions add fields.

export const harborErrorsSchema = z.object({
  errors: z.array(z.object({ code: z.string().optional(), message: z.string().optional() })),
});

const accessSchema = z.object({
  resource: z.string(),
  action: z.string(),
  effect: z.string().optional(),
});

const permissionSchema = z.object({
  kind: z.string(),
  namespace: z.string(),
  access: z.array(accessSchema).nullable().default([]),
});

export const robotSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  description: z.string().optional().default(''),
  level: z.string(),
  /** Days, or -1 for no expiry. Harbor's API document marks the field nullable. */
  duration: z.number().int().nullable().optional(),
  disable: z.boolean().default(false),
  /** Unix seconds, or -1 for no expiry. */
  expires_at: z.number().int(),
  permissions: z.array(permissionSchema).nullable().default([]),
  creation_time: z.string(),
});

export const robotCreatedSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  secret: z.string().min(1),
  creation_time: z.string().optional(),
  expires_at: z.number().int(),
});

export const robotSecretSchema = z.object({ secret: z.string().min(1) });

export const projectSchema = z.object({
  project_id: z.number().int(),
  name: z.string(),
  metadata: z.object({ public: z.string().optional() }).partial().nullable().optional(),
});

export const healthSchema = z.object({
  status: z.string(),
  components: z
    .array(z.object({ name: z.string(), status: z.string(), error: z.string().optional() }))
    .default([]),
});

export type RobotBody = z.infer<typeof robotSchema>;
