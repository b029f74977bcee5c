// Loads the addon built from crates/rbprof-node. The types below are
// written by hand, so the TypeScript compiles without the declarations
// that `napi build` generates next to the loader.
// test/native-types.test.ts checks that the two stay in step.

/** Options of `NativeSampler.start`. */
export interface StartOptions {
  pid: number;
  /** Samples per second; the core's default (99) when absent. */
  rateHz?: number;
  /** Also record threads that are not running on a CPU. */
  idle?: boolean;
  /** Use the layout of this Ruby version instead of the detected one. */
  forceVersion?: string;
  /**
   * Sample only threads whose `Thread#name` or kernel thread id (in
   * decimal) equals one of these values, or every thread when absent or
   * empty.
   */
  threads?: Array<string>;
  /** The target is a child started by `NativeChild.launch`: wait for its
   * VM as long as it runs instead of 2 seconds. */
  launched?: boolean;
  /** Also sample the Ruby processes that descend from `pid`, including
   * ones that start during the recording. */
  subprocesses?: boolean;
  /** Stop every thread of the target with ptrace while its stacks are
   * read; false when absent. */
  pause?: boolean;
}

/** Facts about the target that the sampler read when it opened it. */
export interface NativeTarget {
  pid: number;
  rubyVersion: string;
  layoutVersion: string;
  layoutVerified: boolean;
  rubyBinary: string;
}

/** A newly interned function. Samples refer to it by `id`. */
export interface NativeFunction {
  id: number;
  name: string;
  path: string;
  /** `ruby`, `cfunc` or `synthetic`. */
  kind: string;
}

/** A newly seen Ruby thread. Samples refer to it by `id`. */
export interface NativeThread {
  id: number;
  pid: number;
  /** Kernel thread id; 0 when the Ruby build does not record it. */
  tid: number;
  name?: string;
}

/** Sampler counters, totals since the start. Exact below 2^53. */
export interface NativeStats {
  taken: number;
  late: number;
  failed: number;
  threadSamples: number;
  /** Present once a tick paused the target. */
  pause?: NativePauseStats;
}

/** The pauses of a recording with `pause`, totals since the start. */
export interface NativePauseStats {
  /** Pauses of a target process: one per process and tick. */
  count: number;
  /** Nanoseconds the threads spent stopped, summed over the pauses. */
  totalNs: number;
  /** The maximum length of one pause, in nanoseconds. */
  maxNs: number;
}

/** A process that the sampler began or stopped following. */
export interface NativeProcessEvent {
  /** Nanoseconds since the recording started. */
  timeNs: number;
  pid: number;
  /** The followed process it descends from; 0 for the first target. */
  parent: number;
  /** `attached` or `exited`. */
  kind: string;
  /** The Ruby version, for `attached`. */
  rubyVersion?: string;
}

/** The reason a sampler stopped. */
export interface NativeEnd {
  /** `stopped`, `process_exited` or `failed`. */
  reason: string;
  /** The cause of the failure, for `failed`. */
  message?: string;
}

/**
 * Everything the sampler handed over since the previous batch, with the
 * samples flattened into typed arrays: sample `i` has the frames
 * `frameStarts[i] .. frameStarts[i + 1]` of `frameFunctions` and
 * `frameLines`, outermost first.
 */
export interface NativeBatch {
  functions: NativeFunction[];
  threads: NativeThread[];
  /** Nanoseconds since the recording started. */
  timesNs: Float64Array;
  /** Ids into the thread table. */
  threadIds: Uint32Array;
  /** Indexes into `threadStateNames()`. */
  states: Uint8Array;
  /** One more entry than there are samples. */
  frameStarts: Uint32Array;
  frameFunctions: Uint32Array;
  /** Line numbers; 0 means unknown. */
  frameLines: Uint32Array;
  stats: NativeStats;
  /** Set on the last batch of a sampler. */
  end?: NativeEnd;
  warnings: string[];
  /** Processes attached or gone since the previous batch. */
  processes: NativeProcessEvent[];
}

/** A running sampler of one Ruby process. */
export interface NativeSampler {
  readonly target: NativeTarget;
  /** Waits up to `timeoutMs` milliseconds for samples. Resolves to `null`
   * once the batch whose `end` is set has been returned. */
  nextBatch(timeoutMs: number): Promise<NativeBatch | null>;
  /** Stops the sampling thread and returns the samples not yet handed
   * out, with `end` set. */
  stop(): NativeBatch;
}

/** The end of a launched child: `code` after a normal exit, otherwise the
 * number of the signal that killed it. */
export interface NativeExit {
  code?: number;
  signal?: number;
}

/** A child process started by rbprof, with rbprof's stdin, stdout and
 * stderr. It receives SIGTERM when rbprof dies. */
export interface NativeChild {
  readonly pid: number;
  /** Waits up to `timeoutMs` milliseconds for the child to end. Resolves
   * to `null` while it still runs. */
  wait(timeoutMs: number): Promise<NativeExit | null>;
  /** Sends signal number `signal` to the child, unless it already ended,
   * or the signal is SIGINT or SIGQUIT and rbprof runs in the terminal's
   * foreground, where the terminal signaled the child too. Returns
   * whether the signal was sent. */
  forwardSignal(signal: number): boolean;
}

/** A range of Ruby releases that share one set of struct layouts. */
export interface NativeVersionRange {
  from: string;
  through: string;
  verified: boolean;
}

/** Options of `snapshot`. */
export interface ProcessSnapshotOptions {
  pid: number;
  forceVersion?: string;
  pause?: boolean;
}

/** Options of `snapshotCore`. */
export interface CoreSnapshotOptions {
  core: string;
  binary?: string;
  forceVersion?: string;
}

/** One frame, outermost first in its stack. */
export interface NativeSnapshotFrame {
  name: string;
  path: string;
  /** 0 when unknown. */
  line: number;
  kind: string;
}

/** One Ruby thread of a snapshot. */
export interface NativeThreadSnapshot {
  name?: string;
  tid: number;
  /** `running`, `waiting_gvl`, `blocked`, or `unknown` in a core file. */
  state: string;
  frames: NativeSnapshotFrame[];
  error?: string;
}

/** The Ruby threads of a process at one moment. */
export interface NativeSnapshot {
  pid: number;
  rubyVersion: string;
  threads: NativeThreadSnapshot[];
  warnings: string[];
}

/** The functions and classes of the addon that the library calls. */
export interface NativeBinding {
  NativeSampler: {
    /** Opens the target and starts sampling. Rejects with an `Error` that
     * has a `code` and, usually, a `hint`. */
    start(options: StartOptions): Promise<NativeSampler>;
  };
  NativeChild: {
    /** Starts `command` on the calling (main) thread. Throws an `Error`
     * with the code `ERR_LAUNCH_FAILED` when it cannot be executed. */
    launch(command: string[]): NativeChild;
  };
  threadStateNames(): string[];
  supportedVersions(): NativeVersionRange[];
  snapshot(options: ProcessSnapshotOptions): Promise<NativeSnapshot>;
  snapshotCore(options: CoreSnapshotOptions): Promise<NativeSnapshot>;
  /** Throws an `Error` with code `ERR_INVALID_ARGUMENT` for a malformed
   * line. */
  renderFlamegraph(lines: string[], title: string): string;
}

let binding: NativeBinding | undefined;
let addonLoader: (() => NativeBinding) | undefined;

/**
 * Sets the function that `loadNative` calls instead of requiring the
 * napi-rs loader next to the addon. The single executable (tools/sea) sets
 * it before the CLI starts, to load the addon embedded in the executable.
 */
export function setAddonLoader(loader: () => NativeBinding): void {
  addonLoader = loader;
}

/** Loads the addon on first use, so that code which only reads profiles
 * does not need it. */
export function loadNative(): NativeBinding {
  if (binding === undefined) {
    binding =
      addonLoader !== undefined
        ? addonLoader()
        : // eslint-disable-next-line @typescript-eslint/no-require-imports
          (require('../crates/rbprof-node/index.js') as NativeBinding);
  }
  return binding;
}
