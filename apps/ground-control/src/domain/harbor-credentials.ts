import { and, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { SecretBox } from '../crypto/secrets.js';
import { queryRows, type Db } from '../db/database.js';
import {
  registries,
  robotAccounts,
  satelliteGroups,
  satellites,
  selections,
} from '../db/schema.js';
import {
  createHarborClient,
  type HarborClient,
  type HarborRegistrySettings,
} from '../harbor/index.js';
import { AppError } from '../errors.js';
import { recordAudit } from './audit.js';
import { bumpRevisions } from './revisions.js';

/** Creates the Harbor API client for one registry; tests may substitute their own. */
export type HarborClientFactory = (registry: HarborRegistrySettings) => HarborClient;

type RegistryRow = typeof registries.$inferSelect;
type RobotRow = typeof robotAccounts.$inferSelect;

/** Harbor puts a repository `<project>/<path>` in the project named by its first component. */
export function harborProjectOf(repository: string): string | null {
  const slash = repository.indexOf('/');
  return slash <= 0 ? null : repository.slice(0, slash);
}

export function robotNameFor(satelliteId: string): string {
  return `sat-${satelliteId}`;
}

interface Dependencies {
  db: Db;
  secrets: SecretBox;
  logger: Logger;
  config: Config;
  now: () => number;
}

/**
 * Robot accounts for `kind: harbor` registries: one per satellite and Harbor registry, with pull
 * access to exactly the union of the Harbor projects that the satellite's groups select from.
 * Harbor calls happen outside database transactions; a failed call is logged and retried by the
 * credential job, which also refreshes secrets before they expire.
 */
export class HarborCredentials {
  private readonly factory: HarborClientFactory;

  constructor(
    private readonly deps: Dependencies,
    factory?: HarborClientFactory,
  ) {
    this.factory = factory ?? ((registry) => createHarborClient(registry, { logger: deps.logger }));
  }

  /** Opens a client with Ground Control's Harbor account of a registry. */
  clientFor(
    registry: Pick<
      RegistryRow,
      | 'name'
      | 'url'
      | 'apiUrl'
      | 'caBundle'
      | 'insecure'
      | 'credentialUsername'
      | 'credentialSecret'
    >,
  ): HarborClient {
    if (registry.credentialUsername === null || registry.credentialSecret === null) {
      throw new AppError(
        'VALIDATION_FAILED',
        `registry "${registry.name}" of kind harbor needs a credential: an account allowed to manage robot accounts`,
      );
    }
    return this.factory({
      url: registry.apiUrl ?? registry.url,
      username: registry.credentialUsername,
      password: this.deps.secrets.decrypt(registry.credentialSecret),
      caBundle: registry.caBundle,
      insecure: registry.insecure,
    });
  }

  /** Checks that Harbor responds and the account may manage robots; used on registry create. */
  async check(registry: Parameters<HarborCredentials['clientFor']>[0]): Promise<void> {
    const client = this.clientFor(registry);
    try {
      await client.checkAccess();
    } finally {
      await client.close();
    }
  }

  /** Harbor projects per Harbor registry that a satellite's groups select from. */
  private async wantedProjects(satelliteId: string): Promise<Map<string, Set<string>>> {
    const rows = await this.deps.db
      .selectDistinct({ registryId: selections.registryId, repository: selections.repository })
      .from(selections)
      .innerJoin(satelliteGroups, eq(satelliteGroups.groupId, selections.groupId))
      .innerJoin(registries, eq(registries.id, selections.registryId))
      .where(and(eq(satelliteGroups.satelliteId, satelliteId), eq(registries.kind, 'harbor')));
    const wanted = new Map<string, Set<string>>();
    for (const row of rows) {
      const project = harborProjectOf(row.repository);
      if (project === null) continue;
      const set = wanted.get(row.registryId) ?? new Set<string>();
      set.add(project);
      wanted.set(row.registryId, set);
    }
    return wanted;
  }

  /**
   * Brings a satellite's robots in line with its groups: creates missing robots, replaces the
   * project list of changed ones and deletes robots no longer needed. Revoked satellites get
   * no robots. Bumps the satellite's revision when its credentials changed.
   */
  async syncSatellite(satelliteId: string): Promise<void> {
    const { db } = this.deps;
    const [satellite] = await db
      .select({ state: satellites.state, name: satellites.name })
      .from(satellites)
      .where(eq(satellites.id, satelliteId));
    if (satellite === undefined) return;
    const wanted =
      satellite.state === 'revoked'
        ? new Map<string, Set<string>>()
        : await this.wantedProjects(satelliteId);
    const existing = await db
      .select()
      .from(robotAccounts)
      .where(eq(robotAccounts.satelliteId, satelliteId));
    const registryIds = [
      ...new Set([...wanted.keys(), ...existing.map((robot) => robot.registryId)]),
    ];
    if (registryIds.length === 0) return;
    const registryRows = await db
      .select()
      .from(registries)
      .where(inArray(registries.id, registryIds));
    let changed = false;
    for (const registry of registryRows) {
      const projects = [...(wanted.get(registry.id) ?? [])].sort();
      const robot = existing.find((entry) => entry.registryId === registry.id);
      changed = (await this.syncRobot(satelliteId, registry, robot, projects)) || changed;
    }
    if (changed) await bumpRevisions(db, { satelliteIds: [satelliteId] });
  }

  private async syncRobot(
    satelliteId: string,
    registry: RegistryRow,
    robot: RobotRow | undefined,
    projects: string[],
  ): Promise<boolean> {
    const { db, secrets, config, logger } = this.deps;
    const client = this.clientFor(registry);
    try {
      if (projects.length === 0) {
        if (robot === undefined) return false;
        await this.deleteRobot(client, satelliteId, registry, robot);
        return true;
      }
      if (robot !== undefined) {
        if (robot.projects.join(',') === projects.join(',')) return false;
        await client.updateRobotProjects(robot.robotId, projects);
        await db
          .update(robotAccounts)
          .set({ projects, updatedAt: new Date(this.deps.now()) })
          .where(
            and(
              eq(robotAccounts.satelliteId, satelliteId),
              eq(robotAccounts.registryId, registry.id),
            ),
          );
        logger.info(
          { satelliteId, registry: registry.name, projects },
          'updated Harbor robot projects',
        );
        // The credential itself is unchanged, so satellites need no new revision.
        return false;
      }
      const created = await client.provisionRobot({
        name: robotNameFor(satelliteId),
        projects,
        durationDays: config.robotDurationDays,
        description: `Ground Control pull credential of satellite ${satelliteId}`,
      });
      await db
        .insert(robotAccounts)
        .values({
          satelliteId,
          registryId: registry.id,
          robotId: created.id,
          robotName: created.name,
          secret: secrets.encrypt(created.secret),
          projects,
          expiresAt: created.expiresAt,
        })
        .onConflictDoUpdate({
          target: [robotAccounts.satelliteId, robotAccounts.registryId],
          set: {
            robotId: created.id,
            robotName: created.name,
            secret: secrets.encrypt(created.secret),
            projects,
            expiresAt: created.expiresAt,
            updatedAt: new Date(this.deps.now()),
          },
        });
      await recordAudit(db, {
        actor: 'system',
        action: 'credential.create',
        target: `satellite:${satelliteId}`,
        details: { registry: registry.name, robot: created.name, projects },
      });
      logger.info(
        { satelliteId, registry: registry.name, robot: created.name, projects },
        'created Harbor robot account',
      );
      return true;
    } finally {
      await client.close();
    }
  }

  /** Syncs several satellites, logging failures so one broken Harbor never stops the others. */
  async syncSatellites(satelliteIds: string[]): Promise<void> {
    if (!(await this.anythingToSync())) return;
    for (const satelliteId of satelliteIds) {
      try {
        await this.syncSatellite(satelliteId);
      } catch (error) {
        this.deps.logger.error(
          { err: error, satelliteId },
          'Harbor robot sync failed; the credential job retries it',
        );
      }
    }
  }

  /** Deletes every robot of a satellite in Harbor; used on revoke and before delete. */
  async removeSatellite(satelliteId: string): Promise<void> {
    const { db } = this.deps;
    const robots = await db
      .select({ robot: robotAccounts, registry: registries })
      .from(robotAccounts)
      .innerJoin(registries, eq(registries.id, robotAccounts.registryId))
      .where(eq(robotAccounts.satelliteId, satelliteId));
    for (const { robot, registry } of robots) {
      const client = this.clientFor(registry);
      try {
        await this.deleteRobot(client, satelliteId, registry, robot);
      } finally {
        await client.close();
      }
    }
  }

  /** Deletes one robot in Harbor, then its row, with an audit entry and a log line. */
  private async deleteRobot(
    client: ReturnType<HarborCredentials['clientFor']>,
    satelliteId: string,
    registry: RegistryRow,
    robot: RobotRow,
  ): Promise<void> {
    const { db, logger } = this.deps;
    await client.deleteRobot(robot.robotId);
    await db
      .delete(robotAccounts)
      .where(
        and(eq(robotAccounts.satelliteId, satelliteId), eq(robotAccounts.registryId, registry.id)),
      );
    await recordAudit(db, {
      actor: 'system',
      action: 'credential.delete',
      target: `satellite:${satelliteId}`,
      details: { registry: registry.name, robot: robot.robotName },
    });
    logger.info(
      { satelliteId, registry: registry.name, robot: robot.robotName },
      'deleted Harbor robot account',
    );
  }

  /** Refreshes the secret of every robot that expires within the configured margin. */
  async rotateExpiring(): Promise<number> {
    const { db, secrets, config, logger } = this.deps;
    const horizon = new Date(this.deps.now() + config.robotRefreshBeforeSeconds * 1_000);
    const due = await db
      .select({ robot: robotAccounts, registry: registries })
      .from(robotAccounts)
      .innerJoin(registries, eq(registries.id, robotAccounts.registryId))
      .where(lt(robotAccounts.expiresAt, horizon));
    let rotated = 0;
    for (const { robot, registry } of due) {
      const client = this.clientFor(registry);
      try {
        const refreshed = await client.refreshRobotSecret(robot.robotId, {
          extendDays: config.robotDurationDays,
        });
        await db.transaction(async (tx) => {
          await tx
            .update(robotAccounts)
            .set({
              secret: secrets.encrypt(refreshed.secret),
              expiresAt: refreshed.expiresAt,
              updatedAt: new Date(this.deps.now()),
            })
            .where(
              and(
                eq(robotAccounts.satelliteId, robot.satelliteId),
                eq(robotAccounts.registryId, robot.registryId),
              ),
            );
          await bumpRevisions(tx, { satelliteIds: [robot.satelliteId] });
          await recordAudit(tx, {
            actor: 'system',
            action: 'credential.rotate',
            target: `satellite:${robot.satelliteId}`,
            details: { registry: registry.name, robot: robot.robotName },
          });
        });
        rotated += 1;
        logger.info(
          { satelliteId: robot.satelliteId, registry: registry.name, robot: robot.robotName },
          'rotated Harbor robot secret',
        );
      } catch (error) {
        logger.error(
          { err: error, satelliteId: robot.satelliteId, registry: registry.name },
          'Harbor robot rotation failed; retried next run',
        );
      } finally {
        await client.close();
      }
    }
    return rotated;
  }

  /** Satellites that select from a Harbor registry or still hold a robot; for the credential job. */
  async satellitesToSync(): Promise<string[]> {
    const rows = await queryRows<{ id: string }>(
      this.deps.db,
      sql`
        select distinct sg.satellite_id as id from satellite_groups sg
          join selections sel on sel.group_id = sg.group_id
          join registries r on r.id = sel.registry_id and r.kind = 'harbor'
        union select satellite_id as id from robot_accounts`,
    );
    return rows.map((row) => row.id);
  }

  /** Member satellites of groups, for a sync after the groups changed. */
  /**
   * Returns false when no Harbor registry and no robot account exist, so no satellite has a
   * robot to create or delete. Two queries then replace a few per member of a large group.
   */
  private async anythingToSync(): Promise<boolean> {
    const { db } = this.deps;
    const [harbor] = await db
      .select({ id: registries.id })
      .from(registries)
      .where(eq(registries.kind, 'harbor'))
      .limit(1);
    if (harbor !== undefined) return true;
    const [robot] = await db
      .select({ satelliteId: robotAccounts.satelliteId })
      .from(robotAccounts)
      .limit(1);
    return robot !== undefined;
  }

  async membersOf(groupIds: string[]): Promise<string[]> {
    if (groupIds.length === 0) return [];
    const rows = await this.deps.db
      .selectDistinct({ id: satelliteGroups.satelliteId })
      .from(satelliteGroups)
      .where(inArray(satelliteGroups.groupId, groupIds));
    return rows.map((row) => row.id);
  }
}
