import { clearScreenDown, cursorTo, moveCursor } from 'node:readline';

import type { Profile, ThreadState } from '../index';

/** A terminal stream such as `process.stderr` when it is a TTY. */
export interface TerminalStream extends NodeJS.WritableStream {
  readonly columns?: number;
  readonly rows?: number;
}

export interface LiveSummaryOptions {
  /** Rows of the table at most. */
  readonly top: number;
  /** Milliseconds between redraws. */
  readonly intervalMs?: number;
  /** Thread states whose samples count; only `running` by default. */
  readonly states?: readonly ThreadState[];
}

/** Lines above the table: the time line and the title. */
const HEADER_LINES = 2;
const DEFAULT_COLUMNS = 80;
const DEFAULT_ROWS = 24;

/**
 * Returns the lines of the live view: a time line, a title and the top of
 * the summary, cut to the terminal's width and height.
 */
export function renderLiveSummary(
  profile: Profile,
  options: {
    top: number;
    columns: number;
    rows: number;
    states?: readonly ThreadState[];
  },
): string[] {
  const seconds = Math.floor(profile.stats.durationSeconds);
  // One line is kept free for the cursor, and one for the table's header.
  const fitting = Math.max(1, options.rows - HEADER_LINES - 2);
  // Writing into the last column makes some terminals wrap, which would
  // break counting the lines to redraw.
  const width = Math.max(1, options.columns - 1);
  const table = profile.toSummary({
    top: Math.min(options.top, fitting),
    width,
    states: options.states,
  });
  return [
    cut(`Time since start: ${seconds}s. Press Ctrl+C to stop.`, width),
    cut('Summary of profiling data so far:', width),
    ...table.trimEnd().split('\n'),
  ];
}

/** Redraws the live view of a recording in place, once per interval. */
export class LiveSummary {
  readonly #stream: TerminalStream;
  readonly #profile: () => Profile;
  readonly #top: number;
  readonly #states: readonly ThreadState[] | undefined;
  readonly #timer: NodeJS.Timeout;
  #linesShown = 0;

  constructor(
    stream: TerminalStream,
    profile: () => Profile,
    options: LiveSummaryOptions,
  ) {
    this.#stream = stream;
    this.#profile = profile;
    this.#top = options.top;
    this.#states = options.states;
    this.#timer = setInterval(() => this.draw(), options.intervalMs ?? 1000);
  }

  /** Replaces the view on screen with the current one. */
  draw(): void {
    const lines = renderLiveSummary(this.#profile(), {
      top: this.#top,
      columns: this.#stream.columns ?? DEFAULT_COLUMNS,
      rows: this.#stream.rows ?? DEFAULT_ROWS,
      states: this.#states,
    });
    this.#erase();
    this.#stream.write(lines.map((line) => `${line}\n`).join(''));
    this.#linesShown = lines.length;
  }

  /** Prints a line, such as a warning, above the view, where the next
   * redraw does not erase it. */
  printAbove(line: string): void {
    this.#erase();
    this.#stream.write(`${line}\n`);
    this.draw();
  }

  /** Stops redrawing and removes the view, so that only the final
   * summary remains. */
  stop(): void {
    clearInterval(this.#timer);
    this.#erase();
  }

  #erase(): void {
    if (this.#linesShown === 0) {
      return;
    }
    moveCursor(this.#stream, 0, -this.#linesShown);
    cursorTo(this.#stream, 0);
    clearScreenDown(this.#stream);
    this.#linesShown = 0;
  }
}

function cut(line: string, width: number): string {
  return line.length <= width ? line : line.slice(0, width);
}
