// The file format of speedscope (https://www.speedscope.app), as its
// TypeScript specification `src/lib/file-format-spec.ts` defines it.

import type { Profile } from '../profile/profile';
import type { Frame, ThreadInfo } from '../types';
import {
  compareText,
  countedStacks,
  type StackFormatOptions,
} from './collapsed';

export const SPEEDSCOPE_SCHEMA =
  'https://www.speedscope.app/file-format-schema.json';

/** A frame that samples refer to by its index in `shared.frames`. */
export interface SpeedscopeFrame {
  readonly name: string;
  readonly file?: string;
  /** Set when the frames are per line (`lines: true`). */
  readonly line?: number;
}

/** The samples of one thread. */
export interface SpeedscopeSampledProfile {
  readonly type: 'sampled';
  readonly name: string;
  /** `nanoseconds` when the sampling rate is known; otherwise `none`, and
   * each weight is a count of samples. */
  readonly unit: 'nanoseconds' | 'none';
  /** The start of the profile in `unit`: always 0. */
  readonly startValue: number;
  /** The sum of `weights`, in `unit`. */
  readonly endValue: number;
  /** Stacks as indexes into `shared.frames`, outermost first. */
  readonly samples: number[][];
  /** The weight of each stack in `samples`, in `unit`. */
  readonly weights: number[];
}

/** A speedscope file: JSON.stringify() it to save it. */
export interface SpeedscopeFile {
  readonly $schema: typeof SPEEDSCOPE_SCHEMA;
  readonly name: string;
  readonly exporter: string;
  /** The profile that speedscope shows first: the one with most samples.
   * Absent when no thread has samples. */
  readonly activeProfileIndex?: number;
  readonly shared: { readonly frames: SpeedscopeFrame[] };
  readonly profiles: SpeedscopeSampledProfile[];
}

/**
 * Converts a profile to speedscope's file format: one sampled profile per
 * thread, keyed by process and thread, with frames shared between them.
 *
 * A profile keeps counts, not sample times, so each distinct stack becomes
 * one sample whose weight is its count times the sampling period. Samples
 * are sorted by their frames' names, so speedscope's time-order view shows
 * the stacks grouped like a flame graph, not in the order they ran.
 */
export function toSpeedscope(
  profile: Profile,
  options: StackFormatOptions = {},
): SpeedscopeFile {
  const lines = options.lines ?? false;
  const periodNs =
    profile.rateHz === undefined ? undefined : Math.round(1e9 / profile.rateHz);

  // Each thread's distinct stacks, with their counts.
  const byThread = new Map<number, ThreadStacks>();
  for (const stack of countedStacks(profile.stacks(), options)) {
    let thread = byThread.get(stack.thread.id);
    if (thread === undefined) {
      thread = { thread: stack.thread, stacks: new Map() };
      byThread.set(stack.thread.id, thread);
    }
    const frames = stack.frames.map((frame) => frameOf(frame, lines));
    const key = JSON.stringify(frames.map(frameKey));
    const known = thread.stacks.get(key);
    if (known === undefined) {
      thread.stacks.set(key, { frames, count: stack.count });
    } else {
      known.count += stack.count;
    }
  }

  const frames: SpeedscopeFrame[] = [];
  const frameIndex = new Map<string, number>();
  const indexOf = (frame: SpeedscopeFrame) => {
    const key = frameKey(frame);
    let index = frameIndex.get(key);
    if (index === undefined) {
      index = frames.length;
      frames.push(frame);
      frameIndex.set(key, index);
    }
    return index;
  };

  const profiles: SpeedscopeSampledProfile[] = [];
  const sampleCounts: number[] = [];
  const threads = [...byThread.values()].sort(compareThreads);
  for (const { thread, stacks } of threads) {
    const samples: number[][] = [];
    const weights: number[] = [];
    let sampleCount = 0;
    const sorted = [...stacks.values()].sort((a, b) =>
      compareStacks(a.frames, b.frames),
    );
    for (const { frames: stackFrames, count } of sorted) {
      samples.push(stackFrames.map(indexOf));
      weights.push(periodNs === undefined ? count : count * periodNs);
      sampleCount += count;
    }
    profiles.push({
      type: 'sampled',
      name: threadName(thread),
      unit: periodNs === undefined ? 'none' : 'nanoseconds',
      startValue: 0,
      endValue: weights.reduce((sum, weight) => sum + weight, 0),
      samples,
      weights,
    });
    sampleCounts.push(sampleCount);
  }

  const { pid, rubyVersion } = profile.target;
  return {
    $schema: SPEEDSCOPE_SCHEMA,
    name: `Process ${pid} (Ruby ${rubyVersion})`,
    exporter: 'rbprof',
    ...(profiles.length === 0
      ? {}
      : { activeProfileIndex: busiest(sampleCounts) }),
    shared: { frames },
    profiles,
  };
}

interface ThreadStacks {
  readonly thread: ThreadInfo;
  /** Stacks by the JSON of their frame keys. */
  readonly stacks: Map<string, { frames: SpeedscopeFrame[]; count: number }>;
}

function frameOf(frame: Frame, lines: boolean): SpeedscopeFrame {
  const { name, path } = frame.function;
  return lines ? { name, file: path, line: frame.line } : { name, file: path };
}

/** Returns a key that is unique per frame. */
function frameKey(frame: SpeedscopeFrame): string {
  return JSON.stringify([frame.name, frame.file, frame.line ?? 0]);
}

/**
 * Names a thread `NAME (pid P, tid T)`, or `pid P, tid T` when it has no
 * name. Without a kernel thread id (`tid` 0) the recording's thread id
 * is used instead, as `thread ID`.
 */
function threadName(thread: ThreadInfo): string {
  const tid = thread.tid === 0 ? `thread ${thread.id}` : `tid ${thread.tid}`;
  const ids = `pid ${thread.pid}, ${tid}`;
  return thread.name === undefined ? ids : `${thread.name} (${ids})`;
}

/** Orders threads by process, kernel thread id, then recording id. */
function compareThreads(a: ThreadStacks, b: ThreadStacks): number {
  return (
    a.thread.pid - b.thread.pid ||
    a.thread.tid - b.thread.tid ||
    a.thread.id - b.thread.id
  );
}

/** Orders stacks frame by frame, outermost first, by name, file and line;
 * a stack comes before the longer stacks that start with it. */
function compareStacks(
  a: readonly SpeedscopeFrame[],
  b: readonly SpeedscopeFrame[],
): number {
  const shared = Math.min(a.length, b.length);
  for (let i = 0; i < shared; i++) {
    const order =
      compareText(a[i].name, b[i].name) ||
      compareText(a[i].file ?? '', b[i].file ?? '') ||
      (a[i].line ?? 0) - (b[i].line ?? 0);
    if (order !== 0) {
      return order;
    }
  }
  return a.length - b.length;
}

/** Returns the index of the largest count, the first of equal ones. */
function busiest(counts: readonly number[]): number {
  let best = 0;
  for (let i = 1; i < counts.length; i++) {
    if (counts[i] > counts[best]) {
      best = i;
    }
  }
  return best;
}
