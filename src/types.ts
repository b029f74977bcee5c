// Data types shared by the recorder, the profile and the formats.

/** The scheduling state of a thread when it was sampled. */
export type ThreadState = 'running' | 'waiting_gvl' | 'blocked';

/** The kind of code a function is. */
export type FunctionKind = 'ruby' | 'cfunc' | 'synthetic';

/** A function: what summary rows are keyed by. */
export interface FunctionInfo {
  /** Id within one recording. */
  readonly id: number;
  /** Such as `Foo#bar`, `Foo.bar` or `block in Foo#bar`. */
  readonly name: string;
  /** The source path as Ruby reports it; `unknown` for C functions. */
  readonly path: string;
  readonly kind: FunctionKind;
}

/** A Ruby thread of the target. */
export interface ThreadInfo {
  /** Id within one recording. */
  readonly id: number;
  readonly pid: number;
  /** Kernel thread id; 0 when the Ruby build does not record it. */
  readonly tid: number;
  /** `Thread#name`, if set. */
  readonly name?: string;
}

/** One frame of a stack: a function and the line executing in it. */
export interface Frame {
  readonly function: FunctionInfo;
  /** For callers, the line of the call; 0 when unknown. */
  readonly line: number;
}

/** One thread's stack at one tick. */
export interface Sample {
  /** Nanoseconds since the sampler started, on a monotonic clock, so
   * later samples never have smaller times. */
  readonly timeNs: number;
  readonly thread: ThreadInfo;
  readonly state: ThreadState;
  /** Outermost frame first, leaf last. */
  readonly frames: readonly Frame[];
}

/**
 * The thread-samples of one thread in one state with the same stack (the
 * same functions and lines), aggregated. A profile keeps these counts and
 * not the individual samples, so it has no sample times.
 */
export interface StackCount {
  readonly thread: ThreadInfo;
  readonly state: ThreadState;
  /** Outermost frame first, leaf last. */
  readonly frames: readonly Frame[];
  /** Thread-samples with this thread, state and stack, at least 1. */
  readonly count: number;
}

/** Sampler counters, totals since the recording started. Each is a
 * count: ticks (one read of every thread) or thread-samples (one stack of
 * one thread at one tick). */
export interface SamplerStats {
  /** Ticks at which the sampler read the target. */
  readonly taken: number;
  /** Ticks that ran more than one sampling period (1 / rateHz seconds)
   * after their due time, plus ticks skipped because an earlier tick ran
   * too long. Skipped ticks are not in `taken`. */
  readonly late: number;
  /** Ticks at which at least one thread's stack could not be read. */
  readonly failed: number;
  /** Thread-samples recorded: per tick, one for each thread whose stack
   * was read and not empty. Without `idle`, only threads on a CPU are
   * read. */
  readonly threadSamples: number;
  /** How long the target's threads were stopped, with `pause`. Absent
   * until a tick paused the target. */
  readonly pause?: PauseStats;
}

/** The pauses of a recording with `pause`, totals since the start. A
 * pause lasts from its first attach to the request that restarts its
 * last thread. The mean pause per tick is `totalNs / count`. */
export interface PauseStats {
  /** Pauses of a target process: one per process and tick. */
  readonly count: number;
  /** Nanoseconds the threads spent stopped, summed over the pauses. */
  readonly totalNs: number;
  /** The maximum length of one pause, in nanoseconds. */
  readonly maxNs: number;
}

/** Facts about the target that rbprof read when it attached. */
export interface TargetInfo {
  readonly pid: number;
  /** The version read from the target, such as `3.1.2`. */
  readonly rubyVersion: string;
  /** The first release of the struct layout in use; differs from the
   * detected version's range when `forceVersion` is set. */
  readonly layoutVersion: string;
  /** False when the layout was never confirmed on a live process. */
  readonly layoutVerified: boolean;
  /** The file that contains the Ruby VM: the executable or libruby. */
  readonly rubyBinary: string;
}

/** The reason a recording ended. */
export type EndReason =
  /** `stop()` was called. */
  | 'stopped'
  /** `durationSeconds` passed. */
  | 'duration'
  /** The `signal` was aborted. */
  | 'aborted'
  /** The target process exited. */
  | 'process_exited'
  /** Sampling failed for good; `message` gives the cause. */
  | 'failed';

export interface RecordingEnd {
  readonly reason: EndReason;
  readonly message?: string;
}

/** The samples that arrived together from the sampler. */
export interface SampleBatch {
  readonly samples: readonly Sample[];
  /** Totals since the start, as of this batch. */
  readonly stats: SamplerStats;
  /** Warnings since the previous batch, such as the first failed read. */
  readonly warnings: readonly string[];
  /** Processes whose sampling began or ended since the previous batch:
   * the first target at the start, and with `subprocesses` every Ruby
   * descendant as it is found and as it exits. */
  readonly processes: readonly ProcessEvent[];
}

/** A process that a recording began or stopped sampling. */
export interface ProcessEvent {
  /** `attached`: sampling began. `exited`: the process exited, or ran
   * exec and left Ruby (it is attached again if the new program is
   * Ruby). */
  readonly kind: 'attached' | 'exited';
  readonly pid: number;
  /** The sampled process it descends from: its parent, or the nearest
   * sampled ancestor when processes that are not Ruby sit between them
   * (a shell). 0 for the process the recording started with. */
  readonly parentPid: number;
  /** Nanoseconds since the recording started, on the clock of
   * `Sample.timeNs`. */
  readonly timeNs: number;
  /** The Ruby version, for `attached`. */
  readonly rubyVersion?: string;
}

/** A process that a recording samples or sampled. */
export interface ProcessInfo {
  readonly pid: number;
  /** As in `ProcessEvent.parentPid`. */
  readonly parentPid: number;
  readonly rubyVersion: string;
  /** When sampling began, in nanoseconds since the recording started. */
  readonly attachedNs: number;
  /** When the process exited, if it did during the recording. */
  readonly exitedNs?: number;
}
