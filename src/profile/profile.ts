import { InvalidArgumentError } from '../errors';
import { formatCallgrind, type CallgrindOptions } from '../formats/callgrind';
import { formatCollapsed, type StackFormatOptions } from '../formats/collapsed';
import {
  renderFlamegraphSvg,
  type FlamegraphOptions,
} from '../formats/flamegraph';
import { toPprof, type PprofOptions } from '../formats/pprof';
import { toSpeedscope, type SpeedscopeFile } from '../formats/speedscope';
import { formatSummary, type SummaryOptions } from '../formats/summary';
import type {
  Frame,
  FunctionInfo,
  RecordingEnd,
  Sample,
  SamplerStats,
  StackCount,
  TargetInfo,
  ThreadInfo,
  ThreadState,
} from '../types';
import {
  THREAD_STATES,
  type AddedSamples,
  type ProfileData,
  type ProfileSnapshot,
  type RawBatch,
} from './data';
import {
  countSamples,
  entryFilter,
  functionRows,
  samplesByThread,
  type EntryFilter,
  type ProcessRows,
  type RowsOptions,
  type SampleFilter,
  type SummaryRow,
  type ThreadRows,
} from './rows';
import { checkThreadSelectors } from './threads';

/**
 * Sample accounting of a profile: the sampler's counters as of the last
 * batch in the profile, and the time they cover.
 */
export interface ProfileStats extends SamplerStats {
  /** Wall-clock seconds from the start of sampling to the end (or to now
   * while recording). */
  readonly durationSeconds: number;
}

/** The state a profile is built from; created by the recorder. */
export interface ProfileState {
  readonly target: TargetInfo;
  /** The recording's data. The profile takes a snapshot of it when
   * constructed, so batches added later do not change the profile. */
  readonly data: ProfileData;
  /**
   * The number of thread-samples that `data` is expected to contain,
   * checked when given. A profile always covers every sample added so far,
   * because the counts do not keep the order of samples.
   */
  readonly sampleCount?: number;
  readonly stats: SamplerStats;
  readonly durationSeconds: number;
  readonly end?: RecordingEnd;
  /** Samples per second that the recording requested. */
  readonly rateHz?: number;
  /** When sampling started, in milliseconds since the Unix epoch. */
  readonly startTimeMs?: number;
}

const DEFAULT_STATES: readonly ThreadState[] = ['running'];

/**
 * The thread-samples of one recording, or of its first part while it still
 * runs, counted per distinct thread, state and stack, and the views
 * computed from them.
 */
export class Profile {
  readonly target: TargetInfo;
  readonly stats: ProfileStats;
  /** The reason the recording ended; absent while recording. */
  readonly end?: RecordingEnd;
  /** Samples per second that the recording requested; absent when not
   * known, as for a profile that is not from `record()`. */
  readonly rateHz?: number;
  /** When sampling started, in milliseconds since the Unix epoch; absent
   * when not known. */
  readonly startTimeMs?: number;
  readonly #snapshot: ProfileSnapshot;
  readonly #rowsCache = new Map<string, SummaryRow[]>();

  /** Creates a profile; applications get one from `record()`. */
  constructor(state: ProfileState) {
    this.target = state.target;
    this.#snapshot = state.data.snapshot();
    const sampleCount = this.#snapshot.sampleCount;
    if (state.sampleCount !== undefined && state.sampleCount !== sampleCount) {
      throw new Error(
        `sampleCount ${state.sampleCount} differs from the ${sampleCount} samples in data. ` +
          'A profile covers every sample added so far, so pass data.sampleCount or omit sampleCount.',
      );
    }
    this.stats = { ...state.stats, durationSeconds: state.durationSeconds };
    if (state.end !== undefined) {
      this.end = state.end;
    }
    if (state.rateHz !== undefined) {
      this.rateHz = state.rateHz;
    }
    if (state.startTimeMs !== undefined) {
      this.startTimeMs = state.startTimeMs;
    }
  }

  /** Thread-samples in the profile, of every thread and state. `rows()`
   * counts only those its options select (see `countSamples()`). */
  get sampleCount(): number {
    return this.#snapshot.sampleCount;
  }

  /** The functions seen in the recording. */
  get functions(): FunctionInfo[] {
    const { data, functionCount } = this.#snapshot;
    return data.functions
      .slice(0, functionCount)
      .filter((fn) => fn !== undefined);
  }

  /** The Ruby threads seen in the recording. */
  get threads(): ThreadInfo[] {
    const { data, threadCount } = this.#snapshot;
    return data.threads
      .slice(0, threadCount)
      .filter((thread) => thread !== undefined);
  }

  /** Warnings of the sampler, such as the first failed read. */
  get warnings(): readonly string[] {
    const { data, warningCount } = this.#snapshot;
    return data.warnings.slice(0, warningCount);
  }

  /**
   * Iterates over the thread-samples aggregated per distinct thread, state
   * and stack, in the order in which each combination first occurred.
   */
  *stacks(): IterableIterator<StackCount> {
    const { data, entryCount, counts } = this.#snapshot;
    for (let entry = 0; entry < entryCount; entry++) {
      yield {
        thread: data.threads[data.entryThreads[entry]],
        state: THREAD_STATES[data.entryStates[entry]],
        frames: decodeFrames(data, data.entryLeaves[entry]),
        count: counts[entry],
      };
    }
  }

  /**
   * Returns the number of thread-samples that `filter` selects: the 100 %
   * of the percentages of `rows()` with the same options. With no filter,
   * that is the samples of running threads, which is at most
   * `sampleCount`.
   */
  countSamples(filter: SampleFilter = {}): number {
    return countSamples(this.#snapshot, this.#filter(filter));
  }

  /**
   * Returns `% self` and `% total` per function (name and path), or per
   * function and line, counted over the thread-samples that the options
   * select, sorted by self, then total.
   */
  rows(options: RowsOptions = {}): SummaryRow[] {
    const by = options.by ?? 'function';
    const states = options.states ?? DEFAULT_STATES;
    const key = [
      by,
      THREAD_STATES.filter((state) => states.includes(state)).join(','),
      options.thread ?? '',
      options.pid ?? '',
      JSON.stringify(options.threads ?? null),
    ].join(':');
    let rows = this.#rowsCache.get(key);
    if (rows === undefined) {
      rows = functionRows(this.#snapshot, this.#filter(options), by);
      this.#rowsCache.set(key, rows);
    }
    return rows.slice();
  }

  /**
   * Returns the rows of each thread that has samples the options select,
   * the thread with the most samples first. Each thread's percentages are
   * shares of its own samples.
   */
  byThread(options: RowsOptions = {}): ThreadRows[] {
    const filter = this.#filter(options);
    const by = options.by ?? 'function';
    const views: ThreadRows[] = [];
    const { data } = this.#snapshot;
    for (const [id, sampleCount] of samplesByThread(this.#snapshot, filter)) {
      views.push({
        thread: data.threads[id],
        sampleCount,
        rows: functionRows(
          this.#snapshot,
          { states: filter.states, threads: new Set([id]) },
          by,
        ),
      });
    }
    return views.sort(
      (a, b) => b.sampleCount - a.sampleCount || a.thread.id - b.thread.id,
    );
  }

  /**
   * Returns the rows of each process that has samples the options select,
   * the process with the most samples first. Each process's percentages
   * are shares of its own samples. A profile from `record()` covers one
   * process, so it has at most one entry.
   */
  byProcess(options: RowsOptions = {}): ProcessRows[] {
    const filter = this.#filter(options);
    const by = options.by ?? 'function';
    const { data } = this.#snapshot;
    const threadsByPid = new Map<number, ThreadInfo[]>();
    for (const id of samplesByThread(this.#snapshot, filter).keys()) {
      const thread = data.threads[id];
      const threads = threadsByPid.get(thread.pid) ?? [];
      threads.push(thread);
      threadsByPid.set(thread.pid, threads);
    }
    const views: ProcessRows[] = [];
    for (const [pid, threads] of threadsByPid) {
      const processFilter: EntryFilter = {
        states: filter.states,
        threads: new Set(threads.map((thread) => thread.id)),
      };
      views.push({
        pid,
        threads: threads.sort((a, b) => a.id - b.id),
        sampleCount: countSamples(this.#snapshot, processFilter),
        rows: functionRows(this.#snapshot, processFilter, by),
      });
    }
    return views.sort((a, b) => b.sampleCount - a.sampleCount || a.pid - b.pid);
  }

  /** Formats `rows()` as the `% self  % total  name` table. */
  toSummary(options: SummaryOptions & RowsOptions = {}): string {
    return formatSummary(this.rows(options), options);
  }

  /**
   * Formats the stacks as folded lines, `frame;frame;frame count`, for
   * inferno, flamegraph.pl and speedscope. See `formatCollapsed`.
   */
  toCollapsed(options: StackFormatOptions = {}): string {
    return formatCollapsed(this.stacks(), options);
  }

  /**
   * Draws the folded stacks as an SVG flame graph with inferno: one box
   * per frame as in `toCollapsed()`, searchable, with colors derived from
   * the frame names so that equal profiles give equal SVGs.
   */
  toFlamegraphSvg(options: FlamegraphOptions = {}): string {
    return renderFlamegraphSvg(this, options);
  }

  /**
   * Converts the profile to speedscope's JSON file format: one sampled
   * profile per thread, weighted in nanoseconds of sampling period (or in
   * samples when the rate is not known). See `toSpeedscope` in
   * `formats/speedscope`.
   */
  toSpeedscope(options: StackFormatOptions = {}): SpeedscopeFile {
    return toSpeedscope(this, options);
  }

  /**
   * Encodes the profile as gzipped pprof (profile.proto), shaped like a Go
   * CPU profile, for `go tool pprof`. See `encodePprof` in
   * `formats/pprof`.
   */
  toPprof(options: PprofOptions = {}): Buffer {
    return toPprof(this, options);
  }

  /**
   * Formats the profile for KCachegrind and callgrind_annotate: self
   * samples per line and the samples under each call site. See
   * `formatCallgrind` in `formats/callgrind`.
   */
  toCallgrind(options: CallgrindOptions = {}): string {
    return formatCallgrind(this, options);
  }

  /** Checks a filter that may come from untyped JavaScript and resolves
   * it against the snapshot. */
  #filter(filter: SampleFilter): EntryFilter {
    for (const name of ['thread', 'pid'] as const) {
      const value = filter[name];
      if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) {
        throw new InvalidArgumentError(
          `${name} must be an integer from 0, got ${String(value)}`,
        );
      }
    }
    if (filter.threads !== undefined) {
      checkThreadSelectors(filter.threads);
    }
    return entryFilter(this.#snapshot, filter, DEFAULT_STATES);
  }
}

/** Decodes the samples of `batch` into plain objects, given what
 * `data.add(batch)` returned. */
export function decodeBatch(
  data: ProfileData,
  batch: RawBatch,
  added: AddedSamples,
): Sample[] {
  const samples: Sample[] = [];
  for (let i = 0; i < added.leaves.length; i++) {
    samples.push({
      timeNs: batch.timesNs[i],
      thread: data.threads[batch.threadIds[i]],
      state: THREAD_STATES[added.states[i]],
      frames: decodeFrames(data, added.leaves[i]),
    });
  }
  return samples;
}

/** Returns the frames of a stack node as plain objects, outermost first. */
function decodeFrames(data: ProfileData, leaf: number): Frame[] {
  return data.stacks.frames(leaf).map((frame) => ({
    function: data.functions[frame.function],
    line: frame.line,
  }));
}
