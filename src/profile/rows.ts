import type { FunctionInfo, ThreadInfo, ThreadState } from '../types';
import { THREAD_STATES, type ProfileSnapshot } from './data';
import { StackTree } from './stacks';
import { threadSelected, type ThreadSelector } from './threads';

/** One line of a summary. */
export interface SummaryRow {
  readonly function: FunctionInfo;
  /** The line executing in the function, for rows by line; 0 when
   * unknown. */
  readonly line?: number;
  /** Thread-samples with this function at the leaf. */
  readonly selfSamples: number;
  /** Thread-samples with this function anywhere on the stack, counted
   * once per thread-sample however often it recurses. */
  readonly totalSamples: number;
  /** `selfSamples` as a percentage (0 to 100) of the thread-samples that
   * the options of `rows()` select, which `countSamples()` returns. */
  readonly selfPercent: number;
  /** `totalSamples` as a percentage (0 to 100) of the same thread-samples
   * as `selfPercent`. */
  readonly totalPercent: number;
}

/** The selection of thread-samples that a view counts. */
export interface SampleFilter {
  /** Thread states whose samples count; only `running` by default. */
  readonly states?: readonly ThreadState[];
  /** Count only the samples of the thread with this `ThreadInfo.id`. */
  readonly thread?: number;
  /** Count only the samples of threads of the process with this id
   * (`ThreadInfo.pid`). */
  readonly pid?: number;
  /** Count only the samples of threads whose `Thread#name` or kernel
   * thread id (`ThreadInfo.tid`) is one of these values. */
  readonly threads?: readonly ThreadSelector[];
}

export interface RowsOptions extends SampleFilter {
  /** The key of a row: `function` (name and path, the default) or `line`
   * (name, path and the line executing in that frame). */
  readonly by?: 'function' | 'line';
}

/** The rows of one thread's samples. */
export interface ThreadRows {
  readonly thread: ThreadInfo;
  /** Thread-samples of this thread that the options select: the 100 % of
   * `rows`. */
  readonly sampleCount: number;
  /** Percentages are shares of this thread's `sampleCount`. */
  readonly rows: SummaryRow[];
}

/** The rows of the samples of all threads of one process. */
export interface ProcessRows {
  readonly pid: number;
  /** The threads of this process that have samples the options select. */
  readonly threads: ThreadInfo[];
  /** Thread-samples of this process that the options select: the 100 %
   * of `rows`. */
  readonly sampleCount: number;
  /** Percentages are shares of this process's `sampleCount`. */
  readonly rows: SummaryRow[];
}

/**
 * The thread-samples that a view counts, resolved against one snapshot:
 * which states count and, when set, which threads.
 */
export interface EntryFilter {
  /** Indexed by the index of a state in `THREAD_STATES`. */
  readonly states: readonly boolean[];
  /** The ids of the threads that count; every thread when absent. */
  readonly threads?: ReadonlySet<number>;
}

/**
 * Resolves a `SampleFilter` against a snapshot. `pid` and `threads`
 * become the set of the ids of the threads they select, and a thread
 * counts only when every filter that is set selects it.
 */
export function entryFilter(
  snapshot: ProfileSnapshot,
  filter: SampleFilter,
  defaultStates: readonly ThreadState[],
): EntryFilter {
  const states = new Array<boolean>(THREAD_STATES.length).fill(false);
  for (const state of filter.states ?? defaultStates) {
    const index = THREAD_STATES.indexOf(state);
    if (index >= 0) {
      states[index] = true;
    }
  }
  if (
    filter.thread === undefined &&
    filter.pid === undefined &&
    filter.threads === undefined
  ) {
    return { states };
  }
  const threads = new Set<number>();
  const { data, threadCount } = snapshot;
  for (let id = 0; id < threadCount; id++) {
    const thread = data.threads[id];
    if (
      thread !== undefined &&
      (filter.thread === undefined || filter.thread === id) &&
      (filter.pid === undefined || filter.pid === thread.pid) &&
      (filter.threads === undefined || threadSelected(thread, filter.threads))
    ) {
      threads.add(id);
    }
  }
  return { states, threads };
}

/** Returns whether an aggregate entry of the snapshot's data counts. */
function counts(
  snapshot: ProfileSnapshot,
  filter: EntryFilter,
  entry: number,
): boolean {
  const { data } = snapshot;
  return (
    filter.states[data.entryStates[entry]] === true &&
    (filter.threads === undefined ||
      filter.threads.has(data.entryThreads[entry]))
  );
}

/** Returns the number of thread-samples of a snapshot that count. */
export function countSamples(
  snapshot: ProfileSnapshot,
  filter: EntryFilter,
): number {
  let total = 0;
  for (let entry = 0; entry < snapshot.entryCount; entry++) {
    if (counts(snapshot, filter, entry)) {
      total += snapshot.counts[entry];
    }
  }
  return total;
}

/**
 * Returns the thread-samples that count per thread id, for the threads
 * that have any, in the order in which the threads first occurred.
 */
export function samplesByThread(
  snapshot: ProfileSnapshot,
  filter: EntryFilter,
): Map<number, number> {
  const byThread = new Map<number, number>();
  const { data, counts: entryCounts } = snapshot;
  for (let entry = 0; entry < snapshot.entryCount; entry++) {
    if (counts(snapshot, filter, entry)) {
      const thread = data.entryThreads[entry];
      byThread.set(thread, (byThread.get(thread) ?? 0) + entryCounts[entry]);
    }
  }
  return byThread;
}

/**
 * Counts `% self` and `% total` per function, or per function and line when
 * `by` is `line`, over the thread-samples of a snapshot that `filter`
 * selects. Rows are sorted by self, then total, then name, path and line,
 * and rows with no samples are left out.
 */
export function functionRows(
  snapshot: ProfileSnapshot,
  filter: EntryFilter,
  by: 'function' | 'line' = 'function',
): SummaryRow[] {
  // Samples per leaf node, then summed up the tree into inclusive counts.
  const { data, entryCount, nodeCount } = snapshot;
  const stacks = data.stacks;
  const leafSamples = new Float64Array(nodeCount);
  let countedSamples = 0;
  for (let entry = 0; entry < entryCount; entry++) {
    if (counts(snapshot, filter, entry)) {
      const samples = snapshot.counts[entry];
      leafSamples[data.entryLeaves[entry]] += samples;
      countedSamples += samples;
    }
  }
  if (countedSamples === 0) {
    return [];
  }
  const inclusive = Float64Array.from(leafSamples);
  for (let node = nodeCount - 1; node > 0; node--) {
    inclusive[stacks.parents[node]] += inclusive[node];
  }

  // Rows by line share a key only when both function and line match.
  const byLine = by === 'line';
  const keyOf = (node: number) =>
    byLine
      ? `${stacks.functions[node]}:${stacks.lines[node]}`
      : `${stacks.functions[node]}`;
  const totals = new Map<string, RowCounts>();
  for (let node = 1; node < nodeCount; node++) {
    if (inclusive[node] === 0) {
      continue;
    }
    const key = keyOf(node);
    let row = totals.get(key);
    if (row === undefined) {
      row = { node, self: 0, total: 0 };
      totals.set(key, row);
    }
    row.self += leafSamples[node];
    // The outermost node of a key covers every sample that contains it, so
    // deeper (recursive) nodes of the same key are not added again.
    const outermost = byLine
      ? isOutermostLine(stacks, node)
      : stacks.outermost[node];
    if (outermost) {
      row.total += inclusive[node];
    }
  }

  const rows: SummaryRow[] = [];
  for (const { node, self, total } of totals.values()) {
    const fn = stacks.functions[node];
    const row = {
      function: data.functions[fn] ?? unknownFunction(fn),
      selfSamples: self,
      totalSamples: total,
      selfPercent: (100 * self) / countedSamples,
      totalPercent: (100 * total) / countedSamples,
    };
    rows.push(byLine ? { ...row, line: stacks.lines[node] } : row);
  }
  return rows.sort(compareRows);
}

/** The samples of one row and a stack node that has its key. */
interface RowCounts {
  readonly node: number;
  self: number;
  total: number;
}

/** Returns whether no ancestor of a node has the same function and line. */
function isOutermostLine(stacks: StackTree, node: number): boolean {
  if (stacks.outermost[node]) {
    return true;
  }
  const fn = stacks.functions[node];
  const line = stacks.lines[node];
  for (
    let n = stacks.parents[node];
    n !== StackTree.ROOT;
    n = stacks.parents[n]
  ) {
    if (stacks.functions[n] === fn && stacks.lines[n] === line) {
      return false;
    }
  }
  return true;
}

function compareRows(a: SummaryRow, b: SummaryRow): number {
  return (
    b.selfSamples - a.selfSamples ||
    b.totalSamples - a.totalSamples ||
    compareText(a.function.name, b.function.name) ||
    compareText(a.function.path, b.function.path) ||
    (a.line ?? 0) - (b.line ?? 0)
  );
}

function compareText(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}

/** Stands in for a function id that no batch defined, which the core
 * never sends; a row is still better than a crash. */
function unknownFunction(id: number): FunctionInfo {
  return { id, name: `<function ${id}>`, path: 'unknown', kind: 'synthetic' };
}
