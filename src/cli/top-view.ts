// The screen of `rbprof top`: sample counts per function taken once per
// refresh, the difference over a recent window, and the lines that fit
// the terminal.

import {
  formatSummary,
  type Profile,
  type SummaryRow,
  type ThreadInfo,
  type ThreadState,
} from '../index';
import { threadTitle } from './by-thread';

export type SortKey = 'self' | 'total';

/** Thread-samples and rows of one view (all threads or one thread) at
 * one refresh, with the rows keyed by function id. */
interface Tally {
  readonly samples: number;
  readonly rows: ReadonlyMap<number, SummaryRow>;
}

/** The counts of a profile at one refresh. */
interface Moment {
  readonly seconds: number;
  readonly all: Tally;
  readonly threads: ReadonlyMap<number, { thread: ThreadInfo; tally: Tally }>;
}

export interface TopViewOptions {
  /** Thread states whose samples count. */
  readonly states: readonly ThreadState[];
  /** Count only the samples of this many recent seconds. Without it,
   * all samples since the start count. */
  readonly windowSeconds?: number;
}

/** The view settings and terminal size of one render. */
export interface TopScreenState {
  readonly sort: SortKey;
  readonly byThread: boolean;
  /** A line in place of the status line, such as the note that the
   * target exited. */
  readonly notice?: string;
  readonly columns: number;
  readonly rows: number;
}

/** Lines above the table: the header and the status line. */
const HEADER_LINES = 2;

/**
 * Counts the rows of a recording's profiles over time. `update` takes
 * the current profile once per refresh, and `render` draws the counts of
 * the window, or of the whole recording without one.
 */
export class TopView {
  readonly #options: TopViewOptions;
  /** Moments within the window, oldest first. */
  #history: Moment[] = [];
  #profile: Profile | undefined;

  constructor(options: TopViewOptions) {
    this.#options = options;
  }

  /** Takes the counts of the current profile. */
  update(profile: Profile): void {
    this.#profile = profile;
    const moment = takeMoment(profile, this.#options.states);
    this.#history.push(moment);
    const window = this.#options.windowSeconds;
    if (window === undefined) {
      this.#history = [moment];
      return;
    }
    // Keep the newest moment that is at least the window old, as the
    // base that the current counts are compared against.
    while (
      this.#history.length > 1 &&
      moment.seconds - this.#history[1].seconds >= window
    ) {
      this.#history.shift();
    }
  }

  /** Returns the lines of the screen, each cut to the terminal's width
   * and no more lines than it has rows. */
  render(state: TopScreenState): string[] {
    const profile = this.#profile;
    // One column stays free, because writing into the last one leaves
    // some terminals waiting to wrap.
    const width = Math.max(1, state.columns - 1);
    const lines = [
      headerLine(profile),
      state.notice ?? this.#statusLine(state),
    ];
    const available = Math.max(0, state.rows - HEADER_LINES);
    const current = this.#history.at(-1);
    if (current !== undefined && available > 0) {
      const base = this.#base();
      lines.push(
        ...(state.byThread
          ? threadTables(current, base, state.sort, available, width)
          : table(current.all, base?.all, state.sort, available, width)),
      );
    }
    return lines.slice(0, state.rows).map((line) => cut(line, width));
  }

  /** Returns the moment the window starts at, or undefined while the
   * recording is shorter than the window. */
  #base(): Moment | undefined {
    const window = this.#options.windowSeconds;
    if (window === undefined || this.#history.length < 2) {
      return undefined;
    }
    const oldest = this.#history[0];
    const current = this.#history[this.#history.length - 1];
    return current.seconds - oldest.seconds >= window ? oldest : undefined;
  }

  #statusLine(state: TopScreenState): string {
    const window = this.#options.windowSeconds;
    const span =
      window === undefined || this.#base() === undefined
        ? 'since start'
        : `last ${window} s`;
    const threads = this.#options.states.length > 1 ? 'all' : 'running';
    const view = state.byThread ? 'by thread' : 'all threads';
    return (
      `sort: ${state.sort} | ${view} | ${span}, ${threads} threads` +
      ' | keys: s self, t total, b threads, q quit'
    );
  }
}

function takeMoment(profile: Profile, states: readonly ThreadState[]): Moment {
  const threads = new Map<number, { thread: ThreadInfo; tally: Tally }>();
  for (const view of profile.byThread({ states })) {
    threads.set(view.thread.id, {
      thread: view.thread,
      tally: { samples: view.sampleCount, rows: byFunction(view.rows) },
    });
  }
  return {
    seconds: profile.stats.durationSeconds,
    all: {
      samples: profile.countSamples({ states }),
      rows: byFunction(profile.rows({ states })),
    },
    threads,
  };
}

function byFunction(rows: readonly SummaryRow[]): Map<number, SummaryRow> {
  return new Map(rows.map((row) => [row.function.id, row]));
}

/**
 * Returns the rows of the samples taken after `base`, or of all samples
 * without a base. Self and total counts only grow during a recording, so
 * the counts of a window are the differences of the two tallies.
 */
function windowRows(
  current: Tally,
  base: Tally | undefined,
  sort: SortKey,
): { samples: number; rows: SummaryRow[] } {
  const samples = current.samples - (base?.samples ?? 0);
  const rows: SummaryRow[] = [];
  if (samples <= 0) {
    return { samples: 0, rows };
  }
  for (const [id, row] of current.rows) {
    const before = base?.rows.get(id);
    const self = row.selfSamples - (before?.selfSamples ?? 0);
    const total = row.totalSamples - (before?.totalSamples ?? 0);
    if (total > 0) {
      rows.push({
        function: row.function,
        selfSamples: self,
        totalSamples: total,
        selfPercent: (100 * self) / samples,
        totalPercent: (100 * total) / samples,
      });
    }
  }
  return { samples, rows: rows.sort(comparator(sort)) };
}

function comparator(sort: SortKey): (a: SummaryRow, b: SummaryRow) => number {
  return (a, b) => {
    const bySort =
      sort === 'self'
        ? b.selfSamples - a.selfSamples || b.totalSamples - a.totalSamples
        : b.totalSamples - a.totalSamples || b.selfSamples - a.selfSamples;
    return bySort || compareText(a.function.name, b.function.name);
  };
}

function compareText(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}

/** Returns the table header and at most `lines - 1` rows. */
function table(
  current: Tally,
  base: Tally | undefined,
  sort: SortKey,
  lines: number,
  width: number,
): string[] {
  const { samples, rows } = windowRows(current, base, sort);
  if (samples === 0) {
    return ['No thread was sampled while running Ruby code yet.'];
  }
  return formatSummary(rows, { top: Math.max(0, lines - 1), width })
    .trimEnd()
    .split('\n');
}

/**
 * Returns one table per thread, the thread with the most samples in the
 * window first, with a line naming the thread above each. The rows are
 * shared out evenly, so threads beyond the screen's height are left out.
 */
function threadTables(
  current: Moment,
  base: Moment | undefined,
  sort: SortKey,
  available: number,
  width: number,
): string[] {
  const sections: Array<{ title: string; tally: Tally; baseTally?: Tally }> =
    [];
  for (const [id, { thread, tally }] of current.threads) {
    const baseTally = base?.threads.get(id)?.tally;
    const samples = tally.samples - (baseTally?.samples ?? 0);
    if (samples > 0) {
      sections.push({
        title: `${threadTitle(thread)}: ${samples} samples`,
        tally,
        ...(baseTally === undefined ? {} : { baseTally }),
      });
    }
  }
  if (sections.length === 0) {
    return ['No thread was sampled while running Ruby code yet.'];
  }
  const windowSamples = (section: (typeof sections)[number]) =>
    section.tally.samples - (section.baseTally?.samples ?? 0);
  sections.sort((a, b) => windowSamples(b) - windowSamples(a));

  // Each section is its title, the table header and at least one row.
  const perSection = Math.max(3, Math.floor(available / sections.length));
  const lines: string[] = [];
  for (const section of sections) {
    const room = Math.min(perSection, available - lines.length);
    if (room < 3) {
      break;
    }
    lines.push(section.title);
    lines.push(
      ...table(section.tally, section.baseTally, sort, room - 1, width),
    );
  }
  return lines;
}

function headerLine(profile: Profile | undefined): string {
  if (profile === undefined) {
    return 'rbprof top: attaching';
  }
  const { target, stats } = profile;
  const rate = profile.rateHz === undefined ? '' : `  ${profile.rateHz} Hz`;
  return (
    `rbprof top  pid ${target.pid}  Ruby ${target.rubyVersion}${rate}` +
    `  elapsed ${formatElapsed(stats.durationSeconds)}` +
    `  samples: ${stats.taken} taken, ${stats.late} late, ${stats.failed} failed`
  );
}

/** Formats seconds as `M:SS`, or `H:MM:SS` from one hour on. */
function formatElapsed(seconds: number): string {
  const whole = Math.floor(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, '0');
  return hours > 0
    ? `${hours}:${String(minutes).padStart(2, '0')}:${rest}`
    : `${minutes}:${rest}`;
}

function cut(line: string, width: number): string {
  return line.length <= width
    ? line
    : Array.from(line).slice(0, width).join('');
}
