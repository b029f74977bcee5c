import { CommanderError } from 'commander';

import { RbprofError } from '../index';

/** Exit codes of the CLI, one per kind of failure a script may branch on. */
export const EXIT_CODES = {
  ok: 0,
  /** A bug in rbprof or an unexpected failure. */
  internal: 1,
  /** Invalid flags or arguments. */
  usage: 2,
  noSuchProcess: 3,
  notRuby: 4,
  unsupportedVersion: 5,
  permissionDenied: 6,
  /** The target could not be read after rbprof attached, or it exited
   * while rbprof attached. */
  samplingFailed: 7,
  /** A file could not be read or written. */
  fileAccess: 8,
  /** The input is not a raw recording, or a record in it is invalid. */
  invalidRecording: 9,
  /** The file given as a core file is missing, not a core, or cut short. */
  invalidCore: 10,
  /** The command to launch could not be started, as a shell reports a
   * command not found. */
  launchFailed: 127,
} as const;

/** Ends the CLI with the exit status of the command that it launched. It
 * is not a failure, so nothing is printed. */
export class ChildExitStatus {
  constructor(readonly status: number) {}
}

const EXIT_CODE_BY_ERROR_CODE: Record<string, number> = {
  ERR_NO_SUCH_PROCESS: EXIT_CODES.noSuchProcess,
  ERR_NOT_RUBY: EXIT_CODES.notRuby,
  ERR_UNSUPPORTED_VERSION: EXIT_CODES.unsupportedVersion,
  ERR_PERMISSION_DENIED: EXIT_CODES.permissionDenied,
  ERR_INVALID_ARGUMENT: EXIT_CODES.usage,
  ERR_PROCESS_EXITED: EXIT_CODES.samplingFailed,
  ERR_VM_UNREADABLE: EXIT_CODES.samplingFailed,
  ERR_SAMPLING_FAILED: EXIT_CODES.samplingFailed,
  ERR_IO: EXIT_CODES.samplingFailed,
  ERR_FILE_ACCESS: EXIT_CODES.fileAccess,
  ERR_INVALID_RECORDING: EXIT_CODES.invalidRecording,
  ERR_INVALID_CORE: EXIT_CODES.invalidCore,
  ERR_LAUNCH_FAILED: EXIT_CODES.launchFailed,
};

/**
 * Reports an error that reached the top of the CLI on `stderr` and
 * returns the exit code. Commander has already printed its own errors.
 */
export function reportError(
  error: unknown,
  stderr: NodeJS.WritableStream,
): number {
  if (error instanceof CommanderError) {
    const shownOnRequest = ['commander.helpDisplayed', 'commander.version'];
    return shownOnRequest.includes(error.code)
      ? EXIT_CODES.ok
      : EXIT_CODES.usage;
  }
  if (error instanceof ChildExitStatus) {
    return error.status;
  }
  if (error instanceof RbprofError) {
    stderr.write(`rbprof: ${error.message}\n`);
    if (error.hint !== undefined) {
      stderr.write(`${error.hint}\n`);
    }
    return EXIT_CODE_BY_ERROR_CODE[error.code] ?? EXIT_CODES.internal;
  }
  const detail =
    error instanceof Error ? (error.stack ?? error.message) : String(error);
  stderr.write(`rbprof: internal error: ${detail}\n`);
  stderr.write(
    'This is a bug in rbprof. Please report it with the output above.\n',
  );
  return EXIT_CODES.internal;
}
