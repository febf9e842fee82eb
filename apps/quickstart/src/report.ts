import type { Fleet } from '@edge/contract';
import type { ImageSelection } from './args.js';
import { LOOPBACK } from './ports.js';

function pad(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((cell, index) => cell.padEnd(widths[index] ?? 0))
    .join('  ')
    .trimEnd();
}

/** Formats the fleet view as counts and a table, one row per satellite. */
export function formatFleet(fleet: Fleet): string {
  const counts = Object.entries(fleet.counts)
    .filter(([key, value]) => key === 'total' || value > 0)
    .map(([key, value]) => `${key} ${value}`)
    .join(', ');
  const header = ['SATELLITE', 'CATEGORY', 'DESIRED', 'APPLIED', 'MISSING', 'LAST SEEN'];
  const rows = fleet.items.map((entry) => [
    entry.name,
    entry.category,
    String(entry.desiredRevision),
    entry.appliedRevision === null ? '-' : String(entry.appliedRevision),
    String(entry.missingArtifacts),
    entry.lastSeenAt ?? 'never',
  ]);
  const widths = header.map((cell, index) =>
    Math.max(cell.length, ...rows.map((row) => row[index]?.length ?? 0)),
  );
  return [`fleet: ${counts}`, pad(header, widths), ...rows.map((row) => pad(row, widths))].join(
    '\n',
  );
}

/**
 * Formats the commands that pull from the site registry: skopeo and docker per image, and a
 * containerd `hosts.toml` that makes the site registry a mirror of the upstream host. dockerd
 * treats registries on 127.0.0.0/8 as insecure by default, so `docker pull` works over plain HTTP.
 */
export function formatPullCommands(
  sitePort: number,
  upstreamUrl: string,
  images: readonly ImageSelection[],
): string {
  const site = `${LOOPBACK}:${sitePort}`;
  const upstreamHost = new URL(upstreamUrl).host;
  const lines = ['pull from the site registry:'];
  for (const image of images) {
    lines.push(
      `  skopeo inspect --tls-verify=false docker://${site}/${image.repository}:${image.tag}`,
    );
  }
  for (const image of images) lines.push(`  docker pull ${site}/${image.repository}:${image.tag}`);
  lines.push(
    '',
    `containerd 1.5 or later, /etc/containerd/certs.d/${upstreamHost}/hosts.toml (the site ` +
      'registry first, the upstream as fallback):',
    `  server = "${upstreamUrl}"`,
    '',
    `  [host."http://${site}"]`,
    '    capabilities = ["pull", "resolve"]',
  );
  return lines.join('\n');
}

/** Label in front of the generated admin password, the only line that shows it. */
export const ADMIN_PASSWORD_LABEL = 'Ground Control admin password (shown once):';

/** Joins the fleet table and the pull commands with a blank line around each. */
export function formatFleetReport(fleet: string, commands: string): string {
  return `\n${fleet}\n\n${commands}\n`;
}
