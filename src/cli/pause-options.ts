// The --pause and --nonblocking flags of the commands that sample a
// running process, and the `pause` option of the library they set.

import { Option } from 'commander';

export interface PauseFlags {
  pause?: boolean;
  nonblocking?: boolean;
}

/** Returns the `--pause` flag, which excludes `--nonblocking`. */
export function pauseOption(): Option {
  return new Option(
    '--pause',
    "stop the target's threads with ptrace while each sample reads " +
      'them, so no stack tears; stops the target for each sample ' +
      '(see docs/pausing.md)',
  ).conflicts('nonblocking');
}

/** Returns the `--nonblocking` flag. */
export function nonblockingOption(): Option {
  return new Option(
    '--nonblocking',
    'read the stacks while the target runs (the default): never stops ' +
      'it, but a stack that changes during the read is dropped as failed',
  );
}

/** Returns the `pause` option for the flags, or none without either flag,
 * so the library's default applies. */
export function pauseSetting(flags: PauseFlags): { pause?: boolean } {
  if (flags.pause === true) {
    return { pause: true };
  }
  if (flags.nonblocking === true) {
    return { pause: false };
  }
  return {};
}

/** Formats a pause length given in nanoseconds, such as `85 us` or
 * `2.4 ms`. */
export function formatPauseLength(ns: number): string {
  if (ns < 1e6) {
    return `${Math.round(ns / 1e3)} us`;
  }
  return `${(ns / 1e6).toFixed(1)} ms`;
}
