import type { FunctionInfo, ThreadState } from '../types';
import { THREAD_STATES, type ProfileSnapshot } from './data';

/** One line of a summary. */
export interface SummaryRow {
  readonly function: FunctionInfo;
  /** Thread-samples with this function at the leaf. */
  readonly selfSamples: number;
  /** Thread-samples with this function anywhere on the stack, counted
   * once per thread-sample however often it recurses. */
  readonly totalSamples: number;
  readonly selfPercent: number;
  readonly totalPercent: number;
}

export interface RowsOptions {
  /** The key of a row. Only `function` (name and path) so far. */
  readonly by?: 'function';
  /** Thread states whose samples count; only `running` by default. */
  readonly states?: readonly ThreadState[];
}

/**
 * Counts `% self` and `% total` per function over the thread-samples of a
 * snapshot whose state is in `states`. Rows are sorted by self, then total,
 * then name and path, and rows with no samples are left out.
 */
export function functionRows(
  snapshot: ProfileSnapshot,
  states: readonly ThreadState[],
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

  const selfByFunction = new Map<number, number>();
  const totalByFunction = new Map<number, number>();
  for (let node = 1; node < nodeCount; node++) {
    if (inclusive[node] === 0) {
      continue;
    }
    const fn = stacks.functions[node];
    if (leafSamples[node] > 0) {
      selfByFunction.set(fn, (selfByFunction.get(fn) ?? 0) + leafSamples[node]);
    }
    // A function's outermost node covers every sample that contains it, so
    // deeper (recursive) nodes of the same function are not added again.
    if (stacks.outermost[node]) {
      totalByFunction.set(fn, (totalByFunction.get(fn) ?? 0) + inclusive[node]);
    }
  }

  const rows: SummaryRow[] = [];
  for (const [fn, totalSamples] of totalByFunction) {
    const selfSamples = selfByFunction.get(fn) ?? 0;
    rows.push({
      function: data.functions[fn] ?? unknownFunction(fn),
      selfSamples,
      totalSamples,
      selfPercent: (100 * selfSamples) / countedSamples,
      totalPercent: (100 * totalSamples) / countedSamples,
    });
  }
  return rows.sort(compareRows);
}

function compareRows(a: SummaryRow, b: SummaryRow): number {
  return (
    b.selfSamples - a.selfSamples ||
    b.totalSamples - a.totalSamples ||
    compareText(a.function.name, b.function.name) ||
    compareText(a.function.path, b.function.path)
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
