// Figures of a running process from Linux /proc.
import { readFile, readdir } from 'node:fs/promises';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux x86 and arm). */
const CLOCK_TICKS_PER_SECOND = 100;

/** Resident set size now (`VmRSS`) and its peak (`VmHWM`), in bytes. */
export async function readRss(pid: number): Promise<{ rssBytes: number; peakBytes: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number =>
    Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rssBytes: kib('VmRSS') * 1024, peakBytes: kib('VmHWM') * 1024 };
}

/** User plus system CPU time of a running process, in milliseconds. */
export async function readCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name in parentheses start at field 3 (state); utime is 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** One-minute load average of the machine, to record how busy it was during a run. */
export async function readLoadAverage(): Promise<number> {
  const text = await readFile('/proc/loadavg', 'utf8');
  return Number(text.split(' ')[0] ?? 0);
}

/** User plus system CPU time of each process whose command name is `name`, in ms by PID. */
export async function readCpuMsByName(name: string): Promise<Map<number, number>> {
  const times = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = (await readFile(`/proc/${entry}/comm`, 'utf8')).trim();
      if (comm === name) times.set(Number(entry), await readCpuMs(Number(entry)));
    } catch {
      // The process exited while the folder was read.
    }
  }
  return times;
}

/**
 * CPU time used between two `readCpuMsByName` reads, in milliseconds. Only processes present in
 * both count, so one that started or exited in between (a short-lived connection) is left out.
 */
export function cpuMsBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) {
    const start = before.get(pid);
    if (start !== undefined && ms >= start) total += ms - start;
  }
  return total;
}
