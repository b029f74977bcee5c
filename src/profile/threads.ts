import { InvalidArgumentError } from '../errors';
import type { ThreadInfo } from '../types';

/**
 * A selection of threads by `Thread#name` or kernel thread id: a string
 * matches either one (`'worker'` or `'1234'`), a number only the id.
 */
export type ThreadSelector = string | number;

/** Returns whether `thread` is named by one of `selectors`. */
export function threadSelected(
  thread: ThreadInfo,
  selectors: readonly ThreadSelector[],
): boolean {
  return selectors.some((selector) =>
    typeof selector === 'number'
      ? selector === thread.tid
      : selector === thread.name || selector === String(thread.tid),
  );
}

/** Rejects a selector list that may come from untyped JavaScript. */
export function checkThreadSelectors(selectors: unknown): void {
  if (!Array.isArray(selectors)) {
    throw new InvalidArgumentError(
      `threads must be an array of thread names or ids, got ${String(selectors)}`,
    );
  }
  for (const selector of selectors) {
    const valid =
      (typeof selector === 'string' && selector !== '') ||
      (Number.isSafeInteger(selector) && (selector as number) > 0);
    if (!valid) {
      throw new InvalidArgumentError(
        `threads must contain thread names or positive thread ids, got ${JSON.stringify(selector)}`,
      );
    }
  }
}
