import type { DataDirLayout } from './data-dir.js';
import { readJsonFile } from './atomic-file.js';
import type { LocalStatus } from './status-tracker.js';

/** Renders status.json for `satellite status`; reads only files, so it works beside a running daemon. */
export async function renderStatus(
  layout: DataDirLayout,
  json: boolean,
): Promise<{ text: string; found: boolean }> {
  const status = (await readJsonFile(layout.statusFile)) as LocalStatus | undefined;
  const identity = (await readJsonFile(layout.identityFile)) as
    { satelliteId?: string; name?: string } | undefined;
  if (!status) {
    return {
      found: false,
      text: `No status in ${layout.root} yet: the satellite has not run there, or --data-dir points elsewhere.\n`,
    };
  }
  if (json) return { found: true, text: `${JSON.stringify({ identity, ...status }, null, 2)}\n` };

  const lines: string[] = [];
  lines.push(`satellite  ${identity?.name ?? '-'} (${identity?.satelliteId ?? 'not joined'})`);
  lines.push(
    `phase      ${status.phase}${status.revoked ? ' (revoked by Ground Control: syncing stopped, serving what is present)' : ''}`,
  );
  lines.push(
    `revision   applied ${status.appliedRevision}, desired ${status.desiredRevision ?? '-'}`,
  );
  const gc = status.groundControl;
  lines.push(
    `ground     ${gc.reachable === null ? 'not contacted' : gc.reachable ? 'reachable' : `unreachable (${gc.lastError ?? 'unknown error'})`}, last contact ${gc.lastContactAt ?? 'never'}`,
  );
  lines.push(`registry   ${status.registry.kind} ${status.registry.url ?? ''}`.trimEnd());
  lines.push(
    `storage    ${formatBytes(status.storage.usedBytes)} used, ${formatBytes(status.storage.freeBytes)} free`,
  );
  lines.push(`updated    ${status.updatedAt} (pid ${status.pid})`);
  const counts = { present: 0, pending: 0, failed: 0 };
  for (const artifact of status.artifacts) counts[artifact.state] += 1;
  lines.push(
    `artifacts  ${counts.present} present, ${counts.pending} pending, ${counts.failed} failed`,
  );
  for (const artifact of status.artifacts) {
    const name = `${artifact.localRepository}${artifact.tag ? `:${artifact.tag}` : ''}@${artifact.digest.slice(0, 19)}`;
    const bytes = `${formatBytes(artifact.bytesDone)}/${formatBytes(artifact.bytesTotal)}`;
    lines.push(
      `  ${artifact.state.padEnd(8)} ${name} ${bytes}${artifact.reason ? `  ${artifact.reason}` : ''}`,
    );
  }
  for (const error of status.errors) lines.push(`error      ${error.code}: ${error.message}`);
  return { found: true, text: `${lines.join('\n')}\n` };
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
