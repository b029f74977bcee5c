// A hand-built profile with fixed times, so every format renders it the
// same way on every run. It has recursion, two threads (one named), all
// three thread states, a C function, and names that need escaping in XML.

import { ProfileData } from '../../dist/profile/data';
import { Profile } from '../../dist/profile/profile';
import { makeBatch, type SampleSpec } from './batches';

export const FIXED_TARGET = {
  pid: 4242,
  rubyVersion: '3.1.2',
  layoutVersion: '3.1.0',
  layoutVerified: true,
  rubyBinary: '/usr/lib/x86_64-linux-gnu/libruby-3.1.so.3.1.2',
};

/** 2023-11-14T22:13:20Z. */
export const FIXED_START_TIME_MS = 1_700_000_000_000;
export const FIXED_RATE_HZ = 100;

const MAIN = 0;
const RUN = 1;
const ALPHA = 2;
const BETA = 3;
const FIB = 4;
const TIMES = 5;
const COMPARE = 6;
const SLEEP = 7;

const FUNCTIONS: Array<[number, string, string]> = [
  [MAIN, '<main>', '/app/main.rb'],
  [RUN, 'block in Worker#run', '/app/lib/worker.rb'],
  [ALPHA, 'Object#alpha', '/app/lib/work.rb'],
  [BETA, 'Object#beta', '/app/lib/work.rb'],
  [FIB, 'Object#fib', '/app/lib/fib.rb'],
  [TIMES, 'Integer#times', 'unknown'],
  [COMPARE, 'Version#<=>', '/app/lib/version & more.rb'],
  [SLEEP, 'Kernel#sleep', 'unknown'],
];

const C_FUNCTIONS = new Set([TIMES, SLEEP]);

/** Each spec is `count` equal samples. */
const SAMPLES: Array<SampleSpec & { count: number }> = [
  // The main thread: alpha on two lines, beta under a C loop.
  { stack: [MAIN, ALPHA], lines: [3, 10], count: 6 },
  { stack: [MAIN, ALPHA], lines: [3, 11], count: 3 },
  { stack: [MAIN, TIMES, BETA], lines: [4, 0, 20], count: 4 },
  { stack: [MAIN, BETA], lines: [5, 21], count: 1 },
  // Recursion: fib calls itself from line 31.
  { stack: [MAIN, FIB, FIB, FIB], lines: [6, 31, 31, 30], count: 2 },
  { stack: [MAIN, FIB, FIB], lines: [6, 31, 30], count: 1 },
  { stack: [MAIN, COMPARE], lines: [7, 40], count: 1 },
  // The worker thread, named, which also waits and sleeps.
  { thread: 1, stack: [RUN, ALPHA], lines: [12, 10], count: 2 },
  { thread: 1, stack: [RUN, BETA], lines: [13, 20], count: 1 },
  { thread: 1, state: 1, stack: [RUN, ALPHA], lines: [12, 10], count: 2 },
  { thread: 1, state: 2, stack: [RUN, SLEEP], lines: [14, 0], count: 3 },
];

/** Thread-samples of `fixedProfile()` in the running state. */
export const FIXED_RUNNING_SAMPLES = 21;
/** Thread-samples of `fixedProfile()` in every state. */
export const FIXED_ALL_SAMPLES = 26;

/** Builds the fixed profile. */
export function fixedProfile(): Profile {
  const samples: SampleSpec[] = [];
  for (const { count, ...spec } of SAMPLES) {
    for (let i = 0; i < count; i++) {
      samples.push(spec);
    }
  }
  const batch = makeBatch({
    functions: FUNCTIONS,
    threads: [[0], [1, 'worker']],
    samples,
  });
  const functions = batch.functions.map((fn) =>
    C_FUNCTIONS.has(fn.id) ? { ...fn, kind: 'cfunc' } : fn,
  );
  // The main thread's tid is the pid, as on Linux.
  const threads = batch.threads.map((thread) => ({
    ...thread,
    pid: FIXED_TARGET.pid,
    tid: FIXED_TARGET.pid + 8 * thread.id,
  }));
  const data = new ProfileData();
  data.add({ ...batch, functions, threads });
  return new Profile({
    target: FIXED_TARGET,
    data,
    stats: data.stats,
    durationSeconds: 2.5,
    rateHz: FIXED_RATE_HZ,
    startTimeMs: FIXED_START_TIME_MS,
  });
}
