import { constants } from 'node:os';

import { fromNativeError } from './errors';
import type { NativeBinding, NativeChild, NativeExit } from './native';

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

/** How long one call into the addon waits for the child to end. */
const WAIT_TIMEOUT_MS = 1000;

/** Starts `command` with this process's stdin, stdout and stderr. */
export function launch(
  native: NativeBinding,
  command: readonly string[],
): LaunchedProcess {
  let child: NativeChild;
  try {
    child = native.NativeChild.launch([...command]);
  } catch (error) {
    throw fromNativeError(error);
  }
  return {
    pid: child.pid,
    exit: waitForExit(child),
    forwardSignal: (signal) => child.forwardSignal(constants.signals[signal]),
  };
}

async function waitForExit(child: NativeChild): Promise<ChildExit> {
  for (;;) {
    const exit = await child.wait(WAIT_TIMEOUT_MS);
    if (exit !== null) {
      return toChildExit(exit);
    }
  }
}

function toChildExit(exit: NativeExit): ChildExit {
  const signal =
    exit.signal === undefined || exit.signal === null
      ? null
      : signalName(exit.signal);
  return { code: exit.code ?? null, signal };
}

function signalName(signal: number): NodeJS.Signals | null {
  for (const [name, value] of Object.entries(constants.signals)) {
    if (value === signal) {
      return name as NodeJS.Signals;
    }
  }
  return null;
}

/** Returns the status a shell reports for a child: its exit code, or 128
 * plus the number of the signal that killed it. */
export function shellStatus(exit: ChildExit): number {
  if (exit.code !== null) {
    return exit.code;
  }
  if (exit.signal !== null) {
    return 128 + constants.signals[exit.signal];
  }
  return 1;
}
