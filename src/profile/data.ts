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

/**
 * Everything a recording accumulates. Append-only, so a profile taken
 * while recording can keep reading it: it only looks at the first
 * `sampleCount` samples.
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

  /** One entry per thread-sample, in arrival order. */
  readonly sampleTimesNs: number[] = [];
  readonly sampleThreads: number[] = [];
  /** Indexes into `THREAD_STATES`. */
  readonly sampleStates: number[] = [];
  /** Leaf nodes in `stacks`. */
  readonly sampleStacks: number[] = [];

  stats: SamplerStats = { taken: 0, late: 0, failed: 0, threadSamples: 0 };
  readonly warnings: string[] = [];

  /**
   * @param stateCodes maps the addon's state indexes to `THREAD_STATES`
   *   indexes, so a reordering in the core cannot mislabel states.
   */
  constructor(private readonly stateCodes: readonly number[] = [0, 1, 2]) {}

  get sampleCount(): number {
    return this.sampleStacks.length;
  }

  /** Adds a batch. Returns the index of its first sample. */
  add(batch: RawBatch): number {
    for (const fn of batch.functions) {
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
    for (const thread of batch.threads) {
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

    const first = this.sampleCount;
    const count = batch.timesNs.length;
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
      this.sampleTimesNs.push(batch.timesNs[i]);
      this.sampleThreads.push(batch.threadIds[i]);
      this.sampleStates.push(state);
      this.sampleStacks.push(leaf);
    }

    this.stats = { ...batch.stats };
    this.warnings.push(...batch.warnings);
    return first;
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
