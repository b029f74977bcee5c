import type { FunctionInfo, ThreadState } from '../types';
import { THREAD_STATES, type ProfileSnapshot } from './data';
import { StackTree } from './stacks';

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
  readonly selfPercent: number;
  readonly totalPercent: number;
}

export interface RowsOptions {
  /** The key of a row: `function` (name and path, the default) or `line`
   * (name, path and the line executing in that frame). */
  readonly by?: 'function' | 'line';
  /** Thread states whose samples count; only `running` by default. */
  readonly states?: readonly ThreadState[];
}

/**
 * Counts `% self` and `% total` per function, or per function and line when
 * `by` is `line`, over the thread-samples of a snapshot whose state is in
 * `states`. Rows are sorted by self, then total, then name, path and line,
 * and rows with no samples are left out.
 */
export function functionRows(
  snapshot: ProfileSnapshot,
  states: readonly ThreadState[],
  by: 'function' | 'line' = 'function',
): SummaryRow[] {
  const counted = new Array<boolean>(THREAD_STATES.length).fill(false);
  for (const state of states) {
    counted[THREAD_STATES.indexOf(state)] = true;
  }

  // Samples per leaf node, then summed up the tree into inclusive counts.
  const { data, counts, entryCount, nodeCount } = snapshot;
  const stacks = data.stacks;
  const leafSamples = new Float64Array(nodeCount);
  let countedSamples = 0;
  for (let entry = 0; entry < entryCount; entry++) {
    if (counted[data.entryStates[entry]]) {
      leafSamples[data.entryLeaves[entry]] += counts[entry];
      countedSamples += counts[entry];
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
