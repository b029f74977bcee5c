import test from 'ava';

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

function profileOf(...specs: BatchSpec[]): Profile {
  const data = new ProfileData();
  for (const spec of specs) {
    data.add(makeBatch(spec));
  }
  return new Profile({
    target: TARGET,
    data,
    sampleCount: data.sampleCount,
    stats: data.stats,
    durationSeconds: 1,
  });
}

function rowOf(rows: SummaryRow[], name: string): SummaryRow | undefined {
  return rows.find((row) => row.function.name === name);
}

const FUNCTIONS: Array<[number, string]> = [
  [0, '<main>'],
  [1, 'Object#fib'],
  [2, 'Object#other'],
  [3, 'Object#leaf'],
];

test('recursive function counts once in total', (t) => {
  const profile = profileOf({
    functions: FUNCTIONS,
    samples: [
      { stack: [0, 1, 1, 1] },
      { stack: [0, 1, 1] },
      { stack: [0, 1, 1, 1, 1, 1] },
      { stack: [0, 2] },
    ],
  });
  const rows = profile.rows();
  const fib = rowOf(rows, 'Object#fib');
  t.is(fib?.totalSamples, 3);
  t.is(fib?.totalPercent, 75);
  t.is(fib?.selfSamples, 3);
  t.is(rowOf(rows, '<main>')?.totalPercent, 100);
  t.is(rowOf(rows, 'Object#other')?.totalPercent, 25);
});

test('mutual recursion counts once', (t) => {
  const profile = profileOf({
    functions: FUNCTIONS,
    samples: [{ stack: [0, 1, 2, 1, 2, 1] }, { stack: [0, 2, 1, 2] }],
  });
  const rows = profile.rows();
  t.is(rowOf(rows, 'Object#fib')?.totalSamples, 2);
  t.is(rowOf(rows, 'Object#other')?.totalSamples, 2);
  t.is(rowOf(rows, 'Object#fib')?.selfSamples, 1);
  t.is(rowOf(rows, 'Object#other')?.selfSamples, 1);
});

test('self counts only the leaf', (t) => {
  const profile = profileOf({
    functions: FUNCTIONS,
    samples: [
      { stack: [0, 2, 3] },
      { stack: [0, 2, 3] },
      { stack: [0, 2] },
      { stack: [0, 2] },
    ],
  });
  const rows = profile.rows();
  t.is(rowOf(rows, 'Object#leaf')?.selfPercent, 50);
  t.is(rowOf(rows, 'Object#leaf')?.totalPercent, 50);
  t.is(rowOf(rows, 'Object#other')?.selfPercent, 50);
  t.is(rowOf(rows, 'Object#other')?.totalPercent, 100);
  t.is(rowOf(rows, '<main>')?.selfPercent, 0);
  t.is(rowOf(rows, '<main>')?.totalPercent, 100);
});

test('lines do not split a function row', (t) => {
  const profile = profileOf({
    functions: FUNCTIONS,
    samples: [
      { stack: [0, 3], lines: [1, 10] },
      { stack: [0, 3], lines: [1, 11] },
      { stack: [0, 3], lines: [2, 12] },
    ],
  });
  const rows = profile.rows();
  t.is(rows.length, 2);
  t.is(rowOf(rows, 'Object#leaf')?.selfSamples, 3);
  t.is(rowOf(rows, '<main>')?.totalSamples, 3);
});

test('only running samples count by default', (t) => {
  const profile = profileOf({
    functions: FUNCTIONS,
    samples: [
      { stack: [0, 2] },
      { stack: [0, 2] },
      { stack: [0, 2] },
      { stack: [0, 3], state: 2 },
      { stack: [0, 3], state: 1 },
    ],
  });
  const running = profile.rows();
  t.is(rowOf(running, 'Object#other')?.selfPercent, 100);
  t.is(rowOf(running, 'Object#leaf'), undefined);

  const all = profile.rows({ states: ['running', 'waiting_gvl', 'blocked'] });
  t.is(rowOf(all, 'Object#other')?.selfPercent, 60);
  t.is(rowOf(all, 'Object#leaf')?.selfPercent, 40);
});

test('rows sort by self, total, then name', (t) => {
  const profile = profileOf({
    functions: [
      [0, 'A#root'],
      [1, 'B#zeta'],
      [2, 'C#alpha'],
      [3, 'D#mid'],
      [4, 'E#hot'],
    ],
    samples: [
      { stack: [0, 3, 1] },
      { stack: [0, 3, 2] },
      { stack: [0, 4] },
      { stack: [0, 4] },
    ],
  });
  const names = profile.rows().map((row) => row.function.name);
  t.deepEqual(names, ['E#hot', 'B#zeta', 'C#alpha', 'A#root', 'D#mid']);
});

test('same name and path share a row', (t) => {
  const profile = profileOf(
    {
      functions: [
        [0, '<main>'],
        [1, 'Foo#bar', '/app/foo.rb'],
      ],
      samples: [{ stack: [0, 1] }],
    },
    {
      functions: [
        [2, 'Foo#bar', '/app/foo.rb'],
        [3, 'Foo#bar', '/app/other.rb'],
      ],
      samples: [{ stack: [0, 2, 1] }, { stack: [0, 3] }],
    },
  );
  const rows = profile.rows().filter((row) => row.function.name === 'Foo#bar');
  t.is(rows.length, 2);
  const foo = rows.find((row) => row.function.path === '/app/foo.rb');
  t.is(foo?.totalSamples, 2);
  t.is(foo?.selfSamples, 2);
  t.is(profile.functions.length, 3);
});

test('stacks keep thread, state and frames', (t) => {
  const profile = profileOf({
    functions: FUNCTIONS,
    threads: [[0, 'main'], [1]],
    samples: [
      { thread: 0, stack: [0, 3], lines: [5, 9], timeNs: 1000 },
      { thread: 1, state: 2, stack: [0, 2], lines: [6, 7], timeNs: 2000 },
      { thread: 0, stack: [0, 3], lines: [5, 9], timeNs: 3000 },
    ],
  });
  const stacks = [...profile.stacks()];
  t.is(stacks.length, 2);
  t.is(stacks[0].thread.name, 'main');
  t.is(stacks[0].state, 'running');
  t.is(stacks[0].count, 2);
  t.deepEqual(
    stacks[0].frames.map((frame) => [frame.function.name, frame.line]),
    [
      ['<main>', 5],
      ['Object#leaf', 9],
    ],
  );
  t.is(stacks[1].thread.name, undefined);
  t.is(stacks[1].thread.tid, 101);
  t.is(stacks[1].state, 'blocked');
  t.is(stacks[1].count, 1);
  t.is(profile.threads.length, 2);
  t.is(profile.sampleCount, 3);
});

test('profile ignores samples added after it', (t) => {
  const data = new ProfileData();
  data.add(makeBatch({ functions: FUNCTIONS, samples: [{ stack: [0, 2] }] }));
  const early = new Profile({
    target: TARGET,
    data,
    sampleCount: data.sampleCount,
    stats: data.stats,
    durationSeconds: 1,
  });
  data.add(makeBatch({ samples: [{ stack: [0, 3] }, { stack: [0, 3] }] }));
  t.is(early.sampleCount, 1);
  t.is(rowOf(early.rows(), 'Object#other')?.selfPercent, 100);
  t.is(rowOf(early.rows(), 'Object#leaf'), undefined);
  t.is([...early.stacks()].length, 1);
});

test('no counted samples give no rows', (t) => {
  const profile = profileOf({
    functions: FUNCTIONS,
    samples: [{ stack: [0], state: 2 }],
  });
  t.deepEqual(profile.rows(), []);
  t.is(profile.toSummary(), '% self  % total  name\n');
});

test('stats come from the last batch', (t) => {
  const profile = profileOf(
    { stats: { taken: 5, late: 1, failed: 0, threadSamples: 5 } },
    {
      stats: { taken: 9, late: 2, failed: 1, threadSamples: 8 },
      warnings: ['slow read'],
    },
  );
  t.is(profile.stats.taken, 9);
  t.is(profile.stats.late, 2);
  t.is(profile.stats.failed, 1);
  t.is(profile.stats.threadSamples, 8);
  t.is(profile.stats.durationSeconds, 1);
  t.deepEqual(profile.warnings, ['slow read']);
});

test('summary of a profile', (t) => {
  const profile = profileOf({
    functions: [
      [0, '<main>', '/app/main.rb'],
      [1, 'Object#fib', '/app/fib.rb'],
    ],
    samples: [{ stack: [0, 1, 1] }, { stack: [0, 1] }, { stack: [0] }],
  });
  t.is(
    profile.toSummary(),
    [
      '% self  % total  name',
      ' 66.67    66.67  Object#fib - /app/fib.rb',
      ' 33.33   100.00  <main> - /app/main.rb',
      '',
    ].join('\n'),
  );
});
