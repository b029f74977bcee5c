import { performance } from 'node:perf_hooks';

import {
  fromNativeError,
  InvalidArgumentError,
  NoSuchProcessError,
  NotRubyError,
  ProcessExitedError,
  RbprofError,
  SamplingFailedError,
} from './errors';
import { launch, type LaunchedProcess } from './launch';
import {
  loadNative,
  type NativeBatch,
  type NativeBinding,
  type NativeSampler,
} from './native';
import { ProfileData, stateCodesFromNames } from './profile/data';
import { decodeBatch, Profile } from './profile/profile';
import { checkThreadSelectors, type ThreadSelector } from './profile/threads';
import type {
  EndReason,
  ProcessEvent,
  ProcessInfo,
  RecordingEnd,
  SampleBatch,
  TargetInfo,
} from './types';

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
  /** Read the target with the struct layouts of this Ruby version, such as
   * `3.1.2`, instead of the detected one. */
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
  /**
   * Iterates over the batches of samples that arrive after the call, until
   * the recording ends. Unlike a profile, these samples carry their times.
   */
  samples(): AsyncIterableIterator<SampleBatch>;
  /** Returns the processes sampled so far, in the order they were found,
   * the target first; exited ones keep their entry. */
  processes(): ProcessInfo[];
}

const DEFAULT_RATE_HZ = 99;
/** Whether `pause` is on when absent. */
const DEFAULT_PAUSE = false;
/** How long one call into the addon waits for samples. */
const POLL_TIMEOUT_MS = 1000;
/** The pause between two calls, so samples arrive in batches of many
 * ticks instead of one call per tick. */
const POLL_INTERVAL_MS = 100;

/**
 * Attaches to a Ruby process, or starts `command`, and starts sampling it.
 * Resolves once the sampler runs; rejects with an `RbprofError` subclass
 * when the target cannot be profiled (no such process, not Ruby,
 * unsupported version, permission denied). When a launched child cannot
 * be profiled, the error's `launched` is that child, which keeps running.
 */
export async function record(options: RecordOptions): Promise<Recording> {
  return startRecording(loadNative(), options);
}

/** Implements `record()` on a given binding, so tests can pass a fake. */
export async function startRecording(
  native: NativeBinding,
  options: RecordOptions,
): Promise<Recording> {
  checkOptions(options);
  const launched =
    options.command === undefined ? undefined : launch(native, options.command);
  let sampler: NativeSampler;
  try {
    const startOptions: Parameters<NativeBinding['NativeSampler']['start']>[0] =
      {
        pid: launched?.pid ?? options.pid ?? 0,
        rateHz: options.rateHz ?? DEFAULT_RATE_HZ,
        idle: options.idle ?? false,
      };
    if (launched !== undefined) {
      startOptions.launched = true;
    }
    if (options.forceVersion !== undefined) {
      startOptions.forceVersion = options.forceVersion;
    }
    if (options.threads !== undefined) {
      startOptions.threads = options.threads.map(String);
    }
    if (options.subprocesses === true) {
      startOptions.subprocesses = true;
    }
    if (options.pause ?? DEFAULT_PAUSE) {
      startOptions.pause = true;
    }
    sampler = await native.NativeSampler.start(startOptions);
  } catch (error) {
    const converted = fromNativeError(error);
    if (launched !== undefined && converted instanceof RbprofError) {
      const described = describeLaunchFailure(
        converted,
        options.command ?? [],
        launched.pid,
        options.subprocesses === true,
      );
      described.launched = launched;
      throw described;
    }
    throw converted;
  }
  const stateCodes = stateCodesFromNames(native.threadStateNames());
  return new ActiveRecording(sampler, stateCodes, options, launched);
}

/**
 * Words the errors of a launched command that never showed a Ruby VM in
 * terms of the command: the core's messages speak of a pid and advise
 * --pid, which the user did not give.
 */
function describeLaunchFailure(
  error: RbprofError,
  command: readonly string[],
  pid: number,
  subprocesses: boolean,
): RbprofError {
  const program = command[0] ?? 'the command';
  const subject = `the command \`${program}\` (process ${pid})`;
  const wrapperHint =
    'rbprof profiles Ruby (MRI) programs. If the command starts Ruby ' +
    'through a shell or a wrapper script, pass --subprocesses ' +
    '(subprocesses: true) to follow it, or have the wrapper exec Ruby, as ' +
    "in `sh -c 'exec ruby app.rb'`.";
  if (error instanceof NotRubyError) {
    return new NotRubyError(
      subprocesses
        ? `${subject} ran no Ruby: neither it nor a process it started ran a Ruby VM`
        : `${subject} is not a Ruby process: ${error.message.replace(/^process \d+ is not a Ruby process: /, '')}`,
      {
        hint: subprocesses
          ? 'rbprof profiles Ruby (MRI) programs; check that the command starts one.'
          : wrapperHint,
        cause: error,
      },
    );
  }
  if (
    error instanceof NoSuchProcessError ||
    error instanceof ProcessExitedError
  ) {
    return new ProcessExitedError(
      `${subject} exited before rbprof found a Ruby VM in it`,
      { hint: wrapperHint, cause: error },
    );
  }
  return error;
}

function checkOptions(options: RecordOptions): void {
  const { pid, command } = options;
  if ((pid === undefined) === (command === undefined)) {
    throw new InvalidArgumentError(
      'give exactly one of pid and command to record',
    );
  }
  if (pid !== undefined && (!Number.isSafeInteger(pid) || pid <= 0)) {
    throw new InvalidArgumentError(
      `pid must be a positive integer, got ${pid}`,
    );
  }
  if (
    command !== undefined &&
    (command.length === 0 || command.some((arg) => typeof arg !== 'string'))
  ) {
    throw new InvalidArgumentError(
      'command must be a non-empty array of strings, the program first',
    );
  }
  if (options.threads !== undefined) {
    checkThreadSelectors(options.threads);
  }
  if (
    options.subprocesses !== undefined &&
    typeof options.subprocesses !== 'boolean'
  ) {
    throw new InvalidArgumentError(
      `subprocesses must be true or false, got ${String(options.subprocesses)}`,
    );
  }
  if (options.pause !== undefined && typeof options.pause !== 'boolean') {
    throw new InvalidArgumentError(
      `pause must be true or false, got ${String(options.pause)}`,
    );
  }
  const { rateHz, durationSeconds } = options;
  // The core enforces the maximum rate, so that limit lives in one place.
  if (rateHz !== undefined && !(Number.isFinite(rateHz) && rateHz > 0)) {
    throw new InvalidArgumentError(
      `rateHz must be a number above 0, got ${rateHz}`,
    );
  }
  if (
    durationSeconds !== undefined &&
    !(Number.isFinite(durationSeconds) && durationSeconds > 0)
  ) {
    throw new InvalidArgumentError(
      `durationSeconds must be a number above 0, got ${durationSeconds}`,
    );
  }
}

/** A subscriber of `samples()`: a queue and a waiting reader, if any. */
interface Subscriber {
  queue: SampleBatch[];
  wake?: () => void;
}

class ActiveRecording implements Recording {
  readonly target: TargetInfo;
  readonly rateHz: number;
  readonly idle: boolean;
  readonly subprocesses: boolean;
  readonly pause: boolean;
  readonly startTimeMs = Date.now();
  readonly done: Promise<Profile>;
  readonly launched?: LaunchedProcess;

  readonly #sampler: NativeSampler;
  readonly #data: ProfileData;
  readonly #startedAt = performance.now();
  readonly #subscribers = new Set<Subscriber>();
  readonly #cleanups: Array<() => void> = [];
  readonly #processes = new Map<number, ProcessInfo>();

  /** The reason passed to the first `#requestStop()` call. */
  #stopReason?: EndReason;
  /** The batch that the addon's `stop()` returned, until it is added. */
  #stopBatch?: NativeBatch;
  #wakePoll?: () => void;
  #final?: Profile;
  #failure?: unknown;

  constructor(
    sampler: NativeSampler,
    stateCodes: number[],
    options: RecordOptions,
    launched: LaunchedProcess | undefined,
  ) {
    this.#sampler = sampler;
    if (launched !== undefined) {
      this.launched = launched;
    }
    this.target = { ...sampler.target };
    this.#data = new ProfileData(stateCodes);
    this.rateHz = options.rateHz ?? DEFAULT_RATE_HZ;
    this.idle = options.idle ?? false;
    this.subprocesses = options.subprocesses ?? false;
    this.pause = options.pause ?? DEFAULT_PAUSE;

    const { signal, durationSeconds } = options;
    if (durationSeconds !== undefined) {
      const timer = setTimeout(
        () => this.#requestStop('duration'),
        durationSeconds * 1000,
      );
      this.#cleanups.push(() => clearTimeout(timer));
    }
    if (signal !== undefined) {
      const onAbort = () => this.#requestStop('aborted');
      if (signal.aborted) {
        onAbort();
      } else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.#cleanups.push(() => signal.removeEventListener('abort', onAbort));
      }
    }

    this.done = this.#poll();
    // A caller that only uses stop() or profile() must not see an
    // unhandled rejection; awaiting `done` still rejects.
    this.done.catch(() => undefined);
  }

  stop(): Promise<Profile> {
    this.#requestStop('stopped');
    return this.done;
  }

  profile(): Profile {
    return this.#final ?? this.#snapshot();
  }

  samples(): AsyncIterableIterator<SampleBatch> {
    const subscriber: Subscriber = { queue: [] };
    if (this.#final === undefined && this.#failure === undefined) {
      this.#subscribers.add(subscriber);
    }
    const next = async (): Promise<IteratorResult<SampleBatch>> => {
      for (;;) {
        const batch = subscriber.queue.shift();
        if (batch !== undefined) {
          return { value: batch, done: false };
        }
        if (!this.#subscribers.has(subscriber)) {
          if (this.#failure !== undefined) {
            throw this.#failure;
          }
          return { value: undefined, done: true };
        }
        await new Promise<void>((resolve) => (subscriber.wake = resolve));
      }
    };
    const iterator: AsyncIterableIterator<SampleBatch> = {
      next,
      return: async () => {
        this.#subscribers.delete(subscriber);
        subscriber.queue.length = 0;
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  processes(): ProcessInfo[] {
    return [...this.#processes.values()].map((info) => ({ ...info }));
  }

  #requestStop(reason: EndReason): void {
    if (this.#stopReason !== undefined || this.#final !== undefined) {
      return;
    }
    this.#stopReason = reason;
    // Stopping right away ends sampling now rather than at the next poll.
    // The batch is added once a call to nextBatch() still running returns,
    // because that call's samples were taken first.
    this.#stopBatch = this.#sampler.stop();
    this.#wakePoll?.();
  }

  async #poll(): Promise<Profile> {
    let end: RecordingEnd | undefined;
    try {
      while (this.#stopBatch === undefined) {
        const batch = await this.#sampler.nextBatch(POLL_TIMEOUT_MS);
        if (batch === null) {
          break;
        }
        this.#add(batch);
        if (batch.end !== undefined) {
          end = toEnd(batch.end);
          break;
        }
        if (this.#stopBatch !== undefined) {
          break;
        }
        await this.#pause(POLL_INTERVAL_MS);
      }
      // Joins the sampling thread. After an end that the sampler reported
      // itself, the batch is empty.
      const last = this.#stopBatch ?? this.#sampler.stop();
      this.#stopBatch = undefined;
      this.#add(last);
      end ??= toEnd(last.end ?? { reason: 'stopped' });
    } catch (error) {
      this.#finish();
      this.#fail(error);
      throw error;
    }

    if (end.reason === 'stopped' && this.#stopReason !== undefined) {
      end = { reason: this.#stopReason };
    }
    const profile = this.#snapshot(end);
    this.#final = profile;
    this.#finish();
    if (end.reason === 'failed') {
      const error = new SamplingFailedError(
        `sampling process ${this.target.pid} failed: ${end.message ?? 'no reason given'}`,
        profile,
      );
      this.#fail(error);
      throw error;
    }
    return profile;
  }

  #add(batch: NativeBatch): void {
    const added = this.#data.add(batch);
    const processes = batch.processes.map(toProcessEvent);
    for (const event of processes) {
      this.#track(event);
    }
    if (this.#subscribers.size === 0) {
      return;
    }
    // The batch is decoded for the subscribers and then dropped: the data
    // keeps only counts, not the samples and their times.
    const decoded: SampleBatch = {
      samples: decodeBatch(this.#data, batch, added),
      stats: { ...batch.stats },
      warnings: batch.warnings.slice(),
      processes,
    };
    for (const subscriber of this.#subscribers) {
      subscriber.queue.push(decoded);
      subscriber.wake?.();
    }
  }

  #track(event: ProcessEvent): void {
    if (event.kind === 'attached') {
      // A pid seen again ran exec into Ruby or was reused: the new entry
      // replaces the old one.
      this.#processes.delete(event.pid);
      this.#processes.set(event.pid, {
        pid: event.pid,
        parentPid: event.parentPid,
        rubyVersion: event.rubyVersion ?? '',
        attachedNs: event.timeNs,
      });
      return;
    }
    const info = this.#processes.get(event.pid);
    if (info !== undefined && info.exitedNs === undefined) {
      this.#processes.set(event.pid, { ...info, exitedNs: event.timeNs });
    }
  }

  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakePoll = done;
    }).finally(() => (this.#wakePoll = undefined));
  }

  #snapshot(end?: RecordingEnd): Profile {
    return new Profile({
      target: this.target,
      data: this.#data,
      stats: this.#data.stats,
      durationSeconds: (performance.now() - this.#startedAt) / 1000,
      rateHz: this.rateHz,
      startTimeMs: this.startTimeMs,
      ...(end === undefined ? {} : { end }),
    });
  }

  /** Ends every subscription and removes the timer and signal listener. */
  #finish(): void {
    for (const cleanup of this.#cleanups.splice(0)) {
      cleanup();
    }
    for (const subscriber of this.#subscribers) {
      this.#subscribers.delete(subscriber);
      subscriber.wake?.();
    }
  }

  #fail(error: unknown): void {
    this.#failure = error;
    for (const subscriber of this.#subscribers) {
      this.#subscribers.delete(subscriber);
      subscriber.wake?.();
    }
  }
}

function toProcessEvent(event: NativeBatch['processes'][number]): ProcessEvent {
  const converted = {
    kind:
      event.kind === 'attached' ? ('attached' as const) : ('exited' as const),
    pid: event.pid,
    parentPid: event.parent,
    timeNs: event.timeNs,
  };
  return event.rubyVersion === undefined || event.rubyVersion === null
    ? converted
    : { ...converted, rubyVersion: event.rubyVersion };
}

function toEnd(end: { reason: string; message?: string | null }): RecordingEnd {
  const reason = end.reason as EndReason;
  if (end.message === undefined || end.message === null) {
    return { reason };
  }
  return { reason, message: end.message };
}
