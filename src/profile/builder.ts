import { InvalidArgumentError } from '../errors';
import type {
  FunctionInfo,
  RecordingEnd,
  Sample,
  SamplerStats,
  TargetInfo,
  ThreadInfo,
} from '../types';
import { ProfileData, THREAD_STATES, type RawBatch } from './data';
import { Profile } from './profile';

/** Options of `new ProfileBuilder()`. */
export interface ProfileBuilderOptions {
  /** The process the samples are of. For samples of several recordings,
   * the target of one of them. */
  readonly target: TargetInfo;
  /** Samples per second that the recordings requested. */
  readonly rateHz?: number;
  /** When the first sample was taken, in milliseconds since the Unix
   * epoch. */
  readonly startTimeMs?: number;
}

/** Options of `ProfileBuilder.profile()`. */
export interface BuiltProfileOptions {
  /** Wall-clock seconds that the samples cover. */
  readonly durationSeconds: number;
  /** Sampler counters for the same time. By default every counter is 0
   * except `threadSamples`, which is `sampleCount`. */
  readonly stats?: SamplerStats;
  readonly end?: RecordingEnd;
}

/**
 * Counts samples, such as a part of the batches of `Recording.samples()`,
 * into a profile. Memory grows with the distinct stacks added, not with
 * the number of samples, as in a recording.
 *
 * Functions are matched by name and path, so samples of several
 * recordings merge. Threads are matched by their `ThreadInfo` object,
 * which a recording passes for every sample of the same thread, so
 * threads of different recordings stay apart.
 */
export class ProfileBuilder {
  readonly #options: ProfileBuilderOptions;
  readonly #data = new ProfileData();
  readonly #functionIdByKey = new Map<string, number>();
  readonly #functionIdByObject = new WeakMap<FunctionInfo, number>();
  readonly #threadIds = new Map<ThreadInfo, number>();

  constructor(options: ProfileBuilderOptions) {
    this.#options = options;
  }

  /** Thread-samples added so far, of every thread and state. */
  get sampleCount(): number {
    return this.#data.sampleCount;
  }

  /** Adds samples. Throws an `InvalidArgumentError` for a sample whose
   * state is not a `ThreadState`. */
  add(samples: readonly Sample[]): void {
    if (samples.length === 0) {
      return;
    }
    const batch = {
      functions: [] as Array<RawBatch['functions'][number]>,
      threads: [] as Array<RawBatch['threads'][number]>,
      timesNs: [] as number[],
      threadIds: [] as number[],
      states: [] as number[],
      frameStarts: [0],
      frameFunctions: [] as number[],
      frameLines: [] as number[],
    };
    for (const sample of samples) {
      const state = THREAD_STATES.indexOf(sample.state);
      if (state < 0) {
        throw new InvalidArgumentError(
          `invalid thread state ${JSON.stringify(sample.state)} in a sample; ` +
            `expected one of ${THREAD_STATES.join(', ')}`,
        );
      }
      batch.timesNs.push(sample.timeNs);
      batch.threadIds.push(this.#threadId(sample.thread, batch.threads));
      batch.states.push(state);
      for (const frame of sample.frames) {
        batch.frameFunctions.push(
          this.#functionId(frame.function, batch.functions),
        );
        batch.frameLines.push(frame.line);
      }
      batch.frameStarts.push(batch.frameFunctions.length);
    }
    this.#data.add({
      ...batch,
      stats: this.#data.stats,
      warnings: [],
    });
  }

  /** Returns the profile of the samples added so far. Samples added
   * later do not change it. */
  profile(options: BuiltProfileOptions): Profile {
    const { target, rateHz, startTimeMs } = this.#options;
    const stats = options.stats ?? {
      taken: 0,
      late: 0,
      failed: 0,
      threadSamples: this.#data.sampleCount,
    };
    return new Profile({
      target,
      data: this.#data,
      stats,
      durationSeconds: options.durationSeconds,
      ...(rateHz === undefined ? {} : { rateHz }),
      ...(startTimeMs === undefined ? {} : { startTimeMs }),
      ...(options.end === undefined ? {} : { end: options.end }),
    });
  }

  /** Returns the builder's id of a function, defining it in `defined`
   * when it is new. */
  #functionId(
    fn: FunctionInfo,
    defined: Array<RawBatch['functions'][number]>,
  ): number {
    let id = this.#functionIdByObject.get(fn);
    if (id !== undefined) {
      return id;
    }
    const key = `${fn.name}\0${fn.path}`;
    id = this.#functionIdByKey.get(key);
    if (id === undefined) {
      id = this.#functionIdByKey.size;
      this.#functionIdByKey.set(key, id);
      defined.push({ id, name: fn.name, path: fn.path, kind: fn.kind });
    }
    this.#functionIdByObject.set(fn, id);
    return id;
  }

  #threadId(
    thread: ThreadInfo,
    defined: Array<RawBatch['threads'][number]>,
  ): number {
    let id = this.#threadIds.get(thread);
    if (id === undefined) {
      id = this.#threadIds.size;
      this.#threadIds.set(thread, id);
      defined.push({
        id,
        pid: thread.pid,
        tid: thread.tid,
        name: thread.name ?? null,
      });
    }
    return id;
  }
}
