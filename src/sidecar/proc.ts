// Reads the processes of this PID namespace from /proc. Every read is
// bounded, and a process that exits during a scan is skipped.

import fs from 'node:fs/promises';
import path from 'node:path';

/** A process as /proc shows it. */
export interface ProcessEntry {
  readonly pid: number;
  /** 0 for a process whose parent is outside this PID namespace. */
  readonly ppid: number;
  /** Field 22 of /proc/PID/stat: clock ticks from boot to the start.
   * With the pid it identifies a process, since pids are reused. */
  readonly startTime: string;
  /** The name of the executable, at most 15 characters (`comm`). */
  readonly comm: string;
  /** The path of the executable. It is absent when it cannot be read, as for
   * a kernel thread or without permission. */
  readonly exe?: string;
  /** The arguments joined by spaces, cut at `MAX_CMDLINE_BYTES`. */
  readonly cmdline: string;
}

const MAX_STAT_BYTES = 4096;
const MAX_CMDLINE_BYTES = 4096;
/** /proc/PID/maps of a large Ruby process takes a few hundred KiB. A
 * file longer than this is read only this far. */
const MAX_MAPS_BYTES = 8 << 20;

/** Lists the processes under `procRoot`, such as `/proc`. */
export async function listProcesses(procRoot: string): Promise<ProcessEntry[]> {
  const names = await fs.readdir(procRoot);
  const entries: ProcessEntry[] = [];
  for (const name of names) {
    if (!/^\d+$/.test(name)) {
      continue;
    }
    const entry = await readProcess(procRoot, Number(name));
    if (entry !== undefined) {
      entries.push(entry);
    }
  }
  return entries;
}

/** Reads one process. Returns undefined when it is gone or is a kernel
 * thread. */
export async function readProcess(
  procRoot: string,
  pid: number,
): Promise<ProcessEntry | undefined> {
  const dir = path.join(procRoot, String(pid));
  const stat = await readBounded(path.join(dir, 'stat'), MAX_STAT_BYTES);
  if (stat === undefined) {
    return undefined;
  }
  const parsed = parseStat(stat);
  if (parsed === undefined) {
    return undefined;
  }
  const cmdlineText = await readBounded(
    path.join(dir, 'cmdline'),
    MAX_CMDLINE_BYTES,
  );
  // Kernel threads have an empty command line.
  if (cmdlineText === undefined || cmdlineText === '') {
    return undefined;
  }
  let exe: string | undefined;
  try {
    exe = await fs.readlink(path.join(dir, 'exe'));
  } catch {
    exe = undefined;
  }
  return {
    pid,
    ...parsed,
    ...(exe === undefined ? {} : { exe }),
    cmdline: cmdlineText.replace(/\0+$/, '').replace(/\0/g, ' '),
  };
}

/** Parses the fields of /proc/PID/stat that discovery uses. The name in
 * parentheses may contain spaces and parentheses itself, so the fields
 * after it are found from the last `)`. */
export function parseStat(
  text: string,
): { ppid: number; startTime: string; comm: string } | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < open) {
    return undefined;
  }
  // Fields from 3 on: state, ppid, ..., with starttime as field 22.
  const fields = text
    .slice(close + 2)
    .trim()
    .split(' ');
  const ppid = Number(fields[1]);
  const startTime = fields[19];
  if (!Number.isSafeInteger(ppid) || !/^\d+$/.test(startTime ?? '')) {
    return undefined;
  }
  return { ppid, startTime, comm: text.slice(open + 1, close) };
}

/**
 * Returns whether a process may run the Ruby VM: its executable's name
 * contains `ruby`, or it maps a `libruby` shared library. The core makes
 * the final decision when it attaches, since a static Ruby executable
 * under another name passes neither check.
 */
export async function looksLikeRuby(
  procRoot: string,
  entry: ProcessEntry,
): Promise<boolean> {
  if (entry.exe !== undefined && /ruby/.test(path.basename(entry.exe))) {
    return true;
  }
  const maps = await readBounded(
    path.join(procRoot, String(entry.pid), 'maps'),
    MAX_MAPS_BYTES,
  );
  return maps !== undefined && /\/libruby[^/\n]*\.so/.test(maps);
}

/** Reads up to `maxBytes` of a file as UTF-8, or returns undefined when it cannot
 * be read, as when the process has exited. */
async function readBounded(
  file: string,
  maxBytes: number,
): Promise<string | undefined> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(file, 'r');
    const buffer = Buffer.alloc(Math.min(maxBytes, 64 << 10));
    const chunks: Buffer[] = [];
    let total = 0;
    while (total < maxBytes) {
      const want = Math.min(buffer.length, maxBytes - total);
      const { bytesRead } = await handle.read(buffer, 0, want, null);
      if (bytesRead === 0) {
        break;
      }
      chunks.push(Buffer.from(buffer.subarray(0, bytesRead)));
      total += bytesRead;
    }
    return Buffer.concat(chunks).toString('utf8');
  } catch {
    return undefined;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
