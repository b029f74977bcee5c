// `rbprof record -- COMMAND`: rbprof starts the command, profiles it and
// exits with its status. The child's stdout passes through, and the table
// goes to stderr.

import path from 'node:path';

import test from 'ava';

import { parseSummary, ROOT, RUBY, runCli } from './helpers/processes';

const workload = (name: string) => path.join(ROOT, 'test', 'workloads', name);

test.serial('launched program is profiled', async (t) => {
  const result = await runCli(t, [
    'record',
    '--no-raw',
    '--',
    RUBY,
    workload('known_split.rb'),
    '2',
  ]);
  t.is(result.code, 0, result.stderr);
  t.regex(result.stdout, /^ready \d+\n$/);
  t.false(result.stdout.includes('% self'), result.stdout);
  t.truthy(
    parseSummary(result.stderr).find((row) => row.name === 'Object#alpha'),
    result.stderr,
  );
});

test.serial('exit status passes through', async (t) => {
  const result = await runCli(t, [
    'record',
    '--no-raw',
    '--',
    RUBY,
    workload('exit_status.rb'),
    '3',
  ]);
  t.is(result.code, 3, result.stderr);
  t.regex(result.stdout, /^ready \d+\n$/);
});

test.serial('duration ends sampling, not child', async (t) => {
  const started = Date.now();
  const result = await runCli(t, [
    'record',
    '--no-raw',
    '--duration',
    '1',
    '--',
    RUBY,
    workload('exit_status.rb'),
    '5',
    '3',
  ]);
  const elapsedMs = Date.now() - started;
  t.is(result.code, 5, result.stderr);
  t.true(elapsedMs >= 2500, `rbprof exited after ${elapsedMs} ms`);
  const seconds = /in (\d+\.\d) s\)/.exec(result.stderr)?.[1];
  t.truthy(seconds, result.stderr);
  t.true(Number(seconds) < 2.5, `sampled for ${seconds} s`);
});

test.serial('missing command is an error', async (t) => {
  const result = await runCli(t, ['record', '--', 'rbprof-no-such-command']);
  t.is(result.code, 127);
  t.regex(result.stderr, /failed to start "rbprof-no-such-command"/);
});

test.serial('pid and command conflict', async (t) => {
  const result = await runCli(t, ['record', '--pid', '1', '--', RUBY]);
  t.is(result.code, 2);
  t.regex(result.stderr, /either --pid PID or a command/);
});

test.serial('SIGTERM is forwarded to child', async (t) => {
  const result = await runCli(
    t,
    ['record', '--no-raw', '--', RUBY, workload('known_split.rb')],
    {
      onStderr: {
        text: 'Recording process',
        then: (child) => child.kill('SIGTERM'),
      },
    },
  );
  t.is(result.signal, null);
  t.is(result.code, 143, result.stderr);
});

// sudo runs its command as root with the invoking user in SUDO_UID,
// SUDO_GID and SUDO_USER; those variables are what rbprof reads, so
// setting them as root stands for `sudo rbprof record -- ...` by the
// user `nobody`.
const asRoot = process.getuid?.() === 0 ? test.serial : test.serial.skip;
asRoot(
  'under sudo the launched program runs as the invoking user',
  async (t) => {
    const result = await runCli(
      t,
      [
        'record',
        '--no-raw',
        '--',
        RUBY,
        '-e',
        'puts "ids #{Process.uid} #{Process.gid} #{Process.euid}"; ' +
          't = Time.now; x = 0; x += 1 while Time.now - t < 1',
      ],
      { env: { SUDO_UID: '65534', SUDO_GID: '65534', SUDO_USER: 'nobody' } },
    );
    t.is(result.code, 0, result.stderr);
    t.regex(result.stdout, /^ids 65534 65534 65534$/m);
    // rbprof keeps root and still reads the child.
    t.truthy(
      parseSummary(result.stderr).find((row) => row.name === '<main>'),
      result.stderr,
    );
  },
);

test.serial('a command that is not Ruby is named in the error', async (t) => {
  const result = await runCli(t, ['record', '--no-raw', '--', 'sleep', '3']);
  // The command's own status stays rbprof's, also when it was not profiled.
  t.is(result.code, 0, result.stderr);
  t.regex(
    result.stderr,
    /rbprof: the command `sleep` \(process \d+\) is not a Ruby process: no Ruby VM found in \S*sleep/,
  );
  t.regex(result.stderr, /pass --subprocesses/);
  t.notRegex(result.stderr, /--pid/);
});

test.serial('--subprocesses profiles Ruby started by a shell', async (t) => {
  const result = await runCli(t, [
    'record',
    '--no-raw',
    '--subprocesses',
    '--',
    'sh',
    '-c',
    `${RUBY} ${workload('known_split.rb')} 1.5; exit 4`,
  ]);
  t.is(result.code, 4, result.stderr);
  t.truthy(
    parseSummary(result.stderr).find((row) => row.name === 'Object#alpha'),
    result.stderr,
  );
  t.regex(result.stderr, /Sampled 1 process: \d+ \(Ruby [\d.]+, exited\)/);
});

test.serial('--subprocesses names a shell that runs no Ruby', async (t) => {
  const result = await runCli(t, [
    'record',
    '--no-raw',
    '--subprocesses',
    '--',
    'sh',
    '-c',
    'sleep 0.5; exit 4',
  ]);
  t.is(result.code, 4, result.stderr);
  t.regex(
    result.stderr,
    /the command `sh` \(process \d+\) ran no Ruby: neither it nor a process it started ran a Ruby VM/,
  );
});
