// Public types of the rbprof library. Written by hand; a test compiles a
// check that the implementation in src/ matches them.

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
  /** The source path as Ruby reports it. */
  readonly path: string;
  readonly kind: FunctionKind;
}

/**
 * A selection of threads by `Thread#name` or kernel thread id: a string
 * matches either one (`'worker'` or `'1234'`), a number only the id.
 */
export type ThreadSelector = string | number;

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
  /** The first release of the struct layouts in use. */
  readonly layoutVersion: string;
  /** False when the layouts were never confirmed on a live process. */
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
  /** The cause of the failure, for `failed`. */
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

/** Options of `record()`. */
export interface RecordOptions {
  /** The Ruby process to profile. Give either `pid` or `command`. */
  readonly pid?: number;
  /**
   * A command to start and profile from its first Ruby frame, such as
   * `['ruby', 'app.rb']`: the program, looked up in `PATH`, then its
   * arguments. The child shares this process's stdin, stdout, stderr and
   * process group, receives SIGTERM if this process dies, and under sudo
   * runs as the invoking user. Ending the recording does not end it.
   */
  readonly command?: readonly string[];
  /** Samples per second; 99 when absent. */
  readonly rateHz?: number;
  /** Stop after this many seconds. */
  readonly durationSeconds?: number;
  /** Stop when this signal is aborted. */
  readonly signal?: AbortSignal;
  /** Also record threads that are not running on a CPU. */
  readonly idle?: boolean;
  /** Read the target with the struct layouts of this Ruby version, such
   * as `3.1.2`, instead of the detected one. */
  readonly forceVersion?: string;
  /** Sample only threads whose `Thread#name` or kernel thread id is one
   * of these values. Other threads are skipped before their stack is
   * read, so they cost the target nothing. */
  readonly threads?: readonly ThreadSelector[];
  /**
   * Also sample the Ruby processes that descend from the target, forked
   * (puma or unicorn workers) or spawned, through any depth and through
   * processes that are not Ruby, such as a shell. Workers that start
   * during the recording are sampled within about 50 milliseconds. Each
   * sample's thread carries its `pid`; `Profile.byProcess()` splits the
   * merged profile. The recording then ends when every sampled process
   * has exited.
   */
  readonly subprocesses?: boolean;
  /**
   * Stop every thread of the target while its stacks are read, so that no
   * stack tears. Each tick then stops the target for a moment, which
   * `stats.pause` measures, and attaches to each thread with ptrace(2).
   * That needs the right to trace the target (the same user, or root
   * with the SYS_PTRACE capability), a container that allows ptrace, and
   * no other tracer such as gdb. A target that cannot be paused rejects
   * with `PermissionDeniedError`. Off when absent.
   */
  readonly pause?: boolean;
}

/** A recording in progress. */
export interface Recording {
  readonly target: TargetInfo;
  /** Samples per second that the recording requested. */
  readonly rateHz: number;
  /** True when threads that are not running on a CPU are sampled too. */
  readonly idle: boolean;
  /** True when descendants of the target are sampled too. */
  readonly subprocesses: boolean;
  /** True when the target's threads are stopped while they are read. */
  readonly pause: boolean;
  /** When sampling started, in milliseconds since the Unix epoch. */
  readonly startTimeMs: number;
  /** The child that `command` started; absent for a recording of `pid`. */
  readonly launched?: LaunchedProcess;
  /**
   * Resolves with the final profile once the recording ends for any
   * reason: `stop()`, `durationSeconds`, the `signal` or the target's exit
   * (see `profile.end`). Rejects only when rbprof fails, with a
   * `SamplingFailedError` that contains the profile so far.
   */
  readonly done: Promise<Profile>;
  /** Stops sampling; resolves like `done`. */
  stop(): Promise<Profile>;
  /** Returns the profile of the samples received so far; samples that
   * arrive later do not change it. */
  profile(): Profile;
  /** Iterates over the batches of samples that arrive after the call,
   * until the recording ends. Unlike a profile, these samples carry their
   * times. */
  samples(): AsyncIterableIterator<SampleBatch>;
  /** Returns the processes sampled so far, in the order they were found,
   * the target first; exited ones keep their entry. */
  processes(): ProcessInfo[];
}

/**
 * Attaches to a Ruby process, or starts `command`, and starts sampling it.
 * Resolves once the sampler runs; rejects with an `RbprofError` subclass
 * when the target cannot be profiled. When a launched child cannot be
 * profiled, the error's `launched` is that child, which keeps running.
 */
export declare function record(options: RecordOptions): Promise<Recording>;

/** The end of a launched child, as Node's `ChildProcess` reports it:
 * `code` after a normal exit, otherwise the signal that killed it. */
export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A command that `record({ command })` started. */
export interface LaunchedProcess {
  readonly pid: number;
  /** Resolves once the child has ended, also after the recording. */
  readonly exit: Promise<ChildExit>;
  /**
   * Sends a signal that this process received on to the child. SIGINT and
   * SIGQUIT are skipped while this process runs in the foreground of a
   * terminal, because the terminal sent them to the child too, which
   * shares the process group. Returns whether the signal was sent.
   */
  forwardSignal(signal: NodeJS.Signals): boolean;
}

/** Returns the status a shell reports for a child: its exit code, or 128
 * plus the number of the signal that killed it. */
export declare function shellStatus(exit: ChildExit): number;

/**
 * Sample accounting of a profile: the sampler's counters as of the last
 * batch in the profile, and the time they cover.
 */
export interface ProfileStats extends SamplerStats {
  /** Wall-clock seconds from the start of sampling to the end, or to now
   * while recording. */
  readonly durationSeconds: number;
}

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

export interface SummaryOptions {
  /** Rows to print, the highest `% self` first; all when absent. */
  readonly top?: number;
  /** Characters per line; longer lines are cut. No limit when absent. */
  readonly width?: number;
}

/** Options of the formats built from whole stacks. */
export interface StackFormatOptions {
  /** Thread states whose samples count; only `running` by default. */
  readonly states?: readonly ThreadState[];
  /** Count only the samples of threads whose `Thread#name` or kernel
   * thread id is one of these values. */
  readonly threads?: readonly ThreadSelector[];
  /** One frame per function and line when true. By default a frame is a
   * function, so one box covers all lines of a function, as a summary row
   * does. */
  readonly lines?: boolean;
}

/** Options of `Profile.toFlamegraphSvg()`. */
export interface FlamegraphOptions extends StackFormatOptions {
  /** The heading of the graph; `Process PID (Ruby VERSION)` when absent. */
  readonly title?: string;
}

/** Options of `Profile.toPprof()`. */
export interface PprofOptions {
  /** Thread states whose samples count; only `running` by default. With
   * `running` alone the time is `cpu`, otherwise `wall`. */
  readonly states?: readonly ThreadState[];
  /** Count only the samples of threads whose `Thread#name` or kernel
   * thread id is one of these values. */
  readonly threads?: readonly ThreadSelector[];
}

/** Options of `Profile.toCallgrind()`. */
export type CallgrindOptions = Pick<StackFormatOptions, 'states' | 'threads'>;

/** A frame that speedscope samples refer to by its index in
 * `shared.frames`. */
export interface SpeedscopeFrame {
  readonly name: string;
  readonly file?: string;
  /** Set when the frames are per line (`lines: true`). */
  readonly line?: number;
}

/** The samples of one thread, in speedscope's `sampled` profile type. */
export interface SpeedscopeSampledProfile {
  readonly type: 'sampled';
  readonly name: string;
  /** `nanoseconds` when the sampling rate is known; otherwise `none`, and
   * each weight is a count of samples. */
  readonly unit: 'nanoseconds' | 'none';
  /** The start of the profile in `unit`: always 0. */
  readonly startValue: number;
  /** The sum of `weights`, in `unit`. */
  readonly endValue: number;
  /** Stacks as indexes into `shared.frames`, outermost first. */
  readonly samples: number[][];
  /** The weight of each stack in `samples`, in `unit`. */
  readonly weights: number[];
}

/** A file in speedscope's format; `JSON.stringify()` it to save it. */
export interface SpeedscopeFile {
  readonly $schema: 'https://www.speedscope.app/file-format-schema.json';
  readonly name: string;
  readonly exporter: string;
  /** The profile that speedscope shows first: the one with most samples.
   * Absent when no thread has samples. */
  readonly activeProfileIndex?: number;
  readonly shared: { readonly frames: SpeedscopeFrame[] };
  readonly profiles: SpeedscopeSampledProfile[];
}

/**
 * The thread-samples of one recording, or of its first part while it still
 * runs, counted per distinct thread, state and stack, and the views
 * computed from them. Applications get profiles from `record()`.
 */
export declare class Profile {
  /** Profiles come from `record()`; the constructor is not public. */
  private constructor(state: never);
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
  /** Thread-samples in the profile, of every thread and state. `rows()`
   * counts only those its options select (see `countSamples()`). */
  get sampleCount(): number;
  /** The functions seen in the recording. */
  get functions(): FunctionInfo[];
  /** The Ruby threads seen in the recording. */
  get threads(): ThreadInfo[];
  /** Warnings of the sampler, such as the first failed read. */
  get warnings(): readonly string[];
  /** Iterates over the thread-samples aggregated per distinct thread,
   * state and stack, in the order in which each combination first
   * occurred. */
  stacks(): IterableIterator<StackCount>;
  /** Returns the number of thread-samples that `filter` selects: the
   * 100 % of the percentages of `rows()` with the same options. With no
   * filter, that is the samples of running threads, which is at most
   * `sampleCount`. */
  countSamples(filter?: SampleFilter): number;
  /** Returns `% self` and `% total` per function (name and path), or per
   * function and line, counted over the thread-samples that the options
   * select, sorted by self, then total. Rejects a `thread` or `pid` that
   * is not an integer from 0 with an `InvalidArgumentError`. */
  rows(options?: RowsOptions): SummaryRow[];
  /** Returns the rows of each thread that has samples the options select,
   * the thread with the most samples first. Each thread's percentages are
   * shares of its own samples. */
  byThread(options?: RowsOptions): ThreadRows[];
  /** Returns the rows of each process that has samples the options
   * select, the process with the most samples first. Each process's
   * percentages are shares of its own samples. A profile from `record()`
   * covers one process, so it has at most one entry. */
  byProcess(options?: RowsOptions): ProcessRows[];
  /** Formats `rows()` as the `% self  % total  name` table. */
  toSummary(options?: SummaryOptions & RowsOptions): string;
  /** Formats the stacks as folded lines, `frame;frame;frame count` with
   * frames `name - path`, outermost first, for inferno, flamegraph.pl and
   * speedscope. Threads are merged and lines sorted. */
  toCollapsed(options?: StackFormatOptions): string;
  /** Draws the folded stacks as an interactive SVG flame graph with
   * inferno: searchable, with colors derived from the frame names. */
  toFlamegraphSvg(options?: FlamegraphOptions): string;
  /** Converts the profile to speedscope's file format: one sampled profile
   * per thread, each distinct stack weighted by its samples times the
   * sampling period in nanoseconds (or by its samples when the rate is not
   * known). */
  toSpeedscope(options?: StackFormatOptions): SpeedscopeFile;
  /** Encodes the profile as gzipped pprof (profile.proto) shaped like a Go
   * CPU profile, with sample types `samples/count` and `cpu/nanoseconds`
   * (`wall/nanoseconds` when states other than `running` count) and the
   * labels `pid`, `thread_id`, `thread_name` and `thread_state`. */
  toPprof(options?: PprofOptions): Buffer;
  /** Formats the profile for KCachegrind and callgrind_annotate: event
   * `Samples`, self samples per line and the samples under each call
   * site. */
  toCallgrind(options?: CallgrindOptions): string;
}

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
export declare class ProfileBuilder {
  constructor(options: ProfileBuilderOptions);
  /** Thread-samples added so far, of every thread and state. */
  get sampleCount(): number;
  /** Adds samples. Throws an `InvalidArgumentError` for a sample whose
   * state is not a `ThreadState`. */
  add(samples: readonly Sample[]): void;
  /** Returns the profile of the samples added so far. Samples added
   * later do not change it. */
  profile(options: BuiltProfileOptions): Profile;
}

/** The profile of a raw recording and the problems found in the file. */
export interface RawRecording {
  readonly path: string;
  /** The samples of every intact record. */
  readonly profile: Profile;
  /** When sampling started; absent when the header is cut short. */
  readonly startTime?: Date;
  /** Samples per second that were requested; absent when the header is
   * cut short. */
  readonly rateHz?: number;
  /** True when the recording stopped the target's threads for each read;
   * absent when the header is cut short or lacks the field. */
  readonly pause?: boolean;
  /** Problems of the file such as a cut-short end, one sentence each.
   * The sampler's own warnings are in `profile.warnings`. */
  readonly warnings: readonly string[];
  /** Bytes at the end of the file that were not a whole record. */
  readonly droppedBytes: number;
  /** Records dropped: 1 when the file ends inside a record, else 0. */
  readonly droppedRecords: number;
  /** True when the file ends with the record that a finished recording
   * writes last. */
  readonly complete: boolean;
}

/**
 * Reads a raw recording that `rbprof record` wrote and returns its
 * profile. A file cut short at any byte still reads: every whole record
 * is used, and `warnings` lists what was dropped. Rejects with an
 * `InvalidRecordingError` that names the file and the byte offset when
 * the file is not a raw recording or a whole record in it is invalid,
 * and with a `FileAccessError` when it cannot be read.
 */
export declare function readRecording(path: string): Promise<RawRecording>;

/** Options of `writeRawRecording()`. */
export interface RawRecordingOptions {
  /** The file to create, or to truncate when it exists. */
  readonly path: string;
  /** The file stops growing before it would exceed this many bytes,
   * apart from one short `limit` record. No limit when absent. */
  readonly maxBytes?: number;
  /** Receives each problem that ends the file early, such as a full disk
   * or the size limit. The recording goes on without the file. */
  readonly onWarning?: (message: string) => void;
}

/** A raw recording that is being written. */
export interface RawRecordingWriter {
  /** The file, as given. */
  readonly path: string;
  /** Bytes in the file so far. */
  readonly size: number;
  /** False once the file is closed or ended early by a failure or the
   * size limit. */
  readonly writing: boolean;
  /** Forces what was written to disk. Throws a `FileAccessError` when
   * that fails. */
  sync(): void;
  /** Waits for the batches not yet written, then writes the final stats
   * and the end record of `profile`, the recording's final profile, and
   * closes the file. */
  finish(profile: Profile): Promise<void>;
  /** Closes the file without an end record, as a crash would leave it,
   * unless `finish()` wrote one. */
  close(): void;
}

/**
 * Starts writing a raw recording of `recording`: every batch of samples
 * that arrives after the call, with their times, goes to the file as it
 * arrives. `readRecording()` and `rbprof report` read the file, also when
 * it is cut short. Throws a `FileAccessError` when the file cannot be
 * created.
 */
export declare function writeRawRecording(
  recording: Recording,
  options: RawRecordingOptions,
): RawRecordingWriter;

/** A range of Ruby releases that share one set of struct layouts. */
export interface VersionRange {
  /** First release of the range, such as `3.1.0`. */
  readonly from: string;
  /** Last release of the range, inclusive. */
  readonly through: string;
  /** True once a live process of this range has been profiled. */
  readonly verified: boolean;
}

/** Returns the ranges of Ruby releases that rbprof can read, oldest first. */
export declare function supportedVersions(): VersionRange[];

/** Options of `snapshot()` for a running process. */
export interface ProcessSnapshotOptions {
  /** The Ruby process to read. */
  readonly pid: number;
  /** Read the target with the struct layouts of this Ruby version, such
   * as `3.1.2`, instead of the detected one. */
  readonly forceVersion?: string;
  /** Stop every thread with ptrace(2) while the stacks are read, so that
   * none tears, as `record()`'s `pause` does. Off when absent: a stack
   * torn while the process runs is read again, up to five times. */
  readonly pause?: boolean;
}

/** Options of `snapshot()` for an ELF core file. */
export interface CoreSnapshotOptions {
  /** Path of the core file, as `gcore PID` or the kernel write it. */
  readonly core: string;
  /** The libruby or ruby executable to read in place of the one the core
   * records, when that file is missing or differs on this machine. */
  readonly binary?: string;
  /** Read the core with the struct layouts of this Ruby version, such as
   * `3.1.2`, instead of the detected one. */
  readonly forceVersion?: string;
}

/** Options of `snapshot()`: a running process or a core file. */
export type SnapshotOptions = ProcessSnapshotOptions | CoreSnapshotOptions;

/** A thread's state in a snapshot: `unknown` in a core file, which does
 * not record scheduling states. */
export type SnapshotThreadState = ThreadState | 'unknown';

/** One frame of a snapshot's stack. */
export interface SnapshotFrame {
  /** Such as `Foo#bar`, `Foo.bar` or `block in Foo#bar`. */
  readonly name: string;
  /** The source path as Ruby reports it. A C function has its caller's. */
  readonly path: string;
  /** For callers, the line of the call; 0 when unknown. */
  readonly line: number;
  readonly kind: FunctionKind;
}

/** One Ruby thread of a snapshot. */
export interface ThreadSnapshot {
  /** `Thread#name`, if set. */
  readonly name?: string;
  /** Kernel thread id; 0 when the Ruby build does not record it. */
  readonly tid: number;
  readonly state: SnapshotThreadState;
  /** Outermost frame first, leaf last. */
  readonly frames: readonly SnapshotFrame[];
  /** The reason the stack could not be read; `frames` is then empty. */
  readonly error?: string;
}

/** The Ruby threads of a process at one moment. Plain data, so
 * `JSON.stringify` prints it whole. */
export interface Snapshot {
  /** The running process's id, or the one that the core file records. */
  readonly pid: number;
  /** The version read from the target, such as `3.1.2`. */
  readonly rubyVersion: string;
  /** In the order of the VM's thread lists, the main thread first. */
  readonly threads: readonly ThreadSnapshot[];
  /** Things the user should know, such as an unverified layout. */
  readonly warnings: readonly string[];
}

/**
 * Reads the stack of every Ruby thread once, from a running process
 * (`{ pid }`) or an ELF core file (`{ core, binary? }`). Rejects with an
 * `RbprofError` subclass when the target cannot be read, such as
 * `InvalidCoreError` for a file that is not a usable core.
 */
export declare function snapshot(options: SnapshotOptions): Promise<Snapshot>;

/** Formats rows as the `% self  % total  name` table, one line each. */
export declare function formatSummary(
  rows: readonly SummaryRow[],
  options?: SummaryOptions,
): string;

/** Formats a snapshot as text: per thread its name, native id and state,
 * then its frames outermost first, one `name - path:line` per line. */
export declare function formatSnapshot(snapshot: Snapshot): string;

/** The name of an output format of a profile. */
export type ProfileFormat =
  | 'summary'
  | 'summary-by-line'
  | 'collapsed'
  | 'flamegraph'
  | 'speedscope'
  | 'pprof'
  | 'callgrind';

/** The names of the output formats, the default (`summary`) first. */
export declare const PROFILE_FORMATS: readonly ProfileFormat[];

/** A format's description, file name extension and kind. */
export interface FormatInfo {
  /** One line for help text. */
  readonly description: string;
  /** The usual file name extension, with its dot. */
  readonly extension: string;
  /** True when the output is binary, so it is a Buffer, not a string. */
  readonly binary: boolean;
}

/** Options of `renderProfile()`. Each format reads the options it has. */
export interface RenderOptions
  extends SummaryOptions, StackFormatOptions, FlamegraphOptions {}

/** Returns whether `name` is the name of an output format. */
export declare function isProfileFormat(name: string): name is ProfileFormat;

/** Returns the description, file extension and kind of a format. Throws
 * an `InvalidArgumentError` for an unknown name. */
export declare function formatInfo(format: ProfileFormat): FormatInfo;

/**
 * Writes a profile in the named format: a string for text formats, a
 * Buffer for binary ones (see `formatInfo(format).binary`). Throws an
 * `InvalidArgumentError` for an unknown name.
 */
export declare function renderProfile(
  profile: Profile,
  format: ProfileFormat,
  options?: RenderOptions,
): string | Buffer;

/** Error codes that rbprof errors carry in `code`. */
export type ErrorCode =
  | 'ERR_NO_SUCH_PROCESS'
  | 'ERR_NOT_RUBY'
  | 'ERR_UNSUPPORTED_VERSION'
  | 'ERR_PERMISSION_DENIED'
  | 'ERR_PROCESS_EXITED'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_VM_UNREADABLE'
  | 'ERR_SAMPLING_FAILED'
  | 'ERR_IO'
  | 'ERR_FILE_ACCESS'
  | 'ERR_INVALID_RECORDING'
  | 'ERR_INVALID_CORE'
  | 'ERR_LAUNCH_FAILED';

export interface RbprofErrorOptions {
  hint?: string;
  cause?: unknown;
}

/** The base of every error rbprof raises on purpose. */
export declare class RbprofError extends Error {
  /** Stable across releases. */
  readonly code: string;
  /** The next step for the user, where rbprof has one to suggest. */
  readonly hint?: string;
  /** The child that `record({ command })` started before this error. It
   * keeps running, and its `exit` resolves with its status when it ends. */
  launched?: LaunchedProcess;
  constructor(code: string, message: string, options?: RbprofErrorOptions);
}

/** No process has the requested pid. */
export declare class NoSuchProcessError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions);
}

/** The process runs, but not the Ruby (MRI) VM. */
export declare class NotRubyError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions);
}

/** rbprof has no struct layouts for the target's Ruby version. */
export declare class UnsupportedVersionError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions);
}

/** The target's memory cannot be read by this user. */
export declare class PermissionDeniedError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions);
}

/** The target exited while rbprof attached to it. */
export declare class ProcessExitedError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions);
}

/** An option is out of range or malformed. */
export declare class InvalidArgumentError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions);
}

/** The Ruby VM's structures in the target could not be read. */
export declare class VmUnreadableError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions);
}

/** Sampling stopped for good after it had started. */
export declare class SamplingFailedError extends RbprofError {
  /** The samples taken until the failure. */
  readonly profile: Profile;
  constructor(message: string, profile: Profile, options?: RbprofErrorOptions);
}

/** A file that rbprof reads or writes cannot be opened, read or written. */
export declare class FileAccessError extends RbprofError {
  /** The file, as given. */
  readonly path: string;
  constructor(message: string, path: string, options?: RbprofErrorOptions);
}

/**
 * A file given as a core file is missing, is not the ELF core of an x86_64
 * Linux process, or is cut short.
 */
export declare class InvalidCoreError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions);
}

/**
 * A file is not a raw recording, or one of its whole records is invalid.
 * A recording that is only cut short is not an error.
 */
export declare class InvalidRecordingError extends RbprofError {
  /** The file, as given. */
  readonly path: string;
  /** The byte offset of the invalid record in the file. */
  readonly offset: number;
  constructor(
    message: string,
    path: string,
    offset: number,
    options?: RbprofErrorOptions,
  );
}
