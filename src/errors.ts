import type { LaunchedProcess } from './launch';
import type { Profile } from './profile/profile';

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

/**
 * The base of every error rbprof raises on purpose. `code` is stable across
 * releases, and `hint`, when present, is the next step for the user.
 */
export class RbprofError extends Error {
  readonly code: string;
  readonly hint?: string;
  /** The child that `record({ command })` started before this error. It
   * keeps running, and its `exit` resolves with its status when it ends. */
  launched?: LaunchedProcess;

  constructor(code: string, message: string, options: RbprofErrorOptions = {}) {
    super(
      message,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = new.target.name;
    this.code = code;
    if (options.hint !== undefined) {
      this.hint = options.hint;
    }
  }
}

/** No process has the requested pid. */
export class NoSuchProcessError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions) {
    super('ERR_NO_SUCH_PROCESS', message, options);
  }
}

/** The process runs, but not the Ruby (MRI) VM. */
export class NotRubyError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions) {
    super('ERR_NOT_RUBY', message, options);
  }
}

/** rbprof has no struct layout for the target's Ruby version. */
export class UnsupportedVersionError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions) {
    super('ERR_UNSUPPORTED_VERSION', message, options);
  }
}

/** The target's memory cannot be read by this user. */
export class PermissionDeniedError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions) {
    super('ERR_PERMISSION_DENIED', message, options);
  }
}

/** The target exited while rbprof attached to it. */
export class ProcessExitedError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions) {
    super('ERR_PROCESS_EXITED', message, options);
  }
}

/** An option is out of range or malformed. */
export class InvalidArgumentError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions) {
    super('ERR_INVALID_ARGUMENT', message, options);
  }
}

/** The Ruby VM's structures in the target could not be read. */
export class VmUnreadableError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions) {
    super('ERR_VM_UNREADABLE', message, options);
  }
}

/**
 * Sampling stopped for good after it had started. `profile` contains the
 * samples taken until then.
 */
export class SamplingFailedError extends RbprofError {
  readonly profile: Profile;

  constructor(message: string, profile: Profile, options?: RbprofErrorOptions) {
    super('ERR_SAMPLING_FAILED', message, options);
    this.profile = profile;
  }
}

/** A file that rbprof reads or writes cannot be opened, read or written. */
export class FileAccessError extends RbprofError {
  /** The file, as given. */
  readonly path: string;

  constructor(message: string, path: string, options?: RbprofErrorOptions) {
    super('ERR_FILE_ACCESS', message, options);
    this.path = path;
  }
}

/**
 * A file is not a raw recording, or one of its whole records is invalid.
 * A recording that is only cut short is not an error.
 */
export class InvalidRecordingError extends RbprofError {
  /** The file, as given. */
  readonly path: string;
  /** The byte offset of the invalid record in the file. */
  readonly offset: number;

  constructor(
    message: string,
    path: string,
    offset: number,
    options?: RbprofErrorOptions,
  ) {
    super('ERR_INVALID_RECORDING', message, options);
    this.path = path;
    this.offset = offset;
  }
}

/**
 * A file given as a core file is missing, is not the ELF core of an x86_64
 * Linux process, or is cut short.
 */
export class InvalidCoreError extends RbprofError {
  constructor(message: string, options?: RbprofErrorOptions) {
    super('ERR_INVALID_CORE', message, options);
  }
}

type ErrorClass = new (
  message: string,
  options?: RbprofErrorOptions,
) => RbprofError;

const CLASS_BY_CODE: Record<string, ErrorClass> = {
  ERR_NO_SUCH_PROCESS: NoSuchProcessError,
  ERR_NOT_RUBY: NotRubyError,
  ERR_UNSUPPORTED_VERSION: UnsupportedVersionError,
  ERR_PERMISSION_DENIED: PermissionDeniedError,
  ERR_PROCESS_EXITED: ProcessExitedError,
  ERR_INVALID_ARGUMENT: InvalidArgumentError,
  ERR_VM_UNREADABLE: VmUnreadableError,
  ERR_INVALID_CORE: InvalidCoreError,
};

/**
 * Converts an error thrown by the addon into the matching rbprof error
 * class. Errors without a string `code` are not the core's and are
 * returned unchanged.
 */
export function fromNativeError(error: unknown): unknown {
  if (!(error instanceof Error)) {
    return error;
  }
  const { code, hint } = error as Error & { code?: unknown; hint?: unknown };
  if (typeof code !== 'string' || !code.startsWith('ERR_')) {
    return error;
  }
  const options: RbprofErrorOptions = { cause: error };
  if (typeof hint === 'string') {
    options.hint = hint;
  }
  const ErrorClass = CLASS_BY_CODE[code];
  if (ErrorClass !== undefined) {
    return new ErrorClass(error.message, options);
  }
  return new RbprofError(code, error.message, options);
}
