// Failures of `rbprof record`: each prints `rbprof: <message>` and a hint
// on stderr, nothing on stdout, and exits with its own code.

import { accessSync, constants } from 'node:fs';

import test from 'ava';

import { EXIT_CODES } from '../dist/cli/errors';
import {
  CLI,
  ROOT,
  runCli,
  spawnGuarded,
  startWorkload,
} from './helpers/processes';

/** Above Linux's PID_MAX_LIMIT (2^22 on 64-bit, include/linux/threads.h),
 * so no process can have it. */
const MISSING_PID = String(2 ** 22 + 1);

test('no such process', async (t) => {
  const result = await runCli(t, ['record', '--pid', MISSING_PID]);
  t.is(result.code, EXIT_CODES.noSuchProcess);
  t.is(result.stdout, '');
  t.true(
    result.stderr.startsWith(`rbprof: no process with pid ${MISSING_PID}\n`),
    result.stderr,
  );
  t.true(result.stderr.includes('ps aux'), result.stderr);
});

test('process that is not Ruby', async (t) => {
  const sleeper = spawnGuarded(t, 'sleep', ['100']);
  const result = await runCli(t, ['record', '--pid', String(sleeper.pid)]);
  t.is(result.code, EXIT_CODES.notRuby);
  t.is(result.stdout, '');
  t.true(
    result.stderr.startsWith(
      `rbprof: process ${sleeper.pid} is not a Ruby process`,
    ),
    result.stderr,
  );
  t.true(result.stderr.includes('--pid'), result.stderr);
});

test('unsupported Ruby version', async (t) => {
  const workload = await startWorkload(t, 'known_split.rb');
  const result = await runCli(t, [
    'record',
    '--pid',
    String(workload.pid),
    '--force-version',
    '1.0.0',
  ]);
  t.is(result.code, EXIT_CODES.unsupportedVersion);
  t.is(result.stdout, '');
  t.true(result.stderr.startsWith('rbprof: '), result.stderr);
  t.true(result.stderr.includes('1.0.0'), result.stderr);
  t.regex(result.stderr, /supported: .*3\.1/);
  t.true(result.stderr.includes('--force-version X.Y.Z'), result.stderr);
});

const asRoot = process.getuid?.() === 0 ? test : test.skip;

asRoot('permission denied for another user', async (t) => {
  const nobody = [
    'setpriv',
    '--reuid=65534',
    '--regid=65534',
    '--clear-groups',
  ];
  const workload = await startWorkload(t, 'known_split.rb');

  // The unprivileged user must be able to run the CLI at all, or the test
  // would report a different failure.
  const check = await runCli(t, ['--version'], { prefix: nobody });
  t.is(
    check.code,
    0,
    `uid 65534 cannot run ${CLI} (is ${ROOT} readable by all?): ${check.stderr}`,
  );
  accessSync(CLI, constants.R_OK);

  const result = await runCli(t, ['record', '--pid', String(workload.pid)], {
    prefix: nobody,
  });
  t.is(result.code, EXIT_CODES.permissionDenied);
  t.is(result.stdout, '');
  t.true(result.stderr.startsWith('rbprof: permission denied'), result.stderr);
  t.true(result.stderr.includes('SYS_PTRACE'), result.stderr);
});

const BAD_FLAGS: Array<[string, string[], RegExp]> = [
  ['non-numeric pid', ['--pid', 'abc'], /--pid/],
  ['zero pid', ['--pid', '0'], /--pid/],
  ['zero rate', ['--pid', '1', '--rate', '0'], /--rate/],
  ['negative rate', ['--pid', '1', '--rate', '-5'], /--rate/],
  ['absurd rate', ['--pid', '1', '--rate', '1000000'], /rate 1000000 Hz/],
  ['negative duration', ['--pid', '1', '--duration', '-1'], /--duration/],
  ['zero top', ['--pid', '1', '--top', '0'], /--top/],
  [
    'short version',
    ['--pid', '1', '--force-version', '3.1'],
    /--force-version/,
  ],
  ['missing pid', [], /--pid/],
];

for (const [name, flags, mention] of BAD_FLAGS) {
  test(`bad flags: ${name}`, async (t) => {
    const result = await runCli(t, ['record', ...flags]);
    t.is(result.code, EXIT_CODES.usage, result.stderr);
    t.is(result.stdout, '');
    t.true(result.stderr.startsWith('rbprof: '), result.stderr);
    t.regex(result.stderr, mention);
  });
}

test('unknown command', async (t) => {
  const result = await runCli(t, ['profile', '--pid', '1']);
  t.is(result.code, EXIT_CODES.usage);
  t.true(
    result.stderr.startsWith("rbprof: unknown command 'profile'"),
    result.stderr,
  );
});

test('no command shows the help', async (t) => {
  const result = await runCli(t, []);
  t.is(result.code, EXIT_CODES.usage);
  t.true(result.stderr.includes('Usage: rbprof'), result.stderr);
});
