// ProfileBuilder: samples counted into a profile outside a recording must
// render as the recording's own profile does.

import test from 'ava';

import {
  InvalidArgumentError,
  ProfileBuilder,
  record,
  type FunctionInfo,
  type Profile,
  type Sample,
  type ThreadInfo,
} from 'rbprof';
import {
  FIXED_RATE_HZ,
  FIXED_START_TIME_MS,
  FIXED_TARGET,
  fixedProfile,
} from './helpers/fixed-profile';
import { startWorkload } from './helpers/processes';

/** Expands a profile's stack counts back into single samples, in the
 * order in which each stack first occurred. */
function samplesOf(profile: Profile): Sample[] {
  const samples: Sample[] = [];
  for (const stack of profile.stacks()) {
    for (let i = 0; i < stack.count; i++) {
      samples.push({
        timeNs: 0,
        thread: stack.thread,
        state: stack.state,
        frames: stack.frames,
      });
    }
  }
  return samples;
}

const TARGET = { ...FIXED_TARGET };

function fn(name: string): FunctionInfo {
  return { id: 0, name, path: '/app/a.rb', kind: 'ruby' };
}

function thread(tid: number): ThreadInfo {
  return { id: 0, pid: 7, tid };
}

test('builder renders fixed profile identically', (t) => {
  const fixed = fixedProfile();
  const builder = new ProfileBuilder({
    target: FIXED_TARGET,
    rateHz: FIXED_RATE_HZ,
    startTimeMs: FIXED_START_TIME_MS,
  });
  // Two calls, to check that functions and threads carry over.
  const samples = samplesOf(fixed);
  builder.add(samples.slice(0, 5));
  builder.add(samples.slice(5));
  const built = builder.profile({
    durationSeconds: fixed.stats.durationSeconds,
    stats: fixed.stats,
  });
  t.is(built.sampleCount, fixed.sampleCount);
  t.deepEqual(built.toPprof(), fixed.toPprof());
  t.is(built.toCollapsed(), fixed.toCollapsed());
  t.is(
    built.toCollapsed({ states: ['running', 'waiting_gvl', 'blocked'] }),
    fixed.toCollapsed({ states: ['running', 'waiting_gvl', 'blocked'] }),
  );
  t.is(built.toSummary({ by: 'line' }), fixed.toSummary({ by: 'line' }));
});

test('builder merges functions by name', (t) => {
  const builder = new ProfileBuilder({ target: TARGET });
  const main = thread(7);
  // Equal names and paths in separate objects, as two recordings send.
  builder.add([
    {
      timeNs: 1,
      thread: main,
      state: 'running',
      frames: [{ function: fn('a'), line: 1 }],
    },
    {
      timeNs: 2,
      thread: main,
      state: 'running',
      frames: [{ function: fn('a'), line: 1 }],
    },
  ]);
  const profile = builder.profile({ durationSeconds: 1 });
  t.is(profile.functions.length, 1);
  t.deepEqual(
    [...profile.stacks()].map((stack) => stack.count),
    [2],
  );
});

test('builder keeps thread objects apart', (t) => {
  const builder = new ProfileBuilder({ target: TARGET });
  const frames = [{ function: fn('a'), line: 1 }];
  builder.add([
    { timeNs: 1, thread: thread(8), state: 'running', frames },
    { timeNs: 2, thread: thread(8), state: 'running', frames },
  ]);
  const profile = builder.profile({ durationSeconds: 1 });
  t.is(profile.threads.length, 2);
  t.deepEqual(
    profile.threads.map((info) => [info.pid, info.tid]),
    [
      [7, 8],
      [7, 8],
    ],
  );
});

test('builder stats default to samples', (t) => {
  const builder = new ProfileBuilder({ target: TARGET, rateHz: 50 });
  const frames = [{ function: fn('a'), line: 1 }];
  const main = thread(7);
  builder.add([
    { timeNs: 1, thread: main, state: 'running', frames },
    { timeNs: 2, thread: main, state: 'blocked', frames },
  ]);
  builder.add([]);
  const profile = builder.profile({
    durationSeconds: 3,
    end: { reason: 'stopped' },
  });
  t.is(builder.sampleCount, 2);
  t.deepEqual(profile.stats, {
    taken: 0,
    late: 0,
    failed: 0,
    threadSamples: 2,
    durationSeconds: 3,
  });
  t.is(profile.rateHz, 50);
  t.is(profile.startTimeMs, undefined);
  t.is(profile.end?.reason, 'stopped');
  t.is(profile.countSamples(), 1);
});

test('builder profile ignores later samples', (t) => {
  const builder = new ProfileBuilder({ target: TARGET });
  const frames = [{ function: fn('a'), line: 1 }];
  const main = thread(7);
  builder.add([{ timeNs: 1, thread: main, state: 'running', frames }]);
  const first = builder.profile({ durationSeconds: 1 });
  builder.add([{ timeNs: 2, thread: main, state: 'running', frames }]);
  t.is(first.sampleCount, 1);
  t.is(builder.profile({ durationSeconds: 2 }).sampleCount, 2);
});

test('builder rejects invalid state', (t) => {
  const builder = new ProfileBuilder({ target: TARGET });
  const error = t.throws(
    () =>
      builder.add([
        {
          timeNs: 1,
          thread: thread(7),
          state: 'sleeping' as Sample['state'],
          frames: [],
        },
      ]),
    { instanceOf: InvalidArgumentError },
  );
  t.regex(error?.message ?? '', /"sleeping"/);
});

test('builder matches live recording', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  const recording = await record({ pid: workload.pid, durationSeconds: 1 });
  const builder = new ProfileBuilder({
    target: recording.target,
    rateHz: recording.rateHz,
    startTimeMs: recording.startTimeMs,
  });
  for await (const batch of recording.samples()) {
    builder.add(batch.samples);
  }
  const profile = await recording.done;
  t.true(profile.sampleCount > 0);
  const built = builder.profile({
    durationSeconds: profile.stats.durationSeconds,
    stats: profile.stats,
  });
  t.is(built.sampleCount, profile.sampleCount);
  t.is(built.toCollapsed(), profile.toCollapsed());
  t.deepEqual(built.toPprof(), profile.toPprof());
});
