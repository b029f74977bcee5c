import { formatSummary, type SummaryOptions } from '../formats/summary';
import type {
  Frame,
  FunctionInfo,
  RecordingEnd,
  Sample,
  SamplerStats,
  TargetInfo,
  ThreadInfo,
  ThreadState,
} from '../types';
import { THREAD_STATES, type ProfileData } from './data';
import { functionRows, type RowsOptions, type SummaryRow } from './rows';

/** Sample accounting of a profile. */
export interface ProfileStats extends SamplerStats {
  /** Wall-clock seconds from the start of sampling to the end (or to now
   * while recording). */
  readonly durationSeconds: number;
}

/** The state a profile is built from; created by the recorder. */
export interface ProfileState {
  readonly target: TargetInfo;
  readonly data: ProfileData;
  /** Samples of `data` that belong to this profile. */
  readonly sampleCount: number;
  readonly stats: SamplerStats;
  readonly durationSeconds: number;
  readonly end?: RecordingEnd;
}

const DEFAULT_STATES: readonly ThreadState[] = ['running'];

/**
 * The samples of one recording, or of its first part while it still runs,
 * and the views computed from them.
 */
export class Profile {
  readonly target: TargetInfo;
  readonly stats: ProfileStats;
  /** The reason the recording ended; absent while recording. */
  readonly end?: RecordingEnd;
  readonly #data: ProfileData;
  readonly #sampleCount: number;
  readonly #rowsCache = new Map<string, SummaryRow[]>();

  /** Creates a profile; applications get one from `record()`. */
  constructor(state: ProfileState) {
    this.target = state.target;
    this.#data = state.data;
    this.#sampleCount = state.sampleCount;
    this.stats = { ...state.stats, durationSeconds: state.durationSeconds };
    if (state.end !== undefined) {
      this.end = state.end;
    }
  }

  /** Thread-samples kept, in every state. */
  get sampleCount(): number {
    return this.#sampleCount;
  }

  /** The functions seen in the recording. */
  get functions(): FunctionInfo[] {
    return this.#data.functions.filter((fn) => fn !== undefined);
  }

  /** The Ruby threads seen in the recording. */
  get threads(): ThreadInfo[] {
    return this.#data.threads.filter((thread) => thread !== undefined);
  }

  /** Warnings of the sampler, such as the first failed read. */
  get warnings(): readonly string[] {
    return this.#data.warnings;
  }

  /** Iterates over every thread-sample, in the order taken. */
  *samples(): IterableIterator<Sample> {
    const data = this.#data;
    for (let i = 0; i < this.#sampleCount; i++) {
      yield decodeSample(data, i);
    }
  }

  /**
   * Returns `% self` and `% total` per function (name and path), counted
   * over the thread-samples in the chosen states, sorted by self, then
   * total.
   */
  rows(options: RowsOptions = {}): SummaryRow[] {
    const states = options.states ?? DEFAULT_STATES;
    const key = THREAD_STATES.filter((state) => states.includes(state)).join(
      ',',
    );
    let rows = this.#rowsCache.get(key);
    if (rows === undefined) {
      rows = functionRows(this.#data, this.#sampleCount, states);
      this.#rowsCache.set(key, rows);
    }
    return rows.slice();
  }

  /** Formats `rows()` as the `% self  % total  name` table. */
  toSummary(options: SummaryOptions & RowsOptions = {}): string {
    return formatSummary(this.rows(options), options);
  }
}

/** Decodes thread-sample `index` of `data` into plain objects. */
export function decodeSample(data: ProfileData, index: number): Sample {
  const frames: Frame[] = data.stacks
    .frames(data.sampleStacks[index])
    .map((frame) => ({
      function: data.functions[frame.function],
      line: frame.line,
    }));
  return {
    timeNs: data.sampleTimesNs[index],
    thread: data.threads[data.sampleThreads[index]],
    state: THREAD_STATES[data.sampleStates[index]],
    frames,
  };
}
