import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestImages, runCommand } from '@edge/testkit';
import type { TestImages } from '@edge/testkit';
import { startHarborDouble } from '@edge/testkit/harbor';
import type { HarborDouble } from '@edge/testkit/harbor';

// The Harbor double's token grants in front of a real docker-registry 2.8 in token mode, driven
// by skopeo: robot permissions decide which repositories a robot may push to and pull from.

/** A small large:1 layer, because these tests only need app-a:1 and app-b:1. */
const LARGE_LAYER_MIB = 1;

let harbor: HarborDouble;
let images: TestImages;
let registryHost: string;

interface Credentials {
  username: string;
  password: string;
}

async function skopeoCopy(from: string, to: string, creds: Credentials): Promise<void> {
  await runCommand(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--dest-tls-verify=false',
      '--dest-creds',
      `${creds.username}:${creds.password}`,
      from,
      to,
    ],
    { name: 'skopeo copy', secrets: [creds.password] },
  );
}

async function pushImage(image: string, repository: string, creds: Credentials): Promise<void> {
  const layoutTag = images.images[image]?.layoutTag;
  if (layoutTag === undefined) throw new Error(`test image ${image} is missing from the build`);
  await skopeoCopy(
    `oci:${images.layoutDir}:${layoutTag}`,
    `docker://${registryHost}/${repository}`,
    creds,
  );
}

async function createRobot(name: string, namespace: string, actions: string[]) {
  const response = await fetch(`${harbor.apiUrl}/robots`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${harbor.admin.username}:${harbor.admin.password}`).toString('base64')}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      name,
      level: 'system',
      duration: 1,
      permissions: [
        {
          kind: 'project',
          namespace,
          access: actions.map((action) => ({ resource: 'repository', action })),
        },
      ],
    }),
  });
  expect(response.status).toBe(201);
  const body = (await response.json()) as { name: string; secret: string };
  return { username: body.name, password: body.secret };
}

beforeAll(async () => {
  images = await buildTestImages({ largeLayerMiB: LARGE_LAYER_MIB });
  harbor = await startHarborDouble({
    projects: ['alpha', 'beta'],
    registry: { tokenTtlSeconds: 60 },
  });
  if (!harbor.registry) throw new Error('the Harbor double started without its registry');
  registryHost = harbor.registry.host;
});

afterAll(async () => {
  await harbor?.stop();
});

describe('harbor double with a token registry', () => {
  it('advertises the registry in systeminfo', async () => {
    const response = await fetch(`${harbor.apiUrl}/systeminfo`, {
      headers: {
        authorization: `Basic ${Buffer.from(`${harbor.admin.username}:${harbor.admin.password}`).toString('base64')}`,
      },
    });
    expect(await response.json()).toMatchObject({ registry_url: registryHost });
  });

  it('lets the admin push anywhere', async () => {
    await pushImage('app-a:1', 'alpha/app-a:1', harbor.admin);
    expect(harbor.counters.tokenRequests).toBeGreaterThan(0);
  });

  it('lets a push robot push to its project', async () => {
    const robot = await createRobot('pusher', 'beta', ['pull', 'push']);
    await pushImage('app-b:1', 'beta/app-b:1', robot);
    const { stdout } = await runCommand(
      'skopeo',
      [
        'inspect',
        '--raw',
        '--tls-verify=false',
        '--creds',
        `${robot.username}:${robot.password}`,
        `docker://${registryHost}/beta/app-b:1`,
      ],
      { name: 'skopeo inspect', secrets: [robot.password] },
    );
    expect(JSON.parse(stdout.toString('utf8'))).toHaveProperty('layers');
  });

  it('denies a push outside the robot project', async () => {
    const robot = await createRobot('pusher-beta', 'beta', ['pull', 'push']);
    await expect(pushImage('app-b:1', 'alpha/app-b:1', robot)).rejects.toThrow(
      /requested access to the resource is denied/,
    );
  });

  it('denies a push with pull-only permission', async () => {
    const robot = await createRobot('puller', 'alpha', ['pull']);
    await expect(pushImage('app-b:1', 'alpha/app-b:1', robot)).rejects.toThrow(
      /requested access to the resource is denied/,
    );
  });

  it('rejects a wrong robot secret', async () => {
    const robot = await createRobot('wrong-secret', 'alpha', ['pull', 'push']);
    const before = harbor.counters.tokenRejections;
    await expect(
      pushImage('app-b:1', 'alpha/app-b:1', { ...robot, password: 'Wrong-Secret-1' }),
    ).rejects.toThrow(/invalid username\/password/);
    expect(harbor.counters.tokenRejections).toBeGreaterThan(before);
  });
});
