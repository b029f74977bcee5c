import test from 'ava';

import { formatSummary } from 'rbprof';
import type { SummaryRow } from 'rbprof';

function row(
  name: string,
  path: string,
  self: number,
  total: number,
): SummaryRow {
  return {
    function: { id: 0, name, path, kind: 'ruby' },
    selfSamples: self,
    totalSamples: total,
    selfPercent: self,
    totalPercent: total,
  };
}

const ROWS = [
  row(
    'HelloworldController#fibonacci',
    '/app/app/controllers/helloworld_controller.rb',
    29.44,
    29.44,
  ),
  row(
    'block in Puma::ThreadPool#spawn_thread',
    '/usr/local/bundle/gems/puma-5.6.5/lib/puma/thread_pool.rb',
    0,
    67.89,
  ),
  row('<main>', '/app/config.ru', 0, 100),
];

test('summary matches the usual table', (t) => {
  t.is(
    formatSummary(ROWS),
    [
      '% self  % total  name',
      ' 29.44    29.44  HelloworldController#fibonacci - /app/app/controllers/helloworld_controller.rb',
      '  0.00    67.89  block in Puma::ThreadPool#spawn_thread - /usr/local/bundle/gems/puma-5.6.5/lib/puma/thread_pool.rb',
      '  0.00   100.00  <main> - /app/config.ru',
      '',
    ].join('\n'),
  );
});

test('summary rounds to two decimals', (t) => {
  const text = formatSummary([
    row('A#b', '/a.rb', 100, 100),
    row('C#d', '/c.rb', 1 / 3, 2 / 3),
  ]);
  const lines = text.split('\n');
  t.is(lines[1], '100.00   100.00  A#b - /a.rb');
  t.is(lines[2], '  0.33     0.67  C#d - /c.rb');
});

test('summary keeps the top rows', (t) => {
  const lines = formatSummary(ROWS, { top: 1 }).trimEnd().split('\n');
  t.is(lines.length, 2);
  t.true(lines[1].includes('HelloworldController#fibonacci'));
});

test('summary cuts lines to the width', (t) => {
  const lines = formatSummary(ROWS, { width: 30 }).trimEnd().split('\n');
  t.is(lines.length, 4);
  for (const line of lines) {
    t.true(line.length <= 30, line);
  }
  t.is(lines[0], '% self  % total  name');
  t.is(lines[1], ' 29.44    29.44  HelloworldCon');
});

test('summary of no rows is the header', (t) => {
  t.is(formatSummary([]), '% self  % total  name\n');
});
