import { describe, expect, it } from 'vitest';
import {
  projectsOfRepositories,
  pullProjectsOf,
  robotPermissionsForProjects,
} from './permissions.js';

const pull = (namespace: string) => ({
  kind: 'project',
  namespace,
  access: [{ resource: 'repository', action: 'pull' }],
});

describe('robotPermissionsForProjects', () => {
  it.each([
    { case: 'no projects', projects: [], expected: [] },
    { case: 'one project', projects: ['alpha'], expected: [pull('alpha')] },
    {
      case: 'sorted by name',
      projects: ['beta', 'alpha'],
      expected: [pull('alpha'), pull('beta')],
    },
    {
      case: 'duplicates removed',
      projects: ['alpha', 'beta', 'alpha'],
      expected: [pull('alpha'), pull('beta')],
    },
    {
      case: 'separators allowed',
      projects: ['team.a', 'b_c', 'd-e'],
      expected: [pull('b_c'), pull('d-e'), pull('team.a')],
    },
  ])('builds pull permissions for $case', ({ projects, expected }) => {
    expect(robotPermissionsForProjects(projects)).toEqual(expected);
  });

  it('accepts any iterable', () => {
    expect(robotPermissionsForProjects(new Set(['alpha']))).toEqual([pull('alpha')]);
  });

  it.each(['Alpha', '', 'a/b', '-a', 'a--', 'a b'])('rejects project name %j', (name) => {
    expect(() => robotPermissionsForProjects([name])).toThrow(TypeError);
  });

  it('returns fresh access objects', () => {
    const [first] = robotPermissionsForProjects(['alpha']);
    const [second] = robotPermissionsForProjects(['alpha']);
    expect(first?.access).not.toBe(second?.access);
  });
});

describe('pullProjectsOf', () => {
  it.each([
    {
      case: 'pull permissions',
      permissions: [pull('beta'), pull('alpha')],
      expected: ['alpha', 'beta'],
    },
    {
      case: 'push only',
      permissions: [
        {
          kind: 'project',
          namespace: 'alpha',
          access: [{ resource: 'repository', action: 'push' }],
        },
      ],
      expected: [],
    },
    {
      case: 'denied pull',
      permissions: [
        {
          kind: 'project',
          namespace: 'alpha',
          access: [{ resource: 'repository', action: 'pull', effect: 'deny' }],
        },
      ],
      expected: [],
    },
    {
      case: 'system permission',
      permissions: [
        { kind: 'system', namespace: '/', access: [{ resource: 'repository', action: 'pull' }] },
      ],
      expected: [],
    },
  ])('reads projects from $case', ({ permissions, expected }) => {
    expect(pullProjectsOf(permissions)).toEqual(expected);
  });

  it('inverts robotPermissionsForProjects', () => {
    const projects = ['gamma', 'alpha', 'beta'];
    expect(pullProjectsOf(robotPermissionsForProjects(projects))).toEqual([
      'alpha',
      'beta',
      'gamma',
    ]);
  });
});

describe('projectsOfRepositories', () => {
  it.each([
    { case: 'one repository', repositories: ['team-a/app'], expected: ['team-a'] },
    { case: 'nested path', repositories: ['team-a/tools/cli'], expected: ['team-a'] },
    {
      case: 'union of groups',
      repositories: ['team-b/web', 'team-a/app', 'team-b/api', 'base/os'],
      expected: ['base', 'team-a', 'team-b'],
    },
    { case: 'nothing', repositories: [], expected: [] },
  ])('finds projects for $case', ({ repositories, expected }) => {
    expect(projectsOfRepositories(repositories)).toEqual(expected);
  });

  it.each(['busybox', 'Team/app', '/app', '-x/app'])('rejects repository %j', (repository) => {
    expect(() => projectsOfRepositories([repository])).toThrow(TypeError);
  });
});
