// `rbprof record` against real Ruby processes. Each test starts its own
// workload and kills it at the end.

import test from 'ava';

import { parseSummary, runCli, startWorkload } from './helpers/processes';

const HEADER = '% self  % total  name';

test.serial('known split shows in % total', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  // Each tick falls at a random point of its period, so the shares spread
  // like a binomial: about 2000 samples keep alpha's standard deviation
  // near one point, well inside the five allowed.
  const result = await runCli(t, [
    'record',
    '--pid',
    String(workload.pid),
    '--rate',
    '499',
    '--duration',
    '4',
  ]);
  t.is(result.code, 0, result.stderr);
  t.true(result.stdout.startsWith(`${HEADER}\n`), result.stdout);

  const rows = parseSummary(result.stdout);
  const expected: Array<[string, number]> = [
    ['Object#alpha', 60],
    ['Object#beta', 30],
    ['Object#gamma', 10],
  ];
  for (const [name, share] of expected) {
    const row = rows.find((r) => r.name === name);
    t.truthy(row, `${name} is missing from\n${result.stdout}`);
    const total = row?.total ?? Number.NaN;
    t.true(
      Math.abs(total - share) <= 5,
      `${name}: ${total}% total, expected ${share} ± 5`,
    );
  }
  // Everything runs under schedule except the main loop's condition,
  // which a sample catches now and then.
  const schedule = rows.find((r) => r.name === 'Object#schedule')?.total ?? 0;
  t.true(schedule >= 99, `Object#schedule: ${schedule}% total`);
  t.regex(result.stderr, /^Samples: \d+ taken, \d+ late, \d+ failed/m);
});

test.serial('duration makes the CLI exit', async (t) => {
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(
    t,
    ['record', '--pid', String(workload.pid), '--duration', '1', '--silent'],
    {
      timeoutMs: 30_000,
    },
  );
  // A handle left open would keep Node running until the timeout kills it.
  t.is(result.signal, null);
  t.is(result.code, 0, result.stderr);
  t.is(result.stdout, '');
  t.regex(result.stderr, /^Samples: \d+ taken/m);
});

test.serial('target exit ends the recording', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb', ['3']);
  const result = await runCli(t, ['record', '--pid', String(workload.pid)]);
  t.is(result.code, 0, result.stderr);
  t.true(result.stdout.startsWith(`${HEADER}\n`), result.stdout);
  t.truthy(
    parseSummary(result.stdout).find((r) => r.name === 'Object#alpha'),
    result.stdout,
  );
  t.true(
    result.stderr.includes(`Process ${workload.pid} ended`),
    result.stderr,
  );
  t.false(result.stderr.includes('rbprof: '), result.stderr);
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test.serial(`${signal} stops and prints the summary`, async (t) => {
    const workload = await startWorkload(t, 'known_split.rb');
    const result = await runCli(t, ['record', '--pid', String(workload.pid)], {
      onStderr: {
        text: 'Recording process',
        then: (child) => setTimeout(() => child.kill(signal), 500),
      },
    });
    t.is(result.signal, null);
    t.is(result.code, 0, result.stderr);
    t.true(result.stdout.startsWith(`${HEADER}\n`), result.stdout);
    t.regex(result.stderr, /^Samples: \d+ taken/m);
    // The target keeps running after rbprof stops.
    t.is(workload.child.exitCode, null);
  });
}
