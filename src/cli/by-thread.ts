// The outputs of --by-thread and --by-process: one summary table per
// thread or per process.

import type { Profile, ThreadInfo, ThreadState } from '../index';

export interface ByThreadOptions {
  readonly states: readonly ThreadState[];
  readonly top?: number;
  readonly threads?: readonly string[];
  /** Returns the title of a process for its heading, if known. */
  readonly titleOf?: (pid: number) => string | undefined;
}

/**
 * Formats one summary per thread that has samples the options select,
 * the thread with the most samples first, each headed by the thread's
 * name and kernel thread id.
 */
export function formatByThread(
  profile: Profile,
  options: ByThreadOptions,
): string {
  const filter = {
    states: options.states,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  };
  const sections: string[] = [];
  for (const view of profile.byThread(filter)) {
    const table = profile.toSummary({
      states: options.states,
      thread: view.thread.id,
      ...(options.top === undefined ? {} : { top: options.top }),
    });
    sections.push(`${threadHeading(view.thread, view.sampleCount)}\n${table}`);
  }
  return sections.join('\n');
}

/** Names a thread as every per-thread view heads it:
 * `Thread "left" (native id 1234)`. */
export function threadTitle(thread: ThreadInfo): string {
  const id = thread.tid > 0 ? `native id ${thread.tid}` : 'native id unknown';
  const name =
    thread.name === undefined
      ? 'Unnamed thread'
      : `Thread ${JSON.stringify(thread.name)}`;
  return `${name} (${id})`;
}

function threadHeading(thread: ThreadInfo, sampleCount: number): string {
  const unit = sampleCount === 1 ? 'sample' : 'samples';
  return `${threadTitle(thread)}: ${sampleCount} ${unit}`;
}

/**
 * Formats one summary per process that has samples the options select,
 * the process with the most samples first, each headed by its pid, its
 * title where known, and its thread count.
 */
export function formatByProcess(
  profile: Profile,
  options: ByThreadOptions,
): string {
  const filter = {
    states: options.states,
    ...(options.threads === undefined ? {} : { threads: options.threads }),
  };
  const views = profile
    .byProcess(filter)
    .sort((a, b) => b.sampleCount - a.sampleCount || a.pid - b.pid);
  const sections: string[] = [];
  for (const view of views) {
    const table = profile.toSummary({
      ...filter,
      pid: view.pid,
      ...(options.top === undefined ? {} : { top: options.top }),
    });
    const unit = view.sampleCount === 1 ? 'sample' : 'samples';
    const threads =
      view.threads.length === 1 ? '1 thread' : `${view.threads.length} threads`;
    const title = options.titleOf?.(view.pid);
    const named = title === undefined ? '' : ` ${JSON.stringify(title)}`;
    sections.push(
      `Process ${view.pid}${named} (${threads}): ${view.sampleCount} ${unit}\n${table}`,
    );
  }
  return sections.join('\n');
}
