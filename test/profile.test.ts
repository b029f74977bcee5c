import test from 'ava';

import { ProfileData, THREAD_STATES } from '../dist/profile/data';
import { Profile } from '../dist/profile/profile';
import type { SummaryRow } from '../dist/profile/rows';
import { makeBatch, type BatchSpec, type SampleSpec } from './helpers/batches';

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
  return profileFrom(data);
}

function profileFrom(data: ProfileData): Profile {
  return new Profile({
    target: TARGET,
    data,
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

test('stacks split by thread, state and line', (t) => {
  const profile = profileOf({
    functions: FUNCTIONS,
    threads: [[0], [1]],
    samples: [
      { thread: 0, stack: [0, 3] },
      { thread: 1, stack: [0, 3] },
      { thread: 0, state: 1, stack: [0, 3] },
      { thread: 0, stack: [0, 3], lines: [1, 2] },
      { thread: 0, stack: [0, 3] },
    ],
  });
  const counts = [...profile.stacks()].map((stack) => [
    stack.thread.id,
    stack.state,
    stack.frames[1].line,
    stack.count,
  ]);
  t.deepEqual(counts, [
    [0, 'running', 1, 2],
    [1, 'running', 1, 1],
    [0, 'waiting_gvl', 1, 1],
    [0, 'running', 2, 1],
  ]);
});

test('profile ignores samples added after it', (t) => {
  const data = new ProfileData();
  data.add(makeBatch({ functions: FUNCTIONS, samples: [{ stack: [0, 2] }] }));
  const early = profileFrom(data);
  data.add(makeBatch({ samples: [{ stack: [0, 3] }, { stack: [0, 3] }] }));
  t.is(early.sampleCount, 1);
  t.is(rowOf(early.rows(), 'Object#other')?.selfPercent, 100);
  t.is(rowOf(early.rows(), 'Object#leaf'), undefined);
  t.is([...early.stacks()].length, 1);
});

test('snapshot keeps counts of known stacks', (t) => {
  const data = new ProfileData();
  data.add(
    makeBatch({
      functions: FUNCTIONS.slice(0, 3),
      threads: [[0, 'main']],
      samples: [{ stack: [0, 1] }, { stack: [0, 2] }, { stack: [0, 2] }],
      warnings: ['first'],
    }),
  );
  const early = profileFrom(data);
  const rowsBefore = early.rows();
  const stacksBefore = [...early.stacks()];

  // More samples of the stacks the snapshot already counts, then new
  // functions, threads, stacks and warnings.
  data.add(
    makeBatch({
      samples: [{ stack: [0, 1] }, { stack: [0, 1] }, { stack: [0, 2] }],
    }),
  );
  data.add(
    makeBatch({
      functions: [FUNCTIONS[3]],
      threads: [[1, 'worker']],
      samples: [
        { thread: 1, stack: [0, 3] },
        { stack: [0, 1], state: 1 },
      ],
      warnings: ['second'],
    }),
  );

  t.is(data.sampleCount, 8);
  t.is(early.sampleCount, 3);
  t.deepEqual(early.rows(), rowsBefore);
  t.deepEqual(
    early.rows({ states: ['running', 'waiting_gvl', 'blocked'] }),
    rowsBefore,
  );
  t.deepEqual([...early.stacks()], stacksBefore);
  t.deepEqual(
    [...early.stacks()].map((stack) => stack.count),
    [1, 2],
  );
  t.deepEqual(
    early.functions.map((fn) => fn.name),
    ['<main>', 'Object#fib', 'Object#other'],
  );
  t.deepEqual(
    early.threads.map((thread) => thread.name),
    ['main'],
  );
  t.deepEqual(early.warnings, ['first']);

  const late = profileFrom(data);
  t.is(late.sampleCount, 8);
  t.is(rowOf(late.rows(), 'Object#fib')?.selfSamples, 3);
  t.is(late.threads.length, 2);
  t.deepEqual(late.warnings, ['first', 'second']);
});

test('mismatched sampleCount is rejected', (t) => {
  const data = new ProfileData();
  data.add(makeBatch({ functions: FUNCTIONS, samples: [{ stack: [0, 2] }] }));
  const state = {
    target: TARGET,
    data,
    stats: data.stats,
    durationSeconds: 1,
  };
  t.throws(() => new Profile({ ...state, sampleCount: 0 }), {
    message: /sampleCount 0 differs from the 1 samples in data/,
  });
  t.is(new Profile({ ...state, sampleCount: 1 }).sampleCount, 1);
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

/** Returns a seeded generator of integers in `[0, n)` (mulberry32). */
function randomInts(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return Math.floor((((x ^ (x >>> 14)) >>> 0) / 2 ** 32) * n);
  };
}

test('aggregates grow with distinct stacks', (t) => {
  const stacks: Array<Pick<SampleSpec, 'stack' | 'lines'>> = [
    { stack: [0, 1, 2] },
    { stack: [0, 1, 2], lines: [1, 1, 7] },
    { stack: [0, 1, 3] },
    { stack: [0, 2] },
    { stack: [0, 1, 1, 1, 3] },
  ];
  const threadCount = 4;
  const random = randomInts(1);
  const data = new ProfileData();
  const expectedCounts = new Map<string, number>();
  const batchCount = 200;
  const batchSize = 1000;
  let entriesAtHalf = 0;
  let nodesAtHalf = 0;

  for (let b = 0; b < batchCount; b++) {
    const samples: SampleSpec[] = [];
    for (let i = 0; i < batchSize; i++) {
      const stack = random(stacks.length);
      const thread = random(threadCount);
      const state = random(THREAD_STATES.length);
      samples.push({ ...stacks[stack], thread, state });
      const key = `${stack}/${thread}/${state}`;
      expectedCounts.set(key, (expectedCounts.get(key) ?? 0) + 1);
    }
    data.add(
      makeBatch({
        functions: b === 0 ? FUNCTIONS : [],
        threads: b === 0 ? [[0], [1], [2], [3]] : [],
        samples,
      }),
    );
    if (b === batchCount / 2 - 1) {
      entriesAtHalf = data.entryCount;
      nodesAtHalf = data.stacks.size;
    }
  }

  // Nodes: the root and one per distinct (function, line) prefix.
  const prefixes = new Set<string>();
  for (const { stack, lines } of stacks) {
    for (let depth = 1; depth <= stack.length; depth++) {
      const frames = stack
        .slice(0, depth)
        .map((fn, i) => `${fn}:${lines?.[i] ?? 1}`);
      prefixes.add(frames.join(' '));
    }
  }
  const sampleTotal = batchCount * batchSize;
  t.is(data.sampleCount, sampleTotal);
  t.is(expectedCounts.size, stacks.length * threadCount * 3);
  t.is(data.entryCount, expectedCounts.size);
  t.is(entriesAtHalf, expectedCounts.size);
  t.is(data.stacks.size, prefixes.size + 1);
  t.is(nodesAtHalf, prefixes.size + 1);

  // No container of the data or its stack tree grows with the samples.
  // Properties declared `#private` are not visible to this check.
  for (const owner of [data, data.stacks]) {
    for (const [name, value] of Object.entries(owner)) {
      const size =
        value instanceof Map || value instanceof Set
          ? value.size
          : ArrayBuffer.isView(value) || Array.isArray(value)
            ? (value as ArrayLike<unknown>).length
            : 0;
      t.true(size < 1000, `${name} has ${size} elements`);
    }
  }

  const profile = profileFrom(data);
  let counted = 0;
  for (const entry of profile.stacks()) {
    counted += entry.count;
  }
  t.is(counted, sampleTotal);
  t.is([...profile.stacks()].length, expectedCounts.size);
  t.is(
    rowOf(profile.rows({ states: THREAD_STATES }), '<main>')?.totalSamples,
    sampleTotal,
  );
});

function compareText(a: string, b: string): number {
  if (a === b) {
    return 0;
  }
  return a < b ? -1 : 1;
}

interface ReferenceRow {
  name: string;
  path: string;
  selfSamples: number;
  totalSamples: number;
  selfPercent: number;
  totalPercent: number;
}

/**
 * Computes summary rows sample by sample, the way the profile did when it
 * kept every sample: self at the leaf, total once per sample for each
 * distinct function (name and path) on the stack.
 */
function referenceRows(
  samples: readonly SampleSpec[],
  functions: ReadonlyMap<number, [string, string]>,
  states: readonly number[],
): ReferenceRow[] {
  const keyOf = (id: number) => functions.get(id)!.join('\0');
  const selfByKey = new Map<string, number>();
  const totalByKey = new Map<string, number>();
  let counted = 0;
  for (const sample of samples) {
    if (!states.includes(sample.state ?? 0)) {
      continue;
    }
    counted++;
    const keys = sample.stack.map(keyOf);
    if (keys.length > 0) {
      const leaf = keys[keys.length - 1];
      selfByKey.set(leaf, (selfByKey.get(leaf) ?? 0) + 1);
    }
    for (const key of new Set(keys)) {
      totalByKey.set(key, (totalByKey.get(key) ?? 0) + 1);
    }
  }
  const rows: ReferenceRow[] = [];
  for (const [key, totalSamples] of totalByKey) {
    const [name, path] = key.split('\0');
    const selfSamples = selfByKey.get(key) ?? 0;
    rows.push({
      name,
      path,
      selfSamples,
      totalSamples,
      selfPercent: (100 * selfSamples) / counted,
      totalPercent: (100 * totalSamples) / counted,
    });
  }
  return rows.sort(
    (a, b) =>
      b.selfSamples - a.selfSamples ||
      b.totalSamples - a.totalSamples ||
      compareText(a.name, b.name) ||
      compareText(a.path, b.path),
  );
}

test('rows match per-sample reference', (t) => {
  // Id 7 repeats the name and path of id 2, so both count in one row.
  const functions: Array<[number, string, string]> = [
    [0, '<main>', '/app/main.rb'],
    [1, 'A#run', '/app/a.rb'],
    [2, 'B#step', '/app/b.rb'],
    [3, 'B#step', '/app/other_b.rb'],
    [4, 'C#loop', '/app/c.rb'],
    [5, 'Integer#times', 'unknown'],
    [6, 'block in C#loop', '/app/c.rb'],
    [7, 'B#step', '/app/b.rb'],
  ];
  const names = new Map(
    functions.map(([id, name, path]) => [id, [name, path] as [string, string]]),
  );
  const stateSets = [[0], [0, 1, 2], [2], [1, 2]];

  for (const seed of [1, 2, 3, 4, 5]) {
    const random = randomInts(seed);
    const data = new ProfileData();
    const all: SampleSpec[] = [];
    for (let b = 0; b < 10; b++) {
      const samples: SampleSpec[] = [];
      for (let i = 0; i < 300; i++) {
        const depth = random(9);
        const stack = [];
        const lines = [];
        for (let d = 0; d < depth; d++) {
          stack.push(random(functions.length));
          lines.push(1 + random(3));
        }
        samples.push({
          stack,
          lines,
          thread: random(3),
          state: random(THREAD_STATES.length),
        });
      }
      all.push(...samples);
      data.add(
        makeBatch({
          functions: b === 0 ? functions : [],
          threads: b === 0 ? [[0], [1], [2]] : [],
          samples,
        }),
      );
    }
    const profile = profileFrom(data);

    for (const states of stateSets) {
      const actual = profile
        .rows({ states: states.map((state) => THREAD_STATES[state]) })
        .map((row): ReferenceRow => ({
          name: row.function.name,
          path: row.function.path,
          selfSamples: row.selfSamples,
          totalSamples: row.totalSamples,
          selfPercent: row.selfPercent,
          totalPercent: row.totalPercent,
        }));
      t.deepEqual(
        actual,
        referenceRows(all, names, states),
        `seed ${seed}, states ${states.join(',')}`,
      );
    }
  }
});
