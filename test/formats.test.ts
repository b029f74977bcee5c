// The output formats on the fixed profile: what each must contain. The
// golden tests compare whole outputs; these name the facts behind them.

import test from 'ava';

import {
  formatInfo,
  isProfileFormat,
  PROFILE_FORMATS,
  renderProfile,
} from '../dist/formats';
import { collapsedLines } from '../dist/formats/collapsed';
import { ProfileData } from '../dist/profile/data';
import { Profile } from '../dist/profile/profile';
import type { SummaryRow } from '../dist/profile/rows';
import { makeBatch } from './helpers/batches';
import {
  FIXED_ALL_SAMPLES,
  FIXED_RUNNING_SAMPLES,
  FIXED_TARGET,
  fixedProfile,
} from './helpers/fixed-profile';

function lineRow(
  rows: SummaryRow[],
  name: string,
  line: number,
): SummaryRow | undefined {
  return rows.find((row) => row.function.name === name && row.line === line);
}

/** Sums the counts at the end of folded lines. */
function foldedTotal(lines: readonly string[]): number {
  return lines.reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
}

test('rows by line split a function', (t) => {
  const rows = fixedProfile().rows({ by: 'line' });
  t.is(lineRow(rows, 'Object#alpha', 10)?.selfSamples, 8);
  t.is(lineRow(rows, 'Object#alpha', 11)?.selfSamples, 3);
  t.is(lineRow(rows, 'Object#beta', 20)?.selfSamples, 5);
  t.is(lineRow(rows, 'Object#beta', 21)?.selfSamples, 1);
  t.is(lineRow(rows, '<main>', 3)?.totalSamples, 9);
  t.is(lineRow(rows, '<main>', 3)?.selfSamples, 0);
  t.is(rows[0].function.name, 'Object#alpha');
  t.is(rows[0].line, 10);
});

test('rows by line count recursion once', (t) => {
  const rows = fixedProfile().rows({ by: 'line' });
  // Line 31 calls fib again: it is twice on the stack in two samples.
  t.is(lineRow(rows, 'Object#fib', 31)?.totalSamples, 3);
  t.is(lineRow(rows, 'Object#fib', 31)?.selfSamples, 0);
  t.is(lineRow(rows, 'Object#fib', 30)?.totalSamples, 3);
  t.is(lineRow(rows, 'Object#fib', 30)?.selfSamples, 3);
});

test('rows by function have no line', (t) => {
  const rows = fixedProfile().rows();
  t.true(rows.every((row) => row.line === undefined));
  t.is(
    rows.find((row) => row.function.name === 'Object#alpha')?.selfSamples,
    11,
  );
});

test('summary by line prints path:line', (t) => {
  const text = fixedProfile().toSummary({ by: 'line', top: 2 });
  t.is(
    text,
    [
      '% self  % total  name',
      ' 38.10    38.10  Object#alpha - /app/lib/work.rb:10',
      ' 23.81    23.81  Object#beta - /app/lib/work.rb:20',
      '',
    ].join('\n'),
  );
});

test('collapsed merges threads and lines', (t) => {
  const lines = collapsedLines(fixedProfile().stacks());
  t.true(
    lines.includes('<main> - /app/main.rb;Object#alpha - /app/lib/work.rb 9'),
  );
  t.true(
    lines.includes(
      'block in Worker#run - /app/lib/worker.rb;Object#alpha - /app/lib/work.rb 2',
    ),
  );
  t.is(foldedTotal(lines), FIXED_RUNNING_SAMPLES);
  t.deepEqual(lines, lines.slice().sort());
});

test('collapsed with lines keeps them', (t) => {
  const lines = collapsedLines(fixedProfile().stacks(), { lines: true });
  t.true(
    lines.includes(
      '<main> - /app/main.rb:3;Object#alpha - /app/lib/work.rb:10 6',
    ),
  );
  t.true(
    lines.includes(
      '<main> - /app/main.rb:3;Object#alpha - /app/lib/work.rb:11 3',
    ),
  );
  t.is(foldedTotal(lines), FIXED_RUNNING_SAMPLES);
});

test('collapsed counts the chosen states', (t) => {
  const lines = collapsedLines(fixedProfile().stacks(), {
    states: ['running', 'waiting_gvl', 'blocked'],
  });
  t.is(foldedTotal(lines), FIXED_ALL_SAMPLES);
  t.true(
    lines.includes(
      'block in Worker#run - /app/lib/worker.rb;Kernel#sleep - unknown 3',
    ),
  );
});

test('collapsed replaces separators in names', (t) => {
  const data = new ProfileData();
  data.add(
    makeBatch({
      functions: [
        [0, '<main>', '/app/a;b.rb'],
        [1, 'Foo#odd\nname', '/app/c.rb'],
      ],
      samples: [{ stack: [0, 1] }],
    }),
  );
  const profile = new Profile({
    target: FIXED_TARGET,
    data,
    stats: data.stats,
    durationSeconds: 1,
  });
  t.is(
    profile.toCollapsed(),
    '<main> - /app/a:b.rb;Foo#odd name - /app/c.rb 1\n',
  );
});

test('registry lists every format', (t) => {
  t.is(PROFILE_FORMATS[0], 'summary');
  for (const format of PROFILE_FORMATS) {
    t.true(isProfileFormat(format), format);
    t.regex(formatInfo(format).extension, /^\./, format);
    const output = renderProfile(fixedProfile(), format);
    t.is(Buffer.isBuffer(output), formatInfo(format).binary, format);
    t.true(output.length > 0, format);
  }
});

test('registry rejects unknown formats', (t) => {
  t.false(isProfileFormat('html'));
  t.false(isProfileFormat('toString'));
  const error = t.throws(() => renderProfile(fixedProfile(), 'html' as never));
  t.is((error as { code?: string }).code, 'ERR_INVALID_ARGUMENT');
  t.regex(error.message, /unknown format "html"; use one of: summary, /);
});

test('registry passes options through', (t) => {
  const profile = fixedProfile();
  t.is(
    renderProfile(profile, 'summary-by-line', { top: 1 }),
    profile.toSummary({ by: 'line', top: 1 }),
  );
  t.is(
    renderProfile(profile, 'collapsed', { lines: true }),
    profile.toCollapsed({ lines: true }),
  );
});

test('flamegraph shows frames and search', (t) => {
  const svg = fixedProfile().toFlamegraphSvg();
  t.true(svg.startsWith('<?xml'));
  t.true(svg.includes('Object#alpha - /app/lib/work.rb'));
  t.true(svg.includes('block in Worker#run - /app/lib/worker.rb'));
  t.true(svg.includes('&lt;main&gt; - /app/main.rb'));
  t.true(svg.includes('Version#&lt;=&gt; - /app/lib/version &amp; more.rb'));
  t.true(svg.includes('id="search"'));
  t.true(svg.includes('Process 4242 (Ruby 3.1.2)'));
  t.true(svg.includes(`all (${FIXED_RUNNING_SAMPLES} samples, 100%)`));
});

test('flamegraph takes title and states', (t) => {
  const svg = fixedProfile().toFlamegraphSvg({
    title: 'Checkout <staging>',
    states: ['running', 'waiting_gvl', 'blocked'],
  });
  t.true(svg.includes('Checkout &lt;staging&gt;'));
  t.true(svg.includes(`all (${FIXED_ALL_SAMPLES} samples, 100%)`));
  t.true(svg.includes('Kernel#sleep - unknown'));
});

test('flamegraph of no samples', (t) => {
  const svg = fixedProfile().toFlamegraphSvg({ states: [] });
  t.true(svg.includes('No samples in this profile.'));
  t.true(svg.includes('Process 4242 (Ruby 3.1.2)'));
});

/** Builds a profile of three samples without a rate or start time. */
function profileWithoutRate(): Profile {
  const data = new ProfileData();
  data.add(
    makeBatch({
      functions: [
        [0, '<main>'],
        [1, 'Object#work'],
      ],
      threads: [[0]],
      samples: [{ stack: [0, 1] }, { stack: [0, 1] }, { stack: [0] }],
    }),
  );
  return new Profile({
    target: FIXED_TARGET,
    data,
    stats: data.stats,
    durationSeconds: 1,
  });
}

test('speedscope without rate counts samples', (t) => {
  const file = profileWithoutRate().toSpeedscope();
  t.is(file.profiles[0].unit, 'none');
  t.deepEqual(file.profiles[0].weights, [1, 2]);
  t.is(file.profiles[0].endValue, 3);
});

test('speedscope of no samples', (t) => {
  const file = fixedProfile().toSpeedscope({ states: [] });
  t.deepEqual(file.profiles, []);
  t.deepEqual(file.shared.frames, []);
  t.false('activeProfileIndex' in file);
});

test('callgrind without rate omits it', (t) => {
  const text = profileWithoutRate().toCallgrind();
  t.regex(text, /^desc: Ruby 3\.1\.2, sampled, thread states: running$/m);
  t.regex(text, /^totals: 3$/m);
});
