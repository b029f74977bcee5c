// Views of one profile by thread and by process, and the sample counts
// that their percentages are shares of.

import test from 'ava';

import { InvalidArgumentError } from 'rbprof';
import { ProfileData } from '../dist/profile/data';
import { Profile } from '../dist/profile/profile';
import type { SummaryRow } from '../dist/profile/rows';
import { makeBatch, type BatchSpec } from './helpers/batches';

const TARGET = {
  pid: 100,
  rubyVersion: '3.1.2',
  layoutVersion: '3.1.0',
  layoutVerified: true,
  rubyBinary: '/usr/bin/ruby',
};

const FUNCTIONS: Array<[number, string]> = [
  [0, '<main>'],
  [1, 'Object#alpha'],
  [2, 'Object#beta'],
  [3, 'Kernel#sleep'],
];

/**
 * Thread 0 (main): 3 running samples in alpha, 1 in beta.
 * Thread 1 (worker): 1 running sample in beta, 2 blocked in sleep.
 * Thread 2 (other): 2 running samples in alpha, in process 200.
 */
const SPEC: BatchSpec = {
  functions: FUNCTIONS,
  threads: [
    [0, 'main'],
    [1, 'worker'],
    [2, 'other'],
  ],
  samples: [
    { thread: 0, stack: [0, 1] },
    { thread: 0, stack: [0, 1] },
    { thread: 0, stack: [0, 1] },
    { thread: 0, stack: [0, 2] },
    { thread: 1, stack: [0, 2] },
    { thread: 1, state: 2, stack: [0, 3] },
    { thread: 1, state: 2, stack: [0, 3] },
    { thread: 2, stack: [0, 1] },
    { thread: 2, stack: [0, 1] },
  ],
};

/** Builds the profile of `SPEC`, with thread 2 moved to process 200. */
function viewsProfile(): Profile {
  const batch = makeBatch(SPEC);
  const threads = batch.threads.map((thread) =>
    thread.id === 2 ? { ...thread, pid: 200 } : thread,
  );
  const data = new ProfileData();
  data.add({ ...batch, threads });
  return new Profile({
    target: TARGET,
    data,
    stats: data.stats,
    durationSeconds: 1,
  });
}

function percentOf(rows: SummaryRow[], name: string): number | undefined {
  return rows.find((row) => row.function.name === name)?.selfPercent;
}

test('thread filter counts one thread', (t) => {
  const profile = viewsProfile();
  const rows = profile.rows({ thread: 0 });
  t.is(profile.countSamples({ thread: 0 }), 4);
  t.is(percentOf(rows, 'Object#alpha'), 75);
  t.is(percentOf(rows, 'Object#beta'), 25);
  t.is(rows.find((row) => row.function.name === '<main>')?.totalPercent, 100);
});

test('pid filter counts its threads', (t) => {
  const profile = viewsProfile();
  t.is(profile.countSamples({ pid: 100 }), 5);
  t.is(profile.countSamples({ pid: 200 }), 2);
  t.is(percentOf(profile.rows({ pid: 200 }), 'Object#alpha'), 100);
  t.is(percentOf(profile.rows({ pid: 100 }), 'Object#beta'), 40);
});

test('thread and pid filters combine', (t) => {
  const profile = viewsProfile();
  t.is(profile.countSamples({ thread: 2, pid: 200 }), 2);
  t.is(profile.countSamples({ thread: 2, pid: 100 }), 0);
  t.deepEqual(profile.rows({ thread: 2, pid: 100 }), []);
});

test('countSamples is the base of rows', (t) => {
  const profile = viewsProfile();
  t.is(profile.sampleCount, 9);
  t.is(profile.countSamples(), 7);
  const all = ['running', 'waiting_gvl', 'blocked'] as const;
  t.is(profile.countSamples({ states: all }), 9);
  for (const options of [{}, { states: all }, { thread: 1 }, { pid: 100 }]) {
    const rows = profile.rows(options);
    const self = rows.reduce((sum, row) => sum + row.selfSamples, 0);
    t.is(self, profile.countSamples(options), JSON.stringify(options));
  }
});

test('byThread splits rows per thread', (t) => {
  const views = viewsProfile().byThread();
  t.deepEqual(
    views.map((view) => [view.thread.name, view.sampleCount]),
    [
      ['main', 4],
      ['other', 2],
      ['worker', 1],
    ],
  );
  t.is(percentOf(views[0].rows, 'Object#alpha'), 75);
  t.is(percentOf(views[1].rows, 'Object#alpha'), 100);
  t.is(percentOf(views[2].rows, 'Object#beta'), 100);
  t.is(percentOf(views[2].rows, 'Kernel#sleep'), undefined);
});

test('byThread counts the chosen states', (t) => {
  const views = viewsProfile().byThread({ states: ['blocked'] });
  t.is(views.length, 1);
  t.is(views[0].thread.name, 'worker');
  t.is(views[0].sampleCount, 2);
  t.is(percentOf(views[0].rows, 'Kernel#sleep'), 100);
});

test('byThread keeps rows by line', (t) => {
  const views = viewsProfile().byThread({ by: 'line', thread: 0 });
  t.is(views.length, 1);
  t.true(views[0].rows.every((row) => row.line === 1));
});

test('byProcess groups threads by pid', (t) => {
  const views = viewsProfile().byProcess();
  t.deepEqual(
    views.map((view) => [
      view.pid,
      view.sampleCount,
      view.threads.map((thread) => thread.name),
    ]),
    [
      [100, 5, ['main', 'worker']],
      [200, 2, ['other']],
    ],
  );
  t.is(percentOf(views[0].rows, 'Object#alpha'), 60);
  t.is(percentOf(views[0].rows, 'Object#beta'), 40);
  t.is(percentOf(views[1].rows, 'Object#alpha'), 100);
});

test('unknown thread has no rows', (t) => {
  const profile = viewsProfile();
  t.deepEqual(profile.rows({ thread: 99 }), []);
  t.is(profile.countSamples({ thread: 99 }), 0);
  t.deepEqual(profile.byThread({ thread: 99 }), []);
  t.deepEqual(profile.byProcess({ pid: 99 }), []);
});

test('summary takes a thread filter', (t) => {
  const summary = viewsProfile().toSummary({ thread: 1 });
  t.is(
    summary,
    [
      '% self  % total  name',
      '100.00   100.00  Object#beta - /app/app.rb',
      '  0.00   100.00  <main> - /app/app.rb',
      '',
    ].join('\n'),
  );
});

test('invalid filters are rejected', (t) => {
  const profile = viewsProfile();
  for (const thread of [-1, 1.5, Number.NaN]) {
    const error = t.throws(() => profile.rows({ thread }), {
      instanceOf: InvalidArgumentError,
    });
    t.regex(error?.message ?? '', /^thread must be an integer from 0, got /);
  }
  t.throws(() => profile.countSamples({ pid: -5 }), {
    instanceOf: InvalidArgumentError,
    message: 'pid must be an integer from 0, got -5',
  });
});
