import type {
  FunctionInfo,
  FunctionKind,
  SamplerStats,
  ThreadInfo,
  ThreadState,
} from '../types';
import { StackTree } from './stacks';

/** The thread states in the order of their numeric codes. */
export const THREAD_STATES: readonly ThreadState[] = [
  'running',
  'waiting_gvl',
  'blocked',
];

/**
 * A batch as the addon delivers it: new table entries, then samples
 * flattened into columns. Sample `i` has the frames
 * `frameStarts[i] .. frameStarts[i + 1]`, outermost first.
 */
export interface RawBatch {
  functions: ReadonlyArray<{
    id: number;
    name: string;
    path: string;
    kind: string;
  }>;
  threads: ReadonlyArray<{
    id: number;
    pid: number;
    tid: number;
    name?: string | null;
  }>;
  timesNs: ArrayLike<number>;
  threadIds: ArrayLike<number>;
  /** Indexes into the state names that came with the addon. */
  states: ArrayLike<number>;
  frameStarts: ArrayLike<number>;
  frameFunctions: ArrayLike<number>;
  frameLines: ArrayLike<number>;
  stats: SamplerStats;
  warnings: readonly string[];
}

/** The samples of one batch as interned ids, in batch order. */
export interface AddedSamples {
  /** The leaf node in `stacks` of each sample. */
  readonly leaves: Uint32Array;
  /** Indexes into `THREAD_STATES`. */
  readonly states: Uint8Array;
}

/**
 * An immutable view of `ProfileData` at one moment. It reads only the first
 * `entryCount` entries, `nodeCount` stack nodes, `functionCount` function
 * slots, `threadCount` thread slots and `warningCount` warnings. None of
 * these change once added, and the view carries its own copy of the counts.
 */
export interface ProfileSnapshot {
  readonly data: ProfileData;
  readonly sampleCount: number;
  readonly entryCount: number;
  /** Thread-samples per aggregate entry, `entryCount` long. */
  readonly counts: Float64Array;
  readonly nodeCount: number;
  readonly functionCount: number;
  readonly threadCount: number;
  readonly warningCount: number;
}

const INITIAL_ENTRY_CAPACITY = 64;

/**
 * Everything a recording accumulates, aggregated so that memory grows with
 * the number of distinct (stack, thread, state) entries rather than with
 * the number of samples. Samples are counted per entry, and their times
 * are dropped.
 */
export class ProfileData {
  /**
   * Indexed by function id. Only the first of several ids with the same
   * name and path is set, because summary rows are keyed by name and path.
   */
  readonly functions: FunctionInfo[] = [];
  /** Maps every function id the addon sent to the id used in `functions`. */
  readonly functionMap: number[] = [];
  private readonly functionIdByKey = new Map<string, number>();
  /** Indexed by thread id. */
  readonly threads: ThreadInfo[] = [];
  readonly stacks = new StackTree();

  /** The leaf node in `stacks` of each aggregate entry. */
  readonly entryLeaves: number[] = [];
  /** The thread id of each aggregate entry. */
  readonly entryThreads: number[] = [];
  /** The state of each aggregate entry, as an index into `THREAD_STATES`. */
  readonly entryStates: number[] = [];
  /** Thread-samples per entry. The array grows by doubling, so only the
   * first `entryCount` are used. */
  private counts = new Float64Array(INITIAL_ENTRY_CAPACITY);
  /** Entry index by `thread * THREAD_STATES.length + state`, then leaf. */
  private readonly entryIndex = new Map<number, Map<number, number>>();

  stats: SamplerStats = { taken: 0, late: 0, failed: 0, threadSamples: 0 };
  readonly warnings: string[] = [];
  private samplesAdded = 0;

  /**
   * @param stateCodes maps the addon's state indexes to `THREAD_STATES`
   *   indexes, so a reordering in the core cannot mislabel states.
   */
  constructor(private readonly stateCodes: readonly number[] = [0, 1, 2]) {}

  /** Thread-samples added, in every state. */
  get sampleCount(): number {
    return this.samplesAdded;
  }

  /** Distinct (stack, thread, state) combinations seen so far. */
  get entryCount(): number {
    return this.entryLeaves.length;
  }

  /**
   * Adds a batch: interns its stacks and counts each sample in its entry.
   * Returns the leaf node and state of each sample, so that a caller can
   * decode the batch without the data keeping it.
   */
  add(batch: RawBatch): AddedSamples {
    this.addFunctions(batch.functions);
    this.addThreads(batch.threads);

    const count = batch.timesNs.length;
    const leaves = new Uint32Array(count);
    const states = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const leaf = this.stacks.intern(
        batch.frameFunctions,
        batch.frameLines,
        batch.frameStarts[i],
        batch.frameStarts[i + 1],
        this.functionMap,
      );
      const state = this.stateCodes[batch.states[i]];
      if (state === undefined) {
        throw new Error(
          `invalid thread state code ${batch.states[i]} from the addon; rebuild it with npm run build`,
        );
      }
      // `entryOf` may replace `counts` with a larger array, so it runs
      // before `this.counts` is read.
      const entry = this.entryOf(leaf, batch.threadIds[i], state);
      this.counts[entry]++;
      leaves[i] = leaf;
      states[i] = state;
    }
    this.samplesAdded += count;

    this.stats = { ...batch.stats };
    this.warnings.push(...batch.warnings);
    return { leaves, states };
  }

  /**
   * Returns a view of the data as it is now that later batches do not
   * change. Everything but the counts is append-only, and the view reads
   * only what existed when it was taken, so copying the counts (8 bytes
   * per entry) is enough.
   */
  snapshot(): ProfileSnapshot {
    const entryCount = this.entryCount;
    return {
      data: this,
      sampleCount: this.samplesAdded,
      entryCount,
      counts: this.counts.slice(0, entryCount),
      nodeCount: this.stacks.size,
      functionCount: this.functions.length,
      threadCount: this.threads.length,
      warningCount: this.warnings.length,
    };
  }

  private addFunctions(functions: RawBatch['functions']): void {
    for (const fn of functions) {
      const key = `${fn.name}\0${fn.path}`;
      const known = this.functionIdByKey.get(key);
      if (known !== undefined) {
        this.functionMap[fn.id] = known;
        continue;
      }
      this.functionIdByKey.set(key, fn.id);
      this.functionMap[fn.id] = fn.id;
      this.functions[fn.id] = {
        id: fn.id,
        name: fn.name,
        path: fn.path,
        kind: fn.kind as FunctionKind,
      };
    }
  }

  private addThreads(threads: RawBatch['threads']): void {
    for (const thread of threads) {
      const info: { id: number; pid: number; tid: number; name?: string } = {
        id: thread.id,
        pid: thread.pid,
        tid: thread.tid,
      };
      if (thread.name !== undefined && thread.name !== null) {
        info.name = thread.name;
      }
      this.threads[thread.id] = info;
    }
  }

  /** Returns the index of the entry of a combination, adding it if new. */
  private entryOf(leaf: number, thread: number, state: number): number {
    const threadState = thread * THREAD_STATES.length + state;
    let byLeaf = this.entryIndex.get(threadState);
    if (byLeaf === undefined) {
      byLeaf = new Map();
      this.entryIndex.set(threadState, byLeaf);
    }
    let entry = byLeaf.get(leaf);
    if (entry === undefined) {
      entry = this.entryLeaves.length;
      byLeaf.set(leaf, entry);
      this.entryLeaves.push(leaf);
      this.entryThreads.push(thread);
      this.entryStates.push(state);
      if (entry === this.counts.length) {
        const grown = new Float64Array(2 * this.counts.length);
        grown.set(this.counts);
        this.counts = grown;
      }
    }
    return entry;
  }
}

/**
 * Builds the table that maps the addon's state indexes to `THREAD_STATES`
 * indexes from the addon's list of state names.
 */
export function stateCodesFromNames(names: readonly string[]): number[] {
  return names.map((name) => {
    const code = THREAD_STATES.indexOf(name as ThreadState);
    if (code < 0) {
      throw new Error(
        `unknown thread state "${name}" from the addon; rebuild it with npm run build`,
      );
    }
    return code;
  });
}
