// snapshot(): the current stack of every Ruby thread, read once from a
// running process or from an ELF core file.

import { fromNativeError, InvalidArgumentError } from './errors';
import { loadNative, type NativeBinding, type NativeSnapshot } from './native';
import type { FunctionKind, ThreadState } from './types';

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
export async function snapshot(options: SnapshotOptions): Promise<Snapshot> {
  return takeSnapshot(loadNative(), options);
}

/** Implements `snapshot()` on a given binding, so tests can pass a fake. */
export async function takeSnapshot(
  native: NativeBinding,
  options: SnapshotOptions,
): Promise<Snapshot> {
  const forceVersion =
    options.forceVersion === undefined
      ? {}
      : { forceVersion: options.forceVersion };
  let result: NativeSnapshot;
  try {
    if (isCore(options)) {
      const binary =
        options.binary === undefined ? {} : { binary: options.binary };
      result = await native.snapshotCore({
        core: options.core,
        ...binary,
        ...forceVersion,
      });
    } else {
      const pause = options.pause === undefined ? {} : { pause: options.pause };
      result = await native.snapshot({
        pid: options.pid,
        ...forceVersion,
        ...pause,
      });
    }
  } catch (error) {
    throw fromNativeError(error);
  }
  return convertSnapshot(result);
}

/** Checks options that may come from untyped JavaScript, and returns
 * whether they name a core file. */
function isCore(options: SnapshotOptions): options is CoreSnapshotOptions {
  const { pid, core, binary, pause } = options as {
    pid?: unknown;
    core?: unknown;
    binary?: unknown;
    pause?: unknown;
  };
  if (pause !== undefined && typeof pause !== 'boolean') {
    throw new InvalidArgumentError(
      `pause must be true or false, got ${String(pause)}`,
    );
  }
  if (pid !== undefined && core !== undefined) {
    throw new InvalidArgumentError(
      'snapshot() takes either pid or core, not both',
    );
  }
  if (core !== undefined) {
    if (pause !== undefined) {
      throw new InvalidArgumentError(
        'pause is only valid with pid: a core file does not run',
      );
    }
    if (typeof core !== 'string' || core === '') {
      throw new InvalidArgumentError(
        `core must be a non-empty path, got ${String(core)}`,
      );
    }
    if (binary !== undefined && (typeof binary !== 'string' || binary === '')) {
      throw new InvalidArgumentError(
        `binary must be a non-empty path, got ${String(binary)}`,
      );
    }
    return true;
  }
  if (binary !== undefined) {
    throw new InvalidArgumentError('binary is only valid with core');
  }
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) {
    throw new InvalidArgumentError(
      `snapshot() needs a pid (a positive integer) or a core path, got pid ${String(pid)}`,
    );
  }
  return false;
}

/** Copies the addon's result into the public shape, leaving out absent
 * optional fields. */
export function convertSnapshot(native: NativeSnapshot): Snapshot {
  const threads = native.threads.map((thread): ThreadSnapshot => {
    const frames = thread.frames.map((frame): SnapshotFrame => ({
      name: frame.name,
      path: frame.path,
      line: frame.line,
      kind: frame.kind as FunctionKind,
    }));
    return {
      ...(thread.name == null ? {} : { name: thread.name }),
      tid: thread.tid,
      state: thread.state as SnapshotThreadState,
      frames,
      ...(thread.error == null ? {} : { error: thread.error }),
    };
  });
  return {
    pid: native.pid,
    rubyVersion: native.rubyVersion,
    threads,
    warnings: [...native.warnings],
  };
}
