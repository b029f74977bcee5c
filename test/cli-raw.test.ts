// Raw recordings through the CLI against real Ruby processes: record
// writes them, report renders them, and neither a cut-short file, a kill,
// a signal nor a read-only folder loses more than it must.

import fs from 'node:fs';
import path from 'node:path';

import test, { type ExecutionContext } from 'ava';

import { readRecording } from 'rbprof';
import { EXIT_CODES } from '../dist/cli/errors';
import { formatInfo, PROFILE_FORMATS } from '../dist/formats/index';
import {
  CLI,
  parseSummary,
  runCli,
  spawnGuarded,
  startWorkload,
  type CliResult,
  tempDir,
} from './helpers/processes';

const HEADER = '% self  % total  name';
const asRoot = process.getuid?.() === 0 ? test.serial : test.serial.skip;

/** Returns the warnings on stderr, but not the one about late samples,
 * which a busy machine may cause. */
function warnings(result: CliResult): string[] {
  return result.stderr
    .split('\n')
    .filter((line) => line.startsWith('rbprof: warning: '))
    .filter((line) => !line.includes('samples were late'));
}

/** Records `threads.rb` for one second into `raw` and returns the result. */
async function recordRaw(
  t: ExecutionContext,
  raw: string,
  extra: string[] = [],
): Promise<CliResult> {
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(t, [
    'record',
    '--pid',
    String(workload.pid),
    '--duration',
    '1',
    '--idle',
    '--raw-file',
    raw,
    ...extra,
  ]);
  t.is(result.code, 0, result.stderr);
  return result;
}

for (const format of PROFILE_FORMATS) {
  test.serial(`report matches record: ${format}`, async (t) => {
    const dir = tempDir(t, 'cli-raw');
    const raw = path.join(dir, 'recording.raw.jsonl');
    const recorded = path.join(dir, `recorded${formatInfo(format).extension}`);
    const reported = path.join(dir, `reported${formatInfo(format).extension}`);
    await recordRaw(t, raw, ['--format', format, '--file', recorded]);

    const result = await runCli(t, [
      'report',
      '--input',
      raw,
      '--format',
      format,
      '--idle',
      '--file',
      reported,
    ]);
    t.is(result.code, 0, result.stderr);
    t.deepEqual(warnings(result), []);
    t.true(
      fs.readFileSync(reported).equals(fs.readFileSync(recorded)),
      `${reported} differs from ${recorded}`,
    );

    if (!formatInfo(format).binary) {
      const toStdout = await runCli(t, [
        'report',
        '--input',
        raw,
        '--format',
        format,
        '--idle',
      ]);
      t.is(toStdout.code, 0, toStdout.stderr);
      t.is(toStdout.stdout, fs.readFileSync(recorded, 'utf8'));
    }
  });
}

test.serial('report counts running threads only', async (t) => {
  const raw = path.join(tempDir(t, 'cli-raw'), 'recording.raw.jsonl');
  await recordRaw(t, raw);

  const running = await runCli(t, ['report', '--input', raw]);
  t.is(running.code, 0, running.stderr);
  const idle = await runCli(t, ['report', '--input', raw, '--idle']);
  t.is(idle.code, 0, idle.stderr);
  // In threads.rb, three of five threads sleep in Kernel#sleep. A thread
  // that wakes up is on a CPU for a moment, so a few running samples may
  // show it too.
  const sleepShare = (result: CliResult) =>
    parseSummary(result.stdout).find((row) => row.name === 'Kernel#sleep')
      ?.self ?? 0;
  t.true(sleepShare(running) < 15, running.stdout);
  t.true(sleepShare(idle) > 40, idle.stdout);
});

test.serial('report keeps binary off a terminal', async (t) => {
  const binary = PROFILE_FORMATS.filter((format) => formatInfo(format).binary);
  if (binary.length === 0) {
    t.log('skipping: no binary format');
    t.pass();
    return;
  }
  const raw = path.join(tempDir(t, 'cli-raw'), 'recording.raw.jsonl');
  await recordRaw(t, raw);
  for (const format of binary) {
    const result = await runInTerminal(t, [
      process.execPath,
      CLI,
      'report',
      '--input',
      raw,
      '--format',
      format,
    ]);
    t.is(result.code, EXIT_CODES.usage, `${format}: ${result.output}`);
    t.regex(
      result.output,
      new RegExp(
        `the ${format} format is .*binary data, which a terminal cannot show`,
      ),
    );
  }
});

test.serial('default files go to the cache folder', async (t) => {
  const cache = tempDir(t, 'cli-raw');
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(
    t,
    [
      'record',
      '--pid',
      String(workload.pid),
      '--duration',
      '1',
      '--format',
      'collapsed',
    ],
    { env: { XDG_CACHE_HOME: cache } },
  );
  t.is(result.code, 0, result.stderr);
  const stem = path.join(
    cache,
    'rbprof',
    `rbprof-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d-${workload.pid}`,
  );
  const raw = new RegExp(`^Raw recording: (${stem}\\.raw\\.jsonl)$`, 'm');
  const profile = new RegExp(`^Profile: (${stem}\\.folded)$`, 'm');
  t.regex(result.stderr, raw);
  t.regex(result.stderr, profile);
  t.true(fs.existsSync(raw.exec(result.stderr)?.[1] ?? ''));
  t.true(fs.existsSync(profile.exec(result.stderr)?.[1] ?? ''));
  // The summary still goes to stdout.
  t.true(result.stdout.startsWith(`${HEADER}\n`), result.stdout);
});

test.serial('report reads a cut recording', async (t) => {
  const dir = tempDir(t, 'cli-raw');
  const raw = path.join(dir, 'recording.raw.jsonl');
  await recordRaw(t, raw);
  const bytes = fs.readFileSync(raw);
  const headerEnd = bytes.indexOf(0x0a);
  const middle = bytes.indexOf(0x0a, Math.floor(bytes.length / 2));
  const random = Array.from({ length: 3 }, () =>
    Math.floor(Math.random() * bytes.length),
  );
  const cuts: Array<[string, number]> = [
    ['at the start', 0],
    ['inside the header', 10],
    ['at the end of the header', headerEnd],
    ['inside the first record', headerEnd + 8],
    ['in the middle of a record', middle + 7],
    ['inside the end record', bytes.length - 3],
    ...random.map((at): [string, number] => [`at random byte ${at}`, at]),
  ];
  const cut = path.join(dir, 'cut.raw.jsonl');
  for (const [where, length] of cuts) {
    fs.writeFileSync(cut, bytes.subarray(0, length));
    const result = await runCli(t, ['report', '--input', cut, '--idle']);
    t.is(result.code, 0, `${where}: ${result.stderr}`);
    t.true(result.stdout.startsWith(`${HEADER}\n`), where);
    const cutShort = warnings(result).filter((line) =>
      line.includes(`${cut} is cut short`),
    );
    // A cut right after a newline drops no bytes, only the records after.
    const dropsBytes = length > 0 && bytes[length - 1] !== 0x0a;
    t.is(cutShort.length, dropsBytes ? 1 : 0, `${where}: ${result.stderr}`);
    if (length > middle) {
      t.true(parseSummary(result.stdout).length > 0, `${where}: no rows`);
    }
  }
});

test.serial('report rejects a corrupt record', async (t) => {
  const dir = tempDir(t, 'cli-raw');
  const raw = path.join(dir, 'recording.raw.jsonl');
  await recordRaw(t, raw);
  const text = fs.readFileSync(raw, 'utf8');
  const offset = text.indexOf('\n', Math.floor(text.length / 2)) + 1;
  const corrupt = path.join(dir, 'corrupt.raw.jsonl');
  fs.writeFileSync(
    corrupt,
    `${text.slice(0, offset)}{"type":"sample","oops"\n${text.slice(offset)}`,
  );

  const result = await runCli(t, ['report', '--input', corrupt]);
  t.is(result.code, EXIT_CODES.invalidRecording);
  t.is(result.stdout, '');
  t.true(
    result.stderr.startsWith(
      `rbprof: ${corrupt}: invalid record at byte ${offset}: not valid JSON`,
    ),
    result.stderr,
  );
});

test.serial('report rejects a foreign file', async (t) => {
  const dir = tempDir(t, 'cli-raw');
  const foreign = path.join(dir, 'profile.folded');
  fs.writeFileSync(foreign, 'main;work 12\n');
  const result = await runCli(t, ['report', '--input', foreign]);
  t.is(result.code, EXIT_CODES.invalidRecording);
  t.is(result.stdout, '');
  t.true(
    result.stderr.startsWith(
      `rbprof: ${foreign} is not an rbprof raw recording: the header at byte 0`,
    ),
    result.stderr,
  );

  const missing = await runCli(t, [
    'report',
    '--input',
    path.join(dir, 'missing'),
  ]);
  t.is(missing.code, EXIT_CODES.fileAccess);
  t.regex(missing.stderr, /cannot read the recording .*missing: ENOENT/);

  const folder = await runCli(t, ['report', '--input', dir]);
  t.is(folder.code, EXIT_CODES.fileAccess);
  t.regex(
    folder.stderr,
    /it is a folder, not a raw recording\nPass the \.raw\.jsonl file/,
  );
});

test.serial('SIGUSR1 writes the profile so far', async (t) => {
  const dir = tempDir(t, 'cli-raw');
  const file = path.join(dir, 'profile.txt');
  const raw = path.join(dir, 'recording.raw.jsonl');
  const workload = await startWorkload(t, 'threads.rb');
  let snapshot: { summary: string; samples: number; running: boolean } = {
    summary: '',
    samples: 0,
    running: false,
  };
  const result = await runCli(
    t,
    [
      'record',
      '--pid',
      String(workload.pid),
      '--format',
      'summary',
      '--file',
      file,
      '--raw-file',
      raw,
    ],
    {
      onStderr: {
        text: 'Recording process',
        then: (child) => {
          void (async () => {
            await sleep(1500);
            child.kill('SIGUSR1');
            for (let i = 0; i < 100 && !fs.existsSync(file); i++) {
              await sleep(100);
            }
            const recording = await readRecording(raw);
            snapshot = {
              summary: fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '',
              samples: recording.profile.sampleCount,
              running: child.exitCode === null && child.signalCode === null,
            };
            child.kill('SIGINT');
          })();
        },
      },
    },
  );

  t.true(snapshot.running, 'the CLI exited before SIGINT');
  t.true(snapshot.summary.startsWith(`${HEADER}\n`), snapshot.summary);
  t.true(parseSummary(snapshot.summary).length > 0, snapshot.summary);
  t.true(snapshot.samples > 0, 'the raw recording had no samples');
  t.regex(
    result.stderr,
    /^SIGUSR1: synced the raw recording .*, wrote the profile so far to /m,
  );

  t.is(result.code, 0, result.stderr);
  const final = await readRecording(raw);
  t.true(final.complete);
  t.true(final.profile.sampleCount >= snapshot.samples);
  t.true(fs.readFileSync(file, 'utf8').startsWith(`${HEADER}\n`));
});

test.serial('SIGKILL leaves a readable recording', async (t) => {
  const raw = path.join(tempDir(t, 'cli-raw'), 'recording.raw.jsonl');
  const workload = await startWorkload(t, 'threads.rb');
  let elapsedSeconds = 0;
  const result = await runCli(
    t,
    ['record', '--pid', String(workload.pid), '--raw-file', raw],
    {
      onStderr: {
        text: 'Recording process',
        then: (child) => {
          const started = Date.now();
          setTimeout(() => {
            elapsedSeconds = (Date.now() - started) / 1000;
            child.kill('SIGKILL');
          }, 3000);
        },
      },
    },
  );
  t.is(result.signal, 'SIGKILL');

  const report = await runCli(t, ['report', '--input', raw]);
  t.is(report.code, 0, report.stderr);
  t.regex(report.stderr, /has no end record because rbprof stopped/);
  t.true(parseSummary(report.stdout).length > 0, report.stdout);

  // Sampling started before the CLI printed its first line, and batches
  // reach the file at every poll, 0.1 to 1 s apart. The bound leaves room
  // for a busy machine.
  const recording = await readRecording(raw);
  const covered = recording.profile.stats.durationSeconds;
  t.true(
    covered >= elapsedSeconds - 2,
    `the file covers ${covered} s of ${elapsedSeconds} s`,
  );
});

test.serial('size limit stops the raw file', async (t) => {
  const raw = path.join(tempDir(t, 'cli-raw'), 'recording.raw.jsonl');
  const maxBytes = Math.floor(0.01 * 2 ** 20);
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(t, [
    'record',
    '--pid',
    String(workload.pid),
    '--duration',
    '3',
    '--idle',
    '--raw-file',
    raw,
    '--raw-max-mb',
    '0.01',
  ]);
  t.is(result.code, 0, result.stderr);
  t.true(result.stdout.startsWith(`${HEADER}\n`), result.stdout);
  const limit = warnings(result).filter((line) =>
    line.includes('reached its size limit'),
  );
  t.is(limit.length, 1, result.stderr);
  // The limit record itself may cross the limit by its own length.
  const size = fs.statSync(raw).size;
  t.true(size <= maxBytes + 64, `${size} bytes for a limit of ${maxBytes}`);
  t.true(size > maxBytes / 2, `${size} bytes for a limit of ${maxBytes}`);

  const report = await runCli(t, ['report', '--input', raw, '--idle']);
  t.is(report.code, 0, report.stderr);
  t.regex(report.stderr, /stopped at its size limit/);
  t.true(parseSummary(report.stdout).length > 0, report.stdout);
});

/** Runs the CLI with `dir` as a read-only file system, in a mount
 * namespace of its own. */
function readOnly(dir: string): string[] {
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    'mount -t tmpfs -o ro rbprof-read-only "$0" && exec "$@"',
    dir,
  ];
}

asRoot('read-only cache folder keeps recording', async (t) => {
  const cache = tempDir(t, 'cli-raw');
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(
    t,
    ['record', '--pid', String(workload.pid), '--duration', '1'],
    { prefix: readOnly(cache), env: { XDG_CACHE_HOME: cache } },
  );
  t.is(result.code, 0, result.stderr);
  t.true(result.stdout.startsWith(`${HEADER}\n`), result.stdout);
  t.true(parseSummary(result.stdout).length > 0, result.stdout);
  const lines = warnings(result);
  t.is(lines.length, 1, result.stderr);
  t.regex(
    lines[0] ?? '',
    /cannot create the folder .*: EROFS: read-only file system, so the raw recording cannot be written there/,
  );
  t.regex(result.stderr, /^Samples: \d+ taken/m);
});

asRoot('read-only raw file keeps recording', async (t) => {
  const dir = tempDir(t, 'cli-raw');
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(
    t,
    [
      'record',
      '--pid',
      String(workload.pid),
      '--duration',
      '1',
      '--raw-file',
      path.join(dir, 'recording.raw.jsonl'),
    ],
    { prefix: readOnly(dir) },
  );
  t.is(result.code, 0, result.stderr);
  t.true(parseSummary(result.stdout).length > 0, result.stdout);
  const lines = warnings(result);
  t.is(lines.length, 1, result.stderr);
  t.regex(lines[0] ?? '', /cannot write the raw recording .*: EROFS/);
});

asRoot('read-only profile file fails at the end', async (t) => {
  const dir = tempDir(t, 'cli-raw');
  const file = path.join(dir, 'profile.txt');
  const workload = await startWorkload(t, 'threads.rb');
  const result = await runCli(
    t,
    [
      'record',
      '--pid',
      String(workload.pid),
      '--duration',
      '1',
      '--no-raw',
      '--format',
      'summary',
      '--file',
      file,
    ],
    { prefix: readOnly(dir) },
  );
  // The summary still prints, but the file that was asked for is missing.
  t.true(parseSummary(result.stdout).length > 0, result.stdout);
  const lines = warnings(result);
  t.is(lines.length, 1, result.stderr);
  t.regex(lines[0] ?? '', /so the summary profile cannot be saved as /);
  t.is(result.code, EXIT_CODES.fileAccess, result.stderr);
  t.regex(
    result.stderr,
    new RegExp(`^rbprof: cannot write ${file}: EROFS`, 'm'),
  );
});

/**
 * Runs a command with a pseudo-terminal as stdin, stdout and stderr,
 * through `script`, and returns its exit code and what it printed.
 */
function runInTerminal(
  t: ExecutionContext,
  command: string[],
): Promise<{ code: number | null; output: string }> {
  const child = spawnGuarded(t, 'script', [
    '--quiet',
    '--return',
    '--command',
    command.join(' '),
    '/dev/null',
  ]);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk) => (output += chunk));
  return new Promise((resolve) => {
    child.once('close', (code) => resolve({ code, output }));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

test.serial(
  'a profile file that fails at the end names the report command',
  async (t) => {
    const dir = tempDir(t, 'cli-raw');
    const raw = path.join(dir, 'recording.raw.jsonl');
    const file = path.join(dir, 'missing-folder', 'profile.pb');
    const workload = await startWorkload(t, 'threads.rb');
    const result = await runCli(t, [
      'record',
      '--pid',
      String(workload.pid),
      '--duration',
      '1',
      '--raw-file',
      raw,
      '--format',
      'pprof',
      '--file',
      file,
    ]);
    t.is(result.code, EXIT_CODES.fileAccess, result.stderr);
    t.regex(
      result.stderr,
      new RegExp(`^rbprof: cannot write ${file}: ENOENT`, 'm'),
    );
    const hint = `\`rbprof report --input ${raw} --format pprof --file PATH\` writes the profile.`;
    t.true(result.stderr.includes(hint), result.stderr);
    // The command it names works.
    const report = await runCli(t, [
      'report',
      '--input',
      raw,
      '--format',
      'pprof',
      '--file',
      path.join(dir, 'profile.pb'),
    ]);
    t.is(report.code, 0, report.stderr);
    t.true(fs.statSync(path.join(dir, 'profile.pb')).size > 0);
  },
);
