import { threadSelected, type ThreadSelector } from '../profile/threads';
import type { Frame, StackCount, ThreadState } from '../types';
import { frameLabel } from './label';

/** Options of the formats built from whole stacks. */
export interface StackFormatOptions {
  /** Thread states whose samples count; only `running` by default. */
  readonly states?: readonly ThreadState[];
  /** Count only the samples of threads whose `Thread#name` or kernel
   * thread id is one of these values. */
  readonly threads?: readonly ThreadSelector[];
  /**
   * One frame per function and line when true. By default a frame is a
   * function, so one box covers all lines of a function, as a summary row
   * does.
   */
  readonly lines?: boolean;
}

const DEFAULT_STATES: readonly ThreadState[] = ['running'];

/** Returns the stacks whose state counts under `options.states` and
 * whose thread `options.threads` selects. */
export function* countedStacks(
  stacks: Iterable<StackCount>,
  options: StackFormatOptions,
): IterableIterator<StackCount> {
  const states = options.states ?? DEFAULT_STATES;
  for (const stack of stacks) {
    const selected =
      options.threads === undefined ||
      threadSelected(stack.thread, options.threads);
    if (states.includes(stack.state) && selected) {
      yield stack;
    }
  }
}

/**
 * Returns a frame as `name - path`, or `name - path:line` with `lines`
 * (the name alone for synthetic frames).
 * Semicolons become colons and line breaks spaces, because folded stacks
 * separate frames with `;` and stacks with newlines.
 */
export function foldedFrame(frame: Frame, lines: boolean): string {
  const { name, path } = frame.function;
  const text = frameLabel(name, path, lines ? frame.line : undefined);
  return text.replace(/;/g, ':').replace(/[\r\n]+/g, ' ');
}

/**
 * Returns folded stacks, one `frame;frame;frame count` line per distinct
 * stack, outermost frame first, without a trailing newline. Threads are
 * merged, as in the summary. Lines are sorted by their stack text, so
 * equal profiles give equal output. Stacks without frames, which the
 * sampler does not record, are left out because the format cannot express
 * them.
 */
export function collapsedLines(
  stacks: Iterable<StackCount>,
  options: StackFormatOptions = {},
): string[] {
  const lines = options.lines ?? false;
  const counts = new Map<string, number>();
  for (const stack of countedStacks(stacks, options)) {
    if (stack.frames.length === 0) {
      continue;
    }
    const key = stack.frames
      .map((frame) => foldedFrame(frame, lines))
      .join(';');
    counts.set(key, (counts.get(key) ?? 0) + stack.count);
  }
  const keys = [...counts.keys()].sort(compareText);
  return keys.map((key) => `${key} ${counts.get(key)}`);
}

/** Orders strings by UTF-16 code units, independent of the locale. */
export function compareText(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}

/**
 * Formats stacks in the folded format that inferno, Brendan Gregg's
 * flamegraph.pl and speedscope read: `collapsedLines()`, each line ending
 * in a newline.
 */
export function formatCollapsed(
  stacks: Iterable<StackCount>,
  options: StackFormatOptions = {},
): string {
  return collapsedLines(stacks, options)
    .map((line) => `${line}\n`)
    .join('');
}
