import { Command } from 'commander';

import {
  InvalidArgumentError,
  record,
  type Profile,
  type Recording,
  type ThreadState,
} from '../index';
import { parseDuration, parsePid, parseRate } from './options';
import {
  formatPauseLength,
  nonblockingOption,
  pauseOption,
  pauseSetting,
  type PauseFlags,
} from './pause-options';
import { TopView, type SortKey } from './top-view';

interface TopFlags extends PauseFlags {
  pid: number;
  rate: number;
  idle?: boolean;
  byThread?: boolean;
  subprocesses?: boolean;
  window?: number;
}

const REFRESH_MS = 1000;
const CTRL_C = '\u0003';

// Control sequences of xterm and its descendants.
const ENTER_ALTERNATE_SCREEN = '\u001b[?1049h';
const LEAVE_ALTERNATE_SCREEN = '\u001b[?1049l';
const HIDE_CURSOR = '\u001b[?25l';
const SHOW_CURSOR = '\u001b[?25h';

export function topCommand(): Command {
  return new Command('top')
    .description(
      'Show the functions of a running Ruby process that use the most ' +
        'time, refreshed every second, until q or Ctrl+C. Keys: s sorts ' +
        'by self, t by total, b toggles one table per thread, q quits. ' +
        'When the process exits, top says so and quits at the next key ' +
        '(at once when stdin is not a terminal).',
    )
    .requiredOption('--pid <pid>', 'process id of the Ruby process', parsePid)
    .option('--rate <hz>', 'samples per second, at most 10000', parseRate, 99)
    .option(
      '--idle',
      'also sample threads that are not running on a CPU, and count them',
    )
    .addOption(pauseOption())
    .addOption(nonblockingOption())
    .option('--by-thread', 'start with one table per thread')
    .option(
      '--subprocesses',
      'also sample the Ruby processes that descend from the target, such ' +
        'as forked workers, into the same tables',
    )
    .option(
      '--window <seconds>',
      'count only the samples of this many recent seconds, in steps of ' +
        'the 1 s refresh (default: all samples since the start)',
      parseDuration,
    )
    .action(topAction);
}

async function topAction(flags: TopFlags): Promise<void> {
  const { stdout, stderr } = process;
  if (!stdout.isTTY) {
    throw new InvalidArgumentError(
      'top requires stdout to be a terminal, but it is a pipe or a file. ' +
        'To write a summary to a file or a pipe, use `rbprof record`.',
    );
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) {
    process.once(signal, onSignal);
  }
  try {
    const recording = await record({
      pid: flags.pid,
      rateHz: flags.rate,
      idle: flags.idle ?? false,
      signal: controller.signal,
      ...(flags.subprocesses === true ? { subprocesses: true } : {}),
      ...pauseSetting(flags),
    });
    const profile = await runScreen(recording, flags, controller.signal);
    if (profile.end?.reason === 'process_exited') {
      stderr.write(`Process ${recording.target.pid} ended.\n`);
    }
    const { stats } = profile;
    stderr.write(
      `Samples: ${stats.taken} taken, ${stats.late} late, ${stats.failed} failed.\n`,
    );
    const { pause } = stats;
    if (pause !== undefined && pause.count > 0) {
      const mean = formatPauseLength(pause.totalNs / pause.count);
      stderr.write(
        `Pauses of the target: mean ${mean}, max ${formatPauseLength(pause.maxNs)}.\n`,
      );
    }
  } finally {
    for (const signal of signals) {
      process.off(signal, onSignal);
    }
  }
}

/**
 * Shows the live view on the alternate screen until the recording ends,
 * and restores the terminal whether it ends well or not. Returns the
 * final profile.
 */
async function runScreen(
  recording: Recording,
  flags: TopFlags,
  signal: AbortSignal,
): Promise<Profile> {
  const states: ThreadState[] = flags.idle
    ? ['running', 'waiting_gvl', 'blocked']
    : ['running'];
  const view = new TopView({
    states,
    ...(flags.window === undefined ? {} : { windowSeconds: flags.window }),
  });
  const screen = new Screen(process.stdout, process.stdin);
  let sort: SortKey = 'self';
  let byThread = flags.byThread ?? false;
  let notice: string | undefined;
  let onAnyKey: (() => void) | undefined;

  const draw = () =>
    screen.draw(
      view.render({
        sort,
        byThread,
        ...(notice === undefined ? {} : { notice }),
        columns: screen.columns,
        rows: screen.rows,
      }),
    );
  const refresh = () => {
    view.update(recording.profile());
    draw();
  };
  const onKey = (key: string) => {
    if (onAnyKey !== undefined) {
      onAnyKey();
    } else if (key === 'q' || key === 'Q' || key === CTRL_C) {
      void recording.stop();
    } else if (key === 's' || key === 't') {
      sort = key === 's' ? 'self' : 'total';
      draw();
    } else if (key === 'b') {
      byThread = !byThread;
      draw();
    }
  };

  screen.open(onKey, draw);
  const timer = setInterval(refresh, REFRESH_MS);
  try {
    refresh();
    const profile = await recording.done;
    clearInterval(timer);
    if (profile.end?.reason === 'process_exited' && screen.readsKeys) {
      view.update(profile);
      notice = `Process ${recording.target.pid} ended. Press any key to exit.`;
      draw();
      await new Promise<void>((resolve) => {
        onAnyKey = resolve;
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    return profile;
  } finally {
    clearInterval(timer);
    screen.close();
  }
}

/**
 * The terminal while top runs: the alternate screen with the cursor
 * hidden, and stdin in raw mode when it is a terminal, so that keys
 * arrive one by one and Ctrl+C arrives as a key.
 */
class Screen {
  readonly #output: NodeJS.WriteStream;
  readonly #input: NodeJS.ReadStream;
  #onData: ((data: string) => void) | undefined;
  #onResize: (() => void) | undefined;

  constructor(output: NodeJS.WriteStream, input: NodeJS.ReadStream) {
    this.#output = output;
    this.#input = input;
  }

  get columns(): number {
    return this.#output.columns ?? 80;
  }

  get rows(): number {
    return this.#output.rows ?? 24;
  }

  /** True when keys reach top: only when stdin is a terminal. */
  get readsKeys(): boolean {
    return this.#input.isTTY === true;
  }

  open(onKey: (key: string) => void, onResize: () => void): void {
    this.#output.write(ENTER_ALTERNATE_SCREEN + HIDE_CURSOR);
    this.#onResize = onResize;
    this.#output.on('resize', onResize);
    if (this.readsKeys) {
      // One read may hold several keys, as when keys are pasted.
      this.#onData = (data) => {
        for (const key of data) {
          onKey(key);
        }
      };
      this.#input.setRawMode(true);
      this.#input.setEncoding('utf8');
      this.#input.on('data', this.#onData);
      this.#input.resume();
    }
  }

  /** Replaces the screen's content with `lines`, one per terminal row. */
  draw(lines: readonly string[]): void {
    // Each line is placed and cleared by cursor position, because raw mode
    // also stops the terminal from turning `\n` into a new line's start.
    let text = '';
    lines.forEach((line, index) => {
      text += `\u001b[${index + 1};1H\u001b[2K${line}`;
    });
    // The lines are narrower than the terminal, so the cursor stays on
    // the last line and this clears only the rows below it.
    text += '\u001b[J';
    this.#output.write(text);
  }

  close(): void {
    if (this.#onResize !== undefined) {
      this.#output.off('resize', this.#onResize);
    }
    if (this.#onData !== undefined) {
      this.#input.off('data', this.#onData);
      this.#input.setRawMode(false);
      this.#input.pause();
    }
    this.#output.write(SHOW_CURSOR + LEAVE_ALTERNATE_SCREEN);
  }
}
