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

  /** Thread-samples counted, in every state. */
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
   * Returns `% self` and `% total` per function (name and path), or per
   * function and line, counted over the thread-samples in the chosen
   * states, sorted by self, then total.
   */
  rows(options: RowsOptions = {}): SummaryRow[] {
    const states = options.states ?? DEFAULT_STATES;
    const by = options.by ?? 'function';
    const key =
      `${by}:` +
      THREAD_STATES.filter((state) => states.includes(state)).join(',');
    let rows = this.#rowsCache.get(key);
    if (rows === undefined) {
      rows = functionRows(this.#snapshot, states, by);
      this.#rowsCache.set(key, rows);
    }
    return rows.slice();
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
